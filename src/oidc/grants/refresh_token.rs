//! The refresh_token grant: rotation on every use, reuse detection, and a short
//! grace window in which a concurrent duplicate (several tabs) gets the same
//! successor rather than a second one. The check-and-rotate is one conditional
//! UPDATE in `storage::refresh_tokens::rotate`.

use super::{UserGrant, active_user, mint, new_refresh, split_scope};
use crate::app::AppState;
use crate::crypto::random;
use crate::domain::Client;
use crate::oidc::error::{Internal, OAuthError, TokenError};
use crate::oidc::params::Params;
use crate::oidc::token::{TokenResponse, dup};
use crate::storage::grants;
use crate::storage::refresh_tokens::{self, RefreshRow, Rotation};

pub async fn exchange(state: &AppState, client: &Client, p: &Params) -> Result<TokenResponse, TokenError> {
    let presented =
        p.get("refresh_token").map_err(dup)?.ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let asked = p.get("scope").map_err(dup)?;
    let now = state.clock.now();
    let hash = random::sha256_hex(presented);
    let invalid = || TokenError::from(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked"));
    let old = refresh_tokens::find_any(&state.db, &hash).await.map_err(Internal)?.ok_or_else(invalid)?;
    if old.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client").into());
    }
    let granted = split_scope(&old.scope);
    let scopes = match asked {
        None => granted.clone(),
        Some(a) => {
            let asked = split_scope(a);
            if let Some(s) = asked.iter().find(|s| !granted.contains(s)) {
                return Err(OAuthError::invalid_scope(format!("scope `{s}` was not granted")).into());
            }
            asked
        }
    };
    let user = active_user(state, &old.user_id).await?;
    let grant = |scopes: Vec<String>| UserGrant {
        user: &user,
        scopes,
        grant_id: &old.grant_id,
        sid: old.sid.as_deref(),
        auth_time: old.auth_time,
        amr: &old.amr,
        acr: None,
        nonce: None,
    };
    // The successor keeps the full granted scope (RFC 6749 §6); only this
    // response's access token is narrowed.
    let (value, successor) = new_refresh(state, client, &grant(granted.clone()), Some(old.grant_expires_at), now);
    let sealed = state.master.seal(value.as_bytes(), hash.as_bytes()).map_err(Internal)?;
    let issued = match refresh_tokens::rotate(&state.db, &hash, now, &successor, &sealed).await.map_err(Internal)? {
        Rotation::Rotated(_) => value,
        Rotation::AlreadyUsed { row, used_at, successor_sealed } => {
            grace_successor(state, &row, used_at, successor_sealed, &hash, now).await?
        }
        Rotation::Invalid => return Err(invalid()),
    };
    let mut resp = mint(state, client, &grant(scopes), now)?;
    resp.refresh_token = Some(issued);
    Ok(resp)
}

/// A used token presented again: within the grace window the same successor;
/// otherwise it is a replay, and the whole family is revoked.
async fn grace_successor(
    state: &AppState,
    row: &RefreshRow,
    used_at: i64,
    sealed: Option<Vec<u8>>,
    hash: &str,
    now: i64,
) -> Result<String, TokenError> {
    let grace = state.config.tokens.refresh_reuse_grace_secs as i64;
    let in_grace = now - used_at <= grace && grants::is_active(&state.db, &row.grant_id).await.map_err(Internal)?;
    let successor =
        sealed.and_then(|s| state.master.open(&s, hash.as_bytes()).ok()).and_then(|v| String::from_utf8(v).ok());
    if in_grace && let Some(value) = successor {
        return Ok(value);
    }
    grants::revoke(&state.db, &row.grant_id, now).await.map_err(Internal)?;
    tracing::warn!(target: "audit", client_id = %row.client_id, user_id = %row.user_id, "refresh token reuse detected; family revoked");
    Err(OAuthError::invalid_grant("the refresh token was already used").into())
}
