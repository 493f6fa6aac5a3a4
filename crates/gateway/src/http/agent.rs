//! The agent API's handlers (under `/api/v1`): sign-in and sessions, statuses, click-to-call,
//! call controls, Kustomer status changes and the inheritance settings every agent reads. Each
//! parses the request, calls one domain function and shapes the answer. Requests and answers
//! are the agent API's types ([`adapter_core::agent_api`]), the ones the widget uses.

use adapter_core::agent_api::{
    CallPlaced, CcaiStatus, ControlDone, InheritanceView, Inherited, Me, Session, StatusOption,
    StatusSet, Statuses,
};
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Json, Router,
};

use super::{
    auth::{ClientAddr, SignedIn},
    error::ApiJson,
};
use crate::{
    calls::{self, NewCall},
    ccai::CcaiApi,
    controls,
    error::{Code, Error},
    signin::{self, SignIn},
    status::{self, KustomerStatusChanged, NewStatus},
    AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sessions", post(sign_in).delete(sign_out))
        .route("/sessions/refresh", post(refresh))
        .route("/me", get(me))
        .route("/statuses", get(statuses))
        .route("/status", put(set_status))
        .route("/status/next", axum::routing::delete(cancel_next_status))
        .route(
            "/status-inheritance",
            get(inheritance_settings).put(super::admin::put_inheritance),
        )
        .route("/kustomer-status", post(kustomer_status))
        .route("/calls", post(place_call))
        .route("/calls/{id}/{action}", post(control))
}

/// `POST /api/v1/sessions`: sign in; 201 with the token.
async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(request): ApiJson<SignIn>,
) -> Result<Response, Error> {
    let issued = signin::sign_in(&state, request, client).await?;
    Ok((StatusCode::CREATED, Json(Session::from(issued))).into_response())
}

/// `POST /api/v1/sessions/refresh`: a new token for a live one (the old one stops working), if
/// the agent may still sign in and the sign-in is within its absolute lifetime.
async fn refresh(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, Error> {
    let directory = &state.directory;
    let issued = state
        .sessions
        .refresh(&signed_in.token, |email| directory.lists(email))
        .await?
        .ok_or_else(Error::session_expired)?;
    Ok(Json(Session::from(issued)).into_response())
}

/// `DELETE /api/v1/sessions`: sign out.
async fn sign_out(State(state): State<AppState>, signed_in: SignedIn) -> Result<StatusCode, Error> {
    state.sessions.revoke(&signed_in.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me`: who is signed in, until when, and the call controls on offer.
async fn me(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let session = signed_in.session;
    Json(Me {
        admin: state.config.is_admin(&session.agent_email),
        capabilities: state
            .capabilities
            .get()
            .into_iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        agent_email: session.agent_email,
        ccai_agent_id: session.ccai_agent_id,
        expires_at_ms: session.expires_at_ms,
        kustomer_user_id: session.kustomer_user_id,
    })
    .into_response()
}

/// `GET /api/v1/statuses`: the tenant's statuses; system ones are shown but not selectable.
async fn statuses(State(state): State<AppState>, _signed_in: SignedIn) -> Result<Response, Error> {
    let statuses = state
        .ccai
        .user_statuses()
        .await?
        .into_iter()
        .map(|s| StatusOption {
            selectable: !s.is_system(),
            color: s.color,
            id: s.id,
            name: s.name,
        })
        .collect();
    Ok(Json(Statuses { statuses }).into_response())
}

/// `PUT /api/v1/status`: 200 when set now, 202 with a message when it waits as the next status.
async fn set_status(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(request): ApiJson<NewStatus>,
) -> Result<Response, Error> {
    let set = status::set_status(&state, signed_in.session.ccai_agent_id, request).await?;
    let code = if set.waits.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = StatusSet {
        current: set.change.current,
        message: set.waits,
        next: set.change.next,
    };
    Ok((code, Json(body)).into_response())
}

/// `DELETE /api/v1/status/next`: cancels the pending next status.
async fn cancel_next_status(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, Error> {
    let current = status::cancel_next_status(&state, signed_in.session.ccai_agent_id).await?;
    Ok(Json(StatusSet {
        current,
        message: None,
        next: None,
    })
    .into_response())
}

/// `GET /api/v1/status-inheritance`: the settings (every agent reads whether inheritance is on;
/// admins edit them), the CCAI statuses a Kustomer status can map to, and whether the reader is
/// an admin.
async fn inheritance_settings(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, Error> {
    let statuses = state.ccai.user_statuses().await?;
    let ccai_statuses = statuses
        .iter()
        .map(|s| CcaiStatus {
            id: s.id,
            name: s.name.clone(),
            selectable: !s.is_system(),
        })
        .collect();
    Ok(Json(InheritanceView {
        admin: state.config.is_admin(&signed_in.session.agent_email),
        ccai_statuses,
        login_inherited: false,
        settings: state.inheritance.settings().into(),
    })
    .into_response())
}

/// `POST /api/v1/kustomer-status`: a Kustomer status change of the signed-in agent, decided by
/// the policy; the answer says what was done and why, for the adapter to tell the agent.
async fn kustomer_status(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(change): ApiJson<KustomerStatusChanged>,
) -> Result<Response, Error> {
    let outcome = status::kustomer_status(&state, signed_in.session.ccai_agent_id, change).await?;
    let (current, next) = outcome
        .applied
        .map_or((None, None), |change| (change.current, change.next));
    Ok(Json(Inherited {
        current,
        decision: outcome.decision.into(),
        next,
    })
    .into_response())
}

/// `POST /api/v1/calls`: click-to-call; 201, or 202 when the agent must finish the call.
async fn place_call(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(request): ApiJson<NewCall>,
) -> Result<Response, Error> {
    let placed = calls::place_call(&state, &signed_in.session, request).await?;
    let (code, message) = if placed.needs_agent {
        (
            StatusCode::ACCEPTED,
            Some("The call is created: finish it in the adapter (for example, choose the outbound number).".to_owned()),
        )
    } else {
        (StatusCode::CREATED, None)
    };
    let body = CallPlaced {
        call_id: placed.call_id,
        message,
        needs_agent: placed.needs_agent,
        status: placed.status,
    };
    Ok((code, Json(body)).into_response())
}

/// `POST /api/v1/calls/{id}/{action}`: a call control for the agent's own call; 202.
async fn control(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((id, action)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let body = body.map_err(|rejection| Error::new(Code::BodyTooLarge, rejection.body_text()))?;
    let done =
        controls::control(&state, signed_in.session.ccai_agent_id, &id, &action, &body).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ControlDone {
            call_id: done.call_id,
            control: done.control.as_str().to_owned(),
            result: done.result,
        }),
    )
        .into_response())
}
