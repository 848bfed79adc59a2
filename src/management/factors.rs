//! `/users/{id}/factors`: a user's second factors, and removing one (a lost
//! phone, a help-desk request). Removal is audited (`mfa_removed`, with the
//! calling client as actor) and mailed to the user.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::caller;
use super::problem::Problem;
use super::users::find;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct FactorOut {
    pub factor_id: String,
    /// `totp` (an authenticator app) or `passkey`.
    pub kind: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FactorsOut {
    pub factors: Vec<FactorOut>,
    pub recovery_codes_left: i64,
}

/// The user's second factors and how many recovery codes are left.
#[utoipa::path(get, path = "/users/{id}/factors", params(("id" = String, Path)), responses(
    (status = 200, body = FactorsOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:users")?;
    let user = find(&state, &id).await?;
    let f = state.factors();
    let factors = f
        .list(&user.user_id)
        .await?
        .into_iter()
        .map(|x| FactorOut {
            factor_id: x.factor_id,
            kind: x.kind,
            name: x.name,
            created_at: x.created_at,
            last_used_at: x.last_used_at,
        })
        .collect();
    let recovery_codes_left = f.recovery_codes_left(&user.user_id).await?;
    Ok(axum::Json(FactorsOut { factors, recovery_codes_left }).into_response())
}

/// Remove one second factor of the user (and every browser remembered for
/// one; the recovery codes too once no factor is left).
#[utoipa::path(delete, path = "/users/{id}/factors/{factor_id}", params(("id" = String, Path), ("factor_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, factor_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let who = super::acting(&state, &headers, "write:users")?;
    let user = find(&state, &id).await?;
    state.manage().remove_factor(&who, &user, &factor_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
