//! Sign-in and sign-up forms. Wrong email and wrong password get the same
//! message and take the same time (an unknown email still runs argon2).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::pages::{LoginPage, ProviderButton, SignupPage};
use super::{LOGIN, SIGNUP, signup};
use crate::audit::{self, Event, Kind};
use crate::crypto::{password, random};
use crate::domain::{User, validate_email};
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::federation;
use crate::http::client_ip::ClientIp;
use crate::http::page::{self};
use crate::http::params::Params;
use crate::pending::{self, Loaded, RESUME};
use crate::session;
use crate::state::AppState;
use crate::storage::users;

const WRONG: &str = "Wrong email or password.";
const THROTTLED: &str = "Too many attempts. Wait a minute, then try again.";

#[derive(Deserialize)]
pub struct ReqQuery {
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

pub async fn login_get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
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

/// Longest email an account can have (RFC 5321 path limit); anything longer is
/// refused before any limiter or database work.
const MAX_EMAIL_LEN: usize = 254;

pub async fn login_post(State(state): State<AppState>, ClientIp(ip): ClientIp, jar: CookieJar, p: Params) -> Response {
    let run = async {
        let csrf = check_csrf(&state, &jar, &p)?;
        let l = pending::load(&state, &jar, p.first("req").unwrap_or("")).await?;
        if !state.config.login.password_login {
            return Err(Failure::page(OAuthError::new(ErrorCode::NotFound, "Password sign-in is not available here.")));
        }
        let email = p.first("email").unwrap_or("").trim().to_string();
        let pw = p.first("password").unwrap_or("").to_string();
        if email.len() > MAX_EMAIL_LEN || pw.len() > 4 * password::MAX_PASSWORD_LEN {
            let page = login_page(&state, &l, csrf, String::new(), Some(WRONG.into()), None);
            return Ok(page::render_scripted(StatusCode::BAD_REQUEST, &page));
        }
        // Throttle guessing per address and per account, before spending argon2 time.
        let failed = |reason: &str| {
            let e = Event::failure(Kind::LoginFailure, reason).email(&email).client(&l.client.client_id);
            audit::record(&state.audit, e.method("pwd"));
        };
        if !state.limits.login(&state.db, state.clock.now(), ip, &email).await.map_err(Failure::internal)? {
            failed("throttled");
            let page = login_page(&state, &l, csrf, email, Some(THROTTLED.into()), None);
            return Ok(page::render_scripted(StatusCode::TOO_MANY_REQUESTS, &page));
        }
        let _permit = password_slot(&state)?;
        let user = users::find_by_email(&state.db, &email).await.map_err(Failure::internal)?;
        let ok = match &user {
            Some(u) if !u.disabled => match &u.password_hash {
                Some(h) => password::verify(pw.clone(), h.clone()).await,
                None => dummy_verify(pw.clone()).await,
            },
            _ => dummy_verify(pw.clone()).await,
        };
        let user = match user {
            Some(u) if ok && !u.disabled && state.config.login.require_verified_email && !u.email_verified => {
                let e =
                    Event::failure(Kind::LoginFailure, "email_not_verified").account(&u).client(&l.client.client_id);
                audit::record(&state.audit, e.method("pwd"));
                let msg = "Verify your email address first: follow the link we sent you, or ask for a new one below.";
                let page = login_page(&state, &l, csrf, email, Some(msg.into()), None);
                return Ok(page::render_scripted(StatusCode::FORBIDDEN, &page));
            }
            Some(u) if ok && !u.disabled => {
                state.limits.signed_in(&state.db, state.clock.now(), ip, &email).await.map_err(Failure::internal)?;
                upgrade_hash(&state, u, pw).await
            }
            other => {
                let reason = match &other {
                    None => "unknown_user",
                    Some(u) if u.disabled => "disabled",
                    Some(u) if u.password_hash.is_none() => "no_password",
                    Some(_) => "wrong_password",
                };
                let e = Event::failure(Kind::LoginFailure, reason).email(&email).client(&l.client.client_id);
                let e = match &other {
                    Some(u) => e.user(u.user_id.clone()),
                    None => e,
                };
                audit::record(&state.audit, e.method("pwd"));
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

/// An imported (bcrypt) or weaker hash is replaced by argon2id with our
/// parameters once the password is known to be right. A failure keeps the old
/// hash: the sign-in goes on.
async fn upgrade_hash(state: &AppState, mut u: User, pw: String) -> User {
    if !u.password_hash.as_deref().is_some_and(password::needs_upgrade) {
        return u;
    }
    match password::hash(pw.clone()).await {
        Ok(h) => {
            // Only over the hash this sign-in verified: never over a change
            // made meanwhile (a reset, a reclaim).
            let old = u.password_hash.clone().unwrap_or_default();
            match users::replace_password_hash(&state.db, &u.user_id, &old, &h, state.clock.now()).await {
                Ok(true) => {
                    tracing::info!(user_id = %u.user_id, "password hash upgraded to argon2id");
                    u.password_hash = Some(h);
                }
                // Another sign-in upgraded it first (then the stored hash
                // takes the same password), or it changed: the sign-in goes
                // on with what is stored, which `pending::identified` checks.
                Ok(false) => match users::find_by_id(&state.db, &u.user_id).await {
                    Ok(Some(now)) if now.password_hash.as_deref().is_some_and(|h| !password::needs_upgrade(h)) => {
                        if let Some(h) = now.password_hash.clone()
                            && password::verify(pw, h.clone()).await
                        {
                            u.password_hash = Some(h);
                        }
                    }
                    _ => tracing::info!(user_id = %u.user_id, "password changed meanwhile; hash not upgraded"),
                },
                Err(e) => tracing::warn!(user_id = %u.user_id, error = %e, "password hash upgrade not stored"),
            }
        }
        // An imported password may be shorter than our policy: keep it as it is.
        Err(e) => tracing::info!(user_id = %u.user_id, reason = %e, "password hash not upgraded"),
    }
    u
}

/// A place in the password-hashing queue, or 503 with Retry-After. A burst is
/// served as long as each sign-in can start hashing within
/// `login.max_password_wait_ms` (the measured hash time times the rounds
/// queued ahead of it); only what could not start by then is shed, and
/// `login.max_password_queue` bounds the queue's memory.
fn password_slot(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, Failure> {
    let busy = || {
        Failure::page(OAuthError::new(ErrorCode::TemporarilyUnavailable, "too many sign-ins at once; retry shortly"))
    };
    let ahead = state.config.login.max_password_queue.saturating_sub(state.passwords.available_permits());
    let wait = password::expected_wait(ahead);
    if wait > std::time::Duration::from_millis(state.config.login.max_password_wait_ms) {
        tracing::warn!(ahead, wait_ms = wait.as_millis() as u64, "password hashing shed a sign-in");
        crate::telemetry::rate_limited("password_hashing");
        return Err(busy());
    }
    state.passwords.clone().try_acquire_owned().map_err(|_| busy())
}

/// Spends the same argon2 time for an unknown user as for a known one.
async fn dummy_verify(pw: String) -> bool {
    static DUMMY: OnceCell<String> = OnceCell::const_new();
    let hash = DUMMY.get_or_init(|| async { password::hash(random::token(16)).await.unwrap_or_default() }).await;
    let _ = password::verify(pw, hash.clone()).await;
    false
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
        if email.len() > MAX_EMAIL_LEN {
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
        let _permit = password_slot(&state)?;
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
