//! The arguments of `sesame client`: one struct per subcommand, flattened
//! from the shared client spec.

use clap::{Args, Subcommand};

use crate::clients::ClientSpec;
use crate::config::SigningAlg;

#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Register an application. Confidential clients get a secret, shown once.
    Add(AddArgs),
    /// List applications.
    List,
    /// Show one application.
    Show { client_id: String },
    /// Change an application; list flags replace the whole list.
    Update(UpdateArgs),
    /// Delete an application.
    Remove { client_id: String },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    pub spec: ClientSpec,
    /// Only its own tokens (the default).
    #[arg(long)]
    pub no_introspect_any: bool,
    /// Only when the scope asks for them (the default).
    #[arg(long)]
    pub no_rbac_claims: bool,
    /// Sign-ins need a second factor only as `[mfa] policy` and roles say (the default).
    #[arg(long)]
    pub no_require_mfa: bool,
    /// DPoP proofs are optional (the default).
    #[arg(long)]
    pub no_require_dpop: bool,
    /// No embedded login (the default).
    #[arg(long)]
    pub no_cross_origin_authentication: bool,
    /// Management API permissions (read:users, write:users, …) this client
    /// gets through client_credentials with audience {issuer}/api/v1 (implies
    /// the client_credentials grant).
    #[arg(long = "management-scope", value_name = "P", num_args = 1..)]
    pub management_scope: Vec<String>,
    /// Keep an existing secret (read from stdin) instead of generating one.
    #[arg(long)]
    pub secret_stdin: bool,
}

/// Flags `update` changes beyond the lists.
#[derive(Args, Debug, Default)]
pub struct MoreArgs {
    /// Receives a signed logout token when a session this client used ends.
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// Loaded in a hidden iframe, with `iss` and `sid`, when a session this client used ends.
    #[arg(long, value_name = "URI")]
    pub frontchannel_logout_uri: Option<String>,
    /// Seconds (0-60) a rotated refresh token may be presented again and get the same
    /// successor; default: tokens.refresh_reuse_grace_secs (0).
    #[arg(long, value_name = "SECS")]
    pub refresh_leeway: Option<u64>,
    /// May introspect tokens issued to other clients (an API gateway).
    #[arg(long, overrides_with = "no_introspect_any")]
    pub introspect_any: bool,
    /// Only its own tokens (the default).
    #[arg(long)]
    pub no_introspect_any: bool,
    /// Management API permissions (read:users, write:users, …) this client
    /// gets through client_credentials with audience {issuer}/api/v1 (implies
    /// the client_credentials grant; adds to what it had).
    #[arg(long = "management-scope", value_name = "P", num_args = 1..)]
    pub management_scope: Vec<String>,
    /// Tokens carry the user's `roles` and `groups` even when the scope does not ask.
    #[arg(long, overrides_with = "no_rbac_claims")]
    pub rbac_claims: bool,
    /// Only when the scope asks for them (the default).
    #[arg(long)]
    pub no_rbac_claims: bool,
    /// Every sign-in to this client needs a second factor.
    #[arg(long, overrides_with = "no_require_mfa")]
    pub require_mfa: bool,
    /// Sign-ins need a second factor only as `[mfa] policy` and roles say.
    #[arg(long)]
    pub no_require_mfa: bool,
    /// Every token request needs a DPoP proof (RFC 9449).
    #[arg(long, overrides_with = "no_require_dpop")]
    pub require_dpop: bool,
    /// DPoP proofs are optional.
    #[arg(long)]
    pub no_require_dpop: bool,
    /// auth0-js embedded login from the client's web origins.
    #[arg(long, overrides_with = "no_cross_origin_authentication")]
    pub cross_origin_authentication: bool,
    /// No embedded login.
    #[arg(long)]
    pub no_cross_origin_authentication: bool,
    /// The application page that calls auth0-js `crossOriginVerification()`; "" clears it.
    #[arg(long, value_name = "URL")]
    pub cross_origin_loc: Option<String>,
}

#[derive(Args, Debug, Default)]
pub struct ListArgs {
    #[arg(long = "redirect-uri", value_name = "URI", num_args = 1..)]
    pub redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri", value_name = "URI", num_args = 1..)]
    pub post_logout_redirect_uris: Vec<String>,
    #[arg(long = "web-origin", value_name = "ORIGIN", num_args = 1..)]
    pub web_origins: Vec<String>,
    #[arg(long = "grant-type", value_name = "TYPE", num_args = 1..)]
    pub grant_types: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub client_id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, overrides_with = "no_first_party")]
    pub first_party: bool,
    #[arg(long)]
    pub no_first_party: bool,
    #[command(flatten)]
    pub lists: ListArgs,
    #[arg(long, value_name = "ALG")]
    pub id_token_alg: Option<SigningAlg>,
    #[arg(long, value_name = "METHOD")]
    pub token_endpoint_auth_method: Option<String>,
    /// Replace the secret with a new generated one (shown once).
    #[arg(long)]
    pub rotate_secret: bool,
    /// Replace the secret with one read from stdin.
    #[arg(long, conflicts_with = "rotate_secret")]
    pub secret_stdin: bool,
    #[command(flatten)]
    pub more: MoreArgs,
    #[command(flatten)]
    pub access: AccessArgs,
}

/// Per-application access and the APIs a client may call.
#[derive(Args, Debug, Default)]
pub struct AccessArgs {
    /// Only users with one of these roles (direct or through a group) may use it.
    #[arg(long = "require-role", value_name = "ROLE", num_args = 1..)]
    pub require_roles: Vec<String>,
    /// Only users in one of these groups may use it.
    #[arg(long = "require-group", value_name = "GROUP", num_args = 1..)]
    pub require_groups: Vec<String>,
    /// Everyone may use it again.
    #[arg(long, conflicts_with_all = ["require_roles", "require_groups"])]
    pub no_access_restriction: bool,
    /// An API whose `--permission`s the client may ask for (added to what it had).
    #[arg(long, value_name = "URL", requires = "permissions")]
    pub api: Option<String>,
    #[arg(long = "permission", value_name = "P", num_args = 1.., requires = "api")]
    pub permissions: Vec<String>,
    /// The client may no longer call this API.
    #[arg(long, value_name = "URL")]
    pub remove_api: Option<String>,
    /// The API access tokens are for when a request names none.
    #[arg(long, value_name = "URL")]
    pub default_audience: Option<String>,
    /// Access tokens are for the client itself again when a request names no API.
    #[arg(long, conflicts_with = "default_audience")]
    pub no_default_audience: bool,
}
