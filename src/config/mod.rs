//! Configuration: code defaults, then a TOML file, then `SESAME_*` environment
//! variables (`__` separates nested keys). Everything is validated once, up front,
//! so a bad value stops the process with one line that names the key.
//! This module imports nothing else from the crate.

mod account;
mod client;
mod env;
mod proofs;
mod providers;
mod sections;

pub use account::{AuditConfig, PasswordsConfig, SmtpConfig, SmtpTls};
pub use client::{ClientSpec, StaticClient};
pub use proofs::{AdminConfig, DpopConfig, MfaConfig, MfaPolicy};
pub use providers::*;
pub use sections::*;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

/// The fully loaded, validated configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Public issuer URL, used exactly as written (a trailing slash is kept in `iss`).
    pub issuer: String,
    /// Address the HTTP server binds.
    pub listen: String,
    /// `sqlite://…` or `postgres://…`; empty means `sqlite://./data/sesame.db`.
    pub database_url: String,
    /// Base64 32-byte key that seals private signing keys at rest.
    pub master_key: Secret,
    /// A file holding the master key (for container secrets); used when `master_key` is empty.
    pub master_key_file: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A tracing env-filter directive, e.g. `info` or `sesame=debug,sqlx=warn`.
    pub log_level: String,
    pub database: DatabaseConfig,
    pub keys: KeysConfig,
    pub tokens: TokensConfig,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub rate_limit: RateLimitConfig,
    pub http: HttpConfig,
    pub audit: AuditConfig,
    pub metrics: MetricsConfig,
    pub mfa: MfaConfig,
    pub dpop: DpopConfig,
    pub admin: AdminConfig,
    pub tracing: TracingConfig,
    pub smtp: SmtpConfig,
    pub passwords: PasswordsConfig,
    /// Clients declared here are kept in the database and cannot be edited from the CLI.
    pub clients: Vec<StaticClient>,
    /// Upstream identity providers shown on the login box, in this order.
    pub providers: Vec<ProviderConfig>,
    /// What loading noticed but did not refuse (unknown `SESAME_*` variables),
    /// logged once logging is up.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            issuer: "http://localhost:8080".into(),
            listen: "127.0.0.1:8080".into(),
            database_url: String::new(),
            master_key: Secret::default(),
            master_key_file: String::new(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            database: DatabaseConfig::default(),
            keys: KeysConfig::default(),
            tokens: TokensConfig::default(),
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            rate_limit: RateLimitConfig::default(),
            http: HttpConfig::default(),
            audit: AuditConfig::default(),
            metrics: MetricsConfig::default(),
            mfa: MfaConfig::default(),
            dpop: DpopConfig::default(),
            admin: AdminConfig::default(),
            tracing: TracingConfig::default(),
            smtp: SmtpConfig::default(),
            passwords: PasswordsConfig::default(),
            clients: Vec::new(),
            providers: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

impl Config {
    /// Loads defaults, then `path` (if any), then the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        // Defaults are not serialised through figment: `Secret` serialises masked.
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = path {
            if !p.exists() {
                return Err(err(format!("config file {} does not exist", p.display())));
            }
            fig = fig.merge(Toml::file_exact(p));
        }
        // SESAME_CONFIG names the file itself and is not a key; variables that
        // name no setting (Kubernetes service links) are warned about, not fatal.
        let defaults = serde_json::to_value(Config::default()).map_err(|e| err(e.to_string()))?;
        let (ignored, warnings) = env::unknown(std::env::vars(), &defaults);
        let env = Env::prefixed("SESAME_").filter(move |k| {
            let k = k.as_str().to_ascii_lowercase();
            k != "config" && !ignored.contains(&k)
        });
        fig = fig.merge(env.split("__"));
        let mut cfg: Config = fig.extract().map_err(describe_figment_error)?;
        cfg.validate()?;
        cfg.warnings = warnings;
        Ok(cfg)
    }

    /// Checks every value that could make the server misbehave later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.issuer_url()?;
        self.listen_addr()?;
        self.metrics_addr()?;
        if !(10..=3600).contains(&self.dpop.max_age_secs) {
            return Err(err("dpop.max_age_secs (SESAME_DPOP__MAX_AGE_SECS): between 10 and 3600 seconds"));
        }
        if !self.tracing.otlp_endpoint.is_empty()
            && !url::Url::parse(&self.tracing.otlp_endpoint).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(err(format!(
                "tracing.otlp_endpoint (SESAME_TRACING__OTLP_ENDPOINT): `{}` is not an http(s) URL",
                self.tracing.otlp_endpoint
            )));
        }
        let db = self.database_url();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return Err(err(format!(
                "database_url (SESAME_DATABASE_URL): `{}` is neither sqlite:… nor postgres://…",
                redact_url(&db)
            )));
        }
        if !self.master_key.is_empty() {
            decode_master_key(self.master_key.expose())
                .map_err(|e| err(format!("master_key (SESAME_MASTER_KEY): {e}")))?;
        }
        if self.database.max_connections == 0 {
            return Err(err("database.max_connections (SESAME_DATABASE__MAX_CONNECTIONS) must be at least 1"));
        }
        if self.tokens.access_token_ttl_secs == 0 || self.tokens.id_token_ttl_secs == 0 {
            return Err(err("tokens.*_ttl_secs must be positive"));
        }
        for (key, name) in [("roles_claim", &self.tokens.roles_claim), ("groups_claim", &self.tokens.groups_claim)] {
            const RESERVED: [&str; 12] =
                ["iss", "sub", "aud", "exp", "iat", "jti", "scope", "client_id", "permissions", "sid", "nonce", "azp"];
            if name.is_empty() || RESERVED.contains(&name.as_str()) {
                return Err(err(format!("tokens.{key}: `{name}` must be a claim name of its own")));
            }
        }
        if self.tokens.code_ttl_secs == 0 || self.tokens.code_ttl_secs > 60 {
            return Err(err("tokens.code_ttl_secs (SESAME_TOKENS__CODE_TTL_SECS) must be between 1 and 60"));
        }
        let c = &self.login.primary_color;
        let hex = c.strip_prefix('#').unwrap_or("");
        if !((hex.len() == 3 || hex.len() == 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(err(format!(
                "login.primary_color (SESAME_LOGIN__PRIMARY_COLOR): `{c}` is not #rgb or #rrggbb"
            )));
        }
        if !self.login.logo_url.is_empty() && Url::parse(&self.login.logo_url).is_err() {
            return Err(err("login.logo_url (SESAME_LOGIN__LOGO_URL) must be an absolute URL"));
        }
        let name = self.session.cookie_name.as_deref().unwrap_or(DEFAULT_COOKIE_NAME);
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(err("session.cookie_name (SESAME_SESSION__COOKIE_NAME) must be letters, digits, - or _"));
        }
        if self.session.cookie_same_site == SameSite::None && !self.cookie_secure() {
            return Err(err("session.cookie_same_site = \"None\" needs a Secure cookie (an https issuer)"));
        }
        if self.tokens.refresh_reuse_grace_secs > 60 {
            return Err(err(
                "tokens.refresh_reuse_grace_secs (SESAME_TOKENS__REFRESH_REUSE_GRACE_SECS) must be at most 60",
            ));
        }
        for c in &self.rate_limit.trusted_proxies {
            parse_net(c)
                .map_err(|e| err(format!("rate_limit.trusted_proxies (SESAME_RATE_LIMIT__TRUSTED_PROXIES): {e}")))?;
        }
        if self.rate_limit.max_tracked_keys == 0 || self.login.max_password_queue == 0 {
            return Err(err("rate_limit.max_tracked_keys and login.max_password_queue must be at least 1"));
        }
        if self.http.header_read_timeout_secs == 0 || self.http.request_timeout_secs == 0 {
            return Err(err("http.header_read_timeout_secs and http.request_timeout_secs must be positive"));
        }
        if self.keys.reload_interval_secs == 0 {
            return Err(err("keys.reload_interval_secs (SESAME_KEYS__RELOAD_INTERVAL_SECS) must be positive"));
        }
        account::validate(&self.audit, &self.smtp, &self.passwords)?;
        if self.login.verify_email_ttl_secs == 0 || self.login.reset_password_ttl_secs == 0 {
            return Err(err("login.verify_email_ttl_secs and login.reset_password_ttl_secs must be positive"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| err(format!("log_level (SESAME_LOG_LEVEL): {e}")))?;
        let mut ids = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            p.check_shape(i).map_err(err)?;
            if !ids.insert(p.id.as_str()) {
                return Err(err(format!("providers[{i}].id: `{}` is declared twice", p.id)));
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            if c.spec.client_id.as_deref().is_none_or(str::is_empty) {
                return Err(err(format!("clients[{i}].client_id is required")));
            }
            if c.spec.refresh_leeway_secs.is_some_and(|l| l > 60) {
                return Err(err(format!("clients[{i}].refresh_leeway_secs must be at most 60")));
            }
        }
        Ok(())
    }

    /// Provider `i` with its secret read from its file or variable.
    pub fn provider(&self, i: usize) -> Result<ProviderConfig, ConfigError> {
        let mut p = self.providers.get(i).cloned().ok_or_else(|| err(format!("providers[{i}] does not exist")))?;
        p.resolve(i).map_err(err)?;
        Ok(p)
    }

    pub fn issuer_url(&self) -> Result<Url, ConfigError> {
        let url = Url::parse(&self.issuer)
            .map_err(|e| err(format!("issuer (SESAME_ISSUER): `{}` is not a URL: {e}", self.issuer)))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(err("issuer (SESAME_ISSUER) must be an http or https URL"));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(err("issuer (SESAME_ISSUER) must not have a query, fragment or user info"));
        }
        Ok(url)
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            err(format!("listen (SESAME_LISTEN): `{}` is not an address like 127.0.0.1:8080", self.listen))
        })
    }

    /// The separate address `/metrics` is served on, if one is set.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.metrics.listen.is_empty() {
            return Ok(None);
        }
        let addr = self.metrics.listen.parse().map_err(|_| {
            err(format!(
                "metrics.listen (SESAME_METRICS__LISTEN): `{}` is not an address like 0.0.0.0:9090",
                self.metrics.listen
            ))
        })?;
        Ok(Some(addr))
    }

    /// The configured database URL, or the embedded SQLite default.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() { "sqlite://./data/sesame.db".into() } else { self.database_url.clone() }
    }

    /// Whether cookies get `Secure`: on for https issuers unless configured off.
    pub fn cookie_secure(&self) -> bool {
        self.session.cookie_secure.unwrap_or_else(|| self.issuer_url().map(|u| u.scheme() == "https").unwrap_or(true))
    }

    /// The session cookie's name (the CSRF and browser-state cookies append to
    /// it). The default takes the `__Host-` prefix where the cookie qualifies
    /// (Secure, host-only, `Path=/`), so a sibling subdomain cannot plant it.
    pub fn session_cookie_name(&self) -> String {
        match &self.session.cookie_name {
            Some(n) => n.clone(),
            None if self.host_prefix_allowed() => format!("__Host-{DEFAULT_COOKIE_NAME}"),
            None => DEFAULT_COOKIE_NAME.to_string(),
        }
    }

    /// The name the session cookie had before it took the `__Host-` prefix,
    /// still read so an upgrade signs nobody out.
    pub fn legacy_session_cookie_name(&self) -> Option<&'static str> {
        (self.session.cookie_name.is_none() && self.host_prefix_allowed()).then_some(DEFAULT_COOKIE_NAME)
    }

    fn host_prefix_allowed(&self) -> bool {
        let root = self.issuer_url().map(|u| u.path() == "/" || u.path().is_empty()).unwrap_or(false);
        self.cookie_secure() && self.session.cookie_domain.is_empty() && root
    }

    /// True when the issuer is a plain-http or loopback development setup.
    pub fn issuer_is_loopback(&self) -> bool {
        self.issuer_url().map(|u| is_loopback_host(&u)).unwrap_or(false)
    }

    /// Where the development master key lives when none is configured: beside the
    /// SQLite file, or in `./data` for Postgres.
    pub fn dev_master_key_path(&self) -> PathBuf {
        let dir = sqlite_path(&self.database_url())
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("./data"));
        dir.join("master.key")
    }
}

/// The session cookie's base name when none is configured.
pub const DEFAULT_COOKIE_NAME: &str = "sesame_session";

/// The file path of an `sqlite:` URL, if it names a file.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Decodes a base64 (standard or URL-safe, padding optional) 32-byte key.
pub fn decode_master_key(s: &str) -> Result<[u8; 32], String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = s.trim().trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| "not valid base64".to_string())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("must decode to 32 bytes, got {}", bytes.len()))
}

/// Hides the passwords in a database URL before it goes into a message: the
/// user-info password and query parameters such as `password=` or `sslpassword=`.
pub fn redact_url(s: &str) -> String {
    let Ok(mut u) = Url::parse(s) else { return s.to_string() };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query().is_some() {
        let secret = |k: &str| {
            let k = k.to_ascii_lowercase();
            k.contains("pass") || k.contains("secret") || k.contains("token") || k == "sslkey"
        };
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) { "***".to_string() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

fn describe_figment_error(e: figment::Error) -> ConfigError {
    // figment reports the key path and its source (file or env var); keep the first
    // error only so the message stays one line.
    let first = e.into_iter().next();
    match first {
        Some(e) => {
            let key = e.path.join(".");
            let mut msg = match &e.kind {
                figment::error::Kind::UnknownField(..) => format!("unknown key `{key}`"),
                kind if key.is_empty() => kind.to_string(),
                kind => format!("{key}: {kind}"),
            };
            if let Some(md) = &e.metadata {
                let src = match &md.source {
                    Some(figment::Source::File(p)) => format!(" (in {})", p.display()),
                    _ if md.name.contains("environment") => {
                        let var = e.path.iter().map(|p| p.to_uppercase()).collect::<Vec<_>>().join("__");
                        if var.is_empty() {
                            " (in the environment)".to_string()
                        } else {
                            format!(" (from SESAME_{var})")
                        }
                    }
                    _ => String::new(),
                };
                msg.push_str(&src);
            }
            err(format!("invalid configuration: {msg}"))
        }
        None => err("invalid configuration"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_decoding() {
        let k = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(decode_master_key(k).map(|b| b[31]), Ok(31));
        assert!(decode_master_key("c2hvcnQ=").is_err());
        assert!(decode_master_key("!!!").is_err());
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://./data/x.db?mode=rwc"), Some(PathBuf::from("./data/x.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn host_prefix_only_where_the_cookie_qualifies() {
        let https = |f: fn(&mut Config)| {
            let mut c = Config { issuer: "https://auth.example.com".into(), ..Config::default() };
            f(&mut c);
            (c.session_cookie_name(), c.legacy_session_cookie_name())
        };
        assert_eq!(https(|_| {}), ("__Host-sesame_session".into(), Some("sesame_session")));
        assert_eq!(https(|c| c.issuer = "https://auth.example.com/".into()).0, "__Host-sesame_session");
        assert_eq!(https(|c| c.issuer = "https://example.com/auth".into()), ("sesame_session".into(), None));
        assert_eq!(https(|c| c.session.cookie_domain = "example.com".into()), ("sesame_session".into(), None));
        assert_eq!(https(|c| c.session.cookie_secure = Some(false)), ("sesame_session".into(), None));
        assert_eq!(https(|c| c.session.cookie_name = Some("sid".into())), ("sid".into(), None));
        let dev = Config::default();
        assert_eq!((dev.session_cookie_name(), dev.legacy_session_cookie_name()), ("sesame_session".into(), None));
    }

    #[test]
    fn database_urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        let r = redact_url("postgres://h/db?user=u&password=hunter2&sslmode=require");
        assert!(!r.contains("hunter2") && r.contains("password=***") && r.contains("sslmode=require"), "{r}");
        assert!(!redact_url("postgres://h/db?sslpassword=k3y").contains("k3y"));
    }

    #[test]
    fn dev_key_beside_sqlite_file() {
        let cfg = Config { database_url: "sqlite:///tmp/s/db.sqlite".into(), ..Config::default() };
        assert_eq!(cfg.dev_master_key_path(), PathBuf::from("/tmp/s/master.key"));
    }
}
