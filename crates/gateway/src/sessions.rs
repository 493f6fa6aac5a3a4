//! Agent sessions: random bearer tokens, short-lived and refreshed by rotation (one
//! transaction: a token is refreshed once), within an absolute lifetime from the sign-in, at
//! most so many per agent. The store keeps only a SHA-256 of each token.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::{clock::now_ms, store::StoreError};

/// The agent a session belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    pub agent_email: String,
    pub ccai_agent_id: i64,
    /// The agent's Kustomer user, as Kustomer's API names it for the agent's email at sign-in
    /// (never the id the browser sends).
    pub kustomer_user_id: String,
    pub expires_at_ms: i64,
}

/// A new session's token (shown once) and what it opens.
#[derive(Clone, Debug, Serialize)]
pub struct Issued {
    pub token: String,
    #[serde(flatten)]
    pub session: Session,
}

/// The session as the agent API answers it.
impl From<Issued> for adapter_core::agent_api::Session {
    fn from(issued: Issued) -> Self {
        let Issued { token, session } = issued;
        adapter_core::agent_api::Session {
            token,
            agent_email: session.agent_email,
            ccai_agent_id: session.ccai_agent_id,
            kustomer_user_id: session.kustomer_user_id,
            expires_at_ms: session.expires_at_ms,
        }
    }
}

pub(crate) fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// How long sessions last and how many an agent may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Without a refresh.
    pub ttl: Duration,
    /// From the sign-in, however often refreshed.
    pub max_age: Duration,
    /// Live sessions per agent; a new one beyond it ends the oldest.
    pub per_agent: u32,
}

impl Limits {
    /// `ttl`, a working day at most, 10 per agent.
    pub fn with_ttl(ttl: Duration) -> Self {
        Limits {
            ttl,
            max_age: Duration::from_secs(12 * 3600),
            per_agent: 10,
        }
    }
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Clone, Debug)]
pub struct Sessions {
    pool: AnyPool,
    limits: Limits,
}

/// A session row, as it is written.
struct Row<'a> {
    token_hash: String,
    session: &'a Session,
    signed_in_at_ms: i64,
    now: i64,
}

impl Sessions {
    pub fn new(pool: AnyPool, limits: Limits) -> Self {
        Sessions { pool, limits }
    }

    /// When a session of a sign-in at `signed_in_at_ms` made `now` ends: a refresh period
    /// later, but never past the absolute lifetime.
    fn expiry(&self, signed_in_at_ms: i64, now: i64) -> i64 {
        now.saturating_add(ms(self.limits.ttl))
            .min(signed_in_at_ms.saturating_add(ms(self.limits.max_age)))
    }

    /// Writes `row` and ends the agent's oldest sessions beyond the cap, in `tx`.
    async fn insert(&self, tx: &mut sqlx::AnyConnection, row: Row<'_>) -> Result<(), StoreError> {
        let s = row.session;
        sqlx::query(
            "INSERT INTO sessions (token_hash, agent_email, ccai_agent_id, kustomer_user_id, created_at_ms, expires_at_ms, signed_in_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.token_hash)
        .bind(&s.agent_email)
        .bind(s.ccai_agent_id)
        .bind(&s.kustomer_user_id)
        .bind(row.now)
        .bind(s.expires_at_ms)
        .bind(row.signed_in_at_ms)
        .execute(&mut *tx)
        .await?;
        let ended = sqlx::query(
            "DELETE FROM sessions WHERE ccai_agent_id = $1 AND token_hash <> $2 AND token_hash NOT IN (
                 SELECT token_hash FROM sessions WHERE ccai_agent_id = $1 AND token_hash <> $2
                 ORDER BY created_at_ms DESC, token_hash DESC LIMIT $3)",
        )
        .bind(s.ccai_agent_id)
        .bind(&row.token_hash)
        // The new session stays; so do the newest others up to the cap.
        .bind(i64::from(self.limits.per_agent.max(1)) - 1)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ended > 0 {
            tracing::info!(agent = %s.agent_email, ended, "oldest sessions ended: over the sessions per agent");
        }
        Ok(())
    }

    pub async fn issue(
        &self,
        agent_email: &str,
        ccai_agent_id: i64,
        kustomer_user_id: &str,
    ) -> Result<Issued, StoreError> {
        let token = new_token()?;
        let now = now_ms();
        let session = Session {
            agent_email: agent_email.to_owned(),
            ccai_agent_id,
            kustomer_user_id: kustomer_user_id.to_owned(),
            expires_at_ms: self.expiry(now, now),
        };
        let mut tx = self.pool.begin().await?;
        self.insert(
            &mut tx,
            Row {
                token_hash: hash(&token),
                session: &session,
                signed_in_at_ms: now,
                now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Issued { token, session })
    }

    /// The live session of `token`, or `None` when unknown or expired.
    pub async fn find(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let row: Option<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT agent_email, ccai_agent_id, kustomer_user_id, expires_at_ms FROM sessions
             WHERE token_hash = $1 AND expires_at_ms > $2",
        )
        .bind(hash(token))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(agent_email, ccai_agent_id, kustomer_user_id, expires_at_ms)| Session {
                agent_email,
                ccai_agent_id,
                kustomer_user_id,
                expires_at_ms,
            },
        ))
    }

    /// Replaces `token` by a new one, in one transaction: of any number of refreshes of one
    /// token, exactly one gets a new token. `None` when the token was not live, when the
    /// sign-in has reached its absolute lifetime, or when `may_sign_in` says the agent may no
    /// longer sign in (the token ends then too).
    pub async fn refresh(
        &self,
        token: &str,
        may_sign_in: impl FnOnce(&str) -> bool,
    ) -> Result<Option<Issued>, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let taken: Option<(String, i64, String, i64)> = sqlx::query_as(
            "DELETE FROM sessions WHERE token_hash = $1 AND expires_at_ms > $2
             RETURNING agent_email, ccai_agent_id, kustomer_user_id, signed_in_at_ms",
        )
        .bind(hash(token))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((agent_email, ccai_agent_id, kustomer_user_id, signed_in_at_ms)) = taken else {
            return Ok(None);
        };
        let expires_at_ms = self.expiry(signed_in_at_ms, now);
        if expires_at_ms <= now || !may_sign_in(&agent_email) {
            tx.commit().await?;
            tracing::info!(agent = %agent_email, "session not refreshed: past its lifetime, or the agent may no longer sign in");
            return Ok(None);
        }
        let session = Session {
            agent_email,
            ccai_agent_id,
            kustomer_user_id,
            expires_at_ms,
        };
        let new = new_token()?;
        self.insert(
            &mut tx,
            Row {
                token_hash: hash(&new),
                session: &session,
                signed_in_at_ms,
                now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Issued {
            token: new,
            session,
        }))
    }

    /// The email of the agent's newest live session (`None`: the agent is not signed in).
    pub async fn agent_email_of(&self, ccai_agent_id: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT agent_email FROM sessions WHERE ccai_agent_id = $1 AND expires_at_ms > $2
             ORDER BY created_at_ms DESC LIMIT 1",
        )
        .bind(ccai_agent_id)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(user,)| user))
    }

    pub async fn revoke(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at_ms <= $2")
            .bind(hash(token))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_hashes_are_stable() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
