//! The OpenID Connect protocol endpoints. Handlers stay thin; paths are
//! constants so discovery and the router cannot disagree.

pub mod discovery;
pub mod jwks;

use axum::Router;
use axum::routing::get;
use tower_http::cors::{Any, CorsLayer};

use crate::app::AppState;

pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/jwks";
/// Auth0's location for the same document; Auth0 SDKs look here.
pub const JWKS_WELL_KNOWN: &str = "/.well-known/jwks.json";

pub fn routes() -> Router<AppState> {
    // Public metadata: any origin may read it.
    let public = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([axum::http::Method::GET]);
    Router::new()
        .route(DISCOVERY, get(discovery::get))
        .route(JWKS, get(jwks::get))
        .route(JWKS_WELL_KNOWN, get(jwks::get))
        .layer(public)
}
