//! OAuth errors (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6) and the three
//! ways they leave: JSON at the token endpoint, a redirect to a verified
//! redirect_uri, or an error page when the client cannot be trusted.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError { error, description: description.into() }
    }
    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        Self::new("invalid_request", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> OAuthError {
        Self::new("invalid_grant", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> OAuthError {
        Self::new("invalid_client", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> OAuthError {
        Self::new("invalid_scope", d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> OAuthError {
        Self::new("unauthorized_client", d)
    }
    pub fn server_error() -> OAuthError {
        Self::new("server_error", "the server could not complete the request")
    }
}

/// A JSON error from the token, revocation or introspection endpoint.
pub struct TokenError {
    pub err: OAuthError,
    /// Set when the client tried HTTP Basic: a 401 must then challenge Basic.
    pub basic_challenge: bool,
}

impl From<OAuthError> for TokenError {
    fn from(err: OAuthError) -> Self {
        TokenError { err, basic_challenge: false }
    }
}

impl<E: Into<anyhow::Error>> From<Internal<E>> for TokenError {
    fn from(e: Internal<E>) -> Self {
        tracing::error!(error = %e.0.into(), "token endpoint failure");
        OAuthError::server_error().into()
    }
}

/// Wraps an internal failure so `?` turns it into `server_error` after logging it.
pub struct Internal<E>(pub E);

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let status = match self.err.error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut headers = no_store();
        if status == StatusCode::UNAUTHORIZED && self.basic_challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sesame\""));
        }
        let body = json!({"error": self.err.error, "error_description": self.err.description});
        (status, headers, Json(body)).into_response()
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, for anything carrying tokens.
pub fn no_store() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h
}
