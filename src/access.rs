//! APIs, roles, groups and per-application access: the one service layer the
//! CLI (and the management API) use, with the validation both must share, and
//! the rules the token paths apply (`has_access`, `token_permissions`).

use crate::config::SigningAlg;
use crate::domain::{Api, Client};
use crate::storage::roles::{self, Access};
use crate::storage::{Db, StorageError, apis, clients};

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

type Result<T> = std::result::Result<T, AccessError>;

fn invalid(msg: impl Into<String>) -> AccessError {
    AccessError::Invalid(msg.into())
}

pub use crate::config::MAX_API_TOKEN_TTL_SECS;

/// Role and group names: 1-64 of letters, digits and `_ - . :`.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok { Ok(()) } else { Err(invalid(format!("{kind} `{name}` must be 1-64 of A-Z a-z 0-9 _ - . :"))) }
}

/// A permission is one scope token: printable, no spaces or quotes.
fn check_permissions(perms: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in perms {
        let ok = (1..=128).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !ok {
            return Err(invalid(format!("permission `{p}` must be 1-128 printable characters without spaces")));
        }
        if ["openid", "profile", "email", "offline_access", "roles", "groups"].contains(&p.as_str()) {
            return Err(invalid(format!("`{p}` is an OpenID Connect scope, not an API permission")));
        }
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub struct ApiSpec {
    pub identifier: String,
    pub name: String,
    pub permissions: Vec<String>,
    pub token_ttl_secs: Option<u64>,
    pub alg: Option<SigningAlg>,
}

fn check_api(spec: ApiSpec, now: i64) -> Result<Api> {
    let id = spec.identifier.trim().to_string();
    if id.is_empty() || id.len() > 255 || id.chars().any(char::is_whitespace) {
        return Err(invalid("an API identifier is 1-255 characters without spaces (e.g. https://api.example.com)"));
    }
    let name = spec.name.trim().to_string();
    if name.is_empty() {
        return Err(invalid("an API needs a name"));
    }
    if let Some(t) = spec.token_ttl_secs
        && !(60..=MAX_API_TOKEN_TTL_SECS).contains(&t)
    {
        return Err(invalid(format!("token lifetime {t} s: between 60 and {MAX_API_TOKEN_TTL_SECS}")));
    }
    Ok(Api {
        identifier: id,
        name,
        permissions: check_permissions(&spec.permissions)?,
        token_ttl_secs: spec.token_ttl_secs,
        alg: spec.alg,
        created_at: now,
        updated_at: now,
    })
}

pub async fn add_api(db: &Db, spec: ApiSpec, now: i64) -> Result<Api> {
    let api = check_api(spec, now)?;
    apis::insert(db, &api).await.map_err(|e| match e {
        StorageError::Conflict(_) => invalid(format!("an API `{}` already exists", api.identifier)),
        e => e.into(),
    })?;
    Ok(api)
}

pub async fn find_api(db: &Db, identifier: &str) -> Result<Api> {
    apis::find(db, identifier).await?.ok_or_else(|| AccessError::NotFound(format!("no API `{identifier}`")))
}

/// What `api update` may change; None keeps the current value.
#[derive(Default)]
pub struct ApiChange {
    pub name: Option<String>,
    /// Replaces the list (roles and clients lose permissions no longer defined).
    pub permissions: Option<Vec<String>>,
    pub token_ttl_secs: Option<u64>,
    pub alg: Option<SigningAlg>,
}

pub async fn update_api(db: &Db, identifier: &str, c: ApiChange, issuer: &str, now: i64) -> Result<Api> {
    not_built_in(identifier, issuer)?;
    let old = find_api(db, identifier).await?;
    let spec = ApiSpec {
        identifier: old.identifier.clone(),
        name: c.name.unwrap_or(old.name),
        permissions: c.permissions.unwrap_or(old.permissions),
        token_ttl_secs: c.token_ttl_secs.or(old.token_ttl_secs),
        alg: c.alg.or(old.alg),
    };
    let api = Api { created_at: old.created_at, ..check_api(spec, now)? };
    apis::update(db, &api).await?;
    Ok(api)
}

/// Where the built-in management API is mounted, under the issuer.
pub const MANAGEMENT_PREFIX: &str = "/api/v1";

/// The permissions of the built-in management API.
pub const MANAGEMENT_PERMISSIONS: [&str; 9] = [
    "read:users",
    "write:users",
    "read:clients",
    "write:clients",
    "read:roles",
    "write:roles",
    "read:keys",
    "write:keys",
    "read:audit",
];

/// A permission of the management API in words (the console shows them).
pub fn describe_permission(p: &str) -> Option<&'static str> {
    Some(match p {
        "read:users" => "see users, their sessions, identities and factors",
        "write:users" => "block, change and delete users, end their sessions",
        "read:clients" => "see applications and APIs",
        "write:clients" => "register, change and delete applications and APIs",
        "read:roles" => "see roles and groups",
        "write:roles" => "grant roles, change roles and groups",
        "read:keys" => "see signing keys",
        "write:keys" => "rotate signing keys",
        "read:audit" => "read the audit log",
        _ => return None,
    })
}

/// `{issuer}/api/v1`, the audience of management tokens.
pub fn management_audience(issuer: &str) -> String {
    format!("{}{MANAGEMENT_PREFIX}", issuer.trim_end_matches('/'))
}

/// The management API (`{issuer}/api/v1`) exists with its permissions; it
/// cannot be changed or removed.
pub async fn ensure_management_api(db: &Db, issuer: &str, now: i64) -> Result<()> {
    let id = management_audience(issuer);
    let permissions: Vec<String> = MANAGEMENT_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    match apis::find(db, &id).await? {
        Some(a) if a.permissions == permissions => Ok(()),
        Some(a) => Ok(apis::update(db, &Api { permissions, updated_at: now, ..a }).await?),
        None => {
            let api = Api {
                identifier: id,
                name: "Sesame management API".into(),
                permissions,
                token_ttl_secs: None,
                alg: None,
                created_at: now,
                updated_at: now,
            };
            match apis::insert(db, &api).await {
                // Another replica made it first.
                Ok(()) | Err(StorageError::Conflict(_)) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// The console's built-in roles: every management permission, and reading only.
pub const ADMIN_ROLE: &str = "sesame-admin";
pub const SUPPORT_ROLE: &str = "sesame-support";

/// `sesame-admin` (every management permission) and `sesame-support` (the
/// `read:` ones) exist. Made once; an operator may change them afterwards.
pub async fn ensure_console_roles(db: &Db, issuer: &str, now: i64) -> Result<()> {
    let api = management_audience(issuer);
    for (role, reading_only) in [(ADMIN_ROLE, false), (SUPPORT_ROLE, true)] {
        if roles::role_exists(db, role).await? {
            continue;
        }
        let perms: Vec<String> = MANAGEMENT_PERMISSIONS
            .iter()
            .filter(|p| !reading_only || p.starts_with("read:"))
            .map(|p| p.to_string())
            .collect();
        if let Err(e) = add_role(db, role, Some((&api, &perms)), now).await {
            // Another replica made it first (then it gives it its permissions).
            if !roles::role_exists(db, role).await? {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn not_built_in(identifier: &str, issuer: &str) -> Result<()> {
    if identifier == management_audience(issuer) {
        return Err(invalid("the management API is built in: it cannot be changed or removed"));
    }
    Ok(())
}

/// Removes an API (not the built-in management API of `issuer`).
pub async fn remove_api(db: &Db, identifier: &str, issuer: &str) -> Result<()> {
    not_built_in(identifier, issuer)?;
    apis::delete(db, identifier).await.map_err(|e| match e {
        StorageError::NotFound => AccessError::NotFound(format!("no API `{identifier}`")),
        e => e.into(),
    })
}

/// `perms` must all be defined by `api`.
async fn defined(db: &Db, api: &str, perms: &[String]) -> Result<Vec<String>> {
    let a = find_api(db, api).await?;
    let perms = check_permissions(perms)?;
    if let Some(p) = perms.iter().find(|p| !a.permissions.contains(p)) {
        return Err(invalid(format!("API `{api}` defines no permission `{p}`")));
    }
    Ok(perms)
}

pub async fn add_role(db: &Db, name: &str, grant: Option<(&str, &[String])>, now: i64) -> Result<()> {
    check_name("role", name)?;
    let perms = match grant {
        Some((api, p)) => Some((api, defined(db, api, p).await?)),
        None => None,
    };
    roles::add_role(db, name, now).await.map_err(|e| match e {
        StorageError::Conflict(_) => invalid(format!("a role `{name}` already exists")),
        e => e.into(),
    })?;
    if let Some((api, p)) = perms {
        roles::set_permissions(db, name, api, &p, true).await?;
    }
    Ok(())
}

async fn need_role(db: &Db, name: &str) -> Result<()> {
    if roles::role_exists(db, name).await? { Ok(()) } else { Err(AccessError::NotFound(format!("no role `{name}`"))) }
}

async fn need_group(db: &Db, name: &str) -> Result<()> {
    if roles::group_exists(db, name).await? { Ok(()) } else { Err(AccessError::NotFound(format!("no group `{name}`"))) }
}

/// Adds (`grant`) or removes permissions of `api` on role `name`.
pub async fn role_permissions(db: &Db, name: &str, api: &str, perms: &[String], grant: bool) -> Result<()> {
    need_role(db, name).await?;
    let perms = if grant { defined(db, api, perms).await? } else { check_permissions(perms)? };
    roles::set_permissions(db, name, api, &perms, grant).await?;
    Ok(())
}

pub async fn remove_role(db: &Db, name: &str) -> Result<()> {
    roles::remove_role(db, name).await.map_err(|e| match e {
        StorageError::NotFound => AccessError::NotFound(format!("no role `{name}`")),
        e => e.into(),
    })
}

pub async fn user_role(db: &Db, user_id: &str, role: &str, grant: bool) -> Result<bool> {
    need_role(db, role).await?;
    Ok(roles::set_user_role(db, user_id, role, grant).await?)
}

pub async fn add_group(db: &Db, name: &str, now: i64) -> Result<()> {
    check_name("group", name)?;
    roles::add_group(db, name, now).await.map_err(|e| match e {
        StorageError::Conflict(_) => invalid(format!("a group `{name}` already exists")),
        e => e.into(),
    })
}

pub async fn group_member(db: &Db, group: &str, user_id: &str, add: bool) -> Result<bool> {
    need_group(db, group).await?;
    Ok(roles::set_member(db, group, user_id, add).await?)
}

pub async fn group_role(db: &Db, group: &str, role: &str, grant: bool) -> Result<bool> {
    need_group(db, group).await?;
    need_role(db, role).await?;
    Ok(roles::set_group_role(db, group, role, grant).await?)
}

pub async fn remove_group(db: &Db, name: &str) -> Result<()> {
    roles::remove_group(db, name).await.map_err(|e| match e {
        StorageError::NotFound => AccessError::NotFound(format!("no group `{name}`")),
        e => e.into(),
    })
}

/// What `client update` may change about access; None keeps the current value.
#[derive(Default)]
pub struct ClientAccessChange {
    pub require_roles: Option<Vec<String>>,
    pub require_groups: Option<Vec<String>>,
    /// Some(None) clears the default audience.
    pub default_audience: Option<Option<String>>,
    /// Permissions of one API the client may ask for (added to what it had).
    pub grant: Option<(String, Vec<String>)>,
    pub remove_api: Option<String>,
}

pub async fn change_client_access(db: &Db, client: &mut Client, c: ClientAccessChange, now: i64) -> Result<()> {
    if let Some(rs) = &c.require_roles {
        for r in rs {
            need_role(db, r).await?;
        }
    }
    if let Some(gs) = &c.require_groups {
        for g in gs {
            need_group(db, g).await?;
        }
    }
    if let Some(Some(a)) = &c.default_audience {
        find_api(db, a).await?;
    }
    if let Some((api, perms)) = &c.grant {
        let perms = defined(db, api, perms).await?;
        let mut had = apis::client_grant(db, &client.client_id, api).await?.unwrap_or_default();
        for p in perms {
            if !had.contains(&p) {
                had.push(p);
            }
        }
        apis::set_client_grant(db, &client.client_id, api, Some(&had)).await?;
    }
    if let Some(api) = &c.remove_api {
        apis::set_client_grant(db, &client.client_id, api, None).await?;
    }
    let mut changed = false;
    if let Some(rs) = c.require_roles {
        client.require_roles = rs;
        changed = true;
    }
    if let Some(gs) = c.require_groups {
        client.require_groups = gs;
        changed = true;
    }
    if let Some(a) = c.default_audience {
        client.default_audience = a;
        changed = true;
    }
    if changed {
        client.updated_at = now;
        clients::update(db, client).await?;
    }
    Ok(())
}

/// Per-application access: an unrestricted client admits everyone; a
/// restricted one, users with one of its roles or in one of its groups.
pub fn has_access(client: &Client, held: &Access) -> bool {
    !client.is_restricted()
        || client.require_roles.iter().any(|r| held.roles.contains(r))
        || client.require_groups.iter().any(|g| held.groups.contains(g))
}

/// A user's permissions on an API through a client: what the user's roles
/// carry there, within what the client was granted.
pub fn token_permissions(held: &Access, client_grant: &[String]) -> Vec<String> {
    held.permissions.iter().filter(|p| client_grant.contains(p)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rules() {
        let spec = crate::clients::ClientSpec {
            client_id: Some("c".into()),
            name: "c".into(),
            public: true,
            redirect_uris: vec!["https://app.example.com/cb".into()],
            ..Default::default()
        };
        let mut c = crate::clients::validate(spec, true, 0).unwrap().client;
        let nobody = Access::default();
        assert!(has_access(&c, &nobody));
        c.require_roles = vec!["admin".into()];
        c.require_groups = vec!["business".into()];
        assert!(!has_access(&c, &nobody));
        assert!(has_access(&c, &Access { roles: vec!["admin".into()], ..Default::default() }));
        assert!(has_access(&c, &Access { groups: vec!["business".into()], ..Default::default() }));
        let held = Access { permissions: vec!["read".into(), "write".into()], ..Default::default() };
        assert_eq!(token_permissions(&held, &["read".into(), "delete".into()]), ["read"]);
        assert!(check_permissions(&["a b".into()]).is_err());
        assert!(check_permissions(&["openid".into()]).is_err());
        assert!(check_name("role", "admin").is_ok() && check_name("role", "no spaces!").is_err());
    }
}
