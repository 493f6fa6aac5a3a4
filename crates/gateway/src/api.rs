//! The agent API (JSON over HTTP): sign-in and sessions. Every error is
//! `{"error": {"code", "message"}}` with a stable code and a message an agent can act on.

use adapter_core::agent_events::{AgentEvent, CallState, CallView, Direction, StatusView};
use axum::{
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts, Request, State},
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::json;

use crate::{
    ccai::{CallPlaced, CcaiApi, CcaiError, PlaceCall, UserStatus},
    sessions::Session,
    store::StoreError,
    AppState,
};

/// An error of the agent API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store error in the agent API");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "The gateway cannot reach its database; try again in a moment.",
        )
    }
}

impl From<CcaiError> for ApiError {
    fn from(error: CcaiError) -> Self {
        match error {
            CcaiError::Rejected(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "ccai_rejected", message)
            }
            other => {
                tracing::warn!(error = %other, "CCAI Platform error in the agent API");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "ccai_unavailable",
                    other.to_string(),
                )
            }
        }
    }
}

/// `Json<T>` whose rejections are API errors (400 malformed, 413 too large, 415 not JSON).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                let code = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => "not_json",
                    JsonRejection::JsonSyntaxError(_) => "malformed_json",
                    JsonRejection::JsonDataError(_) => "invalid_fields",
                    JsonRejection::BytesRejection(_) => "body_too_large",
                    _ => "bad_request",
                };
                Err(ApiError::new(
                    rejection.status(),
                    code,
                    rejection.body_text(),
                ))
            }
        }
    }
}

/// The signed-in agent of a request (`Authorization: Bearer <token>`), and the token.
pub struct SignedIn {
    pub session: Session,
    pub token: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "Sign in to the contact center first.",
                )
            })?;
        let session = state.sessions.find(token).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session_expired",
                "Your session has ended; sign in again.",
            )
        })?;
        Ok(SignedIn {
            session,
            token: token.to_owned(),
        })
    }
}

/// The Kustomer user the host says is signed in. Only its email is read, to tell an agent who
/// signed in to Kustomer with another account. The `id` the widget also sends is accepted and
/// ignored: who the agent is in Kustomer is asked of Kustomer ([`kustomer_user`]), so an agent
/// cannot act as another agent's Kustomer user by sending that user's id.
#[derive(Deserialize)]
pub struct KustomerUser {
    pub email: String,
}

#[derive(Deserialize)]
pub struct SignIn {
    pub email: String,
    #[serde(default)]
    pub password: Option<String>,
    pub kustomer_user: KustomerUser,
}

const MAX_EMAIL_CHARS: usize = 254;

/// Longest sign-in waits for Kustomer to name the agent's user (the org's request budget is
/// shared with the CRM sync, so a busy minute can make it wait).
const KUSTOMER_USER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The agent's Kustomer user id, from Kustomer's API (`GET /v1/users?email=`, remembered by the
/// client). Sign-in is refused when Kustomer cannot say: the widget runs inside Kustomer, so
/// Kustomer is normally up and a retry soon works, while a session without its Kustomer user
/// would leave the status sync silently off for the agent's whole shift.
async fn kustomer_user(state: &AppState, email: &str) -> Result<String, ApiError> {
    let unavailable = |why: String| {
        tracing::warn!(agent = %email, error = %why, "cannot read the agent's Kustomer user at sign-in");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "kustomer_unavailable",
            "Kustomer cannot be reached to confirm your Kustomer user; try again in a moment.",
        )
    };
    match tokio::time::timeout(KUSTOMER_USER_WAIT, state.crm.kustomer().user_id(email)).await {
        Ok(Ok(Some(id))) => Ok(id),
        Ok(Ok(None)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_kustomer_user",
            format!(
                "Kustomer has no user with the email {email} in the org this contact center is connected to; ask your administrator."
            ),
        )),
        Ok(Err(error)) => Err(unavailable(error.to_string())),
        Err(_) => Err(unavailable("no answer in time".into())),
    }
}

fn same_email(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// `POST /api/v1/sessions`: sign in. The agent's email must be the Kustomer user's (as the
/// widget reports it), and Kustomer must know a user with it: that user is the session's.
async fn sign_in(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let email = request.email.trim().to_lowercase();
    if email.is_empty() || email.len() > MAX_EMAIL_CHARS || !email.contains('@') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_email",
            "Enter the email address you use for the contact center.",
        ));
    }
    if !same_email(&email, &request.kustomer_user.email) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "email_mismatch",
            format!(
                "You are signed in to Kustomer as {} but tried to sign in to the contact center as {email}. Use the same email address in both, so your status and calls follow you.",
                request.kustomer_user.email.trim()
            ),
        ));
    }
    if !state.directory.verify(&email, request.password.as_deref()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "Wrong email or password.",
        ));
    }
    let Some(agent_id) = state.ccai.agent_id(&email).await? else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_agent",
            format!(
                "No contact-center agent has the email {email}; ask your administrator to add you."
            ),
        ));
    };
    let kustomer_user_id = kustomer_user(&state, &email).await?;
    let issued = state
        .sessions
        .issue(&email, agent_id, &kustomer_user_id)
        .await?;
    seed_status(&state, agent_id).await;
    tracing::info!(agent = %email, agent_id, "agent signed in");
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// `POST /api/v1/sessions/refresh`: a new token for a live one (the old one stops working).
async fn refresh(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, ApiError> {
    let issued = state
        .sessions
        .refresh(&signed_in.token)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session_expired",
                "Your session has ended; sign in again.",
            )
        })?;
    Ok(Json(issued).into_response())
}

/// `DELETE /api/v1/sessions`: sign out.
async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<StatusCode, ApiError> {
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

/// Publishes the agent's status as the platform has it, so the first snapshot of a new stream
/// carries it. A failure is logged: sign-in does not depend on it.
async fn seed_status(state: &AppState, agent_id: i64) {
    let status = match state.ccai.agent_status(agent_id).await {
        Ok(Some(status)) => status,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, agent_id, "cannot read the agent's status at sign-in");
            return;
        }
    };
    let name = match status.name {
        Some(name) => name,
        None => state
            .ccai
            .user_statuses()
            .await
            .ok()
            .and_then(|all| all.into_iter().find(|s| s.id == status.id))
            .map(|s| s.name)
            .unwrap_or_default(),
    };
    let next = state.events.state(agent_id).next_status;
    state.agent_status.touched(agent_id);
    state.events.publish_status(
        agent_id,
        Some(StatusView {
            id: status.id,
            name,
        }),
        next,
    );
}

/// The agent API's routes, nested under `/api/v1`.
/// `GET /api/v1/statuses`: the tenant's statuses; system ones are shown but not selectable.
async fn statuses(
    State(state): State<AppState>,
    _signed_in: SignedIn,
) -> Result<Response, ApiError> {
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

#[derive(Deserialize)]
pub struct NewCall {
    /// E.164, as the dial pad showed it.
    pub number: String,
    /// The Kustomer conversation the call belongs to.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// ISO 639-1.
    #[serde(default)]
    pub lang: Option<String>,
}

/// The platform's documented refusals of a call, in words an agent can act on.
fn call_refused(message: String) -> ApiError {
    match message.as_str() {
        "Agent is not available to take this call" => ApiError::new(
            StatusCode::CONFLICT,
            "agent_not_available",
            "You are not Available in the contact center: set your status to Available to place a call.",
        ),
        "Not a valid agent email" => ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_agent",
            "The contact center does not know your email address; ask your administrator.",
        ),
        "end_user_number is not well-formed" => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_number",
            "The contact center cannot dial this number; check it in the dial pad.",
        ),
        _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "ccai_rejected", message),
    }
}

/// `POST /api/v1/calls`: click-to-call, for the signed-in agent only.
async fn place_call(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(request): ApiJson<NewCall>,
) -> Result<Response, ApiError> {
    let number = request.number.trim();
    // Checked here too, whatever the widget did: E.164, valid in libphonenumber's plan.
    if let Err(why) = crate::phone::check_e164(number) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_number",
            format!("This number cannot be dialled ({why}); check it in the dial pad."),
        ));
    }
    let call = PlaceCall {
        agent_email: signed_in.session.agent_email.clone(),
        end_user_number: Some(number.to_owned()),
        ticket_id: request.conversation_id.filter(|c| !c.trim().is_empty()),
        lang: request.lang,
    };
    let placed = match state.ccai.place_call(&call).await {
        Ok(placed) => placed,
        Err(CcaiError::Rejected(message)) => return Err(call_refused(message)),
        Err(other) => return Err(other.into()),
    };
    tracing::info!(agent = %call.agent_email, ?placed, "outbound call placed");
    let (CallPlaced::Created(info) | CallPlaced::NeedsAgent(info)) = &placed;
    // The platform's events for this call will say nothing of its direction: remember it.
    let call_id = state.store.session_id("call", &info.id, true).await?;
    let agent_id = signed_in.session.ccai_agent_id;
    // The platform's own events for this call may have been faster than its answer: the call
    // is shown dialing only when the stream does not show it further along already.
    let known = state.events.state(agent_id);
    let further = [known.call.as_ref(), known.last_call.as_ref()]
        .into_iter()
        .flatten()
        .any(|c| c.call_id == call_id);
    if !further {
        state.events.publish(
            agent_id,
            AgentEvent::Call(CallView {
                call_id,
                direction: Direction::Outbound,
                state: CallState::Dialing,
                number: Some(number.to_owned()),
                conversation_id: call.ticket_id.clone(),
                needs_agent: matches!(placed, CallPlaced::NeedsAgent(_)),
                ..CallView::default()
            }),
        );
    }
    Ok(match placed {
        CallPlaced::Created(info) => (
            StatusCode::CREATED,
            Json(json!({"call_id": call_id, "status": info.status, "needs_agent": false})),
        )
            .into_response(),
        CallPlaced::NeedsAgent(info) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "call_id": call_id, "status": info.status, "needs_agent": true,
                "message": "The call is created: finish it in the adapter (for example, choose the outbound number).",
            })),
        )
            .into_response(),
    })
}

#[derive(Deserialize)]
pub struct NewStatus {
    pub status_id: i64,
    /// When the agent picked it (Unix ms, the browser's clock); now when missing. Ranks it
    /// against Kustomer changes when status inheritance is on.
    #[serde(default)]
    pub at_ms: Option<i64>,
}

/// What a status change did.
pub struct StatusChange {
    pub current: Option<StatusView>,
    /// Set when the change waits as the next status (a call, wrap-up).
    pub next: Option<StatusView>,
    /// The system status the agent is in, when the change waits.
    pub busy: Option<UserStatus>,
}

/// Sets `target` for `agent_id` upstream (coalesced with other agents' changes) and publishes
/// the result on the agent's stream. During a call or wrap-up the platform keeps it as the next
/// status.
pub async fn change_status(
    state: &AppState,
    agent_id: i64,
    statuses: &[UserStatus],
    target: &UserStatus,
) -> Result<StatusChange, ApiError> {
    let result = state.status_setter.set(agent_id, &target.name).await?;
    let view = |id: i64, name: &str| StatusView {
        id,
        name: name.to_owned(),
    };
    let current = result
        .current_status
        .as_ref()
        .map(|c| view(c.id, c.name.as_deref().unwrap_or_default()));
    let busy = result
        .current_status
        .as_ref()
        .and_then(|c| statuses.iter().find(|s| s.id == c.id))
        .filter(|s| s.is_system())
        .cloned();
    // A refusal while in a system status (a call, wrap-up) means the change waits as the next one.
    let next = match (result.message, &busy) {
        (None, _) => None,
        (Some(_), Some(_)) => Some(view(target.id, &target.name)),
        (Some(message), None) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ccai_rejected",
                message,
            ))
        }
    };
    state.agent_status.touched(agent_id);
    state.events.publish(
        agent_id,
        AgentEvent::StatusChanged {
            status: current.clone(),
            next_status: next.clone(),
        },
    );
    Ok(StatusChange {
        current,
        next,
        busy,
    })
}

/// `PUT /api/v1/status`: sets the agent's status now; during a call or wrap-up the platform
/// keeps it as the next status, and the answer says so.
async fn set_status(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(request): ApiJson<NewStatus>,
) -> Result<Response, ApiError> {
    let statuses = state.ccai.user_statuses().await?;
    let Some(target) = statuses.iter().find(|s| s.id == request.status_id) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_status",
            "The contact center has no such status.",
        ));
    };
    if target.is_system() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "status_not_selectable",
            format!(
                "{} is set by the contact center itself and cannot be chosen.",
                target.name
            ),
        ));
    }
    let agent_id = signed_in.session.ccai_agent_id;
    let at = crate::inheritance::clamp_at(request.at_ms, crate::sessions::now_ms());
    let in_conversation = state
        .inheritance
        .condition(&state.events.state(agent_id), &statuses)
        == adapter_core::status_policy::Condition::InConversation;
    if !state
        .inheritance
        .adapter_change_is_current(agent_id, at, in_conversation)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "superseded",
            "Your Kustomer status changed after you picked this one, and the latest change wins: your status follows Kustomer's.",
        ));
    }
    let change = change_status(&state, agent_id, &statuses, target).await?;
    state
        .inheritance
        .remember(
            agent_id,
            adapter_core::status_policy::Source::Adapter,
            at,
            change.next.is_some(),
        )
        .await;
    if let Some(current) = change.current.as_ref().filter(|_| change.next.is_none()) {
        if let Some((seq, finished)) = state
            .inheritance
            .write_back(&state, agent_id, current, &statuses)
            .await
        {
            // Stored, so it lands whatever happens; the answer waits only briefly for it, so
            // that the agent's Kustomer status has usually followed by then.
            crate::crm::wait_finished(seq, finished, crate::crm::WRITE_BACK_WAIT).await;
        }
    }
    let mut body = json!({ "current": change.current, "next": change.next });
    Ok(match change.busy.filter(|_| change.next.is_some()) {
        None => Json(body).into_response(),
        Some(busy) => {
            body["message"] = json!(format!(
                "You are {}: {} will apply after the call and wrap-up.",
                busy.name, target.name
            ));
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
    })
}

/// `DELETE /api/v1/status/next`: cancels the pending next status. The platform has no "no next
/// status": after wrap-up an agent without one becomes Available. So cancelling makes Available
/// the next status upstream, and the adapter shows none pending. Only while the agent is in a
/// system status (a call, wrap-up): otherwise Available would apply at once.
async fn cancel_next_status(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, ApiError> {
    let agent_id = signed_in.session.ccai_agent_id;
    let known = state.events.state(agent_id);
    let statuses = state.ccai.user_statuses().await?;
    let in_system_status = known
        .status
        .as_ref()
        .and_then(|current| statuses.iter().find(|s| s.id == current.id))
        .is_some_and(|s| s.is_system());
    if known.next_status.is_none() || !in_system_status {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_next_status",
            "There is no next status to cancel.",
        ));
    }
    let Some(available) = statuses.iter().find(|s| s.id == 0) else {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "ccai_unavailable",
            "The contact center lists no Available status.",
        ));
    };
    let result = state.status_setter.set(agent_id, &available.name).await?;
    let current = result.current_status.as_ref().map(|c| StatusView {
        id: c.id,
        name: c.name.clone().unwrap_or_default(),
    });
    state.events.publish(
        agent_id,
        AgentEvent::StatusChanged {
            status: current.clone(),
            next_status: None,
        },
    );
    Ok(Json(json!({ "current": current, "next": null })).into_response())
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/status", axum::routing::put(set_status))
        .route("/status/next", axum::routing::delete(cancel_next_status))
        .route(
            "/status-inheritance",
            axum::routing::get(crate::inheritance::get_settings)
                .put(crate::inheritance::put_settings),
        )
        .route(
            "/status-inheritance/audit",
            axum::routing::get(crate::inheritance::audit),
        )
        .route(
            "/kustomer-status",
            post(crate::inheritance::kustomer_status),
        )
        .route("/events", axum::routing::get(crate::events::stream))
        .route("/statuses", axum::routing::get(statuses))
        .route("/calls", post(place_call))
        .route("/calls/{id}/{action}", post(crate::controls::control))
        .route("/sessions", post(sign_in).delete(sign_out))
        .route("/sessions/refresh", post(refresh))
        .route("/me", axum::routing::get(me))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "No such endpoint in the agent API.",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_refusals_become_agent_words() {
        let cases = [
            (
                "Agent is not available to take this call",
                StatusCode::CONFLICT,
                "agent_not_available",
            ),
            (
                "Not a valid agent email",
                StatusCode::FORBIDDEN,
                "unknown_agent",
            ),
            (
                "end_user_number is not well-formed",
                StatusCode::BAD_REQUEST,
                "invalid_number",
            ),
            (
                "Something new",
                StatusCode::UNPROCESSABLE_ENTITY,
                "ccai_rejected",
            ),
        ];
        for (message, status, code) in cases {
            let error = call_refused(message.into());
            assert_eq!((error.status, error.code), (status, code), "{message}");
        }
    }

    #[test]
    fn emails_match_whatever_their_case_and_spacing() {
        assert!(same_email(" Ada@Example.com", "ada@example.com "));
        assert!(!same_email("ada@example.com", "ada@example.org"));
    }
}
