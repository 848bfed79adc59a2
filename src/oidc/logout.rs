//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at `/logout`.
//! With a valid `id_token_hint` for the signed-in user the session ends at
//! once; otherwise the user confirms on a CSRF-protected page. The session is
//! deleted server-side. `post_logout_redirect_uri` must match one registered for
//! the client exactly, or Sesame shows its own signed-out page instead.

use askama::Template;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::{END_SESSION, response, tokens};
use crate::audit::{self, Event, Kind};
use crate::error::{Failure, OAuthError};
use crate::frontchannel;
use crate::http::page::{self, Brand};
use crate::http::params::Params;
use crate::session;
use crate::state::AppState;
use crate::storage::sessions;

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage {
    brand: Brand,
    action: String,
    csrf: String,
    client_name: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// Auth0's `/v2/logout?returnTo=…&client_id=…`: like Auth0, no confirmation
/// page when `returnTo` is registered for the client (as a post-logout URI).
pub async fn auth0(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(c) = p.first("client_id") {
        pairs.push(("client_id".into(), c.into()));
    }
    let return_to = p.first("returnTo");
    if let Some(r) = return_to {
        pairs.push(("post_logout_redirect_uri".into(), r.into()));
    }
    let mapped = Params::from_pairs(pairs);
    let registered = match (p.first("client_id"), return_to) {
        (Some(c), Some(r)) => {
            matches!(state.client(c).await, Ok(Some(client)) if client.post_logout_redirect_uris.iter().any(|u| u == r))
        }
        _ => false,
    };
    match run(&state, Method::GET, jar, &mapped, registered).await {
        Ok(r) => r,
        Err(f) => f.render(&state.issuer, &state.brand),
    }
}

pub async fn handle(State(state): State<AppState>, method: Method, jar: CookieJar, p: Params) -> Response {
    match run(&state, method, jar, &p, false).await {
        Ok(r) => r,
        Err(f) => f.render(&state.issuer, &state.brand),
    }
}

/// `trusted_return` skips the confirmation (Auth0's `/v2/logout` with a registered `returnTo`).
async fn run(
    state: &AppState,
    method: Method,
    jar: CookieJar,
    p: &Params,
    trusted_return: bool,
) -> Result<Response, Failure> {
    let bad = |msg: &str| Failure::page(OAuthError::invalid_request(msg));
    if let Some(d) = p.first_duplicate(&["id_token_hint", "client_id", "post_logout_redirect_uri", "state"]) {
        return Err(bad(&format!("The request repeats {}.", d.0)));
    }
    let hint = match p.first("id_token_hint") {
        Some(h) => Some(
            tokens::id_token_hint_claims(state, h)
                .ok_or_else(|| bad("The id_token_hint is not a valid ID token from this issuer."))?,
        ),
        None => None,
    };
    let client_id = match (p.first("client_id"), &hint) {
        (Some(c), Some(h)) if !h.aud.iter().any(|a| a == c) => {
            return Err(bad("client_id does not match the id_token_hint."));
        }
        (Some(c), _) => Some(c.to_string()),
        (None, Some(h)) => h.aud.first().cloned(),
        (None, None) => None,
    };
    let client = match &client_id {
        Some(id) => Some(
            state
                .client(id)
                .await
                .map_err(Failure::internal)?
                .ok_or_else(|| bad("The application is not registered here."))?,
        ),
        None => None,
    };
    let redirect = match (p.first("post_logout_redirect_uri"), &client) {
        (None, _) => None,
        (Some(u), Some(c)) if c.post_logout_redirect_uris.iter().any(|r| r == u) => Some(u.to_string()),
        (Some(_), Some(_)) => return Err(bad("The post_logout_redirect_uri is not registered for this application.")),
        (Some(_), None) => return Err(bad("post_logout_redirect_uri needs client_id or id_token_hint.")),
    };
    let current = session::current(state, &jar).await.map_err(Failure::internal)?;
    let confirmed = method == Method::POST
        && p.first("confirm") == Some("yes")
        && session::check_csrf(state, &jar, p.first("csrf")).is_some();
    let hinted = match (&hint, &current) {
        (Some(h), Some(s)) => h.sub == s.user_id,
        _ => false,
    };
    let mut frames = Vec::new();
    let jar = match &current {
        // A session ended without this browser (password change, disabled
        // user): its front-channel logout happens now.
        None => match frontchannel::ended_elsewhere(state, &jar).await {
            Some(f) => {
                frames = f;
                session::remove_cookies(state, jar)
            }
            None => jar,
        },
        Some(s) if hinted || confirmed || (trusted_return && redirect.is_some()) => {
            let used_by = sessions::clients(&state.db, &s.sid).await.map_err(Failure::internal)?;
            let used_by_count = used_by.len();
            sessions::end(&state.db, &s.sid, state.clock.now()).await.map_err(Failure::internal)?;
            frames = frontchannel::frames(state, &s.sid, &used_by).await;
            state.logouts.notify(s.sid.clone(), s.user_id.clone(), used_by);
            let via = if trusted_return { "auth0_v2_logout" } else { "end_session" };
            let e = Event::new(Kind::Logout).user(s.user_id.clone()).sid(&s.sid);
            let e = match &client_id {
                Some(c) => e.client(c.clone()),
                None => e,
            };
            audit::record(&state.audit, e.details(serde_json::json!({ "via": via, "clients": used_by_count })));
            session::remove_cookies(state, jar)
        }
        Some(_) => {
            let (jar, csrf) = session::ensure_csrf(state, jar);
            let page = ConfirmPage {
                brand: state.brand.clone(),
                action: format!("{}{END_SESSION}", state.issuer.path_prefix()),
                csrf,
                client_name: client.as_ref().map(|c| c.name.clone()),
                client_id,
                post_logout_redirect_uri: redirect,
                state: p.first("state").map(str::to_string),
            };
            return Ok((jar, page::render(StatusCode::OK, &page)).into_response());
        }
    };
    let params: Vec<(&'static str, String)> =
        p.first("state").map(|s| vec![("state", s.to_string())]).unwrap_or_default();
    let done = match redirect {
        Some(uri) if frames.is_empty() => response::redirect_with_query(&uri, &params),
        redirect => {
            let next = redirect.map(|uri| response::with_query(&uri, &params));
            frontchannel::logged_out_page(state, next, frames)
        }
    };
    Ok((jar, done).into_response())
}
