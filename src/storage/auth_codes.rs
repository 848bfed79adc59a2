//! Authorization codes: stored by hash, consumed atomically exactly once.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::refresh_tokens::{RefreshRow, insert_tx};
use super::{Db, Result, get_list, to_json_list};

#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub idp: Option<String>,
    /// The API the access tokens are for.
    pub audience: Option<String>,
    /// The DPoP key the authorization request named (`dpop_jkt`).
    pub dpop_jkt: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

// Returned once per redemption and matched at once: boxing the row would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Consumed<E = std::convert::Infallible> {
    /// First use: the code is now spent.
    Fresh(CodeRow),
    /// First use, but `check` refused it: the code is spent all the same.
    Refused(E),
    /// The code was spent before: a replay.
    AlreadyUsed {
        grant_id: String,
    },
    NotFound,
}

const COLUMNS: &str = "code_hash, grant_id, client_id, user_id, sid, redirect_uri, redirect_uri_sent, scope, nonce, code_challenge, \
    auth_time, amr, acr, idp, audience, dpop_jkt, created_at, expires_at";

fn from_row(r: &AnyRow) -> Result<CodeRow> {
    Ok(CodeRow {
        code_hash: r.try_get("code_hash")?,
        grant_id: r.try_get("grant_id")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        sid: r.try_get("sid")?,
        redirect_uri: r.try_get("redirect_uri")?,
        redirect_uri_sent: super::get_bool(r, "redirect_uri_sent")?,
        scope: r.try_get("scope")?,
        nonce: r.try_get("nonce")?,
        code_challenge: r.try_get("code_challenge")?,
        auth_time: r.try_get("auth_time")?,
        amr: get_list(r, "amr")?,
        acr: r.try_get("acr")?,
        idp: r.try_get("idp")?,
        audience: r.try_get("audience")?,
        dpop_jkt: r.try_get("dpop_jkt")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// Inserts the code and the session-client link in one transaction.
pub async fn insert_with_grant(db: &Db, c: &CodeRow) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, grant_id, client_id, user_id, sid, redirect_uri, scope, nonce,
            code_challenge, auth_time, amr, acr, created_at, expires_at, redirect_uri_sent, idp, audience, dpop_jkt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&c.code_hash)
    .bind(&c.grant_id)
    .bind(&c.client_id)
    .bind(&c.user_id)
    .bind(&c.sid)
    .bind(&c.redirect_uri)
    .bind(&c.scope)
    .bind(&c.nonce)
    .bind(&c.code_challenge)
    .bind(c.auth_time)
    .bind(to_json_list(&c.amr))
    .bind(&c.acr)
    .bind(c.created_at)
    .bind(c.expires_at)
    .bind(c.redirect_uri_sent)
    .bind(&c.idp)
    .bind(&c.audience)
    .bind(&c.dpop_jkt)
    .execute(&mut *tx)
    .await?;
    // The client now uses this session (single logout needs the list).
    sqlx::query(
        "INSERT INTO session_clients (sid, client_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (sid, client_id) DO NOTHING",
    )
    .bind(&c.sid)
    .bind(&c.client_id)
    .bind(c.created_at)
    .execute(&mut *tx)
    .await?;
    super::commit(tx).await?;
    Ok(())
}

/// Marks the code used and, in the same transaction, stores the first refresh
/// token that `check` builds from it (so a logout can never fall between the
/// two), or says why not. The conditional UPDATE is the single point of truth,
/// so two parallel redemptions cannot both win. A code `check` refuses stays
/// spent.
pub async fn redeem<E>(
    db: &Db,
    code_hash: &str,
    now: i64,
    check: impl FnOnce(&CodeRow) -> std::result::Result<Option<RefreshRow>, E>,
) -> Result<Consumed<E>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE auth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL RETURNING {COLUMNS}"
    ));
    let mut tx = db.begin().await?;
    if let Some(row) = sqlx::query(sql).bind(code_hash).bind(now).fetch_optional(&mut *tx).await? {
        let code = from_row(&row)?;
        let outcome = match check(&code) {
            Ok(Some(rt)) => {
                insert_tx(&mut tx, &rt).await?;
                Consumed::Fresh(code)
            }
            Ok(None) => Consumed::Fresh(code),
            Err(e) => Consumed::Refused(e),
        };
        super::commit(tx).await?;
        return Ok(outcome);
    }
    super::rollback(tx).await?;
    let used = sqlx::query("SELECT grant_id FROM auth_codes WHERE code_hash = $1")
        .bind(code_hash)
        .fetch_optional(db.pool())
        .await?;
    Ok(match used {
        Some(r) => Consumed::AlreadyUsed { grant_id: r.try_get("grant_id")? },
        None => Consumed::NotFound,
    })
}
