//! The sections of the configuration file and the value types they use.
//! Every key is documented in `config/sesame.example.toml`.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    /// Seconds a request waits for a database connection before answering 503
    /// `temporarily_unavailable` (0: use `acquire_timeout_ms`).
    pub acquire_timeout_secs: u64,
    /// The same in milliseconds, when set (finer than a second).
    pub acquire_timeout_ms: Option<u64>,
    /// Postgres `statement_timeout` of the server's connections, in milliseconds.
    pub statement_timeout_ms: u64,
    /// Seconds each replica may serve a client record from memory (0: always read).
    pub client_cache_secs: u64,
    /// Seconds between the janitor's deletes of expired rows (each replica).
    pub purge_interval_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            max_connections: 16,
            acquire_timeout_secs: 1,
            acquire_timeout_ms: None,
            statement_timeout_ms: 5000,
            client_cache_secs: 5,
            purge_interval_secs: 600,
        }
    }
}

/// Optional OpenTelemetry traces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Empty: no traces. An OTLP/HTTP traces URL
    /// (`http://collector:4318/v1/traces`): every request's span goes there.
    pub otlp_endpoint: String,
    /// The `service.name` of the spans.
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig { otlp_endpoint: String::new(), service_name: "sesame".into() }
    }
}

/// Prometheus metrics (`GET /metrics`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Empty: `/metrics` on the main listener. An address (`0.0.0.0:9090`):
    /// `/metrics` only there, a listener of its own that the login box's
    /// users cannot reach.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, listen: String::new() }
    }
}

impl DatabaseConfig {
    pub fn acquire_timeout_ms(&self) -> u64 {
        self.acquire_timeout_ms.unwrap_or(self.acquire_timeout_secs * 1000).max(50)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// `Cache-Control: max-age` of the JWKS. A rotated key is published at least this
    /// long (plus the reload interval) before it signs anything.
    pub jwks_cache_secs: u64,
    /// How often each replica re-reads the signing keys from the database.
    pub reload_interval_secs: u64,
    /// Algorithm for ID tokens of clients that do not choose one.
    pub default_id_token_alg: SigningAlg,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig { jwks_cache_secs: 300, reload_interval_secs: 30, default_id_token_alg: SigningAlg::RS256 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    /// Authorization codes live at most this long (capped at 60 s).
    pub code_ttl_secs: u64,
    /// A refresh token unused this long expires.
    pub refresh_token_idle_ttl_secs: u64,
    /// A refresh-token family ends this long after the login, however often it rotates.
    pub refresh_token_absolute_ttl_secs: u64,
    /// Absolute lifetime for public clients (SPAs), usually shorter.
    pub public_refresh_token_absolute_ttl_secs: u64,
    /// A used refresh token presented again within this many seconds gets the same
    /// successor (tabs refreshing at once) instead of revoking the family. Default 0
    /// (RFC 9700 §4.14.2): the first replay revokes the family. At most 60.
    pub refresh_reuse_grace_secs: u64,
    /// The claim carrying a user's roles (scope `roles`); an API that expects
    /// Auth0-style namespaced claims can have `https://example.com/roles`.
    pub roles_claim: String,
    /// The claim carrying a user's groups (scope `groups`).
    pub groups_claim: String,
}

/// The longest access-token lifetime an API may set (the key ring keeps a
/// retired key published for the longest lifetime any API sets).
pub const MAX_API_TOKEN_TTL_SECS: u64 = 86_400;

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            access_token_ttl_secs: 3600,
            id_token_ttl_secs: 3600,
            code_ttl_secs: 60,
            refresh_token_idle_ttl_secs: 30 * 86_400,
            refresh_token_absolute_ttl_secs: 90 * 86_400,
            public_refresh_token_absolute_ttl_secs: 7 * 86_400,
            refresh_reuse_grace_secs: 0,
            roles_claim: "roles".into(),
            groups_claim: "groups".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Unset: `sesame_session`, as `__Host-sesame_session` where the cookie can
    /// carry that prefix (Secure, no Domain, issuer without a path). Set: used as written.
    pub cookie_name: Option<String>,
    /// Empty: a host-only cookie for the issuer's host.
    pub cookie_domain: String,
    pub cookie_same_site: SameSite,
    /// Default: on for https issuers, off for plain-http development issuers.
    pub cookie_secure: Option<bool>,
    /// A session unused this long ends.
    pub idle_timeout_secs: u64,
    /// A session ends this long after login, however active.
    pub absolute_timeout_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie_name: None,
            cookie_domain: String::new(),
            cookie_same_site: SameSite::Lax,
            cookie_secure: None,
            idle_timeout_secs: 3 * 86_400,
            absolute_timeout_secs: 30 * 86_400,
        }
    }
}

/// Per-replica limits (token buckets: a burst of N, refilled over a minute).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Read the client address from X-Forwarded-For, when the connecting peer is
    /// one of `trusted_proxies`: the rightmost entry that is not a trusted proxy.
    pub trust_forwarded_for: bool,
    /// CIDRs of the proxies (load balancers) allowed to say who the client is.
    pub trusted_proxies: Vec<String>,
    /// Keys each limiter map may hold (per replica); a bound on memory.
    pub max_tracked_keys: usize,
    pub authorize_per_ip_per_minute: u32,
    pub authorize_per_session_per_minute: u32,
    pub login_per_ip_per_minute: u32,
    pub login_per_account_per_minute: u32,
    /// Verification and password-reset mails per address typed and per
    /// account (a burst of this many, refilled over a minute).
    pub mails_per_account_per_minute: u32,
    /// Failed client authentications at `/token`, `/revoke` and
    /// `/introspect`, per client address and per client id (a burst of this
    /// many, refilled over a minute): an address past it waits (429) for any
    /// client authentication; a client id past it only turns failures into
    /// 429s, never its right credentials.
    pub client_auth_failures_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            trust_forwarded_for: false,
            trusted_proxies: ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
                .map(String::from)
                .to_vec(),
            max_tracked_keys: 100_000,
            authorize_per_ip_per_minute: 600,
            authorize_per_session_per_minute: 120,
            login_per_ip_per_minute: 60,
            login_per_account_per_minute: 10,
            mails_per_account_per_minute: 3,
            client_auth_failures_per_minute: 30,
        }
    }
}

/// The HTTP edge: how long a client may take to send a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Seconds a connection may take to send a request's headers.
    pub header_read_timeout_secs: u64,
    /// Seconds a whole request (body included) may take before it is answered 408.
    pub request_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { header_read_timeout_secs: 10, request_timeout_secs: 30 }
    }
}

impl RateLimitConfig {
    /// The trusted proxy ranges, parsed (validated at load).
    pub fn trusted_nets(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies.iter().filter_map(|c| parse_net(c).ok()).collect()
    }
}

/// A CIDR, or a single address (as /32 or /128).
pub(super) fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{s}` is not a CIDR like 10.0.0.0/8"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Show the sign-up page (signing up is just the first login).
    pub signup_enabled: bool,
    /// Show the email and password form. Off with exactly one provider, the
    /// login box sends users straight to it.
    pub password_login: bool,
    /// How long a round trip to an upstream provider may take before its
    /// state expires (seconds).
    pub federation_ttl_secs: u64,
    pub product_name: String,
    pub logo_url: String,
    /// CSS colour of buttons and links, `#rgb` or `#rrggbb`.
    pub primary_color: String,
    /// How long a user may take on the login box before the request expires.
    pub request_ttl_secs: u64,
    /// Password hashes (login, sign-up) waiting or running at once per
    /// replica, at most (a memory bound); past it, 503 with Retry-After.
    pub max_password_queue: usize,
    /// A sign-in is admitted to password hashing when it can start within
    /// this many milliseconds (from the measured hash time and the queue
    /// ahead of it); otherwise 503 with Retry-After instead of a backlog.
    pub max_password_wait_ms: u64,
    /// Refuse sign-in (password or provider) until the account's email is
    /// verified. Off by default, so accounts made by the CLI keep working.
    pub require_verified_email: bool,
    /// How long an emailed verification (or sign-up) link works (seconds).
    pub verify_email_ttl_secs: u64,
    /// How long an emailed password-reset link works (seconds).
    pub reset_password_ttl_secs: u64,
    /// How recent a sign-in must be (seconds) for account-page changes that
    /// add a way in (linking a provider, a first password) or move the
    /// address of an account without a password to type.
    pub reauth_secs: u64,
    /// Auth0's embedded sign-up (`/dbconnections/signup`): the account signs
    /// in right away with the password typed there, and an address that has
    /// an account is answered `user_exists`. Both tell whoever asks whether
    /// an address has an account; off, sign-up answers the same for every
    /// address and the password is chosen on the mailed link.
    pub reveal_existing_accounts: bool,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            signup_enabled: true,
            password_login: true,
            federation_ttl_secs: 600,
            product_name: "Sesame".into(),
            logo_url: String::new(),
            primary_color: "#4f46e5".into(),
            request_ttl_secs: 1800,
            max_password_queue: 256,
            max_password_wait_ms: 3000,
            require_verified_email: false,
            verify_email_ttl_secs: 86_400,
            reset_password_ttl_secs: 3_600,
            reauth_secs: 300,
            reveal_existing_accounts: false,
        }
    }
}

impl TokensConfig {
    /// The longest any signed token can stay valid: a retired key stays published this long.
    pub fn max_signed_ttl_secs(&self) -> u64 {
        self.access_token_ttl_secs.max(self.id_token_ttl_secs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// JWS algorithms Sesame signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigningAlg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown algorithm `{s}` (expected RS256, ES256 or EdDSA)"))
    }
}

/// A string that never shows up in `Debug` output or logs.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("\"\"") } else { f.write_str("\"***\"") }
    }
}

impl Serialize for Secret {
    // Serialising exists for `check-config`, which must never print a secret.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}
