//! Runs the outbox: claims due operations (the oldest pending one of each lane, so a session's
//! operations keep their order), carries them out against Kustomer, and records the outcome:
//! done; retried with backoff and jitter while the retry budget lasts; held behind a dead
//! letter of its lane that it needs; or a dead letter with its reason. Each worker takes the
//! next operation as soon as its own is finished, and renews its lease while it runs (an
//! operation may wait a minute for the org's budget). What an attempt says about Kustomer feeds
//! the circuit breaker ([`super::breaker`]); while it is open nothing is claimed but a probe.
//!
//! A claim is fenced: it counts the row's `attempts` up, and that count is the holder's token.
//! A renewal, and every outcome written, names it; a worker whose lease was taken by another
//! (it paused past its lease: a stalled process, a replica cut off from the store) finds its
//! renewal refused, stops its operation there, and records nothing, so only the current holder
//! finishes a row. What the stopped attempt may already have written, the next one looks for
//! before it writes again.

use std::time::Duration;

use adapter_core::{
    agent_events::{Channel, Direction},
    backoff::Backoff,
    crm::{
        choose_conversation, Choice, ConversationPolicy, CustomerKey, CustomerSpec, FileSource,
        MessageSpec, Operation,
    },
};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::{
    breaker::{self, Signal},
    failure::{needs_earlier, permanent, random_bits, waiting, FailureKind, OpFailure},
    writeback::{self, StatusWriteBack},
    CrmError, CrmSync, LEASE,
};
use crate::kustomer::{AttachmentRef, KustomerError, PendingUpload};

/// One claimed row.
#[derive(Debug)]
struct Job {
    seq: i64,
    key: String,
    session_id: i64,
    lane: String,
    rule: String,
    op: String,
    /// Attempts before this one: more than 0, an earlier attempt may have gone through. This
    /// attempt's number (one more) is the claim's fencing token.
    earlier_attempts: i64,
    /// When it began failing (the outbox's clock), for the retry budget.
    first_failed_ms: Option<i64>,
}

/// What the session's operations found or created so far.
#[derive(Debug, Default, sqlx::FromRow)]
struct SessionRow {
    started_ms: i64,
    customer_id: Option<String>,
    /// 1 when this session created the customer (flags are integers on both engines).
    customer_created: i64,
    conversation_id: Option<String>,
    message_id: Option<String>,
    /// The agent the conversation was assigned to when this session created it.
    conversation_assignee: Option<String>,
    /// 1 when the customer was taken from an earlier session, not asked of Kustomer.
    customer_reused: i64,
    /// The agent the customer was assigned to when this session created it.
    customer_assignee: Option<String>,
}

/// How long a customer that Kustomer found or created for a session is taken again, without a
/// look-up, by a later session with the same key (a caller who calls back within minutes). A
/// customer merged or deleted in Kustomer meanwhile is noticed at the next request about it
/// (its conversations: 404) and looked up again.
pub const CUSTOMER_REUSE: Duration = Duration::from_secs(600);

/// A customer key as `crm_sessions.customer_key` keeps it.
fn key_text(key: &CustomerKey) -> String {
    match key {
        CustomerKey::ExternalId(v) => format!("external_id:{v}"),
        CustomerKey::Email(v) => format!("email:{v}"),
        CustomerKey::Phone(v) => format!("phone:{v}"),
    }
}

/// From a second to five minutes; the delay is drawn from its upper half, so that operations
/// that failed together do not all come back together.
const BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(300),
    factor: 2,
    jitter: 0.5,
};

/// How long an idle worker pool waits for a wake-up before it looks at the outbox again.
const POLL: Duration = Duration::from_millis(250);

fn random_unit() -> f64 {
    (random_bits() >> 11) as f64 / (1u64 << 53) as f64
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Keeps `--crm-workers` operations running: a worker that finishes takes the next due one at
/// once, whatever the others are waiting for.
pub(crate) async fn run_forever(sync: CrmSync) {
    let mut running: JoinSet<()> = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let free = sync.workers().saturating_sub(running.len());
        if free > 0 {
            match claim(&sync, free).await {
                Ok(jobs) => {
                    for job in jobs {
                        let sync = sync.clone();
                        running.spawn(async move { run(&sync, job).await });
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "CRM executor: cannot read the outbox; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        tokio::select! {
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = sync.executor_wait(POLL) => {}
        }
    }
}

const CLAIM_COLUMNS: &str =
    "o.seq, o.key, o.session_id, o.lane, o.rule, o.op, o.attempts, o.first_failed_ms";
/// The oldest pending operation of its lane, not leased by a running worker; with the CRM sync
/// off (`?4` false), only status write-backs (rule `?5`).
const LANE_HEAD: &str = "o.state = 'pending' AND o.lease_until_ms <= $1
    AND ($4 OR o.rule = $5)
    AND NOT EXISTS (SELECT 1 FROM crm_outbox p
                    WHERE p.state = 'pending' AND p.lane = o.lane AND p.seq < o.seq)";

type ClaimRow = (i64, String, i64, String, String, String, i64, Option<i64>);

/// `a` and `b` taken in turns, `a` first, at most `n` in all.
fn in_turns<T>(a: Vec<T>, b: Vec<T>, n: usize) -> Vec<T> {
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
    out.truncate(n);
    out
}

/// Claims up to `free` due operations, the oldest pending one of each lane, taken in turns from
/// the agents' status write-backs and the CRM sync, so that each gets half of the workers (and
/// so about half of the org's Kustomer budget) when both wait, and all of them when only one
/// does: a backlog of calls does not hold an agent's status change back for minutes, nor a
/// storm of status changes the calls. While the breaker is open, only a probe's one when its
/// turn has come (the one due soonest, so that an operation that fails on its own cannot keep
/// the breaker open).
async fn claim(sync: &CrmSync, free: usize) -> Result<Vec<Job>, CrmError> {
    let pool = sync.pool();
    let now = sync.clock().now_ms();
    let real_now = crate::clock::now_ms();
    let probe_every = ms(sync.probe_every());
    let candidates: Vec<ClaimRow> = if breaker::read(pool).await?.open {
        if !breaker::take_probe(pool, now, probe_every).await? {
            return Ok(Vec::new());
        }
        let probe: Vec<ClaimRow> = sqlx::query_as(&format!(
            "SELECT {CLAIM_COLUMNS} FROM crm_outbox o WHERE {LANE_HEAD} ORDER BY o.due_ms, o.seq LIMIT 1"
        ))
        .bind(real_now)
        .bind(now)
        .bind(1)
        .bind(sync.enabled())
        .bind(writeback::RULE)
        .fetch_all(pool)
        .await?;
        if let Some(row) = probe.first() {
            tracing::info!(
                key = row.1,
                "Kustomer paused (circuit breaker open): one operation goes through as a probe"
            );
        }
        probe
    } else {
        let sql = |class: &str| {
            format!(
                "SELECT {CLAIM_COLUMNS} FROM crm_outbox o WHERE {LANE_HEAD} AND o.due_ms <= $2 AND {class} ORDER BY o.seq LIMIT $3"
            )
        };
        let mut due = Vec::with_capacity(2);
        for class in ["o.rule = $5", "o.rule <> $5"] {
            due.push(
                sqlx::query_as::<_, ClaimRow>(&sql(class))
                    .bind(real_now)
                    .bind(now)
                    .bind(free as i64)
                    .bind(sync.enabled())
                    .bind(writeback::RULE)
                    .fetch_all(pool)
                    .await?,
            );
        }
        let sessions = due.pop().unwrap_or_default();
        let write_backs = due.pop().unwrap_or_default();
        in_turns(write_backs, sessions, free)
    };
    let mut jobs = Vec::with_capacity(candidates.len());
    for (seq, key, session_id, lane, rule, op, attempts, first_failed_ms) in candidates {
        // The lease and the attempt are written before the operation is tried.
        let claimed = sqlx::query(
            "UPDATE crm_outbox SET lease_until_ms = $1, attempts = attempts + 1
             WHERE seq = $2 AND state = 'pending' AND lease_until_ms <= $3 AND attempts = $4",
        )
        .bind(real_now + ms(LEASE))
        .bind(seq)
        .bind(real_now)
        .bind(attempts)
        .execute(pool)
        .await?;
        if claimed.rows_affected() == 1 {
            jobs.push(Job {
                seq,
                key,
                session_id,
                lane,
                rule,
                op,
                earlier_attempts: attempts,
                first_failed_ms,
            });
        }
    }
    Ok(jobs)
}

impl Job {
    /// The claim's fencing token: the row's `attempts` as this claim left it.
    fn token(&self) -> i64 {
        self.earlier_attempts + 1
    }
}

/// The lease of a job was taken by another worker: its attempt stops, and records nothing.
#[derive(Debug)]
struct LeaseLost;

/// Runs the job, renewing its lease while it runs; stops it when the lease is no longer its.
async fn attempt(sync: &CrmSync, job: &Job) -> Result<Result<(), OpFailure>, LeaseLost> {
    let work = async {
        if job.rule == writeback::RULE {
            match serde_json::from_str::<StatusWriteBack>(&job.op) {
                Ok(write_back) => writeback::execute(sync, &write_back).await,
                Err(e) => Err(permanent(format!(
                    "the stored write-back does not decode: {e}"
                ))),
            }
        } else {
            match serde_json::from_str::<Operation>(&job.op) {
                Ok(op) => execute(sync, job, &op).await,
                Err(e) => Err(permanent(format!(
                    "the stored operation does not decode: {e}"
                ))),
            }
        }
    };
    tokio::pin!(work);
    let mut renew = tokio::time::interval(LEASE / 3);
    renew.tick().await;
    loop {
        tokio::select! {
            // A renewal that is due goes first: after a pause past the lease, the operation
            // must not take another step before the worker knows the row is still its.
            biased;
            _ = renew.tick() => {
                let until = crate::clock::now_ms() + ms(LEASE);
                match sqlx::query("UPDATE crm_outbox SET lease_until_ms = $1 WHERE seq = $2 AND state = 'pending' AND attempts = $3")
                    .bind(until)
                    .bind(job.seq)
                    .bind(job.token())
                    .execute(sync.pool())
                    .await
                {
                    Ok(renewed) if renewed.rows_affected() == 0 => return Err(LeaseLost),
                    Ok(_) => {}
                    // The store cannot say: the operation goes on, and its outcome is written
                    // only if the row is still this claim's.
                    Err(error) => {
                        tracing::warn!(key = job.key, %error, "cannot renew a CRM operation's lease")
                    }
                }
            }
            outcome = &mut work => return Ok(outcome),
        }
    }
}

/// What the attempt's outcome says about Kustomer.
fn signal(outcome: &Result<(), OpFailure>) -> Option<Signal> {
    match outcome {
        Ok(()) => Some(Signal::Answered),
        Err(f) => match f.kind {
            FailureKind::Outage => Some(Signal::Outage),
            FailureKind::KeyRefused => Some(Signal::KeyRefused),
            FailureKind::Permanent => Some(Signal::Answered),
            FailureKind::Retry | FailureKind::NeedsEarlier => None,
        },
    }
}

async fn run(sync: &CrmSync, job: Job) {
    let outcome = match attempt(sync, &job).await {
        Ok(outcome) => outcome,
        Err(LeaseLost) => {
            tracing::warn!(
                key = job.key,
                "CRM operation stopped: its lease was taken by another worker, which carries it on"
            );
            operations("lease_lost");
            sync.wake_executor();
            return;
        }
    };
    if let Err(error) = record(sync, &job, outcome).await {
        // The lease runs out and the operation is tried again, looking first for what it wrote.
        tracing::warn!(key = job.key, %error, "cannot record a CRM operation's outcome");
    }
    sync.announce_finished(job.seq);
    sync.wake_executor();
}

/// Says so when an outcome was not written because the row is no longer this claim's (its
/// lease was taken while the operation ran; the current holder writes its own).
fn fenced(job: &Job, outcome: &str, written: &sqlx::any::AnyQueryResult) {
    if written.rows_affected() == 0 {
        tracing::warn!(
            key = job.key,
            outcome,
            "CRM operation outcome not recorded: its lease was taken meanwhile"
        );
    }
}

fn operations(outcome: &'static str) {
    metrics::counter!("gateway_crm_operations_total", "outcome" => outcome).increment(1);
}

async fn record(
    sync: &CrmSync,
    job: &Job,
    outcome: Result<(), OpFailure>,
) -> Result<(), sqlx::Error> {
    let pool = sync.pool();
    let now = sync.clock().now_ms();
    let attempts = job.earlier_attempts + 1;
    let reason = outcome
        .as_ref()
        .err()
        .map(|f| f.reason.clone())
        .unwrap_or_default();
    let breaker_open = match signal(&outcome) {
        Some(signal) => {
            let (changed, open) =
                breaker::record(pool, signal, &reason, now, ms(sync.probe_every())).await?;
            match changed {
                Some(true) => tracing::warn!(
                    reason,
                    "Kustomer work paused (circuit breaker open): nothing is tried or dead-lettered until Kustomer answers again"
                ),
                Some(false) => tracing::info!("Kustomer answers again: the CRM outbox resumes"),
                None => {}
            }
            open
        }
        None => breaker::read(pool).await?.open,
    };
    let failure = match outcome {
        Ok(()) => {
            tracing::debug!(key = job.key, "CRM operation done");
            operations("done");
            sqlx::query("UPDATE crm_outbox SET state = 'done', done_ms = $1, lease_until_ms = 0, last_error = NULL, first_failed_ms = NULL WHERE seq = $2 AND state = 'pending' AND attempts = $3")
                .bind(now)
                .bind(job.seq)
                .bind(job.token())
                .execute(pool)
                .await
                .map(|written| fenced(job, "done", &written))?;
            return Ok(());
        }
        Err(failure) => failure,
    };
    let dead = |reason: String| async move {
        tracing::warn!(
            key = job.key,
            attempts,
            reason,
            "CRM operation moved to the dead letters"
        );
        operations("dead");
        sqlx::query("UPDATE crm_outbox SET state = 'dead', lease_until_ms = 0, last_error = $1 WHERE seq = $2 AND state = 'pending' AND attempts = $3")
            .bind(reason)
            .bind(job.seq)
            .bind(job.token())
            .execute(pool)
            .await
            .map(|written| fenced(job, "dead", &written))
    };
    match failure.kind {
        FailureKind::Permanent => dead(failure.reason).await,
        FailureKind::NeedsEarlier => {
            let blocker: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT seq, last_error FROM crm_outbox WHERE lane = $1 AND state = 'dead' AND seq < $2 ORDER BY seq LIMIT 1",
            )
            .bind(&job.lane)
            .bind(job.seq)
            .fetch_optional(pool)
            .await?;
            match blocker {
                Some((seq, why)) => {
                    let reason = format!(
                        "waits for dead letter {seq} of its session ({}): {}",
                        why.unwrap_or_default(),
                        failure.reason
                    );
                    tracing::info!(
                        key = job.key,
                        reason,
                        "CRM operation held behind a dead letter"
                    );
                    operations("held");
                    sqlx::query("UPDATE crm_outbox SET state = 'held', lease_until_ms = 0, last_error = $1 WHERE seq = $2 AND state = 'pending' AND attempts = $3")
                        .bind(reason)
                        .bind(job.seq)
                        .bind(job.token())
                        .execute(pool)
                        .await
                        .map(|written| fenced(job, "held", &written))
                }
                None => dead(failure.reason).await,
            }
        }
        FailureKind::Retry | FailureKind::Outage | FailureKind::KeyRefused => {
            let first = job.first_failed_ms.unwrap_or(now);
            let budget = ms(sync.retry_budget());
            if !breaker_open && now - first >= budget && failure.kind != FailureKind::KeyRefused {
                let hours = sync.retry_budget().as_secs() / 3600;
                return dead(format!(
                    "still failing after {hours} h of retries: {}",
                    failure.reason
                ))
                .await;
            }
            // A refused key is retried as soon as the breaker lets it; the rest back off.
            let delay = if failure.kind == FailureKind::KeyRefused {
                Duration::ZERO
            } else {
                BACKOFF.delay(attempts.clamp(1, 64) as u32, random_unit())
            };
            tracing::info!(
                key = job.key,
                attempts,
                reason = failure.reason,
                "CRM operation failed; retrying in {delay:?}"
            );
            operations("retried");
            sqlx::query("UPDATE crm_outbox SET due_ms = $1, lease_until_ms = 0, last_error = $2, first_failed_ms = $3 WHERE seq = $4 AND state = 'pending' AND attempts = $5")
                .bind(now + ms(delay))
                .bind(&failure.reason)
                .bind(first)
                .bind(job.seq)
                .bind(job.token())
                .execute(pool)
                .await
                .map(|written| fenced(job, "retried", &written))
        }
    }
}

async fn session(sync: &CrmSync, id: i64) -> Result<SessionRow, OpFailure> {
    Ok(sqlx::query_as::<_, SessionRow>(
        "SELECT started_ms, customer_id, customer_created, conversation_id, message_id, conversation_assignee, customer_reused, customer_assignee FROM crm_sessions WHERE session_id = $1",
    )
    .bind(id)
    .fetch_optional(sync.pool())
    .await?
    .unwrap_or_default())
}

/// Whether session `id` may still get its conversation: operations of it are pending, or
/// events are not planned yet.
async fn still_syncing(sync: &CrmSync, id: i64) -> Result<bool, OpFailure> {
    let (busy,): (i64,) = sqlx::query_as(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM crm_outbox WHERE session_id = $1 AND state = 'pending')
                       OR EXISTS (SELECT 1 FROM crm_inbox) THEN 1 ELSE 0 END",
    )
    .bind(id)
    .fetch_one(sync.pool())
    .await?;
    Ok(busy != 0)
}

async fn set(sync: &CrmSync, id: i64, column: &str, value: &str) -> Result<(), OpFailure> {
    // `column` is one of ours, never input.
    let sql = format!("UPDATE crm_sessions SET {column} = $1 WHERE session_id = $2");
    sqlx::query(&sql)
        .bind(value)
        .bind(id)
        .execute(sync.pool())
        .await?;
    Ok(())
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "in",
        Direction::Outbound => "out",
    }
}

fn channel(c: Channel) -> &'static str {
    match c {
        Channel::Voice => "voice",
        Channel::Chat => "chat",
    }
}

async fn execute(sync: &CrmSync, job: &Job, op: &Operation) -> Result<(), OpFailure> {
    let k = sync.kustomer();
    let row = session(sync, job.session_id).await?;
    let verify = job.earlier_attempts > 0;
    let conversation = || {
        row.conversation_id.clone().ok_or_else(|| {
            needs_earlier("the session has no Kustomer conversation (its creation failed)")
        })
    };
    match op {
        Operation::EnsureCustomer(spec) => {
            if row.customer_id.is_some() {
                return Ok(());
            }
            ensure_customer(sync, job.session_id, row.started_ms, spec, verify, true).await
        }
        Operation::ResolveConversation(spec) => {
            if let Some(id) = &row.conversation_id {
                // Already resolved (a replay, or a retry after the announcement was lost): say
                // so again, or the call's screen pop would wait for a restart's catch-up. The
                // screen pop ignores a conversation the call already shows.
                if let Some(customer) = &row.customer_id {
                    sync.announce(super::Resolved {
                        session_id: job.session_id,
                        customer_id: customer.clone(),
                        conversation_id: id.clone(),
                    });
                }
                return Ok(());
            }
            let mut customer = row.customer_id.clone().ok_or_else(|| {
                needs_earlier(
                    "the session has no customer to write to (no phone, email or app user id)",
                )
            })?;
            // A customer this session just created has no conversation but the ones other
            // sessions may have made since (a second call from the same new number at the same
            // moment: then the two calls get a conversation each). A retry lists them all the
            // same: its first attempt may have created the conversation.
            let first_of_new_customer = row.customer_created != 0
                && !verify
                && !matches!(
                    spec.policy,
                    ConversationPolicy::AppendToSessionOrLatestOpen { .. }
                );
            let conversations = if first_of_new_customer {
                Vec::new()
            } else {
                match k.customer_conversations(&customer).await {
                    // The customer an earlier session found is gone from Kustomer since (merged,
                    // deleted): forget it and find this session's customer again.
                    Err(KustomerError::NotFound(_)) if row.customer_reused != 0 => {
                        customer =
                            find_again(sync, job.session_id, &customer, &row, verify).await?;
                        k.customer_conversations(&customer).await?
                    }
                    listed => listed?,
                }
            };
            let previous = match &spec.policy {
                ConversationPolicy::AppendToSessionOrLatestOpen { session_id } => {
                    match session(sync, *session_id).await?.conversation_id {
                        Some(id) => match conversations.iter().find(|c| c.id == id) {
                            Some(c) => Some(c.clone()),
                            None => Some(k.conversation(&id).await?),
                        },
                        // Sessions run in parallel: the call this one follows may not have its
                        // conversation yet. Wait for it rather than make a second one.
                        None if still_syncing(sync, *session_id).await? => {
                            return Err(waiting(format!(
                                "call {session_id}, which this one follows, has no conversation yet"
                            )))
                        }
                        None => None,
                    }
                }
                _ => None,
            };
            let id = match choose_conversation(spec, &conversations, previous.as_ref()) {
                Choice::Existing(id) => {
                    // Already assigned to the agent this event assigns it to (a caller who
                    // reaches the same agent again): the assignment needs no request.
                    if let Some(email) = &spec.assign_to {
                        let assigned = conversations
                            .iter()
                            .chain(previous.as_ref())
                            .find(|c| c.id == id)
                            .map(|c| c.assigned_users.as_slice());
                        if let Some([only]) = assigned {
                            if k.user_id(email).await?.as_deref() == Some(only.as_str()) {
                                set(sync, job.session_id, "conversation_assignee", email).await?;
                            }
                        }
                    }
                    id
                }
                Choice::Create => {
                    let mut body = json!({
                        "customer": customer, "name": spec.name, "status": "open",
                        "direction": direction(spec.direction), "externalId": spec.external_id,
                        "custom": spec.custom,
                    });
                    // Created assigned when the agent is a Kustomer user; else the assignment
                    // runs (and fails) on its own, with its reason.
                    let assignee = match &spec.assign_to {
                        Some(email) => k.user_id(email).await?.map(|user| (email, user)),
                        None => None,
                    };
                    if let Some((_, user)) = &assignee {
                        body["assignedUsers"] = json!([user]);
                    }
                    let id = k.create_conversation(&body).await?;
                    if let Some((email, _)) = assignee {
                        set(sync, job.session_id, "conversation_assignee", email).await?;
                    }
                    id
                }
            };
            set(sync, job.session_id, "conversation_id", &id).await?;
            sync.announce(super::Resolved {
                session_id: job.session_id,
                customer_id: customer,
                conversation_id: id,
            });
            Ok(())
        }
        Operation::AddMessage(spec) => {
            let conversation = conversation()?;
            if verify {
                if let Some(id) = k.find_message(&conversation, &spec.external_id).await? {
                    return saved_message(sync, job.session_id, spec, &id).await;
                }
            }
            let attachments = attach(sync, job, spec.attachment.as_ref()).await?;
            let mut body = json!({
                "channel": channel(spec.channel), "direction": direction(spec.direction),
                "preview": spec.preview, "externalId": spec.external_id,
                "attachments": attachments,
            });
            if !spec.custom.is_empty() {
                body["custom"] = Value::Object(spec.custom.clone());
            }
            let id = k.create_message(&conversation, &body).await?;
            saved_message(sync, job.session_id, spec, &id).await
        }
        Operation::AddNote {
            external_id,
            body,
            attachment,
        } => {
            let conversation = conversation()?;
            if verify && k.find_note(&conversation, external_id).await?.is_some() {
                return Ok(());
            }
            let attachments = attach(sync, job, attachment.as_ref()).await?;
            k.create_note(
                &conversation,
                &json!({"body": body, "externalId": external_id, "attachments": attachments}),
            )
            .await?;
            Ok(())
        }
        Operation::UpdateMessage { custom } => {
            let message = row.message_id.clone().ok_or_else(|| {
                needs_earlier("the session has no Kustomer message (its creation failed)")
            })?;
            k.update_message(&message, &json!({ "custom": custom }))
                .await?;
            Ok(())
        }
        Operation::UpdateConversation { custom } => {
            k.update_conversation(&conversation()?, &json!({ "custom": custom }))
                .await?;
            Ok(())
        }
        Operation::AssignConversation { agent_email } => {
            let conversation = conversation()?;
            if row.conversation_assignee.as_deref() == Some(agent_email.as_str()) {
                // Created assigned to this agent, by this session.
                return Ok(());
            }
            let user = k.user_id(agent_email).await?.ok_or_else(|| {
                permanent(format!("no Kustomer user has the email {agent_email}"))
            })?;
            k.update_conversation(&conversation, &json!({ "assignedUsers": [user] }))
                .await?;
            Ok(())
        }
        Operation::AssignCustomer { agent_email } => {
            // The seeds: only a customer this session created.
            let (Some(customer), true) = (row.customer_id.clone(), row.customer_created != 0)
            else {
                return Ok(());
            };
            if row.customer_assignee.as_deref() == Some(agent_email.as_str()) {
                // Created assigned to this agent, by this session.
                return Ok(());
            }
            let user = k.user_id(agent_email).await?.ok_or_else(|| {
                permanent(format!("no Kustomer user has the email {agent_email}"))
            })?;
            k.update_customer(&customer, &json!({ "assignedUsers": [user] }))
                .await?;
            Ok(())
        }
    }
}

/// Finds or creates the session's customer: taken from a session of the last
/// [`CUSTOMER_REUSE`] with the same key (when `reuse`), else looked up in Kustomer by each key
/// in order, else created.
async fn ensure_customer(
    sync: &CrmSync,
    session_id: i64,
    started_ms: i64,
    spec: &CustomerSpec,
    verify: bool,
    reuse: bool,
) -> Result<(), OpFailure> {
    let k = sync.kustomer();
    let now = sync.clock().now_ms();
    if reuse {
        for key in &spec.lookup {
            let text = key_text(key);
            let recent: Option<(String, i64)> = sqlx::query_as(
                "SELECT customer_id, customer_found_ms FROM crm_sessions WHERE customer_key = $1 AND customer_found_ms >= $2 AND customer_id IS NOT NULL ORDER BY customer_found_ms DESC LIMIT 1",
            )
            .bind(&text)
            .bind(now - ms(CUSTOMER_REUSE))
            .fetch_optional(sync.pool())
            .await?;
            if let Some((id, found_ms)) = recent {
                let found = Found {
                    created: false,
                    key: text,
                    found_ms,
                    reused: true,
                    assignee: None,
                };
                return save_customer(sync, session_id, &id, found).await;
            }
        }
    }
    let found = |key: &CustomerKey, created: bool| Found {
        created,
        key: key_text(key),
        found_ms: now,
        reused: false,
        assignee: None,
    };
    for key in &spec.lookup {
        if let Some(customer) = k.find_customer(key).await? {
            // A customer created during this session is new (a retry after a crash finds the
            // one its first attempt created).
            let created = verify && customer.created_at_ms >= started_ms;
            return save_customer(sync, session_id, &customer.id, found(key, created)).await;
        }
    }
    let mut body = json!({"name": spec.name});
    if let Some(x) = &spec.external_id {
        body["externalId"] = json!(x);
    }
    if let Some(e) = &spec.email {
        body["emails"] = json!([{ "email": e }]);
    }
    if let Some(p) = &spec.phone {
        body["phones"] = json!([{ "phone": p, "type": "mobile" }]);
    }
    if !spec.custom.is_empty() {
        body["custom"] = Value::Object(spec.custom.clone());
    }
    // Created assigned to the agent the same event assigns it to, when Kustomer takes it.
    let assignee = match &spec.assign_to {
        Some(email) => k.user_id(email).await?.map(|user| (email.clone(), user)),
        None => None,
    };
    let assign_to = assignee.as_ref().map(|(_, user)| user.as_str());
    match k.create_customer(&body, assign_to).await {
        Ok(created) => match spec.lookup.first() {
            Some(key) => {
                let taken = assignee.filter(
                    |(_, user)| matches!(created.assigned_users.as_slice(), [only] if only == user),
                );
                let found = Found {
                    assignee: taken.map(|(email, _)| email),
                    ..found(key, true)
                };
                save_customer(sync, session_id, &created.id, found).await
            }
            None => Err(permanent("the customer has no key to find it by")),
        },
        // Another session created it meanwhile: use that one.
        Err(KustomerError::Conflict(reason)) => {
            for key in &spec.lookup {
                if let Some(customer) = k.find_customer(key).await? {
                    return save_customer(sync, session_id, &customer.id, found(key, false)).await;
                }
            }
            Err(waiting(reason))
        }
        Err(e) => Err(e.into()),
    }
}

/// The customer this session reused is gone from Kustomer: no session takes it again, and
/// this one's is found (or created) anew by its own keys, from its planned `EnsureCustomer`.
async fn find_again(
    sync: &CrmSync,
    session_id: i64,
    gone: &str,
    row: &SessionRow,
    verify: bool,
) -> Result<String, OpFailure> {
    tracing::info!(
        session_id,
        "a customer taken from an earlier session is gone from Kustomer; looking it up again"
    );
    sqlx::query(
        "UPDATE crm_sessions SET customer_key = NULL, customer_found_ms = NULL WHERE customer_id = $1",
    )
    .bind(gone)
    .execute(sync.pool())
    .await?;
    sqlx::query(
        "UPDATE crm_sessions SET customer_id = NULL, customer_reused = 0 WHERE session_id = $1",
    )
    .bind(session_id)
    .execute(sync.pool())
    .await?;
    let planned: Option<(String,)> = sqlx::query_as("SELECT op FROM crm_outbox WHERE key = $1")
        .bind(format!("{session_id}/customer"))
        .fetch_optional(sync.pool())
        .await?;
    let spec = match planned.map(|(op,)| serde_json::from_str::<Operation>(&op)) {
        Some(Ok(Operation::EnsureCustomer(spec))) => spec,
        _ => {
            return Err(needs_earlier(
                "the session's customer operation cannot be read",
            ))
        }
    };
    ensure_customer(sync, session_id, row.started_ms, &spec, verify, false).await?;
    session(sync, session_id)
        .await?
        .customer_id
        .ok_or_else(|| needs_earlier("the session's customer could not be found again"))
}

/// How a session's customer was had.
struct Found {
    /// This session created it in Kustomer.
    created: bool,
    /// The key Kustomer found or created it by (`key_text`).
    key: String,
    /// When Kustomer said so.
    found_ms: i64,
    /// Taken from an earlier session, not asked of Kustomer.
    reused: bool,
    /// The agent it was created assigned to.
    assignee: Option<String>,
}

async fn save_customer(
    sync: &CrmSync,
    session_id: i64,
    id: &str,
    found: Found,
) -> Result<(), OpFailure> {
    sqlx::query(
        "UPDATE crm_sessions SET customer_id = $1, customer_created = $2, customer_key = $3, customer_found_ms = $4, customer_reused = $5, customer_assignee = $6 WHERE session_id = $7",
    )
    .bind(id)
    .bind(i64::from(found.created))
    .bind(found.key)
    .bind(found.found_ms)
    .bind(i64::from(found.reused))
    .bind(found.assignee)
    .bind(session_id)
    .execute(sync.pool())
    .await?;
    Ok(())
}

async fn saved_message(
    sync: &CrmSync,
    session_id: i64,
    spec: &MessageSpec,
    id: &str,
) -> Result<(), OpFailure> {
    if spec.primary {
        set(sync, session_id, "message_id", id).await?;
    }
    Ok(())
}

/// What an attempt of an operation did about its file, kept on its outbox row.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedAttachment {
    upload: PendingUpload,
    uploaded: bool,
}

async fn saved_attachment(sync: &CrmSync, seq: i64) -> Result<Option<SavedAttachment>, OpFailure> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT attachment FROM crm_outbox WHERE seq = $1")
            .bind(seq)
            .fetch_optional(sync.pool())
            .await?;
    Ok(row
        .and_then(|(text,)| text)
        .and_then(|text| serde_json::from_str(&text).ok()))
}

/// Records the attachment on the operation's row, as long as the claim is still this job's (a
/// worker whose lease was taken records nothing, and stops).
async fn save_attachment(
    sync: &CrmSync,
    job: &Job,
    upload: &PendingUpload,
    uploaded: bool,
) -> Result<(), OpFailure> {
    let saved = SavedAttachment {
        upload: upload.clone(),
        uploaded,
    };
    let text = serde_json::to_string(&saved).map_err(|e| waiting(e.to_string()))?;
    let written = sqlx::query(
        "UPDATE crm_outbox SET attachment = $1 WHERE seq = $2 AND state = 'pending' AND attempts = $3",
    )
    .bind(text)
    .bind(job.seq)
    .bind(job.token())
    .execute(sync.pool())
    .await?;
    if written.rows_affected() == 0 {
        return Err(waiting(
            "the operation's lease was taken meanwhile; its new holder goes on",
        ));
    }
    Ok(())
}

/// The file uploaded (two steps), as a message or note references it. The attachment is kept
/// on the operation's row as soon as Kustomer created it, so that a retry (after a crash, or a
/// failed message) uses it again instead of leaving it behind and creating another. Kustomer's
/// API cannot find an attachment again (no external id, no search): one created just before a
/// crash, before it was recorded here, stays behind without its file, referenced by nothing.
async fn attach(
    sync: &CrmSync,
    job: &Job,
    source: Option<&FileSource>,
) -> Result<Vec<AttachmentRef>, OpFailure> {
    let k = sync.kustomer();
    let Some(source) = source else {
        return Ok(Vec::new());
    };
    let saved = saved_attachment(sync, job.seq).await?;
    if let Some(SavedAttachment {
        upload,
        uploaded: true,
    }) = &saved
    {
        return Ok(vec![upload.attachment.clone()]);
    }
    let (name, content_type, bytes) = match source {
        FileSource::Url {
            url,
            name,
            content_type,
        } => (name, content_type, sync.downloads().fetch(url).await?),
        FileSource::Inline {
            name,
            content_type,
            text,
        } => (name, content_type, text.as_bytes().to_vec()),
    };
    if let Some(SavedAttachment { upload, .. }) = saved {
        // Created by an earlier attempt, its upload not known to be done: upload it again.
        match k.upload(&upload, &bytes).await {
            Ok(()) => {
                save_attachment(sync, job, &upload, true).await?;
                return Ok(vec![upload.attachment]);
            }
            Err(error) if error.retryable() => return Err(error.into()),
            // The presigned upload expired or the file changed: a new attachment.
            Err(error) => tracing::info!(
                %error,
                "an earlier attempt's attachment cannot be uploaded; creating another"
            ),
        }
    }
    let upload = k
        .create_attachment(name, content_type, bytes.len() as u64)
        .await?;
    save_attachment(sync, job, &upload, false).await?;
    k.upload(&upload, &bytes).await?;
    save_attachment(sync, job, &upload, true).await?;
    Ok(vec![upload.attachment])
}

#[cfg(test)]
mod tests {
    use super::in_turns;

    #[test]
    fn claims_take_write_backs_and_sessions_in_turns() {
        assert_eq!(in_turns(vec![1, 2, 3], vec![10, 20, 30], 4), [1, 10, 2, 20]);
        assert_eq!(in_turns(vec![1], vec![10, 20, 30], 3), [1, 10, 20]);
        assert_eq!(in_turns(vec![1, 2, 3], vec![10], 3), [1, 10, 2]);
        assert_eq!(in_turns(Vec::<i32>::new(), vec![10, 20], 8), [10, 20]);
        assert_eq!(in_turns(vec![1, 2], vec![10, 20], 1), [1]);
    }
}
