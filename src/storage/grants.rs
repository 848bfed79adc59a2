//! Grants: the root of everything issued from one authorization. Revoking a
//! grant ends its refresh-token family and makes its access tokens inactive.
//! Only revocations are stored.

use super::{Db, Result};

/// Revokes the grant and deletes its refresh tokens, in one transaction.
pub async fn revoke(db: &Db, grant_id: &str, now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO revoked_grants (grant_id, revoked_at) VALUES ($1, $2) ON CONFLICT (grant_id) DO NOTHING")
        .bind(grant_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = $1").bind(grant_id).execute(&mut *tx).await?;
    super::commit(tx).await?;
    Ok(())
}

/// True unless the grant was revoked.
pub async fn is_active(db: &Db, grant_id: &str) -> Result<bool> {
    let row = sqlx::query("SELECT revoked_at FROM revoked_grants WHERE grant_id = $1")
        .bind(grant_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.is_none())
}
