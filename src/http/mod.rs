//! Shared web plumbing, no endpoints: the layers every response passes through
//! and the JSON fallback.

pub mod client_ip;
pub mod page;
pub mod params;
pub mod server;

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::HttpConfig;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The largest request body Sesame reads (every body it takes is a small form).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much of a larger body is read and thrown away before answering 413, so
/// the client reads the answer instead of a connection reset.
const DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// Request id (honoured from a proxy or made here, echoed back), one tracing span
/// per request, a bound on the body and on the whole request's time, and
/// headers every response carries.
pub fn layers(app: Router, cfg: &HttpConfig) -> Router {
    app.layer(axum::middleware::from_fn(bounded_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(cfg.request_timeout_secs),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
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
        .layer(axum::middleware::from_fn(plain_request_id))
}

/// An incoming `X-Request-Id` is kept (a proxy's id ties its logs to ours)
/// only when it is a plain token of at most 64 characters; anything else is
/// dropped and replaced by our own, so logs and trace attributes never carry
/// what a client chose to write there.
async fn plain_request_id(mut req: Request, next: Next) -> Response {
    let plain = |v: &HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= 64 && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    };
    if req.headers().get(REQUEST_ID).is_some_and(|v| !plain(v)) {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

/// The span records the matched route, never the raw URI: query strings carry
/// codes, state and tokens.
fn make_span(req: &Request) -> tracing::Span {
    let path = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("unmatched");
    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = path,
        request_id = id,
        client_ip = tracing::field::Empty
    )
}

/// Reads the body (at most `MAX_BODY_BYTES`) before any route sees it, on every
/// route: a larger one is drained up to a bound and answered with a readable
/// 413 and `Connection: close`, never a reset.
async fn bounded_body(req: Request, next: Next) -> Response {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let (parts, mut body) = req.into_parts();
    let mut buf: Vec<u8> = Vec::new();
    let mut seen: usize = 0;
    let mut too_large = declared.is_some_and(|n| n > MAX_BODY_BYTES as u64);
    while seen <= DRAIN_BYTES {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen += data.len();
                    if seen > MAX_BODY_BYTES {
                        too_large = true;
                        buf = Vec::new();
                    } else if !too_large {
                        buf.extend_from_slice(&data);
                    }
                }
            }
            Some(Err(_)) => {
                let body =
                    json!({"error": "invalid_request", "error_description": "the request body could not be read"});
                return (StatusCode::BAD_REQUEST, Json(body)).into_response();
            }
        }
    }
    if too_large {
        let body = json!({
            "error": "invalid_request",
            "error_description": format!("the request body is larger than {} KiB", MAX_BODY_BYTES / 1024),
        });
        let mut resp = (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    if let Some(what) = unclean(&parts, &buf) {
        return refuse_unclean(&parts, &what);
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(buf))).await
}

/// Where a request holds a control character (NUL, CR, ESC, …) or bytes that
/// are not UTF-8 once percent-decoded — in its path, query, form or JSON
/// body: no value of Sesame's may, and none reaches storage or a log.
fn unclean(parts: &axum::http::request::Parts, body: &[u8]) -> Option<String> {
    if !crate::text::decoded_is_clean(parts.uri.path().as_bytes()) {
        return Some("the path".into());
    }
    let named = |k: String| if k.is_empty() { "a parameter name".to_string() } else { format!("`{k}`") };
    if let Some(k) = parts.uri.query().and_then(|q| crate::text::first_unclean(q.as_bytes())) {
        return Some(named(k));
    }
    if body.is_empty() {
        return None;
    }
    // By route, not by what the body claims to be: the management API reads
    // JSON, every other route reads any POST body as a form (`Params`).
    if parts.uri.path().contains("/api/v1") {
        // Tab, CR and LF are JSON whitespace (and invalid raw inside a string);
        // any other raw control character, or an escaped one, would be stored.
        let clean = std::str::from_utf8(body)
            .is_ok_and(|t| !t.chars().any(|c| crate::text::is_control(c) && !matches!(c, '\t' | '\n' | '\r')))
            && !crate::text::json_escapes_control(body);
        return (!clean).then(|| "the JSON body".into());
    }
    crate::text::first_unclean(body).map(named)
}

/// 400 in the caller's language: problem+json for the management API, a
/// page for a browser, an OAuth error object otherwise.
fn refuse_unclean(parts: &axum::http::request::Parts, what: &str) -> Response {
    let detail = format!("{what} holds a control character or bytes that are not UTF-8");
    if parts.uri.path().contains("/api/v1") {
        let body = json!({"type": "about:blank", "title": "Bad Request", "status": 400, "detail": detail});
        let mut r = (StatusCode::BAD_REQUEST, Json(body)).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        return r;
    }
    let html = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if html {
        // A fixed page: nothing from the request is echoed into HTML.
        const PAGE: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Bad request</title>\
             <h1>This request cannot be read</h1><p>It holds a control character or bytes that are not UTF-8. \
             Go back and try again.</p></html>";
        let mut r = (StatusCode::BAD_REQUEST, axum::response::Html(PAGE)).into_response();
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
        return r;
    }
    let body = json!({"error": "invalid_request", "error_description": detail});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

pub async fn not_found() -> (StatusCode, Json<Value>) {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"})))
}

/// `s` without control characters (CR, LF, ESC, …): `text::clean`.
pub fn clean(s: &str) -> String {
    crate::text::clean(s)
}

/// The CSP source for an inline script: `sha256-<base64 of its SHA-256>`.
pub fn csp_hash(script: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes())))
}
