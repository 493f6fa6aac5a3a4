//! Agent status inheritance in the gateway: the admin's settings (stored per organisation,
//! audited) and the policy of [`adapter_core::status_policy`] applied to the Kustomer status
//! changes an agent's leader tab reports, and to the agent's own changes.

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
        let settings = match row {
            Some((value,)) => serde_json::from_str(&value).unwrap_or_else(|error| {
                tracing::error!(%error, "stored status inheritance settings unreadable: inheritance is off until an admin saves them again");
                Settings::default()
            }),
            None => Settings::default(),
        };
        Ok(Inheritance {
            settings: Arc::new(RwLock::new(settings)),
            memory: Arc::default(),
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

    /// Records a change applied for `agent_id`.
    pub fn remember(&self, agent_id: i64, source: Source, at: i64, as_next: bool) {
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        status_policy::remember(memory.entry(agent_id).or_default(), source, at, as_next);
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
    /// from the platform after wrap-up), writes the mapped Kustomer status to the agent's work
    /// session, unless Kustomer already says a status mapped to it (no echo) or it is a system
    /// status. Awaited in order with the change that caused it; a failure is logged, and the
    /// next change writes again.
    pub async fn write_back(
        &self,
        state: &AppState,
        agent_id: i64,
        status: &adapter_core::agent_events::StatusView,
        statuses: &[UserStatus],
    ) {
        let config = self.config();
        if !(config.enabled && config.bidirectional) {
            return;
        }
        // Only for a signed-in agent, and to the Kustomer user Kustomer says has the agent's
        // email: never an id the browser sent.
        let Some(email) = (match state.sessions.agent_email_of(agent_id).await {
            Ok(email) => email,
            Err(error) => {
                tracing::warn!(agent_id, %error, "write-back to Kustomer skipped: no session to read the agent's email from");
                return;
            }
        }) else {
            return;
        };
        let is_system = statuses.iter().any(|s| s.id == status.id && s.is_system());
        let kustomer = state.crm.kustomer();
        let user = match kustomer.user_id(&email).await {
            Ok(Some(user)) => user,
            Ok(None) => {
                tracing::warn!(agent_id, agent = %email, "write-back to Kustomer skipped: no Kustomer user has the agent's email");
                return;
            }
            Err(error) => {
                tracing::warn!(agent_id, %error, "write-back to Kustomer failed: the agent's Kustomer user could not be read");
                return;
            }
        };
        let session = match kustomer.work_session(&user).await {
            Ok(Some(session)) => session,
            Ok(None) => {
                tracing::warn!(agent_id, kustomer_user = %user, "write-back to Kustomer skipped: the user has no active work session");
                return;
            }
            Err(error) => {
                tracing::warn!(agent_id, %error, "write-back to Kustomer failed: the work session could not be read");
                return;
            }
        };
        let Some(target) =
            status_policy::write_back(&config, status.id, is_system, Some(&session.status))
        else {
            return;
        };
        match kustomer.set_work_session_status(&session.id, target).await {
            Ok(_) => tracing::info!(
                agent_id,
                kustomer_status = target,
                ccai_status = status.id,
                "CCAI status written back to Kustomer"
            ),
            Err(error) => {
                tracing::warn!(agent_id, %error, kustomer_status = target, "write-back to Kustomer failed")
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
