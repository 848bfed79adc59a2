//! The authorization_code grant: single-use codes, PKCE, redirect_uri binding.
//! A replayed code revokes everything issued from it (RFC 6749 §4.1.2).

use base64::Engine;
use sha2::{Digest, Sha256};

use super::{UserGrant, active_user, mint, new_refresh, split_scope};
use crate::app::AppState;
use crate::crypto::random;
use crate::domain::Client;
use crate::oidc::error::{Internal, OAuthError, TokenError};
use crate::oidc::params::Params;
use crate::oidc::token::{TokenResponse, dup};
use crate::storage::auth_codes::{self, Consumed};
use crate::storage::{grants, refresh_tokens};

pub async fn exchange(state: &AppState, client: &Client, p: &Params) -> Result<TokenResponse, TokenError> {
    let code = p.get("code").map_err(dup)?.ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = p.get("redirect_uri").map_err(dup)?;
    let verifier = p.get("code_verifier").map_err(dup)?;
    let now = state.clock.now();
    let row = match auth_codes::consume(&state.db, &random::sha256_hex(code), now).await.map_err(Internal)? {
        Consumed::Fresh(row) => row,
        Consumed::AlreadyUsed { grant_id } => {
            grants::revoke(&state.db, &grant_id, now).await.map_err(Internal)?;
            tracing::warn!(target: "audit", client_id = %client.client_id, "authorization code replayed; grant revoked");
            return Err(OAuthError::invalid_grant("the code was already used").into());
        }
        Consumed::NotFound => return Err(OAuthError::invalid_grant("the code is invalid").into()),
    };
    if row.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client").into());
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired").into());
    }
    if redirect_uri.is_some_and(|r| r != row.redirect_uri) {
        return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request").into());
    }
    check_pkce(row.code_challenge.as_deref(), verifier)?;
    let user = active_user(state, &row.user_id).await?;
    let g = UserGrant {
        user: &user,
        scopes: split_scope(&row.scope),
        grant_id: &row.grant_id,
        sid: Some(&row.sid),
        auth_time: row.auth_time,
        amr: &row.amr,
        acr: row.acr.as_deref(),
        nonce: row.nonce.as_deref(),
    };
    let mut resp = mint(state, client, &g, now)?;
    if client.grant_types.iter().any(|t| t == "refresh_token") {
        let (value, rt) = new_refresh(state, client, &g, now);
        refresh_tokens::insert(&state.db, &rt).await.map_err(Internal)?;
        resp.refresh_token = Some(value);
    }
    tracing::info!(target: "audit", client_id = %client.client_id, user_id = %user.user_id, "tokens issued (authorization_code)");
    Ok(resp)
}

/// RFC 7636 with S256 only. A verifier without a challenge is refused too, so a
/// code cannot be replayed through a downgrade (RFC 9700 §2.1.1).
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), TokenError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => {
            Err(OAuthError::invalid_grant("code_verifier given but the request had no code_challenge").into())
        }
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required").into()),
        (Some(c), Some(v)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
            if well_formed && random::ct_eq(&computed, c) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge").into())
            }
        }
    }
}
