//! `/clients`: the registered applications, through the same rules as
//! `sesame client` (static clients from the config file are read-only here too).

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::directory::ApiPermissions;
use super::problem::Problem;
use super::{PageQuery, body, caller, check_if_match, etag, item, page_query, paginate};
use crate::access::{self, ClientAccessChange};
use crate::clients::{self, ClientSpec};
use crate::domain::Client;
use crate::state::AppState;
use crate::storage::{apis, clients as store};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/clients", get(list).post(create))
        .route("/api/v1/clients/{id}", get(get_one).patch(patch).delete(remove))
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
    store::find(&state.db, id).await?.ok_or_else(|| Problem::not_found(format!("no client `{id}`")))
}

fn https(state: &AppState) -> bool {
    state.issuer.as_str().starts_with("https://")
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
    caller(&state, &headers, "write:clients")?;
    let mut spec = body(b)?;
    let operators = spec.introspect_any
        || spec.backchannel_logout_uri.is_some()
        || spec.frontchannel_logout_uri.is_some()
        || spec.refresh_leeway_secs.is_some();
    if operators {
        return Err(Problem::bad_request(
            "introspect_any, the logout URIs and refresh_leeway_secs are set by the operator (`sesame client`, the config file)",
        ));
    }
    let access = clients::take_access(&mut spec);
    let mut c = clients::validate(spec, https(&state), state.clock.now()).map_err(Problem::bad_request)?.client;
    let secret = (!c.public).then(clients::new_secret);
    c.secret_hash = secret.as_deref().map(crate::crypto::random::sha256_hex);
    clients::register(&state.db, &mut c, access, state.clock.now()).await?;
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    web_origins: Option<Vec<String>>,
    /// Per-application access; empty lists admit everyone.
    require_roles: Option<Vec<String>>,
    require_groups: Option<Vec<String>>,
    /// An empty string clears it.
    default_audience: Option<String>,
    /// Permissions of one API the client may ask for (added to what it had).
    grant: Option<ApiPermissions>,
    /// The client may no longer call this API.
    remove_api: Option<String>,
    /// Tokens carry the user's roles and groups even when the scope does not ask.
    rbac_claims: Option<bool>,
    /// Every sign-in to this client needs a second factor.
    require_mfa: Option<bool>,
    /// Every token request needs a DPoP proof.
    require_dpop: Option<bool>,
    /// The page that calls auth0-js `crossOriginVerification()`; an empty string clears it.
    cross_origin_loc: Option<String>,
    /// auth0-js embedded login from the client's web origins.
    cross_origin_authentication: Option<bool>,
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
    let who = caller(&state, &headers, "write:clients")?;
    let p = body(b)?;
    if p.grant.is_some() || p.remove_api.is_some() {
        super::ceiling::not_self(&who, &id)?;
    }
    if let Some(g) = &p.grant {
        super::ceiling::within(&state, &who, &g.api, &g.permissions)?;
    }
    let old = find(&state, &id).await?;
    if p.redirect_uris.is_some() || p.web_origins.is_some() || p.post_logout_redirect_uris.is_some() {
        super::ceiling::client(&state, &who, &id).await?;
    }
    if old.source == "config" {
        return Err(Problem::conflict("this client is declared in the config file; change it there"));
    }
    check_if_match(&headers, &etag(&out(&state, &old).await?))?;
    let now = state.clock.now();
    let mut spec = clients::spec_of(&old);
    spec.name = p.name.unwrap_or(spec.name);
    spec.redirect_uris = p.redirect_uris.unwrap_or(spec.redirect_uris);
    spec.post_logout_redirect_uris = p.post_logout_redirect_uris.unwrap_or(spec.post_logout_redirect_uris);
    spec.web_origins = p.web_origins.unwrap_or(spec.web_origins);
    spec.rbac_claims = p.rbac_claims.unwrap_or(spec.rbac_claims);
    spec.require_mfa = p.require_mfa.unwrap_or(spec.require_mfa);
    spec.require_dpop = p.require_dpop.unwrap_or(spec.require_dpop);
    spec.cross_origin_loc = p.cross_origin_loc.or(spec.cross_origin_loc);
    spec.cross_origin_authentication = p.cross_origin_authentication.unwrap_or(spec.cross_origin_authentication);
    let v = clients::validate(spec, https(&state), now).map_err(Problem::bad_request)?;
    let mut c = Client { secret_hash: old.secret_hash.clone(), created_at: old.created_at, ..v.client };
    store::update(&state.db, &c).await?;
    let change = ClientAccessChange {
        require_roles: p.require_roles,
        require_groups: p.require_groups,
        default_audience: p.default_audience.map(|a| Some(a).filter(|a| !a.is_empty())),
        grant: p.grant.map(|g| (g.api, g.permissions)),
        remove_api: p.remove_api,
    };
    access::change_client_access(&state.db, &mut c, change, now).await?;
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
    caller(&state, &headers, "write:clients")?;
    let c = find(&state, &id).await?;
    if c.source == "config" {
        return Err(Problem::conflict("this client is declared in the config file; remove it there"));
    }
    check_if_match(&headers, &etag(&out(&state, &c).await?))?;
    // Grants first: a client registered again under this id between the two
    // statements starts with none, never with the old client's.
    apis::delete_client_grants(&state.db, &id).await?;
    store::delete(&state.db, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
