//! The HTTP side of metrics: the layer that times every request by its route
//! template, and `GET /metrics`, which samples the gauges (pools, queues, key
//! age) at scrape time and renders the Prometheus text format.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{gauge, histogram};

use crate::config::SigningAlg;
use crate::state::AppState;

/// The scrape route on the `[metrics] listen` address: anyone who reaches
/// that address may scrape.
pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// The scrape route on the main listener, where the login box's users are:
/// only for a peer on this host (loopback) that is not a proxy passing a
/// request on (no `Forwarded`/`X-Forwarded-For`). Everyone else gets the
/// same 404 as any unknown path.
pub fn main_routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape_local))
}

async fn scrape_local(State(state): State<AppState>, req: Request) -> Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let local = peer.is_some_and(|ip| match ip {
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        v4 => v4.is_loopback(),
    });
    let h = req.headers();
    if !local || h.contains_key("x-forwarded-for") || h.contains_key(header::FORWARDED) {
        return crate::http::not_found().await.into_response();
    }
    scrape(State(state)).await
}

/// Times the request and counts it by route template (`unmatched` for paths
/// no route serves, so a scan cannot grow the series), method and status.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let method = method_label(req.method());
    let resp = next.run(req).await;
    histogram!(
        "sesame_http_request_duration_seconds",
        "route" => route.unwrap_or_else(|| "unmatched".into()),
        "method" => method,
        "status" => status_label(resp.status()),
    )
    .record(started.elapsed().as_secs_f64());
    resp
}

fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        _ => "other",
    }
}

fn status_label(s: StatusCode) -> &'static str {
    // The codes Sesame answers with; anything else by its class.
    match s.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        302 => "302",
        303 => "303",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        other => match other / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}

async fn scrape(State(state): State<AppState>) -> Response {
    let Some(handle) = super::handle() else {
        return (StatusCode::NOT_FOUND, "metrics are not available").into_response();
    };
    sample(&state);
    handle.run_upkeep();
    let mut resp = handle.render().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The gauges read at scrape time.
fn sample(state: &AppState) {
    let pools = [("main", Some(state.db.pool())), ("audit", state.audit.own_pool())];
    for (name, pool) in pools {
        let Some(pool) = pool else { continue };
        let (size, idle) = (pool.size() as f64, pool.num_idle() as f64);
        gauge!("sesame_db_connections", "pool" => name, "state" => "in_use").set(size - idle);
        gauge!("sesame_db_connections", "pool" => name, "state" => "idle").set(idle);
        gauge!("sesame_db_connections_max", "pool" => name).set(f64::from(pool.options().get_max_connections()));
    }
    gauge!("sesame_audit_queue_depth").set(state.audit.queue_depth() as f64);
    let queued = state.config.login.max_password_queue.saturating_sub(state.passwords.available_permits());
    gauge!("sesame_password_hashing_queue").set(queued as f64);
    gauge!("sesame_rate_limit_tracked_keys").set(state.limits.tracked_keys() as f64);
    let now = state.clock.now();
    let keys = state.keys.snapshot();
    for alg in [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA] {
        if let Some(k) = keys.signing_key(alg, now) {
            gauge!("sesame_signing_key_age_seconds", "alg" => alg.as_str()).set((now - k.created_at) as f64);
        }
    }
}
