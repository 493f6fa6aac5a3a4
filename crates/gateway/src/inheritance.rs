//! Agent status inheritance in the gateway: the admin's settings (stored per organisation,
//! audited) and the policy of [`adapter_core::status_policy`] applied to the Kustomer status
//! changes an agent's leader tab reports, and to the agent's own changes. The policy's memory
//! of each agent (who made the latest change and chose the next status, when) is kept in the
//! store (`status_policy_memory`), so a restart keeps it; replicas on PostgreSQL announce each
//! write and read it again, every write numbered so an older one never replaces a newer one
//! (a replica reads back its own announcements too). Write-backs to Kustomer
//! (bidirectional mode) go through the durable outbox ([`crate::crm::writeback`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
};

use adapter_core::{
    agent_api::{AuditEntry, InheritanceSettings},
    agent_events::AgentState,
    status_policy::{self, Catalogue, Condition, InheritanceConfig, Source, SyncMemory},
};
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use crate::{
    ccai::{CcaiApi, UserStatus},
    clock::now_ms,
    error::{Code, Error},
    store::StoreError,
    AppState,
};

/// The settings' key in `org_settings`.
pub const SETTINGS_KEY: &str = "status_inheritance";
/// How far in the past a change's own time is believed; older stamps count as this old.
const PAST_SLACK_MS: i64 = 5 * 60_000;
/// How far in the future (clock skew) a change's own time is believed.
const FUTURE_SLACK_MS: i64 = 5_000;
/// At most this many Kustomer statuses in the settings.
const MAX_KUSTOMER_STATUSES: usize = 200;

/// A change's own time, kept within a window around the gateway's clock, so that a wrong (or
/// hostile) clock cannot rank a change before or after every other.
pub fn clamp_at(at: Option<i64>, now: i64) -> i64 {
    at.map_or(now, |at| {
        at.clamp(now - PAST_SLACK_MS, now + FUTURE_SLACK_MS)
    })
}

/// A Kustomer routing status, as the admin's view lists it.
pub use adapter_core::agent_api::KustomerStatus;

/// What admins save: the configuration, and the Kustomer statuses it was made against (read
/// from Kustomer by the admin's adapter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub config: InheritanceConfig,
    #[serde(default)]
    pub kustomer_statuses: Vec<KustomerStatus>,
}

/// The settings as the agent API writes them.
impl From<Settings> for InheritanceSettings {
    fn from(settings: Settings) -> Self {
        let Settings {
            config,
            kustomer_statuses,
        } = settings;
        InheritanceSettings {
            bidirectional: config.bidirectional,
            enabled: config.enabled,
            kustomer_statuses,
            mapping: config.mapping,
            rule: config.rule,
        }
    }
}

/// The settings as an admin saves them through the agent API.
impl From<InheritanceSettings> for Settings {
    fn from(settings: InheritanceSettings) -> Self {
        Settings {
            config: InheritanceConfig {
                enabled: settings.enabled,
                rule: settings.rule,
                bidirectional: settings.bidirectional,
                mapping: settings.mapping,
            },
            kustomer_statuses: settings.kustomer_statuses,
        }
    }
}

/// Inheritance state shared by the handlers. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Inheritance {
    settings: Arc<RwLock<Settings>>,
    memory: Arc<Mutex<HashMap<i64, Remembered>>>,
    /// Where the memory is kept (`None`: in memory only).
    pool: Option<AnyPool>,
}

/// The PostgreSQL channel on which a replica announces that an admin saved the settings.
const SETTINGS_CHANNEL: &str = "org_settings";
/// The PostgreSQL channel on which a replica announces an agent's new policy memory (payload:
/// the agent's id).
const MEMORY_CHANNEL: &str = "status_policy_memory";

/// An agent's policy memory and the number of the store's write it came from (0: not yet
/// stored), so that a memory read again after an announcement replaces only an older one.
#[derive(Clone, Debug, Default)]
struct Remembered {
    revision: i64,
    memory: SyncMemory,
}

/// The settings a stored row holds (off when none were saved, or unreadable).
fn settings_of(row: Option<(String,)>) -> Settings {
    match row {
        Some((value,)) => serde_json::from_str(&value).unwrap_or_else(|error| {
            tracing::error!(%error, "stored status inheritance settings unreadable: inheritance is off until an admin saves them again");
            Settings::default()
        }),
        None => Settings::default(),
    }
}

/// The agents' policy memories as stored (`agent`: one agent's, else every agent's).
async fn stored_memory(
    pool: &AnyPool,
    agent: Option<i64>,
) -> Result<HashMap<i64, Remembered>, sqlx::Error> {
    let rows: Vec<(i64, i64, String)> =
        match agent {
            Some(agent) => sqlx::query_as(
                "SELECT agent_id, revision, memory FROM status_policy_memory WHERE agent_id = $1",
            )
            .bind(agent)
            .fetch_all(pool)
            .await?,
            None => {
                sqlx::query_as("SELECT agent_id, revision, memory FROM status_policy_memory")
                    .fetch_all(pool)
                    .await?
            }
        };
    Ok(rows
        .into_iter()
        .filter_map(|(agent, revision, text)| match serde_json::from_str(&text) {
            Ok(memory) => Some((agent, Remembered { revision, memory })),
            Err(error) => {
                tracing::warn!(agent_id = agent, %error, "stored status policy memory unreadable; starting afresh for this agent");
                None
            }
        })
        .collect())
}

/// Replicas on PostgreSQL: reads the settings again whenever a replica announces a save, an
/// agent's policy memory whenever a replica announces a change of it, and everything after the
/// listening connection was lost (an announcement may have been missed). Ends with the
/// [`Inheritance`] or the store.
async fn follow_store(
    pool: AnyPool,
    settings: std::sync::Weak<RwLock<Settings>>,
    memory: std::sync::Weak<Mutex<HashMap<i64, Remembered>>>,
    mut listener: sqlx::postgres::PgListener,
) {
    loop {
        let announced = listener.try_recv().await;
        let (Some(settings), Some(memory)) = (settings.upgrade(), memory.upgrade()) else {
            return;
        };
        let (read_settings, read_memory) = match &announced {
            Err(error) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%error, "settings announcements unavailable; retrying in a second");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            Ok(Some(n)) if n.channel() == MEMORY_CHANNEL => match n.payload().parse::<i64>() {
                Ok(agent) => (false, Some(Some(agent))),
                Err(_) => (false, Some(None)),
            },
            Ok(Some(_)) => (true, None),
            // The connection was lost: read everything again.
            Ok(None) => (true, Some(None)),
        };
        if read_settings {
            let row: Result<Option<(String,)>, _> =
                sqlx::query_as("SELECT value FROM org_settings WHERE key = $1")
                    .bind(SETTINGS_KEY)
                    .fetch_optional(&pool)
                    .await;
            match row {
                Ok(row) => {
                    *settings
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = settings_of(row);
                }
                Err(error) => tracing::warn!(%error, "cannot read the saved settings again"),
            }
        }
        if let Some(agent) = read_memory {
            match stored_memory(&pool, agent).await {
                Ok(stored) => {
                    let mut memory = memory
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    for (agent, read) in stored {
                        // A write this replica made since (its own announcement read back
                        // before its next write landed) is newer than what was read.
                        let held = memory.entry(agent).or_default();
                        if read.revision > held.revision {
                            *held = read;
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the policy memory again"),
            }
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inheritance {
    /// The saved settings (off when none were saved).
    pub async fn load(pool: &AnyPool) -> Result<Self, StoreError> {
        // Replicas on PostgreSQL: listening before anything is read, so that nothing another
        // replica saves from now on is missed.
        let listener = if crate::store::is_postgres(pool) {
            Some(crate::store::listen(pool, &[SETTINGS_CHANNEL, MEMORY_CHANNEL]).await?)
        } else {
            None
        };
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM org_settings WHERE key = $1")
                .bind(SETTINGS_KEY)
                .fetch_optional(pool)
                .await?;
        let memory = Arc::new(Mutex::new(stored_memory(pool, None).await?));
        let settings = Arc::new(RwLock::new(settings_of(row)));
        if let Some(listener) = listener {
            tokio::spawn(follow_store(
                pool.clone(),
                Arc::downgrade(&settings),
                Arc::downgrade(&memory),
                listener,
            ));
        }
        Ok(Inheritance {
            settings,
            memory,
            pool: Some(pool.clone()),
        })
    }

    pub fn settings(&self) -> Settings {
        read(&self.settings).clone()
    }

    pub fn config(&self) -> InheritanceConfig {
        read(&self.settings).config.clone()
    }

    fn memory_of(&self, agent_id: i64) -> SyncMemory {
        self.memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&agent_id)
            .map(|remembered| remembered.memory.clone())
            .unwrap_or_default()
    }

    /// Records a change applied for `agent_id`, in memory and in the store. A store that
    /// cannot be written is logged: the change itself is made, and this process remembers it.
    pub async fn remember(&self, agent_id: i64, source: Source, at: i64, as_next: bool) {
        let memory = {
            let mut memory = self
                .memory
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let entry = memory.entry(agent_id).or_default();
            status_policy::remember(&mut entry.memory, source, at, as_next);
            entry.memory.clone()
        };
        let Some(pool) = &self.pool else {
            return;
        };
        let text = match serde_json::to_string(&memory) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(agent_id, %error, "status policy memory not encodable");
                return;
            }
        };
        let written: Result<(i64,), _> = sqlx::query_as(
            "INSERT INTO status_policy_memory (agent_id, memory, updated_at_ms, revision) VALUES ($1, $2, $3, 1)
             ON CONFLICT (agent_id) DO UPDATE SET memory = excluded.memory, updated_at_ms = excluded.updated_at_ms,
                 revision = status_policy_memory.revision + 1
             RETURNING revision",
        )
        .bind(agent_id)
        .bind(text)
        .bind(now_ms())
        .fetch_one(pool)
        .await;
        match written {
            Ok((revision,)) => {
                let mut memory = self
                    .memory
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let entry = memory.entry(agent_id).or_default();
                entry.revision = entry.revision.max(revision);
            }
            Err(error) => {
                tracing::warn!(agent_id, %error, "status policy memory not stored; kept in this process only");
                return;
            }
        }
        if crate::store::is_postgres(pool) {
            // The other replicas read it again.
            if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(MEMORY_CHANNEL)
                .bind(agent_id.to_string())
                .execute(pool)
                .await
            {
                tracing::warn!(agent_id, %error, "status policy memory not announced to the other replicas");
            }
        }
    }

    /// The policy's memory of `agent_id` (as stored; for tests and diagnostics).
    pub fn memory(&self, agent_id: i64) -> SyncMemory {
        self.memory_of(agent_id)
    }

    /// Where the agent is, from the gateway's view of its CCAI status.
    pub fn condition(&self, state: &AgentState, statuses: &[UserStatus]) -> Condition {
        match state.status.as_ref().map(|s| s.id) {
            Some(-10) => Condition::Offline,
            Some(id) if statuses.iter().any(|s| s.id == id && s.is_system()) => {
                Condition::InConversation
            }
            _ => Condition::Free,
        }
    }

    /// The memory the policy reads: a next status that has applied or been cancelled is
    /// nobody's choice any more.
    pub fn effective_memory(&self, agent_id: i64, state: &AgentState) -> SyncMemory {
        let mut memory = self.memory_of(agent_id);
        if state.next_status.is_none() {
            status_policy::next_settled(&mut memory);
        }
        memory
    }

    /// Whether the agent's own change made at `at` is still the latest.
    pub fn adapter_change_is_current(&self, agent_id: i64, at: i64, in_conversation: bool) -> bool {
        let memory = self.memory_of(agent_id);
        status_policy::adapter_change_is_current(&self.config(), &memory, at, in_conversation)
    }

    /// Saves `settings` as `actor`, with the previous value in the audit trail.
    pub async fn save(
        &self,
        pool: &AnyPool,
        actor: &str,
        settings: Settings,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_string(&settings)
            .map_err(|e| StoreError::Random(format!("settings not encodable: {e}")))?;
        let now = now_ms();
        // Immediate: the write lock up front, so another writer cannot make the upgrade from
        // the first read fail with "database is locked".
        let mut tx = crate::store::begin_write(pool).await?;
        let old: Option<(String,)> =
            sqlx::query_as("SELECT value FROM org_settings WHERE key = $1")
                .bind(SETTINGS_KEY)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO org_settings (key, value, updated_at_ms, updated_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             updated_at_ms = excluded.updated_at_ms, updated_by = excluded.updated_by",
        )
        .bind(SETTINGS_KEY)
        .bind(&value)
        .bind(now)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO settings_audit (at_ms, actor, key, old_value, new_value) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(now)
        .bind(actor)
        .bind(SETTINGS_KEY)
        .bind(old.map(|(v,)| v))
        .bind(&value)
        .execute(&mut *tx)
        .await?;
        if crate::store::is_postgres(pool) {
            // Every replica reads the settings again once this commits.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(SETTINGS_CHANNEL)
                .bind(SETTINGS_KEY)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        *self
            .settings
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = settings;
        Ok(())
    }
}

impl Inheritance {
    /// Bidirectional mode: after the agent's CCAI status became `status` (from the adapter, or
    /// from the platform after wrap-up), stores a write-back of the mapped Kustomer status in
    /// the durable outbox ([`crate::crm::writeback`]), which decides when it runs, with the
    /// agent's work session read then, whether anything must be written (no echo, no system
    /// status) and retries it until it lands. Answers the outbox operation and a receiver on
    /// which it is announced when it has run; `None` when nothing is to be written.
    pub async fn write_back(
        &self,
        state: &AppState,
        agent_id: i64,
        status: &adapter_core::agent_events::StatusView,
        statuses: &[UserStatus],
    ) -> Option<(i64, tokio::sync::broadcast::Receiver<i64>)> {
        let config = self.config();
        let is_system = statuses.iter().any(|s| s.id == status.id && s.is_system());
        status_policy::write_back(&config, status.id, is_system, None)?;
        // Only for a signed-in agent, and to the Kustomer user Kustomer says has the agent's
        // email: never an id the browser sent.
        let email = match state.sessions.agent_email_of(agent_id).await {
            Ok(Some(email)) => email,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(agent_id, %error, "write-back to Kustomer skipped: no session to read the agent's email from");
                return None;
            }
        };
        let write_back = crate::crm::writeback::StatusWriteBack {
            agent_id,
            email,
            ccai_status: status.id,
            is_system,
            config,
        };
        match state.crm.enqueue_write_back(&write_back).await {
            Ok(queued) => Some(queued),
            Err(error) => {
                tracing::error!(agent_id, %error, "write-back to Kustomer not stored; the next change writes again");
                None
            }
        }
    }
}

/// Checks and saves the admin's settings (`PUT /api/v1/status-inheritance`): every problem is
/// listed, nothing is saved unless there is none.
pub async fn save_settings(
    state: &AppState,
    actor: &str,
    settings: Settings,
) -> Result<Settings, Error> {
    if settings.kustomer_statuses.len() > MAX_KUSTOMER_STATUSES
        || settings.config.mapping.len() > MAX_KUSTOMER_STATUSES
    {
        return Err(Error::new(
            Code::TooManyStatuses,
            format!("At most {MAX_KUSTOMER_STATUSES} Kustomer statuses."),
        ));
    }
    let statuses = state.ccai.user_statuses().await?;
    let kustomer: Vec<(String, String)> = settings
        .kustomer_statuses
        .iter()
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    let ccai: Vec<(i64, String, bool)> = statuses
        .iter()
        .map(|s| (s.id, s.name.clone(), s.is_system()))
        .collect();
    let problems: Vec<String> = settings
        .config
        .problems(&Catalogue {
            kustomer: &kustomer,
            ccai: &ccai,
        })
        .iter()
        .map(ToString::to_string)
        .collect();
    if !problems.is_empty() {
        let message = format!("Not saved: {}.", problems.join("; "));
        return Err(Error::with_problems(
            Code::InvalidSettings,
            message,
            problems,
        ));
    }
    state
        .inheritance
        .save(&state.store.pool(), actor, settings.clone())
        .await?;
    tracing::info!(admin = %actor, enabled = settings.config.enabled, mapped = settings.config.mapping.len(), "status inheritance settings saved");
    Ok(settings)
}

/// The settings' history, newest first: `limit` entries (1 to 500, 50 when unset).
pub async fn audit(state: &AppState, limit: Option<u32>) -> Result<Vec<AuditEntry>, Error> {
    let limit = i64::from(limit.unwrap_or(50).clamp(1, 500));
    let rows: Vec<(i64, String, Option<String>, String)> = sqlx::query_as(
        "SELECT at_ms, actor, old_value, new_value FROM settings_audit WHERE key = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(SETTINGS_KEY)
    .bind(limit)
    .fetch_all(&state.store.pool())
    .await
    .map_err(StoreError::from)?;
    Ok(rows
        .into_iter()
        .map(|(at_ms, actor, old, new)| {
            let parse = |v: &str| serde_json::from_str::<serde_json::Value>(v).unwrap_or_default();
            AuditEntry {
                actor,
                at_ms,
                new: parse(&new),
                old: old.as_deref().map(parse),
            }
        })
        .collect())
}
