//! The CCAI Platform's session events in.
//!
//! - `POST /webhooks/ccai/calls` and `POST /webhooks/ccai/chats`: the documented **External
//!   Session Events**, configured separately for calls and chats, each with its own HTTP Basic
//!   user and password (compared in constant time, checked before the body is read). A batch
//!   (`{"count", "events"}`) is decoded by [`adapter_core::ccai_events`]; every good event is
//!   recorded, deduplicated by `event_id`, in **one transaction before the answer**, and the same
//!   transaction queues it for the CRM sync (a trigger). A bad event is refused on its own and
//!   named in the answer; the good ones of its batch are kept.
//! - Then each new event is published on its agent's stream: the call's state from the
//!   lifecycle stage (assigned → ringing, or dialing for a call the gateway placed; active →
//!   connected; ended → wrap-up; final → ended), and the agent's status from it (active →
//!   In-call or In-chat, ended → Wrap-up); after the final event the agent's status is read
//!   from the agent directory ([`crate::agent_status`]). An event that arrives after a later
//!   one of its session is recorded (the CRM rules read it) but never takes the call back.
//! - `POST /webhooks/ccai/extension` (only with `--ccai-extension`, the call events'
//!   credentials): the simulator's extension for what the public APIs do not document
//!   (the offer ringing, in-call changes, missed offers, SmartAction results, CSAT comments, chat transcripts,
//!   voicemail read/dismissed/called back), in the gateway's own event shape
//!   ([`adapter_core::session_webhook`]). Events the documented ones cover are refused there.

use adapter_core::{
    agent_events::{AgentEvent, CallState, CallView, Channel, Direction, StatusView},
    ccai_events::{self, SessionEvent, Stage},
    session_webhook::{self, EventKind},
};
use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{api::ApiError, ccai::CcaiApi, config::Secret, AppState};

/// Largest session events POST: a backlog batch of the most events the decoder takes, each a
/// few kilobytes once enriched.
pub const MAX_EVENTS_BODY_BYTES: usize = 2 * 1024 * 1024;

/// How long received event ids are remembered (pruned at startup).
pub const KEEP_DAYS: i64 = 7;

/// The platform's system statuses the lifecycle implies.
const IN_CALL: i64 = -7;
const IN_CHAT: i64 = -8;
const WRAP_UP: i64 = -6;

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

/// The credentials configured for `channel`'s events, or why they are off.
fn credentials(state: &AppState, channel: Channel) -> Result<(&str, &Secret), ApiError> {
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
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_disabled",
            format!("This gateway does not take these session events (no {flag})."),
        )),
    }
}

/// Checks the credentials, then reads the body.
async fn authorised_body(
    state: &AppState,
    request: Request,
    channel: Channel,
) -> Result<Result<axum::body::Bytes, Response>, ApiError> {
    let (user, password) = credentials(state, channel)?;
    // Checked before the body is read: a stranger's body is never parsed.
    if !authorised(request.headers(), user, password) {
        return Ok(Err(unauthorised()));
    }
    let body = axum::body::to_bytes(request.into_body(), MAX_EVENTS_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("A webhook body is at most {MAX_EVENTS_BODY_BYTES} bytes."),
            )
        })?;
    Ok(Ok(body))
}

/// `POST /webhooks/ccai/calls`.
pub async fn receive_calls(State(state): State<AppState>, request: Request) -> Response {
    receive_batch(&state, request, Channel::Voice)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /webhooks/ccai/chats`.
pub async fn receive_chats(State(state): State<AppState>, request: Request) -> Response {
    receive_batch(&state, request, Channel::Chat)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// A new event of a batch, recorded, with what the gateway knows of its session.
struct Recorded {
    event: SessionEvent,
    /// The gateway's id for the session.
    id: i64,
    agent_id: Option<i64>,
    outbound: bool,
    /// Whether it moved the session to a later stage (else it arrived late).
    advanced: bool,
}

/// A batch's good events: recorded (deduplicated by `event_id`, queued for the CRM by the
/// trigger) and shown on their agents' streams, in one transaction of the event log's
/// committer, so that the answer is sent only once both are on disk.
struct Ingest {
    channel: Channel,
    /// Each event, and the JSON stored for it (as the platform sent it).
    events: Vec<(SessionEvent, String)>,
    now: i64,
    /// The tenant's statuses, to name the ones the lifecycle implies.
    statuses: Vec<crate::ccai::UserStatus>,
    agent_status: crate::agent_status::AgentStatus,
}

#[derive(Default)]
struct Ingested {
    accepted: usize,
    duplicates: usize,
    unknown: usize,
    /// Agents whose session became final: their status is read from the directory.
    finals: Vec<i64>,
}

impl crate::events::Work for Ingest {
    type Output = Ingested;

    fn run<'a>(
        &'a mut self,
        batch: &'a mut crate::events::Batch,
    ) -> crate::events::BoxFuture<'a, Result<Ingested, sqlx::Error>> {
        Box::pin(async move {
            let channel_name = ccai_events::channel_name(self.channel);
            let mut out = Ingested::default();
            for (event, payload) in &self.events {
                let stage = event.stage();
                let new = sqlx::query(
                    "INSERT OR IGNORE INTO webhook_events (event_id, event_type, agent_id, payload, received_at_ms) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&event.event_id)
                .bind(format!("{channel_name}.{}", stage.as_str()))
                .bind(event.agent_id())
                .bind(payload)
                .bind(self.now)
                .execute(batch.conn())
                .await?
                .rows_affected()
                    == 1;
                if !new {
                    out.duplicates += 1;
                    continue;
                }
                if stage == Stage::Unknown {
                    out.unknown += 1;
                    tracing::warn!(
                        event_id = event.event_id,
                        "session event in a state this gateway does not know: recorded, not acted on"
                    );
                }
                let id =
                    crate::store::session_id(batch.conn(), channel_name, &event.session_id, false)
                        .await?;
                let (before, agent_before, outbound): (i64, Option<i64>, bool) = sqlx::query_as(
                    "SELECT stage, agent_id, outbound FROM platform_sessions WHERE id = ?",
                )
                .bind(id)
                .fetch_one(batch.conn())
                .await?;
                let rank = stage as i64;
                // A late event (an earlier stage than seen) never changes the session's agent.
                sqlx::query(
                    "UPDATE platform_sessions SET agent_id = CASE WHEN ? >= stage THEN COALESCE(?, agent_id) ELSE agent_id END,
                                                 stage = MAX(stage, ?) WHERE id = ?",
                )
                .bind(rank)
                .bind(event.agent_id())
                .bind(rank)
                .bind(id)
                .execute(batch.conn())
                .await?;
                out.accepted += 1;
                let recorded = Recorded {
                    agent_id: event.agent_id().or(agent_before),
                    advanced: rank > before,
                    event: event.clone(),
                    id,
                    outbound,
                };
                if let Some(agent_id) = self.show(batch, &recorded).await? {
                    out.finals.push(agent_id);
                }
            }
            Ok(out)
        })
    }
}

impl Ingest {
    /// Shows a recorded event on its agent's stream: the call, and the status the lifecycle
    /// implies. Returns the agent when the session became final.
    async fn show(
        &self,
        batch: &mut crate::events::Batch,
        recorded: &Recorded,
    ) -> Result<Option<i64>, sqlx::Error> {
        let Some(agent_id) = recorded.agent_id else {
            return Ok(None);
        };
        if !recorded.advanced {
            tracing::info!(
                event_id = recorded.event.event_id,
                "session event arrived after a later one of its session: recorded, not shown"
            );
            return Ok(None);
        }
        let stage = recorded.event.stage();
        let mut shown = true;
        batch
            .append_with(agent_id, |current| {
                // Another session's late news never replaces the call the agent is in (a new
                // call's assignment does: it rings while the last one is in wrap-up).
                let other_live_call = current.call.as_ref().is_some_and(|call| {
                    call.call_id != recorded.id
                        && !call.state.is_over()
                        && call.state != CallState::WrapUp
                });
                if other_live_call && stage != Stage::Assigned {
                    shown = false;
                    return None;
                }
                let base = [current.call.as_ref(), current.last_call.as_ref()]
                    .into_iter()
                    .flatten()
                    .find(|c| c.call_id == recorded.id)
                    .cloned();
                call_view(recorded, base).map(AgentEvent::Call)
            })
            .await?;
        if !shown {
            tracing::info!(
                event_id = recorded.event.event_id,
                "session event for a call the agent is no longer in: recorded, not shown"
            );
            return Ok(None);
        }
        let implied = match (stage, recorded.event.channel) {
            (Stage::Active, Channel::Voice) => Some(IN_CALL),
            (Stage::Active, Channel::Chat) => Some(IN_CHAT),
            (Stage::Ended, _) => Some(WRAP_UP),
            // The platform leaves wrap-up for the next status, or Available: read which.
            (Stage::Final, _) => return Ok(Some(agent_id)),
            _ => None,
        };
        if let Some(id) = implied {
            let status = named(id, &self.statuses);
            // A directory read already under way must not undo what the lifecycle just said.
            self.agent_status.touched(agent_id);
            // The next status is the stream's at this point (an agent may have chosen one).
            batch
                .append_with(agent_id, |current| {
                    (current.status.as_ref() != Some(&status)).then(|| AgentEvent::StatusChanged {
                        status: Some(status),
                        next_status: current.next_status.clone(),
                    })
                })
                .await?;
        }
        Ok(None)
    }
}

async fn receive_batch(
    state: &AppState,
    request: Request,
    channel: Channel,
) -> Result<Response, ApiError> {
    let body = match authorised_body(state, request, channel).await? {
        Ok(body) => body,
        Err(refused) => return Ok(refused),
    };
    let decoded = ccai_events::decode_batch(&body, channel)
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, "invalid_webhook", error.0))?;
    // Each event is stored as the platform sent it (the decoder checked the envelope).
    let raw: Vec<Value> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|mut v| v.get_mut("events").map(Value::take))
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let channel_name = ccai_events::channel_name(channel);
    let mut refused = Vec::new();
    let mut events = Vec::new();
    for (index, outcome) in decoded.into_iter().enumerate() {
        match outcome {
            Ok(event) => {
                let payload = ccai_events::stored(channel, raw.get(index).unwrap_or(&Value::Null));
                events.push((event, payload));
            }
            Err(refusal) => {
                tracing::warn!(
                    index,
                    event_id = refusal.event_id,
                    reason = refusal.reason,
                    "session event refused"
                );
                refused.push(json!({
                    "index": refusal.index, "event_id": refusal.event_id, "reason": refusal.reason,
                }));
            }
        }
    }
    let implies_status = events
        .iter()
        .any(|(e, _)| matches!(e.stage(), Stage::Active | Stage::Ended));
    let statuses = if implies_status {
        // Cached; when the tenant cannot say, the system statuses keep their own names.
        state.ccai.user_statuses().await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let ingested = if events.is_empty() {
        Ingested::default()
    } else {
        state
            .events
            .write(Ingest {
                channel,
                events,
                now: crate::sessions::now_ms(),
                statuses,
                agent_status: state.agent_status.clone(),
            })
            .await?
    };
    if ingested.accepted > 0 {
        // Recorded with its CRM inbox rows (one transaction): plan them now.
        state.crm.wake();
    }
    for agent_id in &ingested.finals {
        state.agent_status.refresh(*agent_id);
    }
    let Ingested {
        accepted,
        duplicates,
        unknown,
        ..
    } = ingested;
    tracing::info!(
        channel = channel_name,
        accepted,
        duplicates,
        unknown,
        refused = refused.len(),
        "session events received"
    );
    if accepted + duplicates == 0 && !refused.is_empty() {
        // Nothing in the POST could be taken: say so as an error, with every reason.
        let reasons: Vec<String> = refused
            .iter()
            .filter_map(|r| r["reason"].as_str().map(str::to_owned))
            .collect();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_webhook",
            format!("No event could be taken: {}", reasons.join("; ")),
        ));
    }
    Ok(Json(json!({
        "accepted": accepted, "duplicates": duplicates, "unknown_state": unknown, "refused": refused,
    }))
    .into_response())
}

/// The call the agent sees after `event`, built on what the stream already shows of it.
fn call_view(recorded: &Recorded, base: Option<CallView>) -> Option<CallView> {
    let event = &recorded.event;
    let direction = if recorded.outbound {
        Direction::Outbound
    } else {
        base.as_ref().map_or(Direction::Inbound, |b| b.direction)
    };
    let state = match event.stage() {
        Stage::Assigned if direction == Direction::Outbound => CallState::Dialing,
        Stage::Assigned => CallState::Ringing,
        Stage::Active => CallState::Connected,
        Stage::Ended => CallState::WrapUp,
        Stage::Final => CallState::Ended,
        Stage::Unknown | Stage::Started | Stage::Routing => return None,
    };
    let base = base.unwrap_or_default();
    Some(CallView {
        call_id: recorded.id,
        channel: event.channel,
        direction,
        state,
        number: match event.channel {
            Channel::Voice => event.dn.clone().or(base.number),
            Channel::Chat => None,
        },
        conversation_id: base.conversation_id,
        customer_id: base.customer_id,
        connected_at_ms: event.connected_at_ms.or(base.connected_at_ms),
        ended_at_ms: event.ends_at_ms.or(base.ended_at_ms),
        muted: base.muted && state != CallState::Ended,
        needs_agent: false,
        end_reason: base.end_reason,
    })
}

/// `POST /webhooks/ccai/extension`: the simulator's extension (see the module's doc).
pub async fn receive_extension(State(state): State<AppState>, request: Request) -> Response {
    receive_extension_event(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// What the extension may carry: only what the documented events and resources do not.
fn extension_kind(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Offered
            | EventKind::Held
            | EventKind::Resumed
            | EventKind::Muted
            | EventKind::Unmuted
            | EventKind::Dtmf
            | EventKind::Transferred
            | EventKind::Missed
            | EventKind::SmartAction
            | EventKind::Csat
            | EventKind::TranscriptReady
            | EventKind::VoicemailRead
            | EventKind::VoicemailDismissed
            | EventKind::VoicemailCalledBack
    )
}

async fn receive_extension_event(state: &AppState, request: Request) -> Result<Response, ApiError> {
    if !state.config.ccai_extension {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "This gateway does not take the simulator's extension events (--ccai-extension).",
        ));
    }
    let body = match authorised_body(state, request, Channel::Voice).await? {
        Ok(body) => body,
        Err(refused) => return Ok(refused),
    };
    let webhook = session_webhook::decode(&body)
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, "invalid_webhook", error.0))?;
    if !extension_kind(webhook.kind) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_webhook",
            format!(
                "{} is told by the platform's documented session events, not by the extension",
                webhook.event_type()
            ),
        ));
    }
    let (event_id, event_type) = (webhook.event_id.clone(), webhook.event_type());
    let extension = state
        .events
        .write(Extension {
            payload:
                json!({"extension": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)})
                    .to_string(),
            webhook,
            now: crate::sessions::now_ms(),
        })
        .await?;
    let Some(id) = extension else {
        return Ok(Json(json!({ "duplicate": true })).into_response());
    };
    state.crm.wake();
    tracing::info!(
        event_id,
        event_type,
        session = id,
        "extension event received"
    );
    Ok(Json(json!({ "duplicate": false })).into_response())
}

/// An extension event, recorded and shown in one transaction of the event log's committer.
struct Extension {
    webhook: session_webhook::SessionWebhook,
    payload: String,
    now: i64,
}

impl crate::events::Work for Extension {
    /// The session's id, or `None` for a replay.
    type Output = Option<i64>;

    fn run<'a>(
        &'a mut self,
        batch: &'a mut crate::events::Batch,
    ) -> crate::events::BoxFuture<'a, Result<Option<i64>, sqlx::Error>> {
        Box::pin(async move {
            let webhook = &mut self.webhook;
            let channel = ccai_events::channel_name(webhook.channel);
            let id = crate::store::session_id(
                batch.conn(),
                channel,
                &webhook.session.platform_id,
                false,
            )
            .await?;
            webhook.session.id = id;
            let (stage, known_agent): (i64, Option<i64>) =
                sqlx::query_as("SELECT stage, agent_id FROM platform_sessions WHERE id = ?")
                    .bind(id)
                    .fetch_one(batch.conn())
                    .await?;
            let agent_id = webhook.agent.as_ref().and_then(|a| a.id).or(known_agent);
            let new = sqlx::query(
                "INSERT OR IGNORE INTO webhook_events (event_id, event_type, agent_id, payload, received_at_ms) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&webhook.event_id)
            .bind(format!("extension.{}", webhook.event_type()))
            .bind(agent_id)
            .bind(&self.payload)
            .bind(self.now)
            .execute(batch.conn())
            .await?
            .rows_affected()
                == 1;
            if !new {
                return Ok(None);
            }
            // Ringing and in-call changes show only while the call is up: never after it ended.
            let live = stage < Stage::Ended as i64;
            if let (Some(agent_id), true, Some(mut view)) = (agent_id, live, webhook.call_view()) {
                view.call_id = id;
                batch
                    .append_with(agent_id, |current| {
                        if let Some(base) = current.call.as_ref().filter(|c| c.call_id == id) {
                            view.conversation_id = base.conversation_id.clone();
                            view.customer_id = base.customer_id.clone();
                            view.direction = base.direction;
                            view.connected_at_ms = view.connected_at_ms.or(base.connected_at_ms);
                        }
                        Some(AgentEvent::Call(view))
                    })
                    .await?;
            }
            Ok(Some(id))
        })
    }
}

/// The status the agent shows for a platform status id, named as the tenant names it.
pub(crate) fn named(id: i64, statuses: &[crate::ccai::UserStatus]) -> StatusView {
    let name = statuses
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| {
            match id {
                IN_CALL => "In-call",
                IN_CHAT => "In-chat",
                WRAP_UP => "Wrap-up",
                _ => "Unknown",
            }
            .to_owned()
        });
    StatusView { id, name }
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

    #[test]
    fn the_lifecycle_moves_the_call_and_keeps_what_the_stream_knew() {
        let body = serde_json::json!({"count": 6, "events": adapter_core::ccai_events::examples::lifecycle()});
        let events: Vec<SessionEvent> =
            ccai_events::decode_batch(body.to_string().as_bytes(), Channel::Voice)
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect();
        let base = CallView {
            call_id: 9,
            conversation_id: Some("conv-1".into()),
            customer_id: Some("cus-1".into()),
            direction: Direction::Inbound,
            ..CallView::default()
        };
        let states: Vec<Option<CallState>> = events
            .iter()
            .map(|event| {
                let recorded = Recorded {
                    event: event.clone(),
                    id: 9,
                    agent_id: Some(101),
                    outbound: false,
                    advanced: true,
                };
                call_view(&recorded, Some(base.clone())).map(|v| {
                    assert_eq!(v.conversation_id.as_deref(), Some("conv-1"));
                    assert_eq!(v.number.as_deref(), Some("+14155552671"));
                    v.state
                })
            })
            .collect();
        assert_eq!(
            states,
            [
                None,
                None,
                Some(CallState::Ringing),
                Some(CallState::Connected),
                Some(CallState::WrapUp),
                Some(CallState::Ended)
            ]
        );
        let placed = Recorded {
            event: events[2].clone(),
            id: 9,
            agent_id: Some(101),
            outbound: true,
            advanced: true,
        };
        assert_eq!(
            call_view(&placed, None).map(|v| v.state),
            Some(CallState::Dialing)
        );
    }
}
