//! `/apis`: what `sesame api` does, through the same service layer
//! (`access`); the built-in management API itself cannot be changed here.

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::Problem;
use super::{PageQuery, acting, body, caller, check_if_match, etag, item, page_query, paginate};
pub use crate::manage::directory::{ApiOut, ApiPatch, NewApi};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/apis", get(list_apis).post(create_api))
        .route("/api/v1/apis/{identifier}", get(get_api).patch(patch_api).delete(delete_api))
}

#[derive(Serialize, ToSchema)]
pub struct ApiPage {
    pub items: Vec<ApiOut>,
    pub next_cursor: Option<String>,
}

/// APIs, by identifier.
#[utoipa::path(get, path = "/apis", params(PageQuery), responses((status = 200, body = ApiPage)))]
pub async fn list_apis(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:clients")?;
    let q = page_query(q)?;
    let all = state.manage().apis().await?;
    let (items, next_cursor) = paginate(all, |a| a.identifier.clone(), &q)?;
    Ok(axum::Json(ApiPage { items, next_cursor }).into_response())
}

/// Register an API.
#[utoipa::path(post, path = "/apis", request_body = NewApi, responses(
    (status = 201, body = ApiOut), (status = 400, body = Problem)))]
pub async fn create_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<axum::Json<NewApi>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:clients")?;
    Ok(item(StatusCode::CREATED, &state.manage().create_api(&who, body(b)?).await?))
}

/// One API (its identifier percent-encoded in the path).
#[utoipa::path(get, path = "/apis/{identifier}", params(("identifier" = String, Path)), responses(
    (status = 200, body = ApiOut, headers(("ETag" = String))), (status = 404, body = Problem)))]
pub async fn get_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:clients")?;
    Ok(item(StatusCode::OK, &state.manage().api(&id).await?))
}

/// Change an API.
#[utoipa::path(patch, path = "/apis/{identifier}", params(("identifier" = String, Path)), request_body = ApiPatch, responses(
    (status = 200, body = ApiOut), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
pub async fn patch_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<axum::Json<ApiPatch>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:clients")?;
    let p = body(b)?;
    let m = state.manage();
    let current = m.api(&id).await?;
    if current.built_in {
        return Err(Problem::conflict("the management API is built in"));
    }
    check_if_match(&headers, &etag(&current))?;
    Ok(item(StatusCode::OK, &m.update_api(&who, &id, p).await?))
}

/// Delete an API (roles and clients lose it).
#[utoipa::path(delete, path = "/apis/{identifier}", params(("identifier" = String, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
pub async fn delete_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:clients")?;
    let m = state.manage();
    let current = m.api(&id).await?;
    if current.built_in {
        return Err(Problem::conflict("the management API is built in"));
    }
    check_if_match(&headers, &etag(&current))?;
    m.delete_api(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
