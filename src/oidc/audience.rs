//! Which API an access token is for, and what it carries there: the API's
//! `aud`, lifetime and algorithm; `scope` with the requested permissions the
//! user holds; `permissions` with all of them; `roles` / `groups` when asked
//! for. A user's permissions are what their roles carry on the API, within
//! what the client was granted; a restricted client admits only its users.
//! Requests that name no API and ask for no roles cost no query here.

use crate::access;
use crate::config::SigningAlg;
use crate::domain::{Api, Client};
use crate::error::{ErrorCode, Failure, Internal, OAuthError};
use crate::state::AppState;
use crate::storage::{apis, roles};

use super::request::SUPPORTED_SCOPES;

/// An API a client may call, with the permissions it was granted there.
pub struct Target {
    pub api: Api,
    pub client_grant: Vec<String>,
}

/// The requested API, else the client's default; `invalid_target` for one
/// that does not exist, `not_granted` for one the client may not call.
pub async fn resolve(
    state: &AppState,
    client: &Client,
    asked: Option<&str>,
    not_granted: ErrorCode,
) -> Result<Option<Target>, OAuthError> {
    let Some(id) = asked.or(client.default_audience.as_deref()) else { return Ok(None) };
    let api = apis::find(&state.db, id)
        .await
        .map_err(OAuthError::internal)?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidTarget, format!("no API `{id}` is registered")))?;
    let grant = apis::client_grant(&state.db, &client.client_id, id)
        .await
        .map_err(OAuthError::internal)?
        .ok_or_else(|| OAuthError::new(not_granted, format!("this client may not call `{id}`")))?;
    Ok(Some(Target { api, client_grant: grant }))
}

/// What an access (and ID) token carries beyond the user and the client.
#[derive(Debug, Default, Clone)]
pub struct Entitled {
    /// The API; None: the token is for the client itself.
    pub aud: Option<String>,
    pub ttl: Option<u64>,
    pub alg: Option<SigningAlg>,
    /// The granted scope: OpenID Connect scopes plus the requested permissions held.
    pub scope: Vec<String>,
    /// Every permission held on the API (the `permissions` claim).
    pub permissions: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
}

impl Entitled {
    fn of_target(t: Option<&Target>) -> Entitled {
        Entitled {
            aud: t.map(|t| t.api.identifier.clone()),
            ttl: t.and_then(|t| t.api.token_ttl_secs),
            alg: t.and_then(|t| t.api.alg),
            ..Default::default()
        }
    }
}

/// A user's entitlements for `scopes` (as the grant asked for them) on
/// `audience`; refused when a restricted client no longer admits the user.
pub async fn entitle(
    state: &AppState,
    client: &Client,
    user_id: &str,
    audience: Option<&str>,
    scopes: &[String],
) -> Result<Entitled, Failure> {
    let oidc: Vec<String> = scopes.iter().filter(|s| SUPPORTED_SCOPES.contains(&s.as_str())).cloned().collect();
    let wants = |s: &str| client.rbac_claims || scopes.iter().any(|x| x == s);
    if audience.is_none() && !client.is_restricted() && !wants("roles") && !wants("groups") {
        return Ok(Entitled { scope: oidc, ..Default::default() });
    }
    let target = resolve(state, client, audience, ErrorCode::InvalidTarget).await?;
    let held = roles::access_of(&state.db, user_id, target.as_ref().map(|t| t.api.identifier.as_str()))
        .await
        .map_err(Internal)?;
    if !access::has_access(client, &held) {
        return Err(OAuthError::invalid_grant("the user no longer has access to this application").into());
    }
    let mut e = Entitled::of_target(target.as_ref());
    let mut scope = oidc;
    if let Some(t) = &target {
        let perms = access::token_permissions(&held, &t.client_grant);
        scope.extend(scopes.iter().filter(|s| perms.contains(s)).cloned());
        e.permissions = Some(perms);
    }
    e.scope = scope;
    e.roles = wants("roles").then(|| held.roles.clone());
    e.groups = wants("groups").then(|| held.groups.clone());
    Ok(e)
}

/// client_credentials: the requested permissions within the client's grant
/// (all of the grant when none are named).
pub fn for_client(t: Option<&Target>, requested: &[String]) -> Entitled {
    let mut e = Entitled::of_target(t);
    if let Some(t) = t {
        let perms: Vec<String> = if requested.is_empty() {
            t.client_grant.clone()
        } else {
            requested.iter().filter(|p| t.client_grant.contains(p)).cloned().collect()
        };
        e.scope = perms.clone();
        e.permissions = Some(perms);
    }
    e
}
