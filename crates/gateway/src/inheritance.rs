//! Agent status inheritance in the gateway: the admin's settings (stored per organisation,
//! audited) and the policy of [`adapter_core::status_policy`] applied to the Kustomer status
//! changes an agent's leader tab reports, and to the agent's own changes. The policy's memory
//! of each agent (who made the latest change and chose the next status, when) is kept in the
//! store (`status_policy_memory`), so a restart keeps it. Write-backs to Kustomer
//! (bidirectional mode) go through the durable outbox ([`crate::crm::writeback`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
};

use adapter_core::{
    agent_events::AgentState,
    status_policy::{self, Catalogue, Condition, InheritanceConfig, Source, SyncMemory},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::SqlitePool;

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KustomerStatus {
    pub id: String,
    pub name: String,
}

/// What admins save: the configuration, and the Kustomer statuses it was made against (read
/// from Kustomer by the admin's adapter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub config: InheritanceConfig,
    #[serde(default)]
    pub kustomer_statuses: Vec<KustomerStatus>,
}

/// Inheritance state shared by the handlers. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Inheritance {
    settings: Arc<RwLock<Settings>>,
    memory: Arc<Mutex<HashMap<i64, SyncMemory>>>,
    /// Where the memory is kept (`None`: in memory only).
    pool: Option<SqlitePool>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inheritance {
    /// The saved settings (off when none were saved).
    pub async fn load(pool: &SqlitePool) -> Result<Self, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM org_settings WHERE key = ?")
            .bind(SETTINGS_KEY)
            .fetch_optional(pool)
            .await?;
        let memory: Vec<(i64, String)> =
            sqlx::query_as("SELECT agent_id, memory FROM status_policy_memory")
                .fetch_all(pool)
                .await?;
        let memory: HashMap<i64, SyncMemory> = memory
            .into_iter()
            .filter_map(|(agent, text)| match serde_json::from_str(&text) {
                Ok(memory) => Some((agent, memory)),
                Err(error) => {
                    tracing::warn!(agent_id = agent, %error, "stored status policy memory unreadable; starting afresh for this agent");
                    None
                }
            })
            .collect();
        let settings = match row {
            Some((value,)) => serde_json::from_str(&value).unwrap_or_else(|error| {
                tracing::error!(%error, "stored status inheritance settings unreadable: inheritance is off until an admin saves them again");
                Settings::default()
            }),
            None => Settings::default(),
        };
        Ok(Inheritance {
            settings: Arc::new(RwLock::new(settings)),
            memory: Arc::new(Mutex::new(memory)),
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
            .cloned()
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
            status_policy::remember(entry, source, at, as_next);
            entry.clone()
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
        if let Err(error) = sqlx::query(
            "INSERT INTO status_policy_memory (agent_id, memory, updated_at_ms) VALUES (?, ?, ?)
             ON CONFLICT (agent_id) DO UPDATE SET memory = excluded.memory, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(agent_id)
        .bind(text)
        .bind(now_ms())
        .execute(pool)
        .await
        {
            tracing::warn!(agent_id, %error, "status policy memory not stored; kept in this process only");
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
        pool: &SqlitePool,
        actor: &str,
        settings: Settings,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_string(&settings)
            .map_err(|e| StoreError::Random(format!("settings not encodable: {e}")))?;
        let now = now_ms();
        // Immediate: the write lock up front, so another writer cannot make the upgrade from
        // the first read fail with "database is locked".
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let old: Option<(String,)> = sqlx::query_as("SELECT value FROM org_settings WHERE key = ?")
            .bind(SETTINGS_KEY)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO org_settings (key, value, updated_at_ms, updated_by) VALUES (?, ?, ?, ?) \
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
            "INSERT INTO settings_audit (at_ms, actor, key, old_value, new_value) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(now)
        .bind(actor)
        .bind(SETTINGS_KEY)
        .bind(old.map(|(v,)| v))
        .bind(&value)
        .execute(&mut *tx)
        .await?;
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
pub async fn audit(state: &AppState, limit: Option<u32>) -> Result<Vec<serde_json::Value>, Error> {
    let limit = i64::from(limit.unwrap_or(50).clamp(1, 500));
    let rows: Vec<(i64, String, Option<String>, String)> = sqlx::query_as(
        "SELECT at_ms, actor, old_value, new_value FROM settings_audit WHERE key = ? ORDER BY id DESC LIMIT ?",
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
            json!({"at_ms": at_ms, "actor": actor, "old": old.as_deref().map(parse), "new": parse(&new)})
        })
        .collect())
}
