//! Round trips to upstream identity providers in flight. A row is found by the
//! hash of the `state` sent upstream, is bound to the browser that started it
//! and to its pending authorization, and is spent once.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Result};

#[derive(Debug, Clone)]
pub struct FederationState {
    pub state_hash: String,
    pub provider: String,
    pub request_id: String,
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// A form_post answer (JSON) waiting for the browser's same-site return.
    pub response: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

const COLUMNS: &str =
    "state_hash, provider, request_id, browser_hash, nonce, pkce_verifier, response, created_at, expires_at, used_at";

fn from_row(r: &AnyRow) -> Result<FederationState> {
    Ok(FederationState {
        state_hash: r.try_get("state_hash")?,
        provider: r.try_get("provider")?,
        request_id: r.try_get("request_id")?,
        browser_hash: r.try_get("browser_hash")?,
        nonce: r.try_get("nonce")?,
        pkce_verifier: r.try_get("pkce_verifier")?,
        response: r.try_get("response")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
    })
}

pub async fn insert(db: &Db, f: &FederationState) -> Result<()> {
    sqlx::query(
        "INSERT INTO federation_states (state_hash, provider, request_id, browser_hash, nonce, pkce_verifier,
            response, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&f.state_hash)
    .bind(&f.provider)
    .bind(&f.request_id)
    .bind(&f.browser_hash)
    .bind(&f.nonce)
    .bind(&f.pkce_verifier)
    .bind(&f.response)
    .bind(f.created_at)
    .bind(f.expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A round trip, spent or expired ones included (until purged), so a replay
/// can be told apart from a forgery.
pub async fn find(db: &Db, state_hash: &str) -> Result<Option<FederationState>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM federation_states WHERE state_hash = $1"));
    let row = sqlx::query(sql).bind(state_hash).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// Keeps a form_post answer for the browser's return; false when the round
/// trip is spent, expired, or already has an answer.
pub async fn keep_response(db: &Db, state_hash: &str, response: &str, now: i64) -> Result<bool> {
    let res = sqlx::query(
        "UPDATE federation_states SET response = $2
         WHERE state_hash = $1 AND response IS NULL AND used_at IS NULL AND expires_at > $3",
    )
    .bind(state_hash)
    .bind(response)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Spends the round trip; false when another request spent it first.
pub async fn spend(db: &Db, state_hash: &str, now: i64) -> Result<bool> {
    let res = sqlx::query(
        "UPDATE federation_states SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(state_hash)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(res.rows_affected() == 1)
}
