//! Second factors (authenticator apps and passkeys), recovery codes,
//! remembered browsers, and the short-lived server-side state of enrolments
//! and WebAuthn ceremonies. Secrets arrive sealed: nothing here decrypts.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Result, StorageError, get_list, to_json_list};

/// An authenticator app (RFC 6238).
pub const TOTP: &str = "totp";
/// A passkey or security key (WebAuthn).
pub const PASSKEY: &str = "passkey";

#[derive(Debug, Clone, serde::Serialize)]
pub struct Factor {
    pub factor_id: String,
    pub user_id: String,
    /// `totp` or `passkey`.
    pub kind: String,
    pub name: String,
    /// The sealed TOTP secret, or the passkey as JSON.
    #[serde(skip)]
    pub secret: String,
    #[serde(skip)]
    pub credential_id: Option<String>,
    #[serde(skip)]
    pub last_step: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "factor_id, user_id, kind, name, secret, credential_id, last_step, created_at, last_used_at";

fn from_row(r: &AnyRow) -> Result<Factor> {
    Ok(Factor {
        factor_id: r.try_get("factor_id")?,
        user_id: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        secret: r.try_get("secret")?,
        credential_id: r.try_get("credential_id")?,
        last_step: r.try_get("last_step")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

pub async fn insert(db: &Db, f: &Factor) -> Result<()> {
    sqlx::query(
        "INSERT INTO factors (factor_id, user_id, kind, name, secret, credential_id, last_step, created_at, last_used_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&f.factor_id)
    .bind(&f.user_id)
    .bind(&f.kind)
    .bind(&f.name)
    .bind(&f.secret)
    .bind(&f.credential_id)
    .bind(f.last_step)
    .bind(f.created_at)
    .bind(f.last_used_at)
    .execute(db.pool())
    .await
    .map_err(|e| StorageError::on_unique(e, "credential"))?;
    Ok(())
}

/// A user's factors, oldest first.
pub async fn for_user(db: &Db, user_id: &str) -> Result<Vec<Factor>> {
    let sql =
        sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM factors WHERE user_id = $1 ORDER BY created_at, factor_id"));
    let rows = sqlx::query(sql).bind(user_id).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// The passkey with credential id `credential_id` (base64url), whoever holds it.
pub async fn by_credential(db: &Db, credential_id: &str) -> Result<Option<Factor>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM factors WHERE credential_id = $1"));
    let row = sqlx::query(sql).bind(credential_id).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// Accepts TOTP time step `step` of factor `factor_id` once: true only for the
/// first presentation of a step later than every one accepted before (one
/// conditional UPDATE, so two replicas cannot both accept it).
pub async fn spend_step(db: &Db, factor_id: &str, step: i64, now: i64) -> Result<bool> {
    let res =
        sqlx::query("UPDATE factors SET last_step = $2, last_used_at = $3 WHERE factor_id = $1 AND last_step < $2")
            .bind(factor_id)
            .bind(step)
            .bind(now)
            .execute(db.pool())
            .await?;
    Ok(res.rows_affected() == 1)
}

/// Stores a passkey's updated state (signature counter, backup flags) after a use.
pub async fn used(db: &Db, factor_id: &str, secret: Option<&str>, now: i64) -> Result<()> {
    sqlx::query("UPDATE factors SET secret = COALESCE($2, secret), last_used_at = $3 WHERE factor_id = $1")
        .bind(factor_id)
        .bind(secret)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn rename(db: &Db, user_id: &str, factor_id: &str, name: &str) -> Result<bool> {
    let res = sqlx::query("UPDATE factors SET name = $3 WHERE factor_id = $1 AND user_id = $2")
        .bind(factor_id)
        .bind(user_id)
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Removes one factor of `user_id`; returns it if it existed.
pub async fn remove(db: &Db, user_id: &str, factor_id: &str) -> Result<Option<Factor>> {
    let sql =
        sqlx::AssertSqlSafe(format!("DELETE FROM factors WHERE factor_id = $1 AND user_id = $2 RETURNING {COLUMNS}"));
    let row = sqlx::query(sql).bind(factor_id).bind(user_id).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// Removes every factor, recovery code and remembered browser of `user_id`;
/// returns the factors removed.
pub async fn remove_all(db: &Db, user_id: &str) -> Result<Vec<Factor>> {
    let mut tx = db.begin().await?;
    let sql = sqlx::AssertSqlSafe(format!("DELETE FROM factors WHERE user_id = $1 RETURNING {COLUMNS}"));
    let rows = sqlx::query(sql).bind(user_id).fetch_all(&mut *tx).await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM remembered_browsers WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    super::commit(tx).await?;
    rows.iter().map(from_row).collect()
}

/// Replaces every recovery code of `user_id` with `hashes`.
pub async fn set_recovery_codes(db: &Db, user_id: &str, hashes: &[String], now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    for h in hashes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(h)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    super::commit(tx).await?;
    Ok(())
}

/// Spends recovery code `hash` of `user_id`: true the first time only.
pub async fn spend_recovery_code(db: &Db, user_id: &str, hash: &str, now: i64) -> Result<bool> {
    let res =
        sqlx::query("UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL")
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(db.pool())
            .await?;
    Ok(res.rows_affected() == 1)
}

/// Recovery codes of `user_id` not used yet.
pub async fn recovery_codes_left(db: &Db, user_id: &str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(db.pool())
        .await?;
    Ok(n)
}

/// A browser remembered for `user_id`: the factor it proved, and when.
pub async fn remember_browser(
    db: &Db,
    id_hash: &str,
    user_id: &str,
    amr: &[String],
    proven_at: i64,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO remembered_browsers (id_hash, user_id, amr, proven_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(user_id)
    .bind(to_json_list(amr))
    .bind(proven_at)
    .bind(expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The factor (`amr`) and proof time of a live remembered browser of `user_id`.
pub async fn remembered(db: &Db, id_hash: &str, user_id: &str, now: i64) -> Result<Option<(Vec<String>, i64)>> {
    let row = sqlx::query(
        "SELECT amr, proven_at FROM remembered_browsers WHERE id_hash = $1 AND user_id = $2 AND expires_at > $3",
    )
    .bind(id_hash)
    .bind(user_id)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    match row {
        Some(r) => Ok(Some((get_list(&r, "amr")?, r.try_get("proven_at")?))),
        None => Ok(None),
    }
}

/// Forgets every remembered browser of `user_id`; returns how many.
pub async fn forget_browsers(db: &Db, user_id: &str) -> Result<u64> {
    let res =
        sqlx::query("DELETE FROM remembered_browsers WHERE user_id = $1").bind(user_id).execute(db.pool()).await?;
    Ok(res.rows_affected())
}

/// Keeps ceremony state (sealed by the caller) under `id_hash` until `expires_at`.
pub async fn put_ceremony(db: &Db, id_hash: &str, state: &str, expires_at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO ceremonies (id_hash, state, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (id_hash) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at",
    )
    .bind(id_hash)
    .bind(state)
    .bind(expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Takes (and so spends) the live ceremony state under `id_hash`.
pub async fn take_ceremony(db: &Db, id_hash: &str, now: i64) -> Result<Option<String>> {
    let row = sqlx::query("DELETE FROM ceremonies WHERE id_hash = $1 RETURNING state, expires_at")
        .bind(id_hash)
        .fetch_optional(db.pool())
        .await?;
    match row {
        Some(r) if r.try_get::<i64, _>("expires_at")? > now => Ok(Some(r.try_get("state")?)),
        _ => Ok(None),
    }
}

/// Reads the live ceremony state under `id_hash` without spending it.
pub async fn peek_ceremony(db: &Db, id_hash: &str, now: i64) -> Result<Option<String>> {
    let row = sqlx::query("SELECT state FROM ceremonies WHERE id_hash = $1 AND expires_at > $2")
        .bind(id_hash)
        .bind(now)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| r.try_get("state").map_err(StorageError::from)).transpose()
}
