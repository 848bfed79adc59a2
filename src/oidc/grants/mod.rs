//! One module per grant type; each returns a token response or an RFC 6749 error.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use super::audience::Entitled;
use super::token::TokenResponse;
use super::tokens::{self, AccessInput, IdInput};
use crate::crypto::random;
use crate::domain::{Client, User};
use crate::error::{Failure, Internal, OAuthError};
use crate::state::AppState;
use crate::storage::refresh_tokens::RefreshRow;
use crate::storage::users;

/// What a user grant needs to mint its tokens (the user is passed beside it).
pub struct UserGrant<'a> {
    pub scopes: Vec<String>,
    pub grant_id: &'a str,
    pub sid: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a [String],
    pub idp: Option<&'a str>,
    /// The API the grant's access tokens are for.
    pub audience: Option<&'a str>,
    pub acr: Option<&'a str>,
    pub nonce: Option<&'a str>,
}

/// Access token, plus an ID token when `openid` was granted.
pub fn mint(
    state: &AppState,
    client: &Client,
    user: &User,
    g: &UserGrant,
    ent: &Entitled,
    now: i64,
    jkt: Option<&str>,
) -> Result<TokenResponse, Failure> {
    let scope = ent.scope.join(" ");
    let access = tokens::access_token(
        state,
        client,
        AccessInput {
            sub: &user.user_id,
            scope: &scope,
            auth_time: Some(g.auth_time),
            sid: g.sid,
            gid: Some(g.grant_id),
            ent,
            jkt,
        },
        now,
    )
    .map_err(Internal)?;
    let id_token = if g.scopes.iter().any(|s| s == "openid") {
        let input = IdInput {
            user,
            scopes: &g.scopes,
            nonce: g.nonce,
            auth_time: g.auth_time,
            sid: g.sid,
            amr: g.amr,
            idp: g.idp,
            acr: g.acr,
            access_token: Some(&access),
            ent: Some(ent),
        };
        Some(tokens::id_token(state, client, input, now).map_err(Internal)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access,
        token_type: token_type(jkt),
        expires_in: ent.ttl.unwrap_or(state.config.tokens.access_token_ttl_secs),
        scope,
        id_token,
        refresh_token: None,
    })
}

/// `DPoP` for a token bound to a key, else `Bearer`.
pub fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { "DPoP" } else { "Bearer" }
}

/// The first refresh token of a new family; returns the raw token too.
/// (Rotation builds successors from the spent row instead.) A public
/// client's family is bound to the DPoP key it was issued with (RFC 9449
/// §5): its copy elsewhere is useless; a confidential client's is bound by
/// its client authentication already.
pub fn new_refresh(
    state: &AppState,
    client: &Client,
    g: &UserGrant,
    user_id: &str,
    now: i64,
    jkt: Option<&str>,
) -> (String, RefreshRow) {
    let value = random::token(32);
    let t = &state.config.tokens;
    let absolute =
        if client.public { t.public_refresh_token_absolute_ttl_secs } else { t.refresh_token_absolute_ttl_secs };
    let row = RefreshRow {
        token_hash: random::sha256_hex(&value),
        grant_id: g.grant_id.to_string(),
        client_id: client.client_id.clone(),
        user_id: user_id.to_string(),
        sid: g.sid.map(str::to_string),
        scope: g.scopes.join(" "),
        auth_time: g.auth_time,
        amr: g.amr.to_vec(),
        idp: g.idp.map(str::to_string),
        acr: g.acr.map(str::to_string),
        audience: g.audience.map(str::to_string),
        offline: g.scopes.iter().any(|s| s == "offline_access"),
        dpop_jkt: jkt.filter(|_| client.public).map(str::to_string),
        created_at: now,
        expires_at: now + t.refresh_token_idle_ttl_secs as i64,
        grant_expires_at: now + absolute as i64,
    };
    (value, row)
}

/// The user behind a grant, if they may still get tokens.
pub async fn active_user(state: &AppState, user_id: &str) -> Result<User, Failure> {
    match users::find_by_id(&state.db, user_id).await.map_err(Internal)? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(OAuthError::invalid_grant("the user no longer exists or is disabled").into()),
    }
}

pub fn split_scope(s: &str) -> Vec<String> {
    s.split(' ').filter(|x| !x.is_empty()).map(str::to_string).collect()
}
