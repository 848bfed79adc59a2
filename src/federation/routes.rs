//! The federation round trip's routes (apart from the module so that the
//! provider registry, which the application state holds, imports no handler).

use axum::Router;
use axum::routing::get;

use super::{flow, provider};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/federation/{id}/start", get(flow::start))
        .route("/federation/{id}/callback", get(flow::callback).post(flow::form_post))
        .route("/static/{version}/providers/{file}", get(provider::icon))
}
