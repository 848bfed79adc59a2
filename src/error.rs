//! The one error type of the protocol and the login box: an OAuth error code
//! (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; OIDC Core §3.1.2.6), a description
//! the client may read, and a private detail for the log. Handlers return a
//! `Failure` — the error plus how it leaves: JSON (token, revocation,
//! introspection), a Bearer challenge (userinfo), a redirect to a verified
//! redirect_uri, or an error page when the client cannot be trusted — and
//! `Failure::render` turns it into the response. The HTTP status of every
//! error is decided by `ErrorCode::status`, and nowhere else.
//!
//! Storage failures map by kind: the database being away is
//! `temporarily_unavailable` (503, `Retry-After`), a conflict is the grant's
//! own error, anything else `server_error`, never leaking internals.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::page;
use crate::http::page::Brand;
use crate::issuer::Issuer;
use crate::storage::StorageError;

/// Seconds a client is asked to wait when Sesame is temporarily unavailable.
pub const RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    /// RFC 8707: the requested API (audience / resource) is unknown.
    InvalidTarget,
    InvalidToken,
    InsufficientScope,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    AccessDenied,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    /// Rate limits and overload: a client should retry later.
    TemporarilyUnavailable,
    /// Too many failed client authentications (429, `Retry-After`).
    SlowDown,
    /// A page or feature that is not there (sign-up switched off).
    NotFound,
    /// RFC 9449: the DPoP proof is missing where required, malformed or replayed.
    InvalidDpopProof,
    /// RFC 9449 §8: retry with the nonce in `DPoP-Nonce`.
    UseDpopNonce,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidClient => "invalid_client",
            InvalidGrant => "invalid_grant",
            InvalidScope => "invalid_scope",
            InvalidTarget => "invalid_target",
            InvalidToken => "invalid_token",
            InsufficientScope => "insufficient_scope",
            UnauthorizedClient => "unauthorized_client",
            UnsupportedGrantType => "unsupported_grant_type",
            UnsupportedResponseType => "unsupported_response_type",
            AccessDenied => "access_denied",
            LoginRequired => "login_required",
            ConsentRequired => "consent_required",
            InteractionRequired => "interaction_required",
            RequestNotSupported => "request_not_supported",
            RequestUriNotSupported => "request_uri_not_supported",
            TemporarilyUnavailable => "temporarily_unavailable",
            SlowDown => "slow_down",
            NotFound => "not_found",
            InvalidDpopProof => "invalid_dpop_proof",
            UseDpopNonce => "use_dpop_nonce",
            ServerError => "server_error",
        }
    }

    /// The status an error carries in a JSON answer or on an error page.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidClient | InvalidToken => StatusCode::UNAUTHORIZED,
            InsufficientScope | AccessDenied => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            SlowDown => StatusCode::TOO_MANY_REQUESTS,
            ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Shown to the client; free of control characters.
    pub description: String,
    /// For the log only.
    pub detail: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError { code, description: crate::http::clean(&description.into()), detail: None }
    }
    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    pub fn server_error() -> OAuthError {
        Self::new(ErrorCode::ServerError, "the server could not complete the request")
    }
    pub fn unavailable() -> OAuthError {
        Self::new(ErrorCode::TemporarilyUnavailable, "the service is temporarily unavailable; retry shortly")
    }

    /// The wire name, e.g. `invalid_grant`.
    pub fn error(&self) -> &'static str {
        self.code.as_str()
    }

    /// Maps an internal failure by kind; the failure itself goes to the log only.
    pub fn internal(e: impl Into<anyhow::Error>) -> OAuthError {
        let e: anyhow::Error = e.into();
        let mut err = match e.downcast_ref::<StorageError>() {
            Some(s) if s.is_unavailable() => OAuthError::unavailable(),
            Some(StorageError::Conflict(_)) => OAuthError::invalid_grant("the grant changed concurrently; retry"),
            _ => OAuthError::server_error(),
        };
        err.detail = Some(format!("{e:#}"));
        err
    }

    /// Logs the error once, at a level fitting its kind.
    pub fn log(&self, context: &str) {
        let (code, description) = (self.code.as_str(), self.description.as_str());
        let detail = self.detail.as_deref().unwrap_or("");
        match self.code {
            ErrorCode::ServerError => tracing::error!(error = code, %description, %detail, "{context}"),
            ErrorCode::TemporarilyUnavailable => tracing::warn!(error = code, %description, %detail, "{context}"),
            _ => tracing::info!(error = code, %description, "{context}"),
        }
    }
}

impl From<StorageError> for OAuthError {
    fn from(e: StorageError) -> Self {
        OAuthError::internal(e)
    }
}

/// How an error reaches whoever made the request.
#[derive(Debug, Clone)]
pub enum Via {
    /// JSON (token, revocation, introspection). A 401 challenges Basic when the
    /// client tried HTTP Basic.
    Json { basic_challenge: bool },
    /// A Bearer-token error (RFC 6750 §3): `WWW-Authenticate` plus JSON.
    Bearer,
    /// The same for a DPoP-bound token (RFC 9449 §7.1), with a fresh nonce
    /// when one is asked for.
    Dpop { nonce: Option<HeaderValue> },
    /// Back to a verified redirect_uri, through the request's response mode.
    Redirect(Box<crate::oidc::response::Target>),
    /// Sesame's error page: the client or its redirect_uri cannot be trusted.
    Page,
}

/// An error on its way out: what went wrong, and how the client hears of it.
/// `render` is the one place where an error becomes a response: its status
/// (from the code), its log line, and its body.
#[derive(Debug, Clone)]
pub struct Failure {
    pub err: OAuthError,
    pub via: Via,
}

impl Failure {
    pub fn page(err: OAuthError) -> Failure {
        Failure { err, via: Via::Page }
    }
    pub fn redirect(target: &crate::oidc::response::Target, err: OAuthError) -> Failure {
        Failure { err, via: Via::Redirect(Box::new(target.clone())) }
    }
    pub fn json(err: OAuthError, basic_challenge: bool) -> Failure {
        Failure { err, via: Via::Json { basic_challenge } }
    }
    pub fn bearer(err: OAuthError) -> Failure {
        Failure { err, via: Via::Bearer }
    }
    pub fn dpop(err: OAuthError, nonce: Option<HeaderValue>) -> Failure {
        Failure { err, via: Via::Dpop { nonce } }
    }
    /// An internal failure where nothing can go back to a client: the error
    /// page (503 when the database is away, 500 otherwise).
    pub fn internal(e: impl Into<anyhow::Error>) -> Failure {
        Failure::page(OAuthError::internal(e))
    }

    /// The response: `issuer` for a redirect's `iss`, `brand` for the page.
    pub fn render(self, issuer: &Issuer, brand: &Brand) -> Response {
        match self.via {
            Via::Json { basic_challenge } => json_error(&self.err, basic_challenge),
            Via::Bearer => bearer(Some(&self.err)),
            Via::Dpop { nonce } => dpop(&self.err, nonce),
            Via::Redirect(target) => {
                self.err.log("authorization error sent to client");
                let params = vec![("error", self.err.error().to_string()), ("error_description", self.err.description)];
                crate::oidc::response::deliver(issuer, &target, params)
            }
            Via::Page => page(brand, &self.err),
        }
    }
}

/// OAuth errors raised with `?` in the token, revocation and introspection
/// code answer as JSON.
impl From<OAuthError> for Failure {
    fn from(err: OAuthError) -> Self {
        Failure::json(err, false)
    }
}

impl<E: Into<anyhow::Error>> From<Internal<E>> for Failure {
    fn from(e: Internal<E>) -> Self {
        OAuthError::internal(e.0).into()
    }
}

/// Wraps an internal failure so `?` maps it by kind (see `OAuthError::internal`).
pub struct Internal<E>(pub E);

fn json_error(err: &OAuthError, basic_challenge: bool) -> Response {
    let status = err.code.status();
    if status.is_server_error() {
        err.log("token endpoint failure");
    }
    let mut headers = no_store();
    if status == StatusCode::UNAUTHORIZED && basic_challenge {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sesame\""));
    }
    retry_after(&mut headers, err.code);
    let body = json!({"error": err.error(), "error_description": err.description});
    (status, headers, Json(body)).into_response()
}

/// A bearer-token error (RFC 6750 §3): `WWW-Authenticate` with the code, and
/// the same in a JSON body. `None`: no token was presented at all.
pub fn bearer(err: Option<&OAuthError>) -> Response {
    let Some(err) = err else {
        let mut h = HeaderMap::new();
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"sesame\""));
        let body = json!({"error": "invalid_request", "error_description": "a bearer token is required"});
        return (StatusCode::UNAUTHORIZED, h, Json(body)).into_response();
    };
    let status = err.code.status();
    if status.is_server_error() {
        err.log("bearer endpoint failure");
    }
    let mut h = no_store();
    let challenge = format!(
        "Bearer realm=\"sesame\", error=\"{}\", error_description=\"{}\"",
        err.error(),
        err.description.replace(['"', '\\'], "")
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    retry_after(&mut h, err.code);
    (status, h, Json(json!({"error": err.error(), "error_description": err.description}))).into_response()
}

/// A DPoP resource error (RFC 9449 §7.1): `WWW-Authenticate: DPoP` with the
/// algorithms Sesame accepts, 401 for a token or proof problem.
fn dpop(err: &OAuthError, nonce: Option<HeaderValue>) -> Response {
    let status = match err.code {
        ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => StatusCode::UNAUTHORIZED,
        c => c.status(),
    };
    if status.is_server_error() {
        err.log("DPoP endpoint failure");
    }
    let mut h = no_store();
    let challenge = format!(
        "DPoP algs=\"{}\", error=\"{}\", error_description=\"{}\"",
        crate::crypto::jws::FOREIGN_ALGS.join(" "),
        err.error(),
        err.description.replace(['"', '\\'], "")
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    if let Some(n) = nonce {
        h.insert("dpop-nonce", n);
    }
    retry_after(&mut h, err.code);
    (status, h, Json(json!({"error": err.error(), "error_description": err.description}))).into_response()
}

/// The error page, for failures that must not (or cannot) go back to a client:
/// its status comes from the code; internals never reach the page.
fn page(brand: &Brand, err: &OAuthError) -> Response {
    err.log("error page");
    let message = match err.code {
        ErrorCode::ServerError => "Sesame could not complete the request. Please try again.",
        ErrorCode::TemporarilyUnavailable => "Sesame is temporarily unavailable. Please try again in a moment.",
        _ => err.description.as_str(),
    };
    let mut resp = page::error(brand, err.code.status(), message);
    retry_after(resp.headers_mut(), err.code);
    resp
}

fn retry_after(headers: &mut HeaderMap, code: ErrorCode) {
    if matches!(code, ErrorCode::TemporarilyUnavailable | ErrorCode::SlowDown) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, for anything carrying tokens.
pub fn no_store() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h
}
