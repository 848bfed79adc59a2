//! APIs and their permissions, roles and groups: create, change, delete,
//! and who holds what. The built-in management API cannot change here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Admin, Manage, OpError, Result};
use crate::access::{self, ApiChange, ApiSpec};
use crate::config::SigningAlg;
use crate::domain::Api;
use crate::storage::{apis, roles, users};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ApiPermissions {
    pub api: String,
    pub permissions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleOut {
    pub name: String,
    /// By API.
    pub permissions: Vec<ApiPermissions>,
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct GroupOut {
    pub name: String,
    /// User ids.
    pub members: Vec<String>,
    pub roles: Vec<String>,
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ApiOut {
    pub identifier: String,
    pub name: String,
    pub permissions: Vec<String>,
    pub token_ttl_secs: Option<u64>,
    /// RS256, ES256 or EdDSA.
    pub alg: Option<String>,
    /// The management API itself: not deletable.
    pub built_in: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub name: String,
    /// Permissions of one API the role carries.
    #[serde(default)]
    pub permissions: Option<ApiPermissions>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    /// Permissions of one API to add.
    #[serde(default)]
    pub grant: Option<ApiPermissions>,
    /// Permissions of one API to take away.
    #[serde(default)]
    pub revoke: Option<ApiPermissions>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    /// User ids, or verified addresses.
    #[serde(default)]
    pub add_members: Vec<String>,
    #[serde(default)]
    pub remove_members: Vec<String>,
    #[serde(default)]
    pub add_roles: Vec<String>,
    #[serde(default)]
    pub remove_roles: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApi {
    pub identifier: String,
    pub name: String,
    #[serde(default)]
    pub permissions: Vec<String>,
    pub token_ttl_secs: Option<u64>,
    pub alg: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ApiPatch {
    pub name: Option<String>,
    pub permissions: Option<Vec<String>>,
    pub token_ttl_secs: Option<u64>,
    pub alg: Option<String>,
}

fn role_out(r: &roles::Role) -> RoleOut {
    let mut out: Vec<ApiPermissions> = Vec::new();
    for (api, p) in &r.permissions {
        match out.iter_mut().find(|x| &x.api == api) {
            Some(x) => x.permissions.push(p.clone()),
            None => out.push(ApiPermissions { api: api.clone(), permissions: vec![p.clone()] }),
        }
    }
    RoleOut { name: r.name.clone(), permissions: out, created_at: r.created_at }
}

fn alg(a: Option<&str>) -> Result<Option<SigningAlg>> {
    a.map(|s| s.parse::<SigningAlg>().map_err(OpError::Invalid)).transpose()
}

impl Manage<'_> {
    pub async fn roles(&self) -> Result<Vec<RoleOut>> {
        Ok(roles::list_roles(self.db).await?.iter().map(role_out).collect())
    }

    pub async fn role(&self, name: &str) -> Result<RoleOut> {
        let all = roles::list_roles(self.db).await?;
        all.iter().find(|r| r.name == name).map(role_out).ok_or_else(|| OpError::NotFound(format!("no role `{name}`")))
    }

    pub async fn create_role(&self, who: &Admin, n: NewRole) -> Result<RoleOut> {
        who.need("write:roles")?;
        if let Some(p) = &n.permissions {
            self.within(who, &p.api, &p.permissions)?;
        }
        let grant = n.permissions.as_ref().map(|p| (p.api.as_str(), p.permissions.as_slice()));
        access::add_role(self.db, &n.name, grant, self.clock.now()).await?;
        self.role(&n.name).await
    }

    pub async fn update_role(&self, who: &Admin, name: &str, p: RolePatch) -> Result<RoleOut> {
        who.need("write:roles")?;
        self.role(name).await?;
        if p.revoke.is_some() {
            self.role_within(who, name).await?;
        }
        if let Some(g) = &p.grant {
            self.within(who, &g.api, &g.permissions)?;
            access::role_permissions(self.db, name, &g.api, &g.permissions, true).await?;
        }
        if let Some(r) = &p.revoke {
            access::role_permissions(self.db, name, &r.api, &r.permissions, false).await?;
        }
        self.role(name).await
    }

    pub async fn delete_role(&self, who: &Admin, name: &str) -> Result<()> {
        who.need("write:roles")?;
        if name == access::ADMIN_ROLE || name == access::SUPPORT_ROLE {
            return Err(OpError::Conflict(format!("`{name}` is built in: the console's access depends on it")));
        }
        self.role_within(who, name).await?;
        Ok(access::remove_role(self.db, name).await?)
    }

    pub async fn groups(&self) -> Result<Vec<GroupOut>> {
        Ok(roles::list_groups(self.db)
            .await?
            .into_iter()
            .map(|g| GroupOut { name: g.name, members: g.members, roles: g.roles, created_at: g.created_at })
            .collect())
    }

    pub async fn group(&self, name: &str) -> Result<GroupOut> {
        self.groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| OpError::NotFound(format!("no group `{name}`")))
    }

    pub async fn create_group(&self, who: &Admin, name: &str) -> Result<GroupOut> {
        who.need("write:roles")?;
        access::add_group(self.db, name, self.clock.now()).await?;
        self.group(name).await
    }

    /// A member named by id, or by an address verified on the account (an
    /// unverified one may be someone else's claim).
    async fn member(&self, key: &str) -> Result<String> {
        let u = if key.contains('@') {
            match users::find_by_email(self.db, key).await? {
                Some(u) if !u.email_verified => {
                    return Err(OpError::Conflict(format!(
                        "`{key}` is not verified on user {}: an unverified address may be someone else's claim; name the user by id",
                        u.user_id
                    )));
                }
                u => u,
            }
        } else {
            users::find_by_id(self.db, key).await?
        };
        u.map(|u| u.user_id).ok_or_else(|| OpError::NotFound(format!("no user `{key}`")))
    }

    pub async fn update_group(&self, who: &Admin, name: &str, p: GroupPatch) -> Result<GroupOut> {
        who.need("write:roles")?;
        let group = self.group(name).await?;
        // Members gain (or lose) the group's roles, and the group gains (or
        // loses) roles: none may carry management permissions beyond the actor's.
        let members_change = !p.add_members.is_empty() || !p.remove_members.is_empty();
        let touched = [if members_change { group.roles } else { vec![] }, p.add_roles.clone(), p.remove_roles.clone()];
        for r in touched.concat() {
            self.role_within(who, &r).await?;
        }
        for (list, add) in [(&p.add_members, true), (&p.remove_members, false)] {
            for m in list {
                let id = self.member(m).await?;
                access::group_member(self.db, name, &id, add).await?;
            }
        }
        for (list, grant) in [(&p.add_roles, true), (&p.remove_roles, false)] {
            for r in list {
                access::group_role(self.db, name, r, grant).await?;
            }
        }
        self.group(name).await
    }

    pub async fn delete_group(&self, who: &Admin, name: &str) -> Result<()> {
        who.need("write:roles")?;
        for r in self.group(name).await?.roles {
            self.role_within(who, &r).await?;
        }
        Ok(access::remove_group(self.db, name).await?)
    }

    pub fn api_out(&self, a: &Api) -> ApiOut {
        ApiOut {
            identifier: a.identifier.clone(),
            name: a.name.clone(),
            permissions: a.permissions.clone(),
            token_ttl_secs: a.token_ttl_secs,
            alg: a.alg.map(|x| x.as_str().to_string()),
            built_in: a.identifier == self.management_api(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }

    pub async fn apis(&self) -> Result<Vec<ApiOut>> {
        Ok(apis::list(self.db).await?.iter().map(|a| self.api_out(a)).collect())
    }

    pub async fn api(&self, identifier: &str) -> Result<ApiOut> {
        Ok(self.api_out(&access::find_api(self.db, identifier).await?))
    }

    fn not_built_in(&self, identifier: &str) -> Result<()> {
        if identifier == self.management_api() {
            return Err(OpError::Conflict("the management API is built in".into()));
        }
        Ok(())
    }

    pub async fn create_api(&self, who: &Admin, n: NewApi) -> Result<ApiOut> {
        who.need("write:clients")?;
        let spec = ApiSpec {
            identifier: n.identifier,
            name: n.name,
            permissions: n.permissions,
            token_ttl_secs: n.token_ttl_secs,
            alg: alg(n.alg.as_deref())?,
        };
        Ok(self.api_out(&access::add_api(self.db, spec, self.clock.now()).await?))
    }

    pub async fn update_api(&self, who: &Admin, identifier: &str, p: ApiPatch) -> Result<ApiOut> {
        who.need("write:clients")?;
        self.not_built_in(identifier)?;
        let change = ApiChange {
            name: p.name,
            permissions: p.permissions,
            token_ttl_secs: p.token_ttl_secs,
            alg: alg(p.alg.as_deref())?,
        };
        Ok(self.api_out(&access::update_api(self.db, identifier, change, self.issuer, self.clock.now()).await?))
    }

    pub async fn delete_api(&self, who: &Admin, identifier: &str) -> Result<()> {
        who.need("write:clients")?;
        self.not_built_in(identifier)?;
        Ok(access::remove_api(self.db, identifier, self.issuer).await?)
    }
}
