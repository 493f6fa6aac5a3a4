//! Runs the outbox: claims due operations (the oldest pending one of each session, so a
//! session's operations keep their order), carries them out against Kustomer, and records the
//! outcome: done, retry later with backoff, or a dead letter with its reason.

use std::time::Duration;

use adapter_core::{
    agent_events::{Channel, Direction},
    backoff::Backoff,
    crm::{choose_conversation, Choice, ConversationPolicy, FileSource, MessageSpec, Operation},
};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::{CrmError, CrmSync, LEASE, MAX_ATTEMPTS};
use crate::kustomer::{AttachmentRef, KustomerError, PendingUpload};

/// Why an operation did not succeed, and whether trying again may help.
#[derive(Debug)]
pub struct OpFailure {
    pub retryable: bool,
    pub reason: String,
}

impl From<KustomerError> for OpFailure {
    fn from(error: KustomerError) -> Self {
        OpFailure {
            retryable: error.retryable(),
            reason: error.to_string(),
        }
    }
}

impl From<sqlx::Error> for OpFailure {
    fn from(error: sqlx::Error) -> Self {
        OpFailure {
            retryable: true,
            reason: format!("database: {error}"),
        }
    }
}

fn waiting(reason: impl Into<String>) -> OpFailure {
    OpFailure {
        retryable: true,
        reason: reason.into(),
    }
}

fn permanent(reason: impl Into<String>) -> OpFailure {
    OpFailure {
        retryable: false,
        reason: reason.into(),
    }
}

/// One claimed row.
#[derive(Debug)]
struct Job {
    seq: i64,
    key: String,
    session_id: i64,
    op: String,
    /// Attempts before this one: more than 0, an earlier attempt may have gone through.
    earlier_attempts: i64,
}

/// What the session's operations found or created so far.
#[derive(Debug, Default, sqlx::FromRow)]
struct SessionRow {
    started_ms: i64,
    customer_id: Option<String>,
    customer_created: bool,
    conversation_id: Option<String>,
    message_id: Option<String>,
}

const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(60),
    factor: 2,
    jitter: 0.2,
};

fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) async fn run_forever(sync: CrmSync) {
    loop {
        match claim(&sync).await {
            Ok(jobs) if jobs.is_empty() => sync.executor_wait(Duration::from_millis(250)).await,
            Ok(jobs) => {
                let mut set = JoinSet::new();
                for job in jobs {
                    let sync = sync.clone();
                    set.spawn(async move { run(&sync, job).await });
                }
                while set.join_next().await.is_some() {}
            }
            Err(error) => {
                tracing::warn!(%error, "CRM executor: cannot read the outbox; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Claims up to `workers` due operations, the oldest pending one of each session.
async fn claim(sync: &CrmSync) -> Result<Vec<Job>, CrmError> {
    let now = crate::clock::now_ms();
    let candidates: Vec<(i64, String, i64, String, i64)> = sqlx::query_as(
        "SELECT o.seq, o.key, o.session_id, o.op, o.attempts FROM crm_outbox o
         WHERE o.state = 'pending' AND o.due_ms <= ?1 AND o.lease_until_ms <= ?1
           AND NOT EXISTS (SELECT 1 FROM crm_outbox p
                           WHERE p.state = 'pending' AND p.session_id = o.session_id AND p.seq < o.seq)
         ORDER BY o.seq LIMIT ?2",
    )
    .bind(now)
    .bind(sync.workers() as i64)
    .fetch_all(sync.pool())
    .await?;
    let mut jobs = Vec::with_capacity(candidates.len());
    for (seq, key, session_id, op, attempts) in candidates {
        // The lease and the attempt are written before the operation is tried.
        let claimed = sqlx::query(
            "UPDATE crm_outbox SET lease_until_ms = ?, attempts = attempts + 1
             WHERE seq = ? AND state = 'pending' AND lease_until_ms <= ? AND attempts = ?",
        )
        .bind(now + LEASE.as_millis() as i64)
        .bind(seq)
        .bind(now)
        .bind(attempts)
        .execute(sync.pool())
        .await?;
        if claimed.rows_affected() == 1 {
            jobs.push(Job {
                seq,
                key,
                session_id,
                op,
                earlier_attempts: attempts,
            });
        }
    }
    Ok(jobs)
}

async fn run(sync: &CrmSync, job: Job) {
    let outcome = match serde_json::from_str::<Operation>(&job.op) {
        Ok(op) => execute(sync, &job, &op).await,
        Err(e) => Err(permanent(format!(
            "the stored operation does not decode: {e}"
        ))),
    };
    let now = crate::clock::now_ms();
    let attempts = job.earlier_attempts + 1;
    let saved = match outcome {
        Ok(()) => {
            tracing::debug!(key = job.key, "CRM operation done");
            sqlx::query("UPDATE crm_outbox SET state = 'done', done_ms = ?, lease_until_ms = 0, last_error = NULL WHERE seq = ?")
                .bind(now)
                .bind(job.seq)
                .execute(sync.pool())
                .await
        }
        Err(failure) if failure.retryable && attempts < MAX_ATTEMPTS => {
            let delay = BACKOFF.delay(attempts as u32, random_unit());
            tracing::info!(
                key = job.key,
                attempts,
                reason = failure.reason,
                "CRM operation failed; retrying in {delay:?}"
            );
            sqlx::query("UPDATE crm_outbox SET due_ms = ?, lease_until_ms = 0, last_error = ? WHERE seq = ?")
                .bind(now + delay.as_millis() as i64)
                .bind(&failure.reason)
                .bind(job.seq)
                .execute(sync.pool())
                .await
        }
        Err(failure) => {
            tracing::warn!(
                key = job.key,
                attempts,
                reason = failure.reason,
                "CRM operation moved to the dead letters"
            );
            sqlx::query("UPDATE crm_outbox SET state = 'dead', lease_until_ms = 0, last_error = ? WHERE seq = ?")
                .bind(&failure.reason)
                .bind(job.seq)
                .execute(sync.pool())
                .await
        }
    };
    if let Err(error) = saved {
        // The lease runs out and the operation is tried again, looking first for what it wrote.
        tracing::warn!(key = job.key, %error, "cannot record a CRM operation's outcome");
    }
    sync.wake_executor();
}

async fn session(sync: &CrmSync, id: i64) -> Result<SessionRow, OpFailure> {
    Ok(sqlx::query_as::<_, SessionRow>(
        "SELECT started_ms, customer_id, customer_created, conversation_id, message_id FROM crm_sessions WHERE session_id = ?",
    )
    .bind(id)
    .fetch_optional(sync.pool())
    .await?
    .unwrap_or_default())
}

/// Whether session `id` may still get its conversation: operations of it are pending, or
/// events are not planned yet.
async fn still_syncing(sync: &CrmSync, id: i64) -> Result<bool, OpFailure> {
    let (busy,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM crm_outbox WHERE session_id = ? AND state = 'pending')
             OR EXISTS (SELECT 1 FROM crm_inbox)",
    )
    .bind(id)
    .fetch_one(sync.pool())
    .await?;
    Ok(busy)
}

async fn set(sync: &CrmSync, id: i64, column: &str, value: &str) -> Result<(), OpFailure> {
    // `column` is one of ours, never input.
    let sql = format!("UPDATE crm_sessions SET {column} = ? WHERE session_id = ?");
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
            permanent("the session has no Kustomer conversation (its creation failed)")
        })
    };
    match op {
        Operation::EnsureCustomer(spec) => {
            if row.customer_id.is_some() {
                return Ok(());
            }
            for key in &spec.lookup {
                if let Some(found) = k.find_customer(key).await? {
                    // A customer created during this session is new (a retry after a crash
                    // finds the one its first attempt created).
                    let created = verify && found.created_at_ms >= row.started_ms;
                    return save_customer(sync, job.session_id, &found.id, created).await;
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
            match k.create_customer(&body).await {
                Ok(created) => save_customer(sync, job.session_id, &created.id, true).await,
                // Another session created it meanwhile: use that one.
                Err(KustomerError::Conflict(reason)) => {
                    for key in &spec.lookup {
                        if let Some(found) = k.find_customer(key).await? {
                            return save_customer(sync, job.session_id, &found.id, false).await;
                        }
                    }
                    Err(waiting(reason))
                }
                Err(e) => Err(e.into()),
            }
        }
        Operation::ResolveConversation(spec) => {
            if row.conversation_id.is_some() {
                return Ok(());
            }
            let customer = row.customer_id.clone().ok_or_else(|| {
                permanent(
                    "the session has no customer to write to (no phone, email or app user id)",
                )
            })?;
            let conversations = k.customer_conversations(&customer).await?;
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
                Choice::Existing(id) => id,
                Choice::Create => {
                    let body = json!({
                        "customer": customer, "name": spec.name, "status": "open",
                        "direction": direction(spec.direction), "externalId": spec.external_id,
                        "custom": spec.custom,
                    });
                    k.create_conversation(&body).await?
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
            let attachments = attach(sync, job.seq, spec.attachment.as_ref()).await?;
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
            let attachments = attach(sync, job.seq, attachment.as_ref()).await?;
            k.create_note(
                &conversation,
                &json!({"body": body, "externalId": external_id, "attachments": attachments}),
            )
            .await?;
            Ok(())
        }
        Operation::UpdateMessage { custom } => {
            let message = row.message_id.clone().ok_or_else(|| {
                permanent("the session has no Kustomer message (its creation failed)")
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
            let user = k.user_id(agent_email).await?.ok_or_else(|| {
                permanent(format!("no Kustomer user has the email {agent_email}"))
            })?;
            k.update_conversation(&conversation, &json!({ "assignedUsers": [user] }))
                .await?;
            Ok(())
        }
        Operation::AssignCustomer { agent_email } => {
            // The seeds: only a customer this session created.
            let (Some(customer), true) = (row.customer_id.clone(), row.customer_created) else {
                return Ok(());
            };
            let user = k.user_id(agent_email).await?.ok_or_else(|| {
                permanent(format!("no Kustomer user has the email {agent_email}"))
            })?;
            k.update_customer(&customer, &json!({ "assignedUsers": [user] }))
                .await?;
            Ok(())
        }
    }
}

async fn save_customer(
    sync: &CrmSync,
    session_id: i64,
    id: &str,
    created: bool,
) -> Result<(), OpFailure> {
    sqlx::query(
        "UPDATE crm_sessions SET customer_id = ?, customer_created = ? WHERE session_id = ?",
    )
    .bind(id)
    .bind(created)
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
        sqlx::query_as("SELECT attachment FROM crm_outbox WHERE seq = ?")
            .bind(seq)
            .fetch_optional(sync.pool())
            .await?;
    Ok(row
        .and_then(|(text,)| text)
        .and_then(|text| serde_json::from_str(&text).ok()))
}

async fn save_attachment(
    sync: &CrmSync,
    seq: i64,
    upload: &PendingUpload,
    uploaded: bool,
) -> Result<(), OpFailure> {
    let saved = SavedAttachment {
        upload: upload.clone(),
        uploaded,
    };
    let text = serde_json::to_string(&saved).map_err(|e| waiting(e.to_string()))?;
    sqlx::query("UPDATE crm_outbox SET attachment = ? WHERE seq = ?")
        .bind(text)
        .bind(seq)
        .execute(sync.pool())
        .await?;
    Ok(())
}

/// The file uploaded (two steps), as a message or note references it. The attachment is kept
/// on the operation's row as soon as Kustomer created it, so that a retry (after a crash, or a
/// failed message) uses it again instead of leaving it behind and creating another.
async fn attach(
    sync: &CrmSync,
    seq: i64,
    source: Option<&FileSource>,
) -> Result<Vec<AttachmentRef>, OpFailure> {
    let k = sync.kustomer();
    let Some(source) = source else {
        return Ok(Vec::new());
    };
    let saved = saved_attachment(sync, seq).await?;
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
        } => (name, content_type, k.fetch_file(url).await?),
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
                save_attachment(sync, seq, &upload, true).await?;
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
    save_attachment(sync, seq, &upload, false).await?;
    k.upload(&upload, &bytes).await?;
    save_attachment(sync, seq, &upload, true).await?;
    Ok(vec![upload.attachment])
}
