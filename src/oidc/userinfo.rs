//! `GET`/`POST /userinfo`: claims for the bearer of a valid access token,
//! filtered by its scope. Errors per RFC 6750 §3.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};

use super::grants::split_scope;
use super::tokens::{self, profile_claims};
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::params::Params;
use crate::state::AppState;
use crate::storage::{grants, users};

pub async fn handle(State(state): State<AppState>, method: Method, headers: HeaderMap, params: Params) -> Response {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    // RFC 6750 §2.2: a form body may carry the token on POST. Never the query
    // string (OAuth 2.1, RFC 9700 §2.5): URLs end up in logs and histories.
    let from_body = params.first("access_token").filter(|_| method == Method::POST);
    let Some(token) = from_header.or(from_body) else {
        return crate::error::bearer(None);
    };
    match run(&state, token).await {
        Ok(r) => r,
        Err(e) => e.render(&state.issuer, &state.brand),
    }
}

async fn run(state: &AppState, token: &str) -> Result<Response, Failure> {
    let invalid = |why: &str| Failure::bearer(OAuthError::new(ErrorCode::InvalidToken, why));
    let claims =
        tokens::verify_access_token(state, token).ok_or_else(|| invalid("the access token is invalid or expired"))?;
    let scopes = split_scope(&claims.scope);
    if !scopes.iter().any(|s| s == "openid") {
        return Err(Failure::bearer(OAuthError::new(ErrorCode::InsufficientScope, "the token lacks the openid scope")));
    }
    let internal = |e: crate::storage::StorageError| Failure::bearer(OAuthError::internal(e));
    if let Some(gid) = &claims.gid
        && !grants::is_active(&state.db, gid).await.map_err(internal)?
    {
        return Err(invalid("the token was revoked"));
    }
    let user = match users::find_by_id(&state.db, &claims.sub).await.map_err(internal)? {
        Some(u) if !u.disabled => u,
        _ => return Err(invalid("the user no longer exists")),
    };
    let mut body = serde_json::Map::new();
    body.insert("sub".into(), user.user_id.clone().into());
    for (k, v) in profile_claims(&user, &scopes) {
        body.insert(k.into(), v);
    }
    Ok((crate::error::no_store(), Json(serde_json::Value::Object(body))).into_response())
}
