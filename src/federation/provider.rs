//! The configured providers at run time: a preset merged with its
//! `[[providers]]` entry, endpoints from the config or from discovery, and
//! the upstream's signing keys (cached, refetched on an unknown `kid`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};

use crate::outbound::{Outbound, OutboundError};
use axum::response::{IntoResponse, Response};
use openidconnect::core::CoreJsonWebKeySet;
use serde_json::Value;
use tokio::sync::RwLock;

use super::apple::AppleSecret;
use super::presets::{Preset, TokenAuth, preset};
use super::{Failed, Problem};
use crate::config::{ProviderConfig, ProviderKind, Secret};

/// How long discovered metadata is trusted before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The largest discovery document, key set or profile read from a provider.
/// Signing keys are fetched at most this often on an unknown `kid`.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(5);

/// Endpoints of one provider.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub userinfo: Option<String>,
    pub jwks: Option<String>,
}

struct Cached<T> {
    value: Arc<T>,
    at: Instant,
}

pub struct Provider {
    pub cfg: ProviderConfig,
    pub preset: Preset,
    /// The button's label.
    pub name: String,
    pub scopes: Vec<String>,
    /// `{issuer}/federation/{id}/callback`.
    pub callback: String,
    /// Calls to this provider: its own timeout, no redirects followed, a
    /// bounded read (`outbound`).
    pub http: Outbound,
    apple: Option<AppleSecret>,
    endpoints: RwLock<Option<Cached<Endpoints>>>,
    jwks: RwLock<Option<Cached<CoreJsonWebKeySet>>>,
}

impl Provider {
    pub(super) fn new(cfg: ProviderConfig, callback_base: &str) -> anyhow::Result<Provider> {
        let preset = preset(cfg.kind);
        let name = if cfg.name.is_empty() { preset.name.to_string() } else { cfg.name.clone() };
        let scopes = if cfg.scopes.is_empty() {
            preset.scopes.iter().map(|s| s.to_string()).collect()
        } else {
            cfg.scopes.clone()
        };
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let http = Outbound::new(timeout)?;
        let apple = if cfg.kind == ProviderKind::Apple && cfg.client_secret.is_empty() {
            Some(AppleSecret::load(&cfg, preset.issuer.unwrap_or_default())?)
        } else {
            None
        };
        let callback = format!("{}/federation/{}/callback", callback_base.trim_end_matches('/'), cfg.id);
        Ok(Provider {
            cfg,
            preset,
            name,
            scopes,
            callback,
            http,
            apple,
            endpoints: RwLock::new(None),
            jwks: RwLock::new(None),
        })
    }

    pub fn id(&self) -> &str {
        &self.cfg.id
    }

    pub fn kind(&self) -> ProviderKind {
        self.cfg.kind
    }

    /// The configured issuer, or the preset's.
    pub fn issuer(&self) -> Option<&str> {
        if self.cfg.issuer.is_empty() { self.preset.issuer } else { Some(&self.cfg.issuer) }
    }

    pub fn token_auth(&self) -> TokenAuth {
        self.preset.token_auth
    }

    pub fn form_post(&self) -> bool {
        match self.cfg.response_mode.as_deref() {
            Some(m) => m == "form_post",
            None => self.preset.form_post,
        }
    }

    /// The client secret: configured, or (Apple) minted from the team's key.
    pub fn client_secret(&self, now: i64) -> Result<Secret, Failed> {
        match &self.apple {
            Some(a) => a
                .secret(&self.cfg.client_id, now)
                .map(Secret::new)
                .map_err(|e| Failed::new(Problem::Invalid, format!("cannot mint the Apple client secret: {e}"))),
            None => Ok(self.cfg.client_secret.clone()),
        }
    }

    /// The icon's URL under `static_base` (built-in) or as configured (https).
    pub fn icon_url(&self, static_base: &str) -> String {
        let icon = if self.cfg.icon.is_empty() { self.preset.icon } else { self.cfg.icon.as_str() };
        if icon.starts_with("https://") || icon.starts_with("data:") {
            icon.to_string()
        } else {
            format!("{static_base}/providers/{icon}")
        }
    }

    /// The endpoints: configured, else the preset's, else discovered from the issuer.
    pub async fn endpoints(&self) -> Result<Arc<Endpoints>, Failed> {
        if let Some(c) = self.endpoints.read().await.as_ref()
            && c.at.elapsed() < METADATA_TTL
        {
            return Ok(c.value.clone());
        }
        let pick = |cfg: &Option<String>, preset: Option<&'static str>| cfg.clone().or(preset.map(str::to_string));
        let mut ep = Endpoints {
            authorization: pick(&self.cfg.authorization_endpoint, self.preset.authorization_endpoint)
                .unwrap_or_default(),
            token: pick(&self.cfg.token_endpoint, self.preset.token_endpoint).unwrap_or_default(),
            userinfo: pick(&self.cfg.userinfo_endpoint, self.preset.userinfo_endpoint),
            jwks: pick(&self.cfg.jwks_uri, self.preset.jwks_uri),
        };
        let complete =
            !ep.authorization.is_empty() && !ep.token.is_empty() && (!self.kind().is_oidc() || ep.jwks.is_some());
        if !complete {
            let meta = self.discover().await?;
            let field = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
            if ep.authorization.is_empty() {
                ep.authorization = field("authorization_endpoint").unwrap_or_default();
            }
            if ep.token.is_empty() {
                ep.token = field("token_endpoint").unwrap_or_default();
            }
            ep.userinfo = ep.userinfo.or_else(|| field("userinfo_endpoint"));
            ep.jwks = ep.jwks.or_else(|| field("jwks_uri"));
            if ep.authorization.is_empty() || ep.token.is_empty() || ep.jwks.is_none() {
                return Err(Failed::new(Problem::Invalid, "discovery lacks an authorization, token or jwks endpoint"));
            }
        }
        let value = Arc::new(ep);
        *self.endpoints.write().await = Some(Cached { value: value.clone(), at: Instant::now() });
        Ok(value)
    }

    /// `{issuer}/.well-known/openid-configuration`, whose `issuer` must be the
    /// configured one (Microsoft's multi-tenant document names `{tenantid}`).
    async fn discover(&self) -> Result<Value, Failed> {
        let issuer = self.issuer().ok_or_else(|| Failed::new(Problem::Invalid, "no issuer to discover"))?;
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let meta = self.get_json(&url, None).await?;
        let said = meta.get("issuer").and_then(Value::as_str).unwrap_or("");
        let ok = said == issuer || (self.kind() == ProviderKind::Microsoft && said.contains("{tenantid}"));
        if !ok {
            return Err(Failed::new(Problem::Invalid, format!("discovery names issuer `{said}`, expected `{issuer}`")));
        }
        Ok(meta)
    }

    /// The upstream's signing keys; `refresh` fetches them again (an unknown `kid`).
    pub async fn jwks(&self, refresh: bool) -> Result<Arc<CoreJsonWebKeySet>, Failed> {
        if let Some(c) = self.jwks.read().await.as_ref()
            && (!refresh || c.at.elapsed() < JWKS_MIN_REFETCH)
            && c.at.elapsed() < METADATA_TTL
        {
            return Ok(c.value.clone());
        }
        let ep = self.endpoints().await?;
        let uri = ep.jwks.as_deref().ok_or_else(|| Failed::new(Problem::Invalid, "no jwks_uri"))?;
        let body = self.get_json(uri, None).await?;
        let set: CoreJsonWebKeySet =
            serde_json::from_value(body).map_err(|e| Failed::new(Problem::Invalid, format!("bad JWKS: {e}")))?;
        let value = Arc::new(set);
        *self.jwks.write().await = Some(Cached { value: value.clone(), at: Instant::now() });
        Ok(value)
    }

    /// `sesame provider check`: fetches discovery and keys (OpenID Connect) or
    /// reaches the endpoints (OAuth 2.0); one line either way.
    pub async fn check(&self, now: i64) -> Result<String, String> {
        let ep = self.endpoints().await.map_err(|f| f.reason)?;
        self.client_secret(now).map_err(|f| f.reason)?;
        if self.kind().is_oidc() {
            let keys = self.jwks(true).await.map_err(|f| f.reason)?;
            let n = keys.keys().len();
            if n == 0 {
                return Err(format!("{} publishes no signing keys", ep.jwks.as_deref().unwrap_or("the JWKS")));
            }
            return Ok(format!("discovery and {n} signing key(s) fetched; token endpoint {}", ep.token));
        }
        for url in [&ep.authorization, &ep.token] {
            // Any HTTP answer means the endpoint is there.
            self.http.send(self.http.get(url.as_str())).await.map_err(|e| unreachable_or_invalid(e, url).reason)?;
        }
        Ok(format!("{} and {} answer", ep.authorization, ep.token))
    }

    /// GET `url` as JSON (with a bearer token for profile calls).
    pub async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, Failed> {
        let mut req = self.http.get(url).header(header::ACCEPT, "application/json");
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        // A provider's documents are small: a bounded read, whatever it sends.
        let a = self.http.send(req).await.map_err(|e| unreachable_or_invalid(e, url))?;
        if !a.status.is_success() {
            return Err(Failed::new(Problem::Refused, format!("GET {url}: HTTP {}", a.status)));
        }
        let body = a.body;
        serde_json::from_slice(&body).map_err(|e| Failed::new(Problem::Invalid, format!("GET {url}: not JSON: {e}")))
    }
}

/// A timeout or refused connection is "unreachable"; anything else "invalid".
pub fn unreachable_or_invalid(e: OutboundError, what: &str) -> Failed {
    match e {
        OutboundError::Unreachable(e) => Failed::new(Problem::Unreachable, format!("{what}: {e}")),
        e => Failed::new(Problem::Invalid, format!("{what}: {e}")),
    }
}

const ICONS: [(&str, &str); 10] = [
    ("oidc.svg", include_str!("../../static/providers/oidc.svg")),
    ("google.svg", include_str!("../../static/providers/google.svg")),
    ("microsoft.svg", include_str!("../../static/providers/microsoft.svg")),
    ("gitlab.svg", include_str!("../../static/providers/gitlab.svg")),
    ("apple.svg", include_str!("../../static/providers/apple.svg")),
    ("github.svg", include_str!("../../static/providers/github.svg")),
    ("facebook.svg", include_str!("../../static/providers/facebook.svg")),
    ("spotify.svg", include_str!("../../static/providers/spotify.svg")),
    ("discord.svg", include_str!("../../static/providers/discord.svg")),
    ("twitter.svg", include_str!("../../static/providers/twitter.svg")),
];

/// The built-in provider icons (`static/providers/`), cached forever.
pub async fn icon(Path((_version, file)): Path<(String, String)>) -> Response {
    match ICONS.iter().find(|(n, _)| *n == file) {
        Some((_, svg)) => {
            let mut r = svg.to_string().into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            r
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
