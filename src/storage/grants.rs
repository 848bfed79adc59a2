//! Grants: the root of everything issued from one authorization. Revoking a
//! grant ends its refresh-token family and makes its access tokens inactive.

use sqlx::Row;

use super::{Db, Result};

pub async fn insert(
    db: &Db,
    grant_id: &str,
    client_id: &str,
    user_id: Option<&str>,
    sid: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO grants (grant_id, client_id, user_id, sid, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(grant_id)
        .bind(client_id)
        .bind(user_id)
        .bind(sid)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Revokes the grant and deletes its refresh tokens, in one transaction.
pub async fn revoke(db: &Db, grant_id: &str, now: i64) -> Result<()> {
    let mut tx = db.pool().begin().await?;
    sqlx::query("UPDATE grants SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL")
        .bind(grant_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = $1").bind(grant_id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// True when the grant exists and is not revoked.
pub async fn is_active(db: &Db, grant_id: &str) -> Result<bool> {
    let row = sqlx::query("SELECT revoked_at FROM grants WHERE grant_id = $1")
        .bind(grant_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<Option<i64>, _>("revoked_at")?.is_none(),
        None => false,
    })
}
