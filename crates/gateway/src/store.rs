//! The gateway's durable store: SQLite in a data folder, schema by migrations.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// The durable write path could not take or commit a write.
    #[error("cannot write to the store: {0}")]
    Write(String),
}

impl From<StoreError> for crate::error::Error {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store error");
        crate::error::Error::new(
            crate::error::Code::StoreUnavailable,
            "The gateway cannot reach its database; try again in a moment.",
        )
    }
}

pub use crate::config::StoreSync;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What the gateway knows of a platform session: its id, the latest lifecycle stage seen, its
/// agent, and whether the gateway placed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub stage: i64,
    pub agent_id: Option<i64>,
    pub outbound: bool,
}

/// The platform's session `platform_id` on `channel`, made on first sight (one statement);
/// `outbound` marks a call the gateway placed.
pub async fn session_row(
    conn: &mut sqlx::SqliteConnection,
    channel: &str,
    platform_id: &str,
    outbound: bool,
) -> Result<SessionRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO platform_sessions (channel, platform_id, outbound) VALUES (?, ?, ?)
         ON CONFLICT (channel, platform_id) DO UPDATE SET outbound = MAX(outbound, excluded.outbound)
         RETURNING id, stage, agent_id, outbound",
    )
    .bind(channel)
    .bind(platform_id)
    .bind(outbound)
    .fetch_one(&mut *conn)
    .await
}

/// [`Store::session_id`] inside a transaction or on a connection.
pub async fn session_id(
    conn: &mut sqlx::SqliteConnection,
    channel: &str,
    platform_id: &str,
    outbound: bool,
) -> Result<i64, sqlx::Error> {
    Ok(session_row(conn, channel, platform_id, outbound).await?.id)
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating when missing) `gateway.sqlite3` in `data_dir` and brings its schema up
    /// to date; every commit reaches the disk ([`StoreSync::Full`]).
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, StoreSync::Full).await
    }

    /// [`Store::open`], with how far a commit goes before it counts as done.
    pub async fn open_with(data_dir: &Path, sync: StoreSync) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(data_dir.join("gateway.sqlite3"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                StoreSync::Full => SqliteSynchronous::Full,
                StoreSync::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Records a start of this gateway; returns how many starts the store has seen.
    pub async fn record_start(&self, version: &str, listen: &str) -> Result<i64, StoreError> {
        sqlx::query("INSERT INTO gateway_starts (version, listen) VALUES (?, ?)")
            .bind(version)
            .bind(listen)
            .execute(&self.pool)
            .await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM gateway_starts")
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    /// Records a received webhook; `false` when its `event_id` was already recorded (a replay).
    pub async fn record_webhook(
        &self,
        event_id: &str,
        event_type: &str,
        agent_id: Option<i64>,
        payload: &str,
        received_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO webhook_events (event_id, event_type, agent_id, payload, received_at_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(event_id)
        .bind(event_type)
        .bind(agent_id)
        .bind(payload)
        .bind(received_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The gateway's id for the platform's session `platform_id` on `channel` (`call` or
    /// `chat`), made on first sight; `outbound` marks a call the gateway placed.
    pub async fn session_id(
        &self,
        channel: &str,
        platform_id: &str,
        outbound: bool,
    ) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(session_id(&mut conn, channel, platform_id, outbound).await?)
    }

    /// [`Store::session_id`] on `pool`, for a session the gateway has seen already or not.
    pub async fn session_id_in(
        pool: &SqlitePool,
        channel: &str,
        platform_id: &str,
    ) -> Result<i64, StoreError> {
        let mut conn = pool.acquire().await?;
        Ok(session_id(&mut conn, channel, platform_id, false).await?)
    }

    /// The platform's session behind the gateway's id: its channel and the platform's id.
    pub async fn platform_session(&self, id: i64) -> Result<Option<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT channel, platform_id FROM platform_sessions WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Forgets webhooks received before `before_ms`; returns how many.
    pub async fn prune_webhooks(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM webhook_events WHERE received_at_ms < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
