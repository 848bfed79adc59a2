//! `POST /revoke` (RFC 7009). Revoking a refresh token or an access token
//! revokes its whole grant. The answer is 200 whether or not the token was
//! known, so it reveals nothing.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::token::{authenticate, dup};
use super::tokens;
use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::error::{Failure, Internal, OAuthError, no_store};
use crate::http::client_ip::ClientIp;
use crate::http::params::Params;
use crate::state::AppState;
use crate::storage::{grants, refresh_tokens};

pub async fn post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    params: Params,
) -> Response {
    match run(&state, ip, &headers, &params).await {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(e) => e.render(&state.issuer, &state.brand),
    }
}

async fn run(state: &AppState, ip: Option<std::net::IpAddr>, headers: &HeaderMap, p: &Params) -> Result<(), Failure> {
    let client = authenticate(state, ip, headers, p).await?;
    let token = p.get("token").map_err(dup)?.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = state.clock.now();
    if let Some(rt) = refresh_tokens::find_any(&state.db, &random::sha256_hex(token)).await.map_err(Internal)? {
        // Another client's token is left alone (RFC 7009 §2.1), without saying so.
        if rt.client_id == client.client_id {
            grants::revoke(&state.db, &rt.grant_id, now).await.map_err(Internal)?;
            let e = Event::new(Kind::TokenRevoked).user(rt.user_id.clone()).client(&client.client_id);
            audit::record(&state.audit, e.details(serde_json::json!({ "token_type": "refresh_token" })));
        }
        return Ok(());
    }
    if let Some(at) = tokens::verify_access_token(state, token)
        && at.client_id == client.client_id
        && let Some(gid) = at.gid
    {
        grants::revoke(&state.db, &gid, now).await.map_err(Internal)?;
        let e = Event::new(Kind::TokenRevoked).user(at.sub.clone()).client(&client.client_id);
        audit::record(&state.audit, e.details(serde_json::json!({ "token_type": "access_token" })));
    }
    Ok(())
}
