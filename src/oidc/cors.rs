//! CORS for the endpoints browsers call directly (`/token`, `/oauth/token`,
//! `/userinfo`, `/revoke`): only origins some client registered
//! (`--web-origin`) are answered, preflights included; `/token` additionally
//! requires the origin to belong to the client that authenticates. Never on
//! `/authorize`, which is a navigation, not a fetch.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::storage::{Db, StorageError, clients};

/// Every registered web origin, refreshed from the database every few seconds.
#[derive(Default)]
pub struct Origins {
    cached: RwLock<(i64, Arc<OriginSets>)>,
}

#[derive(Default)]
pub struct OriginSets {
    /// `--web-origin`s: answered by CORS.
    pub web: HashSet<String>,
    /// Web origins plus the origins of http(s) redirect URIs: the pages an RP
    /// runs on, which may frame `/check_session`.
    pub rp: HashSet<String>,
}

impl Origins {
    pub async fn get(&self, db: &Db, now: i64, ttl: i64) -> Result<Arc<OriginSets>, StorageError> {
        if let Ok(c) = self.cached.read()
            && c.0 > now
        {
            return Ok(c.1.clone());
        }
        let list = match clients::list(db).await {
            Ok(list) => list,
            // The database is away: keep answering with what was last read.
            Err(e) if e.is_unavailable() => match self.cached.read() {
                Ok(c) => return Ok(c.1.clone()),
                Err(_) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let mut sets = OriginSets::default();
        for c in list {
            sets.rp.extend(c.redirect_uris.iter().filter_map(|u| http_origin(u)));
            sets.rp.extend(c.web_origins.iter().cloned());
            sets.web.extend(c.web_origins);
        }
        let sets = Arc::new(sets);
        if let Ok(mut c) = self.cached.write() {
            *c = (now + ttl.max(1), sets.clone());
        }
        Ok(sets)
    }
}

/// The origin of an http(s) URI; None for a native app's private-use scheme.
pub fn http_origin(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.origin().ascii_serialization())
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
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
        allow(h, &origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        // Auth0 SDKs send Auth0-Client (telemetry) with every call.
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, auth0-client"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        return resp;
    }
    let mut resp = next.run(req).await;
    if allowed {
        allow(resp.headers_mut(), &origin);
    }
    resp
}

fn allow(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}
