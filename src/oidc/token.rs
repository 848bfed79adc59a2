//! `POST /token`: client authentication, then one module per grant.
//! Every answer is JSON with `Cache-Control: no-store`; errors follow RFC 6749 §5.2.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;

use super::grants;
use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::domain::Client;
use crate::error::{ErrorCode, Failure, Internal, OAuthError, no_store};
use crate::http::client_ip::ClientIp;
use crate::http::params::Params;
use crate::state::AppState;

#[derive(Debug, Serialize, Default)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

pub async fn post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    match run(&state, ip, &uri, &headers, &params).await {
        Ok(t) => {
            let mut h = no_store();
            if let Some(n) = super::dpop::nonce_header(&state) {
                h.insert(super::dpop::NONCE_HEADER, n);
            }
            (h, Json(t)).into_response()
        }
        Err(e) if e.err.code == ErrorCode::UseDpopNonce => {
            let mut r = e.render(&state.issuer, &state.brand);
            if let Some(n) = super::dpop::nonce_header(&state) {
                r.headers_mut().insert(super::dpop::NONCE_HEADER, n);
            }
            r
        }
        // A throttled flood is not written down request by request.
        Err(e) if e.err.code == ErrorCode::SlowDown => e.render(&state.issuer, &state.brand),
        Err(e) => {
            // Refused requests are events too (a replay or reuse has its own as well).
            let grant = params.first("grant_type").unwrap_or("");
            let kind = if grant == "refresh_token" { Kind::TokenRefreshed } else { Kind::TokenIssued };
            let mut ev = Event::failure(kind, e.err.error());
            if let Some(id) = params.first("client_id") {
                ev = ev.client(id.chars().take(255).collect::<String>());
            }
            let grant: String = grant.chars().take(40).collect();
            audit::record(&state.audit, ev.details(serde_json::json!({ "grant": grant })));
            e.render(&state.issuer, &state.brand)
        }
    }
}

async fn run(
    state: &AppState,
    ip: Option<IpAddr>,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    p: &Params,
) -> Result<TokenResponse, Failure> {
    let client = authenticate(state, ip, headers, p).await?;
    // A browser call must come from one of this client's own web origins.
    if let Some(origin) = headers.get(axum::http::header::ORIGIN).and_then(|v| v.to_str().ok())
        && !client.web_origins.iter().any(|o| o == origin)
    {
        return Err(OAuthError::invalid_client(format!("origin {origin} is not registered for this client")).into());
    }
    let grant_type =
        p.get("grant_type").map_err(dup)?.ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let proof = proof(state, &client, headers, uri).await?;
    let jkt = proof.as_ref().map(|c| c.jkt.as_str());
    let allowed = |g: &str| client.grant_types.iter().any(|x| x == g);
    match grant_type {
        "authorization_code" | "refresh_token" | "client_credentials" if !allowed(grant_type) => {
            Err(OAuthError::unauthorized_client(format!("this client may not use the {grant_type} grant")).into())
        }
        "authorization_code" => {
            issued("authorization_code", &client, grants::authorization_code::exchange(state, &client, p, jkt).await)
        }
        "refresh_token" => {
            issued("refresh_token", &client, grants::refresh_token::exchange(state, &client, p, jkt).await)
        }
        "client_credentials" => {
            issued("client_credentials", &client, grants::client_credentials::exchange(state, &client, p, jkt).await)
        }
        other => {
            Err(OAuthError::new(ErrorCode::UnsupportedGrantType, format!("grant_type `{other}` is not supported"))
                .into())
        }
    }
}

/// The request's DPoP proof (RFC 9449 §5), checked and spent; required when
/// the client says so.
async fn proof(
    state: &AppState,
    client: &Client,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> Result<Option<super::dpop::Checked>, Failure> {
    use super::dpop::Refused;
    match super::dpop::verify(state, headers, &Method::POST, uri, None).await {
        Ok(None) if client.require_dpop => {
            Err(OAuthError::invalid_request("this client must present a DPoP proof (RFC 9449)").into())
        }
        Ok(c) => Ok(c),
        Err(Refused::Invalid(why)) => Err(OAuthError::new(ErrorCode::InvalidDpopProof, why).into()),
        Err(Refused::NonceNeeded) => {
            Err(OAuthError::new(ErrorCode::UseDpopNonce, "the DPoP proof must carry the nonce in DPoP-Nonce").into())
        }
        Err(Refused::Storage(e)) => Err(Internal(e).into()),
    }
}

/// Counts tokens issued to the authenticated `client`.
fn issued(grant: &'static str, client: &Client, r: Result<TokenResponse, Failure>) -> Result<TokenResponse, Failure> {
    if r.is_ok() {
        crate::telemetry::token_issued(grant, &client.client_id);
    }
    r
}

pub fn dup(d: crate::http::params::Duplicate) -> Failure {
    OAuthError::invalid_request(format!("parameter `{}` is repeated", d.0)).into()
}

/// How the client presented itself.
enum Presented {
    Basic { id: String, secret: String },
    Post { id: String, secret: String },
    None { id: String },
}

/// Authenticates the client by its registered method (RFC 6749 §2.3), comparing
/// the SHA-256 of the presented secret in constant time. Failures are
/// throttled (`limits`): an address past its budget gets 429 `slow_down` for
/// everything until it refills; a client id past its budget turns further
/// failures into 429s but never refuses right credentials. Throttled
/// requests are not audited one by one.
pub async fn authenticate(
    state: &AppState,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Arc<Client>, Failure> {
    let slow_down = || {
        let msg = "too many failed client authentications from this address or for this client; retry later";
        Failure::json(OAuthError::new(ErrorCode::SlowDown, msg), false)
    };
    if !state.limits.client_auth_open(ip) {
        return Err(slow_down());
    }
    match check_client(state, headers, p).await {
        Ok(client) => Ok(client),
        Err(f) if f.err.code == ErrorCode::InvalidClient => {
            let claimed = match presented(headers, p) {
                Ok(Presented::Basic { id, .. } | Presented::Post { id, .. } | Presented::None { id }) => Some(id),
                Err(_) => p.first("client_id").map(str::to_string),
            };
            let claimed: Option<String> = claimed.map(|c| c.chars().take(255).collect());
            if !state.limits.client_auth_failed(ip, claimed.as_deref()) {
                return Err(slow_down());
            }
            Err(f)
        }
        Err(f) => Err(f),
    }
}

async fn check_client(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<Arc<Client>, Failure> {
    let presented = presented(headers, p)?;
    let basic = matches!(presented, Presented::Basic { .. });
    let fail = |msg: &str| Failure::json(OAuthError::invalid_client(msg), basic);
    let (id, secret, method) = match &presented {
        Presented::Basic { id, secret } => (id, Some(secret), "client_secret_basic"),
        Presented::Post { id, secret } => (id, Some(secret), "client_secret_post"),
        Presented::None { id } => (id, None, "none"),
    };
    let client = state.client(id).await.map_err(Internal)?.ok_or_else(|| fail("client authentication failed"))?;
    if client.token_endpoint_auth_method != method {
        return Err(fail(&format!("this client authenticates with {}", client.token_endpoint_auth_method)));
    }
    if let Some(secret) = secret {
        let ok = client.secret_hash.as_deref().is_some_and(|h| random::ct_eq(h, &random::sha256_hex(secret)));
        if !ok {
            tracing::info!(client_id = %client.client_id, "client authentication failed");
            return Err(fail("client authentication failed"));
        }
    }
    Ok(client)
}

fn presented(headers: &HeaderMap, p: &Params) -> Result<Presented, Failure> {
    let form_id = p.get("client_id").map_err(dup)?;
    let form_secret = p.get("client_secret").map_err(dup)?;
    let basic = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")));
    if let Some(b64) = basic {
        let bad = || Failure::json(OAuthError::invalid_client("malformed Basic credentials"), true);
        if form_secret.is_some() {
            return Err(OAuthError::invalid_request("use one client authentication method, not two").into());
        }
        let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
        // RFC 6749 §2.3.1: both halves are form-urlencoded.
        let decode =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        let (id, secret) = (decode(id).ok_or_else(bad)?, decode(secret).ok_or_else(bad)?);
        if crate::text::has_control(&id) || crate::text::has_control(&secret) {
            return Err(OAuthError::invalid_request("the Basic credentials hold a control character").into());
        }
        if form_id.is_some_and(|f| f != id) {
            return Err(OAuthError::invalid_request("client_id differs from the Basic credentials").into());
        }
        return Ok(Presented::Basic { id, secret });
    }
    match (form_id, form_secret) {
        (Some(id), Some(secret)) => Ok(Presented::Post { id: id.into(), secret: secret.into() }),
        (Some(id), None) => Ok(Presented::None { id: id.into() }),
        _ => Err(Failure::json(OAuthError::invalid_client("client authentication is required"), false)),
    }
}
