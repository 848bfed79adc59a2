//! Client registration rules, shared by `sesame client` and static clients in
//! the config file, so both paths accept and refuse exactly the same things.

use crate::access::{AccessError, ClientAccessChange};
pub use crate::config::ClientSpec;
use crate::config::StaticClient;
use crate::crypto::random;
use crate::domain::{self, AUTH_METHODS, Client, GRANT_TYPES, UriVerdict};
use crate::storage::{Db, clients};

/// A validated client plus anything the operator should be warned about.
pub struct Validated {
    pub client: Client,
    pub warnings: Vec<String>,
}

pub fn valid_client_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// Checks `spec` and builds the client record (without a secret).
pub fn validate(spec: ClientSpec, issuer_is_https: bool, now: i64) -> Result<Validated, String> {
    let mut warnings = Vec::new();
    let name = spec.name.trim().to_string();
    if name.is_empty() {
        return Err("a client needs a name".into());
    }
    let client_id = match spec.client_id {
        Some(id) if valid_client_id(&id) => id,
        Some(id) => {
            return Err(format!("client id `{id}` must be 1-128 characters of A-Z a-z 0-9 - _ . ~"));
        }
        None => random::token(16),
    };
    let grant_types = if spec.grant_types.is_empty() {
        vec!["authorization_code".to_string(), "refresh_token".to_string()]
    } else {
        dedup(spec.grant_types)
    };
    if let Some(g) = grant_types.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
        return Err(format!("unknown grant type `{g}` (expected one of {})", GRANT_TYPES.join(", ")));
    }
    if spec.public && grant_types.iter().any(|g| g == "client_credentials") {
        return Err("client_credentials needs a confidential client (it has no user to act for)".into());
    }
    let method = match (spec.token_endpoint_auth_method, spec.public) {
        (None, true) => "none".to_string(),
        (None, false) => "client_secret_basic".to_string(),
        (Some(m), _) if !AUTH_METHODS.contains(&m.as_str()) => {
            return Err(format!(
                "unknown token endpoint auth method `{m}` (expected one of {})",
                AUTH_METHODS.join(", ")
            ));
        }
        (Some(m), true) if m != "none" => {
            return Err("a public client has no secret: its auth method is `none`".into());
        }
        (Some(m), false) if m == "none" => {
            return Err("a confidential client authenticates with its secret; use --public for `none`".into());
        }
        (Some(m), _) => m,
    };
    let needs_redirect = grant_types.iter().any(|g| g == "authorization_code" || g == "implicit");
    if needs_redirect && spec.redirect_uris.is_empty() {
        return Err("at least one --redirect-uri is needed for the authorization_code and implicit grants".into());
    }
    let redirect_uris = dedup(spec.redirect_uris);
    let post_logout_redirect_uris = dedup(spec.post_logout_redirect_uris);
    for uri in redirect_uris.iter().chain(&post_logout_redirect_uris) {
        if domain::check_redirect_uri(uri, issuer_is_https)? == UriVerdict::InsecureDev {
            warnings.push(format!("{uri} uses plain http; accepted only because the issuer is plain http"));
        }
    }
    for uri in spec.backchannel_logout_uri.iter().chain(&spec.frontchannel_logout_uri) {
        if domain::check_redirect_uri(uri, issuer_is_https)? == UriVerdict::InsecureDev {
            warnings.push(format!("{uri} uses plain http; accepted only because the issuer is plain http"));
        }
    }
    if let Some(l) = spec.refresh_leeway_secs
        && l > domain::MAX_REFRESH_LEEWAY_SECS
    {
        return Err(format!(
            "refresh leeway {l} s is too long: at most {} s (0 turns it off)",
            domain::MAX_REFRESH_LEEWAY_SECS
        ));
    }
    let web_origins = dedup(spec.web_origins);
    for o in &web_origins {
        domain::check_web_origin(o)?;
    }
    // auth0-js's verification page: on one of the client's web origins, which
    // is where its verifier was stored and whom the answer is posted to.
    let cross_origin_loc = spec.cross_origin_loc.filter(|u| !u.is_empty());
    if spec.cross_origin_authentication && web_origins.is_empty() {
        return Err("embedded login (--cross-origin-authentication) needs the pages' origins (--web-origin)".into());
    }
    if let Some(loc) = &cross_origin_loc {
        domain::check_redirect_uri(loc, issuer_is_https)?;
        let origin = url::Url::parse(loc).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        if !web_origins.contains(&origin) {
            return Err(format!("cross_origin_loc {loc} is not on one of the client's web origins (--web-origin)"));
        }
    }
    Ok(Validated {
        client: Client {
            client_id,
            name,
            secret_hash: None,
            public: spec.public,
            first_party: spec.first_party,
            redirect_uris,
            post_logout_redirect_uris,
            web_origins,
            grant_types,
            id_token_alg: spec.id_token_alg,
            token_endpoint_auth_method: method,
            backchannel_logout_uri: spec.backchannel_logout_uri,
            frontchannel_logout_uri: spec.frontchannel_logout_uri,
            refresh_leeway_secs: spec.refresh_leeway_secs,
            introspect_any: spec.introspect_any,
            require_roles: dedup(spec.require_roles),
            require_groups: dedup(spec.require_groups),
            default_audience: spec.default_audience,
            rbac_claims: spec.rbac_claims,
            require_mfa: spec.require_mfa,
            require_dpop: spec.require_dpop,
            cross_origin_authentication: spec.cross_origin_authentication,
            cross_origin_loc,
            source: "cli".into(),
            created_at: now,
            updated_at: now,
        },
        warnings,
    })
}

/// The settings a stored client was made from: what an update starts from,
/// and what the management API shows.
pub fn spec_of(c: &Client) -> ClientSpec {
    ClientSpec {
        client_id: Some(c.client_id.clone()),
        name: c.name.clone(),
        public: c.public,
        first_party: c.first_party,
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        web_origins: c.web_origins.clone(),
        grant_types: c.grant_types.clone(),
        id_token_alg: c.id_token_alg,
        token_endpoint_auth_method: Some(c.token_endpoint_auth_method.clone()),
        backchannel_logout_uri: c.backchannel_logout_uri.clone(),
        frontchannel_logout_uri: c.frontchannel_logout_uri.clone(),
        refresh_leeway_secs: c.refresh_leeway_secs,
        introspect_any: c.introspect_any,
        require_roles: c.require_roles.clone(),
        require_groups: c.require_groups.clone(),
        default_audience: c.default_audience.clone(),
        rbac_claims: c.rbac_claims,
        require_mfa: c.require_mfa,
        require_dpop: c.require_dpop,
        cross_origin_authentication: c.cross_origin_authentication,
        cross_origin_loc: c.cross_origin_loc.clone(),
    }
}

/// Takes a spec's access settings out of it: `register` applies them
/// through the access rules once the client exists.
pub fn take_access(spec: &mut ClientSpec) -> ClientAccessChange {
    ClientAccessChange {
        require_roles: Some(std::mem::take(&mut spec.require_roles)).filter(|r| !r.is_empty()),
        require_groups: Some(std::mem::take(&mut spec.require_groups)).filter(|g| !g.is_empty()),
        default_audience: spec.default_audience.take().map(Some),
        grant: None,
        remove_api: None,
    }
}

/// Stores a new client (`Conflict` when its id is taken), then its access
/// settings through the access rules (roles, groups and APIs must exist);
/// refused settings leave no client behind. Shared by `sesame client add`
/// and `POST /api/v1/clients`.
pub async fn register(db: &Db, client: &mut Client, access: ClientAccessChange, now: i64) -> Result<(), AccessError> {
    clients::insert(db, client).await?;
    if let Err(e) = crate::access::change_client_access(db, client, access, now).await {
        clients::delete(db, &client.client_id).await?;
        return Err(e);
    }
    Ok(())
}

/// The account page's client id.
pub const ACCOUNT_CLIENT_ID: &str = "sesame-account";
/// The account page's path (its only redirect URI).
pub const ACCOUNT_PAGE: &str = "/account";

/// `sesame-account`: a first-party public client whose only redirect URI is
/// the account page. Built into the binary (`ClientCache::with_builtin`): no
/// row, never listed, nothing to manage.
pub fn account_client(issuer: &str, issuer_is_https: bool, now: i64) -> Result<Client, String> {
    let spec = ClientSpec {
        client_id: Some(ACCOUNT_CLIENT_ID.into()),
        name: "Your account".into(),
        public: true,
        first_party: true,
        redirect_uris: vec![format!("{}{ACCOUNT_PAGE}", issuer.trim_end_matches('/'))],
        grant_types: vec!["authorization_code".into()],
        token_endpoint_auth_method: Some("none".into()),
        ..ClientSpec::default()
    };
    let mut client = validate(spec, issuer_is_https, now)?.client;
    client.source = "config".into();
    Ok(client)
}

/// The admin console's client id.
pub const CONSOLE_CLIENT_ID: &str = "sesame-console";
/// The admin console's path (its only redirect URI).
pub const CONSOLE_PAGE: &str = "/admin";

/// `sesame-console`: the admin console's built-in first-party client (as
/// `sesame-account` is the account page's); with `[admin] require_mfa`,
/// every sign-in to it needs a second factor.
pub fn console_client(issuer: &str, issuer_is_https: bool, require_mfa: bool, now: i64) -> Result<Client, String> {
    let spec = ClientSpec {
        client_id: Some(CONSOLE_CLIENT_ID.into()),
        name: "Admin console".into(),
        public: true,
        first_party: true,
        redirect_uris: vec![format!("{}{CONSOLE_PAGE}", issuer.trim_end_matches('/'))],
        grant_types: vec!["authorization_code".into()],
        token_endpoint_auth_method: Some("none".into()),
        require_mfa,
        ..ClientSpec::default()
    };
    let mut client = validate(spec, issuer_is_https, now)?.client;
    client.source = "config".into();
    Ok(client)
}

/// A new high-entropy client secret (256 bits).
pub fn new_secret() -> String {
    random::token(32)
}

/// Builds the database form of a client declared in the config file.
pub fn from_static(s: &StaticClient, issuer_is_https: bool, now: i64) -> Result<Validated, String> {
    let id = s.spec.client_id.clone().unwrap_or_default();
    let mut spec = s.spec.clone();
    if spec.name.is_empty() {
        spec.name = id.clone();
    }
    let mut v = validate(spec, issuer_is_https, now).map_err(|e| format!("clients `{}`: {e}", id))?;
    v.client.source = "config".into();
    let hash = match (s.secret.is_empty(), s.secret_sha256.is_empty()) {
        (false, true) => Some(random::sha256_hex(s.secret.expose())),
        (true, false) if is_sha256_hex(&s.secret_sha256) => Some(s.secret_sha256.to_ascii_lowercase()),
        (true, false) => {
            return Err(format!("clients `{}`: secret_sha256 must be 64 hex digits", id));
        }
        (false, false) => {
            return Err(format!("clients `{}`: set secret or secret_sha256, not both", id));
        }
        (true, true) => None,
    };
    match (s.spec.public, hash) {
        (true, Some(_)) => Err(format!("clients `{}`: a public client has no secret", id)),
        (false, None) => Err(format!("clients `{}`: a confidential client needs secret or secret_sha256", id)),
        (_, hash) => {
            v.client.secret_hash = hash;
            Ok(v)
        }
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClientSpec {
        ClientSpec {
            name: "App".into(),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            ..Default::default()
        }
    }

    #[test]
    fn defaults() {
        let v = validate(spec(), true, 0).map(|v| v.client);
        let c = v.as_ref().ok();
        assert_eq!(c.map(|c| c.token_endpoint_auth_method.as_str()), Some("client_secret_basic"));
        assert_eq!(c.map(|c| c.grant_types.len()), Some(2));
        let p = validate(ClientSpec { public: true, ..spec() }, true, 0).map(|v| v.client.token_endpoint_auth_method);
        assert_eq!(p.ok().as_deref(), Some("none"));
    }

    #[test]
    fn refusals() {
        assert!(validate(ClientSpec { redirect_uris: vec![], ..spec() }, true, 0).is_err());
        assert!(validate(ClientSpec { grant_types: vec!["password".into()], ..spec() }, true, 0).is_err());
        let cc = ClientSpec { public: true, grant_types: vec!["client_credentials".into()], ..spec() };
        assert!(validate(cc, true, 0).is_err());
        assert!(validate(ClientSpec { client_id: Some("a b".into()), ..spec() }, true, 0).is_err());
        let http = ClientSpec { redirect_uris: vec!["http://app.example.com/cb".into()], ..spec() };
        assert!(validate(http.clone(), true, 0).is_err());
        assert_eq!(validate(http, false, 0).map(|v| v.warnings.len()).ok(), Some(1));
    }
}
