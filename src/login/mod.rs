//! The hosted login box: sign in, sign up, consent, and its static assets.
//! Server-rendered, no JavaScript needed; every form carries a CSRF token and
//! names its pending request by id, whose parameters stay server-side.

mod consent;
mod factor;
mod handlers;
mod no_access;
mod pages;
mod passkey;
mod signup;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// The login box serves the identify and consent steps of a pending request.
pub const LOGIN: &str = crate::pending::IDENTIFY;
pub const SIGNUP: &str = "/signup";
pub const CONSENT: &str = crate::pending::CONSENT;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(LOGIN, get(handlers::login_get).post(handlers::login_post))
        .route(SIGNUP, get(handlers::signup_get).post(handlers::signup_post))
        .route(CONSENT, get(consent::get).post(consent::post))
        .route(factor::FACTOR, get(factor::get).post(factor::post))
        .route(factor::FACTOR_ENROL, post(factor::enrol))
        .route(factor::FACTOR_CODES, get(factor::codes))
        .route(factor::PASSKEY_OPTIONS, post(passkey::factor_options))
        .route(factor::PASSKEY_FINISH, post(passkey::factor_finish))
        .route(passkey::SIGNIN_OPTIONS, post(passkey::signin_options))
        .route(passkey::SIGNIN_FINISH, post(passkey::signin_finish))
        .route(crate::pending::NO_ACCESS, get(no_access::get).post(no_access::post))
        .route("/static/{version}/app.css", get(app_css))
        .route("/static/{version}/theme.css", get(theme_css))
        .route("/static/{version}/passkeys.js", get(passkeys_js))
}

const APP_CSS: &str = include_str!("../../static/app.css");

fn css(body: String) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    r
}

const PASSKEYS_JS: &str = include_str!("../../static/passkeys.js");

async fn passkeys_js() -> Response {
    let mut r = PASSKEYS_JS.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    r
}

async fn app_css() -> Response {
    css(APP_CSS.to_string())
}

/// Branding colour from config (validated as a hex colour at start).
async fn theme_css(State(state): State<AppState>) -> Response {
    let mut r = css(format!(":root {{ --primary: {}; }}\n", state.config.login.primary_color));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r
}
