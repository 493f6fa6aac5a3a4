//! Agent events: a per-agent, numbered log kept in memory (the newest [`BUFFER`] events and the
//! folded state), fanned out live to the adapter's WebSocket.
//!
//! Resuming with `epoch` and `after` gets exactly the missed events when they are all still in
//! the buffer, and a full snapshot otherwise (another epoch after a restart, a gap, or a client
//! too slow to keep up). Publishing never waits for a client.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use adapter_core::agent_events::{AgentEvent, AgentState, StreamMessage};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        Query, State,
    },
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::{api::ApiError, AppState};

/// Events kept per agent for resuming.
pub const BUFFER: usize = 256;
/// How often an idle stream says it is alive (and the session is checked).
pub const HEARTBEAT: Duration = Duration::from_secs(15);

type Live = (u64, AgentEvent);

struct AgentLog {
    last_seq: u64,
    state: AgentState,
    buffer: VecDeque<Live>,
    live: broadcast::Sender<Live>,
}

impl AgentLog {
    fn new() -> Self {
        AgentLog {
            last_seq: 0,
            state: AgentState::default(),
            buffer: VecDeque::with_capacity(BUFFER),
            live: broadcast::channel(BUFFER).0,
        }
    }
}

/// Every agent's event log. Cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    epoch: u64,
    agents: Arc<Mutex<HashMap<i64, AgentLog>>>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl EventHub {
    /// `epoch` must change whenever past events are forgotten (each gateway start).
    pub fn new(epoch: u64) -> Self {
        EventHub {
            epoch,
            agents: Arc::default(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn agents(&self) -> std::sync::MutexGuard<'_, HashMap<i64, AgentLog>> {
        self.agents
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `event` for `agent_id` and sends it to its live streams; returns its number.
    pub fn publish(&self, agent_id: i64, event: AgentEvent) -> u64 {
        let mut agents = self.agents();
        let log = agents.entry(agent_id).or_insert_with(AgentLog::new);
        Self::append(log, event)
    }

    fn append(log: &mut AgentLog, event: AgentEvent) -> u64 {
        log.last_seq += 1;
        event.apply(&mut log.state);
        if log.buffer.len() == BUFFER {
            log.buffer.pop_front();
        }
        log.buffer.push_back((log.last_seq, event.clone()));
        // No receiver is not an error: the agent's adapter may be offline.
        let _ = log.live.send((log.last_seq, event));
        log.last_seq
    }

    /// What the gateway knows of the agent now (the folded state).
    pub fn state(&self, agent_id: i64) -> AgentState {
        self.agents()
            .get(&agent_id)
            .map(|log| log.state.clone())
            .unwrap_or_default()
    }

    /// Publishes the agent's statuses only when they differ from what the log already says,
    /// so repeated reports (every webhook carries them) do not flood the stream.
    pub fn publish_status(
        &self,
        agent_id: i64,
        status: Option<adapter_core::agent_events::StatusView>,
        next_status: Option<adapter_core::agent_events::StatusView>,
    ) -> Option<u64> {
        let mut agents = self.agents();
        let log = agents.entry(agent_id).or_insert_with(AgentLog::new);
        if log.state.status == status && log.state.next_status == next_status {
            return None;
        }
        // Checked and published under one lock: two reports cannot both pass the check.
        Some(Self::append(
            log,
            AgentEvent::StatusChanged {
                status,
                next_status,
            },
        ))
    }

    /// The current state, as a snapshot message.
    pub fn snapshot(&self, agent_id: i64) -> StreamMessage {
        let mut agents = self.agents();
        let log = agents.entry(agent_id).or_insert_with(AgentLog::new);
        StreamMessage::Snapshot {
            epoch: self.epoch,
            seq: log.last_seq,
            state: log.state.clone(),
        }
    }

    /// What a client that has seen `resume` (epoch, seq) must receive first, and a live receiver
    /// subscribed at the same instant, so that no event falls between the two.
    pub fn subscribe(
        &self,
        agent_id: i64,
        resume: Option<(u64, u64)>,
    ) -> (Vec<StreamMessage>, broadcast::Receiver<Live>) {
        let mut agents = self.agents();
        let log = agents.entry(agent_id).or_insert_with(AgentLog::new);
        let receiver = log.live.subscribe();
        let oldest = log.buffer.front().map_or(log.last_seq + 1, |(seq, _)| *seq);
        let first = match resume {
            Some((epoch, after))
                if epoch == self.epoch && after <= log.last_seq && after + 1 >= oldest =>
            {
                log.buffer
                    .iter()
                    .filter(|(seq, _)| *seq > after)
                    .map(|(seq, event)| StreamMessage::Event {
                        epoch: self.epoch,
                        seq: *seq,
                        event: event.clone(),
                    })
                    .collect()
            }
            _ => vec![StreamMessage::Snapshot {
                epoch: self.epoch,
                seq: log.last_seq,
                state: log.state.clone(),
            }],
        };
        (first, receiver)
    }
}

#[derive(Deserialize)]
pub struct StreamQuery {
    /// The session token (a browser cannot set headers on a WebSocket).
    token: String,
    /// Resume: the epoch and the last sequence number the client has seen.
    epoch: Option<u64>,
    after: Option<u64>,
}

/// `GET /api/v1/events?token=..&epoch=..&after=..`: the agent's event stream, as a WebSocket.
pub async fn stream(
    State(state): State<AppState>,
    Query(query): Query<StreamQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = state.sessions.find(&query.token).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "Your session has ended; sign in again.",
        )
    })?;
    let resume = query.epoch.zip(query.after);
    Ok(upgrade
        .on_upgrade(move |socket| serve(socket, state, session.ccai_agent_id, query.token, resume)))
}

async fn send(socket: &mut WebSocket, message: &StreamMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

fn seq_of(message: &StreamMessage) -> u64 {
    match message {
        StreamMessage::Snapshot { seq, .. }
        | StreamMessage::Event { seq, .. }
        | StreamMessage::Heartbeat { seq, .. } => *seq,
    }
}

async fn serve(
    mut socket: WebSocket,
    state: AppState,
    agent_id: i64,
    token: String,
    resume: Option<(u64, u64)>,
) {
    let hub = state.events.clone();
    let (first, mut live) = hub.subscribe(agent_id, resume);
    let mut seq = resume.map_or(0, |(_, after)| after);
    for message in &first {
        if !send(&mut socket, message).await {
            return;
        }
        seq = seq_of(message);
    }
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        tokio::select! {
            received = live.recv() => {
                let message = match received {
                    Ok((event_seq, _)) if event_seq <= seq => continue,
                    Ok((event_seq, event)) => StreamMessage::Event { epoch: hub.epoch(), seq: event_seq, event },
                    // Too slow to keep up: start again from the state.
                    Err(broadcast::error::RecvError::Lagged(_)) => hub.snapshot(agent_id),
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                seq = seq_of(&message);
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

#[cfg(test)]
mod tests {
    use super::*;
    use adapter_core::agent_events::StatusView;

    fn status(name: &str) -> AgentEvent {
        AgentEvent::StatusChanged {
            status: Some(StatusView {
                id: 0,
                name: name.into(),
            }),
            next_status: None,
        }
    }

    fn seqs(messages: &[StreamMessage]) -> Vec<(char, u64)> {
        messages
            .iter()
            .map(|m| match m {
                StreamMessage::Snapshot { seq, .. } => ('S', *seq),
                StreamMessage::Event { seq, .. } => ('E', *seq),
                StreamMessage::Heartbeat { seq, .. } => ('H', *seq),
            })
            .collect()
    }

    #[test]
    fn resume_table() {
        let hub = EventHub::new(7);
        for name in ["a", "b", "c"] {
            hub.publish(1, status(name));
        }
        type Resume = Option<(u64, u64)>;
        type Expected = &'static [(char, u64)];
        let cases: &[(Resume, Expected)] = &[
            (None, &[('S', 3)]),
            (Some((7, 0)), &[('E', 1), ('E', 2), ('E', 3)]),
            (Some((7, 2)), &[('E', 3)]),
            (Some((7, 3)), &[]),
            (Some((7, 9)), &[('S', 3)]),
            (Some((6, 2)), &[('S', 3)]),
        ];
        for (resume, want) in cases {
            let (first, _) = hub.subscribe(1, *resume);
            assert_eq!(seqs(&first), *want, "resume {resume:?}");
        }
    }

    #[test]
    fn past_the_buffer_a_snapshot_carries_the_folded_state() {
        let hub = EventHub::new(1);
        for i in 0..(BUFFER + 10) {
            hub.publish(5, status(&format!("s{i}")));
        }
        let (first, _) = hub.subscribe(5, Some((1, 3)));
        match &first[..] {
            [StreamMessage::Snapshot { seq, state, .. }] => {
                assert_eq!(*seq, (BUFFER + 10) as u64);
                assert_eq!(
                    state.status.as_ref().map(|s| s.name.as_str()),
                    Some(format!("s{}", BUFFER + 9).as_str())
                );
            }
            other => panic!("{other:?}"),
        }
        let (first, _) = hub.subscribe(5, Some((1, 20)));
        assert_eq!(first.len(), BUFFER - 10, "events 21.. are all still there");
    }

    #[test]
    fn a_status_is_published_only_when_it_changes() {
        let hub = EventHub::new(1);
        let view = |name: &str| {
            Some(StatusView {
                id: 0,
                name: name.into(),
            })
        };
        assert_eq!(hub.publish_status(3, view("In-call"), None), Some(1));
        assert_eq!(hub.publish_status(3, view("In-call"), None), None);
        assert_eq!(
            hub.publish_status(3, view("In-call"), view("Break")),
            Some(2)
        );
        assert_eq!(hub.state(3).next_status, view("Break"));
    }

    #[test]
    fn publishing_never_waits_for_readers() {
        let hub = EventHub::new(1);
        let (_, _unread) = hub.subscribe(9, None);
        for i in 0..10_000 {
            hub.publish(9, status(&i.to_string()));
        }
        assert_eq!(seqs(&[hub.snapshot(9)]), [('S', 10_000)]);
    }
}
