//! The management API's errors: RFC 9457 `application/problem+json`, its own
//! error type beside the OAuth one (a management client is not an OAuth
//! client in distress). Statuses are decided here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::access::AccessError;
use crate::manage::OpError;
use crate::storage::StorageError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    pub fn bad_request(d: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, d)
    }

    pub fn not_found(d: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, d)
    }

    pub fn unauthorized(d: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, d)
    }

    pub fn forbidden(d: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, d)
    }

    pub fn conflict(d: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, d)
    }

    pub fn stale() -> Problem {
        Problem::new(StatusCode::PRECONDITION_FAILED, "If-Match does not match the current ETag: read it again")
    }
}

impl From<StorageError> for Problem {
    fn from(e: StorageError) -> Problem {
        match e {
            StorageError::NotFound => Problem::not_found("not found"),
            StorageError::Conflict(what) => Problem::conflict(format!("{what} already exists")),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable; retry shortly")
            }
            e => {
                tracing::error!(error = %e, "management API storage error");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl From<AccessError> for Problem {
    fn from(e: AccessError) -> Problem {
        match e {
            AccessError::Invalid(m) => Problem::bad_request(m),
            AccessError::NotFound(m) => Problem::not_found(m),
            AccessError::Storage(s) => s.into(),
        }
    }
}

impl From<OpError> for Problem {
    fn from(e: OpError) -> Problem {
        match e {
            OpError::Invalid(m) => Problem::bad_request(m),
            OpError::NotFound(m) => Problem::not_found(m),
            OpError::Conflict(m) => Problem::conflict(m),
            OpError::Forbidden(m) => Problem::forbidden(m),
            OpError::Storage(s) => s.into(),
            OpError::Internal(m) => {
                tracing::error!(error = %m, "management operation failed");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}
