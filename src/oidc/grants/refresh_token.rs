//! The refresh_token grant: rotation on every use, reuse detection, and a short
//! grace window in which a concurrent duplicate (several tabs) gets the same
//! successor rather than a second one. The check-and-rotate is one conditional
//! UPDATE in `storage::refresh_tokens::rotate`.

use super::{UserGrant, active_user, mint, split_scope};
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
    let asked = p.get("scope").map_err(dup)?.map(split_scope);
    let now = state.clock.now();
    let hash = random::sha256_hex(presented);
    let value = random::token(32);
    let sealed = state.master.seal(value.as_bytes(), hash.as_bytes()).map_err(Internal)?;
    // Scope narrowing is checked inside the rotation, so a refused request spends nothing.
    let successor_for = |old: &RefreshRow| -> Result<RefreshRow, OAuthError> {
        let granted = split_scope(&old.scope);
        if let Some(s) = asked.iter().flatten().find(|s| !granted.contains(s)) {
            return Err(OAuthError::invalid_scope(format!("scope `{s}` was not granted")));
        }
        Ok(successor(state, client, old, &value, now))
    };
    let (old, issued) = match refresh_tokens::rotate(&state.db, &hash, &client.client_id, now, &sealed, successor_for)
        .await
        .map_err(Internal)?
    {
        Rotation::Rotated(old) => (old, value),
        Rotation::AlreadyUsed { row, used_at, successor_sealed } => {
            let v = grace_successor(state, &row, used_at, successor_sealed, &hash, now).await?;
            (row, v)
        }
        Rotation::Invalid => {
            return Err(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked").into());
        }
        Rotation::Refused(e) => return Err(e.into()),
    };
    let user = active_user(state, &old.user_id).await?;
    let scopes = asked.unwrap_or_else(|| split_scope(&old.scope));
    let g = UserGrant {
        user: &user,
        scopes,
        grant_id: &old.grant_id,
        sid: old.sid.as_deref(),
        auth_time: old.auth_time,
        amr: &old.amr,
        acr: None,
        nonce: None,
    };
    let mut resp = mint(state, client, &g, now)?;
    resp.refresh_token = Some(issued);
    Ok(resp)
}

/// The next token of the family: same grant, scope and absolute expiry (RFC 6749 §6).
fn successor(state: &AppState, client: &Client, old: &RefreshRow, value: &str, now: i64) -> RefreshRow {
    RefreshRow {
        token_hash: random::sha256_hex(value),
        created_at: now,
        expires_at: now + state.config.tokens.refresh_token_idle_ttl_secs as i64,
        client_id: client.client_id.clone(),
        ..old.clone()
    }
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
