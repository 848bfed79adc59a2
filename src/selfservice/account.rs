//! `/account`: the signed-in user's own page. Change password (the current
//! one required) and email (verified at the new address), see and end
//! sessions, unlink identities, withdraw consents. Signing in to it goes
//! through the login box like any application (client `sesame-account`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::{AccountPage, ConsentView, IdentityView, SessionView};
use super::{ACCOUNT, ACCOUNT_CLIENT_ID, MAX_EMAIL_LEN, with_req};
use crate::audit::{self, Event, Kind};
use crate::crypto::{password, random};
use crate::domain::User;
use crate::emails::LinkFor;
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::page::{self};
use crate::http::params::Params;
use crate::session;
use crate::state::AppState;
use crate::storage::email_tokens::Purpose;
use crate::storage::sessions::{self, SessionRow};
use crate::storage::{consents, identities, users};

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    error: Option<String>,
    /// Sign in again (prompt=login) before a change that needs a fresh proof.
    #[serde(default)]
    reauth: Option<String>,
    /// The application that sent the user here, and where to link back to:
    /// one of its registered addresses, or a page on one of its web origins.
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    return_to: Option<String>,
}

/// `return_to` when `client_id` registered it (a redirect or sign-out URI)
/// or it is on one of the client's web origins: the link back and the
/// application's name. Anything else is no link (never an open redirect).
async fn back_link(state: &AppState, client_id: &str, return_to: &str) -> Option<(String, String)> {
    if client_id == ACCOUNT_CLIENT_ID || return_to.len() > 2048 {
        return None;
    }
    let c = state.client(client_id).await.ok()??;
    let url = url::Url::parse(return_to).ok().filter(|u| matches!(u.scheme(), "https" | "http"))?;
    let origin = url.origin().ascii_serialization();
    let listed = c.redirect_uris.iter().chain(&c.post_logout_redirect_uris).any(|u| u == return_to)
        || c.web_origins.iter().any(|o| o.trim_end_matches('/') == origin);
    listed.then(|| (url.to_string(), c.name.clone()))
}

/// The link back from the cookie the application's visit left.
async fn remembered_back(state: &AppState, jar: &CookieJar) -> Option<(String, String)> {
    let v = session::back_value(state, jar)?;
    let (client_id, return_to) = v.split_once(' ')?;
    back_link(state, client_id, return_to).await
}

/// Outcome codes in the URL after a change, in words.
fn done_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "password" => "Your password was changed; your other sessions were signed out.",
        "email" => "We sent a link to the new address. Your address changes when you follow it.",
        "session" => "The session was ended.",
        "sessions" => "Your other sessions were ended.",
        "unlinked" => "The sign-in method was removed.",
        "linked" => "The sign-in method was added.",
        "consent" => "The application's access was withdrawn.",
        "factor_added" => "The second factor was added.",
        "factor_removed" => "The second factor was removed.",
        "factor_renamed" => "The second factor was renamed.",
        _ => return None,
    })
}

fn error_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "current_password" => "The current password is wrong.",
        "new_password" => "The new password is too short or too common.",
        "email" => "That is not an email address.",
        "throttled" => "Too many attempts. Wait a minute, then try again.",
        "last_way_in" => "This is your last way to sign in; set a password first.",
        "reauth" => "For this change, sign in again first: your last sign-in was a while ago.",
        "reauth_mfa" => "For this change, sign in again with your second factor first.",
        "reauth_phr" => "For this change, sign in again with your passkey first.",
        "unknown_factor" => "That second factor is not on your account.",
        "code" => "That code is not right. Check the time on your phone, and try the newest code.",
        "expired" => "The setup expired. Start again.",
        "provider" => "That sign-in method is not available.",
        "no_factor" => "Add a second factor first.",
        _ => return None,
    })
}

/// The signed-in user and their session, or the login box for the account page.
pub(super) async fn signed_in(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Result<(SessionRow, User), Response>, Failure> {
    let s = session::current(state, jar).await.map_err(Failure::internal)?;
    let user = match &s {
        Some(s) => users::find_by_id(&state.db, &s.user_id).await.map_err(Failure::internal)?,
        None => None,
    };
    match (s, user) {
        (Some(s), Some(u)) if !u.disabled => Ok(Ok((s, u))),
        _ => Ok(Err(Redirect::to(&login_url(state)).into_response())),
    }
}

/// The account client's authorization parameters (PKCE with a verifier
/// nobody keeps: the code is never redeemed, the session is what counts).
pub(super) fn account_params(state: &AppState) -> Vec<(String, String)> {
    use base64::Engine;
    use sha2::Digest;
    let verifier = random::token(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    [
        ("client_id", ACCOUNT_CLIENT_ID.to_string()),
        ("response_type", "code".into()),
        ("redirect_uri", format!("{}{ACCOUNT}", state.issuer.as_str().trim_end_matches('/'))),
        ("scope", "openid".into()),
        ("state", random::token(8)),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `/authorize` for the account client: the login box, then back here.
pub(super) fn login_url(state: &AppState) -> String {
    authorize_url(state, false, None)
}

/// `/authorize` for the account client; `again` asks for a fresh sign-in
/// even with a session (`prompt=login`), `acr` for a second factor (or a
/// passkey) proved in it now (`max_age`: a remembered browser does not do).
pub(super) fn authorize_url(state: &AppState, again: bool, acr: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in account_params(state) {
        q.append_pair(&k, &v);
    }
    if again {
        q.append_pair("prompt", "login");
    }
    if let Some(acr) = acr {
        q.append_pair("acr_values", acr);
        q.append_pair("max_age", &state.config.login.reauth_secs.to_string());
    }
    format!("{}?{}", with_req(state, "/authorize", None), q.finish())
}

/// Whether the session's sign-in is recent enough for a change that adds a
/// way in or moves the address without a password to type (so a stolen
/// session cannot make itself permanent).
pub(super) fn fresh(state: &AppState, s: &SessionRow) -> bool {
    state.clock.now() - s.auth_time <= state.config.login.reauth_secs as i64
}

pub(super) fn back(state: &AppState, key: &str, value: &str) -> Response {
    Redirect::to(&format!("{}?{key}={value}", with_req(state, ACCOUNT, None))).into_response()
}

pub async fn get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<AccountQuery>) -> Response {
    let run = async {
        // An application linked here: remember where to link back (across
        // the sign-in), when it registered that address.
        let (jar, back) = match (q.client_id.as_deref(), q.return_to.as_deref()) {
            (Some(c), Some(r)) => match back_link(&state, c, r).await {
                Some(b) => (jar.add(session::back_cookie(&state, format!("{c} {r}"))), Some(b)),
                None => (jar, None),
            },
            _ => {
                let b = remembered_back(&state, &jar).await;
                (jar, b)
            }
        };
        let (s, user) = match signed_in(&state, &jar).await? {
            Ok(v) => v,
            Err(to_login) => return Ok((jar, to_login).into_response()),
        };
        if let Some(r) = &q.reauth {
            let acr = match r.as_str() {
                "mfa" => Some(crate::mfa::policy::ACR_MFA),
                "phr" => Some(crate::mfa::policy::ACR_PHR),
                _ => None,
            };
            return Ok(Redirect::to(&authorize_url(&state, true, acr)).into_response());
        }
        // Back from the login box: the code is not needed, the session is.
        if q.code.is_some() || q.client_id.is_some() {
            return Ok((jar, Redirect::to(&with_req(&state, ACCOUNT, None))).into_response());
        }
        let now = state.clock.now();
        let sessions = sessions::list_for_user(&state.db, &user.user_id)
            .await
            .map_err(Failure::internal)?
            .into_iter()
            .filter(|x| x.expires_at > now && x.idle_expires_at > now)
            .map(|x| SessionView {
                current: x.sid == s.sid,
                device: crate::domain::device(x.user_agent.as_deref()),
                ip: x.ip.clone().unwrap_or_else(|| "unknown".into()),
                started: crate::domain::ago(x.created_at, now),
                last_used: crate::domain::ago(x.last_seen_at, now),
                sid: x.sid,
            })
            .collect();
        let identities: Vec<IdentityView> = identities::for_user(&state.db, &user.user_id)
            .await
            .map_err(Failure::internal)?
            .into_iter()
            .map(|i| IdentityView {
                provider_name: state
                    .federation
                    .get(&i.provider)
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| i.provider.clone()),
                provider: i.provider,
                subject: i.subject,
                email: i.email.unwrap_or_default(),
            })
            .collect();
        let linked: Vec<String> = identities.iter().map(|i| i.provider.clone()).collect();
        let providers = state
            .federation
            .enabled()
            .filter(|p| !linked.iter().any(|l| l == p.id()))
            .map(|p| (p.id().to_string(), p.name.clone()))
            .collect();
        let mut consents_out = Vec::new();
        for (client_id, scopes, at) in
            consents::list_for_user(&state.db, &user.user_id).await.map_err(Failure::internal)?
        {
            let client_name = match state.client(&client_id).await {
                Ok(Some(c)) => c.name.clone(),
                _ => client_id.clone(),
            };
            // In words, as the consent page asked for them.
            let words: Vec<&str> =
                scopes.iter().map(|s| crate::domain::describe_scope(s).unwrap_or(s.as_str())).collect();
            let (scopes, granted) = (words.join("; "), crate::domain::ago(at, now));
            consents_out.push(ConsentView { client_id, client_name, scopes, granted });
        }
        let (jar, csrf) = session::ensure_csrf(&state, jar);
        let page = AccountPage {
            brand: state.brand.clone(),
            base: with_req(&state, ACCOUNT, None),
            csrf,
            email: user.email.clone().unwrap_or_default(),
            email_verified: user.email_verified,
            name: user.name.clone().unwrap_or_default(),
            has_password: user.password_hash.is_some(),
            min_length: state.config.passwords.min_length,
            notice: q.done.as_deref().and_then(done_message).map(str::to_string),
            error: q.error.as_deref().and_then(error_message).map(str::to_string),
            reauth_url: match q.error.as_deref() {
                Some("reauth") => Some(format!("{}?reauth=1", with_req(&state, ACCOUNT, None))),
                Some("reauth_mfa") => Some(format!("{}?reauth=mfa", with_req(&state, ACCOUNT, None))),
                Some("reauth_phr") => Some(format!("{}?reauth=phr", with_req(&state, ACCOUNT, None))),
                _ => None,
            },
            factors: super::factors::section(&state, &user).await?,
            sessions,
            identities,
            providers,
            consents: consents_out,
            back,
        };
        let status = if page.error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        Ok::<_, Failure>((jar, page::render_scripted(status, &page)).into_response())
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

/// Every form on the page: its CSRF value checked, the signed-in user and
/// session (or the login box to answer with), and the posted fields.
pub struct AccountForm {
    pub(super) session: SessionRow,
    pub(super) user: User,
    pub(super) jar: CookieJar,
    pub(super) p: Params,
}

impl axum::extract::FromRequest<AppState> for AccountForm {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let jar = CookieJar::from_headers(&parts.headers);
        let Ok(p) = Params::from_request(axum::extract::Request::from_parts(parts, body), state).await;
        let read = async {
            session::check_csrf(state, &jar, p.first("csrf")).ok_or_else(|| {
                let msg = "This form has expired. Open your account page again.";
                Failure::page(OAuthError::new(ErrorCode::AccessDenied, msg))
            })?;
            signed_in(state, &jar).await
        };
        match read.await {
            Ok(Ok((session, user))) => Ok(AccountForm { session, user, jar, p }),
            Ok(Err(to_login)) => Err(to_login),
            Err(f) => Err(f.render(&state.issuer, &state.brand)),
        }
    }
}

pub async fn change_password(State(state): State<AppState>, ClientIp(ip): ClientIp, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { session: s, mut user, p, .. } = f;
        if let Err(code) = super::factors::gate(&state, &s, &user).await? {
            return Ok(back(&state, "error", code));
        }
        let email = user.email.clone().unwrap_or_else(|| user.user_id.clone());
        if !state.limits.login(&state.db, state.clock.now(), ip, &email).await.map_err(Failure::internal)? {
            return Ok(back(&state, "error", "throttled"));
        }
        let current = p.first("current_password").unwrap_or("").to_string();
        let new = p.first("new_password").unwrap_or("").to_string();
        if user.password_hash.is_none() && !fresh(&state, &s) {
            return Ok(back(&state, "error", "reauth"));
        }
        if let Some(h) = &user.password_hash
            && !password::verify(current, h.clone()).await
        {
            let e = Event::failure(Kind::PasswordChanged, "wrong_password").account(&user).sid(&s.sid);
            audit::record(&state.audit, e.actor(format!("user:{}", user.user_id)));
            return Ok(back(&state, "error", "current_password"));
        }
        if password::Policy::from_config(&state.config.passwords).check(&new).is_err() {
            return Ok(back(&state, "error", "new_password"));
        }
        user.password_hash = Some(password::hash(new).await.map_err(Failure::internal)?);
        user.updated_at = state.clock.now();
        users::update(&state.db, &user).await.map_err(Failure::internal)?;
        let actor = format!("user:{}", user.user_id);
        audit::record(&state.audit, Event::new(Kind::PasswordChanged).account(&user).sid(&s.sid).actor(actor.clone()));
        end_others(&state, &user, &s, &actor, "password_changed").await?;
        state.factors().forget_browsers(&user.user_id).await.map_err(Failure::internal)?;
        if let Some(to) = &user.email {
            state.emails.password_changed_notice(to);
        }
        Ok::<_, Failure>(back(&state, "done", "password"))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

/// Ends every session of `user` but this one.
pub(super) async fn end_others(
    state: &AppState,
    user: &User,
    keep: &SessionRow,
    actor: &str,
    why: &str,
) -> Result<usize, Failure> {
    let mut n = 0;
    for other in sessions::list_for_user(&state.db, &user.user_id).await.map_err(Failure::internal)? {
        if other.sid != keep.sid {
            state.logouts.end_one_session(&other, actor, why).await.map_err(Failure::internal)?;
            n += 1;
        }
    }
    Ok(n)
}

pub async fn change_email(State(state): State<AppState>, ClientIp(ip): ClientIp, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { session: s, user, p, .. } = f;
        if let Err(code) = super::factors::gate(&state, &s, &user).await? {
            return Ok(back(&state, "error", code));
        }
        let new = p.first("email").unwrap_or("").trim().to_string();
        if new.len() > MAX_EMAIL_LEN || crate::domain::validate_email(&new).is_err() {
            return Ok(back(&state, "error", "email"));
        }
        // A fresh proof: the password, or (without one) a recent sign-in.
        if user.password_hash.is_none() && !fresh(&state, &s) {
            return Ok(back(&state, "error", "reauth"));
        }
        // The password is checked against the same budgets as a sign-in.
        let email = user.email.clone().unwrap_or_else(|| user.user_id.clone());
        if user.password_hash.is_some()
            && !state.limits.login(&state.db, state.clock.now(), ip, &email).await.map_err(Failure::internal)?
        {
            return Ok(back(&state, "error", "throttled"));
        }
        if let Some(h) = &user.password_hash
            && !password::verify(p.first("current_password").unwrap_or("").to_string(), h.clone()).await
        {
            return Ok(back(&state, "error", "current_password"));
        }
        if !state.limits.mail(ip, &new) || !state.limits.mail_account(&user.user_id) {
            return Ok(back(&state, "error", "throttled"));
        }
        // An address another account holds verified gets no link (the page
        // says the same); one only claimed unverified does: following it
        // proves the mailbox, and the claim gives way.
        let holder = users::find_by_email(&state.db, &new).await.map_err(Failure::internal)?;
        if holder.is_none_or(|h| !h.email_verified && h.user_id != user.user_id) {
            let link = LinkFor::verify(Purpose::ChangeEmail, &new, None);
            state.emails.send_link(&user, link).await.map_err(Failure::internal)?;
        }
        Ok::<_, Failure>(back(&state, "done", "email"))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}
