//! The CCAI Platform's webhooks in: `POST /webhooks/ccai/calls` and `/chats` (the documented
//! session events, each with its own HTTP Basic user and password, compared in constant time and
//! checked before the body is read), and `/webhooks/ccai/extension` (only with
//! `--ccai-extension`, the call events' credentials). What an event does is
//! [`crate::webhooks`]'.

use adapter_core::agent_events::Channel;
use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    error::{Code, Error},
    secret::Secret,
    webhooks, AppState,
};

/// Largest session events POST: a backlog batch of the most events the decoder takes, each a
/// few kilobytes once enriched.
pub const MAX_EVENTS_BODY_BYTES: usize = 2 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/ccai/calls", post(receive_calls))
        .route("/webhooks/ccai/chats", post(receive_chats))
        .route("/webhooks/ccai/extension", post(receive_extension))
}

/// Whether `headers` carry exactly `user:password`. Both sides are hashed before comparing, so
/// the time taken says nothing about how much of a guess was right, nor about the length.
pub fn authorised(headers: &HeaderMap, user: &str, password: &Secret) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials.trim())
        .unwrap_or_default();
    let expected = crate::base64::encode(format!("{user}:{}", password.expose()).as_bytes());
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn unauthorised() -> Response {
    let mut response = Error::new(
        Code::Unauthenticated,
        "Webhook credentials are missing or wrong.",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"ccai-webhooks\""),
    );
    response
}

/// The credentials configured for `channel`'s events, or why they are off.
fn credentials(state: &AppState, channel: Channel) -> Result<(&str, &Secret), Error> {
    let config = &state.config;
    let (user, password, flag) = match channel {
        Channel::Voice => (
            &config.call_webhook_user,
            &config.call_webhook_password,
            "--call-webhook-user and --call-webhook-password",
        ),
        Channel::Chat => (
            &config.chat_webhook_user,
            &config.chat_webhook_password,
            "--chat-webhook-user and --chat-webhook-password",
        ),
    };
    match (user, password) {
        (Some(user), Some(password)) => Ok((user, password)),
        _ => Err(Error::new(
            Code::WebhooksDisabled,
            format!("This gateway does not take these session events (no {flag})."),
        )),
    }
}

/// Checks the credentials, then reads the body.
async fn authorised_body(
    state: &AppState,
    request: Request,
    channel: Channel,
) -> Result<Result<axum::body::Bytes, Response>, Error> {
    let (user, password) = credentials(state, channel)?;
    // An address that keeps sending wrong credentials is refused before they are compared.
    let client = super::auth::client_addr(state, request.extensions(), request.headers()).0;
    let failures = &state.throttles.webhook_failures_by_address;
    if let Some(address) = client {
        failures.check(&address).map_err(Error::too_many_attempts)?;
    }
    // Checked before the body is read: a stranger's body is never parsed.
    if !authorised(request.headers(), user, password) {
        if let Some(address) = client {
            failures.failed(&address);
            tracing::warn!(%address, "webhook with missing or wrong credentials");
        }
        return Ok(Err(unauthorised()));
    }
    let body = axum::body::to_bytes(request.into_body(), MAX_EVENTS_BODY_BYTES)
        .await
        .map_err(|_| {
            Error::new(
                Code::BodyTooLarge,
                format!("A webhook body is at most {MAX_EVENTS_BODY_BYTES} bytes."),
            )
        })?;
    Ok(Ok(body))
}

/// `POST /webhooks/ccai/calls`.
async fn receive_calls(State(state): State<AppState>, request: Request) -> Response {
    receive_batch(&state, request, Channel::Voice)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /webhooks/ccai/chats`.
async fn receive_chats(State(state): State<AppState>, request: Request) -> Response {
    receive_batch(&state, request, Channel::Chat)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn receive_batch(
    state: &AppState,
    request: Request,
    channel: Channel,
) -> Result<Response, Error> {
    let body = match authorised_body(state, request, channel).await? {
        Ok(body) => body,
        Err(refused) => return Ok(refused),
    };
    let received = webhooks::receive_batch(state, &body, channel).await?;
    Ok(Json(json!({
        "accepted": received.accepted, "duplicates": received.duplicates,
        "unknown_state": received.unknown_state, "refused": received.refused,
    }))
    .into_response())
}

/// `POST /webhooks/ccai/extension`: the simulator's extension.
async fn receive_extension(State(state): State<AppState>, request: Request) -> Response {
    receive_extension_event(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn receive_extension_event(state: &AppState, request: Request) -> Result<Response, Error> {
    if !state.config.ccai_extension {
        return Err(Error::new(
            Code::NotFound,
            "This gateway does not take the simulator's extension events (--ccai-extension).",
        ));
    }
    let body = match authorised_body(state, request, Channel::Voice).await? {
        Ok(body) => body,
        Err(refused) => return Ok(refused),
    };
    let new = webhooks::receive_extension(state, &body).await?;
    Ok(Json(json!({ "duplicate": !new })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_credentials_pass() {
        let password = Secret::new("pw");
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(header::AUTHORIZATION, value);
            }
            authorised(&headers, "hooks", &password)
        };
        assert!(with("Basic aG9va3M6cHc="));
        assert!(with("basic aG9va3M6cHc="));
        assert!(!with("Basic aG9va3M6cHd4"), "hooks:pwx");
        assert!(!with("Bearer aG9va3M6cHc="));
        assert!(!with("Basic "));
        assert!(!with(""));
        assert!(!authorised(&HeaderMap::new(), "hooks", &password));
    }
}
