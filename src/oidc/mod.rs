//! The OpenID Connect protocol endpoints. Handlers stay thin; paths are
//! constants so discovery and the router cannot disagree.

pub mod audience;
pub mod authorize;
pub mod check_session;
pub mod cors;
pub mod discovery;
pub mod dpop;
pub mod grants;
pub mod introspect;
pub mod jwks;
pub mod logout;
pub mod origins;
pub mod request;
pub mod response;
pub mod revoke;
pub mod token;
pub mod tokens;
pub mod userinfo;

use axum::Router;
use axum::routing::{get, post};
use tower_http::cors::{Any, CorsLayer};

use crate::state::AppState;

pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/jwks";
/// Auth0's location for the same document; Auth0 SDKs look here.
pub const JWKS_WELL_KNOWN: &str = "/.well-known/jwks.json";
pub const AUTHORIZE: &str = "/authorize";
pub const TOKEN: &str = "/token";
pub const USERINFO: &str = "/userinfo";
pub const REVOKE: &str = "/revoke";
pub const INTROSPECT: &str = "/introspect";
pub const END_SESSION: &str = "/logout";
pub const CHECK_SESSION: &str = "/check_session";
/// Auth0's token path; Auth0 SDKs build it from their domain.
pub const TOKEN_AUTH0: &str = "/oauth/token";
/// Auth0's logout path (`returnTo`, `client_id`).
pub const LOGOUT_AUTH0: &str = "/v2/logout";

pub fn routes(state: &AppState) -> Router<AppState> {
    // Public metadata: any origin may read it.
    let public = CorsLayer::new().allow_origin(Any).allow_methods([axum::http::Method::GET]);
    let metadata = Router::new()
        .route(DISCOVERY, {
            let doc = discovery::Cached::new(state);
            get(move || std::future::ready(doc.response()))
        })
        .route(JWKS, get(jwks::get))
        .route(JWKS_WELL_KNOWN, get(jwks::get))
        .layer(public);
    // Endpoints SPAs fetch: registered web origins only.
    let fetched = Router::new()
        .route(TOKEN, post(token::post))
        .route(TOKEN_AUTH0, post(token::post))
        .route(USERINFO, get(userinfo::handle).post(userinfo::handle))
        .route(REVOKE, post(revoke::post))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::layer));
    Router::new()
        .merge(metadata)
        .merge(fetched)
        .route(AUTHORIZE, get(authorize::handle).post(authorize::handle))
        .route(crate::pending::RESUME, get(authorize::resume))
        .route(INTROSPECT, post(introspect::post))
        .route(END_SESSION, get(logout::handle).post(logout::handle))
        .route(LOGOUT_AUTH0, get(logout::auth0))
        .route(CHECK_SESSION, get(check_session::page))
}
