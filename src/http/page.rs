//! HTML pages: the branding every page shows, the headers every page carries,
//! and the error page (used wherever a request cannot be sent back to a client).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::config::Config;
use crate::issuer::Issuer;

/// Versioned so static files can be cached forever.
pub const STATIC_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone)]
pub struct Brand {
    pub product_name: String,
    pub logo_url: String,
    pub static_base: String,
    pub lang: String,
}

impl Brand {
    pub fn new(config: &Config, issuer: &Issuer) -> Brand {
        Brand {
            product_name: config.login.product_name.clone(),
            logo_url: config.login.logo_url.clone(),
            static_base: format!("{}/static/{STATIC_VERSION}", issuer.path_prefix()),
            lang: "en".into(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub brand: Brand,
    pub message: String,
    pub request_id: String,
}

#[derive(Template)]
#[template(path = "notice.html")]
pub struct NoticePage {
    pub brand: Brand,
    pub title: String,
    pub message: String,
    /// (href, label) of the one way on.
    pub link: Option<(String, String)>,
}

/// New recovery codes, shown once.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub brand: Brand,
    pub codes: Vec<String>,
    pub next: String,
    pub next_label: String,
}

/// A page that says one thing (check your email, done, link expired).
pub fn notice(
    brand: &Brand,
    status: StatusCode,
    title: &str,
    message: impl Into<String>,
    link: Option<(String, String)>,
) -> Response {
    render(status, &NoticePage { brand: brand.clone(), title: title.into(), message: message.into(), link })
}

/// Renders `t` with the login box's headers: a strict CSP (no script at all),
/// no framing, no caching.
pub fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(body) => {
            let mut resp = (status, Html(body)).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Renders `t` as `render` does, on a page that runs Sesame's own scripts
/// (the passkey ceremonies): `script-src 'self'` and `connect-src 'self'`,
/// still no inline script.
pub fn render_scripted<T: Template>(status: StatusCode, t: &T) -> Response {
    let mut resp = render(status, t);
    if resp.status() != StatusCode::INTERNAL_SERVER_ERROR {
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    resp
}

/// The JSON error a page's own script reads (`{"error", "error_description"}`;
/// it shows the description).
pub fn json_error(status: StatusCode, msg: &str) -> Response {
    let code = if status == StatusCode::TOO_MANY_REQUESTS { "slow_down" } else { "access_denied" };
    (status, axum::Json(serde_json::json!({ "error": code, "error_description": msg }))).into_response()
}

/// The error page's markup. Only `oidc::error::page` calls it: that is where
/// an error's status and log line are decided.
pub fn error(brand: &Brand, status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    render(status, &ErrorPage { brand: brand.clone(), message, request_id: String::new() })
}

/// Replaces the login box's no-script policy on a page that runs its own
/// script (hash or nonce in `csp`), and forbids caching it.
pub fn set_csp(resp: &mut Response, csp: &str) {
    if let Ok(v) = HeaderValue::from_str(csp) {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A CSP source list (`frame-ancestors`, `frame-src`); empty means `'none'`.
pub fn sources<S: AsRef<str>>(origins: &[S]) -> String {
    if origins.is_empty() {
        return "'none'".into();
    }
    origins.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ")
}
