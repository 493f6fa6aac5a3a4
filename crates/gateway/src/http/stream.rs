//! The agent's event stream as a WebSocket (`GET /api/v1/events`): the client's first message
//! says who it is and where it resumes ([`StreamAuth`]: the session token never goes in the URL,
//! where proxies and logs keep it); then the first messages a resuming client needs, then live
//! events, presence (how many browsers of the agent are open), heartbeats, and a close when the
//! session ends (4001) or the gateway stops (1012). Limits: no auth message within
//! [`AUTH_WITHIN_MS`] closes with 4002; more streams than allowed per agent or per client
//! address ([`crate::stream_limits`]) close with 4029; a client message over
//! [`MAX_CLIENT_MESSAGE_BYTES`] closes with 1009, read no further. The log itself is
//! [`crate::events`].

use std::time::Duration;

use adapter_core::agent_events::{
    close, StreamAuth, StreamMessage, AUTH_WITHIN_MS, MAX_CLIENT_MESSAGE_BYTES,
};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        Query, State,
    },
    response::Response,
    routing::get,
    Router,
};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use super::auth::ClientAddr;
use crate::{
    error::{Code, Error},
    stream_limits::{Slot, TooMany},
    AppState,
};

/// How often an idle stream says it is alive (and the session is checked).
pub const HEARTBEAT: Duration = Duration::from_secs(15);

pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(stream))
}

/// The query a stream's URL may carry: nothing. A token there is refused, not ignored, so a
/// client that still puts it there hears why.
#[derive(Deserialize)]
struct StreamQuery {
    token: Option<String>,
}

/// A browser id as the adapter sends it: 1 to 64 letters, digits or dashes; anything else counts
/// as an unnamed browser of its own.
fn browser_id(raw: Option<&str>, token: &str) -> String {
    match raw {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            id.to_owned()
        }
        // One per session: the same token is the same browser.
        _ => format!("session-{}", &crate::sessions::hash(token)[..16]),
    }
}

/// `GET /api/v1/events`: the agent's event stream, as a WebSocket; the first message
/// authenticates it.
async fn stream(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Query(query): Query<StreamQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, Error> {
    if query.token.is_some() {
        return Err(Error::new(
            Code::BadRequest,
            "The session token goes in the stream's first message, never in its URL.",
        ));
    }
    // Taken before the upgrade, so connections waiting for their auth message count too.
    // Without connection info (never the case in `Gateway::serve`), every client shares one.
    let client = client.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let slot = state.stream_limits.connection(client);
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _open = OpenSocket::count();
            match slot {
                Ok(slot) => authenticated(socket, state, slot).await,
                Err(too_many) => refuse_too_many(socket, too_many).await,
            }
        }))
}

async fn refuse_too_many(mut socket: WebSocket, too_many: TooMany) {
    metrics::counter!("gateway_stream_refusals_total", "why" => match too_many {
        TooMany::Agent(_) => "per_agent",
        TooMany::Address(_) => "per_address",
    })
    .increment(1);
    tracing::warn!("event stream refused: {too_many}");
    close_with(&mut socket, close::TOO_MANY_STREAMS, &too_many.to_string()).await;
}

/// Sends a close frame (best effort: the client may be gone).
async fn close_with(socket: &mut WebSocket, code: u16, reason: &str) {
    // A close reason is at most 123 bytes.
    let reason: String = reason.chars().take(120).collect();
    let close = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(close))).await;
}

/// What the first message said, or why there is none.
enum FirstMessage {
    Auth(StreamAuth),
    Refused(u16, &'static str),
    Gone,
}

/// Waits up to [`AUTH_WITHIN_MS`] for the client's auth message.
async fn first_message(socket: &mut WebSocket) -> FirstMessage {
    let wait = tokio::time::timeout(Duration::from_millis(AUTH_WITHIN_MS), async {
        loop {
            match socket.recv().await {
                None | Some(Ok(Message::Close(_))) => return FirstMessage::Gone,
                Some(Err(error)) => return read_failure(&error),
                Some(Ok(Message::Text(text))) => {
                    return match serde_json::from_str::<StreamAuth>(text.as_str()) {
                        Ok(auth) => FirstMessage::Auth(auth),
                        Err(_) => FirstMessage::Refused(
                            close::AUTH_REQUIRED,
                            "the first message must be {\"type\":\"auth\",\"token\":…}",
                        ),
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    return FirstMessage::Refused(
                        close::AUTH_REQUIRED,
                        "the first message must be JSON text",
                    )
                }
                // Pings and pongs are not messages.
                Some(Ok(_)) => {}
            }
        }
    });
    match wait.await {
        Ok(first) => first,
        Err(_) => FirstMessage::Refused(
            close::AUTH_REQUIRED,
            "no auth message within 5 s of opening the stream",
        ),
    }
}

/// Why reading the client failed, as a close: a message over the size cap (refused from its
/// header, before its payload is read), or a broken connection.
fn read_failure(error: &axum::Error) -> FirstMessage {
    use tungstenite::error::{CapacityError, Error as WsError};
    let inner = std::error::Error::source(error).and_then(|e| e.downcast_ref::<WsError>());
    match inner {
        Some(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
            FirstMessage::Refused(close::TOO_BIG, "message too big")
        }
        _ => FirstMessage::Gone,
    }
}

/// Authenticates the socket, counts it against its agent's cap, then serves the agent's events.
async fn authenticated(mut socket: WebSocket, state: AppState, mut slot: Slot) {
    let auth = match first_message(&mut socket).await {
        FirstMessage::Auth(auth) => auth,
        FirstMessage::Refused(code, reason) => {
            tracing::info!(code, reason, "event stream closed before it authenticated");
            return close_with(&mut socket, code, reason).await;
        }
        FirstMessage::Gone => return,
    };
    let session = match super::auth::live_session(&state, &auth.token).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return close_with(&mut socket, close::SESSION_ENDED, "session ended").await;
        }
        Err(error) => {
            tracing::warn!(%error, "event stream: the session could not be read");
            return close_with(
                &mut socket,
                close::UNAVAILABLE,
                "the gateway cannot read sessions now",
            )
            .await;
        }
    };
    let agent_id = session.ccai_agent_id;
    if let Err(too_many) = slot.agent(agent_id) {
        return refuse_too_many(socket, too_many).await;
    }
    let resume = auth.epoch.zip(auth.after);
    let browser = browser_id(auth.browser.as_deref(), &auth.token);
    let presence = state.events.join(agent_id, &browser);
    let hub = state.events.clone();
    serve(socket, state, agent_id, auth.token, resume, presence).await;
    hub.leave(agent_id, &browser);
    drop(slot);
}

/// Counts an open socket in `gateway_stream_sockets` while it lives, however it ends.
struct OpenSocket;

impl OpenSocket {
    fn count() -> Self {
        metrics::gauge!("gateway_stream_sockets").increment(1.0);
        OpenSocket
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        metrics::gauge!("gateway_stream_sockets").decrement(1.0);
    }
}

async fn send(socket: &mut WebSocket, message: &StreamMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

fn seq_of(message: &StreamMessage) -> Option<u64> {
    match message {
        StreamMessage::Snapshot { seq, .. }
        | StreamMessage::Event { seq, .. }
        | StreamMessage::Heartbeat { seq, .. } => Some(*seq),
        StreamMessage::Presence { .. } => None,
    }
}

async fn serve(
    mut socket: WebSocket,
    state: AppState,
    agent_id: i64,
    token: String,
    resume: Option<(u64, u64)>,
    mut presence: watch::Receiver<u32>,
) {
    let hub = state.events.clone();
    let (first, mut live) = hub.subscribe(agent_id, resume);
    let mut seq = resume.map_or(0, |(_, after)| after);
    for message in &first {
        if !send(&mut socket, message).await {
            return;
        }
        seq = seq_of(message).unwrap_or(seq);
    }
    let browsers = *presence.borrow_and_update();
    if browsers > 1 && !send(&mut socket, &StreamMessage::Presence { browsers }).await {
        return;
    }
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    let mut closing = hub.closing();
    loop {
        tokio::select! {
            changed = presence.changed() => {
                if changed.is_err() {
                    continue;
                }
                let browsers = *presence.borrow_and_update();
                if !send(&mut socket, &StreamMessage::Presence { browsers }).await {
                    break;
                }
            }
            changed = closing.changed() => {
                if changed.is_ok() && !*closing.borrow_and_update() {
                    continue;
                }
                close_with(&mut socket, close::RESTARTING, "gateway restarting").await;
                break;
            }
            received = live.recv() => {
                let message = match received {
                    Ok((event_seq, _)) if event_seq <= seq => continue,
                    Ok((event_seq, event)) => StreamMessage::Event { epoch: hub.epoch(), seq: event_seq, event },
                    // Too slow to keep up: start again from the state.
                    Err(broadcast::error::RecvError::Lagged(_)) => hub.snapshot(agent_id),
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                seq = seq_of(&message).unwrap_or(seq);
                if !send(&mut socket, &message).await {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                if !matches!(super::auth::live_session(&state, &token).await, Ok(Some(_))) {
                    close_with(&mut socket, close::SESSION_ENDED, "session ended").await;
                    break;
                }
                if !send(&mut socket, &StreamMessage::Heartbeat { epoch: hub.epoch(), seq }).await {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Ok(Message::Close(_))) => break,
                Some(Err(error)) => {
                    if let FirstMessage::Refused(code, reason) = read_failure(&error) {
                        close_with(&mut socket, code, reason).await;
                    }
                    break;
                }
                // The client has nothing more to say; what it sends is read (within the cap)
                // and dropped.
                Some(Ok(_)) => {}
            },
        }
    }
}
