//! The audit log: every authentication action as one event, recorded with
//! `record()` from wherever it happens and written off the request path.
//!
//! `record()` never waits and never fails: the event goes into a bounded
//! in-process queue that a writer task empties in batches (one transaction
//! each). A full queue drops the event, counts it, and says so in a warning
//! carrying the running count. The request's address, user agent and request
//! id are picked up from the request the event happens in (`context` layer).

mod event;
pub mod search;
mod writer;

pub use writer::write as write_batch;

pub use event::{Event, Kind, Outcome};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::domain::Clock;
use crate::storage::Db;

/// Who did it: the user themself, a management client, or the command line.
pub const ACTOR_CLI: &str = "cli";

/// What the writer task receives.
enum Msg {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
}

/// The handle every part of Sesame records through. Cheap to clone.
#[derive(Clone)]
pub struct Auditor(Arc<Inner>);

struct Inner {
    tx: mpsc::Sender<Msg>,
    db: Db,
    /// Whether `db` is a database of its own (not the main one).
    separate: bool,
    clock: Clock,
    log_lines: bool,
    dropped: AtomicU64,
    /// Events the database refused (written row by row, these alone failed).
    lost: Arc<AtomicU64>,
    last_warning: AtomicI64,
}

/// The request an event happens in, captured by the `context` layer.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

tokio::task_local! {
    static CONTEXT: Arc<Context>;
}

/// Records `event`: never blocks, never fails.
pub fn record(auditor: &Auditor, event: Event) {
    auditor.record(event)
}

impl Auditor {
    /// Opens the audit store (creating its table) and starts the writer.
    pub async fn start(main: &Db, config: &crate::config::Config, clock: Clock) -> anyhow::Result<Auditor> {
        let separate = audit_url(config).is_some();
        let db = match audit_url(config) {
            None => main.clone(),
            Some(url) => {
                Db::connect(&url, &crate::storage::ConnectOptions { max_connections: 4, ..Default::default() })
                    .await
                    .map_err(|e| anyhow::anyhow!("audit database: {e}"))?
            }
        };
        crate::storage::audit::ensure_schema(&db).await.map_err(|e| anyhow::anyhow!("audit database: {e}"))?;
        let (tx, rx) = mpsc::channel(config.audit.queue_size);
        let lost = Arc::new(AtomicU64::new(0));
        let a = Auditor(Arc::new(Inner {
            tx,
            db: db.clone(),
            separate,
            clock,
            log_lines: config.audit.log_lines,
            dropped: AtomicU64::new(0),
            lost: lost.clone(),
            last_warning: AtomicI64::new(0),
        }));
        tokio::spawn(writer::run(db, rx, lost));
        Ok(a)
    }

    /// The database the events are kept in (for searching).
    pub fn db(&self) -> &Db {
        &self.0.db
    }

    pub fn record(&self, mut event: Event) {
        let i = &self.0;
        event.at_ms = i.clock.now_ms();
        event.clean();
        if event.context.is_none() {
            event.context = CONTEXT.try_with(Arc::clone).ok();
        }
        if i.log_lines {
            event.log();
        }
        crate::telemetry::event(event.kind.as_str(), event.outcome.as_str());
        if matches!(event.kind, Kind::LoginSuccess | Kind::LoginFailure) {
            // Login events name only clients the request was validated for.
            let client = event.client_id.as_deref().unwrap_or("");
            let method = event.method.as_deref().unwrap_or("");
            crate::telemetry::sign_in(event.outcome.as_str(), method, client, event.reason.as_deref().unwrap_or(""));
        }
        if i.tx.try_send(Msg::Event(Box::new(event))).is_err() {
            crate::telemetry::audit_dropped("queue_full", 1);
            let n = i.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One warning a second at most, with the running count.
            let now = i.clock.now();
            if i.last_warning.swap(now, Ordering::Relaxed) != now {
                tracing::warn!(dropped_total = n, "audit queue full: events dropped");
            }
        }
    }

    /// Events waiting to be written.
    pub fn queue_depth(&self) -> usize {
        self.0.tx.max_capacity() - self.0.tx.capacity()
    }

    /// The audit database's pool when it is not the main database's.
    pub fn own_pool(&self) -> Option<&sqlx::AnyPool> {
        self.0.separate.then(|| self.0.db.pool())
    }

    /// Events dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Events the audit database refused, since start.
    pub fn lost(&self) -> u64 {
        self.0.lost.load(Ordering::Relaxed)
    }

    /// Waits until every event recorded before this call is written (shutdown,
    /// the end of a CLI command).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.0.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rx).await;
        }
    }

    /// Deletes events past `retention_days`, a few hundred rows at a time.
    pub async fn purge(&self, retention_days: u64) -> Result<u64, crate::storage::StorageError> {
        let before = (self.0.clock.now() - (retention_days as i64) * 86_400) * 1000;
        crate::storage::audit::purge_before(&self.0.db, before, 500).await
    }
}

/// The audit store's URL when it is not the main database.
fn audit_url(config: &crate::config::Config) -> Option<String> {
    if !config.audit.database_url.is_empty() {
        return (config.audit.database_url != config.database_url()).then(|| config.audit.database_url.clone());
    }
    let main = config.database_url();
    let path = crate::config::sqlite_path(&main)?;
    let stem = path.file_stem()?.to_string_lossy().to_string();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    Some(format!("sqlite://{}", path.with_file_name(format!("{stem}-audit{ext}")).display()))
}

/// The current request's address, user agent and id (empty outside a request).
pub fn current_context() -> Context {
    CONTEXT.try_with(|c| Context::clone(c)).unwrap_or_default()
}

/// Runs `f` (a request) with `ctx` available to every `record()` inside it.
pub async fn scope<F: std::future::Future>(ctx: Context, f: F) -> F::Output {
    CONTEXT.scope(Arc::new(ctx), f).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_audit_file_sits_beside_the_database() {
        let c =
            crate::config::Config { database_url: "sqlite:///var/lib/sesame/sesame.db".into(), ..Default::default() };
        assert_eq!(audit_url(&c).as_deref(), Some("sqlite:///var/lib/sesame/sesame-audit.db"));
        let c = crate::config::Config { database_url: "postgres://db/sesame".into(), ..Default::default() };
        assert_eq!(audit_url(&c), None);
    }
}
