//! Storage: one connection pool over SQLite or Postgres through sqlx's Any driver,
//! the embedded migrations, and one repository module per aggregate.
//! SQL text is shared by both backends (`$N` placeholders, integer timestamps);
//! the few places that differ are decided here, not in callers.
//! Must not import axum, askama or jsonwebtoken.

pub mod apis;
pub mod attempts;
pub mod audit;
pub mod auth_codes;
pub mod auth_requests;
pub mod clients;
pub mod consents;
pub mod dpop;
pub mod email_tokens;
pub mod factors;
pub mod federation_states;
pub mod grants;
pub mod identities;
pub mod keys;
pub mod login_tickets;
pub mod refresh_tokens;
pub mod roles;
pub mod sessions;
pub mod setup_links;
pub mod users;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

static MIGRATOR_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATOR_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle every layer above receives. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

impl StorageError {
    /// The database is away or overloaded (no connection in time, connection
    /// refused or lost, server shutting down): worth retrying, not a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StorageError::Sqlx(e) => match e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                // A connection cut mid-handshake reads as a protocol error.
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(d) => d.code().is_some_and(|c| {
                    // 08xxx connection exceptions, 57P0x shutdown / cannot connect now,
                    // 53300 too many connections, 57014 statement timeout.
                    c.starts_with("08") || c.starts_with("57P0") || c == "53300" || c == "57014"
                }),
                _ => false,
            },
            _ => false,
        }
    }

    /// Maps a unique-constraint violation to `Conflict(what)`.
    pub fn on_unique(e: sqlx::Error, what: &'static str) -> StorageError {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StorageError::Conflict(what),
            _ => StorageError::Sqlx(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// How long a query may wait for a connection (and the liveness check each
    /// pooled connection gets before use): the bound on a request when the
    /// database refuses connections or silently drops traffic.
    pub acquire_timeout: Duration,
    /// Postgres `statement_timeout` for every connection; None for the CLI's
    /// long operations.
    pub statement_timeout: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { max_connections: 8, acquire_timeout: Duration::from_secs(5), statement_timeout: None }
    }
}

/// Rolls `tx` back on a task of its own (see `commit`).
pub async fn rollback(tx: sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
    if tx.backend_name() == "SQLite" {
        return Ok(tx.rollback().await?);
    }
    match tokio::spawn(tx.rollback()).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(StorageError::Sqlx(sqlx::Error::Protocol(format!("transaction task: {e}")))),
    }
}

impl Db {
    /// Connects to `url`, creating the SQLite file (and its folder) when missing.
    pub async fn connect(url: &str, opts: &ConnectOptions) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url_with_create(url)?)
        } else {
            (Backend::Postgres, url.to_string())
        };
        // test_before_acquire (sqlx's default) pings a pooled connection inside
        // the acquire timeout, so a connection that went dark is noticed there.
        let mut pool = AnyPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(true)
            // The last guard: a connection given back still inside a
            // transaction is closed, never reused (no round trip: sqlx's own
            // count of open transactions).
            .after_release(|conn, _meta| Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) }));
        if backend == Backend::Sqlite {
            // Per-connection settings: wait for writers instead of failing with SQLITE_BUSY,
            // enforce foreign keys, and use WAL so readers never block the writer.
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        if backend == Backend::Postgres
            && let Some(t) = opts.statement_timeout
        {
            let set = format!("SET statement_timeout = {}", t.as_millis());
            pool = pool.after_connect(move |conn, _meta| {
                let set = set.clone();
                Box::pin(async move {
                    conn.execute(sqlx::AssertSqlSafe(set)).await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect(&url).await?;
        Ok(Db { pool, backend })
    }

    /// Applies pending migrations. Safe to run from several replicas at once:
    /// Postgres serialises them with an advisory lock, SQLite with its write lock.
    pub async fn migrate(&self) -> Result<()> {
        let m = match self.backend {
            Backend::Sqlite => &MIGRATOR_SQLITE,
            Backend::Postgres => &MIGRATOR_POSTGRES,
        };
        m.run(&self.pool).await.map_err(|e| StorageError::Sqlx(e.into()))
    }

    /// The embedded migrations this database has not applied yet (version,
    /// description), in order; every one of them on a database never migrated.
    pub async fn pending_migrations(&self) -> Result<Vec<(i64, String)>> {
        let m = match self.backend {
            Backend::Sqlite => &MIGRATOR_SQLITE,
            Backend::Postgres => &MIGRATOR_POSTGRES,
        };
        let applied: Vec<i64> = match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.pool)
            .await
        {
            Ok(v) => v,
            // Never migrated: the bookkeeping table is not there yet.
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("42P01") || e.message().contains("no such table") =>
            {
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        Ok(m.iter()
            .filter(|x| !x.migration_type.is_down_migration() && !applied.contains(&x.version))
            .map(|x| (x.version, x.description.to_string()))
            .collect())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction on a task of its own. A request cancelled while
    /// `BEGIN` is in flight (its client hung up, its time ran out) must not
    /// cancel the `BEGIN`: a connection could go back to the pool inside a
    /// transaction, and later requests' writes would join it and be lost with
    /// it. Run to completion, the transaction is either handed over or
    /// dropped whole (rolled back), never half-begun.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        // SQLite's driver runs each statement to completion on its own worker
        // thread already; an extra hop would only lengthen the one writer's
        // critical section (measured: -9 % refresh rotations).
        let started = std::time::Instant::now();
        let tx = if self.backend == Backend::Sqlite {
            self.pool.begin().await?
        } else {
            let pool = self.pool.clone();
            match tokio::spawn(async move { pool.begin().await }).await {
                Ok(r) => r?,
                Err(e) => return Err(StorageError::Sqlx(sqlx::Error::Protocol(format!("transaction task: {e}")))),
            }
        };
        metrics::histogram!("sesame_db_acquire_seconds").record(started.elapsed().as_secs_f64());
        Ok(tx)
    }
}

/// Commits `tx` on a task of its own, for the same reason as `Db::begin`:
/// a `COMMIT` is never cut off halfway by a cancelled request.
pub async fn commit(tx: sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
    if tx.backend_name() == "SQLite" {
        return Ok(tx.commit().await?);
    }
    match tokio::spawn(tx.commit()).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(StorageError::Sqlx(sqlx::Error::Protocol(format!("transaction task: {e}")))),
    }
}

impl Db {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// One cheap round trip, for readiness checks; gives up after `within`.
    pub async fn ping(&self, within: Duration) -> Result<()> {
        match tokio::time::timeout(within, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(r) => r.map(|_| ()).map_err(Into::into),
            Err(_) => Err(StorageError::Sqlx(sqlx::Error::PoolTimedOut)),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Rows the janitor deletes per statement: each delete is a short
/// transaction, so a backlog of millions never holds one long one.
const PURGE_BATCH: i64 = 2000;

/// Removes expired rows of the short-lived tables, in batches, each found
/// through an index.
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64> {
    let mut n = 0;
    for (table, key, column, before) in [
        ("auth_requests", "id", "expires_at", "$1"),
        ("federation_states", "state_hash", "expires_at", "$1"),
        ("email_tokens", "token_hash", "expires_at", "$1"),
        ("auth_codes", "code_hash", "expires_at", "$1 - 3600"),
        ("sessions", "id_hash", "expires_at", "$1"),
        ("sessions", "id_hash", "idle_expires_at", "$1"),
        ("refresh_tokens", "token_hash", "grant_expires_at", "$1"),
        // Front-channel logout for a browser that never came back.
        ("ended_sessions", "id_hash", "ended_at", "$1 - 2592000"),
        // Every token of a grant has expired a year after it was revoked.
        ("revoked_grants", "grant_id", "revoked_at", "$1 - 31536000"),
        // Attempt windows over (the longest, a second factor's, is an hour);
        // addresses unseen for 90 days.
        ("attempts", "bucket", "window_start", "$1 - 7200"),
        ("ceremonies", "id_hash", "expires_at", "$1"),
        ("remembered_browsers", "id_hash", "expires_at", "$1"),
        ("dpop_proofs", "proof_hash", "expires_at", "$1"),
        ("login_tickets", "ticket_hash", "expires_at", "$1"),
        ("setup_links", "token_hash", "expires_at", "$1"),
        ("known_addresses", "bucket", "seen_at", "$1 - 7776000"),
    ] {
        // Only these literals are formatted in; `now` is bound. The ORDER BY
        // makes the planner walk the column's index from the oldest row and
        // stop after a batch: without it, when many rows match, Postgres
        // chose a sequential scan, again for every batch.
        let sql = format!(
            "DELETE FROM {table} WHERE {column} <= {before} AND {key} IN \
             (SELECT {key} FROM {table} WHERE {column} <= {before} ORDER BY {column} LIMIT {PURGE_BATCH})"
        );
        loop {
            let done =
                sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(now).execute(db.pool()).await?.rows_affected();
            n += done;
            if done < PURGE_BATCH as u64 {
                break;
            }
        }
    }
    n += refresh_tokens::wipe_successors(db, now - crate::domain::MAX_REFRESH_LEEWAY_SECS as i64).await?;
    Ok(n)
}

fn sqlite_url_with_create(url: &str) -> Result<String> {
    if let Some(path) = crate::config::sqlite_path(url)
        && let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::Sqlx(sqlx::Error::Configuration(
                format!("cannot create database folder {}: {e}", dir.display()).into(),
            ))
        })?;
    }
    // The database holds sealed keys, sessions and password hashes: create it
    // readable by its owner only. SQLite gives the -wal and -shm files the
    // database file's mode.
    if let Some(path) = crate::config::sqlite_path(url)
        && !path.exists()
    {
        create_private(&path).map_err(|e| {
            StorageError::Sqlx(sqlx::Error::Configuration(
                format!("cannot create database file {}: {e}", path.display()).into(),
            ))
        })?;
    }
    if url.contains("mode=") {
        Ok(url.to_string())
    } else if url.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}

#[cfg(unix)]
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(|_| ())
}

#[cfg(not(unix))]
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path).map(|_| ())
}

/// Reads a flag column: BOOLEAN on Postgres, INTEGER on SQLite.
pub(crate) fn get_bool(row: &AnyRow, col: &str) -> Result<bool> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(col)? != 0),
    }
}

/// Reads a JSON-encoded list of strings.
pub(crate) fn get_list(row: &AnyRow, col: &str) -> Result<Vec<String>> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| StorageError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn to_json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}
