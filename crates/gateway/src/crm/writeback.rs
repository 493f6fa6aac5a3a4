//! Status write-backs to Kustomer (bidirectional status inheritance) as outbox operations: the
//! agent's new CCAI status is stored in the outbox (rule [`RULE`], lane `agent-{id}`), so the
//! change that caused it answers without waiting for Kustomer, and a failed write-back is
//! retried like every other operation (backoff, retry budget, circuit breaker). A newer change
//! of the same agent replaces the older ones still waiting: only the latest status matters.
//!
//! Whether to write, and what, is decided when the operation runs, with the agent's work session
//! read then ([`adapter_core::status_policy::write_back`]): nothing when Kustomer already shows a
//! status mapped to it (no echo), nothing for a system status (Kustomer marks the agent busy
//! during a call itself), and nothing when the user has no active work session.

use adapter_core::status_policy::{self, InheritanceConfig};
use serde::{Deserialize, Serialize};

use super::{
    agent_lane,
    failure::{permanent, random_bits, OpFailure},
    CrmError, CrmSync,
};

/// The outbox rule of a status write-back.
pub const RULE: &str = "status_write_back";

/// One write-back, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusWriteBack {
    /// The agent (CCAI id).
    pub agent_id: i64,
    /// The agent's email, from its session: the Kustomer user is Kustomer's answer for it.
    pub email: String,
    /// The CCAI status the agent now has.
    pub ccai_status: i64,
    /// Whether that is a system status (a call, wrap-up).
    pub is_system: bool,
    /// The inheritance settings in force when the status changed (the mapping).
    pub config: InheritanceConfig,
}

impl CrmSync {
    /// Stores a write-back (replacing the agent's older ones that have not started) and wakes
    /// the executor. Answers the operation's number and a receiver on which it is announced
    /// once it has run (see [`CrmSync::finished`]).
    pub async fn enqueue_write_back(
        &self,
        write_back: &StatusWriteBack,
    ) -> Result<(i64, tokio::sync::broadcast::Receiver<i64>), CrmError> {
        let finished = self.finished();
        let op = serde_json::to_string(write_back).map_err(|e| CrmError::Invalid(e.to_string()))?;
        let now = self.clock().now_ms();
        let lane = agent_lane(write_back.agent_id);
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let replaced = sqlx::query(
            "DELETE FROM crm_outbox WHERE lane = $1 AND rule = $2 AND state = 'pending' AND lease_until_ms <= $3",
        )
        .bind(&lane)
        .bind(RULE)
        .bind(crate::clock::now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO crm_outbox (key, session_id, lane, rule, op, due_ms, created_ms)
             VALUES ($1, 0, $2, $3, $4, $5, $6) RETURNING seq",
        )
        .bind(format!("{lane}/status/{now}-{:08x}", random_bits() as u32))
        .bind(&lane)
        .bind(RULE)
        .bind(op)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        if replaced > 0 {
            tracing::debug!(
                agent_id = write_back.agent_id,
                replaced,
                "older status write-backs replaced by a newer one"
            );
        }
        self.wake_executor();
        Ok((seq, finished))
    }
}

/// Runs a write-back: reads the agent's work session and writes the mapped status unless the
/// policy says there is nothing to write.
pub(crate) async fn execute(sync: &CrmSync, write_back: &StatusWriteBack) -> Result<(), OpFailure> {
    let StatusWriteBack {
        agent_id,
        email,
        ccai_status,
        is_system,
        config,
    } = write_back;
    // Nothing could be written whatever Kustomer shows (mode off, system status, unmapped).
    if status_policy::write_back(config, *ccai_status, *is_system, None).is_none() {
        return Ok(());
    }
    let kustomer = sync.kustomer();
    let user = kustomer
        .user_id(email)
        .await?
        .ok_or_else(|| permanent(format!("no Kustomer user has the email {email}")))?;
    let Some(session) = kustomer.work_session(&user).await? else {
        tracing::info!(
            agent_id,
            kustomer_user = %user,
            "status write-back: the Kustomer user has no active work session; nothing to write"
        );
        return Ok(());
    };
    let Some(target) =
        status_policy::write_back(config, *ccai_status, *is_system, Some(&session.status))
    else {
        return Ok(());
    };
    kustomer
        .set_work_session_status(&session.id, target)
        .await?;
    tracing::info!(
        agent_id,
        kustomer_status = target,
        ccai_status,
        "CCAI status written back to Kustomer"
    );
    Ok(())
}
