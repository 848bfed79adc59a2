//! Applications: register (a confidential client's secret returned once),
//! change, rotate the secret, remove. Clients declared in the config file
//! are read-only here: the file is where they change.

use serde::Deserialize;
use utoipa::ToSchema;

use super::directory::ApiPermissions;
use super::{Admin, Manage, OpError, Result};
use crate::access::{self, ClientAccessChange};
use crate::clients::{self, ClientSpec};
use crate::crypto::random;
use crate::domain::Client;
use crate::storage::{apis, clients as store};

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub web_origins: Option<Vec<String>>,
    /// Per-application access; empty lists admit everyone.
    pub require_roles: Option<Vec<String>>,
    pub require_groups: Option<Vec<String>>,
    /// An empty string clears it.
    pub default_audience: Option<String>,
    /// Permissions of one API the client may ask for (added to what it had).
    pub grant: Option<ApiPermissions>,
    /// The client may no longer call this API.
    pub remove_api: Option<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`.
    pub grant_types: Option<Vec<String>>,
    /// The ID token's signing algorithm (RS256, ES256, EdDSA); an empty string: the default.
    pub id_token_alg: Option<String>,
    /// Tokens carry the user's roles and groups even when the scope does not ask.
    pub rbac_claims: Option<bool>,
    /// Every sign-in to this client needs a second factor.
    pub require_mfa: Option<bool>,
    /// Every token request needs a DPoP proof.
    pub require_dpop: Option<bool>,
    /// The page that calls auth0-js `crossOriginVerification()`; an empty string clears it.
    pub cross_origin_loc: Option<String>,
    /// auth0-js embedded login from the client's web origins.
    pub cross_origin_authentication: Option<bool>,
}

/// Why a config-file client cannot change here.
pub const FROM_CONFIG: &str = "this client is declared in the config file; change it there";

impl Manage<'_> {
    pub async fn find_client(&self, id: &str) -> Result<Client> {
        store::find(self.db, id).await?.ok_or_else(|| OpError::NotFound(format!("no client `{id}`")))
    }

    /// Registers a client; a confidential one's secret is returned (only
    /// here: it is stored as a hash). The settings that make Sesame call out,
    /// read other clients' tokens or relax refresh-token reuse detection are
    /// the operator's (`sesame client`, the config file).
    pub async fn create_client(&self, who: &Admin, mut spec: ClientSpec) -> Result<(Client, Option<String>)> {
        who.need("write:clients")?;
        let operators = spec.introspect_any
            || spec.backchannel_logout_uri.is_some()
            || spec.frontchannel_logout_uri.is_some()
            || spec.refresh_leeway_secs.is_some();
        if operators {
            return Err(OpError::Invalid(
                "introspect_any, the logout URIs and refresh_leeway_secs are set by the operator (`sesame client`, the config file)".into(),
            ));
        }
        if spec.client_id.as_deref().is_some_and(|id| id.starts_with("sesame-")) {
            return Err(OpError::Invalid("client ids starting with `sesame-` are Sesame's own".into()));
        }
        let access = clients::take_access(&mut spec);
        let now = self.clock.now();
        let mut c = clients::validate(spec, self.https(), now).map_err(OpError::Invalid)?.client;
        let secret = (!c.public).then(clients::new_secret);
        c.secret_hash = secret.as_deref().map(random::sha256_hex);
        clients::register(self.db, &mut c, access, now).await?;
        Ok((c, secret))
    }

    /// Changes `old` (as read by the caller, who may have compared its ETag).
    pub async fn update_client(&self, who: &Admin, old: Client, p: ClientPatch) -> Result<Client> {
        who.need("write:clients")?;
        let id = old.client_id.clone();
        if p.grant.is_some() || p.remove_api.is_some() {
            self.not_self(who, &id)?;
        }
        if let Some(g) = &p.grant {
            self.within(who, &g.api, &g.permissions)?;
        }
        if p.redirect_uris.is_some()
            || p.web_origins.is_some()
            || p.post_logout_redirect_uris.is_some()
            || p.remove_api.is_some()
        {
            self.client_within(who, &id).await?;
        }
        if old.source == "config" {
            return Err(OpError::Conflict(FROM_CONFIG.into()));
        }
        let now = self.clock.now();
        let mut spec = clients::spec_of(&old);
        spec.name = p.name.unwrap_or(spec.name);
        spec.redirect_uris = p.redirect_uris.unwrap_or(spec.redirect_uris);
        spec.post_logout_redirect_uris = p.post_logout_redirect_uris.unwrap_or(spec.post_logout_redirect_uris);
        spec.web_origins = p.web_origins.unwrap_or(spec.web_origins);
        spec.grant_types = p.grant_types.unwrap_or(spec.grant_types);
        if let Some(a) = p.id_token_alg {
            spec.id_token_alg = match a.trim() {
                "" => None,
                a => Some(a.parse().map_err(OpError::Invalid)?),
            };
        }
        spec.rbac_claims = p.rbac_claims.unwrap_or(spec.rbac_claims);
        spec.require_mfa = p.require_mfa.unwrap_or(spec.require_mfa);
        spec.require_dpop = p.require_dpop.unwrap_or(spec.require_dpop);
        spec.cross_origin_loc = p.cross_origin_loc.or(spec.cross_origin_loc);
        spec.cross_origin_authentication = p.cross_origin_authentication.unwrap_or(spec.cross_origin_authentication);
        let v = clients::validate(spec, self.https(), now).map_err(OpError::Invalid)?;
        let mut c = Client { secret_hash: old.secret_hash.clone(), created_at: old.created_at, ..v.client };
        store::update(self.db, &c).await?;
        let change = ClientAccessChange {
            require_roles: p.require_roles,
            require_groups: p.require_groups,
            default_audience: p.default_audience.map(|a| Some(a).filter(|a| !a.is_empty())),
            grant: p.grant.map(|g| (g.api, g.permissions)),
            remove_api: p.remove_api,
        };
        access::change_client_access(self.db, &mut c, change, now).await?;
        Ok(c)
    }

    /// A new secret for a confidential client, returned once; the old one
    /// stops working at once.
    pub async fn rotate_secret(&self, who: &Admin, id: &str) -> Result<String> {
        who.need("write:clients")?;
        let mut c = self.find_client(id).await?;
        if c.source == "config" {
            return Err(OpError::Conflict(FROM_CONFIG.into()));
        }
        if c.public {
            return Err(OpError::Conflict("a public client has no secret".into()));
        }
        self.client_within(who, id).await?;
        let secret = clients::new_secret();
        c.secret_hash = Some(random::sha256_hex(&secret));
        c.updated_at = self.clock.now();
        store::update(self.db, &c).await?;
        Ok(secret)
    }

    pub async fn delete_client(&self, who: &Admin, c: &Client) -> Result<()> {
        who.need("write:clients")?;
        self.client_within(who, &c.client_id).await?;
        if c.source == "config" {
            return Err(OpError::Conflict("this client is declared in the config file; remove it there".into()));
        }
        // Grants first: a client registered again under this id between the
        // two statements starts with none, never with the old client's.
        apis::delete_client_grants(self.db, &c.client_id).await?;
        store::delete(self.db, &c.client_id).await?;
        Ok(())
    }
}
