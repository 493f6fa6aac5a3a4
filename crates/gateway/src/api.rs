//! The agent API (JSON over HTTP): sign-in and sessions. Every error is
//! `{"error": {"code", "message"}}` with a stable code and a message an agent can act on.

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
    ccai::{CcaiApi, CcaiError},
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

/// The Kustomer user the host says is signed in.
#[derive(Deserialize)]
pub struct KustomerUser {
    pub id: String,
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

fn same_email(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// `POST /api/v1/sessions`: sign in. The agent's email must be the Kustomer user's.
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
    let issued = state
        .sessions
        .issue(&email, agent_id, &request.kustomer_user.id)
        .await?;
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

/// `GET /api/v1/me`: who is signed in, until when.
async fn me(signed_in: SignedIn) -> Json<Session> {
    Json(signed_in.session)
}

/// The agent API's routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
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
    fn emails_match_whatever_their_case_and_spacing() {
        assert!(same_email(" Ada@Example.com", "ada@example.com "));
        assert!(!same_email("ada@example.com", "ada@example.org"));
    }
}
