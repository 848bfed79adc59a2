//! `POST /introspect` (RFC 7662), for confidential clients: is this token
//! active, and what does it carry. A client sees only tokens issued to it,
//! unless registered with `--introspect-any`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::token::{authenticate, dup};
use super::tokens;
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
        Ok(v) => (no_store(), Json(v)).into_response(),
        Err(e) => e.render(&state.issuer, &state.brand),
    }
}

async fn run(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Value, Failure> {
    let client = authenticate(state, ip, headers, p).await?;
    if client.public {
        return Err(OAuthError::unauthorized_client("introspection is for confidential clients").into());
    }
    let token = p.get("token").map_err(dup)?.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = state.clock.now();
    let inactive = json!({"active": false});
    // A client learns only about its own tokens, unless registered to see all
    // (an API gateway): anything else reads as inactive, as RFC 7662 §2.2 allows.
    let visible = |owner: &str| client.introspect_any || owner == client.client_id;
    if let Some(at) = tokens::verify_access_token(state, token) {
        if !visible(&at.client_id) {
            return Ok(inactive);
        }
        if let Some(gid) = &at.gid
            && !grants::is_active(&state.db, gid).await.map_err(Internal)?
        {
            return Ok(inactive);
        }
        let mut v = json!({
            "active": true, "token_type": "access_token", "iss": at.iss, "sub": at.sub, "aud": at.aud,
            "exp": at.exp, "iat": at.iat, "jti": at.jti, "client_id": at.client_id,
        });
        if !at.scope.is_empty() {
            v["scope"] = at.scope.into();
        }
        // RFC 9449 §6.2: a DPoP-bound token says so, with its key.
        if let Some(cnf) = at.cnf {
            v["token_type"] = "DPoP".into();
            v["cnf"] = json!({ "jkt": cnf.jkt });
        }
        return Ok(v);
    }
    if let Some(rt) = refresh_tokens::find_active(&state.db, &random::sha256_hex(token), now).await.map_err(Internal)?
        && visible(&rt.client_id)
    {
        let mut v = json!({
            "active": true, "token_type": "refresh_token", "iss": state.issuer.as_str(), "sub": rt.user_id,
            "client_id": rt.client_id, "scope": rt.scope, "iat": rt.created_at,
            "exp": rt.expires_at.min(rt.grant_expires_at),
        });
        if let Some(jkt) = rt.dpop_jkt {
            v["cnf"] = json!({ "jkt": jkt });
        }
        return Ok(v);
    }
    Ok(inactive)
}
