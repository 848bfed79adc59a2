//! Router assembly: every area contributes its `routes()`, mounted under the
//! issuer's path, with the shared HTTP layers; and the serving loop.

use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::state::AppState;
use crate::{federation, health, http, login, management, oidc, telemetry};

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(oidc::routes(&state))
        .merge(login::routes())
        .merge(crate::embedded::routes(&state))
        .merge(federation::routes::routes())
        .merge(crate::selfservice::routes())
        .merge(crate::console::routes())
        .merge(management::routes(&state));
    let prefix = state.issuer.path_prefix().to_string();
    let mounted = if prefix.is_empty() { api } else { Router::new().nest(&prefix, api) };
    let metrics = state.config.metrics.enabled && state.config.metrics.listen.is_empty();
    let app = Router::new()
        .merge(health::routes())
        .merge(if metrics { telemetry::http::main_routes() } else { Router::new() })
        .merge(mounted)
        .fallback(http::not_found)
        .layer(axum::middleware::from_fn_with_state(state.proxies.clone(), http::client_ip::layer))
        .layer(axum::middleware::from_fn(telemetry::http::track))
        .with_state(state.clone());
    http::layers(app, &state.config.http)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = serve_metrics(&state).await?;
    let reloader =
        state.keys.spawn_reloader(Duration::from_secs(state.config.keys.reload_interval_secs), state.clock.clone());
    let janitor = spawn_janitor(state.clone());
    let db = state.db.clone();
    let audit = state.audit.clone();
    let header_timeout = Duration::from_secs(state.config.http.header_read_timeout_secs);
    let app = router(state);
    let result = http::server::run(listener, app, header_timeout, shutdown).await;
    reloader.abort();
    janitor.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    audit.flush().await;
    db.close().await;
    result.map_err(Into::into)
}

/// `/metrics` on `[metrics] listen`, when set: a listener of its own, bound
/// before the main one serves (a bad address fails the start).
async fn serve_metrics(state: &AppState) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let addr = match state.config.metrics_addr()? {
        Some(a) if state.config.metrics.enabled => a,
        _ => return Ok(None),
    };
    let listener =
        TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("metrics.listen: cannot bind {addr}: {e}"))?;
    tracing::info!(address = %addr, "metrics listening");
    let app = telemetry::http::routes().with_state(state.clone());
    let header_timeout = Duration::from_secs(state.config.http.header_read_timeout_secs);
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = http::server::run(listener, app, header_timeout, std::future::pending()).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    })))
}

/// Every minute, forgets sealed refresh-token successors past the longest
/// leeway; every `database.purge_interval_secs` (ten minutes), deletes
/// expired requests, codes, sessions and refresh tokens, in batches. Every
/// replica runs it; the statements are idempotent.
fn spawn_janitor(state: AppState) -> tokio::task::JoinHandle<()> {
    let (db, clock) = (state.db.clone(), state.clock.clone());
    let purge_every = state.config.database.purge_interval_secs.max(1);
    let tick_secs = purge_every.min(60);
    let rounds = purge_every.div_ceil(tick_secs);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(tick_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for round in 0u64.. {
            tick.tick().await;
            if round % rounds != 0 {
                let spent_before = clock.now() - crate::domain::MAX_REFRESH_LEEWAY_SECS as i64;
                if let Err(e) = crate::storage::refresh_tokens::wipe_successors(&db, spent_before).await {
                    tracing::warn!(error = %e, "wiping spent refresh-token successors failed");
                }
                continue;
            }
            state.limits.shrink();
            match crate::storage::purge_expired(&db, clock.now()).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
            match state.audit.purge(state.config.audit.retention_days).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "purged old audit events"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging old audit events failed"),
            }
        }
    })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
