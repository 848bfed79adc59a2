//! Pending authorization requests: the validated parameters, kept server-side
//! while the user is on the login box, so nothing is trusted from hidden fields.

use sqlx::Row;

use super::{Db, Result};

#[derive(Debug, Clone)]
pub struct AuthRequestRow {
    pub id: String,
    pub browser_hash: String,
    pub client_id: String,
    /// JSON of the validated request.
    pub params: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(db: &Db, r: &AuthRequestRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO auth_requests (id, browser_hash, client_id, params, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.id)
    .bind(&r.browser_hash)
    .bind(&r.client_id)
    .bind(&r.params)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn find_live(db: &Db, id: &str, now: i64) -> Result<Option<AuthRequestRow>> {
    let row = sqlx::query(
        "SELECT id, browser_hash, client_id, params, created_at, expires_at
         FROM auth_requests WHERE id = $1 AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok(AuthRequestRow {
            id: r.try_get("id")?,
            browser_hash: r.try_get("browser_hash")?,
            client_id: r.try_get("client_id")?,
            params: r.try_get("params")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM auth_requests WHERE id = $1").bind(id).execute(db.pool()).await?;
    Ok(())
}

/// Binds the request to a new browser secret (the CSRF value renewed at login).
pub async fn rebind(db: &Db, id: &str, browser_hash: &str) -> Result<()> {
    sqlx::query("UPDATE auth_requests SET browser_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(browser_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Replaces the stored parameters (a pending account link added or spent).
pub async fn update_params(db: &Db, id: &str, params: &str) -> Result<()> {
    sqlx::query("UPDATE auth_requests SET params = $2 WHERE id = $1").bind(id).bind(params).execute(db.pool()).await?;
    Ok(())
}
