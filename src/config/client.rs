//! A client's settings, declared once: the `[[clients]]` entries of the config
//! file, the flags of `sesame client add`, and the body of
//! `POST /api/v1/clients` are this type; `clients::validate` checks it and
//! makes the stored record. A new setting is a field here and its check there.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Secret, SigningAlg};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSpec {
    /// Client id (1-128 of A-Z a-z 0-9 - _ . ~); generated when absent.
    #[arg(long = "id")]
    pub client_id: Option<String>,
    /// What users see on the consent page and the account page.
    #[arg(long)]
    pub name: String,
    /// A public client (SPA, mobile app): no secret, PKCE required.
    #[arg(long)]
    pub public: bool,
    /// Skip the consent page for this client.
    #[arg(long)]
    pub first_party: bool,
    /// Compared byte for byte with the request's.
    #[arg(long = "redirect-uri", value_name = "URI", num_args = 1..)]
    pub redirect_uris: Vec<String>,
    /// Where `/logout` may send the browser afterwards (`post_logout_redirect_uri`).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI", num_args = 1..)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Origins answered by CORS and allowed for `response_mode=web_message`.
    #[arg(long = "web-origin", value_name = "ORIGIN", num_args = 1..)]
    pub web_origins: Vec<String>,
    /// Default: authorization_code and refresh_token.
    #[arg(long = "grant-type", value_name = "TYPE", num_args = 1..)]
    pub grant_types: Vec<String>,
    /// RS256, ES256 or EdDSA; default: `keys.default_id_token_alg` (RS256).
    #[arg(long, value_name = "ALG")]
    #[schema(value_type = Option<String>)]
    pub id_token_alg: Option<SigningAlg>,
    /// client_secret_basic (default for confidential clients), client_secret_post, or none (public).
    #[arg(long, value_name = "METHOD")]
    pub token_endpoint_auth_method: Option<String>,
    /// Receives a signed logout token when a session this client used ends.
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// Loaded in a hidden iframe, with `iss` and `sid`, when a session this client used ends.
    #[arg(long, value_name = "URI")]
    pub frontchannel_logout_uri: Option<String>,
    /// Seconds (0-60) a rotated refresh token may be presented again and get the same
    /// successor; default: tokens.refresh_reuse_grace_secs (0).
    #[arg(long = "refresh-leeway", value_name = "SECS")]
    pub refresh_leeway_secs: Option<u64>,
    /// May introspect tokens issued to other clients (an API gateway).
    #[arg(long, overrides_with = "no_introspect_any")]
    pub introspect_any: bool,
    /// Only users with one of these roles (direct or through a group)…
    #[arg(long = "require-role", value_name = "ROLE", num_args = 1..)]
    pub require_roles: Vec<String>,
    /// …or in one of these groups may use this client; both empty: everyone.
    #[arg(long = "require-group", value_name = "GROUP", num_args = 1..)]
    pub require_groups: Vec<String>,
    /// The API access tokens are for when a request names none.
    #[arg(long, value_name = "URL")]
    pub default_audience: Option<String>,
    /// Tokens carry the user's `roles` and `groups` even when the scope does not ask.
    #[arg(long, overrides_with = "no_rbac_claims")]
    pub rbac_claims: bool,
    /// Every sign-in to this client needs a second factor (`[mfa] policy` aside).
    #[arg(long, overrides_with = "no_require_mfa")]
    pub require_mfa: bool,
    /// Every token request needs a DPoP proof (RFC 9449): tokens bound to a key
    /// the browser holds, useless to whoever copies them.
    #[arg(long, overrides_with = "no_require_dpop")]
    pub require_dpop: bool,
    /// auth0-js embedded login (`/co/authenticate`, `/dbconnections/*`) from
    /// the client's web origins: its pages collect passwords themselves.
    #[arg(long, overrides_with = "no_cross_origin_authentication")]
    pub cross_origin_authentication: bool,
    /// The page of the application that calls auth0-js `crossOriginVerification()`
    /// (embedded login when the browser blocks third-party cookies).
    #[arg(long, value_name = "URL")]
    pub cross_origin_loc: Option<String>,
}

/// The first problem with a `[[clients]]` entry, naming its key (figment adds
/// which entry, and from where).
fn describe(e: figment::Error) -> String {
    let Some(e) = e.into_iter().next() else { return "invalid client".into() };
    let key = e.path.join(".");
    match &e.kind {
        figment::error::Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
        kind if key.is_empty() => kind.to_string(),
        kind => format!("{key}: {kind}"),
    }
}

/// A client declared in the config file: its settings and its secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "figment::value::Dict")]
pub struct StaticClient {
    /// Plain secret for confidential clients; prefer `secret_sha256` in files kept in Git.
    pub secret: Secret,
    /// Hex SHA-256 of the secret, for configs that must not hold the secret itself.
    pub secret_sha256: String,
    #[serde(flatten)]
    pub spec: ClientSpec,
}

impl TryFrom<figment::value::Dict> for StaticClient {
    type Error = String;

    fn try_from(mut d: figment::value::Dict) -> Result<StaticClient, String> {
        let text = |v: Option<figment::value::Value>, key: &str| match v {
            None => Ok(String::new()),
            Some(v) => v.into_string().ok_or_else(|| format!("`{key}` must be a string")),
        };
        let secret = Secret::new(text(d.remove("secret"), "secret")?);
        let secret_sha256 = text(d.remove("secret_sha256"), "secret_sha256")?;
        let rest = figment::value::Value::from(d);
        let spec = rest.deserialize::<ClientSpec>().map_err(describe)?;
        Ok(StaticClient { secret, secret_sha256, spec })
    }
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::{Format, Toml};

    use super::*;

    #[derive(Deserialize)]
    struct File {
        clients: Vec<StaticClient>,
    }

    fn load(toml: &str) -> Result<Vec<StaticClient>, String> {
        Figment::from(Toml::string(toml)).extract::<File>().map(|f| f.clients).map_err(|e| e.to_string())
    }

    #[test]
    fn a_config_client_is_its_secret_and_the_spec() {
        let c = load(
            "[[clients]]\nclient_id = \"dash\"\nsecret = \"s3cret\"\nredirect_uris = [\"https://d.example.com/cb\"]\nid_token_alg = \"ES256\"\nrefresh_leeway_secs = 5",
        );
        let c = c.as_ref().map(|c| &c[0]);
        assert_eq!(c.map(|c| c.spec.client_id.as_deref()), Ok(Some("dash")));
        assert_eq!(c.map(|c| c.secret.expose()), Ok("s3cret"));
        assert_eq!(c.map(|c| c.spec.id_token_alg), Ok(Some(SigningAlg::ES256)));
        assert_eq!(c.map(|c| c.spec.refresh_leeway_secs), Ok(Some(5)));
    }

    #[test]
    fn unknown_and_mistyped_keys_are_refused() {
        let e = load("[[clients]]\nclient_id = \"dash\"\nredirect_uri = \"https://d.example.com/cb\"");
        assert!(e.as_ref().is_err_and(|e| e.contains("unknown key `redirect_uri`")), "{e:?}");
        assert!(load("[[clients]]\nclient_id = \"dash\"\nsecret = 5").is_err());
        let e = load("[[clients]]\nclient_id = \"dash\"\npublic = \"yes\"");
        assert!(e.as_ref().is_err_and(|e| e.contains("public: invalid type")), "{e:?}");
    }

    #[test]
    fn check_config_never_shows_the_secret() {
        let c = load("[[clients]]\nclient_id = \"dash\"\nsecret = \"s3cret\"");
        let shown = c.map(|c| serde_json::to_string(&c[0]).unwrap_or_default()).unwrap_or_default();
        assert!(shown.contains("\"client_id\":\"dash\"") && !shown.contains("s3cret"), "{shown}");
    }
}
