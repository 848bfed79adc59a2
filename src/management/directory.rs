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
use super::{PageQuery, acting, body, caller, check_if_match, etag, item, page_query, paginate};
pub use crate::manage::directory::{GroupOut, GroupPatch, NewRole, RoleOut, RolePatch};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/roles", get(list_roles).post(create_role))
        .route("/api/v1/roles/{name}", get(get_role).patch(patch_role).delete(delete_role))
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route("/api/v1/groups/{name}", get(get_group).patch(patch_group).delete(delete_group))
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
    let all = state.manage().roles().await?;
    let (items, next_cursor) = paginate(all, |r| r.name.clone(), &q)?;
    Ok(axum::Json(RolePage { items, next_cursor }).into_response())
}

/// Create a role.
#[utoipa::path(post, path = "/roles", request_body = NewRole, responses(
    (status = 201, body = RoleOut), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn create_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<axum::Json<NewRole>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:roles")?;
    Ok(item(StatusCode::CREATED, &state.manage().create_role(&who, body(b)?).await?))
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
    Ok(item(StatusCode::OK, &state.manage().role(&name).await?))
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
    let who = acting(&state, &headers, "write:roles")?;
    let p = body(b)?;
    let m = state.manage();
    check_if_match(&headers, &etag(&m.role(&name).await?))?;
    Ok(item(StatusCode::OK, &m.update_role(&who, &name, p).await?))
}

/// Delete a role (users and groups lose it).
#[utoipa::path(delete, path = "/roles/{name}", params(("name" = String, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub async fn delete_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:roles")?;
    let m = state.manage();
    check_if_match(&headers, &etag(&m.role(&name).await?))?;
    m.delete_role(&who, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
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
    let all = state.manage().groups().await?;
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
    let who = acting(&state, &headers, "write:roles")?;
    let n = body(b)?;
    Ok(item(StatusCode::CREATED, &state.manage().create_group(&who, &n.name).await?))
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
    Ok(item(StatusCode::OK, &state.manage().group(&name).await?))
}

#[utoipa::path(patch, path = "/groups/{name}", params(("name" = String, Path)), request_body = GroupPatch, responses(
    (status = 200, body = GroupOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
pub async fn patch_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    b: Result<axum::Json<GroupPatch>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:roles")?;
    let p = body(b)?;
    let m = state.manage();
    check_if_match(&headers, &etag(&m.group(&name).await?))?;
    Ok(item(StatusCode::OK, &m.update_group(&who, &name, p).await?))
}

/// Delete a group.
#[utoipa::path(delete, path = "/groups/{name}", params(("name" = String, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub async fn delete_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:roles")?;
    let m = state.manage();
    check_if_match(&headers, &etag(&m.group(&name).await?))?;
    m.delete_group(&who, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
