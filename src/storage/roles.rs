//! Roles (carrying permissions on APIs), groups (holding users and roles), and
//! the roles granted to users; `access_of` reads what a user holds in one
//! round trip.

use sqlx::Row;

use super::{Db, Result, StorageError};

/// A role and its permissions, as (api, permission) pairs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Role {
    pub name: String,
    pub permissions: Vec<(String, String)>,
    /// Its holders sign in with a second factor.
    pub require_mfa: bool,
    pub created_at: i64,
}

/// A group, its members (user ids) and its roles.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    pub name: String,
    pub members: Vec<String>,
    pub roles: Vec<String>,
    pub created_at: i64,
}

/// What a user holds: roles (direct and through groups), groups, and the
/// permissions those roles carry on one API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub permissions: Vec<String>,
}

const USER_ROLES: &str = "SELECT role FROM user_roles WHERE user_id = $1
    UNION SELECT gr.role FROM group_roles gr JOIN group_members gm ON gm.group_name = gr.group_name
    WHERE gm.user_id = $1";

/// A user's roles, groups and permissions on `api` (none without one).
pub async fn access_of(db: &Db, user_id: &str, api: Option<&str>) -> Result<Access> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT 'r' AS k, role AS v FROM ({USER_ROLES}) ur
         UNION SELECT 'g' AS k, group_name AS v FROM group_members WHERE user_id = $1
         UNION SELECT 'p' AS k, permission AS v FROM role_permissions WHERE api = $2 AND role IN ({USER_ROLES})
         ORDER BY k, v"
    ));
    let rows = sqlx::query(sql).bind(user_id).bind(api.unwrap_or("")).fetch_all(db.pool()).await?;
    let mut a = Access::default();
    for r in &rows {
        let k: String = r.try_get("k")?;
        let v: String = r.try_get("v")?;
        match k.as_str() {
            "r" => a.roles.push(v),
            "g" => a.groups.push(v),
            _ => a.permissions.push(v),
        }
    }
    Ok(a)
}

/// Whether any user holds `role`, directly or through a group.
pub async fn has_holder(db: &Db, role: &str) -> Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM user_roles WHERE role = $1
         UNION SELECT 1 FROM group_roles gr JOIN group_members gm ON gm.group_name = gr.group_name WHERE gr.role = $1
         LIMIT 1",
    )
    .bind(role)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.is_some())
}

/// The roles granted to `user_id` directly (not through a group).
pub async fn direct_of(db: &Db, user_id: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
        .bind(user_id)
        .fetch_all(db.pool())
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Who holds `role`: the users granted it directly, and the groups.
pub async fn holders(db: &Db, role: &str) -> Result<(Vec<String>, Vec<String>)> {
    let users: Vec<(String,)> =
        sqlx::query_as("SELECT user_id FROM user_roles WHERE role = $1 ORDER BY user_id LIMIT 500")
            .bind(role)
            .fetch_all(db.pool())
            .await?;
    let groups: Vec<(String,)> =
        sqlx::query_as("SELECT group_name FROM group_roles WHERE role = $1 ORDER BY group_name")
            .bind(role)
            .fetch_all(db.pool())
            .await?;
    Ok((users.into_iter().map(|x| x.0).collect(), groups.into_iter().map(|x| x.0).collect()))
}

pub async fn add_role(db: &Db, name: &str, now: i64) -> Result<()> {
    sqlx::query("INSERT INTO roles (name, created_at) VALUES ($1, $2)")
        .bind(name)
        .bind(now)
        .execute(db.pool())
        .await
        .map_err(|e| StorageError::on_unique(e, "a role with this name"))?;
    Ok(())
}

pub async fn role_exists(db: &Db, name: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM roles WHERE name = $1").bind(name).fetch_optional(db.pool()).await?.is_some())
}

/// Adds (`grant`) or removes permissions of `api` on a role.
pub async fn set_permissions(db: &Db, role: &str, api: &str, permissions: &[String], grant: bool) -> Result<()> {
    let mut tx = db.begin().await?;
    for p in permissions {
        let sql = if grant {
            "INSERT INTO role_permissions (role, api, permission) VALUES ($1, $2, $3)
             ON CONFLICT (role, api, permission) DO NOTHING"
        } else {
            "DELETE FROM role_permissions WHERE role = $1 AND api = $2 AND permission = $3"
        };
        sqlx::query(sql).bind(role).bind(api).bind(p).execute(&mut *tx).await?;
    }
    super::commit(tx).await?;
    Ok(())
}

pub async fn list_roles(db: &Db) -> Result<Vec<Role>> {
    let rows = sqlx::query(
        "SELECT r.name, r.created_at, r.require_mfa, rp.api, rp.permission FROM roles r
         LEFT JOIN role_permissions rp ON rp.role = r.name ORDER BY r.name, rp.api, rp.permission",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out: Vec<Role> = Vec::new();
    for r in &rows {
        let name: String = r.try_get("name")?;
        if out.last().is_none_or(|x| x.name != name) {
            out.push(Role {
                name: name.clone(),
                permissions: Vec::new(),
                require_mfa: super::get_bool(r, "require_mfa")?,
                created_at: r.try_get("created_at")?,
            });
        }
        let api: Option<String> = r.try_get("api")?;
        let perm: Option<String> = r.try_get("permission")?;
        if let (Some(a), Some(p), Some(last)) = (api, perm, out.last_mut()) {
            last.permissions.push((a, p));
        }
    }
    Ok(out)
}

/// Whether holders of role `name` must sign in with a second factor.
pub async fn set_role_mfa(db: &Db, name: &str, require: bool) -> Result<()> {
    let res = sqlx::query("UPDATE roles SET require_mfa = $2 WHERE name = $1")
        .bind(name)
        .bind(require)
        .execute(db.pool())
        .await?;
    if res.rows_affected() == 0 { Err(StorageError::NotFound) } else { Ok(()) }
}

/// Whether any role requires a second factor.
pub async fn any_requires_mfa(db: &Db) -> Result<bool> {
    let row = sqlx::query("SELECT 1 AS x FROM roles WHERE require_mfa = $1 LIMIT 1")
        .bind(true)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.is_some())
}

/// Whether `user_id` holds (directly or through a group) a role that
/// requires a second factor.
pub async fn requires_mfa(db: &Db, user_id: &str) -> Result<bool> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT 1 AS x FROM roles WHERE require_mfa = $2 AND name IN ({USER_ROLES}) LIMIT 1"
    ));
    let row = sqlx::query(sql).bind(user_id).bind(true).fetch_optional(db.pool()).await?;
    Ok(row.is_some())
}

pub async fn remove_role(db: &Db, name: &str) -> Result<()> {
    let res = sqlx::query("DELETE FROM roles WHERE name = $1").bind(name).execute(db.pool()).await?;
    if res.rows_affected() == 0 { Err(StorageError::NotFound) } else { Ok(()) }
}

/// Grants (`true`) or revokes a role of a user.
pub async fn set_user_role(db: &Db, user_id: &str, role: &str, grant: bool) -> Result<bool> {
    let sql = if grant {
        "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT (user_id, role) DO NOTHING"
    } else {
        "DELETE FROM user_roles WHERE user_id = $1 AND role = $2"
    };
    Ok(sqlx::query(sql).bind(user_id).bind(role).execute(db.pool()).await?.rows_affected() == 1)
}

pub async fn add_group(db: &Db, name: &str, now: i64) -> Result<()> {
    sqlx::query("INSERT INTO user_groups (name, created_at) VALUES ($1, $2)")
        .bind(name)
        .bind(now)
        .execute(db.pool())
        .await
        .map_err(|e| StorageError::on_unique(e, "a group with this name"))?;
    Ok(())
}

pub async fn group_exists(db: &Db, name: &str) -> Result<bool> {
    let row = sqlx::query("SELECT 1 FROM user_groups WHERE name = $1").bind(name).fetch_optional(db.pool()).await?;
    Ok(row.is_some())
}

/// Adds (`true`) or removes a member.
pub async fn set_member(db: &Db, group: &str, user_id: &str, add: bool) -> Result<bool> {
    let sql = if add {
        "INSERT INTO group_members (group_name, user_id) VALUES ($1, $2) ON CONFLICT (group_name, user_id) DO NOTHING"
    } else {
        "DELETE FROM group_members WHERE group_name = $1 AND user_id = $2"
    };
    Ok(sqlx::query(sql).bind(group).bind(user_id).execute(db.pool()).await?.rows_affected() == 1)
}

/// Grants (`true`) or revokes a role of a group.
pub async fn set_group_role(db: &Db, group: &str, role: &str, grant: bool) -> Result<bool> {
    let sql = if grant {
        "INSERT INTO group_roles (group_name, role) VALUES ($1, $2) ON CONFLICT (group_name, role) DO NOTHING"
    } else {
        "DELETE FROM group_roles WHERE group_name = $1 AND role = $2"
    };
    Ok(sqlx::query(sql).bind(group).bind(role).execute(db.pool()).await?.rows_affected() == 1)
}

pub async fn list_groups(db: &Db) -> Result<Vec<Group>> {
    let rows = sqlx::query(
        "SELECT g.name, g.created_at, 'm' AS k, gm.user_id AS v FROM user_groups g
           JOIN group_members gm ON gm.group_name = g.name
         UNION ALL SELECT g.name, g.created_at, 'r' AS k, gr.role AS v FROM user_groups g
           JOIN group_roles gr ON gr.group_name = g.name
         UNION ALL SELECT g.name, g.created_at, '' AS k, '' AS v FROM user_groups g
         ORDER BY 1, 3, 4",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out: Vec<Group> = Vec::new();
    for r in &rows {
        let name: String = r.try_get(0)?;
        if out.last().is_none_or(|x| x.name != name) {
            out.push(Group { name: name.clone(), members: vec![], roles: vec![], created_at: r.try_get(1)? });
        }
        let k: String = r.try_get(2)?;
        let v: String = r.try_get(3)?;
        if let Some(last) = out.last_mut() {
            match k.as_str() {
                "m" => last.members.push(v),
                "r" => last.roles.push(v),
                _ => {}
            }
        }
    }
    Ok(out)
}

pub async fn remove_group(db: &Db, name: &str) -> Result<()> {
    let res = sqlx::query("DELETE FROM user_groups WHERE name = $1").bind(name).execute(db.pool()).await?;
    if res.rows_affected() == 0 { Err(StorageError::NotFound) } else { Ok(()) }
}
