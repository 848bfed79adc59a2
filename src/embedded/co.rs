//! `POST /co/authenticate` (auth0-js `webAuth.login` with a `realm`): the
//! password checked exactly as on the login box, answered with a login
//! ticket; `POST /co/verify`, where the fallback page relays the verifier.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::{client_for, login_error, password_connection};
use crate::error::ErrorCode;
use crate::http::client_ip::ClientIp;
use crate::http::params::Params;
use crate::pending::password::{self, Checked};
use crate::pending::ticket::{self, Verifier};
use crate::state::AppState;

const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";

#[derive(Deserialize)]
pub struct Authenticate {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    realm: Option<String>,
    #[serde(default)]
    credential_type: Option<String>,
}

pub async fn authenticate(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<axum::Json<Authenticate>, JsonRejection>,
) -> Response {
    let Ok(axum::Json(a)) = body else {
        return login_error(StatusCode::BAD_REQUEST, "invalid_request", "the body must be JSON");
    };
    let client = match client_for(&state, &headers, &a.client_id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let grant_ok = client.grant_types.iter().any(|g| g == "authorization_code" || g == "implicit");
    if !grant_ok {
        return login_error(StatusCode::FORBIDDEN, "unauthorized_client", "this application does not sign users in");
    }
    match a.credential_type.as_deref() {
        None | Some("password") | Some(PASSWORD_REALM) => {}
        Some(_) => return login_error(StatusCode::BAD_REQUEST, "invalid_request", "unsupported credential_type"),
    }
    if !password_connection(&state, a.realm.as_deref()) {
        return login_error(StatusCode::BAD_REQUEST, "invalid_request", "unknown realm (connection)");
    }
    let email = a.username.trim();
    if crate::text::has_control(email) || crate::text::has_control(&a.password) {
        return login_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the username or password holds a control character",
        );
    }
    let checked = match password::check(&state, ip, email, a.password, &client.client_id).await {
        Ok(c) => c,
        Err(f) if f.err.code == ErrorCode::TemporarilyUnavailable => {
            let mut r = login_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "too many sign-ins at once; retry shortly",
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(crate::error::RETRY_AFTER_SECS));
            return r;
        }
        Err(f) => return login_error(f.err.code.status(), f.err.error(), "Sesame could not complete the request"),
    };
    let user = match checked {
        Checked::Signed(u) => u,
        Checked::Wrong => return login_error(StatusCode::FORBIDDEN, "access_denied", "Wrong email or password."),
        Checked::Throttled => {
            let msg = "Too many attempts. Wait a minute, then try again.";
            return login_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", msg);
        }
        Checked::NotVerified => {
            let msg = "Verify your email address first: follow the link we sent you.";
            return login_error(StatusCode::FORBIDDEN, "unauthorized", msg);
        }
    };
    match ticket::issue(&state, &user, &client.client_id).await {
        Ok((t, cookie)) => {
            let body = json!({ "login_ticket": t.login_ticket, "co_verifier": t.co_verifier, "co_id": t.co_id });
            (CookieJar::new().add(cookie), crate::error::no_store(), axum::Json(body)).into_response()
        }
        Err(f) => login_error(f.err.code.status(), f.err.error(), "Sesame could not complete the request"),
    }
}

/// The fallback page's form: the verifier the application's page gave it.
pub async fn verify(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    let run = async {
        let csrf_ok = crate::session::check_csrf(&state, &jar, p.first("csrf")).is_some();
        if !csrf_ok {
            let msg = "This sign-in has expired. Go back to the application and try again.";
            return Err(crate::error::Failure::page(crate::error::OAuthError::new(ErrorCode::AccessDenied, msg)));
        }
        let l = crate::pending::load(&state, &jar, p.first("req").unwrap_or("")).await?;
        let t = p.first("login_ticket").unwrap_or("");
        let v = p.first("verifier").unwrap_or("");
        ticket::redeem(&state, jar, t, &l, Verifier::Relayed(v)).await
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

const SCRIPT: &str = include_str!("../../static/co-verify.js");

pub async fn script() -> Response {
    let mut r = SCRIPT.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    r
}
