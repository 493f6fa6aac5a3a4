//! What the CRM sync's admin endpoints read and do (the HTTP side is [`crate::http::admin`]):
//! the outbox's figures and the session events waiting for their details, the dead letters, and
//! a dead letter's retry.

use serde_json::{json, Value};

use super::{CrmError, CrmSync};
use crate::error::{Code, Error};

impl From<CrmError> for Error {
    fn from(error: CrmError) -> Self {
        match error {
            CrmError::Invalid(message) => Error::new(Code::InvalidSettings, message),
            CrmError::Kustomer(e) => {
                tracing::warn!(error = %e, "Kustomer error in a CRM admin action");
                Error::new(Code::KustomerUnavailable, e.to_string())
            }
            CrmError::Database(e) => {
                tracing::error!(error = %e, "store error in a CRM admin action");
                Error::new(
                    Code::StoreUnavailable,
                    "The gateway cannot reach its database; try again in a moment.",
                )
            }
        }
    }
}

/// How many operations are pending, done and dead, and the session events waiting for their
/// details (with the reason).
pub async fn outbox(crm: &CrmSync) -> Result<Value, CrmError> {
    let pool = crm.pool();
    // One statement, one snapshot: counted apart, the planner could move an event from the
    // inbox to the outbox between the two counts, and a drained queue be reported too early.
    let (inbox, pending, done, dead): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM crm_inbox),
                (SELECT COUNT(*) FROM crm_outbox WHERE state = 'pending'),
                (SELECT COUNT(*) FROM crm_outbox WHERE state = 'done'),
                (SELECT COUNT(*) FROM crm_outbox WHERE state = 'dead')",
    )
    .fetch_one(pool)
    .await?;
    // Session events whose details could not be read yet, and why: kept, retried, never dropped.
    let waiting: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT seq, attempts, last_error FROM crm_inbox WHERE attempts > 0 ORDER BY seq LIMIT 50",
    )
    .fetch_all(pool)
    .await?;
    let waiting: Vec<Value> = waiting
        .into_iter()
        .map(|(seq, attempts, reason)| json!({"seq": seq, "attempts": attempts, "reason": reason}))
        .collect();
    Ok(json!({
        "enabled": crm.enabled(),
        "inbox": inbox, "pending": pending, "done": done, "dead": dead,
        "waiting": waiting,
        "kustomer_requests": crm.kustomer().requests_sent(),
    }))
}

/// `(seq, key, session_id, rule, op, attempts, last_error)`.
type DeadRow = (i64, String, i64, String, String, i64, Option<String>);

/// The dead letters, oldest first (at most 500).
pub async fn dead_letters(crm: &CrmSync) -> Result<Vec<Value>, CrmError> {
    let rows: Vec<DeadRow> = sqlx::query_as(
        "SELECT seq, key, session_id, rule, op, attempts, last_error FROM crm_outbox WHERE state = 'dead' ORDER BY seq LIMIT 500",
    )
    .fetch_all(crm.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, key, session_id, rule, op, attempts, reason)| {
            let op: Value = serde_json::from_str(&op).unwrap_or_default();
            json!({"seq": seq, "key": key, "session_id": session_id, "rule": rule,
                "operation": op["op"], "attempts": attempts, "reason": reason})
        })
        .collect())
}

/// Puts dead letter `seq` back in the outbox; `false` when there is no such dead letter.
pub async fn retry(crm: &CrmSync, seq: i64) -> Result<bool, CrmError> {
    let done = sqlx::query(
        "UPDATE crm_outbox SET state = 'pending', attempts = 0, due_ms = ?, last_error = NULL WHERE seq = ? AND state = 'dead'",
    )
    .bind(crate::clock::now_ms())
    .bind(seq)
    .execute(crm.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    crm.wake_executor();
    Ok(true)
}
