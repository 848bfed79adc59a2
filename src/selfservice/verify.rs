//! `/verify-email`: the page a verification (or sign-up, or email-change)
//! link opens, and the POST that spends it; `/verify-email/resend`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::LinkForm;
use super::{AddressForm, RESEND_VERIFICATION, VERIFY_EMAIL, check_your_email, csrf_failure, with_req};
use crate::audit::{self, Event, Kind};
use crate::crypto::{password, random};
use crate::domain::{User, normalize_email};
use crate::emails::LinkFor;
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::page::{self};
use crate::http::params::Params;
use crate::pending::{self, SignedIn};
use crate::session;
use crate::state::AppState;
use crate::storage::email_tokens::{self, EmailToken, Purpose};
use crate::storage::{StorageError, users};

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

impl TokenQuery {
    pub fn token(&self) -> &str {
        &self.token
    }
}

#[derive(Deserialize)]
pub struct ReqQuery {
    #[serde(default)]
    pub req: Option<String>,
}

fn expired(state: &AppState) -> Response {
    let link = Some((with_req(state, RESEND_VERIFICATION, None), "Send a new link".to_string()));
    let msg = "This link has expired or was already used.";
    page::notice(&state.brand, StatusCode::BAD_REQUEST, "Link expired", msg, link)
}

/// Whether following sign-up link `t` in this browser installs the password
/// typed with it: only in the browser that signed up (the pending request is
/// bound to it), so a password chosen by someone who never read the mail is
/// never installed. Elsewhere the link page asks for one.
async fn signup_password(state: &AppState, jar: &CookieJar, t: &EmailToken) -> Option<String> {
    let h = t.password_hash.clone().filter(|_| t.purpose == Purpose::Signup)?;
    let id = t.request_id.as_deref()?;
    pending::load(state, jar, id).await.ok().map(|_| h)
}

fn link_form(state: &AppState, t: &EmailToken, csrf: String, token: String, password: bool) -> LinkForm {
    let (title, lead, button) = match t.purpose {
        Purpose::Signup => {
            ("Finish signing up", format!("Confirm {} to finish creating your account.", t.email), "Finish signing up")
        }
        Purpose::ChangeEmail => {
            ("Confirm your new address", format!("Make {} the address you sign in with.", t.email), "Confirm")
        }
        _ => ("Verify your email", format!("Confirm that {} is your address.", t.email), "Verify my email"),
    };
    let lead = if password { format!("{lead} Choose the password you will sign in with.") } else { lead };
    LinkForm {
        brand: state.brand.clone(),
        title: title.into(),
        lead,
        action: with_req(state, VERIFY_EMAIL, None),
        csrf,
        token,
        password,
        min_length: state.config.passwords.min_length,
        error: None,
        button: button.into(),
    }
}

pub async fn get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<TokenQuery>) -> Response {
    if q.token.is_empty() || q.token.len() > 128 {
        return expired(&state);
    }
    let t = match email_tokens::peek(&state.db, &random::sha256_hex(&q.token), state.clock.now()).await {
        Ok(Some(t)) if t.purpose != Purpose::Reset => t,
        Ok(_) => return expired(&state),
        Err(e) => return Failure::internal(e).render(&state.issuer, &state.brand),
    };
    let ask = t.purpose != Purpose::ChangeEmail && signup_password(&state, &jar, &t).await.is_none();
    let (jar, csrf) = session::ensure_csrf(&state, jar);
    (jar, page::render(StatusCode::OK, &link_form(&state, &t, csrf, q.token, ask))).into_response()
}

pub async fn post(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    let run = async {
        let csrf = session::check_csrf(&state, &jar, p.first("csrf")).ok_or_else(csrf_failure)?;
        let token = p.first("token").unwrap_or("");
        if token.is_empty() || token.len() > 128 {
            return Ok(expired(&state));
        }
        let now = state.clock.now();
        let hash = random::sha256_hex(token);
        let Some(t) = email_tokens::peek(&state.db, &hash, now).await.map_err(Failure::internal)? else {
            return Ok(expired(&state));
        };
        // The password: the one typed at sign-up in this browser, or one
        // chosen here, checked before the link is spent.
        let mut same_browser = false;
        let chosen = match t.purpose {
            Purpose::ChangeEmail | Purpose::Reset => None,
            _ => match signup_password(&state, &jar, &t).await {
                Some(h) => {
                    same_browser = true;
                    Some(h)
                }
                None => {
                    let pw = p.first("password").unwrap_or("").to_string();
                    if let Err(e) = password::Policy::from_config(&state.config.passwords).check(&pw) {
                        let mut f = link_form(&state, &t, csrf, token.to_string(), true);
                        f.error = Some(format!("The {e}."));
                        return Ok(page::render(StatusCode::BAD_REQUEST, &f));
                    }
                    let _permit = state.passwords.clone().try_acquire_owned().map_err(|_| busy())?;
                    Some(password::hash(pw).await.map_err(Failure::internal)?)
                }
            },
        };
        let t = match email_tokens::take(&state.db, &hash, now).await.map_err(Failure::internal)? {
            Some(t) if t.purpose != Purpose::Reset => t,
            _ => return Ok(expired(&state)),
        };
        let Some(mut user) = users::find_by_id(&state.db, &t.user_id).await.map_err(Failure::internal)? else {
            return Ok(expired(&state));
        };
        if user.disabled {
            return Ok(expired(&state));
        }
        if t.purpose == Purpose::ChangeEmail {
            return change_email(&state, user, &t).await;
        }
        // The account's address changed since the link was sent.
        if user.email.as_deref().map(normalize_email) != Some(normalize_email(&t.email)) {
            return Ok(expired(&state));
        }
        // The mailbox is proven: whatever the unverified claim brought goes,
        // and the prover's choices are installed.
        crate::proof::reclaim(&state.prover(), &mut user, &t.email, t.purpose.as_str())
            .await
            .map_err(Failure::internal)?;
        user.email_verified = true;
        if chosen.is_some() {
            user.password_hash = chosen;
        }
        // The name typed at sign-up, like its password, only from that browser.
        if same_browser && t.name.is_some() {
            user.name = t.name.clone();
        }
        user.updated_at = now;
        users::update(&state.db, &user).await.map_err(Failure::internal)?;
        let e = Event::new(Kind::EmailVerified).account(&user).actor(format!("user:{}", user.user_id));
        audit::record(&state.audit, e.details(serde_json::json!({ "purpose": t.purpose.as_str() })));
        if t.purpose == Purpose::Signup {
            return signed_up(&state, jar, &user, &t).await;
        }
        let link =
            t.request_id.as_deref().map(|r| (with_req(&state, pending::IDENTIFY, Some(r)), "Continue".to_string()));
        let msg = format!("{} is verified.", t.email);
        Ok(page::notice(&state.brand, StatusCode::OK, "Email verified", msg, link))
    };
    run.await.unwrap_or_else(|f: Failure| f.render(&state.issuer, &state.brand))
}

fn busy() -> Failure {
    Failure::page(OAuthError::new(ErrorCode::TemporarilyUnavailable, "too many at once; retry shortly"))
}

/// The sign-up's session starts here: back to the application when this
/// browser started the sign-up, otherwise signed in to the account page.
async fn signed_up(state: &AppState, jar: CookieJar, user: &User, t: &EmailToken) -> Result<Response, Failure> {
    let how = SignedIn { amr: vec!["pwd".into()], idp: None, subject: None, proofs: Default::default() };
    if let Some(id) = &t.request_id
        && let Ok(l) = pending::load(state, &jar, id).await
    {
        return pending::identified(state, jar, user, how, &l).await;
    }
    let (jar, s) =
        session::create(state, jar, &user.user_id, how.amr, None, how.proofs).await.map_err(Failure::internal)?;
    let e = Event::new(Kind::LoginSuccess).account(user).sid(&s.sid).method("email_link");
    audit::record(&state.audit, e);
    let to = with_req(state, super::ACCOUNT, None);
    Ok((jar, Redirect::to(&to)).into_response())
}

/// The new address is proven: an account that claimed it unverified loses
/// it, every other link of the account is spent (a reset link mailed to the
/// old address no longer works), and the old address is told.
async fn change_email(state: &AppState, mut user: User, t: &EmailToken) -> Result<Response, Failure> {
    let from = user.email.clone();
    crate::proof::release(&state.prover(), &t.email, &user.user_id).await.map_err(Failure::internal)?;
    user.email = Some(t.email.clone());
    user.email_verified = true;
    user.updated_at = state.clock.now();
    match users::update(&state.db, &user).await {
        Ok(()) => {}
        Err(StorageError::Conflict(_)) => {
            let msg = "Another account uses this address now; the change was not made.";
            return Ok(page::notice(&state.brand, StatusCode::CONFLICT, "Address taken", msg, None));
        }
        Err(e) => return Err(Failure::internal(e)),
    }
    email_tokens::delete_for_user(&state.db, &user.user_id).await.map_err(Failure::internal)?;
    let e = Event::new(Kind::EmailVerified).account(&user).actor(format!("user:{}", user.user_id));
    audit::record(&state.audit, e.details(serde_json::json!({ "purpose": "change_email", "from": from })));
    if let Some(old) = from.filter(|o| normalize_email(o) != normalize_email(&t.email)) {
        state.emails.email_changed_notice(&old, &t.email);
    }
    let link = Some((with_req(state, super::ACCOUNT, None), "Your account".to_string()));
    Ok(page::notice(&state.brand, StatusCode::OK, "Email changed", format!("You now sign in with {}.", t.email), link))
}

const RESEND: AddressForm = AddressForm {
    title: "Resend the verification link",
    lead: "Type the address you signed up with; we send it a new link.",
    path: RESEND_VERIFICATION,
};

pub async fn resend_get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
    RESEND.get(&state, jar, q.req)
}

pub async fn resend_post(State(state): State<AppState>, ClientIp(ip): ClientIp, jar: CookieJar, p: Params) -> Response {
    let run = async {
        let (req, email) = match RESEND.read(&state, ip, &jar, &p)? {
            Ok(v) => v,
            Err(page) => return Ok(page),
        };
        if let Some(u) = users::find_by_email(&state.db, &email).await.map_err(Failure::internal)?
            && !u.email_verified
            && !u.disabled
            && state.limits.mail_account(&u.user_id)
        {
            // A new link never carries a password: whoever follows it chooses one.
            let link = LinkFor::verify(Purpose::Verify, &email, req.map(str::to_string));
            state.emails.send_link(&u, link).await.map_err(Failure::internal)?;
        }
        let msg = format!("If {email} has an account waiting for verification, a new link is on its way.");
        Ok::<_, Failure>(check_your_email(&state, msg, req))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}
