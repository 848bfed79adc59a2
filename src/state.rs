//! The application state every handler shares: configuration, issuer,
//! database, keys, clock and the per-replica handles (caches, limits, mail,
//! audit). It imports no routes; `app` assembles the routers over it.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::ClientCache;
use crate::config::Config;
use crate::crypto::keys::KeyRing;
use crate::crypto::seal::MasterKey;
use crate::domain::Clock;
use crate::http::page::Brand;
use crate::issuer::Issuer;
use crate::storage::Db;
use crate::{http, startup};

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
    /// Whether any role requires a second factor (cached like clients).
    pub role_rules: crate::cache::RoleRuleCache,
    pub limits: Arc<crate::limits::Limits>,
    /// Outbound calls (back-channel logout): short timeout, no redirects.
    /// Back-channel logouts (`outbound`: bounded read, 5 s).
    pub http: crate::outbound::Outbound,
    /// Registered web origins, for CORS.
    pub origins: Arc<crate::oidc::origins::Origins>,
    /// Who may say who the client is (X-Forwarded-For).
    pub proxies: Arc<http::client_ip::Proxies>,
    /// Admission to the password-hashing pool (login, sign-up).
    pub passwords: Arc<tokio::sync::Semaphore>,
    /// Upstream identity providers.
    pub federation: Arc<crate::federation::registry::Registry>,
    /// The audit log (`audit::record`).
    pub audit: crate::audit::Auditor,
    /// Outgoing mail.
    pub mailer: crate::mail::Mailer,
    /// The links and notices Sesame mails.
    pub emails: crate::emails::Emails,
    /// What every page shows (product name, logo, static files).
    pub brand: Brand,
    /// Ending sessions and back-channel logout.
    pub logouts: crate::logouts::Logouts,
    /// The WebAuthn relying party (the issuer's host).
    pub passkeys: crate::mfa::passkeys::Passkeys,
}

impl AppState {
    /// The handles proving a mailbox needs (`proof::reclaim`, `proof::release`).
    pub fn prover(&self) -> crate::proof::Prover<'_> {
        crate::proof::Prover {
            db: &self.db,
            clock: &self.clock,
            audit: &self.audit,
            emails: &self.emails,
            logouts: &self.logouts,
            providers: &self.federation,
        }
    }

    /// The handles second factors need (`mfa::Factors`).
    pub fn factors(&self) -> crate::mfa::Factors<'_> {
        crate::mfa::Factors {
            db: &self.db,
            clock: &self.clock,
            audit: &self.audit,
            emails: &self.emails,
            master: &self.master,
            passkeys: &self.passkeys,
            product: &self.config.login.product_name,
        }
    }

    /// The handles administrators' operations use (`manage`: the management
    /// API and the console).
    pub fn manage(&self) -> crate::manage::Manage<'_> {
        crate::manage::Manage {
            db: &self.db,
            clock: &self.clock,
            audit: &self.audit,
            emails: &self.emails,
            logouts: &self.logouts,
            factors: self.factors(),
            master: &self.master,
            config: &self.config,
            issuer: self.issuer.as_str(),
        }
    }

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
        if config.metrics.enabled {
            crate::telemetry::handle();
        }
        let db = startup::open_db(&config).await?;
        let master = startup::master_key(&config)?;
        startup::ensure_keys(&db, &master, &clock).await?;
        startup::sync_static_clients(&db, &config, &clock).await?;
        crate::access::ensure_management_api(&db, issuer.as_str(), clock.now()).await?;
        crate::access::ensure_console_roles(&db, issuer.as_str(), clock.now()).await?;
        let ttl = config.tokens.max_signed_ttl_secs() as i64;
        let keys = KeyRing::load(db.clone(), master.clone(), ttl, clock.now()).await?;
        let https = config.issuer_url()?.scheme() == "https";
        let account =
            crate::clients::account_client(&config.issuer, https, clock.now()).map_err(|e| anyhow::anyhow!(e))?;
        let console = crate::clients::console_client(&config.issuer, https, config.admin.require_mfa, clock.now())
            .map_err(|e| anyhow::anyhow!(e))?;
        let clients =
            Arc::new(ClientCache::new(config.database.client_cache_secs).with_builtin(account).with_builtin(console));
        let origins = Arc::default();
        let limits = Arc::new(crate::limits::Limits::new(&config.rate_limit));
        let http = crate::outbound::Outbound::new(Duration::from_secs(5))?;
        let proxies = Arc::new(http::client_ip::Proxies {
            trust_forwarded_for: config.rate_limit.trust_forwarded_for,
            nets: config.rate_limit.trusted_nets(),
        });
        let passwords = Arc::new(tokio::sync::Semaphore::new(config.login.max_password_queue));
        let federation = Arc::new(crate::federation::registry::Registry::new(&config, issuer.as_str())?);
        let audit = crate::audit::Auditor::start(&db, &config, clock.clone()).await?;
        let mailer = crate::mail::Mailer::new(&config)?;
        let emails = crate::emails::Emails::new(&config, &issuer, &db, &clock, &mailer, &audit);
        let brand = Brand::new(&config, &issuer);
        let passkeys = crate::mfa::passkeys::Passkeys::new(&config.issuer_url()?, &config.login.product_name);
        let issuer = Arc::new(issuer);
        let logouts = crate::logouts::Logouts {
            db: db.clone(),
            clock: clock.clone(),
            clients: clients.clone(),
            keys: keys.clone(),
            issuer: issuer.clone(),
            http: http.clone(),
            audit: audit.clone(),
            default_alg: config.keys.default_id_token_alg,
        };
        Ok(AppState(Arc::new(Shared {
            role_rules: crate::cache::RoleRuleCache::new(config.database.client_cache_secs),
            logouts,
            passkeys,
            emails,
            brand,
            audit,
            mailer,
            proxies,
            passwords,
            federation,
            config: Arc::new(config),
            issuer,
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
