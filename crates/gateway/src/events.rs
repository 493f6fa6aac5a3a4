//! Agent events: a per-agent, numbered log (the newest [`BUFFER`] events and the folded state),
//! fanned out live to the adapter's WebSocket, and written behind to SQLite so that a restart
//! of the gateway loses nothing: the epoch and the numbering carry on.
//!
//! Resuming with `epoch` and `after` gets exactly the missed events when they are all still in
//! the buffer, and a full snapshot otherwise (another epoch after the store was lost, a gap, or
//! a client too slow to keep up). Publishing never waits for a client nor for the disk.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use adapter_core::agent_events::{AgentEvent, AgentState, CallView, StreamMessage};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        Query, State,
    },
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;
use sqlx::SqlitePool;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{api::ApiError, store::StoreError, AppState};

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

/// What the writer is asked to do, in publishing order.
enum Write {
    Event {
        agent_id: i64,
        seq: u64,
        event: String,
        state: String,
    },
    /// Answered once everything sent before is on disk.
    Flush(oneshot::Sender<()>),
}

/// Every agent's event log. Cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    epoch: u64,
    agents: Arc<Mutex<HashMap<i64, AgentLog>>>,
    /// The write-behind to the store; `None` keeps the log in memory only.
    writer: Option<mpsc::UnboundedSender<Write>>,
    /// Set when the gateway stops: the streams close so that the server can finish.
    closing: Arc<watch::Sender<bool>>,
    /// Per agent: open streams per browser, and how many browsers that makes.
    presence: Arc<Mutex<HashMap<i64, Presence>>>,
}

struct Presence {
    streams: HashMap<String, usize>,
    browsers: watch::Sender<u32>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl EventHub {
    /// A log in memory only; `epoch` must change whenever past events are forgotten.
    pub fn new(epoch: u64) -> Self {
        EventHub {
            epoch,
            agents: Arc::default(),
            writer: None,
            closing: Arc::new(watch::channel(false).0),
            presence: Arc::default(),
        }
    }

    /// The log kept in `pool`: loads every agent's state and newest events, and writes new
    /// events behind. The epoch is the store's: it changes only with a new store.
    pub async fn open(pool: SqlitePool) -> Result<Self, StoreError> {
        let epoch = match sqlx::query_as::<_, (String,)>(
            "SELECT value FROM gateway_meta WHERE key = 'event_epoch'",
        )
        .fetch_optional(&pool)
        .await?
        .and_then(|(value,)| value.parse::<u64>().ok())
        {
            Some(epoch) => epoch,
            None => {
                let mut bytes = [0u8; 8];
                getrandom::getrandom(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
                // 48 bits: exact as a JavaScript number.
                let epoch = (u64::from_le_bytes(bytes) >> 16).max(1);
                sqlx::query(
                    "INSERT OR REPLACE INTO gateway_meta (key, value) VALUES ('event_epoch', ?)",
                )
                .bind(epoch.to_string())
                .execute(&pool)
                .await?;
                epoch
            }
        };
        let mut agents = HashMap::new();
        let states: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT agent_id, last_seq, state FROM agent_state")
                .fetch_all(&pool)
                .await?;
        for (agent_id, last_seq, state) in states {
            let mut log = AgentLog::new();
            log.last_seq = u64::try_from(last_seq).unwrap_or_default();
            match serde_json::from_str(&state) {
                Ok(state) => log.state = state,
                Err(error) => {
                    tracing::warn!(agent_id, %error, "stored agent state unreadable: starting from an empty state");
                }
            }
            let events: Vec<(i64, String)> = sqlx::query_as(
                "SELECT seq, event FROM agent_events WHERE agent_id = ? ORDER BY seq DESC LIMIT ?",
            )
            .bind(agent_id)
            .bind(BUFFER as i64)
            .fetch_all(&pool)
            .await?;
            for (seq, event) in events.into_iter().rev() {
                match serde_json::from_str::<AgentEvent>(&event) {
                    Ok(event) => log
                        .buffer
                        .push_back((u64::try_from(seq).unwrap_or_default(), event)),
                    // A hole in the buffer would make a resume skip it: keep only what follows.
                    Err(error) => {
                        tracing::warn!(agent_id, seq, %error, "stored agent event unreadable");
                        log.buffer.clear();
                    }
                }
            }
            agents.insert(agent_id, log);
        }
        tracing::info!(epoch, agents = agents.len(), "agent event logs loaded");
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write_behind(pool, receiver));
        Ok(EventHub {
            epoch,
            agents: Arc::new(Mutex::new(agents)),
            writer: Some(sender),
            closing: Arc::new(watch::channel(false).0),
            presence: Arc::default(),
        })
    }

    /// Waits until every event published so far is in the store.
    pub async fn flush(&self) {
        if let Some(writer) = &self.writer {
            let (done, wait) = oneshot::channel();
            if writer.send(Write::Flush(done)).is_ok() {
                let _ = wait.await;
            }
        }
    }

    fn presence(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Presence>> {
        self.presence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A stream of `agent_id` opened from `browser`: the number of the agent's browsers, to
    /// watch.
    pub fn join(&self, agent_id: i64, browser: &str) -> watch::Receiver<u32> {
        let mut presence = self.presence();
        let entry = presence.entry(agent_id).or_insert_with(|| Presence {
            streams: HashMap::new(),
            browsers: watch::channel(0).0,
        });
        *entry.streams.entry(browser.to_owned()).or_default() += 1;
        let count = u32::try_from(entry.streams.len()).unwrap_or(u32::MAX);
        entry
            .browsers
            .send_if_modified(|n| std::mem::replace(n, count) != count);
        entry.browsers.subscribe()
    }

    /// A stream of `agent_id` from `browser` closed.
    pub fn leave(&self, agent_id: i64, browser: &str) {
        let mut presence = self.presence();
        let Some(entry) = presence.get_mut(&agent_id) else {
            return;
        };
        if let Some(streams) = entry.streams.get_mut(browser) {
            *streams = streams.saturating_sub(1);
            if *streams == 0 {
                entry.streams.remove(browser);
            }
        }
        let count = u32::try_from(entry.streams.len()).unwrap_or(u32::MAX);
        entry
            .browsers
            .send_if_modified(|n| std::mem::replace(n, count) != count);
        if entry.streams.is_empty() {
            presence.remove(&agent_id);
        }
    }

    /// Closes every stream (the gateway is stopping; adapters reconnect to the next one).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
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
        self.append(agent_id, log, event)
    }

    fn append(&self, agent_id: i64, log: &mut AgentLog, event: AgentEvent) -> u64 {
        log.last_seq += 1;
        event.apply(&mut log.state);
        if log.buffer.len() == BUFFER {
            log.buffer.pop_front();
        }
        log.buffer.push_back((log.last_seq, event.clone()));
        if let Some(writer) = &self.writer {
            // Sent under the log's lock: the writer sees the events in publishing order.
            match (
                serde_json::to_string(&event),
                serde_json::to_string(&log.state),
            ) {
                (Ok(event), Ok(state)) => {
                    if writer
                        .send(Write::Event {
                            agent_id,
                            seq: log.last_seq,
                            event,
                            state,
                        })
                        .is_err()
                    {
                        tracing::error!(
                            agent_id,
                            "the event store writer has stopped: this event lives in memory only"
                        );
                    }
                }
                (Err(error), _) | (_, Err(error)) => {
                    tracing::error!(agent_id, %error, "an agent event could not be encoded for the store");
                }
            }
        }
        // No receiver is not an error: the agent's adapter may be offline.
        let _ = log.live.send((log.last_seq, event));
        log.last_seq
    }

    /// Publishes the event `make` builds from the agent's state, read and appended under one
    /// lock: a read-merge-publish (a call's new state on what the stream shows of it) cannot
    /// overwrite what another task published in between. `None` publishes nothing.
    pub fn publish_with(
        &self,
        agent_id: i64,
        make: impl FnOnce(&AgentState) -> Option<AgentEvent>,
    ) -> Option<u64> {
        let mut agents = self.agents();
        let log = agents.entry(agent_id).or_insert_with(AgentLog::new);
        let event = make(&log.state)?;
        Some(self.append(agent_id, log, event))
    }

    /// Every agent the log knows (restored or seen since).
    pub fn agent_ids(&self) -> Vec<i64> {
        self.agents().keys().copied().collect()
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
        Some(self.append(
            agent_id,
            log,
            AgentEvent::StatusChanged {
                status,
                next_status,
            },
        ))
    }

    /// The agent whose current or last call is `call_id`, and that call.
    pub fn call_owner(&self, call_id: i64) -> Option<(i64, CallView)> {
        self.agents().iter().find_map(|(agent_id, log)| {
            [log.state.call.as_ref(), log.state.last_call.as_ref()]
                .into_iter()
                .flatten()
                .find(|c| c.call_id == call_id)
                .map(|c| (*agent_id, c.clone()))
        })
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

/// Writes events in order, in batches of whatever is waiting; a failed write is logged and
/// the log carries on in memory.
async fn write_behind(pool: SqlitePool, mut receiver: mpsc::UnboundedReceiver<Write>) {
    let mut batch = Vec::new();
    while receiver.recv_many(&mut batch, 512).await > 0 {
        let mut flushed = Vec::new();
        let mut events = Vec::new();
        for write in batch.drain(..) {
            match write {
                Write::Event {
                    agent_id,
                    seq,
                    event,
                    state,
                } => events.push((agent_id, seq as i64, event, state)),
                Write::Flush(done) => flushed.push(done),
            }
        }
        if !events.is_empty() {
            if let Err(error) = write_events(&pool, &events).await {
                tracing::error!(%error, count = events.len(), "agent events not stored (they stay in memory)");
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

async fn write_events(
    pool: &SqlitePool,
    events: &[(i64, i64, String, String)],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for (agent_id, seq, event, state) in events {
        sqlx::query("INSERT OR REPLACE INTO agent_events (agent_id, seq, event) VALUES (?, ?, ?)")
            .bind(agent_id)
            .bind(seq)
            .bind(event)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO agent_state (agent_id, last_seq, state) VALUES (?, ?, ?) \
             ON CONFLICT (agent_id) DO UPDATE SET last_seq = excluded.last_seq, state = excluded.state",
        )
        .bind(agent_id)
        .bind(seq)
        .bind(state)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM agent_events WHERE agent_id = ? AND seq <= ?")
            .bind(agent_id)
            .bind(seq - BUFFER as i64)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

#[derive(Deserialize)]
pub struct StreamQuery {
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
    let browser = browser_id(query.browser.as_deref(), &query.token);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let agent_id = session.ccai_agent_id;
        let presence = state.events.join(agent_id, &browser);
        let hub = state.events.clone();
        serve(socket, state, agent_id, query.token, resume, presence).await;
        hub.leave(agent_id, &browser);
    }))
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
    let mut closing = hub.closing.subscribe();
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
                StreamMessage::Presence { browsers } => ('P', u64::from(*browsers)),
            })
            .collect()
    }

    #[tokio::test]
    async fn the_log_survives_a_restart_with_its_epoch_and_numbering() {
        let dir = std::env::temp_dir().join(format!("adapter-events-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = crate::store::Store::open(&dir).await.unwrap();
        let hub = EventHub::open(store.pool()).await.unwrap();
        for name in ["a", "b", "c"] {
            hub.publish(1, status(name));
        }
        for i in 0..(BUFFER + 5) {
            hub.publish(2, status(&format!("s{i}")));
        }
        hub.flush().await;
        let (epoch, state) = (hub.epoch(), hub.state(1));
        drop(hub);
        store.close().await;

        let store = crate::store::Store::open(&dir).await.unwrap();
        let hub = EventHub::open(store.pool()).await.unwrap();
        assert_eq!(hub.epoch(), epoch, "same store, same epoch");
        assert!(epoch < 1 << 48, "exact in JavaScript");
        assert_eq!(hub.state(1), state);
        let (first, _) = hub.subscribe(1, Some((epoch, 1)));
        assert_eq!(seqs(&first), [('E', 2), ('E', 3)]);
        assert_eq!(hub.publish(1, status("d")), 4, "numbering carries on");
        // Past the buffer, only the newest events were kept.
        let (first, _) = hub.subscribe(2, Some((epoch, 4)));
        assert_eq!(seqs(&first), [('S', BUFFER as u64 + 5)]);
        let (first, _) = hub.subscribe(2, Some((epoch, 5)));
        assert_eq!(first.len(), BUFFER);
        let (rows,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM agent_events WHERE agent_id = 2")
                .fetch_one(&store.pool())
                .await
                .unwrap();
        assert_eq!(rows, BUFFER as i64, "the store keeps the buffer only");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
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
