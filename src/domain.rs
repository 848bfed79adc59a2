//! Plain records and rules shared by every layer: clients, users, redirect-URI
//! rules, and the clock. No I/O here.

use serde::Serialize;
use url::Url;

use crate::config::{SigningAlg, is_loopback_host};

/// A registered application.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub public: bool,
    pub first_party: bool,
    /// Compared byte for byte, never normalised.
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub web_origins: Vec<String>,
    pub grant_types: Vec<String>,
    pub id_token_alg: Option<SigningAlg>,
    pub token_endpoint_auth_method: String,
    pub backchannel_logout_uri: Option<String>,
    pub frontchannel_logout_uri: Option<String>,
    /// Seconds a rotated refresh token still yields the same successor; None:
    /// the global `tokens.refresh_reuse_grace_secs`.
    pub refresh_leeway_secs: Option<u64>,
    /// May introspect tokens issued to other clients (an API gateway).
    pub introspect_any: bool,
    /// `cli` or `config` (static clients cannot be edited from the CLI).
    pub source: String,
    /// Per-application access: a user needs one of these roles (direct or
    /// through a group) or to be in one of these groups; both empty: everyone.
    pub require_roles: Vec<String>,
    pub require_groups: Vec<String>,
    /// The API an access token is for when a request names none.
    pub default_audience: Option<String>,
    /// Tokens carry `roles` and `groups` even when the scope does not ask.
    pub rbac_claims: bool,
    /// Every sign-in to this client needs a second factor.
    pub require_mfa: bool,
    /// Every token request needs a DPoP proof.
    pub require_dpop: bool,
    /// Embedded login (auth0-js) from its web origins.
    pub cross_origin_authentication: bool,
    /// The application page that answers embedded login's verifier request.
    pub cross_origin_loc: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const GRANT_TYPES: [&str; 4] = ["authorization_code", "refresh_token", "client_credentials", "implicit"];
/// The longest refresh-token reuse leeway a client or the config may set.
pub const MAX_REFRESH_LEEWAY_SECS: u64 = 60;

pub const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

impl Client {
    /// What its ID tokens (and logout tokens) are signed with: its own
    /// `id_token_alg`, else the configured default.
    pub fn signing_alg(&self, default: SigningAlg) -> SigningAlg {
        self.id_token_alg.unwrap_or(default)
    }

    pub fn is_restricted(&self) -> bool {
        !self.require_roles.is_empty() || !self.require_groups.is_empty()
    }
}

/// An API (resource server): access tokens for it carry its identifier as `aud`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Api {
    pub identifier: String,
    pub name: String,
    pub permissions: Vec<String>,
    /// None: `tokens.access_token_ttl_secs`.
    pub token_ttl_secs: Option<u64>,
    /// None: the client's, or the default.
    pub alg: Option<SigningAlg>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A person who can sign in. `user_id` is the stable `sub`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    /// None for a user who signs in only through a provider that gave no
    /// (or no verified, unclaimed) address.
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    /// The email, or "" for display where none is known.
    pub fn email_or_empty(&self) -> &str {
        self.email.as_deref().unwrap_or("")
    }

    /// How to name the user on a page or in CLI output: email, else name, else id.
    pub fn label(&self) -> &str {
        self.email.as_deref().or(self.name.as_deref()).unwrap_or(&self.user_id)
    }
}

/// Lower-cases an email for uniqueness and lookup.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A deliberately small sanity check: one `@`, something on both sides, no spaces.
pub fn validate_email(email: &str) -> Result<(), String> {
    let e = email.trim();
    let ok = match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !e.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if ok && e.len() <= 254 { Ok(()) } else { Err(format!("`{email}` is not an email address")) }
}

/// What a redirect URI check says beyond accept/refuse.
#[derive(Debug, PartialEq, Eq)]
pub enum UriVerdict {
    Ok,
    /// Accepted only because the issuer itself is plain-http development.
    InsecureDev,
}

/// Rules for a registered redirect (or post-logout redirect) URI: absolute, no
/// fragment, https — or http on a loopback host, or on any host when the issuer
/// itself is plain http (development) — or a private-use scheme for native apps.
pub fn check_redirect_uri(uri: &str, issuer_is_https: bool) -> Result<UriVerdict, String> {
    let url = Url::parse(uri).map_err(|e| format!("`{uri}` is not an absolute URI: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` must not contain a fragment"));
    }
    match url.scheme() {
        "https" => Ok(UriVerdict::Ok),
        "http" if is_loopback_host(&url) => Ok(UriVerdict::Ok),
        "http" if !issuer_is_https => Ok(UriVerdict::InsecureDev),
        "http" => Err(format!("`{uri}`: plain http is only allowed for loopback hosts with an https issuer")),
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => {
            Err(format!("`{uri}`: scheme `{}` is not allowed", url.scheme()))
        }
        // RFC 8252 §7.1: native apps use reverse-domain private-use schemes.
        s if s.contains('.') => Ok(UriVerdict::Ok),
        s => {
            Err(format!("`{uri}`: scheme `{s}` is not allowed (use https, or a reverse-domain scheme for native apps)"))
        }
    }
}

/// A web origin is `scheme://host[:port]` with nothing after it.
pub fn check_web_origin(origin: &str) -> Result<(), String> {
    let url = Url::parse(origin).map_err(|e| format!("`{origin}` is not an origin: {e}"))?;
    let serialized = url.origin().ascii_serialization();
    if (url.scheme() == "https" || url.scheme() == "http") && serialized == origin {
        Ok(())
    } else {
        Err(format!("`{origin}` is not an origin like https://app.example.com (no path, no trailing slash)"))
    }
}

/// Time source. Production uses the system clock; tests move it forward.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Unix seconds.
    pub fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp() + self.offset.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Unix milliseconds (for ordering audit events within a second).
    pub fn now_ms(&self) -> i64 {
        let t = time::OffsetDateTime::now_utc();
        (t.unix_timestamp() + self.offset.load(std::sync::atomic::Ordering::Relaxed)) * 1000
            + i64::from(t.millisecond())
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Formats unix seconds as RFC 3339 for people.
pub fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// A past moment in words, as people read it on a page: "just now", "3
/// minutes ago", "2 hours ago", "yesterday", "5 days ago", then the date.
/// Words need no time zone; the date alone is close enough after a month.
pub fn ago(ts: i64, now: i64) -> String {
    let secs = now.saturating_sub(ts);
    let plural = |n: i64, unit: &str| if n == 1 { format!("1 {unit} ago") } else { format!("{n} {unit}s ago") };
    match secs {
        ..60 => "just now".into(),
        60..3600 => plural(secs / 60, "minute"),
        3600..86_400 => plural(secs / 3600, "hour"),
        86_400..172_800 => "yesterday".into(),
        172_800..2_592_000 => plural(secs / 86_400, "day"),
        _ => format!("on {}", rfc3339(ts).get(..10).unwrap_or_default()),
    }
}

/// A few words for a user agent: browser and system.
pub fn device(ua: Option<&str>) -> String {
    let Some(ua) = ua else { return "Unknown device".into() };
    let browser = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
        .into_iter()
        .find(|(k, _)| ua.contains(k))
        .map(|(_, v)| v);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| v);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.into(),
        (None, Some(s)) => s.into(),
        (None, None) => ua.chars().take(60).collect(),
    }
}

/// A scope in words (the consent page, the account page's connected apps).
pub fn describe_scope(s: &str) -> Option<&'static str> {
    match s {
        "openid" => Some("Know who you are"),
        "profile" => Some("See your name"),
        "email" => Some("See your email address"),
        "offline_access" => Some("Stay connected when you are not using it"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_in_words() {
        let now = 1_800_000_000;
        assert_eq!(ago(now + 5, now), "just now", "a clock ahead is not the future");
        assert_eq!(ago(now - 59, now), "just now");
        assert_eq!(ago(now - 60, now), "1 minute ago");
        assert_eq!(ago(now - 3 * 60 - 5, now), "3 minutes ago");
        assert_eq!(ago(now - 2 * 3600, now), "2 hours ago");
        assert_eq!(ago(now - 86_400 - 10, now), "yesterday");
        assert_eq!(ago(now - 5 * 86_400, now), "5 days ago");
        assert_eq!(ago(now - 90 * 86_400, now), "on 2026-10-17");
    }

    #[test]
    fn redirect_uri_rules() {
        assert_eq!(check_redirect_uri("https://app.example.com/cb", true), Ok(UriVerdict::Ok));
        assert_eq!(check_redirect_uri("http://127.0.0.1:3000/cb", true), Ok(UriVerdict::Ok));
        assert_eq!(check_redirect_uri("http://localhost/cb", true), Ok(UriVerdict::Ok));
        assert_eq!(check_redirect_uri("http://[::1]/cb", true), Ok(UriVerdict::Ok));
        assert!(check_redirect_uri("http://app.example.com/cb", true).is_err());
        assert_eq!(check_redirect_uri("http://app.example.com/cb", false), Ok(UriVerdict::InsecureDev));
        assert!(check_redirect_uri("https://app.example.com/cb#x", true).is_err());
        assert!(check_redirect_uri("/relative", true).is_err());
        assert!(check_redirect_uri("javascript:alert(1)", true).is_err());
        assert_eq!(check_redirect_uri("com.example.app:/cb", true), Ok(UriVerdict::Ok));
    }

    #[test]
    fn web_origin_rules() {
        assert!(check_web_origin("https://app.example.com").is_ok());
        assert!(check_web_origin("http://localhost:3000").is_ok());
        assert!(check_web_origin("https://app.example.com/").is_err());
        assert!(check_web_origin("https://app.example.com/path").is_err());
    }

    #[test]
    fn emails() {
        assert!(validate_email("a@b.c").is_ok());
        assert!(validate_email("ab.c").is_err());
        assert!(validate_email("a b@c").is_err());
        assert_eq!(normalize_email(" Alice@Example.COM "), "alice@example.com");
    }
}
