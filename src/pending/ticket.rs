//! Embedded login (auth0-js cross-origin authentication): the password is
//! checked at `/co/authenticate`, which answers a login ticket; the
//! `/authorize` request that carries it signs the user in without the login
//! box. The ticket is short-lived, bound to its client, spent once, and
//! redeemed only by the browser that made it: the one holding the verifier,
//! in Sesame's cookie or, when the browser blocked that (third-party
//! cookies), from the application's verification page
//! (`crossOriginVerification()`), asked by the fallback page below.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::{Loaded, SignedIn};
use crate::crypto::random;
use crate::domain::User;
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::state::AppState;
use crate::storage::login_tickets::{self, TicketRow};
use crate::storage::users;

/// How long a ticket lives: the SDK redirects with it at once.
pub const TICKET_TTL_SECS: i64 = 60;
/// Where the fallback page posts the verifier the application's page gave it.
pub const VERIFY: &str = "/co/verify";

/// What `/co/authenticate` answers (Auth0's field names).
pub struct Issued {
    pub login_ticket: String,
    pub co_id: String,
    pub co_verifier: String,
}

fn cookie_name(state: &AppState) -> String {
    format!("{}_co", state.config.session_cookie_name())
}

/// A ticket for `user`, whose password was just checked, to be spent by
/// `client_id`; and the cookie that binds it to this browser.
pub async fn issue(state: &AppState, user: &User, client_id: &str) -> Result<(Issued, Cookie<'static>), Failure> {
    let now = state.clock.now();
    let issued = Issued { login_ticket: random::token(32), co_id: random::token(16), co_verifier: random::token(32) };
    let row = TicketRow {
        ticket_hash: random::sha256_hex(&issued.login_ticket),
        client_id: client_id.to_string(),
        user_id: user.user_id.clone(),
        co_id: issued.co_id.clone(),
        verifier_hash: random::sha256_hex(&issued.co_verifier),
        password_seen: random::sha256_hex(user.password_hash.as_deref().unwrap_or_default()),
        created_at: now,
        expires_at: now + TICKET_TTL_SECS,
    };
    login_tickets::insert(&state.db, &row).await.map_err(Failure::internal)?;
    // Set by a cross-origin fetch: SameSite=None (with Secure) or the browser drops it.
    let path = match state.issuer.path_prefix() {
        "" => "/".to_string(),
        p => p.to_string(),
    };
    let c = Cookie::build((cookie_name(state), issued.co_verifier.clone()))
        .path(path)
        .http_only(true)
        .secure(state.config.cookie_secure())
        .same_site(SameSite::None)
        .max_age(time::Duration::seconds(TICKET_TTL_SECS))
        .build();
    Ok((issued, c))
}

/// The verifier, from where it came.
pub enum Verifier<'a> {
    /// Sesame's own cookie (the common case).
    Cookie,
    /// The application's verification page, relayed by the fallback page.
    Relayed(&'a str),
}

/// `/authorize` with a `login_ticket`: the request is parked for this
/// browser, then the ticket redeemed for it.
pub async fn at_authorize(
    state: &AppState,
    jar: CookieJar,
    req: &crate::oidc::request::AuthRequest,
    hint_sub: Option<String>,
    ticket: &str,
) -> Result<Response, Failure> {
    let (jar, csrf) = crate::session::ensure_csrf(state, jar);
    let id = super::park(state, req, &csrf, hint_sub).await?;
    let l = super::load(state, &jar, &id).await?;
    redeem(state, jar, ticket, &l, Verifier::Cookie).await
}

fn refused(l: &Loaded, why: &str) -> Failure {
    super::fail(l, OAuthError::new(ErrorCode::AccessDenied, why))
}

/// Redeems `ticket` for pending request `l`: the user is identified (the same
/// hand-off as the login box's), or the fallback page asks the application
/// for the verifier, or the client hears why not.
pub async fn redeem(
    state: &AppState,
    jar: CookieJar,
    ticket: &str,
    l: &Loaded,
    verifier: Verifier<'_>,
) -> Result<Response, Failure> {
    let now = state.clock.now();
    let hash = random::sha256_hex(ticket);
    let Some(row) = login_tickets::find(&state.db, &hash, now).await.map_err(Failure::internal)? else {
        return Err(refused(l, "the login ticket is invalid, expired or already used"));
    };
    if row.client_id != l.client.client_id {
        login_tickets::take(&state.db, &hash, now).await.map_err(Failure::internal)?;
        return Err(refused(l, "the login ticket was issued to another application"));
    }
    // Embedded login turned off since the ticket was issued: it is over.
    if !l.client.cross_origin_authentication {
        login_tickets::take(&state.db, &hash, now).await.map_err(Failure::internal)?;
        return Err(refused(l, "embedded login is not enabled for this application"));
    }
    let presented = match verifier {
        Verifier::Cookie => jar.get(&cookie_name(state)).map(|c| c.value().to_string()),
        Verifier::Relayed(v) => Some(v.to_string()),
    };
    let proven = presented.is_some_and(|v| random::ct_eq(&random::sha256_hex(&v), &row.verifier_hash));
    if !proven {
        if let Verifier::Relayed(_) = verifier {
            login_tickets::take(&state.db, &hash, now).await.map_err(Failure::internal)?;
            return Err(refused(l, "this browser did not start the sign-in (the verifier does not match)"));
        }
        return match l.client.cross_origin_loc.as_deref() {
            Some(loc) => Ok(fallback(state, jar, ticket, l, &row, loc)),
            None => Err(refused(
                l,
                "the browser blocked the cookie embedded login needs (third-party cookies), and the application \
                 has no cross-origin verification page (cross_origin_loc)",
            )),
        };
    }
    if !login_tickets::take(&state.db, &hash, now).await.map_err(Failure::internal)? {
        return Err(refused(l, "the login ticket is invalid, expired or already used"));
    }
    let user = match users::find_by_id(&state.db, &row.user_id).await.map_err(Failure::internal)? {
        Some(u) if !u.disabled => u,
        _ => return Err(refused(l, "the account is no longer available")),
    };
    // The password checked for the ticket must still be the account's.
    let now_seen = random::sha256_hex(user.password_hash.as_deref().unwrap_or_default());
    if user.password_hash.is_none() || !random::ct_eq(&now_seen, &row.password_seen) {
        return Err(refused(l, "the account changed since the password was checked; sign in again"));
    }
    let jar = jar.remove(Cookie::from(cookie_name(state)));
    let how = SignedIn { amr: vec!["pwd".into()], idp: None, subject: None, proofs: Default::default() };
    super::identified(state, jar, &user, how, l).await
}

#[derive(Template)]
#[template(path = "co_verify.html")]
struct FallbackPage {
    brand: crate::http::page::Brand,
    action: String,
    csrf: String,
    req: String,
    ticket: String,
    co_id: String,
    frame: String,
    frame_origin: String,
}

/// The page that asks the application's `cross_origin_loc` for the verifier
/// (auth0-js `crossOriginVerification()`: a `ready` message, then
/// `co_verifier_request` / `co_verifier_response`) and posts it to `VERIFY`.
fn fallback(state: &AppState, jar: CookieJar, ticket: &str, l: &Loaded, row: &TicketRow, loc: &str) -> Response {
    let (jar, csrf) = crate::session::ensure_csrf(state, jar);
    let frame_origin = url::Url::parse(loc).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let origin: String = url::form_urlencoded::byte_serialize(state.issuer.origin().as_bytes()).collect();
    let page = FallbackPage {
        brand: state.brand.clone(),
        action: format!("{}{VERIFY}", state.issuer.path_prefix()),
        csrf,
        req: l.row.id.clone(),
        ticket: ticket.to_string(),
        co_id: row.co_id.clone(),
        frame: format!("{}#origin={origin}", loc.split('#').next().unwrap_or(loc)),
        frame_origin: frame_origin.clone(),
    };
    let mut resp = crate::http::page::render(StatusCode::OK, &page);
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; frame-src {frame_origin}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    (jar, resp).into_response()
}
