//! `POST /webhooks/ccai`: the CCAI Platform's session webhooks in. HTTP Basic with the
//! configured user and password (compared in constant time), the body decoded by
//! [`adapter_core::session_webhook`], deduplicated by `event_id` in the store, then published on
//! the agent's event stream as the call and the agent's statuses.

use adapter_core::{
    agent_events::AgentEvent,
    session_webhook::{self, SessionWebhook},
};
use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{api::ApiError, ccai::CcaiApi, config::Secret, http::MAX_BODY_BYTES, AppState};

/// How long received event ids are remembered (pruned at startup).
pub const KEEP_DAYS: i64 = 7;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, for the expected `Authorization` header.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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
    let expected = base64(format!("{user}:{}", password.expose()).as_bytes());
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
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "Webhook credentials are missing or wrong.",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"ccai-webhooks\""),
    );
    response
}

/// The agent the webhook is about: its id, else its email through the CCAI directory.
async fn agent_id(state: &AppState, webhook: &SessionWebhook) -> Result<Option<i64>, ApiError> {
    let Some(agent) = &webhook.agent else {
        return Ok(None);
    };
    if let Some(id) = agent.id {
        return Ok(Some(id));
    }
    match &agent.email {
        Some(email) => Ok(state.ccai.agent_id(email).await?),
        None => Ok(None),
    }
}

/// `POST /webhooks/ccai`.
pub async fn receive(State(state): State<AppState>, request: Request) -> Response {
    match handle(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let (Some(user), Some(password)) = (&state.config.webhook_user, &state.config.webhook_password)
    else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_disabled",
            "This gateway does not take webhooks (no --webhook-user and --webhook-password).",
        ));
    };
    // Checked before the body is read: a stranger's body is never parsed.
    if !authorised(request.headers(), user, password) {
        return Ok(unauthorised());
    }
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("A webhook body is at most {MAX_BODY_BYTES} bytes."),
            )
        })?;
    let webhook = session_webhook::decode(&body)
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, "invalid_webhook", error.0))?;
    // Before recording it: when the directory cannot be read, the platform retries later and
    // the event is then processed, not dropped as a replay.
    let agent_id = agent_id(state, &webhook).await?;
    let payload = String::from_utf8_lossy(&body);
    let new = state
        .store
        .record_webhook(
            &webhook.event_id,
            &webhook.event_type(),
            agent_id,
            &payload,
            crate::sessions::now_ms(),
        )
        .await?;
    if !new {
        tracing::info!(
            event_id = webhook.event_id,
            "webhook replayed; already processed"
        );
        return Ok(Json(json!({ "duplicate": true })).into_response());
    }
    // Recorded with its CRM inbox row (one transaction): plan it now.
    state.crm.wake();
    tracing::info!(
        event_id = webhook.event_id,
        event_type = webhook.event_type(),
        session_id = webhook.session.id,
        agent_id,
        "webhook received"
    );
    if let Some(agent_id) = agent_id {
        if let Some(call) = webhook.call_view() {
            state.events.publish(agent_id, AgentEvent::Call(call));
        }
        if let Some(AgentEvent::StatusChanged {
            status,
            next_status,
        }) = webhook.status_event()
        {
            let changed = status.clone().filter(|_| next_status.is_none());
            if state
                .events
                .publish_status(agent_id, status, next_status)
                .is_some()
            {
                // The platform changed the status (e.g. the next status after wrap-up).
                if let Some(status) = changed {
                    if let Ok(statuses) = state.ccai.user_statuses().await {
                        state
                            .inheritance
                            .write_back(state, agent_id, &status, &statuses)
                            .await;
                    }
                }
            }
        }
    } else if webhook.agent.is_some() {
        tracing::warn!(
            event_id = webhook.event_id,
            "webhook for an agent the CCAI directory does not know; recorded, not published"
        );
    }
    Ok(Json(json!({ "duplicate": false, "agent_id": agent_id })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("demo:sim-token", "ZGVtbzpzaW0tdG9rZW4="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

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
