//! Application state and router assembly: every area contributes its
//! `routes()`, mounted under the issuer's path, with the shared HTTP layers.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::cache::ClientCache;
use crate::config::Config;
use crate::crypto::keys::KeyRing;
use crate::crypto::seal::MasterKey;
use crate::domain::Clock;
use crate::issuer::Issuer;
use crate::storage::Db;
use crate::{federation, health, http, login, management, oidc, startup};

/// Shared by every handler: one pointer, so the clones that axum makes for
/// every layer and handler of every request cost one atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What `AppState` points to.
pub struct Shared {
    pub config: Arc<Config>,
    pub issuer: Arc<Issuer>,
    pub db: Db,
    pub keys: KeyRing,
    /// Seals refresh-token successors kept for the reuse grace window.
    pub master: MasterKey,
    pub clock: Clock,
    pub clients: Arc<ClientCache>,
    pub limits: Arc<crate::limits::Limits>,
    /// Outbound calls (back-channel logout): short timeout, no redirects.
    /// Back-channel logouts (`outbound`: bounded read, 5 s).
    pub http: crate::outbound::Outbound,
    /// Registered web origins, for CORS.
    pub origins: Arc<crate::oidc::cors::Origins>,
    /// Who may say who the client is (X-Forwarded-For).
    pub proxies: Arc<http::client_ip::Proxies>,
    /// Admission to the password-hashing pool (login, sign-up).
    pub passwords: Arc<tokio::sync::Semaphore>,
    /// Upstream identity providers.
    pub federation: Arc<crate::federation::Registry>,
    /// The audit log (`audit::record`).
    pub audit: crate::audit::Auditor,
    /// Outgoing mail.
    pub mailer: crate::mail::Mailer,
}

impl AppState {
    /// A client by id, through the per-replica cache.
    pub async fn client(
        &self,
        client_id: &str,
    ) -> Result<Option<Arc<crate::domain::Client>>, crate::storage::StorageError> {
        self.clients.get(&self.db, client_id, self.clock.now()).await
    }

    /// Opens the database and keys as `sesame serve` does.
    pub async fn init(config: Config, clock: Clock) -> anyhow::Result<AppState> {
        let issuer = Issuer::new(&config.issuer)?;
        let db = startup::open_db(&config).await?;
        let master = startup::master_key(&config)?;
        startup::ensure_keys(&db, &master, &clock).await?;
        startup::sync_static_clients(&db, &config, &clock).await?;
        crate::access::ensure_management_api(&db, issuer.as_str(), clock.now()).await?;
        let ttl = config.tokens.max_signed_ttl_secs() as i64;
        let keys = KeyRing::load(db.clone(), master.clone(), ttl, clock.now()).await?;
        let https = config.issuer_url()?.scheme() == "https";
        let account = crate::clients::from_static(&crate::selfservice::account_client(&config), https, clock.now())
            .map_err(|e| anyhow::anyhow!(e))?
            .client;
        let clients = Arc::new(ClientCache::new(config.database.client_cache_secs).with_builtin(account));
        let origins = Arc::default();
        let limits = Arc::new(crate::limits::Limits::new(&config.rate_limit));
        let http = crate::outbound::Outbound::new(Duration::from_secs(5))?;
        let proxies = Arc::new(http::client_ip::Proxies {
            trust_forwarded_for: config.rate_limit.trust_forwarded_for,
            nets: config.rate_limit.trusted_nets(),
        });
        let passwords = Arc::new(tokio::sync::Semaphore::new(config.login.max_password_queue));
        let federation = Arc::new(crate::federation::Registry::new(&config, issuer.as_str())?);
        let audit = crate::audit::Auditor::start(&db, &config, clock.clone()).await?;
        let mailer = crate::mail::Mailer::new(&config)?;
        Ok(AppState(Arc::new(Shared {
            audit,
            mailer,
            proxies,
            passwords,
            federation,
            config: Arc::new(config),
            issuer: Arc::new(issuer),
            db,
            keys,
            master,
            clock,
            clients,
            limits,
            http,
            origins,
        })))
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(oidc::routes(&state))
        .merge(login::routes())
        .merge(federation::routes())
        .merge(crate::selfservice::routes())
        .merge(management::routes(&state));
    let prefix = state.issuer.path_prefix().to_string();
    let mounted = if prefix.is_empty() { api } else { Router::new().nest(&prefix, api) };
    let app = Router::new()
        .merge(health::routes())
        .merge(mounted)
        .fallback(http::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), http::client_ip::layer))
        .with_state(state.clone());
    http::layers(app, &state.config.http)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
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
    audit.flush().await;
    db.close().await;
    result.map_err(Into::into)
}

/// Every minute, forgets sealed refresh-token successors past the longest
/// leeway; every ten minutes, deletes expired requests, codes, sessions and
/// refresh tokens. Every replica runs it; the statements are idempotent.
fn spawn_janitor(state: AppState) -> tokio::task::JoinHandle<()> {
    let (db, clock) = (state.db.clone(), state.clock.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for round in 0u64.. {
            tick.tick().await;
            if round % 10 != 0 {
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
