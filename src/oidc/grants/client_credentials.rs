//! The client_credentials grant: a machine client acting for itself.

use crate::audit::{self, Event, Kind};
use crate::domain::Client;
use crate::error::{ErrorCode, Failure, Internal, OAuthError};
use crate::http::params::Params;
use crate::oidc::audience;
use crate::oidc::token::{TokenResponse, dup};
use crate::oidc::tokens::{self, AccessInput};
use crate::state::AppState;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, Failure> {
    if client.public {
        return Err(OAuthError::unauthorized_client("client_credentials needs a confidential client").into());
    }
    // User scopes mean nothing without a user; none are granted here.
    let asked = p.get("scope").map_err(dup)?.unwrap_or("");
    if asked.split(' ').any(|s| s == "openid" || s == "offline_access") {
        return Err(OAuthError::invalid_scope("openid and offline_access need a user").into());
    }
    if asked.split(' ').any(|s| s == "roles" || s == "groups") {
        return Err(OAuthError::invalid_scope("roles and groups are a user's").into());
    }
    // An API: the requested permissions within what the client was granted.
    let named = crate::oidc::request::audience(p)?;
    let target = audience::resolve(state, client, named.as_deref(), ErrorCode::InvalidTarget).await?;
    let requested: Vec<String> = asked.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let ent = audience::for_client(target.as_ref(), &requested);
    let now = state.clock.now();
    let scope = ent.scope.join(" ");
    let input =
        AccessInput { sub: &client.client_id, scope: &scope, auth_time: None, sid: None, gid: None, ent: &ent, jkt };
    let access = tokens::access_token(state, client, input, now).map_err(Internal)?;
    let e = Event::new(Kind::TokenIssued).client(&client.client_id).method("client_credentials");
    let api = target.as_ref().map(|t| t.api.identifier.clone());
    audit::record(&state.audit, e.details(serde_json::json!({ "grant": "client_credentials", "audience": api })));
    Ok(TokenResponse {
        access_token: access,
        token_type: super::token_type(jkt),
        expires_in: ent.ttl.unwrap_or(state.config.tokens.access_token_ttl_secs),
        scope,
        ..Default::default()
    })
}
