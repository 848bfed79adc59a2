//! The authorization_code grant: single-use codes, PKCE, redirect_uri binding.
//! A replayed code revokes everything issued from it (RFC 6749 §4.1.2).

use base64::Engine;
use sha2::{Digest, Sha256};

use super::{UserGrant, active_user, mint, new_refresh, split_scope};
use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::domain::Client;
use crate::error::{Failure, Internal, OAuthError};
use crate::http::params::Params;
use crate::oidc::audience;
use crate::oidc::token::{TokenResponse, dup};
use crate::state::AppState;
use crate::storage::auth_codes::{self, CodeRow, Consumed};
use crate::storage::grants;
use crate::storage::refresh_tokens::RefreshRow;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, Failure> {
    let code = p.get("code").map_err(dup)?.ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = p.get("redirect_uri").map_err(dup)?;
    let verifier = p.get("code_verifier").map_err(dup)?;
    let now = state.clock.now();
    let wants_refresh = client.grant_types.iter().any(|t| t == "refresh_token");
    let mut refresh_value = None;
    // Everything that can refuse the code runs inside the redemption, which
    // then writes the first refresh token in the same transaction.
    let check = |row: &CodeRow| -> Result<Option<RefreshRow>, OAuthError> {
        check_code(client, row, redirect_uri, verifier, now)?;
        check_bound_key(row.dpop_jkt.as_deref(), jkt)?;
        if !wants_refresh {
            return Ok(None);
        }
        let (value, rt) = new_refresh(state, client, &grant_of(row), &row.user_id, now, jkt);
        refresh_value = Some(value);
        Ok(Some(rt))
    };
    let row = match auth_codes::redeem(&state.db, &random::sha256_hex(code), now, check).await.map_err(Internal)? {
        Consumed::Fresh(row) => row,
        Consumed::Refused(e) => return Err(e.into()),
        Consumed::AlreadyUsed { grant_id } => {
            grants::revoke(&state.db, &grant_id, now).await.map_err(Internal)?;
            let e = Event::failure(Kind::CodeReplay, "code_reused").client(&client.client_id);
            audit::record(&state.audit, e.details(serde_json::json!({ "grant_revoked": true })));
            return Err(OAuthError::invalid_grant("the code was already used").into());
        }
        Consumed::NotFound => return Err(OAuthError::invalid_grant("the code is invalid").into()),
    };
    let user = active_user(state, &row.user_id).await?;
    let g = grant_of(&row);
    let ent = audience::entitle(state, client, &user.user_id, g.audience, &g.scopes).await?;
    let mut resp = mint(state, client, &user, &g, &ent, now, jkt)?;
    resp.refresh_token = refresh_value;
    let e = Event::new(Kind::TokenIssued).account(&user).client(&client.client_id).sid(&row.sid);
    let details = serde_json::json!({ "grant": "authorization_code", "audience": row.audience, "refresh_token": resp.refresh_token.is_some() });
    audit::record(&state.audit, e.details(details));
    Ok(resp)
}

/// A code bound to a key at `/authorize` (`dpop_jkt`, RFC 9449 §10) is
/// redeemed only with a proof made by that key.
fn check_bound_key(bound: Option<&str>, presented: Option<&str>) -> Result<(), OAuthError> {
    match bound {
        Some(b) if presented != Some(b) => Err(OAuthError::new(
            crate::error::ErrorCode::InvalidDpopProof,
            "the code is bound to another DPoP key (dpop_jkt)",
        )),
        _ => Ok(()),
    }
}

/// What the code grants, before the user is loaded.
fn grant_of(row: &CodeRow) -> UserGrant<'_> {
    UserGrant {
        scopes: split_scope(&row.scope),
        grant_id: &row.grant_id,
        sid: Some(&row.sid),
        auth_time: row.auth_time,
        amr: &row.amr,
        idp: row.idp.as_deref(),
        audience: row.audience.as_deref(),
        acr: row.acr.as_deref(),
        nonce: row.nonce.as_deref(),
    }
}

/// Client, expiry, redirect_uri and PKCE binding (RFC 6749 §4.1.3, RFC 7636).
/// `redirect_uri` is required whenever the authorization request carried one.
fn check_code(
    client: &Client,
    row: &CodeRow,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    now: i64,
) -> Result<(), OAuthError> {
    if row.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    match (redirect_uri, row.redirect_uri_sent) {
        (Some(r), _) if r != row.redirect_uri => {
            return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
        }
        (None, true) => {
            return Err(OAuthError::invalid_grant("redirect_uri is required: the authorization request carried one"));
        }
        _ => {}
    }
    check_pkce(row.code_challenge.as_deref(), verifier)
}

/// RFC 7636 with S256 only. A verifier without a challenge is refused too, so a
/// code cannot be replayed through a downgrade (RFC 9700 §2.1.1).
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::invalid_grant("code_verifier given but the request had no code_challenge")),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        (Some(c), Some(v)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
            if well_formed && random::ct_eq(&computed, c) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"))
            }
        }
    }
}
