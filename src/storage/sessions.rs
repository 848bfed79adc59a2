//! Login sessions. The cookie value is never stored, only its SHA-256.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Result, get_list, to_json_list};

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id_hash: String,
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// When the session last proved a second factor (None: never).
    pub mfa_at: Option<i64>,
    /// When it last proved a phishing-resistant one (a passkey).
    pub phr_at: Option<i64>,
    /// The upstream provider the user signed in with; None for a password.
    pub idp: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub expires_at: i64,
    /// Where and with what the session was started (the account page shows them).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

fn from_row(r: &AnyRow) -> Result<SessionRow> {
    Ok(SessionRow {
        id_hash: r.try_get("id_hash")?,
        sid: r.try_get("sid")?,
        user_id: r.try_get("user_id")?,
        auth_time: r.try_get("auth_time")?,
        amr: get_list(r, "amr")?,
        acr: r.try_get("acr")?,
        mfa_at: r.try_get("mfa_at")?,
        phr_at: r.try_get("phr_at")?,
        idp: r.try_get("idp")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        idle_expires_at: r.try_get("idle_expires_at")?,
        expires_at: r.try_get("expires_at")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
    })
}

pub async fn insert(db: &Db, s: &SessionRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, sid, user_id, auth_time, amr, acr, created_at, last_seen_at,
            idle_expires_at, expires_at, idp, ip, user_agent, mfa_at, phr_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&s.id_hash)
    .bind(&s.sid)
    .bind(&s.user_id)
    .bind(s.auth_time)
    .bind(to_json_list(&s.amr))
    .bind(&s.acr)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.idle_expires_at)
    .bind(s.expires_at)
    .bind(&s.idp)
    .bind(&s.ip)
    .bind(&s.user_agent)
    .bind(s.mfa_at)
    .bind(s.phr_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A live session by cookie hash (expired sessions and disabled users are not returned).
pub async fn find_live(db: &Db, id_hash: &str, now: i64) -> Result<Option<SessionRow>> {
    // Joined with users so a disabled or deleted user has no session, in one round trip.
    let row = sqlx::query(
        "SELECT s.id_hash, s.sid, s.user_id, s.auth_time, s.amr, s.acr, s.created_at, s.last_seen_at,
            s.idle_expires_at, s.expires_at, s.idp, s.ip, s.user_agent, s.mfa_at, s.phr_at
         FROM sessions s JOIN users u ON u.user_id = s.user_id
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.idle_expires_at > $2 AND u.disabled = $3",
    )
    .bind(id_hash)
    .bind(now)
    .bind(false)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Slides the idle expiry forward (never past the absolute expiry).
pub async fn touch(db: &Db, id_hash: &str, now: i64, idle_expires_at: i64) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET last_seen_at = $2,
            idle_expires_at = CASE WHEN $3 < expires_at THEN $3 ELSE expires_at END
         WHERE id_hash = $1",
    )
    .bind(id_hash)
    .bind(now)
    .bind(idle_expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records a second factor proved in session `id_hash` at `now`: its `amr`
/// values joined to the session's, and the time (of a phishing-resistant one
/// too, when `phr`).
pub async fn prove_factor(db: &Db, id_hash: &str, amr: &[String], at: i64, phr: bool) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET amr = $2, mfa_at = $3, phr_at = CASE WHEN $4 THEN $3 ELSE phr_at END WHERE id_hash = $1",
    )
    .bind(id_hash)
    .bind(to_json_list(amr))
    .bind(at)
    .bind(phr)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn delete(db: &Db, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(db.pool()).await?;
    Ok(())
}

/// Records that `client_id` used the session (idempotent).
pub async fn add_client(db: &Db, sid: &str, client_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO session_clients (sid, client_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (sid, client_id) DO NOTHING",
    )
    .bind(sid)
    .bind(client_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn clients(db: &Db, sid: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT client_id FROM session_clients WHERE sid = $1 ORDER BY client_id")
        .bind(sid)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| Ok(r.try_get("client_id")?)).collect()
}

/// Ends a session everywhere at once: the session row (and its client list),
/// its unused codes, and its refresh tokens except `offline_access` ones, whose
/// grants are also marked revoked so their access tokens stop at userinfo.
/// The grants of the session's codes are revoked too (unless they granted
/// `offline_access`), so a code redeemed while the logout runs, or a rotation
/// that raced it, cannot leave a usable refresh token behind: rotation refuses
/// a revoked grant.
pub async fn end(db: &Db, sid: &str, now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    end_in(&mut tx, sid, now).await?;
    super::commit(tx).await?;
    Ok(())
}

async fn end_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, sid: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO revoked_grants (grant_id, revoked_at)
         SELECT grant_id, $2 FROM refresh_tokens WHERE sid = $1 AND offline = $3
         UNION
         SELECT grant_id, $2 FROM auth_codes WHERE sid = $1 AND (' ' || scope || ' ') NOT LIKE '% offline_access %'
         ON CONFLICT (grant_id) DO NOTHING",
    )
    .bind(sid)
    .bind(now)
    .bind(false)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE sid = $1 AND offline = $2")
        .bind(sid)
        .bind(false)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM auth_codes WHERE sid = $1 AND used_at IS NULL").bind(sid).execute(&mut **tx).await?;
    sqlx::query("DELETE FROM session_clients WHERE sid = $1").bind(sid).execute(&mut **tx).await?;
    sqlx::query("DELETE FROM sessions WHERE sid = $1").bind(sid).execute(&mut **tx).await?;
    Ok(())
}

/// Every session of a user, live or not yet purged.
/// How many sessions are live (the console's overview; walks the index on
/// the absolute expiry).
pub async fn count_live(db: &Db, now: i64) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE expires_at > $1 AND idle_expires_at > $1")
        .bind(now)
        .fetch_one(db.pool())
        .await?;
    Ok(n)
}

pub async fn list_for_user(db: &Db, user_id: &str) -> Result<Vec<SessionRow>> {
    let rows = sqlx::query(
        "SELECT id_hash, sid, user_id, auth_time, amr, acr, created_at, last_seen_at, idle_expires_at, expires_at, idp,
            ip, user_agent, mfa_at, phr_at
         FROM sessions WHERE user_id = $1 ORDER BY created_at",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Ends a session without its browser (as `end`), remembering which clients
/// it had so the browser can be shown their front-channel logout on its next
/// visit. Returns those clients.
pub async fn end_remotely(db: &Db, s: &SessionRow, now: i64) -> Result<Vec<String>> {
    let mut tx = db.begin().await?;
    let rows = sqlx::query("SELECT client_id FROM session_clients WHERE sid = $1 ORDER BY client_id")
        .bind(&s.sid)
        .fetch_all(&mut *tx)
        .await?;
    let clients: Vec<String> = rows.iter().map(|r| r.try_get("client_id")).collect::<std::result::Result<_, _>>()?;
    sqlx::query(
        "INSERT INTO ended_sessions (id_hash, sid, client_ids, ended_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id_hash) DO NOTHING",
    )
    .bind(&s.id_hash)
    .bind(&s.sid)
    .bind(to_json_list(&clients))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    end_in(&mut tx, &s.sid, now).await?;
    super::commit(tx).await?;
    Ok(clients)
}

/// A session ended without its browser, presented by that browser now: its
/// `sid` and clients, handed out once.
pub async fn take_ended(db: &Db, id_hash: &str) -> Result<Option<(String, Vec<String>)>> {
    let row = sqlx::query("DELETE FROM ended_sessions WHERE id_hash = $1 RETURNING sid, client_ids")
        .bind(id_hash)
        .fetch_optional(db.pool())
        .await?;
    match row {
        Some(r) => Ok(Some((r.try_get("sid")?, get_list(&r, "client_ids")?))),
        None => Ok(None),
    }
}
