//! What the CRM sync's admin endpoints read and do (the HTTP side is [`crate::http::admin`]):
//! the outbox in figures (pending, held, done, dead, the oldest pending one's age, the circuit
//! breaker) with the session events waiting for their details, the dead letters, and retries of
//! one dead letter, one session's, or every one; a retry also releases the operations held
//! behind the dead letters it retries.

use adapter_core::agent_api::DeadLetter;
use serde_json::{json, Value};

use super::{CrmError, CrmSync};
use crate::error::{Code, Error};

impl From<CrmError> for Error {
    fn from(error: CrmError) -> Self {
        match error {
            CrmError::Invalid(message) => Error::new(Code::InvalidSettings, message),
            CrmError::Kustomer(crate::kustomer::KustomerError::Store(why)) => {
                tracing::error!(error = %why, "store error in a CRM admin action");
                Error::new(
                    Code::StoreUnavailable,
                    "The gateway cannot reach its database; try again in a moment.",
                )
            }
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

/// The outbox in figures, the breaker, and the session events waiting for their details (with
/// the reason).
pub async fn outbox(crm: &CrmSync) -> Result<Value, CrmError> {
    let figures = crm.figures().await?;
    // Session events whose details could not be read yet, and why: kept, retried, never dropped.
    let waiting: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT seq, attempts, last_error FROM crm_inbox WHERE attempts > 0 ORDER BY seq LIMIT 50",
    )
    .fetch_all(crm.pool())
    .await?;
    let waiting: Vec<Value> = waiting
        .into_iter()
        .map(|(seq, attempts, reason)| json!({"seq": seq, "attempts": attempts, "reason": reason}))
        .collect();
    Ok(json!({
        "enabled": crm.enabled(),
        "inbox": figures.inbox, "pending": figures.pending, "held": figures.held,
        "done": figures.done, "dead": figures.dead,
        "oldest_pending_age_ms": figures.oldest_pending_age_ms,
        "kustomer": figures.breaker.health(),
        "retry_hours": crm.retry_budget().as_secs() / 3600,
        "waiting": waiting,
        "kustomer_requests": crm.kustomer().requests_sent(),
    }))
}

/// `(seq, key, session_id, lane, rule, op, attempts, last_error)`.
type DeadRow = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
);

/// The dead letters, oldest first (at most 500).
pub async fn dead_letters(crm: &CrmSync) -> Result<Vec<DeadLetter>, CrmError> {
    let rows: Vec<DeadRow> = sqlx::query_as(
        "SELECT seq, key, session_id, lane, rule, op, attempts, last_error FROM crm_outbox WHERE state = 'dead' ORDER BY seq LIMIT 500",
    )
    .fetch_all(crm.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, key, session_id, lane, rule, op, attempts, reason)| {
            let op: Value = serde_json::from_str(&op).unwrap_or_default();
            let operation = if rule == super::writeback::RULE {
                json!("status_write_back")
            } else {
                op["op"].clone()
            };
            DeadLetter {
                attempts,
                key,
                lane,
                operation,
                reason,
                rule,
                seq,
                session_id,
            }
        })
        .collect())
}

/// What a retry puts back in the queue.
pub enum Retry {
    /// One dead letter, and what waits behind it in its lane.
    One(i64),
    /// Every dead letter of one session, and what waits behind them.
    Session(i64),
    /// Every dead letter, and everything held.
    All,
}

/// Puts dead letters (and the operations held behind them) back in the queue; how many.
pub async fn retry(crm: &CrmSync, which: Retry) -> Result<u64, CrmError> {
    // The conditions are ours, never input; the values are bound.
    let (dead, held, binds): (&str, &str, Vec<Value>) = match which {
        Retry::One(seq) => (
            "seq = $2",
            "lane = (SELECT lane FROM crm_outbox WHERE seq = $3) AND seq > $4",
            vec![json!(seq), json!(seq), json!(seq)],
        ),
        Retry::Session(id) => {
            let lane = super::session_lane(id);
            ("lane = $2", "lane = $3", vec![json!(lane), json!(lane)])
        }
        Retry::All => ("1 = 1", "1 = 1", Vec::new()),
    };
    let sql = format!(
        "UPDATE crm_outbox SET state = 'pending', attempts = 0, due_ms = $1, last_error = NULL, first_failed_ms = NULL, lease_until_ms = 0
         WHERE (state = 'dead' AND {dead}) OR (state = 'held' AND {held})"
    );
    let mut query = sqlx::query(&sql).bind(crm.clock().now_ms());
    for value in binds {
        query = match value {
            Value::Number(n) => query.bind(n.as_i64()),
            other => query.bind(other.as_str().unwrap_or_default().to_owned()),
        };
    }
    let released = query.execute(crm.pool()).await?.rows_affected();
    if released > 0 {
        crm.wake_executor();
    }
    Ok(released)
}
