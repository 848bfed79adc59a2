//! Sign-in and sign-up forms. Wrong email and wrong password get the same
//! message and take the same time (an unknown email still runs argon2).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::{LoginPage, ProviderButton, SignupPage};
use super::{LOGIN, SIGNUP, signup};
use crate::audit::{self, Event, Kind};
use crate::crypto::password;
use crate::domain::{User, validate_email};
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::federation;
use crate::http::client_ip::ClientIp;
use crate::http::page::{self};
use crate::http::params::Params;
use crate::pending::password::{self as signin, Checked};
use crate::pending::{self, Loaded, RESUME};
use crate::session;
use crate::state::AppState;
use crate::storage::users;

const WRONG: &str = "Wrong email or password.";
const THROTTLED: &str = "Too many attempts. Wait a minute, then try again.";

#[derive(Deserialize)]
pub struct ReqQuery {
    /// Empty when the page was opened by itself, not from an application.
    #[serde(default)]
    req: String,
    /// A failed upstream sign-in (`federation::Problem` code) and its provider.
    #[serde(default)]
    fed_error: Option<String>,
    #[serde(default)]
    provider: Option<String>,
}

impl ReqQuery {
    pub fn req(&self) -> &str {
        &self.req
    }
}

fn url(state: &AppState, path: &str, req: &str) -> String {
    format!("{}{path}?req={req}", state.issuer.path_prefix())
}

fn login_page(
    state: &AppState,
    l: &Loaded,
    csrf: String,
    email: String,
    error: Option<String>,
    current: Option<String>,
) -> LoginPage {
    let brand = state.brand.clone();
    let providers = state
        .federation
        .enabled()
        .map(|p| ProviderButton {
            id: p.id().to_string(),
            label: format!("Continue with {}", p.name),
            url: federation::start_url(&state.issuer, p.id(), &l.row.id),
            icon: p.icon_url(&brand.static_base),
        })
        .collect();
    let notice = l.link.as_ref().map(|k| {
        format!(
            "An account with {} already exists. Sign in to it once to link your {} account.",
            k.email, k.provider_name
        )
    });
    let password_login = state.config.login.password_login;
    LoginPage {
        providers,
        password_login,
        notice,
        brand,
        client_name: l.client.name.clone(),
        action: format!("{}{LOGIN}", state.issuer.path_prefix()),
        csrf,
        req: l.row.id.clone(),
        email,
        error,
        signup_url: (state.config.login.signup_enabled && password_login).then(|| url(state, SIGNUP, &l.row.id)),
        continue_url: format!("{}&account=current", url(state, RESUME, &l.row.id)),
        forgot_url: url(state, crate::selfservice::FORGOT_PASSWORD, &l.row.id),
        resend_url: url(state, crate::selfservice::RESEND_VERIFICATION, &l.row.id),
        current_account: current,
        passkey: state.passkeys.available().then(|| {
            let base = state.issuer.path_prefix();
            (format!("{base}{}", super::passkey::SIGNIN_OPTIONS), format!("{base}{}", super::passkey::SIGNIN_FINISH))
        }),
    }
}

/// `/login` or `/signup` opened by itself (a bookmark, a typed address):
/// the account page, which signs in through the login box.
fn no_request(state: &AppState) -> Response {
    Redirect::to(&format!("{}{}", state.issuer.path_prefix(), crate::selfservice::ACCOUNT)).into_response()
}

pub async fn login_get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
    if q.req.is_empty() {
        return no_request(&state);
    }
    let l = match pending::load(&state, &jar, &q.req).await {
        Ok(l) => l,
        Err(f) => return f.render(&state.issuer, &state.brand),
    };
    // The browser's session was ended without it (password change, disabled
    // user): the applications' front-channel logout first, then this page.
    if let Some(frames) = crate::frontchannel::ended_elsewhere(&state, &jar).await.filter(|f| !f.is_empty()) {
        let here = url(&state, LOGIN, &l.row.id);
        return (
            session::remove_cookies(&state, jar),
            crate::frontchannel::logged_out_page(&state, Some(here), frames),
        )
            .into_response();
    }
    let (jar, csrf) = session::ensure_csrf(&state, jar);
    // The account chooser shows who is signed in (prompt=select_account).
    let current = if l.req.prompt("select_account") {
        match session::current(&state, &jar).await {
            Ok(Some(s)) => users::find_by_id(&state.db, &s.user_id).await.ok().flatten().map(|u| u.label().to_string()),
            _ => None,
        }
    } else {
        None
    };
    let email = match &l.link {
        Some(k) => k.email.clone(),
        None => l.req.login_hint.clone().unwrap_or_default(),
    };
    // A failed upstream sign-in comes back here with its problem's code.
    let error = q.fed_error.as_deref().and_then(federation::Problem::from_code).map(|p| {
        let name = q.provider.as_deref().and_then(|id| state.federation.get(id)).map(|p| p.name.clone());
        p.message(name.as_deref().unwrap_or("The provider"))
    });
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (jar, page::render_scripted(status, &login_page(&state, &l, csrf, email, error, current))).into_response()
}

/// Checks the form's CSRF token against the browser's cookie.
pub(super) fn check_csrf(state: &AppState, jar: &CookieJar, p: &Params) -> Result<String, Failure> {
    session::check_csrf(state, jar, p.first("csrf")).ok_or_else(|| {
        let msg = "This form has expired. Go back to the application and try again.";
        Failure::page(OAuthError::new(ErrorCode::AccessDenied, msg))
    })
}

pub async fn login_post(State(state): State<AppState>, ClientIp(ip): ClientIp, jar: CookieJar, p: Params) -> Response {
    let run = async {
        let csrf = check_csrf(&state, &jar, &p)?;
        let l = pending::load(&state, &jar, p.first("req").unwrap_or("")).await?;
        if !state.config.login.password_login {
            return Err(Failure::page(OAuthError::new(ErrorCode::NotFound, "Password sign-in is not available here.")));
        }
        let email = p.first("email").unwrap_or("").trim().to_string();
        let pw = p.first("password").unwrap_or("").to_string();
        if email.len() > signin::MAX_EMAIL_LEN || pw.len() > 4 * password::MAX_PASSWORD_LEN {
            let page = login_page(&state, &l, csrf, String::new(), Some(WRONG.into()), None);
            return Ok(page::render_scripted(StatusCode::BAD_REQUEST, &page));
        }
        let user = match signin::check(&state, ip, &email, pw, &l.client.client_id).await? {
            Checked::Signed(u) => u,
            Checked::Throttled => {
                let page = login_page(&state, &l, csrf, email, Some(THROTTLED.into()), None);
                return Ok(page::render_scripted(StatusCode::TOO_MANY_REQUESTS, &page));
            }
            Checked::NotVerified => {
                let msg = "Verify your email address first: follow the link we sent you, or ask for a new one below.";
                let page = login_page(&state, &l, csrf, email, Some(msg.into()), None);
                return Ok(page::render_scripted(StatusCode::FORBIDDEN, &page));
            }
            Checked::Wrong => {
                let page = login_page(&state, &l, csrf, email, Some(WRONG.into()), None);
                return Ok(page::render_scripted(StatusCode::UNAUTHORIZED, &page));
            }
        };
        signed_in(&state, jar, &user, &l).await
    };
    match run.await {
        Ok(r) => r,
        Err(f) => f.render(&state.issuer, &state.brand),
    }
}

/// Hands the identified user to the pending request.
async fn signed_in(state: &AppState, jar: CookieJar, user: &User, l: &Loaded) -> Result<Response, Failure> {
    pending::identified(
        state,
        jar,
        user,
        pending::SignedIn { amr: vec!["pwd".into()], idp: None, subject: None, proofs: Default::default() },
        l,
    )
    .await
}

fn signup_off(state: &AppState) -> Response {
    Failure::page(OAuthError::new(ErrorCode::NotFound, "Sign-up is not available here."))
        .render(&state.issuer, &state.brand)
}

fn signup_page(
    state: &AppState,
    l: &Loaded,
    csrf: String,
    email: String,
    name: String,
    error: Option<String>,
) -> SignupPage {
    SignupPage {
        brand: state.brand.clone(),
        client_name: l.client.name.clone(),
        action: format!("{}{SIGNUP}", state.issuer.path_prefix()),
        login_url: url(state, LOGIN, &l.row.id),
        csrf,
        req: l.row.id.clone(),
        email,
        name,
        error,
        min_length: state.config.passwords.min_length,
    }
}

pub async fn signup_get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
    if !state.config.login.signup_enabled {
        return signup_off(&state);
    }
    if q.req.is_empty() {
        return no_request(&state);
    }
    let l = match pending::load(&state, &jar, &q.req).await {
        Ok(l) => l,
        Err(f) => return f.render(&state.issuer, &state.brand),
    };
    let (jar, csrf) = session::ensure_csrf(&state, jar);
    let email = l.req.login_hint.clone().unwrap_or_default();
    (jar, page::render(StatusCode::OK, &signup_page(&state, &l, csrf, email, String::new(), None))).into_response()
}

pub async fn signup_post(State(state): State<AppState>, ClientIp(ip): ClientIp, jar: CookieJar, p: Params) -> Response {
    if !state.config.login.signup_enabled {
        return signup_off(&state);
    }
    let run = async {
        let csrf = check_csrf(&state, &jar, &p)?;
        let l = pending::load(&state, &jar, p.first("req").unwrap_or("")).await?;
        let email = p.first("email").unwrap_or("").trim().to_string();
        let name = p.first("name").unwrap_or("").trim().to_string();
        let pw = p.first("password").unwrap_or("").to_string();
        let again = |msg: String| {
            let page = signup_page(&state, &l, csrf.clone(), email.clone(), name.clone(), Some(msg));
            page::render(StatusCode::BAD_REQUEST, &page)
        };
        if email.len() > signin::MAX_EMAIL_LEN {
            return Ok(again("That is not an email address.".into()));
        }
        if let Err(e) = validate_email(&email) {
            return Ok(again(e));
        }
        if !state.limits.signup(ip) {
            let e = Event::failure(Kind::Signup, "throttled").email(&email).client(&l.client.client_id);
            audit::record(&state.audit, e);
            let page = signup_page(&state, &l, csrf.clone(), email.clone(), name.clone(), Some(THROTTLED.into()));
            return Ok(page::render(StatusCode::TOO_MANY_REQUESTS, &page));
        }
        if let Err(e) = password::Policy::from_config(&state.config.passwords).check(&pw) {
            return Ok(again(format!("The {e}.")));
        }
        // Spent whether or not the address has an account: the answer is the
        // same either way, and so is the work done before it.
        if !state.limits.mail(None, &email) {
            let page = signup_page(&state, &l, csrf.clone(), email.clone(), name.clone(), Some(THROTTLED.into()));
            return Ok(page::render(StatusCode::TOO_MANY_REQUESTS, &page));
        }
        let _permit = signin::slot(&state)?;
        let hash = password::hash(pw).await.map_err(Failure::internal)?;
        signup::start(&state, &l, &email, &name, hash).await.map_err(Failure::internal)?;
        let message = format!(
            "We sent a link to {email}. Follow it to finish signing up. (If this address already has an account, the mail says so.)"
        );
        Ok::<_, Failure>(page::notice(&state.brand, StatusCode::OK, "Check your email", message, None))
    };
    match run.await {
        Ok(r) => r,
        Err(f) => f.render(&state.issuer, &state.brand),
    }
}
