//! Agent events: a per-agent, numbered log (the newest [`BUFFER`] events and the folded state),
//! **durable before anyone sees it**, fanned out live to the adapters' WebSockets.
//!
//! Every event is written to the store by one committer task, in a transaction together with
//! whatever caused it ([`Work`]: a webhook's records, say) and with whatever else is waiting (a
//! group commit: one disk sync for many writers); it is numbered, folded into the agent's state
//! and sent to the streams only once that transaction is committed. So an answered webhook's
//! events are on disk, and a crash can never hand out a sequence number twice under one epoch.
//!
//! Resuming with `epoch` and `after` gets exactly the missed events when they are all still in
//! the buffer, and a full snapshot otherwise (another epoch after the store was lost, a gap, or
//! a client too slow to keep up). Publishing never waits for a client.
//!
//! On PostgreSQL the log is shared by every replica on the database: one replica's batch at a
//! time (an advisory lock held for the transaction), the committer numbers an agent's events
//! from the agent's row, locked in its transaction (`FOR UPDATE`), not from its memory, and
//! announces each agent's newest number with `pg_notify` (delivered on commit).
//! Every replica listens ([`follow`]) and reads from the store the events it has not seen, so a
//! stream on any replica gets every agent's events in order, whichever replica wrote them, and
//! resumes on another replica after a failover. On SQLite the process is alone: its memory is
//! the log's truth.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use adapter_core::agent_events::{AgentEvent, AgentState, CallView, StatusView, StreamMessage};
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::store::StoreError;

/// Events kept per agent for resuming.
pub const BUFFER: usize = 256;
/// Events past the buffer are deleted from the store once every this many events of an agent
/// (the store keeps at most `BUFFER + PRUNE_EVERY` per agent; a restart loads the newest
/// `BUFFER`).
pub const PRUNE_EVERY: u64 = 32;
/// Most pieces of work committed in one transaction: enough to share a disk sync among many
/// writers, few enough that the write lock is soon free for the CRM sync's own writes.
pub const MAX_BATCH: usize = 64;

/// The PostgreSQL channel on which replicas announce `{agent_id}:{seq}`, an agent's newest
/// event committed.
const NOTIFY_CHANNEL: &str = "agent_events";

/// The PostgreSQL advisory lock a replica's committer holds for its transaction ("evt-bat").
const BATCH_LOCK: i64 = 0x0065_7674_2d62_6174;

/// A published event and its number.
pub type Live = (u64, AgentEvent);

/// A boxed future, for [`Work`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// Work that must be durable together with the agent events it causes: it runs inside the
/// committer's transaction ([`Batch::conn`] for its SQL, [`Batch::append_with`] for its events)
/// and its caller gets its output once that transaction is committed. Work that fails is rolled
/// back alone (a savepoint), with its events; the rest of the batch commits.
pub trait Work: Send + 'static {
    type Output: Send + 'static;
    fn run<'a>(
        &'a mut self,
        batch: &'a mut Batch,
    ) -> BoxFuture<'a, Result<Self::Output, sqlx::Error>>;
}

/// An event appended in the open transaction, not yet committed.
struct Pending {
    agent_id: i64,
    seq: u64,
    event: AgentEvent,
    state: AgentState,
}

/// The committer's open transaction, as [`Work`] sees it.
pub struct Batch {
    tx: Transaction<'static, Any>,
    pending: Vec<Pending>,
    shared: Arc<Shared>,
    /// Replicated: each agent's number and state as read (and locked) from the store in this
    /// transaction.
    locked: HashMap<i64, (u64, AgentState)>,
}

impl Batch {
    /// The transaction, for the work's own SQL.
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// Appends the event `make` builds from the agent's state as it is at this point of the
    /// batch (committed, plus what earlier work of the batch appended); `None` appends nothing.
    /// Returns the event's number.
    pub async fn append_with(
        &mut self,
        agent_id: i64,
        make: impl FnOnce(&AgentState) -> Option<AgentEvent>,
    ) -> Result<Option<u64>, sqlx::Error> {
        let (last_seq, mut state) = match self.pending.iter().rev().find(|p| p.agent_id == agent_id)
        {
            Some(p) => (p.seq, p.state.clone()),
            None if self.shared.replicated => self.lock_agent(agent_id).await?,
            None => {
                let agents = self.shared.agents();
                agents
                    .get(&agent_id)
                    .map_or((0, AgentState::default()), |log| {
                        (log.last_seq, log.state.clone())
                    })
            }
        };
        let Some(event) = make(&state) else {
            return Ok(None);
        };
        let seq = last_seq + 1;
        let encoded =
            serde_json::to_string(&event).map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
        sqlx::query("INSERT INTO agent_events (agent_id, seq, event) VALUES ($1, $2, $3) ON CONFLICT (agent_id, seq) DO UPDATE SET event = excluded.event")
            .bind(agent_id)
            .bind(seq as i64)
            .bind(encoded)
            .execute(&mut *self.tx)
            .await?;
        event.apply(&mut state);
        self.pending.push(Pending {
            agent_id,
            seq,
            event,
            state,
        });
        Ok(Some(seq))
    }

    /// Replicated: the agent's number and state as the store has them, its row locked until
    /// this transaction ends, so that no other replica numbers the agent's events meanwhile.
    async fn lock_agent(&mut self, agent_id: i64) -> Result<(u64, AgentState), sqlx::Error> {
        if let Some(locked) = self.locked.get(&agent_id) {
            return Ok(locked.clone());
        }
        let empty = serde_json::to_string(&AgentState::default())
            .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
        // One round trip: the row made when missing, else updated to itself, which locks it
        // as FOR UPDATE would and returns it as it is.
        let (last_seq, state): (i64, String) = sqlx::query_as(
            "INSERT INTO agent_state (agent_id, last_seq, state) VALUES ($1, 0, $2) \
             ON CONFLICT (agent_id) DO UPDATE SET agent_id = excluded.agent_id \
             RETURNING last_seq, state",
        )
        .bind(agent_id)
        .bind(empty)
        .fetch_one(&mut *self.tx)
        .await?;
        let state =
            serde_json::from_str(&state).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
        let locked = (u64::try_from(last_seq).unwrap_or_default(), state);
        self.locked.insert(agent_id, locked.clone());
        Ok(locked)
    }

    /// Writes each touched agent's folded state (once per batch) and forgets events past the
    /// buffer (every [`PRUNE_EVERY`] events of the agent).
    async fn finish(&mut self) -> Result<(), sqlx::Error> {
        // Per agent: the batch's first and last events.
        let mut span: HashMap<i64, (u64, usize)> = HashMap::new();
        for (i, p) in self.pending.iter().enumerate() {
            span.entry(p.agent_id)
                .and_modify(|(_, last)| *last = i)
                .or_insert((p.seq, i));
        }
        for (first, i) in span.into_values() {
            let p = &self.pending[i];
            let state = serde_json::to_string(&p.state)
                .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
            const SAVE: &str = "INSERT INTO agent_state (agent_id, last_seq, state) VALUES ($1, $2, $3) \
                 ON CONFLICT (agent_id) DO UPDATE SET last_seq = excluded.last_seq, state = excluded.state";
            if self.shared.replicated {
                // Saved and announced in one round trip; the announcement is delivered to every
                // listening replica when (and only if) this commits.
                sqlx::query(&format!(
                    "WITH saved AS ({SAVE} RETURNING agent_id) SELECT pg_notify($4, $5) FROM saved"
                ))
                .bind(p.agent_id)
                .bind(p.seq as i64)
                .bind(state)
                .bind(NOTIFY_CHANNEL)
                .bind(format!("{}:{}", p.agent_id, p.seq))
                .execute(&mut *self.tx)
                .await?;
            } else {
                sqlx::query(SAVE)
                    .bind(p.agent_id)
                    .bind(p.seq as i64)
                    .bind(state)
                    .execute(&mut *self.tx)
                    .await?;
            }
            if (first - 1) / PRUNE_EVERY != p.seq / PRUNE_EVERY && p.seq > BUFFER as u64 {
                sqlx::query("DELETE FROM agent_events WHERE agent_id = $1 AND seq <= $2")
                    .bind(p.agent_id)
                    .bind(p.seq as i64 - BUFFER as i64)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        Ok(())
    }
}

/// A piece of work and where its caller waits.
trait AnyJob: Send {
    fn run<'a>(&'a mut self, batch: &'a mut Batch) -> BoxFuture<'a, Result<(), sqlx::Error>>;
    fn done(self: Box<Self>, outcome: Result<(), StoreError>);
}

struct Job<W: Work> {
    work: W,
    output: Option<W::Output>,
    reply: oneshot::Sender<Result<W::Output, StoreError>>,
}

impl<W: Work> AnyJob for Job<W> {
    fn run<'a>(&'a mut self, batch: &'a mut Batch) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            self.output = Some(self.work.run(batch).await?);
            Ok(())
        })
    }

    fn done(self: Box<Self>, outcome: Result<(), StoreError>) {
        let Job { output, reply, .. } = *self;
        let answer = outcome.and_then(|()| {
            output.ok_or_else(|| StoreError::Write("the work gave no result".into()))
        });
        // The caller may have gone (its request was cancelled): the work is committed anyway.
        let _ = reply.send(answer);
    }
}

/// Publishes one event built from the agent's state.
struct Append<F> {
    agent_id: i64,
    make: Option<F>,
}

impl<F> Work for Append<F>
where
    F: FnOnce(&AgentState) -> Option<AgentEvent> + Send + 'static,
{
    type Output = Option<u64>;
    fn run<'a>(
        &'a mut self,
        batch: &'a mut Batch,
    ) -> BoxFuture<'a, Result<Option<u64>, sqlx::Error>> {
        Box::pin(async move {
            match self.make.take() {
                Some(make) => batch.append_with(self.agent_id, make).await,
                None => Ok(None),
            }
        })
    }
}

/// What the hub and the committer share.
struct Shared {
    epoch: u64,
    agents: Mutex<HashMap<i64, AgentLog>>,
    /// The store is shared with other replicas (PostgreSQL): numbers come from the store, and
    /// other replicas' events arrive by notification.
    replicated: bool,
}

impl Shared {
    fn agents(&self) -> std::sync::MutexGuard<'_, HashMap<i64, AgentLog>> {
        self.agents
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes committed events visible: numbered, folded, buffered and sent live, in order.
    /// An event already applied (read back from the store by [`follow`]) is skipped.
    fn apply(&self, pending: Vec<Pending>) {
        let mut agents = self.agents();
        for p in pending {
            let log = agents.entry(p.agent_id).or_insert_with(AgentLog::new);
            if p.seq <= log.last_seq {
                continue;
            }
            log.last_seq = p.seq;
            log.state = p.state;
            if log.buffer.len() == BUFFER {
                log.buffer.pop_front();
            }
            log.buffer.push_back((p.seq, p.event.clone()));
            // No receiver is not an error: the agent's adapter may be offline.
            let _ = log.live.send((p.seq, p.event));
        }
    }

    /// Applies events read back from the store (`events`, in order, from another replica or
    /// this one) after what this replica has of the agent. When the store no longer holds the
    /// next one (pruned while this replica was far behind), the agent's stored state and number
    /// (`stored`) are taken as they are, the buffer is emptied and resumes get a snapshot.
    fn catch_up(&self, agent_id: i64, events: Vec<Live>, stored: Option<(u64, AgentState)>) {
        let mut agents = self.agents();
        let log = agents.entry(agent_id).or_insert_with(AgentLog::new);
        let mut events = events.into_iter().peekable();
        let missing = events.peek().is_none_or(|(seq, _)| *seq > log.last_seq + 1);
        if missing {
            if let Some((last_seq, state)) = stored.filter(|(last_seq, _)| *last_seq > log.last_seq)
            {
                tracing::warn!(
                    agent_id,
                    from = log.last_seq,
                    to = last_seq,
                    "agent events missed past the store's buffer: taking the stored state"
                );
                log.last_seq = last_seq;
                log.state = state;
                log.buffer.clear();
            }
        }
        for (seq, event) in events {
            if seq <= log.last_seq {
                continue;
            }
            if seq != log.last_seq + 1 {
                break;
            }
            event.apply(&mut log.state);
            log.last_seq = seq;
            if log.buffer.len() == BUFFER {
                log.buffer.pop_front();
            }
            log.buffer.push_back((seq, event.clone()));
            let _ = log.live.send((seq, event));
        }
    }

    fn last_seq(&self, agent_id: i64) -> u64 {
        self.agents().get(&agent_id).map_or(0, |log| log.last_seq)
    }
}

/// Every agent's event log. Cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Box<dyn AnyJob>>,
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
            .field("epoch", &self.shared.epoch)
            .finish_non_exhaustive()
    }
}

impl EventHub {
    /// The log kept in `pool`: loads every agent's state and newest events, and starts the
    /// committer. The epoch is the store's: it changes only with a new store.
    pub async fn open(pool: AnyPool) -> Result<Self, StoreError> {
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
                // Two replicas starting on an empty store: the first epoch written is everyone's.
                sqlx::query(
                    "INSERT INTO gateway_meta (key, value) VALUES ('event_epoch', $1) ON CONFLICT (key) DO NOTHING",
                )
                .bind(epoch.to_string())
                .execute(&pool)
                .await?;
                let (stored,): (String,) =
                    sqlx::query_as("SELECT value FROM gateway_meta WHERE key = 'event_epoch'")
                        .fetch_one(&pool)
                        .await?;
                stored.parse().unwrap_or(epoch)
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
                "SELECT seq, event FROM agent_events WHERE agent_id = $1 ORDER BY seq DESC LIMIT $2",
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
        let replicated = crate::store::is_postgres(&pool);
        let shared = Arc::new(Shared {
            epoch,
            agents: Mutex::new(agents),
            replicated,
        });
        let closing = Arc::new(watch::channel(false).0);
        if replicated {
            // Listening before the committer can write: nothing committed after this is missed.
            let listener = crate::store::listen(&pool, &[NOTIFY_CHANNEL]).await?;
            tokio::spawn(follow(
                pool.clone(),
                Arc::downgrade(&shared),
                listener,
                closing.subscribe(),
            ));
        }
        let (jobs, waiting) = mpsc::unbounded_channel();
        tokio::spawn(commit_loop(pool, Arc::clone(&shared), waiting));
        Ok(EventHub {
            shared,
            jobs,
            closing,
            presence: Arc::default(),
        })
    }

    /// Runs `work` in the committer's next transaction; its output once committed.
    pub async fn write<W: Work>(&self, work: W) -> Result<W::Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn AnyJob> = Box::new(Job {
            work,
            output: None,
            reply,
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Write("the event store has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Write("the event store stopped before committing".into()))?
    }

    /// Records `event` for `agent_id` and sends it to its live streams; returns its number.
    pub async fn publish(&self, agent_id: i64, event: AgentEvent) -> Result<u64, StoreError> {
        let seq = self.publish_with(agent_id, move |_| Some(event)).await?;
        seq.ok_or_else(|| StoreError::Write("the event was not appended".into()))
    }

    /// Publishes the event `make` builds from the agent's state, read and appended in the
    /// committer's order: a read-merge-publish (a call's new state on what the stream shows of
    /// it) cannot overwrite what another task published in between. `None` publishes nothing.
    pub async fn publish_with(
        &self,
        agent_id: i64,
        make: impl FnOnce(&AgentState) -> Option<AgentEvent> + Send + 'static,
    ) -> Result<Option<u64>, StoreError> {
        self.write(Append {
            agent_id,
            make: Some(make),
        })
        .await
    }

    /// Publishes the agent's statuses only when they differ from what the log already says,
    /// so repeated reports do not flood the stream.
    pub async fn publish_status(
        &self,
        agent_id: i64,
        status: Option<StatusView>,
        next_status: Option<StatusView>,
    ) -> Result<Option<u64>, StoreError> {
        self.publish_with(agent_id, move |current| {
            (current.status != status || current.next_status != next_status).then_some(
                AgentEvent::StatusChanged {
                    status,
                    next_status,
                },
            )
        })
        .await
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

    /// Whether the gateway is stopping (the streams close then).
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Closes every stream (the gateway is stopping; adapters reconnect to the next one).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    pub fn epoch(&self) -> u64 {
        self.shared.epoch
    }

    /// Every agent the log knows (restored or seen since).
    pub fn agent_ids(&self) -> Vec<i64> {
        self.shared.agents().keys().copied().collect()
    }

    /// What the gateway knows of the agent now (the folded state, as committed).
    pub fn state(&self, agent_id: i64) -> AgentState {
        self.shared
            .agents()
            .get(&agent_id)
            .map(|log| log.state.clone())
            .unwrap_or_default()
    }

    /// The agent whose current or last call is `call_id`, and that call.
    pub fn call_owner(&self, call_id: i64) -> Option<(i64, CallView)> {
        self.shared.agents().iter().find_map(|(agent_id, log)| {
            [log.state.call.as_ref(), log.state.last_call.as_ref()]
                .into_iter()
                .flatten()
                .find(|c| c.call_id == call_id)
                .map(|c| (*agent_id, c.clone()))
        })
    }

    /// The current state, as a snapshot message.
    pub fn snapshot(&self, agent_id: i64) -> StreamMessage {
        let agents = self.shared.agents();
        let (seq, state) = agents
            .get(&agent_id)
            .map_or((0, AgentState::default()), |log| {
                (log.last_seq, log.state.clone())
            });
        StreamMessage::Snapshot {
            epoch: self.shared.epoch,
            seq,
            state,
        }
    }

    /// What a client that has seen `resume` (epoch, seq) must receive first, and a live receiver
    /// subscribed at the same instant, so that no event falls between the two.
    pub fn subscribe(
        &self,
        agent_id: i64,
        resume: Option<(u64, u64)>,
    ) -> (Vec<StreamMessage>, broadcast::Receiver<Live>) {
        let epoch = self.shared.epoch;
        let mut agents = self.shared.agents();
        let log = agents.entry(agent_id).or_insert_with(AgentLog::new);
        let receiver = log.live.subscribe();
        let oldest = log.buffer.front().map_or(log.last_seq + 1, |(seq, _)| *seq);
        let first = match resume {
            Some((e, after)) if e == epoch && after <= log.last_seq && after + 1 >= oldest => log
                .buffer
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(seq, event)| StreamMessage::Event {
                    epoch,
                    seq: *seq,
                    event: event.clone(),
                })
                .collect(),
            _ => vec![StreamMessage::Snapshot {
                epoch,
                seq: log.last_seq,
                state: log.state.clone(),
            }],
        };
        (first, receiver)
    }
}

/// The committer: takes whatever work is waiting (up to [`MAX_BATCH`]), runs it in one
/// transaction, commits, then makes its events visible and answers each caller. It stops when
/// every [`EventHub`] is gone, after the work already sent.
async fn commit_loop(
    pool: AnyPool,
    shared: Arc<Shared>,
    mut waiting: mpsc::UnboundedReceiver<Box<dyn AnyJob>>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        match commit(&pool, &shared, &mut jobs).await {
            Ok((pending, outcomes)) => {
                if shared.replicated {
                    // Another replica's events came before these: read them first, in order.
                    let mut behind: Vec<i64> = pending
                        .iter()
                        .filter(|p| p.seq > shared.last_seq(p.agent_id) + 1)
                        .map(|p| p.agent_id)
                        .collect();
                    behind.sort_unstable();
                    behind.dedup();
                    for agent_id in behind {
                        if let Err(error) = catch_up(&pool, &shared, agent_id).await {
                            tracing::warn!(agent_id, %error, "cannot read back another replica's events");
                        }
                    }
                }
                shared.apply(pending);
                for (job, outcome) in jobs.drain(..).zip(outcomes) {
                    job.done(outcome);
                }
            }
            Err(error) => {
                tracing::error!(%error, work = jobs.len(), "agent events not stored: their writers are told");
                for job in jobs.drain(..) {
                    job.done(Err(StoreError::Write(error.to_string())));
                }
            }
        }
    }
}

type Committed = (Vec<Pending>, Vec<Result<(), StoreError>>);

async fn commit(
    pool: &AnyPool,
    shared: &Arc<Shared>,
    jobs: &mut [Box<dyn AnyJob>],
) -> Result<Committed, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if shared.replicated {
        // One replica's batch at a time: batches lock agents' rows in whatever order their
        // work touches them, and two replicas locking two agents in opposite orders would
        // deadlock (PostgreSQL breaks it after a second, failing one batch).
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(BATCH_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    let mut batch = Batch {
        tx,
        pending: Vec::new(),
        shared: Arc::clone(shared),
        locked: HashMap::new(),
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    // Alone in its batch, work needs no savepoint: its failure rolls the transaction back.
    let alone = jobs.len() == 1;
    for job in jobs.iter_mut() {
        let mark = batch.pending.len();
        if !alone {
            sqlx::query("SAVEPOINT work")
                .execute(&mut *batch.tx)
                .await?;
        }
        match job.run(&mut batch).await {
            Ok(()) => {
                if !alone {
                    sqlx::query("RELEASE work").execute(&mut *batch.tx).await?;
                }
                outcomes.push(Ok(()));
            }
            Err(error) if alone => return Err(error),
            Err(error) => {
                tracing::warn!(%error, "a write failed and was rolled back alone");
                sqlx::query("ROLLBACK TO work")
                    .execute(&mut *batch.tx)
                    .await?;
                sqlx::query("RELEASE work").execute(&mut *batch.tx).await?;
                batch.pending.truncate(mark);
                outcomes.push(Err(StoreError::from(error)));
            }
        }
    }
    batch.finish().await?;
    let Batch { tx, pending, .. } = batch;
    tx.commit().await?;
    Ok((pending, outcomes))
}

/// Reads the agent's events this replica has not applied from the store, and applies them.
async fn catch_up(pool: &AnyPool, shared: &Shared, agent_id: i64) -> Result<(), sqlx::Error> {
    let after = shared.last_seq(agent_id);
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, event FROM agent_events WHERE agent_id = $1 AND seq > $2 ORDER BY seq",
    )
    .bind(agent_id)
    .bind(after as i64)
    .fetch_all(pool)
    .await?;
    let first = rows.first().map(|(seq, _)| *seq);
    let mut events = Vec::with_capacity(rows.len());
    for (seq, event) in rows {
        match serde_json::from_str::<AgentEvent>(&event) {
            Ok(event) => events.push((u64::try_from(seq).unwrap_or_default(), event)),
            Err(error) => {
                tracing::warn!(agent_id, seq, %error, "stored agent event unreadable");
                break;
            }
        }
    }
    // The stored state is needed only when the next event is gone from the store.
    let stored = if first.is_some_and(|seq| seq as u64 != after + 1) || events.is_empty() {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT last_seq, state FROM agent_state WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(pool)
                .await?;
        row.and_then(|(last_seq, state)| {
            Some((
                u64::try_from(last_seq).ok()?,
                serde_json::from_str(&state).ok()?,
            ))
        })
    } else {
        None
    };
    shared.catch_up(agent_id, events, stored);
    Ok(())
}

/// Replicated: applies every agent's events committed by any replica, in order, as they are
/// announced; after the listening connection was lost (announcements missed), every agent the
/// store has further than this replica is read again. Ends when the gateway stops.
async fn follow(
    pool: AnyPool,
    shared: std::sync::Weak<Shared>,
    mut listener: sqlx::postgres::PgListener,
    mut closing: watch::Receiver<bool>,
) {
    loop {
        let announced = tokio::select! {
            _ = closing.wait_for(|closing| *closing) => return,
            announced = listener.try_recv() => announced,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match announced {
            Ok(Some(notification)) => {
                let Some((agent_id, seq)) =
                    notification
                        .payload()
                        .split_once(':')
                        .and_then(|(agent, seq)| {
                            Some((agent.parse::<i64>().ok()?, seq.parse::<u64>().ok()?))
                        })
                else {
                    tracing::warn!(
                        payload = notification.payload(),
                        "unreadable agent event announcement"
                    );
                    continue;
                };
                if seq > shared.last_seq(agent_id) {
                    if let Err(error) = catch_up(&pool, &shared, agent_id).await {
                        tracing::warn!(agent_id, %error, "cannot read another replica's events");
                    }
                }
            }
            // The connection was lost (the next call reconnects): announcements may be missed.
            Ok(None) => {
                tracing::warn!("agent event announcements interrupted: reading every agent again");
                if let Err(error) = catch_up_all(&pool, &shared).await {
                    tracing::warn!(%error, "cannot read the agents' events again");
                }
            }
            Err(error) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%error, "agent event announcements unavailable; retrying in a second");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// Every agent the store has further than this replica, read again.
async fn catch_up_all(pool: &AnyPool, shared: &Shared) -> Result<(), sqlx::Error> {
    let stored: Vec<(i64, i64)> = sqlx::query_as("SELECT agent_id, last_seq FROM agent_state")
        .fetch_all(pool)
        .await?;
    for (agent_id, last_seq) in stored {
        if u64::try_from(last_seq).unwrap_or_default() > shared.last_seq(agent_id) {
            catch_up(pool, shared, agent_id).await?;
        }
    }
    Ok(())
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

    /// A fresh folder named after the test.
    fn folder(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("adapter-events-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A store in a fresh folder named after the test.
    async fn store(name: &str) -> (crate::store::Store, std::path::PathBuf) {
        let dir = folder(name);
        (crate::store::Store::for_tests(&dir).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn the_log_survives_a_restart_with_its_epoch_and_numbering() {
        let (store, dir) = store("restart").await;
        let hub = EventHub::open(store.pool()).await.unwrap();
        for name in ["a", "b", "c"] {
            hub.publish(1, status(name)).await.unwrap();
        }
        // Enough for the store to forget the oldest (it prunes every PRUNE_EVERY events).
        let total = BUFFER as u64 + 40;
        for i in 0..total {
            hub.publish(2, status(&format!("s{i}"))).await.unwrap();
        }
        let (epoch, state) = (hub.epoch(), hub.state(1));
        drop(hub);
        store.close().await;

        let store = crate::store::Store::for_tests(&dir).await.unwrap();
        let hub = EventHub::open(store.pool()).await.unwrap();
        assert_eq!(hub.epoch(), epoch, "same store, same epoch");
        assert!(epoch < 1 << 48, "exact in JavaScript");
        assert_eq!(hub.state(1), state);
        let (first, _) = hub.subscribe(1, Some((epoch, 1)));
        assert_eq!(seqs(&first), [('E', 2), ('E', 3)]);
        assert_eq!(
            hub.publish(1, status("d")).await.unwrap(),
            4,
            "numbering carries on"
        );
        // Past the buffer, only the newest events were kept.
        let oldest = total - BUFFER as u64 + 1;
        let (first, _) = hub.subscribe(2, Some((epoch, oldest - 2)));
        assert_eq!(seqs(&first), [('S', total)]);
        let (first, _) = hub.subscribe(2, Some((epoch, oldest - 1)));
        assert_eq!(first.len(), BUFFER);
        let (rows,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM agent_events WHERE agent_id = 2")
                .fetch_one(&store.pool())
                .await
                .unwrap();
        assert!(
            (BUFFER as i64..=(BUFFER as u64 + PRUNE_EVERY) as i64).contains(&rows)
                && (rows as u64) < total,
            "the store keeps about the buffer only: {rows} of {total}"
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn replicas_on_one_postgresql_store_number_one_log_and_each_sees_every_event_in_order() {
        let dir = folder("replicas");
        let Some((store_a, store_b)) = crate::store::Store::replicas_for_tests(&dir).await else {
            return;
        };
        let a = EventHub::open(store_a.pool()).await.unwrap();
        let b = EventHub::open(store_b.pool()).await.unwrap();
        assert_eq!(a.epoch(), b.epoch(), "one store, one epoch");
        let (_, mut on_a) = a.subscribe(7, None);
        let (_, mut on_b) = b.subscribe(7, None);
        // Both replicas write the same agent's log at once.
        let writes: Vec<_> = (0..40)
            .map(|i| {
                let hub = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { hub.publish(7, status(&format!("s{i}"))).await })
            })
            .collect();
        let mut numbers = Vec::new();
        for write in writes {
            numbers.push(write.await.unwrap().unwrap());
        }
        numbers.sort_unstable();
        assert_eq!(
            numbers,
            (1..=40).collect::<Vec<u64>>(),
            "no number twice, none skipped"
        );
        let mut seen = Vec::new();
        for live in [&mut on_a, &mut on_b] {
            let mut events = Vec::new();
            for expected in 1..=40 {
                let (seq, event) =
                    tokio::time::timeout(std::time::Duration::from_secs(5), live.recv())
                        .await
                        .expect("every event reaches both replicas' streams")
                        .unwrap();
                assert_eq!(seq, expected, "in order");
                events.push(event);
            }
            seen.push(events);
        }
        assert_eq!(seen[0], seen[1], "the same events on both replicas");
        assert_eq!(a.state(7), b.state(7));
        // A replica started later (a failover) resumes a stream opened on another.
        let store_c = crate::store::Store::for_tests(&dir).await.unwrap();
        let c = EventHub::open(store_c.pool()).await.unwrap();
        let (first, _) = c.subscribe(7, Some((a.epoch(), 35)));
        assert_eq!(
            seqs(&first),
            [('E', 36), ('E', 37), ('E', 38), ('E', 39), ('E', 40)]
        );
        // And it numbers on from the shared log.
        assert_eq!(c.publish(7, status("after failover")).await.unwrap(), 41);
        let (seq, _) = tokio::time::timeout(std::time::Duration::from_secs(5), on_a.recv())
            .await
            .expect("a replica's event reaches the others")
            .unwrap();
        assert_eq!(seq, 41);
        for hub in [&a, &b, &c] {
            hub.close_streams();
        }
        for store in [store_a, store_b, store_c] {
            store.close().await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Work that appends a status to each of `agents`, in that order.
    struct Several(Vec<i64>);

    impl Work for Several {
        type Output = ();
        fn run<'a>(&'a mut self, batch: &'a mut Batch) -> BoxFuture<'a, Result<(), sqlx::Error>> {
            Box::pin(async move {
                for agent in self.0.clone() {
                    batch
                        .append_with(agent, |_| Some(status(&format!("for {agent}"))))
                        .await?;
                }
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn replicas_writing_two_agents_in_opposite_orders_never_deadlock() {
        let dir = folder("replicas-order");
        let Some((store_a, store_b)) = crate::store::Store::replicas_for_tests(&dir).await else {
            return;
        };
        let a = EventHub::open(store_a.pool()).await.unwrap();
        let b = EventHub::open(store_b.pool()).await.unwrap();
        let writes: Vec<_> = (0..120)
            .map(|i| {
                let (hub, order) = if i % 2 == 0 {
                    (a.clone(), vec![1, 2])
                } else {
                    (b.clone(), vec![2, 1])
                };
                tokio::spawn(async move { hub.write(Several(order)).await })
            })
            .collect();
        for write in writes {
            write.await.unwrap().expect("every batch commits");
        }
        for agent in [1, 2] {
            let (rows,): (i64,) =
                sqlx::query_as("SELECT last_seq FROM agent_state WHERE agent_id = $1")
                    .bind(agent)
                    .fetch_one(&store_a.pool())
                    .await
                    .unwrap();
            assert_eq!(rows, 120, "agent {agent}: one number per write");
        }
        for hub in [&a, &b] {
            hub.close_streams();
        }
        store_a.close().await;
        store_b.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_event_is_in_the_store_before_its_publisher_hears_back() {
        let (store, dir) = store("durable").await;
        let hub = EventHub::open(store.pool()).await.unwrap();
        // Many writers at once: they share commits, and each is answered only once on disk.
        let writers: Vec<_> = (0..200)
            .map(|i| {
                let hub = hub.clone();
                tokio::spawn(async move { hub.publish(7, status(&i.to_string())).await })
            })
            .collect();
        let mut numbers = Vec::new();
        for writer in writers {
            let seq = writer.await.unwrap().unwrap();
            let (stored,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM agent_events WHERE agent_id = 7 AND seq = $1")
                    .bind(seq as i64)
                    .fetch_one(&store.pool())
                    .await
                    .unwrap();
            assert_eq!(stored, 1, "event {seq} answered before it was stored");
            numbers.push(seq);
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=200).collect::<Vec<u64>>(), "each number once");
        let (last,): (i64,) = sqlx::query_as("SELECT last_seq FROM agent_state WHERE agent_id = 7")
            .fetch_one(&store.pool())
            .await
            .unwrap();
        assert_eq!(last, 200);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Work whose SQL fails after it appended an event.
    struct Failing;

    impl Work for Failing {
        type Output = ();
        fn run<'a>(&'a mut self, batch: &'a mut Batch) -> BoxFuture<'a, Result<(), sqlx::Error>> {
            Box::pin(async move {
                batch.append_with(3, |_| Some(status("lost"))).await?;
                sqlx::query("INSERT INTO no_such_table VALUES (1)")
                    .execute(batch.conn())
                    .await?;
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn failed_work_takes_its_events_with_it_and_spares_the_rest() {
        let (store, dir) = store("failing").await;
        let hub = EventHub::open(store.pool()).await.unwrap();
        let (_, mut live) = hub.subscribe(3, None);
        let (failed, ok) = tokio::join!(hub.write(Failing), hub.publish(3, status("kept")));
        assert!(failed.is_err(), "the failing work is told");
        assert_eq!(
            ok.unwrap(),
            1,
            "the number the failed work took is not spent"
        );
        let (seq, event) = live.recv().await.unwrap();
        assert_eq!((seq, event), (1, status("kept")));
        assert!(
            live.try_recv().is_err(),
            "nothing of the failed work is shown"
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn resume_table() {
        let (store, dir) = store("resume").await;
        let hub = EventHub::open(store.pool()).await.unwrap();
        for name in ["a", "b", "c"] {
            hub.publish(1, status(name)).await.unwrap();
        }
        let epoch = hub.epoch();
        type Resume = Option<(u64, u64)>;
        let cases: &[(Resume, &[(char, u64)])] = &[
            (None, &[('S', 3)]),
            (Some((epoch, 0)), &[('E', 1), ('E', 2), ('E', 3)]),
            (Some((epoch, 2)), &[('E', 3)]),
            (Some((epoch, 3)), &[]),
            (Some((epoch, 9)), &[('S', 3)]),
            (Some((epoch + 1, 2)), &[('S', 3)]),
        ];
        for (resume, want) in cases {
            let (first, _) = hub.subscribe(1, *resume);
            assert_eq!(seqs(&first), *want, "resume {resume:?}");
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn past_the_buffer_a_snapshot_carries_the_folded_state() {
        let (store, dir) = store("snapshot").await;
        let hub = EventHub::open(store.pool()).await.unwrap();
        for i in 0..(BUFFER + 10) {
            hub.publish(5, status(&format!("s{i}"))).await.unwrap();
        }
        let epoch = hub.epoch();
        let (first, _) = hub.subscribe(5, Some((epoch, 3)));
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
        let (first, _) = hub.subscribe(5, Some((epoch, 20)));
        assert_eq!(first.len(), BUFFER - 10, "events 21.. are all still there");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_status_is_published_only_when_it_changes() {
        let (store, dir) = store("status").await;
        let hub = EventHub::open(store.pool()).await.unwrap();
        let view = |name: &str| {
            Some(StatusView {
                id: 0,
                name: name.into(),
            })
        };
        let publish = |status, next| hub.publish_status(3, status, next);
        assert_eq!(publish(view("In-call"), None).await.unwrap(), Some(1));
        assert_eq!(publish(view("In-call"), None).await.unwrap(), None);
        assert_eq!(
            publish(view("In-call"), view("Break")).await.unwrap(),
            Some(2)
        );
        assert_eq!(hub.state(3).next_status, view("Break"));
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn publishing_never_waits_for_readers() {
        let (store, dir) = store("readers").await;
        let hub = EventHub::open(store.pool()).await.unwrap();
        let (_, _unread) = hub.subscribe(9, None);
        let writers: Vec<_> = (0..2_000)
            .map(|i| {
                let hub = hub.clone();
                tokio::spawn(async move { hub.publish(9, status(&i.to_string())).await })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(seqs(&[hub.snapshot(9)]), [('S', 2_000)]);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
