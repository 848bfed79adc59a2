//! Liveness and readiness for load balancers and orchestrators. Mounted at the
//! root, whatever the issuer path, because probes are configured per host.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::state::AppState;

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";

pub fn routes() -> Router<AppState> {
    Router::new().route(HEALTHZ, get(healthz)).route(READYZ, get(readyz))
}

/// The process is up and serving.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers within a second; a replica that cannot reach it
/// should get no traffic (and the probe gets its answer before it times out).
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.db.ping(std::time::Duration::from_secs(1)).await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "reason": "database unreachable"})))
        }
    }
}
