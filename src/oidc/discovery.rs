//! `GET /.well-known/openid-configuration`. Lists exactly what is implemented.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};

use super::JWKS;
use crate::app::AppState;
use crate::config::SigningAlg;

pub async fn get(State(state): State<AppState>) -> (HeaderMap, Json<Value>) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    (headers, Json(document(&state)))
}

pub fn document(state: &AppState) -> Value {
    let iss = &state.issuer;
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    json!({
        "issuer": iss.as_str(),
        "jwks_uri": iss.endpoint(JWKS),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
    })
}
