//! Authorization responses and errors, delivered per response_mode. `iss` is
//! always included (RFC 9207) so clients can tell identity providers apart.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::issuer::Issuer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
    /// OAuth 2.0 Web Message Response Mode (as Auth0 uses it): the response is
    /// posted to the opener or parent window by a tiny page.
    WebMessage,
}

/// Where (and how) an authorization response or error goes once the client and
/// redirect_uri are verified.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub redirect_uri: String,
    /// The request named redirect_uri itself (rather than relying on the only
    /// registered one): /token then requires it too.
    #[serde(default)]
    pub redirect_uri_sent: bool,
    pub mode: ResponseMode,
    pub state: Option<String>,
    /// For web_message: the origin messages go to (never `*`) and the origins
    /// allowed to frame the response page.
    #[serde(default)]
    pub web_origin: Option<String>,
    #[serde(default)]
    pub frame_ancestors: Vec<String>,
}

/// Sends `params` (plus `state` and `iss`) to the client.
pub fn deliver(issuer: &Issuer, target: &Target, mut params: Vec<(&'static str, String)>) -> Response {
    if let Some(s) = &target.state {
        params.push(("state", s.clone()));
    }
    params.push(("iss", issuer.as_str().to_string()));
    match target.mode {
        ResponseMode::Query => redirect(with_query(&target.redirect_uri, &params)),
        ResponseMode::Fragment => redirect(with_fragment(&target.redirect_uri, &params)),
        ResponseMode::FormPost => form_post(&target.redirect_uri, params),
        ResponseMode::WebMessage => web_message(target, params),
    }
}

/// A 302 to `uri` with `params` appended to its query.
pub fn redirect_with_query(uri: &str, params: &[(&str, String)]) -> Response {
    redirect(with_query(uri, params))
}

fn redirect(location: String) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Appends to any query the registered URI already has.
pub fn with_query(uri: &str, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return uri.to_string();
    }
    match url::Url::parse(uri) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            u.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

fn with_fragment(uri: &str, params: &[(&str, String)]) -> String {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    format!("{uri}#{encoded}")
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPost {
    action: String,
    fields: Vec<(&'static str, String)>,
}

/// The submitting script, allowed by its CSP hash rather than 'unsafe-inline'.
pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

fn form_post(action: &str, fields: Vec<(&'static str, String)>) -> Response {
    let page = FormPost { action: action.to_string(), fields };
    let body = page.render().unwrap_or_default();
    let mut resp = Html(body).into_response();
    let csp = format!(
        "default-src 'none'; script-src '{}'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        crate::http::csp_hash(FORM_POST_SCRIPT)
    );
    crate::http::page::set_csp(&mut resp, &csp);
    resp
}

#[derive(Template)]
#[template(path = "web_message.html")]
struct WebMessage {
    nonce: String,
    response_json: String,
    origin_json: String,
}

/// JSON that is safe inside a `<script>` element: no `<`, `>`, `&` or line
/// separators survive unescaped, so no value can close the script or inject HTML.
pub fn script_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The web_message page: posts the response to the registered origin only
/// (never `*`), may be framed only by the client's web origins, and runs only
/// its own script (CSP nonce).
fn web_message(target: &Target, params: Vec<(&'static str, String)>) -> Response {
    let Some(origin) = &target.web_origin else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let response: serde_json::Map<String, serde_json::Value> =
        params.into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v))).collect();
    let nonce = crate::crypto::random::token(16);
    let page = WebMessage {
        nonce: nonce.clone(),
        response_json: script_json(&serde_json::Value::Object(response)),
        origin_json: script_json(&serde_json::Value::String(origin.clone())),
    };
    let mut resp = Html(page.render().unwrap_or_default()).into_response();
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors {}; base-uri 'none'",
        crate::http::page::sources(&target.frame_ancestors)
    );
    crate::http::page::set_csp(&mut resp, &csp);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_break_out() {
        let v = serde_json::json!({"state": "</script><script>alert(1)</script>&\u{2028}"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&') && !s.contains('\u{2028}'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }
}
