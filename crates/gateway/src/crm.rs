//! The CRM sync: session events → the session's details from the Manager API → the rules of
//! [`adapter_core::crm`] → a durable outbox → Kustomer.
//!
//! 1. Intake: recording a session event (`webhook_events`, [`crate::webhooks`]) queues it in
//!    `crm_inbox` in the same transaction (a trigger, migration 0005), so a crash cannot lose it.
//! 2. Planner: takes the inbox in order within each session, page by page. A documented event
//!    whose stage needs them (assigned, ended, final) gets the session's details from the
//!    Manager API (one read serves every event of the session planned together); when they
//!    cannot be had, the event waits with its reason (`attempts`, `due_ms`, `last_error`,
//!    migration 0051), retried with backoff, and the session's later events wait behind it
//!    while other sessions go on. The event and its details become the gateway's own session
//!    events ([`adapter_core::manager::internal_events`]); the rules run on them and, in one
//!    transaction, every planned operation is stored in `crm_outbox` (`ON CONFLICT DO NOTHING` on its
//!    key: one row per session and rule, whatever is replayed) and the inbox row dropped. What
//!    a call's message carries when the same event creates it (its durations, its recording) is
//!    stored as done ([`adapter_core::crm::Planned::carried_by`]).
//! 3. Executor ([`executor`]): runs pending operations, in order within a lane (a session's
//!    operations, or an agent's status write-backs) and concurrently across lanes, each claimed
//!    with a lease (replicas share the table); a worker takes the next operation as soon as it
//!    is free. A failure is retried with backoff and jitter for as long as the retry budget
//!    (`--crm-retry-hours`) allows; one that cannot succeed becomes a dead letter with its
//!    reason, listed for admins, and the operations of its lane that need it wait behind it
//!    (`held`) until an admin retries it. A refused API key or a storm of Kustomer failures
//!    opens the circuit breaker ([`breaker`]): all Kustomer work pauses, nothing dead-letters,
//!    and one operation is let through now and then as a probe; the first answer resumes it.
//!
//! Exactly once: every operation is persisted before it is tried, and one whose earlier attempt
//! may have gone through (a crash, a timeout) first looks for what that attempt wrote (customers
//! by phone, email or external id; the conversation, message or note this session created, by
//! its external id) before writing.

pub mod admin;
pub mod breaker;
pub mod executor;
pub mod failure;
pub mod writeback;

use std::{sync::Arc, time::Duration};

use adapter_core::{
    backoff::Backoff,
    ccai_events::{self, SessionEvent},
    crm::{check_mapping, plan, FieldMapping, Settings},
    manager::{self, Known},
    session_webhook::{self, CallbackOf, SessionWebhook},
};
use serde_json::Value;
use sqlx::AnyPool;
use tokio::sync::Notify;

use crate::{
    ccai::HttpCcai,
    config::CrmConfig,
    kustomer::{HttpKustomer, KustomerError, KustomerSettings},
};

/// How long a claimed operation is someone's before another worker may take it.
pub const LEASE: Duration = Duration::from_secs(10);

/// Retries of a session's details (the Manager API): from a second to five minutes, for as
/// long as it takes; the event is never dropped.
const DETAILS_BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(300),
    factor: 2,
    jitter: 0.2,
};

/// The outbox in figures (one snapshot), for the admin view, `/healthz` and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxFigures {
    /// Session events not planned yet.
    pub inbox: i64,
    pub pending: i64,
    /// Waiting behind a dead letter of their session.
    pub held: i64,
    pub done: i64,
    pub dead: i64,
    /// Age of the oldest pending operation (the outbox's clock), when there is one.
    pub oldest_pending_age_ms: Option<i64>,
    pub breaker: breaker::Breaker,
}

impl OutboxFigures {
    /// Sets the outbox gauges of `/metrics` from these figures.
    pub fn record(&self) {
        let figures = self;
        metrics::gauge!("gateway_crm_outbox_pending").set(figures.pending as f64);
        metrics::gauge!("gateway_crm_outbox_held").set(figures.held as f64);
        metrics::gauge!("gateway_crm_outbox_dead").set(figures.dead as f64);
        metrics::gauge!("gateway_crm_outbox_inbox").set(figures.inbox as f64);
        metrics::gauge!("gateway_crm_outbox_oldest_pending_age_seconds")
            .set(figures.oldest_pending_age_ms.unwrap_or(0) as f64 / 1000.0);
        metrics::gauge!("gateway_kustomer_breaker_open").set(if figures.breaker.open {
            1.0
        } else {
            0.0
        });
    }
}

/// The admin's settings, as stored and as the agent API answers them (`GET|PUT
/// /api/v1/crm/settings`). `custom_fields_at_ms`: sessions that start after get the fields.
pub use adapter_core::agent_api::CrmSettings as OrgCrmSettings;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrmError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("Kustomer: {0}")]
    Kustomer(#[from] KustomerError),
    #[error("{0}")]
    Invalid(String),
}

struct Inner {
    pool: AnyPool,
    kustomer: HttpKustomer,
    /// Fetches recordings and files from the tenant's hosts only.
    downloads: crate::files::Downloads,
    /// Reads the sessions' details (the Manager API) for the rules.
    ccai: Arc<HttpCcai>,
    /// Read the simulator's extension facts on those details.
    extension: bool,
    config: CrmConfig,
    planner: Notify,
    executor: Notify,
    /// Each session's Kustomer conversation once it is known, for the screen pop.
    resolved: tokio::sync::broadcast::Sender<Resolved>,
    /// The outbox operations whose attempt has just been recorded (done, retried, dead).
    finished: tokio::sync::broadcast::Sender<i64>,
}

/// A session's Kustomer conversation (and its customer) became known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub session_id: i64,
    pub customer_id: String,
    pub conversation_id: String,
}

/// The CRM sync's handle. Cheap to clone.
#[derive(Clone)]
pub struct CrmSync {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CrmSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrmSync")
            .field("enabled", &self.inner.config.crm_sync)
            .finish_non_exhaustive()
    }
}

impl CrmSync {
    /// Sets up the client; starts the planner and the executor when the sync is on. Off, the
    /// inbox is emptied: those events are not synced.
    pub async fn start(
        config: CrmConfig,
        pool: AnyPool,
        ccai: Arc<HttpCcai>,
        extension: bool,
        files: crate::files::FilePolicy,
    ) -> Result<CrmSync, CrmError> {
        let downloads = crate::files::Downloads::new(files, Duration::from_secs(60))?;
        let kustomer = HttpKustomer::new(
            KustomerSettings {
                base_url: config.kustomer_url.clone(),
                api_key: config.kustomer_api_key.clone(),
                per_window: config.kustomer_rate_limit,
                window_ms: 60_000,
                timeout: Duration::from_secs(10),
            },
            pool.clone(),
        )?;
        let sync = CrmSync {
            inner: Arc::new(Inner {
                pool,
                kustomer,
                downloads,
                ccai,
                extension,
                config,
                planner: Notify::new(),
                executor: Notify::new(),
                resolved: tokio::sync::broadcast::channel(256).0,
                finished: tokio::sync::broadcast::channel(256).0,
            }),
        };
        // The executor also carries the status write-backs, which do not depend on the sync
        // (off, it runs only those).
        let executor = sync.clone();
        tokio::spawn(async move { executor::run_forever(executor).await });
        if sync.inner.config.crm_sync {
            tracing::info!(kustomer = %sync.inner.config.kustomer_url, "CRM sync is on");
            let planner = sync.clone();
            tokio::spawn(async move { planner.plan_forever().await });
        } else {
            let dropped = sqlx::query("DELETE FROM crm_inbox")
                .execute(&sync.inner.pool)
                .await?
                .rows_affected();
            tracing::warn!(
                dropped,
                "CRM sync is off (--crm-sync false): calls are not written to Kustomer"
            );
        }
        Ok(sync)
    }

    /// Sessions whose Kustomer conversation became known (a lagging receiver misses some:
    /// screen pops are a convenience, the records are in Kustomer regardless).
    pub fn resolved(&self) -> tokio::sync::broadcast::Receiver<Resolved> {
        self.inner.resolved.subscribe()
    }

    /// The conversation (and customer) the CRM sync resolved for `session_id`, if it has.
    pub async fn resolved_of(&self, session_id: i64) -> Result<Option<Resolved>, CrmError> {
        let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT customer_id, conversation_id FROM crm_sessions WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(&self.inner.pool)
        .await?;
        Ok(match row {
            Some((Some(customer_id), Some(conversation_id))) => Some(Resolved {
                session_id,
                customer_id,
                conversation_id,
            }),
            _ => None,
        })
    }

    /// Outbox operations as their attempts are recorded (a lagging receiver misses some).
    pub fn finished(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.inner.finished.subscribe()
    }

    pub(crate) fn announce_finished(&self, seq: i64) {
        let _ = self.inner.finished.send(seq);
    }

    pub(crate) fn announce(&self, resolved: Resolved) {
        // Nobody listening (no adapter) is fine.
        let _ = self.inner.resolved.send(resolved);
    }

    pub fn kustomer(&self) -> &HttpKustomer {
        &self.inner.kustomer
    }

    pub fn downloads(&self) -> &crate::files::Downloads {
        &self.inner.downloads
    }

    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    pub fn enabled(&self) -> bool {
        self.inner.config.crm_sync
    }

    /// A webhook was recorded: plan it now rather than at the next poll.
    pub fn wake(&self) {
        self.inner.planner.notify_one();
    }

    pub(crate) fn wake_executor(&self) {
        self.inner.executor.notify_one();
    }

    pub(crate) fn workers(&self) -> usize {
        self.inner.config.crm_workers as usize
    }

    /// The outbox's clock.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.inner.config.clock
    }

    /// How long a failing operation is retried.
    pub fn retry_budget(&self) -> Duration {
        Duration::from_secs(u64::from(self.inner.config.crm_retry_hours) * 3600)
    }

    /// How often the open breaker lets a probe through.
    pub fn probe_every(&self) -> Duration {
        Duration::from_secs(u64::from(self.inner.config.crm_breaker_probe_seconds))
    }

    pub(crate) async fn executor_wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.executor.notified()).await;
    }

    /// The outbox in figures, read in one statement (one snapshot): counted apart, the planner
    /// could move an event from the inbox to the outbox between two counts, and a drained queue
    /// be reported too early.
    pub async fn figures(&self) -> Result<OutboxFigures, CrmError> {
        let (inbox, pending, held, done, dead, oldest): (i64, i64, i64, i64, i64, Option<i64>) =
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM crm_inbox),
                        (SELECT COUNT(*) FROM crm_outbox WHERE state = 'pending'),
                        (SELECT COUNT(*) FROM crm_outbox WHERE state = 'held'),
                        (SELECT COUNT(*) FROM crm_outbox WHERE state = 'done'),
                        (SELECT COUNT(*) FROM crm_outbox WHERE state = 'dead'),
                        (SELECT MIN(created_ms) FROM crm_outbox WHERE state = 'pending')",
            )
            .fetch_one(&self.inner.pool)
            .await?;
        let now = self.clock().now_ms();
        Ok(OutboxFigures {
            inbox,
            pending,
            held,
            done,
            dead,
            oldest_pending_age_ms: oldest.map(|created| (now - created).max(0)),
            breaker: breaker::read(&self.inner.pool).await?,
        })
    }

    /// Whether Kustomer work is paused (the breaker alone: cheap enough for `/healthz`).
    pub async fn kustomer_health(&self) -> Result<Value, CrmError> {
        Ok(breaker::read(&self.inner.pool).await?.health())
    }

    /// The admin's settings.
    pub async fn settings(&self) -> Result<OrgCrmSettings, CrmError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM crm_settings")
            .fetch_all(&self.inner.pool)
            .await?;
        let mut settings = OrgCrmSettings::default();
        for (key, value) in rows {
            let value: Value = serde_json::from_str(&value).unwrap_or(Value::Null);
            match key.as_str() {
                "create_abandoned" => settings.create_abandoned = value.as_bool().unwrap_or(true),
                "mapping" => settings.mapping = serde_json::from_value(value).unwrap_or_default(),
                "custom_fields_at_ms" => settings.custom_fields_at_ms = value.as_i64(),
                _ => {}
            }
        }
        Ok(settings)
    }

    async fn put_setting(&self, key: &str, value: &Value) -> Result<(), CrmError> {
        sqlx::query("INSERT INTO crm_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value.to_string())
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    /// Sets the abandoned-call option and the custom data mapping (checked first).
    pub async fn update_settings(
        &self,
        create_abandoned: Option<bool>,
        mapping: Option<Vec<FieldMapping>>,
    ) -> Result<OrgCrmSettings, CrmError> {
        if let Some(mapping) = &mapping {
            check_mapping(mapping).map_err(CrmError::Invalid)?;
        }
        if let Some(value) = create_abandoned {
            self.put_setting("create_abandoned", &Value::Bool(value))
                .await?;
        }
        if let Some(mapping) = mapping {
            self.put_setting(
                "mapping",
                &serde_json::to_value(mapping).unwrap_or_default(),
            )
            .await?;
        }
        self.settings().await
    }

    /// The admin action: defines the account and record fields in Kustomer (with their type
    /// suffixes); sessions that start from now on get them filled.
    pub async fn provision_custom_fields(&self) -> Result<i64, CrmError> {
        use adapter_core::crm::{ACCOUNT_FIELDS, RECORD_FIELDS};
        for klass in ["customer", "message"] {
            let fields: Vec<(&str, &str)> = ACCOUNT_FIELDS
                .iter()
                .chain(RECORD_FIELDS.iter())
                .filter(|f| f.klass == klass)
                .map(|f| (f.name, f.label))
                .collect();
            self.inner
                .kustomer
                .define_attributes(klass, &fields)
                .await?;
        }
        let at = crate::clock::now_ms();
        let current = self.settings().await?.custom_fields_at_ms;
        // Provisioning again keeps the first time: earlier sessions already got them.
        let at = current.unwrap_or(at);
        self.put_setting("custom_fields_at_ms", &Value::from(at))
            .await?;
        Ok(at)
    }

    async fn plan_forever(self) {
        let mut turn = PlannerTurn::new(self.inner.pool.clone());
        loop {
            if self.inner.pool.is_closed() {
                // The gateway stopped: the turn goes with this task.
                return;
            }
            if !turn.mine().await {
                // Another replica plans; this one stands by to take over.
                tokio::time::sleep(PLANNER_STANDBY).await;
                continue;
            }
            match self.plan_pending().await {
                Ok(0) => {
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        self.inner.planner.notified(),
                    )
                    .await;
                }
                Ok(_) => self.wake_executor(),
                Err(error) => {
                    tracing::warn!(%error, "CRM planner: cannot read the inbox; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Plans the queued session events, in order within each session; answers how many were
    /// taken. An event whose session details cannot be read yet stays queued with its reason
    /// and is retried with backoff, and the later events of its session wait behind it.
    pub async fn plan_pending(&self) -> Result<usize, CrmError> {
        let now = crate::clock::now_ms();
        let org = self.settings().await?;
        let mut waiting: std::collections::HashSet<String> = std::collections::HashSet::new();
        // One read of a session's details serves all its events of the same stage in this pass
        // (a stage's replays). A later stage reads again: its event may have come in after the
        // read (pages are read as the pass goes), and what it needs (the recording, the
        // durations) may be new since.
        let mut read: std::collections::HashMap<String, manager::SessionDetails> =
            std::collections::HashMap::new();
        let mut taken = 0;
        // Page by page to the end: sessions that wait (their rows skipped cheaply) never hide
        // the ones behind them.
        let mut after = 0i64;
        loop {
            let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
                "SELECT seq, payload, attempts, due_ms FROM crm_inbox WHERE seq > $1 ORDER BY seq LIMIT 200",
            )
            .bind(after)
            .fetch_all(&self.inner.pool)
            .await?;
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            after = last;
            taken += self
                .plan_page(rows, now, &org, &mut waiting, &mut read)
                .await?;
        }
        Ok(taken)
    }

    /// Plans one page of the inbox (see [`CrmSync::plan_pending`]); answers how many rows it took.
    async fn plan_page(
        &self,
        rows: Vec<(i64, String, i64, i64)>,
        now: i64,
        org: &OrgCrmSettings,
        waiting: &mut std::collections::HashSet<String>,
        read: &mut std::collections::HashMap<String, manager::SessionDetails>,
    ) -> Result<usize, CrmError> {
        let mut taken = 0;
        for (seq, payload, attempts, due_ms) in rows {
            let inbox = match Inbox::decode(&payload) {
                Ok(inbox) => inbox,
                // Checked at intake, so only a payload from an older gateway could fail here.
                Err(error) => {
                    tracing::warn!(seq, %error, "CRM planner: an inbox event no longer decodes; skipped");
                    self.drop_inbox(seq).await?;
                    continue;
                }
            };
            let key = inbox.session_key();
            if waiting.contains(&key) || due_ms > now {
                waiting.insert(key);
                continue;
            }
            match self.internal_events(&inbox, read).await {
                Ok(events) => {
                    self.plan_events(seq, &events, org).await?;
                    taken += 1;
                }
                Err(reason) => {
                    waiting.insert(key);
                    let delay =
                        DETAILS_BACKOFF.delay(u32::try_from(attempts + 1).unwrap_or(u32::MAX), 0.5);
                    tracing::warn!(seq, attempts = attempts + 1, %reason, ?delay, "CRM planner: the session's details cannot be read yet; retrying");
                    sqlx::query(
                        "UPDATE crm_inbox SET attempts = attempts + 1, due_ms = $1, last_error = $2 WHERE seq = $3",
                    )
                    .bind(now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2))
                    .bind(&reason)
                    .bind(seq)
                    .execute(&self.inner.pool)
                    .await?;
                }
            }
        }
        Ok(taken)
    }

    async fn drop_inbox(&self, seq: i64) -> Result<(), CrmError> {
        sqlx::query("DELETE FROM crm_inbox WHERE seq = $1")
            .bind(seq)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    /// The gateway's own session events for one inbox event: a documented event with its
    /// session's details from the Manager API when its stage needs them, or an extension event.
    /// `Err` says why the details cannot be had yet.
    async fn internal_events(
        &self,
        inbox: &Inbox,
        read: &mut std::collections::HashMap<String, manager::SessionDetails>,
    ) -> Result<Vec<SessionWebhook>, String> {
        let pool = &self.inner.pool;
        match inbox {
            Inbox::Extension(webhook) => {
                let mut webhook = webhook.clone();
                webhook.session.id = crate::store::Store::session_id_in(
                    pool,
                    ccai_events::channel_name(webhook.channel),
                    &webhook.session.platform_id,
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok(vec![webhook])
            }
            Inbox::Documented(event) => {
                let channel = ccai_events::channel_name(event.channel);
                let id = crate::store::Store::session_id_in(pool, channel, &event.session_id)
                    .await
                    .map_err(|e| e.to_string())?;
                let (agent_id, outbound): (Option<i64>, i64) = sqlx::query_as(
                    "SELECT agent_id, outbound FROM platform_sessions WHERE id = $1",
                )
                .bind(id)
                .fetch_one(pool)
                .await
                .map_err(|e| e.to_string())?;
                let stage = event.stage();
                let key = format!("{}/{}", inbox.session_key(), stage.as_str());
                let details = match (stage.needs_details(), read.get(&key)) {
                    (false, _) => None,
                    (true, Some(details)) => Some(details.clone()),
                    (true, None) => {
                        let body = self
                            .inner
                            .ccai
                            .session_details(event.channel, &event.session_id)
                            .await
                            .map_err(|e| match e {
                                crate::ccai::CcaiError::NotFound => format!(
                                    "the Manager API has no {channel} {} (not found)",
                                    event.session_id
                                ),
                                e => {
                                    format!("the Manager API's {channel} {}: {e}", event.session_id)
                                }
                            })?;
                        let details =
                            manager::decode_details(&body, &event.session_id, self.inner.extension)
                                .map_err(|e| format!("{channel} {}: {e}", event.session_id))?;
                        read.insert(key.clone(), details.clone());
                        Some(details)
                    }
                };
                // A voicemail is written with its recording: until the Manager API has it, the
                // event waits (a voicemail has no later event to try again with).
                if stage == ccai_events::Stage::Ended
                    && details
                        .as_ref()
                        .is_some_and(|d| d.is_voicemail() && d.recording_url.is_none())
                {
                    read.remove(&key);
                    return Err(format!(
                        "the recording of voicemail {channel} {} is not ready yet",
                        event.session_id
                    ));
                }
                let agent_id = event
                    .agent_id()
                    .or(agent_id)
                    .or(details.as_ref().and_then(|d| d.agent_id));
                let agent_email = match agent_id {
                    Some(agent) if stage.needs_details() => self
                        .inner
                        .ccai
                        .agent_email(agent)
                        .await
                        .map_err(|e| format!("the agent directory: {e}"))?,
                    _ => None,
                };
                let callback_of = match details
                    .as_ref()
                    .and_then(|d| d.extension.as_ref())
                    .and_then(|x| x.callback_of.clone())
                {
                    Some((previous, reason)) => Some(CallbackOf {
                        session_id: crate::store::Store::session_id_in(pool, "call", &previous)
                            .await
                            .map_err(|e| e.to_string())?,
                        reason,
                    }),
                    None => None,
                };
                let known = Known {
                    id,
                    agent_email,
                    direction: (outbound != 0)
                        .then_some(adapter_core::agent_events::Direction::Outbound),
                    was_assigned: agent_id.is_some(),
                    callback_of,
                };
                Ok(manager::internal_events(event, details.as_ref(), &known))
            }
        }
    }

    /// Runs the rules on `events` and stores every planned operation, and drops inbox row
    /// `seq`, in one transaction.
    async fn plan_events(
        &self,
        seq: i64,
        events: &[SessionWebhook],
        org: &OrgCrmSettings,
    ) -> Result<(), CrmError> {
        let mut tx = self.inner.pool.begin().await?;
        for webhook in events {
            let session_id = webhook.session.id;
            sqlx::query(
                "INSERT INTO crm_sessions (session_id, started_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(session_id)
            .bind(webhook.occurred_at_ms)
            .execute(&mut *tx)
            .await?;
            let (started,): (i64,) =
                sqlx::query_as("SELECT started_ms FROM crm_sessions WHERE session_id = $1")
                    .bind(session_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let provisioned = org.custom_fields_at_ms.is_some_and(|at| at <= started);
            let settings = Settings {
                create_abandoned: org.create_abandoned,
                record_fields: provisioned,
                account_field: provisioned,
                mapping: org.mapping.clone(),
                default_country: self.inner.config.crm_default_country.clone(),
            };
            let now = self.clock().now_ms();
            // The keys this event stored for the first time: what a new message carries is
            // stored as done, with its key (`Planned::carried_by`).
            let mut stored_now: Vec<String> = Vec::new();
            for planned in plan(webhook, &settings) {
                let op = serde_json::to_string(&planned.op)
                    .map_err(|e| CrmError::Invalid(e.to_string()))?;
                let carried = planned
                    .carried_by
                    .as_ref()
                    .is_some_and(|key| stored_now.contains(key));
                let inserted = sqlx::query(
                    "INSERT INTO crm_outbox (key, session_id, lane, rule, op, due_ms, created_ms, state, done_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(&planned.key)
                .bind(planned.session_id)
                .bind(session_lane(planned.session_id))
                .bind(planned.rule.as_str())
                .bind(op)
                .bind(now)
                .bind(now)
                .bind(if carried { "done" } else { "pending" })
                .bind(carried.then_some(now))
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() > 0 {
                    stored_now.push(planned.key);
                }
            }
        }
        sqlx::query("DELETE FROM crm_inbox WHERE seq = $1")
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Longest a status change's answer waits for its write-back to Kustomer to run (it is stored
/// first, and lands later if it takes longer).
pub const WRITE_BACK_WAIT: Duration = Duration::from_millis(500);

/// Waits until outbox operation `seq` has been tried (announced on `finished`), at most `wait`;
/// answers whether it was.
pub async fn wait_finished(
    seq: i64,
    mut finished: tokio::sync::broadcast::Receiver<i64>,
    wait: Duration,
) -> bool {
    tokio::time::timeout(wait, async {
        loop {
            match finished.recv().await {
                Ok(done) if done == seq => return true,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// The lane of a session's CRM operations: they run in order.
pub fn session_lane(session_id: i64) -> String {
    format!("session-{session_id}")
}

/// The lane of an agent's status write-backs: they run in order.
pub fn agent_lane(agent_id: i64) -> String {
    format!("agent-{agent_id}")
}

/// An event waiting in the CRM inbox (one at a time, short-lived: the variants' sizes do not
/// matter).
#[allow(clippy::large_enum_variant)]
enum Inbox {
    /// The platform's documented session event.
    Documented(SessionEvent),
    /// The simulator's extension (see [`crate::webhooks`]).
    Extension(SessionWebhook),
}

impl Inbox {
    fn decode(payload: &str) -> Result<Inbox, String> {
        let value: Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
        match value.get("extension") {
            Some(extension) => session_webhook::decode(extension.to_string().as_bytes())
                .map(Inbox::Extension)
                .map_err(|e| e.0),
            None => ccai_events::decode_stored(payload).map(Inbox::Documented),
        }
    }

    /// Which session it is about: events of one session are planned in order.
    fn session_key(&self) -> String {
        match self {
            Inbox::Documented(e) => {
                format!("{}-{}", ccai_events::channel_name(e.channel), e.session_id)
            }
            Inbox::Extension(w) => w.session.reference(),
        }
    }
}

/// How often a standby replica asks whether the planner's turn is free.
const PLANNER_STANDBY: Duration = Duration::from_secs(1);
/// The PostgreSQL advisory lock key of the CRM planner ("crm-plan").
const PLANNER_LOCK: i64 = 0x6372_6d2d_706c_616e;

/// One CRM planner at a time among the replicas on a PostgreSQL store, so that a session's
/// events are planned in order by one of them: the turn is a session-level advisory lock held
/// on a connection of its own, which PostgreSQL frees the moment that connection ends (the
/// replica stopped or was killed), and a standby replica takes the turn at its next ask. On
/// SQLite the process is alone: the turn is always its.
struct PlannerTurn {
    pool: AnyPool,
    /// The connection holding the lock, out of the pool (closing the pool does not wait for it).
    held: Option<sqlx::AnyConnection>,
}

impl PlannerTurn {
    fn new(pool: AnyPool) -> Self {
        PlannerTurn { pool, held: None }
    }

    async fn mine(&mut self) -> bool {
        if !crate::store::is_postgres(&self.pool) {
            return true;
        }
        if let Some(conn) = self.held.as_mut() {
            // Still holding it as long as the connection answers.
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
                return true;
            }
            tracing::warn!("CRM planner: lost the connection holding the planner's turn");
            self.held = None;
        }
        let Ok(mut conn) = self.pool.acquire().await else {
            return false;
        };
        match sqlx::query_as::<_, (bool,)>("SELECT pg_try_advisory_lock($1)")
            .bind(PLANNER_LOCK)
            .fetch_one(&mut *conn)
            .await
        {
            Ok((true,)) => {
                tracing::info!("CRM planner: this replica plans");
                self.held = Some(conn.detach());
                true
            }
            Ok((false,)) => false,
            Err(error) => {
                tracing::warn!(%error, "CRM planner: cannot ask for the planner's turn");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_replica_at_a_time_plans_and_another_takes_over_when_it_is_gone() {
        let dir = std::env::temp_dir().join(format!("adapter-planner-turn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = crate::store::Store::for_tests(&dir).await.unwrap();
        let mut first = PlannerTurn::new(a.pool());
        assert!(first.mine().await, "alone, the turn is its");
        if a.engine() != crate::store::Engine::Postgres {
            eprintln!("skipped on SQLite: replicas share a PostgreSQL store");
            return;
        }
        let b = crate::store::Store::for_tests(&dir).await.unwrap();
        let mut second = PlannerTurn::new(b.pool());
        assert!(!second.mine().await, "one planner at a time");
        assert!(first.mine().await, "the holder keeps its turn");
        assert!(!second.mine().await);
        // The holder's replica is gone (its connection ends with it).
        drop(first);
        let taken_over = async {
            while !second.mine().await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), taken_over)
            .await
            .expect("the standby takes the turn once the holder is gone");
        a.close().await;
        b.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
