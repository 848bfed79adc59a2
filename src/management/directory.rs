//! `/roles` and `/groups`: what the CLI's `role` and `group` commands do,
//! through the same service layer (`access`).

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::Problem;
use super::{PageQuery, body, caller, check_if_match, etag, item, page_query, paginate};
use crate::access;
use crate::state::AppState;
use crate::storage::{roles, users};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/roles", get(list_roles).post(create_role))
        .route("/api/v1/roles/{name}", get(get_role).patch(patch_role).delete(delete_role))
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route("/api/v1/groups/{name}", get(get_group).patch(patch_group).delete(delete_group))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ApiPermissions {
    /// The API's identifier.
    pub api: String,
    pub permissions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleOut {
    pub name: String,
    pub permissions: Vec<ApiPermissions>,
    pub created_at: i64,
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

async fn find_role(state: &AppState, name: &str) -> Result<RoleOut, Problem> {
    let all = roles::list_roles(&state.db).await?;
    all.iter().find(|r| r.name == name).map(role_out).ok_or_else(|| Problem::not_found(format!("no role `{name}`")))
}

#[derive(Serialize, ToSchema)]
pub struct RolePage {
    pub items: Vec<RoleOut>,
    pub next_cursor: Option<String>,
}

/// Roles with their permissions, by name.
#[utoipa::path(get, path = "/roles", params(PageQuery), responses((status = 200, body = RolePage)))]
pub async fn list_roles(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:roles")?;
    let q = page_query(q)?;
    let all: Vec<RoleOut> = roles::list_roles(&state.db).await?.iter().map(role_out).collect();
    let (items, next_cursor) = paginate(all, |r| r.name.clone(), &q)?;
    Ok(axum::Json(RolePage { items, next_cursor }).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    name: String,
    /// Permissions of one API to start with.
    #[serde(default)]
    permissions: Option<ApiPermissions>,
}

/// Create a role.
#[utoipa::path(post, path = "/roles", request_body = NewRole, responses(
    (status = 201, body = RoleOut), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn create_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<axum::Json<NewRole>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = caller(&state, &headers, "write:roles")?;
    let n = body(b)?;
    if let Some(p) = &n.permissions {
        super::ceiling::within(&state, &who, &p.api, &p.permissions)?;
    }
    let grant = n.permissions.as_ref().map(|p| (p.api.as_str(), p.permissions.as_slice()));
    access::add_role(&state.db, &n.name, grant, state.clock.now()).await?;
    Ok(item(StatusCode::CREATED, &find_role(&state, &n.name).await?))
}

/// One role.
#[utoipa::path(get, path = "/roles/{name}", params(("name" = String, Path)), responses(
    (status = 200, body = RoleOut, headers(("ETag" = String))), (status = 404, body = Problem)))]
pub async fn get_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:roles")?;
    Ok(item(StatusCode::OK, &find_role(&state, &name).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    /// Permissions added.
    #[serde(default)]
    grant: Option<ApiPermissions>,
    /// Permissions taken away.
    #[serde(default)]
    revoke: Option<ApiPermissions>,
}

/// Add or take away a role's permissions.
#[utoipa::path(patch, path = "/roles/{name}", params(("name" = String, Path)), request_body = RolePatch, responses(
    (status = 200, body = RoleOut), (status = 400, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub async fn patch_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    b: Result<axum::Json<RolePatch>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = caller(&state, &headers, "write:roles")?;
    let p = body(b)?;
    check_if_match(&headers, &etag(&find_role(&state, &name).await?))?;
    if let Some(g) = &p.grant {
        super::ceiling::within(&state, &who, &g.api, &g.permissions)?;
    }
    if let Some(g) = &p.grant {
        access::role_permissions(&state.db, &name, &g.api, &g.permissions, true).await?;
    }
    if let Some(r) = &p.revoke {
        access::role_permissions(&state.db, &name, &r.api, &r.permissions, false).await?;
    }
    Ok(item(StatusCode::OK, &find_role(&state, &name).await?))
}

/// Delete a role (users and groups lose it).
#[utoipa::path(delete, path = "/roles/{name}", params(("name" = String, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub async fn delete_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "write:roles")?;
    check_if_match(&headers, &etag(&find_role(&state, &name).await?))?;
    access::remove_role(&state.db, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
pub struct GroupOut {
    pub name: String,
    /// User ids.
    pub members: Vec<String>,
    pub roles: Vec<String>,
    pub created_at: i64,
}

async fn find_group(state: &AppState, name: &str) -> Result<GroupOut, Problem> {
    let all = roles::list_groups(&state.db).await?;
    all.into_iter()
        .find(|g| g.name == name)
        .map(|g| GroupOut { name: g.name, members: g.members, roles: g.roles, created_at: g.created_at })
        .ok_or_else(|| Problem::not_found(format!("no group `{name}`")))
}

#[derive(Serialize, ToSchema)]
pub struct GroupPage {
    pub items: Vec<GroupOut>,
    pub next_cursor: Option<String>,
}

/// Groups with their members and roles, by name.
#[utoipa::path(get, path = "/groups", params(PageQuery), responses((status = 200, body = GroupPage)))]
pub async fn list_groups(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:roles")?;
    let q = page_query(q)?;
    let all: Vec<GroupOut> = roles::list_groups(&state.db)
        .await?
        .into_iter()
        .map(|g| GroupOut { name: g.name, members: g.members, roles: g.roles, created_at: g.created_at })
        .collect();
    let (items, next_cursor) = paginate(all, |g| g.name.clone(), &q)?;
    Ok(axum::Json(GroupPage { items, next_cursor }).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    name: String,
}

/// Create a group.
#[utoipa::path(post, path = "/groups", request_body = NewGroup, responses(
    (status = 201, body = GroupOut), (status = 400, body = Problem)))]
pub async fn create_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<axum::Json<NewGroup>, JsonRejection>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "write:roles")?;
    let n = body(b)?;
    access::add_group(&state.db, &n.name, state.clock.now()).await?;
    Ok(item(StatusCode::CREATED, &find_group(&state, &n.name).await?))
}

/// One group.
#[utoipa::path(get, path = "/groups/{name}", params(("name" = String, Path)), responses(
    (status = 200, body = GroupOut, headers(("ETag" = String))), (status = 404, body = Problem)))]
pub async fn get_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:roles")?;
    Ok(item(StatusCode::OK, &find_group(&state, &name).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    /// User ids or emails.
    #[serde(default)]
    add_members: Vec<String>,
    #[serde(default)]
    remove_members: Vec<String>,
    #[serde(default)]
    add_roles: Vec<String>,
    #[serde(default)]
    remove_roles: Vec<String>,
}

/// A member named by id, or by an address verified on that user: an
/// unverified address may be a stranger's claim, which must not receive the
/// group's roles.
async fn user_id(state: &AppState, key: &str) -> Result<String, Problem> {
    let u = if key.contains('@') {
        match users::find_by_email(&state.db, key).await? {
            Some(u) if !u.email_verified => {
                return Err(Problem::conflict(format!(
                    "`{key}` is not verified on user {}: an unverified address may be someone else's claim; name the user by id",
                    u.user_id
                )));
            }
            u => u,
        }
    } else {
        users::find_by_id(&state.db, key).await?
    };
    u.map(|u| u.user_id).ok_or_else(|| Problem::not_found(format!("no user `{key}`")))
}

/// Change a group's members and roles.
#[utoipa::path(patch, path = "/groups/{name}", params(("name" = String, Path)), request_body = GroupPatch, responses(
    (status = 200, body = GroupOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
pub async fn patch_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    b: Result<axum::Json<GroupPatch>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = caller(&state, &headers, "write:roles")?;
    let p = body(b)?;
    let group = find_group(&state, &name).await?;
    check_if_match(&headers, &etag(&group))?;
    // Members gain the group's roles, and the group gains new ones: neither
    // may carry management permissions beyond the caller's.
    let gained =
        if p.add_members.is_empty() { p.add_roles.clone() } else { [group.roles, p.add_roles.clone()].concat() };
    for r in &gained {
        super::ceiling::role(&state, &who, r).await?;
    }
    for (list, add) in [(&p.add_members, true), (&p.remove_members, false)] {
        for m in list {
            let id = user_id(&state, m).await?;
            access::group_member(&state.db, &name, &id, add).await?;
        }
    }
    for (list, grant) in [(&p.add_roles, true), (&p.remove_roles, false)] {
        for r in list {
            access::group_role(&state.db, &name, r, grant).await?;
        }
    }
    Ok(item(StatusCode::OK, &find_group(&state, &name).await?))
}

/// Delete a group.
#[utoipa::path(delete, path = "/groups/{name}", params(("name" = String, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub async fn delete_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "write:roles")?;
    check_if_match(&headers, &etag(&find_group(&state, &name).await?))?;
    access::remove_group(&state.db, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
