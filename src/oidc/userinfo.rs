//! `GET`/`POST /userinfo`: claims for the bearer of a valid access token,
//! filtered by its scope. Errors per RFC 6750 §3.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::grants::split_scope;
use super::params::Params;
use super::tokens::{self, profile_claims};
use crate::app::AppState;
use crate::storage::{grants, users};

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    // RFC 6750 §2.2: a form body may carry the token on POST.
    let from_body = params.first("access_token");
    let Some(token) = from_header.or(from_body) else {
        return challenge(StatusCode::UNAUTHORIZED, None);
    };
    let Some(claims) = tokens::verify_access_token(&state, token) else {
        return challenge(StatusCode::UNAUTHORIZED, Some(("invalid_token", "the access token is invalid or expired")));
    };
    let scopes = split_scope(&claims.scope);
    if !scopes.iter().any(|s| s == "openid") {
        return challenge(StatusCode::FORBIDDEN, Some(("insufficient_scope", "the token lacks the openid scope")));
    }
    if let Some(gid) = &claims.gid {
        match grants::is_active(&state.db, gid).await {
            Ok(true) => {}
            Ok(false) => {
                return challenge(StatusCode::UNAUTHORIZED, Some(("invalid_token", "the token was revoked")));
            }
            Err(e) => return server_error(e),
        }
    }
    let user = match users::find_by_id(&state.db, &claims.sub).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => {
            return challenge(StatusCode::UNAUTHORIZED, Some(("invalid_token", "the user no longer exists")));
        }
        Err(e) => return server_error(e),
    };
    let mut body = serde_json::Map::new();
    body.insert("sub".into(), user.user_id.clone().into());
    for (k, v) in profile_claims(&user, &scopes) {
        body.insert(k.into(), v);
    }
    (super::error::no_store(), Json(serde_json::Value::Object(body))).into_response()
}

fn challenge(status: StatusCode, err: Option<(&str, &str)>) -> Response {
    let value = match err {
        Some((e, d)) => {
            format!("Bearer realm=\"sesame\", error=\"{e}\", error_description=\"{d}\"")
        }
        None => "Bearer realm=\"sesame\"".to_string(),
    };
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    let body = match err {
        Some((e, d)) => serde_json::json!({"error": e, "error_description": d}),
        None => {
            serde_json::json!({"error": "invalid_request", "error_description": "a bearer token is required"})
        }
    };
    (status, h, Json(body)).into_response()
}

fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "userinfo failed");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "server_error"}))).into_response()
}
