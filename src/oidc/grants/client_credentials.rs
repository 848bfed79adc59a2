//! The client_credentials grant: a machine client acting for itself.

use crate::app::AppState;
use crate::domain::Client;
use crate::error::{Failure, Internal, OAuthError};
use crate::http::params::Params;
use crate::oidc::token::{TokenResponse, dup};
use crate::oidc::tokens::{self, AccessInput};

pub async fn exchange(state: &AppState, client: &Client, p: &Params) -> Result<TokenResponse, Failure> {
    if client.public {
        return Err(OAuthError::unauthorized_client("client_credentials needs a confidential client").into());
    }
    // User scopes mean nothing without a user; none are granted here.
    let asked = p.get("scope").map_err(dup)?.unwrap_or("");
    if asked.split(' ').any(|s| s == "openid" || s == "offline_access") {
        return Err(OAuthError::invalid_scope("openid and offline_access need a user").into());
    }
    let now = state.clock.now();
    let input = AccessInput { sub: &client.client_id, scope: "", auth_time: None, sid: None, gid: None };
    let access = tokens::access_token(state, client, input, now).map_err(Internal)?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.config.tokens.access_token_ttl_secs,
        ..Default::default()
    })
}
