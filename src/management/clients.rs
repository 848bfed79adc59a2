//! `/clients`: the registered applications, through the same rules as
//! `sesame client` (static clients from the config file are read-only here too).

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
use crate::clients::{self, ClientSpec};
use crate::domain::Client;
pub use crate::manage::clients::ClientPatch;
use crate::manage::directory::ApiPermissions;
use crate::state::AppState;
use crate::storage::{apis, clients as store};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/clients", get(list).post(create))
        .route("/api/v1/clients/{id}", get(get_one).patch(patch).delete(remove))
        .route("/api/v1/clients/{id}/rotate-secret", axum::routing::post(rotate_secret))
}

#[derive(Serialize, ToSchema)]
pub struct ClientOut {
    /// Its settings, as they were given (`POST /clients`, `sesame client add`, the config file).
    #[serde(flatten)]
    pub settings: ClientSpec,
    /// The APIs (and permissions) it may ask for.
    pub apis: Vec<ApiPermissions>,
    /// `cli` (managed here or with `sesame client`) or `config` (read-only).
    pub source: String,
    /// Only in the answer to its creation: shown once, stored only as a hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

async fn out(state: &AppState, c: &Client) -> Result<ClientOut, Problem> {
    let grants = apis::client_grants(&state.db, &c.client_id).await?;
    Ok(ClientOut {
        settings: clients::spec_of(c),
        apis: grants.into_iter().map(|(api, permissions)| ApiPermissions { api, permissions }).collect(),
        source: c.source.clone(),
        client_secret: None,
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

async fn find(state: &AppState, id: &str) -> Result<Client, Problem> {
    Ok(state.manage().find_client(id).await?)
}

#[derive(Serialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientOut>,
    pub next_cursor: Option<String>,
}

/// Clients, by id.
#[utoipa::path(get, path = "/clients", params(PageQuery), responses((status = 200, body = ClientPage)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:clients")?;
    let q = page_query(q)?;
    let (page, next_cursor) = paginate(store::list(&state.db).await?, |c| c.client_id.clone(), &q)?;
    let mut items = Vec::new();
    for c in &page {
        items.push(out(&state, c).await?);
    }
    Ok(axum::Json(ClientPage { items, next_cursor }).into_response())
}

/// Register a client; a confidential one's secret is in this answer only.
/// Per-application access and the default audience are checked as `PATCH`
/// checks them; the settings that make Sesame call out, read other clients'
/// tokens or relax refresh-token reuse detection (`backchannel_logout_uri`,
/// `frontchannel_logout_uri`, `introspect_any`, `refresh_leeway_secs`) are
/// the operator's (`sesame client`, the config file).
#[utoipa::path(post, path = "/clients", request_body = ClientSpec, responses(
    (status = 201, body = ClientOut), (status = 400, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<axum::Json<ClientSpec>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:clients")?;
    let (c, secret) = state.manage().create_client(&who, body(b)?).await?;
    let mut o = out(&state, &c).await?;
    o.client_secret = secret;
    Ok((StatusCode::CREATED, axum::Json(o)).into_response())
}

/// One client.
#[utoipa::path(get, path = "/clients/{id}", params(("id" = String, Path)), responses(
    (status = 200, body = ClientOut, headers(("ETag" = String))), (status = 404, body = Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:clients")?;
    let c = find(&state, &id).await?;
    Ok(item(StatusCode::OK, &out(&state, &c).await?))
}

/// Change a client (not one declared in the config file).
#[utoipa::path(patch, path = "/clients/{id}", params(("id" = String, Path)), request_body = ClientPatch, responses(
    (status = 200, body = ClientOut), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
pub async fn patch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Result<axum::Json<ClientPatch>, JsonRejection>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:clients")?;
    let p = body(b)?;
    let old = find(&state, &id).await?;
    if old.source == "config" {
        return Err(Problem::conflict(crate::manage::clients::FROM_CONFIG));
    }
    check_if_match(&headers, &etag(&out(&state, &old).await?))?;
    let c = state.manage().update_client(&who, old, p).await?;
    Ok(item(StatusCode::OK, &out(&state, &c).await?))
}

/// Remove a client (not one declared in the config file).
#[utoipa::path(delete, path = "/clients/{id}", params(("id" = String, Path)), responses(
    (status = 204), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:clients")?;
    let c = find(&state, &id).await?;
    check_if_match(&headers, &etag(&out(&state, &c).await?))?;
    state.manage().delete_client(&who, &c).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
pub struct NewSecret {
    /// Shown once: only its hash is stored. The old secret stops working now.
    pub client_secret: String,
}

/// A new secret for a confidential client (not one declared in the config file).
#[utoipa::path(post, path = "/clients/{id}/rotate-secret", params(("id" = String, Path)), responses(
    (status = 200, body = NewSecret), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let who = acting(&state, &headers, "write:clients")?;
    let client_secret = state.manage().rotate_secret(&who, &id).await?;
    Ok(axum::Json(NewSecret { client_secret }).into_response())
}
