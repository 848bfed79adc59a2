//! One-time links that create an administrator: stored by hash, found while
//! fresh, spent once by one conditional DELETE (two replicas, or two tabs,
//! cannot both spend one).

use super::{Db, Result};

pub async fn insert(db: &Db, token_hash: &str, now: i64, expires_at: i64) -> Result<()> {
    sqlx::query("INSERT INTO setup_links (token_hash, created_at, expires_at) VALUES ($1, $2, $3)")
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Whether the link is there and fresh (the form it opens spends nothing).
pub async fn is_live(db: &Db, token_hash: &str, now: i64) -> Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT expires_at FROM setup_links WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(now)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.is_some())
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
