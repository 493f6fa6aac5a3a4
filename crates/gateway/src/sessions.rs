//! Agent sessions: random bearer tokens, short-lived and refreshed by rotation. The store keeps
//! only a SHA-256 of each token.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

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

#[derive(Clone, Debug)]
pub struct Sessions {
    pool: SqlitePool,
    ttl: Duration,
}

impl Sessions {
    pub fn new(pool: SqlitePool, ttl: Duration) -> Self {
        Sessions { pool, ttl }
    }

    fn expiry(&self) -> i64 {
        now_ms().saturating_add(i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX))
    }

    pub async fn issue(
        &self,
        agent_email: &str,
        ccai_agent_id: i64,
        kustomer_user_id: &str,
    ) -> Result<Issued, StoreError> {
        let token = new_token()?;
        let session = Session {
            agent_email: agent_email.to_owned(),
            ccai_agent_id,
            kustomer_user_id: kustomer_user_id.to_owned(),
            expires_at_ms: self.expiry(),
        };
        sqlx::query(
            "INSERT INTO sessions (token_hash, agent_email, ccai_agent_id, kustomer_user_id, created_at_ms, expires_at_ms)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(hash(&token))
        .bind(&session.agent_email)
        .bind(session.ccai_agent_id)
        .bind(&session.kustomer_user_id)
        .bind(now_ms())
        .bind(session.expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(Issued { token, session })
    }

    /// The live session of `token`, or `None` when unknown or expired.
    pub async fn find(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let row: Option<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT agent_email, ccai_agent_id, kustomer_user_id, expires_at_ms FROM sessions
             WHERE token_hash = ? AND expires_at_ms > ?",
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

    /// Replaces `token` by a new one with a new expiry; `None` when it was not live.
    pub async fn refresh(&self, token: &str) -> Result<Option<Issued>, StoreError> {
        let Some(session) = self.find(token).await? else {
            return Ok(None);
        };
        let issued = self
            .issue(
                &session.agent_email,
                session.ccai_agent_id,
                &session.kustomer_user_id,
            )
            .await?;
        self.revoke(token).await?;
        Ok(Some(issued))
    }

    /// The email of the agent's newest live session (`None`: the agent is not signed in).
    pub async fn agent_email_of(&self, ccai_agent_id: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT agent_email FROM sessions WHERE ccai_agent_id = ? AND expires_at_ms > ?
             ORDER BY created_at_ms DESC LIMIT 1",
        )
        .bind(ccai_agent_id)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(user,)| user))
    }

    pub async fn revoke(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ? OR expires_at_ms <= ?")
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
