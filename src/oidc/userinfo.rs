//! `GET`/`POST /userinfo`: claims for the bearer of a valid access token,
//! filtered by its scope. Errors per RFC 6750 §3. A DPoP-bound token comes
//! with `Authorization: DPoP` and a proof by its key (RFC 9449 §7); presented
//! as a bearer token it is refused.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};

use super::grants::split_scope;
use super::tokens::{self, profile_claims};
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::params::Params;
use crate::state::AppState;
use crate::storage::{grants, users};

pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let scheme_token = |scheme: &str| {
        auth.and_then(|v| v.split_once(' ')).filter(|(s, _)| s.eq_ignore_ascii_case(scheme)).map(|(_, t)| t.trim())
    };
    if let Some(token) = scheme_token("DPoP") {
        return match run(&state, token, Some((&method, &uri, &headers))).await {
            Ok(r) => r,
            Err(e) => e.render(&state.issuer, &state.brand),
        };
    }
    // RFC 6750 §2.2: a form body may carry the token on POST. Never the query
    // string (OAuth 2.1, RFC 9700 §2.5): URLs end up in logs and histories.
    let from_body = params.first("access_token").filter(|_| method == Method::POST);
    let Some(token) = scheme_token("Bearer").or(from_body) else {
        return crate::error::bearer(None);
    };
    match run(&state, token, None).await {
        Ok(r) => r,
        Err(e) => e.render(&state.issuer, &state.brand),
    }
}

/// The request's proof for `token`, by the key the token is bound to.
async fn check_proof(
    state: &AppState,
    token: &str,
    jkt: Option<&str>,
    (method, uri, headers): (&Method, &Uri, &HeaderMap),
) -> Result<(), Failure> {
    use super::dpop::{self, Refused};
    let fail = |code, why: &str| Failure::dpop(OAuthError::new(code, why), None);
    match dpop::verify(state, headers, method, uri, Some(token)).await {
        Ok(Some(c)) if jkt == Some(c.jkt.as_str()) => Ok(()),
        Ok(Some(_)) => Err(fail(ErrorCode::InvalidToken, "the access token is not bound to the proof's key")),
        Ok(None) => Err(fail(ErrorCode::InvalidDpopProof, "a DPoP proof is required")),
        Err(Refused::Invalid(why)) => Err(fail(ErrorCode::InvalidDpopProof, &why)),
        Err(Refused::NonceNeeded) => Err(Failure::dpop(
            OAuthError::new(ErrorCode::UseDpopNonce, "the DPoP proof must carry the nonce in DPoP-Nonce"),
            dpop::nonce_header(state),
        )),
        Err(Refused::Storage(e)) => Err(Failure::dpop(OAuthError::internal(e), None)),
    }
}

async fn run(state: &AppState, token: &str, dpop: Option<(&Method, &Uri, &HeaderMap)>) -> Result<Response, Failure> {
    let via = |e: OAuthError| if dpop.is_some() { Failure::dpop(e, None) } else { Failure::bearer(e) };
    let invalid = |why: &str| via(OAuthError::new(ErrorCode::InvalidToken, why));
    let claims =
        tokens::verify_access_token(state, token).ok_or_else(|| invalid("the access token is invalid or expired"))?;
    let jkt = claims.cnf.as_ref().map(|c| c.jkt.as_str());
    match dpop {
        Some(request) => check_proof(state, token, jkt, request).await?,
        None if jkt.is_some() => {
            let e = OAuthError::new(ErrorCode::InvalidToken, "the access token is DPoP-bound: present it with a proof");
            return Err(Failure::dpop(e, None));
        }
        None => {}
    }
    let scopes = split_scope(&claims.scope);
    if !scopes.iter().any(|s| s == "openid") {
        return Err(via(OAuthError::new(ErrorCode::InsufficientScope, "the token lacks the openid scope")));
    }
    let internal = |e: crate::storage::StorageError| via(OAuthError::internal(e));
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
