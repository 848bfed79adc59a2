//! The audit log's table: written in batches, searched newest first by
//! user, address, client, type, outcome, IP and time, kept for a number of days.
//! The table may live in a database of its own (a SQLite file beside the main
//! one), so it is created here rather than by the main migrations.

use std::fmt::Write;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db, Result};

const COLUMNS: &str = "at, type, outcome, user_id, email, client_id, sid_hash, ip, user_agent, request_id, \
                       method, reason, actor, details";

/// Creates the table and its indexes when missing. Each search filter has an
/// index ending in (at, id), so every search reads its rows in order.
pub async fn ensure_schema(db: &Db) -> Result<()> {
    let id = match db.backend() {
        Backend::Sqlite => "id INTEGER PRIMARY KEY",
        Backend::Postgres => "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    };
    let table = format!(
        "CREATE TABLE IF NOT EXISTS audit_events (
            {id},
            at BIGINT NOT NULL,
            type TEXT NOT NULL,
            outcome TEXT NOT NULL,
            user_id TEXT,
            email TEXT,
            client_id TEXT,
            sid_hash TEXT,
            ip TEXT,
            user_agent TEXT,
            request_id TEXT,
            method TEXT,
            reason TEXT,
            actor TEXT,
            details TEXT
        )"
    );
    let mut stmts = vec![table];
    // No index on IP: nearly every event has one, so it would cost every
    // insert; an IP search reads the time index newest first (narrow it with
    // a time range). The optional columns' indexes are partial: an event without a user (a
    // machine token) costs no entry there. `col = $1` implies `col IS NOT
    // NULL`, so both backends use them.
    for (name, cols, partial) in [
        ("audit_events_at", "at, id", None),
        ("audit_events_type", "type, at, id", None),
        ("audit_events_user", "user_id, at, id", Some("user_id")),
        ("audit_events_email", "email, at, id", Some("email")),
        ("audit_events_client", "client_id, at, id", Some("client_id")),
    ] {
        let only = partial.map(|c| format!(" WHERE {c} IS NOT NULL")).unwrap_or_default();
        stmts.push(format!("CREATE INDEX IF NOT EXISTS {name} ON audit_events ({cols}){only}"));
    }
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        // Replicas starting together: one creates, the others wait and see it.
        sqlx::query("SELECT pg_advisory_xact_lock(7305827)").execute(&mut *tx).await?;
    }
    for s in stmts {
        sqlx::query(sqlx::AssertSqlSafe(s)).execute(&mut *tx).await?;
    }
    super::commit(tx).await?;
    Ok(())
}

/// Writes the batch in one multi-row INSERT. Placeholders are written here,
/// per backend: `$N` for Postgres; plain `?` for SQLite, whose driver looks
/// every `$N` up by name (a cost growing with the square of the statement's
/// parameters), while `?` needs no lookup.
pub async fn insert_batch(db: &Db, batch: &[NewEvent<'_>]) -> Result<()> {
    insert_rows(db, batch).await
}

/// An event as it is written: the recorder's `Event` lends its fields.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub at_ms: i64,
    pub kind: &'a str,
    pub outcome: &'a str,
    pub user_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub sid_hash: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub method: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub details: Option<&'a serde_json::Value>,
}

/// Rows per INSERT statement: a batch is written as statements of these
/// sizes (largest first), so each connection caches at most five prepared
/// statements. (One statement per batch length made every length a statement
/// of its own: hundreds of large prepared statements per connection, which
/// held tens of MB and were parsed again and again.)
pub const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

/// How many of `n` waiting rows the next statement writes.
pub fn chunk_len(n: usize) -> usize {
    CHUNKS.iter().copied().find(|&c| c <= n).unwrap_or(1).min(n.max(1))
}

/// Writes `rows` (at most `CHUNKS[0]`; see `chunk_len`) in one statement.
async fn insert_rows(db: &Db, rows: &[NewEvent<'_>]) -> Result<()> {
    insert_chunk(db.pool(), db.backend(), rows).await
}

async fn insert_chunk<'e, E>(ex: E, backend: Backend, rows: &[NewEvent<'_>]) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    const N: usize = 14;
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = format!("INSERT INTO audit_events ({COLUMNS}) VALUES ");
    for r in 0..rows.len() {
        sql.push_str(if r > 0 { ", (" } else { "(" });
        for c in 1..=N {
            if c > 1 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${}", r * N + c);
                }
            }
        }
        sql.push(')');
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in rows {
        q = q
            .bind(e.at_ms)
            .bind(e.kind)
            .bind(e.outcome)
            .bind(e.user_id)
            .bind(e.email)
            .bind(e.client_id)
            .bind(e.sid_hash)
            .bind(e.ip)
            .bind(e.user_agent)
            .bind(e.request_id)
            .bind(e.method)
            .bind(e.reason)
            .bind(e.actor)
            .bind(e.details.map(|d| d.to_string()));
    }
    q.execute(ex).await?;
    Ok(())
}

/// A stored event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stored {
    pub id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub outcome: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub client_id: Option<String>,
    pub sid_hash: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub method: Option<String>,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub details: Option<serde_json::Value>,
}

fn from_row(r: &AnyRow) -> Result<Stored> {
    let details: Option<String> = r.try_get("details")?;
    Ok(Stored {
        id: r.try_get("id")?,
        at_ms: r.try_get("at")?,
        kind: r.try_get("type")?,
        outcome: r.try_get("outcome")?,
        user_id: r.try_get("user_id")?,
        email: r.try_get("email")?,
        client_id: r.try_get("client_id")?,
        sid_hash: r.try_get("sid_hash")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        request_id: r.try_get("request_id")?,
        method: r.try_get("method")?,
        reason: r.try_get("reason")?,
        actor: r.try_get("actor")?,
        details: details.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// What to look for; every field narrows the search.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A user id, matched against `user_id`.
    pub user_id: Option<String>,
    /// A normalised address, matched against `email` (OR with `user_id`).
    pub email: Option<String>,
    pub client_id: Option<String>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
    pub ip: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Keyset cursor: events strictly older than (at, id).
    pub before: Option<(i64, i64)>,
    /// Events stored after this one (a live view asking what is new).
    pub after_id: Option<i64>,
}

/// The statement and its bound values, newest first. Public for the test
/// that reads its query plan.
pub fn search_sql(f: &Filter, limit: i64) -> (String, Vec<SqlValue>) {
    let mut sql = format!("SELECT id, {COLUMNS} FROM audit_events WHERE 1=1");
    let mut args = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: SqlValue| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    match (&f.user_id, &f.email) {
        (Some(u), Some(e)) => {
            arg(&mut sql, " AND (user_id = ?", SqlValue::Text(u.clone()));
            arg(&mut sql, " OR email = ?)", SqlValue::Text(e.clone()));
        }
        (Some(u), None) => arg(&mut sql, " AND user_id = ?", SqlValue::Text(u.clone())),
        (None, Some(e)) => arg(&mut sql, " AND email = ?", SqlValue::Text(e.clone())),
        (None, None) => {}
    }
    for (clause, v) in [
        (" AND client_id = ?", &f.client_id),
        (" AND type = ?", &f.kind),
        (" AND outcome = ?", &f.outcome),
        (" AND ip = ?", &f.ip),
    ] {
        if let Some(v) = v {
            arg(&mut sql, clause, SqlValue::Text(v.clone()));
        }
    }
    if let Some(s) = f.since_ms {
        arg(&mut sql, " AND at >= ?", SqlValue::Int(s));
    }
    if let Some(u) = f.until_ms {
        arg(&mut sql, " AND at <= ?", SqlValue::Int(u));
    }
    if let Some(id) = f.after_id {
        arg(&mut sql, " AND id > ?", SqlValue::Int(id));
    }
    if let Some((at, id)) = f.before {
        args.push(SqlValue::Int(at));
        args.push(SqlValue::Int(id));
        let (a, b) = (args.len() - 1, args.len());
        sql.push_str(&format!(" AND (at < ${a} OR (at = ${a} AND id < ${b}))"));
    }
    sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT {}", limit.clamp(1, 1000)));
    (sql, args)
}

#[derive(Debug, Clone)]
pub enum SqlValue {
    Text(String),
    Int(i64),
}

pub async fn search(db: &Db, f: &Filter, limit: i64) -> Result<Vec<Stored>> {
    let (sql, args) = search_sql(f, limit);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in args {
        q = match a {
            SqlValue::Text(s) => q.bind(s),
            SqlValue::Int(i) => q.bind(i),
        };
    }
    q.fetch_all(db.pool()).await?.iter().map(from_row).collect()
}

/// How many events of each (type, outcome) among `kinds` happened since
/// `since_ms` (the console's overview).
pub async fn counts_since(db: &Db, kinds: &[&str], since_ms: i64) -> Result<Vec<(String, String, i64)>> {
    let mut out = Vec::new();
    for k in kinds {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT outcome, COUNT(*) FROM audit_events WHERE type = $1 AND at >= $2 GROUP BY outcome")
                .bind(*k)
                .bind(since_ms)
                .fetch_all(db.pool())
                .await?;
        out.extend(rows.into_iter().map(|(o, n)| (k.to_string(), o, n)));
    }
    Ok(out)
}

/// Deletes events older than `before_ms`, `batch` rows per statement, so a
/// cleanup never holds the write lock for long. Returns how many went.
pub async fn purge_before(db: &Db, before_ms: i64, batch: i64) -> Result<u64> {
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM audit_events WHERE id IN
               (SELECT id FROM audit_events WHERE at < $1 ORDER BY at, id LIMIT $2)",
        )
        .bind(before_ms)
        .bind(batch)
        .execute(db.pool())
        .await?
        .rows_affected();
        total += n;
        // A short batch may only mean another replica's janitor took the rows
        // this one picked: done when nothing old is left.
        if n < batch as u64
            && sqlx::query("SELECT 1 FROM audit_events WHERE at < $1 LIMIT 1")
                .bind(before_ms)
                .fetch_optional(db.pool())
                .await?
                .is_none()
        {
            return Ok(total);
        }
        // Let logins and token requests in between two batches.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
