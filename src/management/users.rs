//! `/users`: accounts, their sessions (how access is taken away at once),
//! linked identities and directly granted roles.

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::Problem;
use super::user_links;
use super::{acting, body, caller, check_if_match, decode_cursor, encode_cursor, etag, item, limit};
use crate::domain::User;
pub use crate::manage::users::{NewUser, UserPatch};
use crate::state::AppState;
use crate::storage::users;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/{id}", get(get_one).patch(patch).delete(remove))
        .route("/api/v1/users/{id}/sessions", get(user_links::sessions).delete(user_links::end_sessions))
        .route("/api/v1/users/{id}/sessions/{sid}", delete(user_links::end_session))
        .route("/api/v1/users/{id}/identities", get(user_links::identities))
        .route("/api/v1/users/{id}/identities/{provider}/{subject}", delete(user_links::unlink))
        .route("/api/v1/users/{id}/roles", post(user_links::grant_role))
        .route("/api/v1/users/{id}/roles/{role}", delete(user_links::revoke_role))
        .route("/api/v1/users/{id}/factors", get(super::factors::list))
        .route("/api/v1/users/{id}/factors/{factor_id}", delete(super::factors::remove))
}

/// A user as the API shows it (never a password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub user_id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub disabled: bool,
    pub has_password: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> UserOut {
        UserOut {
            user_id: u.user_id.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            picture: u.picture.clone(),
            disabled: u.disabled,
            has_password: u.password_hash.is_some(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserOut>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// 1-200, default 50.
    limit: Option<u32>,
    cursor: Option<String>,
    email: Option<String>,
    /// Users holding this role, directly or through a group.
    role: Option<String>,
    group: Option<String>,
    /// Users with an identity at this provider.
    provider: Option<String>,
}

pub(super) async fn find(state: &AppState, id: &str) -> Result<User, Problem> {
    Ok(state.manage().find_user(id).await?)
}

/// List users, by id.
#[utoipa::path(get, path = "/users", params(ListQuery), responses(
    (status = 200, body = UserPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:users")?;
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let n = limit(q.limit);
    let filter = users::Filter {
        email: q.email.unwrap_or_default(),
        role: q.role.unwrap_or_default(),
        group: q.group.unwrap_or_default(),
        provider: q.provider.unwrap_or_default(),
        text: String::new(),
    };
    let found = users::page(&state.db, &filter, &decode_cursor(q.cursor.as_deref())?, n + 1).await?;
    let more = found.len() as i64 > n;
    let items: Vec<UserOut> = found.iter().take(n as usize).map(UserOut::from).collect();
    let next_cursor = if more { items.last().map(|u| encode_cursor(&u.user_id)) } else { None };
    Ok(axum::Json(UserPage { items, next_cursor }).into_response())
}

/// Create a user.
#[utoipa::path(post, path = "/users", request_body = NewUser, responses(
    (status = 201, body = UserOut), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<axum::Json<NewUser>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:users")?;
    let u = state.manage().create_user(&who, body(b)?).await?;
    Ok(item(StatusCode::CREATED, &UserOut::from(&u)))
}

/// One user.
#[utoipa::path(get, path = "/users/{id}", params(("id" = String, Path)), responses(
    (status = 200, body = UserOut, headers(("ETag" = String))), (status = 404, body = Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:users")?;
    Ok(item(StatusCode::OK, &UserOut::from(&find(&state, &id).await?)))
}

/// Change a user; `If-Match` is honoured when sent.
#[utoipa::path(patch, path = "/users/{id}", params(("id" = String, Path)), request_body = UserPatch, responses(
    (status = 200, body = UserOut), (status = 400, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub async fn patch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<axum::Json<UserPatch>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:users")?;
    let p = body(b)?;
    let u = find(&state, &id).await?;
    check_if_match(&headers, &etag(&UserOut::from(&u)))?;
    let u = state.manage().update_user(&who, u, p).await?;
    Ok(item(StatusCode::OK, &UserOut::from(&u)))
}

/// Delete a user (their sessions, identities and roles go with them).
#[utoipa::path(delete, path = "/users/{id}", params(("id" = String, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:users")?;
    let u = find(&state, &id).await?;
    check_if_match(&headers, &etag(&UserOut::from(&u)))?;
    state.manage().delete_user(&who, &u).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
