//! The agent API's handlers (under `/api/v1`): sign-in and sessions, statuses, click-to-call,
//! call controls, Kustomer status changes and the inheritance settings every agent reads. Each
//! parses the request, calls one domain function and shapes the answer.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Json, Router,
};
use serde_json::json;

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
    Ok((StatusCode::CREATED, Json(issued)).into_response())
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
    Ok(Json(issued).into_response())
}

/// `DELETE /api/v1/sessions`: sign out.
async fn sign_out(State(state): State<AppState>, signed_in: SignedIn) -> Result<StatusCode, Error> {
    state.sessions.revoke(&signed_in.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me`: who is signed in, until when, and the call controls on offer.
async fn me(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let mut body = serde_json::to_value(&signed_in.session).unwrap_or_else(|_| json!({}));
    let controls: Vec<&str> = state
        .capabilities
        .get()
        .into_iter()
        .map(|c| c.as_str())
        .collect();
    body["capabilities"] = json!(controls);
    body["admin"] = json!(state.config.is_admin(&signed_in.session.agent_email));
    Json(body).into_response()
}

/// `GET /api/v1/statuses`: the tenant's statuses; system ones are shown but not selectable.
async fn statuses(State(state): State<AppState>, _signed_in: SignedIn) -> Result<Response, Error> {
    let statuses: Vec<serde_json::Value> = state
        .ccai
        .user_statuses()
        .await?
        .into_iter()
        .map(
            |s| json!({"id": s.id, "name": s.name, "color": s.color, "selectable": !s.is_system()}),
        )
        .collect();
    Ok(Json(json!({ "statuses": statuses })).into_response())
}

/// `PUT /api/v1/status`: 200 when set now, 202 with a message when it waits as the next status.
async fn set_status(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(request): ApiJson<NewStatus>,
) -> Result<Response, Error> {
    let set = status::set_status(&state, signed_in.session.ccai_agent_id, request).await?;
    let mut body = json!({ "current": set.change.current, "next": set.change.next });
    Ok(match set.waits {
        None => Json(body).into_response(),
        Some(message) => {
            body["message"] = json!(message);
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
    })
}

/// `DELETE /api/v1/status/next`: cancels the pending next status.
async fn cancel_next_status(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, Error> {
    let current = status::cancel_next_status(&state, signed_in.session.ccai_agent_id).await?;
    Ok(Json(json!({ "current": current, "next": null })).into_response())
}

/// `GET /api/v1/status-inheritance`: the settings (every agent reads whether inheritance is on;
/// admins edit them), the CCAI statuses a Kustomer status can map to, and whether the reader is
/// an admin.
async fn inheritance_settings(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, Error> {
    let statuses = state.ccai.user_statuses().await?;
    let ccai: Vec<_> = statuses
        .iter()
        .map(|s| json!({"id": s.id, "name": s.name, "selectable": !s.is_system()}))
        .collect();
    Ok(Json(json!({
        "settings": state.inheritance.settings(),
        "ccai_statuses": ccai,
        "admin": state.config.is_admin(&signed_in.session.agent_email),
        "login_inherited": false,
    }))
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
    Ok(Json(json!({
        "decision": outcome.decision,
        "current": outcome.applied.as_ref().and_then(|c| c.current.clone()),
        "next": outcome.applied.as_ref().and_then(|c| c.next.clone()),
    }))
    .into_response())
}

/// `POST /api/v1/calls`: click-to-call; 201, or 202 when the agent must finish the call.
async fn place_call(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(request): ApiJson<NewCall>,
) -> Result<Response, Error> {
    let placed = calls::place_call(&state, &signed_in.session, request).await?;
    Ok(if placed.needs_agent {
        (
            StatusCode::ACCEPTED,
            Json(json!({
                "call_id": placed.call_id, "status": placed.status, "needs_agent": true,
                "message": "The call is created: finish it in the adapter (for example, choose the outbound number).",
            })),
        )
            .into_response()
    } else {
        (
            StatusCode::CREATED,
            Json(json!({"call_id": placed.call_id, "status": placed.status, "needs_agent": false})),
        )
            .into_response()
    })
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
        Json(json!({"call_id": done.call_id, "control": done.control.as_str(), "result": done.result})),
    )
        .into_response())
}
