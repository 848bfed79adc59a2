//! `sesame role` and `sesame group`: roles carry permissions on APIs; groups
//! hold users and roles.

use clap::Subcommand;
use serde_json::json;

use super::{Out, access_error};
use crate::access;
use crate::config::Config;
use crate::domain::Clock;

#[derive(Subcommand, Debug)]
pub enum RoleCmd {
    /// Create a role, optionally with permissions of one API.
    Add {
        name: String,
        #[arg(long, value_name = "URL", requires = "permissions")]
        api: Option<String>,
        #[arg(long = "permission", value_name = "P", num_args = 1.., requires = "api")]
        permissions: Vec<String>,
        /// Its holders sign in with a second factor.
        #[arg(long)]
        require_mfa: bool,
    },
    /// Change whether a role's holders need a second factor.
    Update {
        name: String,
        /// Its holders sign in with a second factor.
        #[arg(long, conflicts_with = "no_require_mfa", required_unless_present = "no_require_mfa")]
        require_mfa: bool,
        /// Its holders need one only as the policy and their applications say.
        #[arg(long)]
        no_require_mfa: bool,
    },
    /// Add permissions of one API to a role.
    Grant {
        name: String,
        #[arg(long, value_name = "URL")]
        api: String,
        #[arg(long = "permission", value_name = "P", num_args = 1.., required = true)]
        permissions: Vec<String>,
    },
    /// Take permissions of one API from a role.
    Revoke {
        name: String,
        #[arg(long, value_name = "URL")]
        api: String,
        #[arg(long = "permission", value_name = "P", num_args = 1.., required = true)]
        permissions: Vec<String>,
    },
    List,
    Remove {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    Add {
        name: String,
    },
    /// Add a user (id or email) to a group.
    AddMember {
        name: String,
        user: String,
    },
    RemoveMember {
        name: String,
        user: String,
    },
    /// Every member of the group holds this role.
    GrantRole {
        name: String,
        role: String,
    },
    RevokeRole {
        name: String,
        role: String,
    },
    List,
    Remove {
        name: String,
    },
}

pub async fn run_role(cmd: RoleCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let db = super::open(cfg).await?;
    let now = Clock::system().now();
    match cmd {
        RoleCmd::Add { name, api, permissions, require_mfa } => {
            let grant = api.as_deref().map(|a| (a, permissions.as_slice()));
            access::add_role(&db, &name, grant, now).await.map_err(access_error)?;
            if require_mfa {
                crate::storage::roles::set_role_mfa(&db, &name, true).await?;
            }
            out.done(&format!("role {name} added"), &json!({ "role": name, "require_mfa": require_mfa }))
        }
        RoleCmd::Update { name, require_mfa, .. } => {
            crate::storage::roles::set_role_mfa(&db, &name, require_mfa).await.map_err(|e| match e {
                crate::storage::StorageError::NotFound => anyhow::anyhow!("no role `{name}`"),
                e => e.into(),
            })?;
            let what = if require_mfa { "needs" } else { "no longer needs" };
            out.done(
                &format!("role {name} {what} a second factor"),
                &json!({ "role": name, "require_mfa": require_mfa }),
            )
        }
        RoleCmd::Grant { name, api, permissions } => {
            access::role_permissions(&db, &name, &api, &permissions, true).await.map_err(access_error)?;
            out.done(
                &format!("{name} may {} on {api}", permissions.join(" ")),
                &json!({ "role": name, "api": api, "granted": permissions }),
            )
        }
        RoleCmd::Revoke { name, api, permissions } => {
            access::role_permissions(&db, &name, &api, &permissions, false).await.map_err(access_error)?;
            out.done(
                &format!("{name} may no longer {} on {api}", permissions.join(" ")),
                &json!({ "role": name, "api": api, "revoked": permissions }),
            )
        }
        RoleCmd::List => {
            let list = crate::storage::roles::list_roles(&db).await?;
            if out.json {
                let v: Vec<_> = list
                    .iter()
                    .map(|r| {
                        let perms: Vec<_> =
                            r.permissions.iter().map(|(a, p)| json!({ "api": a, "permission": p })).collect();
                        json!({ "name": r.name, "permissions": perms, "require_mfa": r.require_mfa, "created_at": r.created_at })
                    })
                    .collect();
                return out.print_json(&v);
            }
            for r in list {
                let perms: Vec<String> = r.permissions.iter().map(|(a, p)| format!("{a} {p}")).collect();
                let mfa = if r.require_mfa { " (second factor required)" } else { "" };
                println!("{}{mfa}: {}", r.name, perms.join(", "));
            }
            Ok(())
        }
        RoleCmd::Remove { name } => {
            access::remove_role(&db, &name).await.map_err(access_error)?;
            out.done(&format!("removed role {name}"), &json!({ "removed": name }))
        }
    }
}

pub async fn run_group(cmd: GroupCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let db = super::open(cfg).await?;
    let now = Clock::system().now();
    match cmd {
        GroupCmd::Add { name } => {
            access::add_group(&db, &name, now).await.map_err(access_error)?;
            out.done(&format!("group {name} added"), &json!({ "group": name }))
        }
        GroupCmd::AddMember { name, user } => member(&db, &name, &user, true, out).await,
        GroupCmd::RemoveMember { name, user } => member(&db, &name, &user, false, out).await,
        GroupCmd::GrantRole { name, role } => {
            access::group_role(&db, &name, &role, true).await.map_err(access_error)?;
            out.done(&format!("group {name} holds role {role}"), &json!({ "group": name, "granted": role }))
        }
        GroupCmd::RevokeRole { name, role } => {
            access::group_role(&db, &name, &role, false).await.map_err(access_error)?;
            out.done(&format!("group {name} no longer holds role {role}"), &json!({ "group": name, "revoked": role }))
        }
        GroupCmd::List => {
            let list = crate::storage::roles::list_groups(&db).await?;
            if out.json {
                return out.print_json(&list);
            }
            for g in list {
                println!("{}: {} member(s); roles: {}", g.name, g.members.len(), g.roles.join(", "));
            }
            Ok(())
        }
        GroupCmd::Remove { name } => {
            access::remove_group(&db, &name).await.map_err(access_error)?;
            out.done(&format!("removed group {name}"), &json!({ "removed": name }))
        }
    }
}

async fn member(db: &crate::storage::Db, group: &str, user: &str, add: bool, out: &Out) -> anyhow::Result<()> {
    let u = super::user::find_to_change(db, user).await?;
    access::group_member(db, group, &u.user_id, add).await.map_err(access_error)?;
    let what = if add { "added to" } else { "removed from" };
    out.done(
        &format!("{} {what} {group}", u.label()),
        &json!({ "group": group, "user_id": u.user_id, if add { "added" } else { "removed" }: true }),
    )
}
