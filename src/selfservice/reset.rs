//! "Forgot password?": `/forgot-password` asks for an address and answers the
//! same whatever it is; `/reset-password` is the page the emailed link opens
//! and the POST that spends it. A reset ends every session of the account
//! (back-channel logout now, front-channel at each browser's next visit) and
//! revokes every refresh token, offline ones included.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::pages::{EmailForm, LinkForm};
use super::verify::{ReqQuery, TokenQuery};
use super::{FORGOT_PASSWORD, MAX_EMAIL_LEN, RESET_PASSWORD, with_req};
use crate::app::AppState;
use crate::audit::{self, Event, Kind};
use crate::crypto::{password, random};
use crate::domain::normalize_email;
use crate::emails::{self, LinkFor};
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::page::{self, Brand};
use crate::http::params::Params;
use crate::pending;
use crate::session;
use crate::storage::email_tokens::{self, Purpose};
use crate::storage::users;

fn forgot_form(state: &AppState, csrf: String, req: Option<&str>, email: String, error: Option<String>) -> EmailForm {
    EmailForm {
        brand: Brand::new(state),
        title: "Reset your password".into(),
        lead: "Type your account's address; we send it a link to choose a new password.".into(),
        action: with_req(state, FORGOT_PASSWORD, None),
        csrf,
        req: req.unwrap_or_default().to_string(),
        email,
        error,
        button: "Send the link".into(),
        back_url: req.map(|r| with_req(state, pending::IDENTIFY, Some(r))),
    }
}

fn csrf_failure() -> Failure {
    Failure::page(OAuthError::new(ErrorCode::AccessDenied, "This form has expired. Open the page again."))
}

pub async fn forgot_get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
    let (jar, csrf) = session::ensure_csrf(&state, jar);
    let req = q.req.filter(|r| r.len() <= 128);
    (jar, page::render(StatusCode::OK, &forgot_form(&state, csrf, req.as_deref(), String::new(), None))).into_response()
}

pub async fn forgot_post(State(state): State<AppState>, ClientIp(ip): ClientIp, jar: CookieJar, p: Params) -> Response {
    let run = async {
        let csrf = session::check_csrf(&state, &jar, p.first("csrf")).ok_or_else(csrf_failure)?;
        let req = p.first("req").filter(|r| !r.is_empty() && r.len() <= 128);
        let email = p.first("email").unwrap_or("").trim().to_string();
        if email.len() > MAX_EMAIL_LEN || crate::domain::validate_email(&email).is_err() {
            let f = forgot_form(&state, csrf, req, String::new(), Some("That is not an email address.".into()));
            return Ok(page::render(StatusCode::BAD_REQUEST, &f));
        }
        // Per address typed (and per client address): the same for every address.
        if !state.limits.mail(ip, &email) {
            audit::record(&state.audit, Event::failure(Kind::PasswordResetRequested, "throttled").email(&email));
            let f =
                forgot_form(&state, csrf, req, email, Some("Too many requests. Wait a minute, then try again.".into()));
            return Ok(page::render(StatusCode::TOO_MANY_REQUESTS, &f));
        }
        match users::find_by_email(&state.db, &email).await.map_err(Failure::internal)? {
            None => {
                audit::record(&state.audit, Event::failure(Kind::PasswordResetRequested, "unknown_user").email(&email));
            }
            Some(u) if u.disabled => {
                audit::record(&state.audit, Event::failure(Kind::PasswordResetRequested, "disabled").account(&u));
            }
            // Per account, whatever address led to it.
            Some(u) if !state.limits.mail_account(&u.user_id) => {
                audit::record(&state.audit, Event::failure(Kind::PasswordResetRequested, "throttled").account(&u));
            }
            Some(u) => {
                let to = u.email.clone().unwrap_or_else(|| email.clone());
                let link = LinkFor {
                    purpose: Purpose::Reset,
                    email: &to,
                    password_hash: None,
                    request_id: req.map(str::to_string),
                };
                emails::send_link(&state, &u, link).await.map_err(Failure::internal)?;
            }
        }
        let msg = format!("If {email} has an account, a link to reset its password is on its way.");
        let link = req.map(|r| (with_req(&state, pending::IDENTIFY, Some(r)), "Back to sign in".to_string()));
        Ok::<_, Failure>(page::notice(&state, StatusCode::OK, "Check your email", msg, link))
    };
    run.await.unwrap_or_else(|f| f.render(&state))
}

fn expired(state: &AppState) -> Response {
    let link = Some((with_req(state, FORGOT_PASSWORD, None), "Ask for a new link".to_string()));
    page::notice(state, StatusCode::BAD_REQUEST, "Link expired", "This link has expired or was already used.", link)
}

fn reset_form(state: &AppState, csrf: String, token: String, error: Option<String>) -> LinkForm {
    LinkForm {
        brand: Brand::new(state),
        title: "Choose a new password".into(),
        lead: "Changing it signs you out everywhere.".into(),
        action: with_req(state, RESET_PASSWORD, None),
        csrf,
        token,
        password: true,
        min_length: state.config.passwords.min_length,
        error,
        button: "Change password".into(),
    }
}

pub async fn get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<TokenQuery>) -> Response {
    let token = q.token();
    if token.is_empty() || token.len() > 128 {
        return expired(&state);
    }
    match email_tokens::peek(&state.db, &random::sha256_hex(token), state.clock.now()).await {
        Ok(Some(t)) if t.purpose == Purpose::Reset => {}
        Ok(_) => return expired(&state),
        Err(e) => return Failure::internal(e).render(&state),
    }
    let (jar, csrf) = session::ensure_csrf(&state, jar);
    (jar, page::render(StatusCode::OK, &reset_form(&state, csrf, token.to_string(), None))).into_response()
}

pub async fn post(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    let run = async {
        let csrf = session::check_csrf(&state, &jar, p.first("csrf")).ok_or_else(csrf_failure)?;
        let token = p.first("token").unwrap_or("");
        if token.is_empty() || token.len() > 128 {
            return Ok(expired(&state));
        }
        let pw = p.first("password").unwrap_or("").to_string();
        // Checked before the link is spent: a refused password keeps it usable.
        if let Err(e) = password::Policy::from_config(&state.config.passwords).check(&pw) {
            let f = reset_form(&state, csrf, token.to_string(), Some(format!("The {e}.")));
            return Ok(page::render(StatusCode::BAD_REQUEST, &f));
        }
        let _permit = state.passwords.clone().try_acquire_owned().map_err(|_| {
            Failure::page(OAuthError::new(ErrorCode::TemporarilyUnavailable, "too many at once; retry shortly"))
        })?;
        let hash = password::hash(pw).await.map_err(Failure::internal)?;
        let now = state.clock.now();
        let t = match email_tokens::take(&state.db, &random::sha256_hex(token), now).await.map_err(Failure::internal)? {
            Some(t) if t.purpose == Purpose::Reset => t,
            _ => return Ok(expired(&state)),
        };
        let Some(mut user) = users::find_by_id(&state.db, &t.user_id).await.map_err(Failure::internal)? else {
            return Ok(expired(&state));
        };
        if user.disabled {
            return Ok(expired(&state));
        }
        user.password_hash = Some(hash);
        // The link reached this address: it is the owner's.
        if user.email.as_deref().map(normalize_email) == Some(normalize_email(&t.email)) {
            user.email_verified = true;
        }
        user.updated_at = now;
        users::update(&state.db, &user).await.map_err(Failure::internal)?;
        let actor = format!("user:{}", user.user_id);
        // A forgotten password may mean a stolen one: every session and every
        // refresh token goes, offline ones included, and every other link.
        crate::oidc::backchannel::end_user_sessions(&state, &user.user_id, true, &actor, "password_reset")
            .await
            .map_err(Failure::internal)?;
        email_tokens::delete_for_user(&state.db, &user.user_id).await.map_err(Failure::internal)?;
        audit::record(&state.audit, Event::new(Kind::PasswordReset).account(&user).actor(actor));
        emails::password_changed_notice(&state, &t.email);
        let link =
            t.request_id.as_deref().map(|r| (with_req(&state, pending::IDENTIFY, Some(r)), "Sign in".to_string()));
        let msg = "Your password was changed, and you were signed out everywhere. Sign in with the new one.";
        Ok::<_, Failure>(page::notice(&state, StatusCode::OK, "Password changed", msg, link))
    };
    run.await.unwrap_or_else(|f| f.render(&state))
}
