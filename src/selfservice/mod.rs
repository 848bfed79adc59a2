//! Users' self-service: following emailed links (verify an address, finish a
//! sign-up, reset a password), asking for them again, and the account page.
//! Every form carries a CSRF token; a link is spent by a POST from the page it
//! opens (so mail scanners that fetch links spend nothing), and pages say the
//! same thing whether or not an address has an account.

mod account;
mod connected;
mod factors;
mod pages;
mod reset;
mod verify;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;

use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::page::{self};
use crate::http::params::Params;
use crate::session;
use crate::state::AppState;
use pages::EmailForm;

pub use crate::emails::{RESET_PASSWORD, VERIFY_EMAIL};
pub use reset::send_reset;
pub const RESEND_VERIFICATION: &str = "/verify-email/resend";
pub const FORGOT_PASSWORD: &str = "/forgot-password";
pub const ACCOUNT: &str = crate::clients::ACCOUNT_PAGE;

/// The built-in client the account page signs in through (the login box
/// always serves a pending authorization of some client).
pub use crate::clients::ACCOUNT_CLIENT_ID;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(VERIFY_EMAIL, get(verify::get).post(verify::post))
        .route(RESEND_VERIFICATION, get(verify::resend_get).post(verify::resend_post))
        .route(FORGOT_PASSWORD, get(reset::forgot_get).post(reset::forgot_post))
        .route(RESET_PASSWORD, get(reset::get).post(reset::post))
        .route("/", get(home))
        .route(ACCOUNT, get(account::get))
        .route("/account/password", post(account::change_password))
        .route("/account/email", post(account::change_email))
        .route("/account/sessions/end", post(connected::end_session))
        .route("/account/identities/unlink", post(connected::unlink))
        .route("/account/identities/link", post(connected::link))
        .route("/account/consents/revoke", post(connected::revoke_consent))
        .route("/account/factors/totp", get(factors::totp_get).post(factors::totp_post))
        .route("/account/factors/rename", post(factors::rename))
        .route("/account/factors/remove", post(factors::remove))
        .route("/account/factors/recovery-codes", post(factors::recovery_codes))
        .route("/account/factors/passkey/options", post(factors::passkey_options))
        .route("/account/factors/passkey", post(factors::passkey_finish))
        .route("/account/factors/codes", get(factors::codes))
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

fn csrf_failure() -> Failure {
    Failure::page(OAuthError::new(ErrorCode::AccessDenied, "This form has expired. Open the page again."))
}

/// A page that asks for one address (resend the verification link, forgot
/// password): its words and where it posts.
struct AddressForm {
    title: &'static str,
    lead: &'static str,
    path: &'static str,
}

impl AddressForm {
    fn page(&self, state: &AppState, csrf: String, req: Option<&str>, email: String, error: Option<&str>) -> EmailForm {
        EmailForm {
            brand: state.brand.clone(),
            title: self.title.into(),
            lead: self.lead.into(),
            action: with_req(state, self.path, None),
            csrf,
            req: req.unwrap_or_default().to_string(),
            email,
            error: error.map(str::to_string),
            button: "Send the link".into(),
            back_url: req.map(|r| with_req(state, crate::pending::IDENTIFY, Some(r))),
        }
    }

    fn get(&self, state: &AppState, jar: CookieJar, req: Option<String>) -> Response {
        let (jar, csrf) = session::ensure_csrf(state, jar);
        let req = req.filter(|r| r.len() <= 128);
        (jar, page::render(StatusCode::OK, &self.page(state, csrf, req.as_deref(), String::new(), None)))
            .into_response()
    }

    /// The posted form: CSRF checked, the pending request it came from, and the
    /// address — valid and within its budget (`limits.mail`, the same for
    /// every address), or the page to answer with instead.
    fn read<'p>(
        &self,
        state: &AppState,
        ip: Option<std::net::IpAddr>,
        jar: &CookieJar,
        p: &'p Params,
    ) -> Result<Result<(Option<&'p str>, String), Response>, Failure> {
        let csrf = session::check_csrf(state, jar, p.first("csrf")).ok_or_else(csrf_failure)?;
        let req = p.first("req").filter(|r| !r.is_empty() && r.len() <= 128);
        let email = p.first("email").unwrap_or("").trim().to_string();
        if email.len() > MAX_EMAIL_LEN || crate::domain::validate_email(&email).is_err() {
            let f = self.page(state, csrf, req, String::new(), Some("That is not an email address."));
            return Ok(Err(page::render(StatusCode::BAD_REQUEST, &f)));
        }
        if !state.limits.mail(ip, &email) {
            let f = self.page(state, csrf, req, email, Some("Too many requests. Wait a minute, then try again."));
            return Ok(Err(page::render(StatusCode::TOO_MANY_REQUESTS, &f)));
        }
        Ok(Ok((req, email)))
    }
}

/// "Check your email", the same whatever the address.
fn check_your_email(state: &AppState, message: String, req: Option<&str>) -> Response {
    let link = req.map(|r| (with_req(state, crate::pending::IDENTIFY, Some(r)), "Back to sign in".to_string()));
    page::notice(&state.brand, StatusCode::OK, "Check your email", message, link)
}

/// The issuer's own address, opened by hand: what this is and the way on
/// (the account page; the console too, for a signed-in administrator).
async fn home(axum::extract::State(state): axum::extract::State<AppState>, jar: CookieJar) -> Response {
    let admin = async {
        let Some(s) = session::current(&state, &jar).await? else { return Ok(false) };
        Ok::<_, crate::storage::StorageError>(!crate::console::permissions_of(&state, &s.user_id).await?.is_empty())
    };
    let page = pages::Home {
        brand: state.brand.clone(),
        account: with_req(&state, ACCOUNT, None),
        console: admin.await.unwrap_or(false).then(|| crate::console::path(&state, "")),
    };
    page::render(StatusCode::OK, &page)
}
