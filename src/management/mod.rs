//! The management API: REST + JSON under `/api/v1`, protected by access
//! tokens Sesame issues for its own built-in API (`{issuer}/api/v1`), e.g.
//! through client_credentials. It uses the same service layer as the CLI
//! (`access`, `accounts`); errors are `application/problem+json`; lists are
//! cursor-paginated; items carry an `ETag` and honour `If-Match`. The OpenAPI
//! document at `/api/v1/openapi.json` is generated from these handlers.

mod apis;
mod audit;
mod clients;
mod directory;
mod factors;
mod keys;
pub mod problem;
mod user_links;
mod users;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::OpenApi;

use crate::crypto::random;
use crate::oidc::tokens::{self, AccessClaims};
use crate::state::AppState;
use problem::Problem;

/// Where the management API is mounted (defined with the API in `access`).
pub const PREFIX: &str = crate::access::MANAGEMENT_PREFIX;

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .merge(users::routes())
        .merge(clients::routes())
        .merge(apis::routes())
        .merge(directory::routes())
        .merge(keys::routes())
        .merge(audit::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), record_changes))
}

/// Every change made through the API that succeeded is an `admin_change`
/// event: which client, which operation on which path.
async fn record_changes(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = req.method().clone();
    if matches!(method, axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let client = bearer(req.headers()).and_then(|t| tokens::verify_access_token(&state, t)).map(|c| c.client_id);
    let resp = next.run(req).await;
    if resp.status().is_success() {
        let e = crate::audit::Event::new(crate::audit::Kind::AdminChange)
            .actor(format!("client:{}", client.unwrap_or_default()))
            .details(serde_json::json!({ "operation": format!("{method} {path}"), "status": resp.status().as_u16() }));
        crate::audit::record(&state.audit, e);
    }
    resp
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

/// The caller's token, if it is for this API and carries `need`.
pub fn caller(state: &AppState, headers: &HeaderMap, need: &str) -> Result<AccessClaims, Problem> {
    let aud = crate::access::management_audience(state.issuer.as_str());
    let token =
        bearer(headers).ok_or_else(|| Problem::unauthorized(format!("a Bearer access token for {aud} is required")))?;
    let claims = tokens::verify_access_token(state, token)
        .ok_or_else(|| Problem::unauthorized("the access token is invalid or expired"))?;
    // This API takes bearer tokens only; a DPoP-bound one needs its proof.
    if claims.cnf.is_some() {
        return Err(Problem::unauthorized("the access token is DPoP-bound; this API takes Bearer tokens"));
    }
    if claims.aud != aud {
        return Err(Problem::unauthorized(format!("the access token is not for {aud}")));
    }
    if !claims.permissions.as_deref().unwrap_or_default().iter().any(|p| p == need) {
        return Err(Problem::forbidden(format!("the access token lacks the `{need}` permission")));
    }
    Ok(claims)
}

/// The caller as the operations see it: its client and its token's permissions.
pub fn admin(claims: &AccessClaims) -> crate::manage::Admin {
    crate::manage::Admin::client(&claims.client_id, claims.permissions.clone().unwrap_or_default())
}

/// The caller, checked as `caller` checks it, as the operations see it.
pub fn acting(state: &AppState, headers: &HeaderMap, need: &str) -> Result<crate::manage::Admin, Problem> {
    caller(state, headers, need).map(|c| admin(&c))
}

/// A strong ETag of an item's JSON form.
pub fn etag<T: Serialize>(v: &T) -> String {
    let json = serde_json::to_string(v).unwrap_or_default();
    format!("\"{}\"", random::sha256_hex(&json).get(..32).unwrap_or_default())
}

/// `If-Match`, when sent, must name the current ETag (or `*`).
pub fn check_if_match(headers: &HeaderMap, current: &str) -> Result<(), Problem> {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(m) if m.split(',').map(str::trim).any(|t| t == current || t == "*") => Ok(()),
        Some(_) => Err(Problem::stale()),
    }
}

/// An item with its ETag.
pub fn item<T: Serialize>(status: StatusCode, v: &T) -> Response {
    let mut r = (status, axum::Json(v)).into_response();
    if let Ok(h) = HeaderValue::from_str(&etag(v)) {
        r.headers_mut().insert(header::ETAG, h);
    }
    r
}

/// Page size: 50 unless asked, at most 200.
pub fn limit(asked: Option<u32>) -> i64 {
    i64::from(asked.unwrap_or(50).clamp(1, 200))
}

/// Opaque cursors: the last key of the page, base64url.
pub fn encode_cursor(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

pub fn decode_cursor(c: Option<&str>) -> Result<String, Problem> {
    use base64::Engine;
    match c {
        None | Some("") => Ok(String::new()),
        Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Problem::bad_request("cursor is not one this API handed out")),
    }
}

/// `limit` and `cursor` of a list.
#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// 1-200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One page of `all` (ordered by `key`), after the cursor; the next cursor
/// when more follow.
pub fn paginate<T>(
    mut all: Vec<T>,
    key: impl Fn(&T) -> String,
    q: &PageQuery,
) -> Result<(Vec<T>, Option<String>), Problem> {
    let after = decode_cursor(q.cursor.as_deref())?;
    all.sort_by_key(|x| key(x));
    let n = limit(q.limit) as usize;
    let mut rest: Vec<T> = all.into_iter().filter(|x| after.is_empty() || key(x) > after).collect();
    let more = rest.len() > n;
    rest.truncate(n);
    let next = if more { rest.last().map(|x| encode_cursor(&key(x))) } else { None };
    Ok((rest, next))
}

/// A list query, or a problem saying what is wrong with it.
pub fn page_query(
    q: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<PageQuery, Problem> {
    q.map(|axum::extract::Query(q)| q).map_err(|e| Problem::bad_request(e.body_text()))
}

/// A JSON body, or a problem saying what is wrong with it.
pub fn body<T>(b: Result<axum::Json<T>, axum::extract::rejection::JsonRejection>) -> Result<T, Problem> {
    b.map(|axum::Json(v)| v).map_err(|e| Problem::new(e.status(), e.body_text()))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Sesame management API", description = "Users, roles, groups, APIs and signing keys."),
    paths(
        users::list,
        users::create,
        users::get_one,
        users::patch,
        users::remove,
        user_links::sessions,
        user_links::end_sessions,
        user_links::end_session,
        user_links::identities,
        user_links::unlink,
        user_links::grant_role,
        user_links::revoke_role,
        factors::list,
        factors::remove,
        directory::list_roles,
        directory::create_role,
        directory::get_role,
        directory::patch_role,
        directory::delete_role,
        directory::list_groups,
        directory::create_group,
        directory::get_group,
        directory::patch_group,
        directory::delete_group,
        apis::list_apis,
        apis::create_api,
        apis::get_api,
        apis::patch_api,
        apis::delete_api,
        keys::list,
        keys::rotate,
        clients::list,
        clients::create,
        clients::get_one,
        clients::patch,
        clients::remove,
        clients::rotate_secret,
        audit::list,
    ),
    components(schemas(Problem)),
    modifiers(&Security),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The generated document, with what every operation may answer besides its
/// own responses (401, 403, 503; 400 where it reads input), and problems
/// under their own media type.
pub fn document(issuer: &str) -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new(crate::access::management_audience(issuer))]);
    let mut v = serde_json::to_value(&doc).unwrap_or_default();
    merge_flattened(&mut v);
    let problem = serde_json::json!({
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    });
    if let Some(paths) = v.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
            for op in item.values_mut().filter_map(|o| o.as_object_mut()) {
                let reads_input = op.contains_key("requestBody") || op.contains_key("parameters");
                let has_body = op.contains_key("requestBody");
                let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
                for r in responses.values_mut() {
                    if let Some(c) = r.get_mut("content").and_then(|c| c.as_object_mut())
                        && c.get("application/json").and_then(|j| j.pointer("/schema/$ref")).and_then(|x| x.as_str())
                            == Some("#/components/schemas/Problem")
                        && let Some(j) = c.remove("application/json")
                    {
                        c.insert("application/problem+json".into(), j);
                    }
                }
                let mut add = vec![
                    ("401", "No valid token for this API"),
                    ("403", "The token lacks the permission"),
                    ("503", "The database is unavailable"),
                ];
                if reads_input {
                    add.push(("400", "The request is malformed"));
                }
                if has_body {
                    add.push(("415", "The body is not application/json"));
                    add.push(("422", "The body does not fit the schema"));
                }
                for (code, what) in add {
                    let mut p = problem.clone();
                    p["description"] = what.into();
                    responses.entry(code).or_insert(p);
                }
            }
        }
    }
    v
}

async fn openapi_json(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let mut r = axum::Json(document(state.issuer.as_str())).into_response();
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

/// A response that flattens a request type (`ClientOut` holds a
/// `ClientSpec`) is documented as `allOf` the two, and the request type's
/// `additionalProperties: false` would then refuse the response's own
/// fields: such schemas become one object with both sets of properties.
fn merge_flattened(doc: &mut serde_json::Value) {
    let Some(schemas) = doc.pointer("/components/schemas").cloned() else { return };
    let Some(out) = doc.pointer_mut("/components/schemas").and_then(|s| s.as_object_mut()) else { return };
    for schema in out.values_mut() {
        let Some(parts) = schema.get("allOf").and_then(|a| a.as_array()).cloned() else { continue };
        let (mut props, mut required) = (serde_json::Map::new(), Vec::new());
        for part in parts {
            let part = match part.get("$ref").and_then(|r| r.as_str()) {
                Some(r) => schemas.get(r.trim_start_matches("#/components/schemas/")).cloned().unwrap_or_default(),
                None => part,
            };
            props.extend(part.get("properties").and_then(|p| p.as_object()).cloned().unwrap_or_default());
            required.extend(part.get("required").and_then(|r| r.as_array()).cloned().unwrap_or_default());
        }
        *schema = serde_json::json!({ "type": "object", "properties": props, "required": required });
    }
}
