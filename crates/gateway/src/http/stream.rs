//! The agent's event stream as a WebSocket (`GET /api/v1/events?token=..&epoch=..&after=..`):
//! the first messages a resuming client needs, then live events, presence (how many browsers of
//! the agent are open), heartbeats, and a close when the session ends (4001) or the gateway
//! stops (1012). The log itself is [`crate::events`].

use std::time::Duration;

use adapter_core::agent_events::StreamMessage;
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

use crate::{error::Error, AppState};

/// How often an idle stream says it is alive (and the session is checked).
pub const HEARTBEAT: Duration = Duration::from_secs(15);

pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(stream))
}

#[derive(Deserialize)]
struct StreamQuery {
    /// The session token (a browser cannot set headers on a WebSocket).
    token: String,
    /// Resume: the epoch and the last sequence number the client has seen.
    epoch: Option<u64>,
    after: Option<u64>,
    /// The adapter's browser (a random id it keeps): several tabs of one browser are one
    /// browser; two browsers of the same agent are told of each other.
    #[serde(default)]
    browser: Option<String>,
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

/// `GET /api/v1/events?token=..&epoch=..&after=..`: the agent's event stream, as a WebSocket.
async fn stream(
    State(state): State<AppState>,
    Query(query): Query<StreamQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, Error> {
    let session = state
        .sessions
        .find(&query.token)
        .await?
        .ok_or_else(Error::session_expired)?;
    let resume = query.epoch.zip(query.after);
    let browser = browser_id(query.browser.as_deref(), &query.token);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let agent_id = session.ccai_agent_id;
        let presence = state.events.join(agent_id, &browser);
        let hub = state.events.clone();
        let _open = OpenSocket::count();
        serve(socket, state, agent_id, query.token, resume, presence).await;
        hub.leave(agent_id, &browser);
    }))
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
                let close = CloseFrame { code: 1012, reason: "gateway restarting".into() };
                let _ = socket.send(Message::Close(Some(close))).await;
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
                if !matches!(state.sessions.find(&token).await, Ok(Some(_))) {
                    let close = CloseFrame { code: 4001, reason: "session ended".into() };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    break;
                }
                if !send(&mut socket, &StreamMessage::Heartbeat { epoch: hub.epoch(), seq }).await {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
