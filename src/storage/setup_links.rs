//! One-time links that create an administrator: stored by hash, found while
//! fresh, spent once by one conditional DELETE (two replicas, or two tabs,
//! cannot both spend one).

use super::{Db, Result};

/// `origin`: `serve` (logged at start while nobody is an administrator) or `cli`.
pub async fn insert(db: &Db, token_hash: &str, origin: &str, now: i64, expires_at: i64) -> Result<()> {
    sqlx::query("INSERT INTO setup_links (token_hash, origin, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(origin)
        .bind(now)
        .bind(expires_at)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The origin of the link, when it is there and fresh (the form it opens
/// spends nothing).
pub async fn live(db: &Db, token_hash: &str, now: i64) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT origin FROM setup_links WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(now)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(|r| r.0))
}

/// Forgets every link `serve` logged (an administrator exists now).
pub async fn forget_logged(db: &Db) -> Result<()> {
    sqlx::query("DELETE FROM setup_links WHERE origin = 'serve'").execute(db.pool()).await?;
    Ok(())
}

/// Spends the link; false when it was spent, expired or never made.
pub async fn spend(db: &Db, token_hash: &str, now: i64) -> Result<bool> {
    let res = sqlx::query("DELETE FROM setup_links WHERE token_hash = $1 AND expires_at > $2")
        .bind(token_hash)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(res.rows_affected() == 1)
}
