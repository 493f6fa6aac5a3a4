//! The gateway's durable store, schema by migrations, on one of two engines: SQLite in the data
//! folder (the embedded default, for the demo and small sites) or PostgreSQL (`--database-url
//! postgres://…`, for replicas). One set of queries serves both, through sqlx's `Any` driver:
//! numbered placeholders (`$1`), `ON CONFLICT` upserts, `CASE` where SQLite's two-argument
//! `MIN`/`MAX` would be, and flags stored as integers (0/1) on both engines. Each engine has its
//! own migrations folder, `migrations/sqlite` and `migrations/postgres`, with the same versions.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    AnyPool,
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
    #[error("the database URL {0}")]
    Url(String),
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

pub use crate::config::{DatabaseUrl, Engine, StoreSync};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Whether `pool` is on PostgreSQL (shared by replicas) rather than SQLite.
pub fn is_postgres(pool: &AnyPool) -> bool {
    pool.connect_options().database_url.scheme() != "sqlite"
}

/// PostgreSQL: a connection of its own listening on `channels` (what replicas announce with
/// `pg_notify`). It reconnects by itself; `try_recv` answers `None` once after a lost
/// connection, when announcements may have been missed.
pub async fn listen(
    pool: &AnyPool,
    channels: &[&str],
) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let url = pool.connect_options().database_url.to_string();
    let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
    listener.listen_all(channels.iter().copied()).await?;
    Ok(listener)
}

/// A transaction that writes after it reads. SQLite takes its write lock at the start
/// (`BEGIN IMMEDIATE`), so that upgrading from the first read cannot fail with "database is
/// locked"; PostgreSQL begins as usual, its rows locked by the statements that write them.
pub async fn begin_write(
    pool: &AnyPool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    if is_postgres(pool) {
        pool.begin().await
    } else {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
}

/// What the gateway knows of a platform session: its id, the latest lifecycle stage seen, its
/// agent, and whether the gateway placed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub id: i64,
    pub stage: i64,
    pub agent_id: Option<i64>,
    pub outbound: bool,
}

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for SessionRow {
    fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(SessionRow {
            id: row.try_get("id")?,
            stage: row.try_get("stage")?,
            agent_id: row.try_get("agent_id")?,
            // Flags are integers on both engines.
            outbound: row.try_get::<i64, _>("outbound")? != 0,
        })
    }
}

/// The platform's session `platform_id` on `channel`, made on first sight (one statement);
/// `outbound` marks a call the gateway placed.
pub async fn session_row(
    conn: &mut sqlx::AnyConnection,
    channel: &str,
    platform_id: &str,
    outbound: bool,
) -> Result<SessionRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO platform_sessions (channel, platform_id, outbound) VALUES ($1, $2, $3)
         ON CONFLICT (channel, platform_id) DO UPDATE SET outbound = CASE WHEN excluded.outbound > platform_sessions.outbound THEN excluded.outbound ELSE platform_sessions.outbound END
         RETURNING id, stage, agent_id, outbound",
    )
    .bind(channel)
    .bind(platform_id)
    .bind(i64::from(outbound))
    .fetch_one(&mut *conn)
    .await
}

/// [`Store::session_id`] inside a transaction or on a connection.
pub async fn session_id(
    conn: &mut sqlx::AnyConnection,
    channel: &str,
    platform_id: &str,
    outbound: bool,
) -> Result<i64, sqlx::Error> {
    Ok(session_row(conn, channel, platform_id, outbound).await?.id)
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

impl Store {
    /// Opens (creating when missing) `gateway.sqlite3` in `data_dir` and brings its schema up
    /// to date; every commit reaches the disk ([`StoreSync::Full`]).
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, StoreSync::Full).await
    }

    /// [`Store::open`], with how far a commit goes before it counts as done.
    pub async fn open_with(data_dir: &Path, sync: StoreSync) -> Result<Store, StoreError> {
        Store::connect(&DatabaseUrl::in_folder(data_dir), sync).await
    }

    /// The store the test suites use for `data_dir` ([`DatabaseUrl::for_tests`]).
    pub async fn for_tests(data_dir: &Path) -> Result<Store, StoreError> {
        Store::connect(&DatabaseUrl::for_tests(data_dir), StoreSync::Full).await
    }

    /// Two connections to the store the test suites use for `data_dir`, as two replicas have:
    /// only on PostgreSQL; on SQLite (one process per store) `None`, and the test says it is
    /// skipped.
    pub async fn replicas_for_tests(data_dir: &Path) -> Option<(Store, Store)> {
        let url = DatabaseUrl::for_tests(data_dir);
        if url.engine() != Engine::Postgres {
            eprintln!("skipped on SQLite: replicas share a PostgreSQL store");
            return None;
        }
        let open = || async {
            Store::connect(&url, StoreSync::Full)
                .await
                .expect("the test store opens")
        };
        Some((open().await, open().await))
    }

    /// Opens the store at `url`, creating it when missing (the SQLite file and its folder, or
    /// the PostgreSQL database, which needs the right to create one), and brings its schema
    /// up to date. `sync` applies to SQLite; PostgreSQL commits as its server is configured.
    pub async fn connect(url: &DatabaseUrl, sync: StoreSync) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let unreadable = |error: sqlx::Error| StoreError::Url(format!("does not read: {error}"));
        let pool = match url.engine() {
            Engine::Sqlite => {
                let file = url.sqlite_file().unwrap_or_default();
                let folder = file.parent().filter(|p| !p.as_os_str().is_empty());
                if let Some(folder) = folder {
                    std::fs::create_dir_all(folder).map_err(|source| StoreError::DataDir {
                        path: folder.display().to_string(),
                        source,
                    })?;
                }
                // The file created when missing; the path stays encoded as the URL has it.
                let encoded = url.expose().split('?').next().unwrap_or_default();
                let options = AnyConnectOptions::from_str(&format!("{encoded}?mode=rwc"))
                    .map_err(unreadable)?;
                let synchronous = match sync {
                    StoreSync::Full => "PRAGMA synchronous = FULL",
                    StoreSync::Normal => "PRAGMA synchronous = NORMAL",
                };
                AnyPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(3))
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute(synchronous).await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Engine::Postgres => {
                use sqlx::migrate::MigrateDatabase;
                let options = AnyConnectOptions::from_str(url.expose()).map_err(unreadable)?;
                if !sqlx::Any::database_exists(url.expose()).await? {
                    sqlx::Any::create_database(url.expose()).await?;
                    tracing::info!("the PostgreSQL database was missing: created");
                }
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(3))
                    .connect_with(options)
                    .await?
            }
        };
        match url.engine() {
            Engine::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Engine::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store {
            pool,
            engine: url.engine(),
        })
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Records a start of this gateway; returns how many starts the store has seen.
    pub async fn record_start(&self, version: &str, listen: &str) -> Result<i64, StoreError> {
        sqlx::query("INSERT INTO gateway_starts (version, listen) VALUES ($1, $2)")
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
            "INSERT INTO webhook_events (event_id, event_type, agent_id, payload, received_at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
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
        pool: &AnyPool,
        channel: &str,
        platform_id: &str,
    ) -> Result<i64, StoreError> {
        let mut conn = pool.acquire().await?;
        Ok(session_id(&mut conn, channel, platform_id, false).await?)
    }

    /// The platform's session behind the gateway's id: its channel and the platform's id.
    pub async fn platform_session(&self, id: i64) -> Result<Option<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT channel, platform_id FROM platform_sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Forgets webhooks received before `before_ms`; returns how many.
    pub async fn prune_webhooks(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM webhook_events WHERE received_at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub fn pool(&self) -> AnyPool {
        self.pool.clone()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_data_folder_with_spaces_and_url_characters_holds_its_sqlite_file() {
        let dir = std::env::temp_dir().join(format!(
            "adapter store ?#%20 {}/data dir",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
        let store = Store::open(&dir).await.unwrap();
        assert_eq!(store.record_start("test", "-").await.unwrap(), 1);
        store.close().await;
        assert!(
            dir.join("gateway.sqlite3").is_file(),
            "the file is where the folder says"
        );
        let again = Store::open(&dir).await.unwrap();
        assert_eq!(
            again.record_start("test", "-").await.unwrap(),
            2,
            "the same file"
        );
        again.close().await;
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }
}
