//! "Forgot password?": `/forgot-password` asks for an address and answers the
//! same whatever it is; `/reset-password` is the page the emailed link opens
//! and the POST that spends it. A reset ends every session of the account
//! (back-channel logout now, front-channel at each browser's next visit) and
//! revokes every refresh token, offline ones included.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::pages::LinkForm;
use super::verify::{ReqQuery, TokenQuery};
use super::{AddressForm, FORGOT_PASSWORD, RESET_PASSWORD, check_your_email, csrf_failure, with_req};
use crate::audit::{self, Event, Kind};
use crate::crypto::{password, random};
use crate::domain::normalize_email;
use crate::emails::LinkFor;
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::page::{self};
use crate::http::params::Params;
use crate::pending;
use crate::session;
use crate::state::AppState;
use crate::storage::email_tokens::{self, Purpose};
use crate::storage::users;

const FORGOT: AddressForm = AddressForm {
    title: "Reset your password",
    lead: "Type your account's address; we send it a link to choose a new password.",
    path: FORGOT_PASSWORD,
};

pub async fn forgot_get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
    FORGOT.get(&state, jar, q.req)
}

pub async fn forgot_post(State(state): State<AppState>, ClientIp(ip): ClientIp, jar: CookieJar, p: Params) -> Response {
    let run = async {
        let (req, email) = match FORGOT.read(&state, ip, &jar, &p)? {
            Ok(v) => v,
            Err(page) => {
                let typed = p.first("email").unwrap_or("").chars().take(254).collect::<String>();
                if page.status() == StatusCode::TOO_MANY_REQUESTS {
                    let e = Event::failure(Kind::PasswordResetRequested, "throttled").email(&typed);
                    audit::record(&state.audit, e);
                }
                return Ok(page);
            }
        };
        send_reset(&state, &email, req).await.map_err(Failure::internal)?;
        let msg = format!("If {email} has an account, a link to reset its password is on its way.");
        Ok::<_, Failure>(check_your_email(&state, msg, req))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

/// Mails `email`'s account a reset link, if it has one that may get it; the
/// caller answers the same either way. Shared by "Forgot password?" and
/// embedded login's `/dbconnections/change_password`.
pub async fn send_reset(state: &AppState, email: &str, req: Option<&str>) -> Result<(), crate::storage::StorageError> {
    match users::find_by_email(&state.db, email).await? {
        None => {
            audit::record(&state.audit, Event::failure(Kind::PasswordResetRequested, "unknown_user").email(email));
        }
        Some(u) if u.disabled => {
            audit::record(&state.audit, Event::failure(Kind::PasswordResetRequested, "disabled").account(&u));
        }
        // Per account, whatever address led to it.
        Some(u) if !state.limits.mail_account(&u.user_id) => {
            audit::record(&state.audit, Event::failure(Kind::PasswordResetRequested, "throttled").account(&u));
        }
        Some(u) => {
            let to = u.email.clone().unwrap_or_else(|| email.to_string());
            let link = LinkFor::verify(Purpose::Reset, &to, req.map(str::to_string));
            state.emails.send_link(&u, link).await?;
        }
    }
    Ok(())
}

fn expired(state: &AppState) -> Response {
    let link = Some((with_req(state, FORGOT_PASSWORD, None), "Ask for a new link".to_string()));
    page::notice(
        &state.brand,
        StatusCode::BAD_REQUEST,
        "Link expired",
        "This link has expired or was already used.",
        link,
    )
}

fn reset_form(state: &AppState, csrf: String, token: String, error: Option<String>) -> LinkForm {
    LinkForm {
        brand: state.brand.clone(),
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
        Err(e) => return Failure::internal(e).render(&state.issuer, &state.brand),
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
        // The account's address changed since the link was sent.
        if user.email.as_deref().map(normalize_email) != Some(normalize_email(&t.email)) {
            return Ok(expired(&state));
        }
        // The link reached this address: it is the owner's, and whatever an
        // unverified claim on it brought goes (`proof::reclaim`).
        crate::proof::reclaim(&state.prover(), &mut user, &t.email, "reset").await.map_err(Failure::internal)?;
        user.password_hash = Some(hash);
        user.email_verified = true;
        user.updated_at = now;
        users::update(&state.db, &user).await.map_err(Failure::internal)?;
        let actor = format!("user:{}", user.user_id);
        // A forgotten password may mean a stolen one: every session and every
        // refresh token goes, offline ones included, and every other link.
        state
            .logouts
            .end_user_sessions(&user.user_id, true, &actor, "password_reset")
            .await
            .map_err(Failure::internal)?;
        email_tokens::delete_for_user(&state.db, &user.user_id).await.map_err(Failure::internal)?;
        audit::record(&state.audit, Event::new(Kind::PasswordReset).account(&user).actor(actor));
        state.emails.password_changed_notice(&t.email);
        let link =
            t.request_id.as_deref().map(|r| (with_req(&state, pending::IDENTIFY, Some(r)), "Sign in".to_string()));
        let msg = "Your password was changed, and you were signed out everywhere. Sign in with the new one.";
        Ok::<_, Failure>(page::notice(&state.brand, StatusCode::OK, "Password changed", msg, link))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}
