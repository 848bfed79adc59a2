//! Rotating refresh tokens with reuse detection. `rotate` is one conditional
//! UPDATE, so concurrent presentations of one token are decided by the
//! database, never by a race between replicas.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Result, get_bool, get_list, to_json_list};

#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: Option<String>,
    pub scope: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub idp: Option<String>,
    /// The `acr` the grant was issued at (a refresh never raises it).
    pub acr: Option<String>,
    pub audience: Option<String>,
    pub offline: bool,
    /// The DPoP key the family is bound to (public clients that used DPoP).
    pub dpop_jkt: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub grant_expires_at: i64,
}

const COLUMNS: &str = "token_hash, grant_id, client_id, user_id, sid, scope, auth_time, amr, idp, acr, audience, offline, dpop_jkt, \
    created_at, expires_at, grant_expires_at";

fn from_row(r: &AnyRow) -> Result<RefreshRow> {
    Ok(RefreshRow {
        token_hash: r.try_get("token_hash")?,
        grant_id: r.try_get("grant_id")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        sid: r.try_get("sid")?,
        scope: r.try_get("scope")?,
        auth_time: r.try_get("auth_time")?,
        amr: get_list(r, "amr")?,
        idp: r.try_get("idp")?,
        acr: r.try_get("acr")?,
        audience: r.try_get("audience")?,
        offline: get_bool(r, "offline")?,
        dpop_jkt: r.try_get("dpop_jkt")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        grant_expires_at: r.try_get("grant_expires_at")?,
    })
}

async fn insert_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(ex: E, t: &RefreshRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, sid, scope, auth_time, amr, offline,
            created_at, expires_at, grant_expires_at, idp, audience, acr, dpop_jkt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&t.token_hash)
    .bind(&t.grant_id)
    .bind(&t.client_id)
    .bind(&t.user_id)
    .bind(&t.sid)
    .bind(&t.scope)
    .bind(t.auth_time)
    .bind(to_json_list(&t.amr))
    .bind(t.offline)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.grant_expires_at)
    .bind(&t.idp)
    .bind(&t.audience)
    .bind(&t.acr)
    .bind(&t.dpop_jkt)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn insert(db: &Db, t: &RefreshRow) -> Result<()> {
    insert_in(db.pool(), t).await
}

pub(super) async fn insert_tx(tx: &mut sqlx::Transaction<'_, sqlx::Any>, t: &RefreshRow) -> Result<()> {
    insert_in(&mut **tx, t).await
}

/// Forgets the sealed successors of tokens spent at or before `spent_before`:
/// past every client's leeway, nothing may hand them out again.
pub async fn wipe_successors(db: &Db, spent_before: i64) -> Result<u64> {
    let res = sqlx::query(
        "UPDATE refresh_tokens SET successor_sealed = NULL WHERE successor_sealed IS NOT NULL AND used_at <= $1",
    )
    .bind(spent_before)
    .execute(db.pool())
    .await?;
    Ok(res.rows_affected())
}

pub enum Rotation<E> {
    /// This call spent the token and stored its successor.
    Rotated(RefreshRow),
    /// Spent before; here is when, and the sealed successor it got.
    AlreadyUsed { row: RefreshRow, used_at: i64, successor_sealed: Option<Vec<u8>> },
    /// Unknown, expired, revoked, or another client's.
    Invalid,
    /// `successor_for` refused the token (nothing was changed).
    Refused(E),
}

/// Spends `token_hash` (if it belongs to `client_id` and its grant was not
/// revoked) and stores the successor that `successor_for` builds from it,
/// atomically: the conditional UPDATE decides between concurrent
/// presentations, and refuses a grant that logout, `/revoke` or a code replay
/// revoked even where a racing rotation left a row behind. The successor's raw
/// value is sealed into the spent row when the client has a reuse leeway.
pub async fn rotate<E>(
    db: &Db,
    token_hash: &str,
    client_id: &str,
    now: i64,
    successor_sealed: Option<&[u8]>,
    successor_for: impl FnOnce(&RefreshRow) -> std::result::Result<RefreshRow, E>,
) -> Result<Rotation<E>> {
    let mut tx = db.begin().await?;
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE refresh_tokens SET used_at = $2, successor_sealed = $3
         WHERE token_hash = $1 AND client_id = $4 AND used_at IS NULL AND expires_at > $2 AND grant_expires_at > $2
           AND NOT EXISTS (SELECT 1 FROM revoked_grants g WHERE g.grant_id = refresh_tokens.grant_id)
         RETURNING {COLUMNS}"
    ));
    let won = sqlx::query(sql)
        .bind(token_hash)
        .bind(now)
        .bind(successor_sealed)
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = won {
        let old = from_row(&row)?;
        match successor_for(&old) {
            Ok(successor) => {
                insert_in(&mut *tx, &successor).await?;
                super::commit(tx).await?;
                return Ok(Rotation::Rotated(old));
            }
            Err(e) => {
                super::rollback(tx).await?;
                return Ok(Rotation::Refused(e));
            }
        }
    }
    super::rollback(tx).await?;
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, used_at, successor_sealed FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2"
    ));
    let Some(row) = sqlx::query(sql).bind(token_hash).bind(client_id).fetch_optional(db.pool()).await? else {
        return Ok(Rotation::Invalid);
    };
    let used_at: Option<i64> = row.try_get("used_at")?;
    match used_at {
        Some(used_at) => Ok(Rotation::AlreadyUsed {
            row: from_row(&row)?,
            used_at,
            successor_sealed: row.try_get("successor_sealed")?,
        }),
        None => Ok(Rotation::Invalid),
    }
}

/// A token that is neither spent nor expired (for introspection).
pub async fn find_active(db: &Db, token_hash: &str, now: i64) -> Result<Option<RefreshRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM refresh_tokens
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND grant_expires_at > $2"
    ));
    let row = sqlx::query(sql).bind(token_hash).bind(now).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// Any token row, spent or not (revocation accepts spent tokens too).
pub async fn find_any(db: &Db, token_hash: &str) -> Result<Option<RefreshRow>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1"));
    let row = sqlx::query(sql).bind(token_hash).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// Revokes a user's refresh tokens (their grants too, so access tokens stop at
/// userinfo and introspection): the non-offline ones, or all with `offline_too`.
pub async fn revoke_for_user(db: &Db, user_id: &str, offline_too: bool, now: i64) -> Result<()> {
    // `offline IN (false, offline_too)`: non-offline tokens, plus offline ones when asked.
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO revoked_grants (grant_id, revoked_at)
         SELECT DISTINCT grant_id, $2 FROM refresh_tokens WHERE user_id = $1 AND offline IN ($3, $4)
         ON CONFLICT (grant_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(now)
    .bind(false)
    .bind(offline_too)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND offline IN ($2, $3)")
        .bind(user_id)
        .bind(false)
        .bind(offline_too)
        .execute(&mut *tx)
        .await?;
    super::commit(tx).await?;
    Ok(())
}

/// Revokes every refresh token (offline ones included) a user holds at one
/// client, with their grants: the consent to that client was withdrawn.
pub async fn revoke_for_user_client(db: &Db, user_id: &str, client_id: &str, now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO revoked_grants (grant_id, revoked_at)
         SELECT DISTINCT grant_id, $3 FROM refresh_tokens WHERE user_id = $1 AND client_id = $2
         ON CONFLICT (grant_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND client_id = $2")
        .bind(user_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
    super::commit(tx).await?;
    Ok(())
}
