//! Users' self-service: following emailed links (verify an address, finish a
//! sign-up, reset a password), asking for them again, and the account page.
//! Every form carries a CSRF token; a link is spent by a POST from the page it
//! opens (so mail scanners that fetch links spend nothing), and pages say the
//! same thing whether or not an address has an account.

mod account;
mod pages;
mod reset;
mod verify;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::config::{Config, StaticClient};

pub use crate::emails::{RESET_PASSWORD, VERIFY_EMAIL};
pub const RESEND_VERIFICATION: &str = "/verify-email/resend";
pub const FORGOT_PASSWORD: &str = "/forgot-password";
pub const ACCOUNT: &str = "/account";

/// The built-in client the account page signs in through (the login box
/// always serves a pending authorization of some client).
pub const ACCOUNT_CLIENT_ID: &str = "sesame-account";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(VERIFY_EMAIL, get(verify::get).post(verify::post))
        .route(RESEND_VERIFICATION, get(verify::resend_get).post(verify::resend_post))
        .route(FORGOT_PASSWORD, get(reset::forgot_get).post(reset::forgot_post))
        .route(RESET_PASSWORD, get(reset::get).post(reset::post))
        .route(ACCOUNT, get(account::get))
        .route("/account/password", post(account::change_password))
        .route("/account/email", post(account::change_email))
        .route("/account/sessions/end", post(account::end_session))
        .route("/account/identities/unlink", post(account::unlink))
        .route("/account/identities/link", post(account::link))
        .route("/account/consents/revoke", post(account::revoke_consent))
}

/// `sesame-account`: a first-party public client whose only redirect URI is
/// the account page. Built into the binary (`ClientCache::with_builtin`): no
/// row, never listed, nothing to manage.
pub fn account_client(cfg: &Config) -> StaticClient {
    StaticClient {
        client_id: ACCOUNT_CLIENT_ID.into(),
        name: "Your account".into(),
        public: true,
        first_party: true,
        redirect_uris: vec![format!("{}{ACCOUNT}", cfg.issuer.trim_end_matches('/'))],
        grant_types: vec!["authorization_code".into()],
        token_endpoint_auth_method: Some("none".into()),
        ..StaticClient::default()
    }
}

/// `path?req=ID`, or `path` without a pending request.
fn with_req(state: &AppState, path: &str, req: Option<&str>) -> String {
    match req.filter(|r| !r.is_empty()) {
        Some(r) => format!("{}{path}?req={}", state.issuer.path_prefix(), urlencode(r)),
        None => format!("{}{path}", state.issuer.path_prefix()),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Longest email accepted anywhere (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;
