//! `/apis`: what `sesame api` does, through the same service layer
//! (`access`); the built-in management API itself cannot be changed here.

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
use crate::access::{self, ApiChange, ApiSpec};
use crate::config::SigningAlg;
use crate::domain::Api;
use crate::state::AppState;
use crate::storage::apis;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/apis", get(list_apis).post(create_api))
        .route("/api/v1/apis/{identifier}", get(get_api).patch(patch_api).delete(delete_api))
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

fn api_out(state: &AppState, a: &Api) -> ApiOut {
    ApiOut {
        identifier: a.identifier.clone(),
        name: a.name.clone(),
        permissions: a.permissions.clone(),
        token_ttl_secs: a.token_ttl_secs,
        alg: a.alg.map(|x| x.as_str().to_string()),
        built_in: a.identifier == crate::access::management_audience(state.issuer.as_str()),
        created_at: a.created_at,
        updated_at: a.updated_at,
    }
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
    let all: Vec<ApiOut> = apis::list(&state.db).await?.iter().map(|a| api_out(&state, a)).collect();
    let (items, next_cursor) = paginate(all, |a| a.identifier.clone(), &q)?;
    Ok(axum::Json(ApiPage { items, next_cursor }).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApi {
    identifier: String,
    name: String,
    #[serde(default)]
    permissions: Vec<String>,
    token_ttl_secs: Option<u64>,
    alg: Option<String>,
}

fn alg(a: Option<&str>) -> Result<Option<SigningAlg>, Problem> {
    a.map(|s| s.parse::<SigningAlg>().map_err(Problem::bad_request)).transpose()
}

/// Register an API.
#[utoipa::path(post, path = "/apis", request_body = NewApi, responses(
    (status = 201, body = ApiOut), (status = 400, body = Problem)))]
pub async fn create_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<axum::Json<NewApi>, JsonRejection>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "write:clients")?;
    let n = body(b)?;
    let spec = ApiSpec {
        identifier: n.identifier,
        name: n.name,
        permissions: n.permissions,
        token_ttl_secs: n.token_ttl_secs,
        alg: alg(n.alg.as_deref())?,
    };
    let a = access::add_api(&state.db, spec, state.clock.now()).await?;
    Ok(item(StatusCode::CREATED, &api_out(&state, &a)))
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
    Ok(item(StatusCode::OK, &api_out(&state, &access::find_api(&state.db, &id).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiPatch {
    name: Option<String>,
    /// Replaces the list; roles and clients lose permissions no longer defined.
    permissions: Option<Vec<String>>,
    token_ttl_secs: Option<u64>,
    alg: Option<String>,
}

fn not_built_in(state: &AppState, id: &str) -> Result<(), Problem> {
    if id == crate::access::management_audience(state.issuer.as_str()) {
        return Err(Problem::conflict("the management API is built in"));
    }
    Ok(())
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
    caller(&state, &headers, "write:clients")?;
    let p = body(b)?;
    let current = access::find_api(&state.db, &id).await?;
    not_built_in(&state, &id)?;
    check_if_match(&headers, &etag(&api_out(&state, &current)))?;
    let change = ApiChange {
        name: p.name,
        permissions: p.permissions,
        token_ttl_secs: p.token_ttl_secs,
        alg: alg(p.alg.as_deref())?,
    };
    let a = access::update_api(&state.db, &id, change, state.issuer.as_str(), state.clock.now()).await?;
    Ok(item(StatusCode::OK, &api_out(&state, &a)))
}

/// Delete an API (roles and clients lose it).
#[utoipa::path(delete, path = "/apis/{identifier}", params(("identifier" = String, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
pub async fn delete_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "write:clients")?;
    let current = access::find_api(&state.db, &id).await?;
    not_built_in(&state, &id)?;
    check_if_match(&headers, &etag(&api_out(&state, &current)))?;
    access::remove_api(&state.db, &id, state.issuer.as_str()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
