//! `[[providers]]`: upstream identity providers users may sign in with.
//! Only the declaration and its checks live here; what a kind means (its
//! endpoints, scopes and claims) is the federation module's business.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use super::Secret;

/// What speaks at the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenID Connect issuer (Okta, Keycloak, Auth0, another Sesame…).
    Oidc,
    Google,
    Microsoft,
    Gitlab,
    Apple,
    Github,
    Facebook,
    Spotify,
    Discord,
    Twitter,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 10] = [
        ProviderKind::Oidc,
        ProviderKind::Google,
        ProviderKind::Microsoft,
        ProviderKind::Gitlab,
        ProviderKind::Apple,
        ProviderKind::Github,
        ProviderKind::Facebook,
        ProviderKind::Spotify,
        ProviderKind::Discord,
        ProviderKind::Twitter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oidc",
            ProviderKind::Google => "google",
            ProviderKind::Microsoft => "microsoft",
            ProviderKind::Gitlab => "gitlab",
            ProviderKind::Apple => "apple",
            ProviderKind::Github => "github",
            ProviderKind::Facebook => "facebook",
            ProviderKind::Spotify => "spotify",
            ProviderKind::Discord => "discord",
            ProviderKind::Twitter => "twitter",
        }
    }

    /// Speaks OpenID Connect (ID tokens); the others are OAuth 2.0 plus a profile call.
    pub fn is_oidc(self) -> bool {
        matches!(
            self,
            ProviderKind::Oidc
                | ProviderKind::Google
                | ProviderKind::Microsoft
                | ProviderKind::Gitlab
                | ProviderKind::Apple
        )
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where each profile claim is read from: a claim name of the ID token or
/// profile response, with dots into nested objects and numbers into arrays
/// (`data.id`, `images.0.url`). Unset keys keep the kind's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    pub subject: Option<String>,
    pub email: Option<String>,
    /// A claim that is `true` (or `"true"`) when the provider verified the
    /// email; unset on a kind without one: emails count as unverified.
    pub email_verified: Option<String>,
    pub name: Option<String>,
    pub picture: Option<String>,
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// In URLs (`/federation/{id}/callback`) and in `connection=`.
    pub id: String,
    /// The button's label ("Continue with {name}"); the kind's name when empty.
    pub name: String,
    pub kind: ProviderKind,
    /// OpenID Connect issuer; the presets know their own.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// A file holding the client secret (container secrets).
    pub client_secret_file: String,
    /// An environment variable holding the client secret.
    pub client_secret_env: String,
    /// Scopes asked for; empty means the kind's defaults.
    pub scopes: Vec<String>,
    pub enabled: bool,
    /// A first login through this provider may create an account.
    pub create_users: bool,
    /// Only these email domains (Google: also the `hd` claim; Microsoft: tenant ids) may sign in.
    pub allowed_domains: Vec<String>,
    pub claims: ClaimMapping,
    /// An icon under `static/providers/` (e.g. `corp.svg`) or an https URL;
    /// the kind's icon when empty.
    pub icon: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    /// GitHub: where the verified addresses are listed.
    pub emails_endpoint: Option<String>,
    /// `query` or `form_post` (Apple's default).
    pub response_mode: Option<String>,
    /// Seconds each call to the provider may take.
    pub timeout_secs: u64,
    /// Sign in with Apple: the team id, key id and `.p8` key that mint the client secret.
    pub team_id: String,
    pub key_id: String,
    pub private_key_file: String,
    /// Count the provider's own second factor (its `amr` shows `mfa`, `otp`,
    /// `hwk`, …) as one here, so its users are not asked again.
    pub trust_upstream_mfa: bool,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            id: String::new(),
            name: String::new(),
            kind: ProviderKind::Oidc,
            issuer: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: String::new(),
            client_secret_env: String::new(),
            scopes: Vec::new(),
            enabled: true,
            create_users: true,
            allowed_domains: Vec::new(),
            claims: ClaimMapping::default(),
            icon: String::new(),
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            jwks_uri: None,
            emails_endpoint: None,
            response_mode: None,
            timeout_secs: 10,
            team_id: String::new(),
            key_id: String::new(),
            private_key_file: String::new(),
            trust_upstream_mfa: false,
        }
    }
}

impl ProviderConfig {
    /// Resolves `client_secret_file` / `client_secret_env` into `client_secret`
    /// and checks the entry; errors name the key (`providers[i].…`).
    pub fn resolve(&mut self, i: usize) -> Result<(), String> {
        self.check(i, true)
    }

    /// Everything `resolve` checks except reading the secret from its file
    /// or variable: what every command needs, including those that never
    /// talk to a provider (`sesame client add` in a shell without the secrets).
    pub fn check_shape(&self, i: usize) -> Result<(), String> {
        self.clone().check(i, false)
    }

    fn check(&mut self, i: usize, read_secrets: bool) -> Result<(), String> {
        let at = |k: &str| format!("providers[{i}].{k}");
        if self.id.is_empty()
            || self.id.len() > 64
            || !self.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!("{}: `{}` must be 1-64 of a-z, 0-9, - and _", at("id"), self.id));
        }
        if self.client_id.is_empty() {
            return Err(format!("{} is required", at("client_id")));
        }
        let sources =
            [!self.client_secret.is_empty(), !self.client_secret_file.is_empty(), !self.client_secret_env.is_empty()];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(format!(
                "{}: set one of client_secret, client_secret_file, client_secret_env",
                at("client_secret")
            ));
        }
        if !read_secrets && (!self.client_secret_file.is_empty() || !self.client_secret_env.is_empty()) {
            // Named, read when the provider is used (`serve`, `sesame provider`).
            self.client_secret = Secret::new("(read at use)");
        }
        if read_secrets && !self.client_secret_file.is_empty() {
            let s = std::fs::read_to_string(&self.client_secret_file)
                .map_err(|e| format!("{}: cannot read {}: {e}", at("client_secret_file"), self.client_secret_file))?;
            self.client_secret = Secret::new(s.trim());
        }
        if read_secrets && !self.client_secret_env.is_empty() {
            let s = std::env::var(&self.client_secret_env)
                .map_err(|_| format!("{}: ${} is not set", at("client_secret_env"), self.client_secret_env))?;
            self.client_secret = Secret::new(s.trim());
        }
        if self.kind == ProviderKind::Apple {
            for (k, v) in
                [("team_id", &self.team_id), ("key_id", &self.key_id), ("private_key_file", &self.private_key_file)]
            {
                if v.is_empty() && self.client_secret.is_empty() {
                    return Err(format!("{} is required for Sign in with Apple", at(k)));
                }
            }
        } else if self.client_secret.is_empty() {
            return Err(format!("{} (or client_secret_file / client_secret_env) is required", at("client_secret")));
        }
        if self.kind == ProviderKind::Oidc && self.issuer.is_empty() {
            return Err(format!("{} is required for kind = \"oidc\"", at("issuer")));
        }
        if !self.issuer.is_empty() {
            check_url(&self.issuer).map_err(|e| format!("{}: {e}", at("issuer")))?;
        }
        for (k, v) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("userinfo_endpoint", &self.userinfo_endpoint),
            ("jwks_uri", &self.jwks_uri),
            ("emails_endpoint", &self.emails_endpoint),
        ] {
            if let Some(u) = v {
                check_url(u).map_err(|e| format!("{}: {e}", at(k)))?;
            }
        }
        if let Some(m) = &self.response_mode
            && m != "query"
            && m != "form_post"
        {
            return Err(format!("{}: `{m}` is neither query nor form_post", at("response_mode")));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 120 {
            return Err(format!("{} must be between 1 and 120", at("timeout_secs")));
        }
        if self.icon.contains("..") || self.icon.starts_with('/') {
            return Err(format!("{}: a file name under static/providers/ or an https URL", at("icon")));
        }
        Ok(())
    }
}

fn check_url(u: &str) -> Result<(), String> {
    let url = Url::parse(u).map_err(|e| format!("`{u}` is not a URL: {e}"))?;
    match url.scheme() {
        "https" | "http" => Ok(()),
        s => Err(format!("`{u}`: scheme `{s}` is not http(s)")),
    }
}
