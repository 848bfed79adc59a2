//! `/users/{id}/…`: a user's sessions (how access is taken away at once),
//! linked identities and directly granted roles.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::Problem;
use super::users::find;
use super::{acting, body, caller};
use crate::state::AppState;
use crate::storage::{identities, sessions};

#[derive(Serialize, ToSchema)]
pub struct SessionOut {
    pub sid: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub idp: Option<String>,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// The user's live sessions.
#[utoipa::path(get, path = "/users/{id}/sessions", params(("id" = String, Path)), responses(
    (status = 200, body = Vec<SessionOut>), (status = 404, body = Problem)))]
pub async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:users")?;
    find(&state, &id).await?;
    let now = state.clock.now();
    let list: Vec<SessionOut> = sessions::list_for_user(&state.db, &id)
        .await?
        .into_iter()
        .filter(|s| s.expires_at > now && s.idle_expires_at > now)
        .map(|s| SessionOut {
            sid: s.sid,
            auth_time: s.auth_time,
            amr: s.amr,
            idp: s.idp,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
        })
        .collect();
    Ok(axum::Json(list).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Ended {
    pub sessions_ended: usize,
}

/// End every session of the user (and their non-offline refresh tokens), with
/// back-channel logout now and front-channel logout on the browser's next visit.
#[utoipa::path(delete, path = "/users/{id}/sessions", params(("id" = String, Path)), responses(
    (status = 200, body = Ended), (status = 404, body = Problem)))]
pub async fn end_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:users")?;
    let n = state.manage().end_sessions(&who, &id).await?;
    Ok(axum::Json(Ended { sessions_ended: n }).into_response())
}

/// End one session.
#[utoipa::path(delete, path = "/users/{id}/sessions/{sid}", params(("id" = String, Path), ("sid" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, sid)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:users")?;
    state.manage().end_session(&who, &id, &sid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
pub struct IdentityOut {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub created_at: i64,
    pub last_login_at: i64,
}

/// The user's linked identities at upstream providers.
#[utoipa::path(get, path = "/users/{id}/identities", params(("id" = String, Path)), responses(
    (status = 200, body = Vec<IdentityOut>), (status = 404, body = Problem)))]
pub async fn identities(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:users")?;
    find(&state, &id).await?;
    let list: Vec<IdentityOut> = identities::for_user(&state.db, &id)
        .await?
        .into_iter()
        .map(|i| IdentityOut {
            provider: i.provider,
            subject: i.subject,
            email: i.email,
            email_verified: i.email_verified,
            created_at: i.created_at,
            last_login_at: i.last_login_at,
        })
        .collect();
    Ok(axum::Json(list).into_response())
}

/// Unlink an identity (refused when it is the user's last way to sign in).
#[utoipa::path(delete, path = "/users/{id}/identities/{provider}/{subject}",
    params(("id" = String, Path), ("provider" = String, Path), ("subject" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn unlink(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, provider, subject)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:users")?;
    let u = find(&state, &id).await?;
    state.manage().unlink(&who, &u, &provider, &subject).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRef {
    role: String,
}

/// Grant the user a role.
#[utoipa::path(post, path = "/users/{id}/roles", params(("id" = String, Path)), request_body = RoleRef,
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn grant_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<axum::Json<RoleRef>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:roles")?;
    let r = body(b)?;
    state.manage().grant_role(&who, &id, &r.role).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Take a directly granted role away.
#[utoipa::path(delete, path = "/users/{id}/roles/{role}", params(("id" = String, Path), ("role" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, role)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:roles")?;
    state.manage().revoke_role(&who, &id, &role).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
