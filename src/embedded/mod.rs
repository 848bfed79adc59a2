//! Embedded login: the endpoints auth0-js calls from an application's own
//! pages (`webAuth.login`, `signup`, `changePassword`), answered in the
//! shapes auth0-js reads. The password check and the login ticket belong to
//! the pending authorization (`pending::password`, `pending::ticket`): the
//! `/authorize` request that carries the ticket is where the user signs in.

mod co;
mod dbconnections;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::state::AppState;

pub const CO_AUTHENTICATE: &str = "/co/authenticate";
pub const SIGNUP: &str = "/dbconnections/signup";
pub const CHANGE_PASSWORD: &str = "/dbconnections/change_password";

pub fn routes(state: &AppState) -> Router<AppState> {
    let fetched = Router::new()
        .route(CO_AUTHENTICATE, post(co::authenticate))
        .route(SIGNUP, post(dbconnections::signup))
        .route(CHANGE_PASSWORD, post(dbconnections::change_password))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::oidc::cors::with_credentials));
    Router::new()
        .merge(fetched)
        .route(crate::pending::ticket::VERIFY, post(co::verify))
        .route("/static/{version}/co-verify.js", get(co::script))
}

/// An error as auth0-js reads it from `/co/authenticate` (`error`,
/// `error_description`).
fn login_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (status, crate::error::no_store(), axum::Json(body)).into_response()
}

/// An error as auth0-js reads it from `/dbconnections/*` (`name`, `code`,
/// `description`, `statusCode`; `policy` for a weak password).
fn db_error(status: StatusCode, name: &str, code: &str, description: Value) -> Response {
    let body = json!({ "name": name, "code": code, "description": description, "statusCode": status.as_u16() });
    (status, crate::error::no_store(), axum::Json(body)).into_response()
}

/// The client a call names, if the calling page may speak for it: a browser
/// call (with `Origin`) only from one of the client's web origins.
async fn client_for(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<std::sync::Arc<crate::domain::Client>, Response> {
    let unknown = || login_error(StatusCode::BAD_REQUEST, "invalid_request", "unknown client");
    if client_id.is_empty() || client_id.len() > 128 || crate::text::has_control(client_id) {
        return Err(unknown());
    }
    let client = match state.client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(unknown()),
        Err(e) => {
            let f = crate::error::OAuthError::internal(e);
            return Err(login_error(f.code.status(), f.error(), "Sesame is temporarily unavailable"));
        }
    };
    if !client.cross_origin_authentication {
        let msg = "embedded login is not enabled for this application (cross_origin_authentication)";
        return Err(login_error(StatusCode::FORBIDDEN, "unauthorized_client", msg));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !client.web_origins.iter().any(|o| o == origin)
    {
        let msg = format!("origin {origin} is not a web origin of this application");
        return Err(login_error(StatusCode::FORBIDDEN, "access_denied", &msg));
    }
    Ok(client)
}

/// `connection` / `realm`: the email and password database, under either of its names.
fn password_connection(state: &AppState, name: Option<&str>) -> bool {
    state.config.login.password_login
        && name.is_none_or(|n| crate::pending::password::PASSWORD_CONNECTIONS.contains(&n))
}
