//! The circuit breaker of all Kustomer work, kept in the store (`kustomer_breaker`, migration
//! 0060) so that every replica on it pauses and resumes together.
//!
//! - Closed: operations run. Every answer from Kustomer (a success, or a refusal of one
//!   operation) resets the count of outage failures.
//! - Open: on a refused API key (401/403: a rotated, expired or restricted key) at once, or
//!   after [`STORM`] outage failures in a row (5xx, timeouts, connections refused or dropped).
//!   No operation is tried and none dead-letters; one replica at a time lets one operation
//!   through as a probe ([`take_probe`]): after a second, then at intervals doubling up to
//!   `--crm-breaker-probe-seconds` (30 by default), so a blip heals in seconds and a long outage
//!   costs one request per interval.
//! - The first answer from Kustomer closes it: the pending operations are due at once, and the
//!   pause does not count against their retry budget.

use sqlx::AnyPool;

/// Outage failures in a row (with no answer from Kustomer between them) that open the breaker.
pub const STORM: i64 = 5;
/// The first probe's delay after the breaker opens; each next one doubles it.
pub const FIRST_PROBE_MS: i64 = 1000;

/// The breaker as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Breaker {
    pub open: bool,
    /// Why it opened (the last failure seen while open).
    pub reason: Option<String>,
    /// When it opened (the outbox's clock).
    pub opened_ms: Option<i64>,
    /// When the next probe may go (while open).
    pub next_probe_ms: i64,
    /// Probes let through since it opened.
    pub probes: i64,
    /// Outage failures in a row.
    pub failures: i64,
}

impl Breaker {
    /// What the gateway says of its Kustomer work: `ok`, or `paused` with why and since when.
    pub fn health(&self) -> serde_json::Value {
        if self.open {
            serde_json::json!({
                "status": "paused",
                "message": format!(
                    "Kustomer work is paused (circuit breaker open): {}. Nothing is lost or dead-lettered; it resumes by itself when Kustomer answers again.",
                    self.reason.as_deref().unwrap_or("Kustomer is failing")
                ),
                "reason": self.reason,
                "since_ms": self.opened_ms,
                "next_probe_ms": self.next_probe_ms,
            })
        } else {
            serde_json::json!({"status": "ok"})
        }
    }
}

/// What an operation's attempt said about Kustomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Kustomer answered (a success, or a refusal of this operation): it is up, the key works.
    Answered,
    /// A 5xx, a timeout, or no connection.
    Outage,
    /// 401 or 403: the API key was refused.
    KeyRefused,
}

pub async fn read(pool: &AnyPool) -> Result<Breaker, sqlx::Error> {
    let (open, reason, opened_ms, next_probe_ms, probes, failures): BreakerRow = sqlx::query_as(
        "SELECT open, reason, opened_ms, next_probe_ms, probes, failures FROM kustomer_breaker WHERE id = 1",
    )
    .fetch_one(pool)
    .await?;
    Ok(Breaker {
        open: open != 0,
        reason,
        opened_ms,
        next_probe_ms,
        probes,
        failures,
    })
}

type BreakerRow = (i64, Option<String>, Option<i64>, i64, i64, i64);

/// Records what an attempt said. Answers whether this opened (`Some(true)`) or closed
/// (`Some(false)`) the breaker, for the log, and whether it is open now.
pub async fn record(
    pool: &AnyPool,
    signal: Signal,
    reason: &str,
    now: i64,
    probe_every_ms: i64,
) -> Result<(Option<bool>, bool), sqlx::Error> {
    // The common case, an answer while closed with no failure counted, writes nothing: the
    // outbox's writes are what the store's one writer is for.
    let seen = read(pool).await?;
    if signal == Signal::Answered && !seen.open && seen.failures == 0 {
        return Ok((None, false));
    }
    let mut tx = crate::store::begin_write(pool).await?;
    // Writing the row first locks it (PostgreSQL) or the store (SQLite): another replica's
    // record waits rather than count from the same reading.
    sqlx::query("UPDATE kustomer_breaker SET failures = failures WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    let (was_open, failures, opened_ms): (i64, i64, Option<i64>) =
        sqlx::query_as("SELECT open, failures, opened_ms FROM kustomer_breaker WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let changed = match signal {
        Signal::Answered if was_open != 0 => {
            sqlx::query(
                "UPDATE kustomer_breaker SET open = 0, reason = NULL, opened_ms = NULL, probes = 0, failures = 0 WHERE id = 1",
            )
            .execute(&mut *tx)
            .await?;
            // Everything is due now, and the pause does not count against the retry budget:
            // each failing operation's start moves forward by the pause.
            let paused = (now - opened_ms.unwrap_or(now)).max(0);
            sqlx::query(
                "UPDATE crm_outbox SET due_ms = CASE WHEN $1 < due_ms THEN $1 ELSE due_ms END, first_failed_ms = first_failed_ms + $2 WHERE state = 'pending'",
            )
            .bind(now)
            .bind(paused)
            .execute(&mut *tx)
            .await?;
            Some(false)
        }
        Signal::Answered => {
            sqlx::query("UPDATE kustomer_breaker SET failures = 0 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            None
        }
        Signal::Outage | Signal::KeyRefused => {
            let opens = was_open == 0 && (signal == Signal::KeyRefused || failures + 1 >= STORM);
            if opens {
                sqlx::query(
                    "UPDATE kustomer_breaker SET open = 1, reason = $1, opened_ms = $2, next_probe_ms = $3, probes = 0, failures = failures + 1 WHERE id = 1",
                )
                .bind(reason)
                .bind(now)
                .bind(now + FIRST_PROBE_MS.min(probe_every_ms))
                .execute(&mut *tx)
                .await?;
                Some(true)
            } else if was_open != 0 {
                sqlx::query(
                    "UPDATE kustomer_breaker SET reason = $1, failures = failures + 1 WHERE id = 1",
                )
                .bind(reason)
                .execute(&mut *tx)
                .await?;
                None
            } else {
                sqlx::query("UPDATE kustomer_breaker SET failures = failures + 1 WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                None
            }
        }
    };
    tx.commit().await?;
    let open = match changed {
        Some(opened) => opened,
        None => was_open != 0,
    };
    Ok((changed, open))
}

/// While open: whether this worker may let one operation through now (one replica at a time);
/// the next probe's turn comes after twice the last interval, at most `probe_every_ms`.
pub async fn take_probe(
    pool: &AnyPool,
    now: i64,
    probe_every_ms: i64,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE kustomer_breaker SET next_probe_ms = $1 + CASE WHEN $2 < ($3 << CAST(CASE WHEN probes < 19 THEN probes + 1 ELSE 20 END AS INTEGER))
                                                         THEN $2 ELSE ($3 << CAST(CASE WHEN probes < 19 THEN probes + 1 ELSE 20 END AS INTEGER)) END,
                                 probes = probes + 1
         WHERE id = 1 AND open = 1 AND next_probe_ms <= $1",
    )
    .bind(now)
    .bind(probe_every_ms)
    .bind(FIRST_PROBE_MS)
    .execute(pool)
    .await?;
    Ok(taken.rows_affected() == 1)
}
