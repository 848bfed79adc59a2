//! The browser side of login sessions: the session cookie (an opaque random id
//! whose SHA-256 is the database key), the per-browser CSRF cookie, and
//! creating, finding and ending sessions.

use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite as CookieSameSite};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::SameSite;
use crate::crypto::random;
use crate::state::AppState;
use crate::storage::sessions::{self, SessionRow};

/// Sliding the idle expiry costs a write; do it at most once a minute per session.
const TOUCH_EVERY_SECS: i64 = 60;

pub fn csrf_cookie_name(state: &AppState) -> String {
    format!("{}_csrf", state.config.session_cookie_name())
}

/// For the log of a refused step bound to this browser: which cookie was
/// missing or did not match. Two Sesame instances on one host name (another
/// port) share cookies: `session.cookie_name` or another host name separates them.
pub fn unbound_detail(state: &AppState, jar: &CookieJar) -> String {
    let name = csrf_cookie_name(state);
    match csrf_value(state, jar) {
        None => format!("the browser sent no `{name}` cookie"),
        Some(_) => format!(
            "the browser's `{name}` cookie is not the one this request was started with (another browser, or \
             another Sesame on this host name overwrote it: set session.cookie_name)"
        ),
    }
}

/// The value of cookie `name{suffix}`, or of its pre-`__Host-` name while
/// browsers still carry that.
fn read(state: &AppState, jar: &CookieJar, suffix: &str) -> Option<String> {
    let current = format!("{}{suffix}", state.config.session_cookie_name());
    jar.get(&current)
        .or_else(|| state.config.legacy_session_cookie_name().and_then(|l| jar.get(&format!("{l}{suffix}"))))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

fn base_cookie(state: &AppState, name: String, value: String) -> Cookie<'static> {
    let path = match state.issuer.path_prefix() {
        "" => "/".to_string(),
        p => p.to_string(),
    };
    let mut c = Cookie::build((name, value)).path(path).http_only(true).secure(state.config.cookie_secure()).build();
    if !state.config.session.cookie_domain.is_empty() {
        c.set_domain(state.config.session.cookie_domain.clone());
    }
    c
}

/// Where the account page links back to (`client_id` and the address, as
/// the application named them), for a day.
pub fn back_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let mut c = base_cookie(state, format!("{}_back", state.config.session_cookie_name()), value);
    c.set_same_site(CookieSameSite::Lax);
    c.set_max_age(time::Duration::days(1));
    c
}

pub fn back_value(state: &AppState, jar: &CookieJar) -> Option<String> {
    read(state, jar, "_back")
}

pub fn session_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let mut c = base_cookie(state, state.config.session_cookie_name(), value);
    c.set_same_site(match state.config.session.cookie_same_site {
        SameSite::Lax => CookieSameSite::Lax,
        SameSite::Strict => CookieSameSite::Strict,
        SameSite::None => CookieSameSite::None,
    });
    c.set_max_age(time::Duration::seconds(state.config.session.absolute_timeout_secs as i64));
    c
}

/// The OP browser state of OIDC Session Management: readable by the
/// check_session iframe's script (so not HttpOnly), derived from the session's
/// database key so it changes with every login and carries nothing usable.
pub fn browser_state_cookie(state: &AppState, id_hash: &str) -> Cookie<'static> {
    let mut c = session_cookie(state, browser_state(id_hash));
    c.set_name(browser_state_cookie_name(state));
    c.set_http_only(false);
    c
}

pub fn browser_state_cookie_name(state: &AppState) -> String {
    format!("{}_bs", state.config.session_cookie_name())
}

/// Removes the session cookie and its browser-state companion (under the
/// pre-`__Host-` names too).
pub fn remove_cookies(state: &AppState, jar: CookieJar) -> CookieJar {
    let mut c = session_cookie(state, String::new());
    c.make_removal();
    let mut bs = browser_state_cookie(state, "");
    bs.make_removal();
    remove_legacy(state, jar.add(c).add(bs))
}

/// Expires the pre-`__Host-` session, browser-state and CSRF cookies the
/// browser still sends.
fn remove_legacy(state: &AppState, jar: CookieJar) -> CookieJar {
    let seen = jar.clone();
    expire_legacy(state, &seen, jar)
}

/// Adds to `out` the removal of each pre-`__Host-` cookie present in `seen`.
fn expire_legacy(state: &AppState, seen: &CookieJar, mut out: CookieJar) -> CookieJar {
    let Some(legacy) = state.config.legacy_session_cookie_name() else { return out };
    for suffix in ["", "_bs", "_csrf"] {
        let name = format!("{legacy}{suffix}");
        if seen.get(&name).is_some() {
            let mut c = base_cookie(state, name, String::new());
            c.make_removal();
            out = out.add(c);
        }
    }
    out
}

/// A browser that still carries the session under its pre-`__Host-` name
/// gets it (with its browser state and CSRF value) under the new one; None
/// when there is nothing to move.
pub fn upgrade_legacy(state: &AppState, jar: &CookieJar) -> Option<CookieJar> {
    let legacy = state.config.legacy_session_cookie_name()?;
    if jar.get(&state.config.session_cookie_name()).is_some() {
        return None;
    }
    let value = jar.get(legacy)?.value().to_string();
    let hash = random::sha256_hex(&value);
    let mut moved = CookieJar::new().add(session_cookie(state, value)).add(browser_state_cookie(state, &hash));
    if let Some(c) = jar.get(&format!("{legacy}_csrf")) {
        let mut csrf = base_cookie(state, csrf_cookie_name(state), c.value().to_string());
        csrf.set_same_site(CookieSameSite::Lax);
        moved = moved.add(csrf);
    }
    Some(expire_legacy(state, jar, moved))
}

/// The CSRF cookie value, creating one if the browser has none.
pub fn ensure_csrf(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(v) = csrf_value(state, &jar).filter(|v| v.len() >= 32) {
        return (jar, v);
    }
    new_csrf(state, jar)
}

/// A fresh CSRF value (at login, so a value known before it is worthless after).
pub fn new_csrf(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    let v = random::token(32);
    let mut c = base_cookie(state, csrf_cookie_name(state), v.clone());
    c.set_same_site(CookieSameSite::Lax);
    (jar.add(c), v)
}

pub fn csrf_value(state: &AppState, jar: &CookieJar) -> Option<String> {
    read(state, jar, "_csrf")
}

/// The browser's CSRF cookie, if `form_value` matches it (constant time).
/// Every form of the login box and logout checks its token here.
pub fn check_csrf(state: &AppState, jar: &CookieJar, form_value: Option<&str>) -> Option<String> {
    match (csrf_value(state, jar), form_value) {
        (Some(c), Some(f)) if random::ct_eq(&c, f) => Some(c),
        _ => None,
    }
}

/// The live session this browser presents, if any.
pub async fn current(state: &AppState, jar: &CookieJar) -> Result<Option<SessionRow>, crate::storage::StorageError> {
    current_by_hash(state, cookie_hash(state, jar).as_deref()).await
}

/// SHA-256 of the session cookie this browser presents: the database key.
pub fn cookie_hash(state: &AppState, jar: &CookieJar) -> Option<String> {
    read(state, jar, "").map(|v| random::sha256_hex(&v))
}

/// The live session for a cookie hash from `cookie_hash`.
pub async fn current_by_hash(
    state: &AppState,
    hash: Option<&str>,
) -> Result<Option<SessionRow>, crate::storage::StorageError> {
    let Some(hash) = hash else { return Ok(None) };
    let now = state.clock.now();
    let Some(s) = sessions::find_live(&state.db, hash, now).await? else {
        return Ok(None);
    };
    if now - s.last_seen_at >= TOUCH_EVERY_SECS {
        let idle = now + state.config.session.idle_timeout_secs as i64;
        sessions::touch(&state.db, hash, now, idle).await?;
    }
    Ok(Some(s))
}

/// Whether session `s` still exists (not ended meanwhile): a factor added
/// while a proof of the mailbox ended every session of the account
/// (`proof::reclaim`) is undone by its caller.
pub async fn still_live(state: &AppState, s: &SessionRow) -> Result<bool, crate::storage::StorageError> {
    let live = current_by_hash(state, Some(&s.id_hash)).await?;
    Ok(live.is_some_and(|x| x.sid == s.sid))
}

/// Starts a session for `user_id` with a new random id (so a fixed or stolen
/// pre-login id is useless), ending the one the browser had.
pub async fn create(
    state: &AppState,
    jar: CookieJar,
    user_id: &str,
    amr: Vec<String>,
    idp: Option<String>,
    proofs: crate::mfa::policy::Proofs,
) -> Result<(CookieJar, SessionRow), crate::storage::StorageError> {
    if let Some(old) = cookie_hash(state, &jar) {
        sessions::delete(&state.db, &old).await?;
    }
    let now = state.clock.now();
    let value = random::token(32);
    let cfg = &state.config.session;
    let ctx = crate::audit::current_context();
    let expires_at = now + cfg.absolute_timeout_secs as i64;
    let row = SessionRow {
        id_hash: random::sha256_hex(&value),
        sid: random::token(16),
        user_id: user_id.to_string(),
        auth_time: now,
        amr,
        acr: None,
        mfa_at: proofs.mfa_at,
        phr_at: proofs.phr_at,
        idp,
        created_at: now,
        last_seen_at: now,
        idle_expires_at: (now + cfg.idle_timeout_secs as i64).min(expires_at),
        expires_at,
        ip: ctx.ip,
        user_agent: ctx.user_agent,
    };
    sessions::insert(&state.db, &row).await?;
    let jar = jar.add(session_cookie(state, value)).add(browser_state_cookie(state, &row.id_hash));
    Ok((remove_legacy(state, jar), row))
}

/// The browser state for a session (keyed by its database hash); empty when
/// signed out, so any earlier `session_state` then reads as `changed`.
pub fn browser_state(id_hash: &str) -> String {
    if id_hash.is_empty() {
        return String::new();
    }
    crate::crypto::random::sha256_hex(&format!("sesame browser state {id_hash}"))[..32].to_string()
}

/// A JSON call from a script on one of Sesame's own pages (the passkey
/// ceremonies): the body `T`, whose `csrf` field is checked against the
/// browser's cookie, and the cookies. Refused with the JSON error the script
/// shows: 400 for a malformed body, 403 for a missing or stale CSRF value.
pub struct PageCall<T>(pub T, pub CookieJar);

#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    call: T,
}

/// What a stale page's script is told.
pub const PAGE_EXPIRED: &str = "This page has expired. Reload it and try again.";

impl<T: DeserializeOwned + Send> axum::extract::FromRequest<AppState> for PageCall<T> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        use crate::http::page::json_error;
        let jar = CookieJar::from_headers(req.headers());
        let axum::Json(w) = axum::Json::<WithCsrf<T>>::from_request(req, state).await.map_err(|e| {
            json_error(StatusCode::BAD_REQUEST, &format!("The request is not valid: {}", e.body_text()))
        })?;
        if check_csrf(state, &jar, Some(&w.csrf)).is_none() {
            return Err(json_error(StatusCode::FORBIDDEN, PAGE_EXPIRED));
        }
        Ok(PageCall(w.call, jar))
    }
}
