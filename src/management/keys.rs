//! `/keys`: the signing keys (public halves and status), and rotation.

use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::Problem;
use super::{body, caller};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/keys", get(list).post(rotate))
}

#[derive(Serialize, ToSchema)]
pub struct KeyOut {
    pub kid: String,
    pub alg: String,
    pub generation: i64,
    /// pending, active, retired or expired.
    pub status: String,
    pub created_at: i64,
    pub activates_at: i64,
}

/// Every signing key with its status.
#[utoipa::path(get, path = "/keys", responses((status = 200, body = Vec<KeyOut>), (status = 401, body = Problem)))]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    caller(&state, &headers, "read:keys")?;
    let infos = state.manage().keys(state.keys.max_token_ttl()).await?;
    let list: Vec<KeyOut> = infos
        .into_iter()
        .map(|k| KeyOut {
            kid: k.kid,
            alg: k.alg.to_string(),
            generation: k.generation,
            status: serde_json::to_value(k.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            created_at: k.created_at,
            activates_at: k.activates_at,
        })
        .collect();
    Ok(axum::Json(list).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// RS256, ES256, EdDSA; all three when empty.
    #[serde(default)]
    algs: Vec<String>,
}

/// Make a new key per algorithm: published at once, signing after every JWKS
/// cache has seen it (`keys.jwks_cache_secs` + `keys.reload_interval_secs`).
#[utoipa::path(post, path = "/keys", request_body = Rotate, responses(
    (status = 201, body = Vec<KeyOut>), (status = 400, body = Problem)))]
pub async fn rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<axum::Json<Rotate>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = super::acting(&state, &headers, "write:keys")?;
    let r = body(b)?;
    let made = state.manage().rotate_keys(&who, &r.algs).await?;
    let list: Vec<KeyOut> = made
        .into_iter()
        .map(|k| KeyOut {
            kid: k.kid,
            alg: k.alg.to_string(),
            generation: k.generation,
            status: "pending".into(),
            created_at: k.created_at,
            activates_at: k.activates_at,
        })
        .collect();
    Ok((StatusCode::CREATED, axum::Json(list)).into_response())
}
