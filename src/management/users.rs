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
use super::user_links::{self, end_all};
use super::{body, caller, check_if_match, decode_cursor, encode_cursor, etag, item, limit};
use crate::audit::{self, Event, Kind};
use crate::crypto::password;
use crate::domain::{User, validate_email};
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
    users::find_by_id(&state.db, id).await?.ok_or_else(|| Problem::not_found(format!("no user `{id}`")))
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
    };
    let found = users::page(&state.db, &filter, &decode_cursor(q.cursor.as_deref())?, n + 1).await?;
    let more = found.len() as i64 > n;
    let items: Vec<UserOut> = found.iter().take(n as usize).map(UserOut::from).collect();
    let next_cursor = if more { items.last().map(|u| encode_cursor(&u.user_id)) } else { None };
    Ok(axum::Json(UserPage { items, next_cursor }).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    email: String,
    #[serde(default)]
    email_verified: bool,
    name: Option<String>,
    /// At least 8 characters; without one the user signs in through a provider.
    password: Option<String>,
}

/// Create a user.
#[utoipa::path(post, path = "/users", request_body = NewUser, responses(
    (status = 201, body = UserOut), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<axum::Json<NewUser>, JsonRejection>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "write:users")?;
    let n = body(b)?;
    validate_email(&n.email).map_err(Problem::bad_request)?;
    let password_hash = match n.password {
        Some(p) => {
            password::Policy::from_config(&state.config.passwords)
                .check(&p)
                .map_err(|e| Problem::bad_request(format!("the {e}")))?;
            Some(password::hash(p).await.map_err(|e| Problem::bad_request(format!("the {e}")))?)
        }
        None => None,
    };
    let now = state.clock.now();
    let u = User {
        user_id: uuid::Uuid::new_v4().to_string(),
        email: Some(n.email.trim().to_string()),
        email_verified: n.email_verified,
        name: n.name.filter(|s| !s.trim().is_empty()),
        picture: None,
        password_hash,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    users::insert(&state.db, &u).await?;
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    name: Option<String>,
    email_verified: Option<bool>,
    /// Disabling ends every session of the user (back-channel logout now).
    disabled: Option<bool>,
    /// A new password ends every session of the user.
    password: Option<String>,
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
    let who = caller(&state, &headers, "write:users")?;
    let p = body(b)?;
    let mut u = find(&state, &id).await?;
    check_if_match(&headers, &etag(&UserOut::from(&u)))?;
    if p.password.is_some() || p.email_verified == Some(true) {
        super::ceiling::user(&state, &who, &u.user_id).await?;
    }
    let mut end = false;
    if let Some(n) = p.name {
        u.name = Some(n.trim().to_string()).filter(|s| !s.is_empty());
    }
    if let Some(v) = p.email_verified {
        u.email_verified = v;
    }
    if let Some(d) = p.disabled {
        end |= d && !u.disabled;
        u.disabled = d;
    }
    let new_password = p.password.is_some();
    if let Some(pw) = p.password {
        password::Policy::from_config(&state.config.passwords)
            .check(&pw)
            .map_err(|e| Problem::bad_request(format!("the {e}")))?;
        u.password_hash = Some(password::hash(pw).await.map_err(|e| Problem::bad_request(format!("the {e}")))?);
        end = true;
    }
    u.updated_at = state.clock.now();
    users::update(&state.db, &u).await?;
    if new_password {
        let e = Event::new(Kind::PasswordChanged).account(&u).actor(format!("client:{}", who.client_id));
        audit::record(&state.audit, e);
    }
    if end {
        end_all(&state, &u.user_id, &who, if new_password { "password_changed" } else { "disabled" }).await?;
    }
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
    let who = caller(&state, &headers, "write:users")?;
    let u = find(&state, &id).await?;
    check_if_match(&headers, &etag(&UserOut::from(&u)))?;
    end_all(&state, &id, &who, "user_deleted").await?;
    users::delete(&state.db, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
