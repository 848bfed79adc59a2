//! Shared web plumbing, no endpoints: the layers every response passes through
//! and the JSON fallback.

pub mod page;

use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request id (honoured from a proxy or made here, echoed back), one tracing span
/// per request, and headers every response carries.
pub fn layers(app: Router) -> Router {
    app.layer(SetResponseHeaderLayer::if_not_present(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
    .layer(PropagateRequestIdLayer::new(REQUEST_ID))
    .layer(
        TraceLayer::new_for_http()
            .make_span_with(make_span)
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
    )
    .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The span records the matched route, never the raw URI: query strings carry
/// codes, state and tokens.
fn make_span(req: &Request) -> tracing::Span {
    let path = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("unmatched");
    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", method = %req.method(), route = path, request_id = id)
}

pub async fn not_found() -> (StatusCode, Json<Value>) {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"})))
}

/// `s` without control characters (CR, LF, ESC, …), so a request value can
/// neither forge a log line nor smuggle terminal escapes into one.
pub fn clean(s: &str) -> String {
    if s.chars().any(char::is_control) { s.chars().filter(|c| !c.is_control()).collect() } else { s.to_string() }
}

/// The CSP source for an inline script: `sha256-<base64 of its SHA-256>`.
pub fn csp_hash(script: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes())))
}
