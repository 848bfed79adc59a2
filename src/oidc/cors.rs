//! CORS for the endpoints browsers call directly (`/token`, `/oauth/token`,
//! `/userinfo`, `/revoke`, and embedded login's, with credentials): only
//! origins some client registered (`--web-origin`) are answered, preflights
//! included; `/token` additionally
//! requires the origin to belong to the client that authenticates. Never on
//! `/authorize`, which is a navigation, not a fetch.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    answer(&state, req, next, Credentials::Omitted).await
}

/// For pages that send cookies with their calls (auth0-js embedded login):
/// `Access-Control-Allow-Credentials` too; the handler checks the origin
/// belongs to the client the call names.
pub async fn with_credentials(State(state): State<AppState>, req: Request, next: Next) -> Response {
    answer(&state, req, next, Credentials::Included).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Credentials {
    Omitted,
    Included,
}

async fn answer(state: &AppState, req: Request, next: Next, credentials: Credentials) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return next.run(req).await;
    };
    let ttl = state.config.database.client_cache_secs as i64;
    let allowed = match state.origins.get(&state.db, state.clock.now(), ttl).await {
        Ok(sets) => sets.web.contains(&origin),
        Err(e) => {
            tracing::error!(error = %e, "loading web origins failed");
            false
        }
    };
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        if !allowed {
            return StatusCode::FORBIDDEN.into_response();
        }
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        allow(h, &origin, credentials);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        // Auth0 SDKs send Auth0-Client (telemetry) with every call; DPoP
        // carries its proof in a header of its own.
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, auth0-client, dpop"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        return resp;
    }
    let mut resp = next.run(req).await;
    if allowed {
        allow(resp.headers_mut(), &origin, credentials);
    }
    resp
}

fn allow(h: &mut HeaderMap, origin: &str, credentials: Credentials) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if credentials == Credentials::Included {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    // A DPoP client reads the nonce it must use next, and why it was refused.
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("dpop-nonce, www-authenticate"));
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}
