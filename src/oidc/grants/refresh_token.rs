//! The refresh_token grant: rotation on every use and reuse detection. By
//! default (RFC 9700 §4.14.2) the first replay of a rotated token revokes the
//! whole family; a client may opt into a short leeway in which a concurrent
//! duplicate (several tabs) gets the same successor instead. The requested
//! `scope` must be a subset of the grant's on every path. The check-and-rotate
//! is one conditional UPDATE in `storage::refresh_tokens::rotate`.

use super::{UserGrant, active_user, mint, split_scope};
use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::domain::Client;
use crate::error::{Failure, Internal, OAuthError};
use crate::http::params::Params;
use crate::oidc::token::{TokenResponse, dup};
use crate::state::AppState;
use crate::storage::grants;
use crate::storage::refresh_tokens::{self, RefreshRow, Rotation};

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, Failure> {
    let presented =
        p.get("refresh_token").map_err(dup)?.ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let asked = p.get("scope").map_err(dup)?.map(split_scope);
    // A refresh may narrow to the grant's API, never switch to another.
    let target = crate::oidc::request::audience(p)?;
    let now = state.clock.now();
    let leeway = leeway_secs(state, client);
    let hash = random::sha256_hex(presented);
    let value = random::token(32);
    // The successor is kept (sealed) only where a leeway may need to hand it out again.
    let sealed =
        if leeway > 0 { Some(state.master.seal(value.as_bytes(), hash.as_bytes()).map_err(Internal)?) } else { None };
    // Scope narrowing is checked inside the rotation, so a refused request spends nothing.
    let successor_for = |old: &RefreshRow| -> Result<RefreshRow, OAuthError> {
        check_key(old, jkt)?;
        check_scope(asked.as_deref(), old)?;
        check_target(target.as_deref(), old)?;
        Ok(successor(state, client, old, &value, now, jkt))
    };
    let rotation = refresh_tokens::rotate(&state.db, &hash, &client.client_id, now, sealed.as_deref(), successor_for)
        .await
        .map_err(Internal)?;
    let (old, issued) = match rotation {
        Rotation::Rotated(old) => (old, value),
        Rotation::AlreadyUsed { row, used_at, successor_sealed } => {
            // A bound family's copy without its key proves nothing, and revokes nothing.
            check_key(&row, jkt)?;
            let v = leeway_successor(state, &row, leeway, used_at, successor_sealed, &hash, now).await?;
            // Inside the leeway the replay gets nothing broader than the grant.
            check_scope(asked.as_deref(), &row)?;
            check_target(target.as_deref(), &row)?;
            (row, v)
        }
        Rotation::Invalid => {
            return Err(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked").into());
        }
        Rotation::Refused(e) => return Err(e.into()),
    };
    let user = active_user(state, &old.user_id).await?;
    // A grant issued below what the application (or a role) now requires is
    // over: the user signs in again, with the second factor.
    let need = crate::pending::rules_level(state, client, &user.user_id).await.map_err(Internal)?;
    if need > crate::mfa::policy::Level::of_acr(old.acr.as_deref()) {
        return Err(OAuthError::invalid_grant("this application now requires a second factor: sign in again").into());
    }
    let scopes = asked.unwrap_or_else(|| split_scope(&old.scope));
    let g = UserGrant {
        scopes,
        grant_id: &old.grant_id,
        sid: old.sid.as_deref(),
        auth_time: old.auth_time,
        amr: &old.amr,
        idp: old.idp.as_deref(),
        audience: old.audience.as_deref(),
        // The level the grant was issued at: a refresh never raises it.
        acr: old.acr.as_deref(),
        nonce: None,
    };
    // Access and permissions are decided again: a role taken away stops here.
    let ent = crate::oidc::audience::entitle(state, client, &user.user_id, g.audience, &g.scopes).await?;
    let mut resp = mint(state, client, &user, &g, &ent, now, jkt)?;
    resp.refresh_token = Some(issued);
    let e = Event::new(Kind::TokenRefreshed).account(&user).client(&client.client_id);
    let e = match old.sid.as_deref() {
        Some(sid) => e.sid(sid),
        None => e,
    };
    audit::record(&state.audit, e.details(serde_json::json!({ "audience": old.audience, "offline": old.offline })));
    Ok(resp)
}

/// A family bound to a DPoP key is refreshed only with a proof by that key
/// (RFC 9449 §5): a stolen copy is refused without spending the token.
fn check_key(row: &RefreshRow, presented: Option<&str>) -> Result<(), OAuthError> {
    match row.dpop_jkt.as_deref() {
        Some(b) if presented != Some(b) => Err(OAuthError::new(
            crate::error::ErrorCode::InvalidDpopProof,
            "the refresh token is bound to a DPoP key: a proof made with it is required",
        )),
        _ => Ok(()),
    }
}

/// The client's own leeway, or the configured default (both at most 60 s).
pub fn leeway_secs(state: &AppState, client: &Client) -> u64 {
    client
        .refresh_leeway_secs
        .unwrap_or(state.config.tokens.refresh_reuse_grace_secs)
        .min(crate::domain::MAX_REFRESH_LEEWAY_SECS)
}

/// The grant's API, if one is named (RFC 8707 §2.2).
fn check_target(asked: Option<&str>, grant: &RefreshRow) -> Result<(), OAuthError> {
    match asked {
        Some(a) if Some(a) != grant.audience.as_deref() => Err(OAuthError::new(
            crate::error::ErrorCode::InvalidTarget,
            "a refresh token stays with the API it was issued for",
        )),
        _ => Ok(()),
    }
}

/// Every requested scope must have been granted (RFC 6749 §6).
fn check_scope(asked: Option<&[String]>, grant: &RefreshRow) -> Result<(), OAuthError> {
    let granted = split_scope(&grant.scope);
    match asked.into_iter().flatten().find(|s| !granted.contains(s)) {
        Some(s) => Err(OAuthError::invalid_scope(format!("scope `{s}` was not granted"))),
        None => Ok(()),
    }
}

/// The next token of the family: same grant, scope and absolute expiry (RFC
/// 6749 §6); a public client's family that was not bound yet is bound to the
/// key of the first refresh made with a proof.
fn successor(
    state: &AppState,
    client: &Client,
    old: &RefreshRow,
    value: &str,
    now: i64,
    jkt: Option<&str>,
) -> RefreshRow {
    let dpop_jkt = old.dpop_jkt.clone().or_else(|| jkt.filter(|_| client.public).map(str::to_string));
    RefreshRow {
        token_hash: random::sha256_hex(value),
        created_at: now,
        expires_at: now + state.config.tokens.refresh_token_idle_ttl_secs as i64,
        client_id: client.client_id.clone(),
        dpop_jkt,
        ..old.clone()
    }
}

/// A used token presented again: within the client's leeway the same
/// successor; otherwise it is a replay, and the whole family is revoked.
async fn leeway_successor(
    state: &AppState,
    row: &RefreshRow,
    leeway: u64,
    used_at: i64,
    sealed: Option<Vec<u8>>,
    hash: &str,
    now: i64,
) -> Result<String, Failure> {
    let in_leeway =
        now - used_at <= leeway as i64 && grants::is_active(&state.db, &row.grant_id).await.map_err(Internal)?;
    let successor = sealed
        .filter(|_| in_leeway)
        .and_then(|s| state.master.open(&s, hash.as_bytes()).ok())
        .and_then(|v| String::from_utf8(v).ok());
    if let Some(value) = successor {
        return Ok(value);
    }
    grants::revoke(&state.db, &row.grant_id, now).await.map_err(Internal)?;
    crate::telemetry::refresh_reuse(&row.client_id);
    let e = Event::failure(Kind::RefreshReuseDetected, "refresh_token_reused").user(row.user_id.clone());
    audit::record(&state.audit, e.client(&row.client_id).details(serde_json::json!({ "family_revoked": true })));
    Err(OAuthError::invalid_grant("the refresh token was already used").into())
}
