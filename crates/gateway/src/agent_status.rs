//! The agents' CCAI statuses, as the gateway shows them. The platform's session events do not
//! carry an agent's status, so the gateway knows it from three places:
//!
//! 1. what the gateway itself set (`PUT /status`, status inheritance), at once;
//! 2. the session lifecycle ([`crate::webhooks`]): active → In-call / In-chat, ended → Wrap-up;
//! 3. the agent directory (`GET /manager/api/v1/agents`): read once a session is final (the
//!    platform then applies the next status, or Available), for every agent that asked within
//!    [`GATHER`] in one read, and every `--status-refresh-seconds` (30 by default) for every agent
//!    the gateway has seen, which also reconciles what a restarted gateway restored. Replicas
//!    on one store take turns: each interval, one of them refreshes (`status_refresh`).
//!
//! A read never undoes a change made while it was under way: the gateway's own changes on this
//! replica are remembered ([`AgentStatus::touched`]), and any change on any replica shows as a
//! status that differs from the one the stream showed when the read began.
//!
//! So a change the gateway did not cause (a supervisor in the CCAI portal) shows within the
//! refresh interval plus one directory read; a change after wrap-up within [`GATHER`] plus one
//! read. A next status is kept only while the directory shows a system status (a call or
//! wrap-up): once the agent is out of one, the platform has applied or dropped it.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use adapter_core::agent_events::{AgentEvent, StatusView};
use tokio::sync::mpsc;

use crate::{ccai::CcaiApi, AppState};

/// How long a final event's read waits for other agents' to share it.
pub const GATHER: Duration = Duration::from_millis(200);

/// The refresher's handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AgentStatus {
    asks: mpsc::UnboundedSender<i64>,
    /// When the gateway last changed each agent's status itself: a directory read that started
    /// before it must not undo it.
    touched: Arc<Mutex<HashMap<i64, Instant>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AgentStatus {
    /// A handle whose asks are read by [`AgentStatus::run`].
    pub fn new() -> (AgentStatus, mpsc::UnboundedReceiver<i64>) {
        let (asks, receiver) = mpsc::unbounded_channel();
        (
            AgentStatus {
                asks,
                touched: Arc::default(),
            },
            receiver,
        )
    }

    /// Reads `agent_id`'s status from the directory soon (shared with other agents' asks).
    pub fn refresh(&self, agent_id: i64) {
        // The task lives as long as the gateway: a send fails only at shutdown.
        let _ = self.asks.send(agent_id);
    }

    /// The gateway changed `agent_id`'s status itself, now.
    pub fn touched(&self, agent_id: i64) {
        lock(&self.touched).insert(agent_id, Instant::now());
    }

    /// Whether the gateway changed `agent_id`'s status itself since `since`.
    pub fn touched_since(&self, agent_id: i64, since: Instant) -> bool {
        lock(&self.touched)
            .get(&agent_id)
            .is_some_and(|at| *at >= since)
    }

    /// Serves the asks, and reconciles every known agent every `every` (never when zero).
    pub async fn run(state: AppState, mut asks: mpsc::UnboundedReceiver<i64>, every: Duration) {
        let mut tick = tokio::time::interval(if every.is_zero() {
            Duration::from_secs(86_400 * 365)
        } else {
            every
        });
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wanted: HashSet<i64> = tokio::select! {
                ask = asks.recv() => {
                    let Some(first) = ask else { break };
                    let mut wanted = HashSet::from([first]);
                    let deadline = tokio::time::Instant::now() + GATHER;
                    while let Ok(Some(more)) = tokio::time::timeout_at(deadline, asks.recv()).await {
                        wanted.insert(more);
                    }
                    wanted
                }
                _ = tick.tick() => {
                    if every.is_zero() || !refresh_turn(&state, every).await {
                        continue;
                    }
                    state.events.agent_ids().into_iter().collect()
                }
            };
            if wanted.is_empty() {
                continue;
            }
            if let Err(error) = reconcile(&state, &wanted).await {
                tracing::warn!(%error, agents = wanted.len(), "agent statuses not read from the directory; the next read tries again");
            }
        }
    }
}

/// Whether this replica refreshes every agent now: the first replica whose tick comes after
/// most of an interval since the last refresh (by any replica sharing the store) takes it, so
/// replicas do not each read the directory every interval. A store that cannot say is taken as
/// yes: a read too many costs less than a status never refreshed.
async fn refresh_turn(state: &AppState, every: Duration) -> bool {
    let now = crate::clock::now_ms();
    // Nine tenths: two replicas' ticks drift, and one must not miss its turn by a few ms.
    let since = i64::try_from(every.as_millis() * 9 / 10).unwrap_or(i64::MAX);
    match sqlx::query("UPDATE status_refresh SET last_ms = $1 WHERE id = 1 AND last_ms <= $2")
        .bind(now)
        .bind(now.saturating_sub(since))
        .execute(&state.store.pool())
        .await
    {
        Ok(done) => done.rows_affected() == 1,
        Err(error) => {
            tracing::warn!(%error, "cannot tell whether another replica refreshed the statuses; refreshing");
            true
        }
    }
}

/// One directory read for `agents`: each one's status as the directory says, published when
/// it differs from what the stream shows, and written back to Kustomer when the platform
/// changed it.
async fn reconcile(state: &AppState, agents: &HashSet<i64>) -> Result<(), crate::ccai::CcaiError> {
    let started = Instant::now();
    // What the streams showed as the read began: a status that changed since (on any replica:
    // the check runs on the agent's state as the store has it) is newer than the read.
    let before: HashMap<i64, (Option<StatusView>, Option<StatusView>)> = agents
        .iter()
        .map(|id| {
            let shown = state.events.state(*id);
            (*id, (shown.status, shown.next_status))
        })
        .collect();
    let directory = state.ccai.agents(crate::ccai::Read::Fresh).await?;
    let statuses = state.ccai.user_statuses().await.unwrap_or_default();
    for agent in directory.iter().filter(|a| agents.contains(&a.id)) {
        let Some(status) = &agent.status else {
            continue;
        };
        let view = crate::status::named(status.id, &statuses);
        let view = StatusView {
            name: status.name.clone().unwrap_or(view.name),
            ..view
        };
        let system = crate::ccai::is_system_status(view.id);
        let changed = state.events.state(agent.id).status.as_ref().map(|s| s.id) != Some(view.id);
        let (agent_id, touched, shown) = (agent.id, state.agent_status.clone(), view.clone());
        let before = before.get(&agent_id).cloned().unwrap_or_default();
        // Checked in the event log's order: a change made since this read started (a lifecycle
        // status, the agent's own pick; by this replica, or by another one) is never undone by
        // it.
        let published = state
            .events
            .publish_with(agent_id, move |current| {
                if touched.touched_since(agent_id, started)
                    || (current.status.as_ref(), current.next_status.as_ref())
                        != (before.0.as_ref(), before.1.as_ref())
                {
                    return None;
                }
                let next = if system {
                    current.next_status.clone()
                } else {
                    None
                };
                (current.status.as_ref() != Some(&shown) || current.next_status != next).then_some(
                    AgentEvent::StatusChanged {
                        status: Some(shown),
                        next_status: next,
                    },
                )
            })
            .await;
        match published {
            Ok(Some(_)) => {
                tracing::info!(
                    agent_id,
                    status = view.name,
                    "agent status read from the directory"
                );
                if changed && !system {
                    // Stored in the outbox; it runs there.
                    let _ = state
                        .inheritance
                        .write_back(state, agent_id, &view, &statuses)
                        .await;
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(agent_id, %error, "agent status from the directory not published; the next read tries again")
            }
        }
    }
    Ok(())
}
