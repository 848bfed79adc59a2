//! `GET /jwks`: the public half of every pending, active and retired key.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use jsonwebtoken::jwk::JwkSet;

use crate::state::AppState;

pub async fn get(State(state): State<AppState>) -> (HeaderMap, Json<JwkSet>) {
    let now = state.clock.now();
    let set = state.keys.snapshot().jwks(now, state.keys.max_token_ttl());
    let mut headers = HeaderMap::new();
    let cc = format!("public, max-age={}", state.config.keys.jwks_cache_secs);
    if let Ok(v) = HeaderValue::from_str(&cc) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    (headers, Json(set))
}
