//! OpenID Connect Session Management 1.0: the `check_session_iframe` and the
//! `session_state` sent with every successful authorization response.
//!
//! `session_state` is `SHA-256(client_id origin browser_state salt).salt`,
//! where the browser state lives in a cookie the iframe's script can read. An
//! RP posts `client_id session_state` to the iframe, which recomputes the hash
//! for the sender's origin and answers `unchanged` or `changed` without a
//! round trip to the server. Only registered web origins may frame the page,
//! and only its parent is answered.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::request::{ResponseMode, Target};
use crate::crypto::random;
use crate::error::Failure;
use crate::http::page;
use crate::state::AppState;

pub use crate::session::browser_state;

/// The `session_state` for a response to `target`, or None where the redirect
/// has no web origin (a native app's custom scheme) to bind it to.
pub fn session_state(client_id: &str, target: &Target, id_hash: &str) -> Option<String> {
    let origin = match (&target.mode, &target.web_origin) {
        (ResponseMode::WebMessage, Some(o)) => o.clone(),
        _ => {
            let u = url::Url::parse(&target.redirect_uri).ok()?;
            if !matches!(u.scheme(), "http" | "https") {
                return None;
            }
            u.origin().ascii_serialization()
        }
    };
    let salt = random::token(12);
    let hash = random::sha256_hex(&format!("{client_id} {origin} {} {salt}", browser_state(id_hash)));
    Some(format!("{hash}.{salt}"))
}

/// Static so its CSP hash is a constant; the cookie name comes from a data
/// attribute. `crypto.subtle` needs a secure context, which any real
/// deployment (https) is; elsewhere the iframe answers `error` and RPs fall
/// back to silent authentication.
pub const SCRIPT: &str = r#"(function () {
  "use strict";
  var name = document.documentElement.getAttribute("data-cookie") + "=";
  function browserState() {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(name) === 0) return parts[i].substring(name.length);
    }
    return "";
  }
  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }
  window.addEventListener("message", function (e) {
    if (window.parent === window || e.source !== window.parent) return;
    if (typeof e.data !== "string" || e.origin === "null") return;
    var sp = e.data.lastIndexOf(" ");
    var clientId = e.data.substring(0, sp);
    var sessionState = e.data.substring(sp + 1);
    var dot = sessionState.lastIndexOf(".");
    if (sp <= 0 || dot <= 0 || !window.crypto || !window.crypto.subtle) {
      e.source.postMessage("error", e.origin);
      return;
    }
    var salt = sessionState.substring(dot + 1);
    var input = new TextEncoder().encode(clientId + " " + e.origin + " " + browserState() + " " + salt);
    window.crypto.subtle.digest("SHA-256", input).then(function (d) {
      e.source.postMessage(hex(d) + "." + salt === sessionState ? "unchanged" : "changed", e.origin);
    }, function () {
      e.source.postMessage("error", e.origin);
    });
  });
})();"#;

#[derive(Template)]
#[template(path = "check_session.html")]
struct Page {
    cookie_name: String,
    script: &'static str,
}

/// `GET /check_session`: framable only by the origins clients registered, as
/// web origins or through their http(s) redirect URIs (where `session_state`
/// of a code response is bound).
pub async fn page(State(state): State<AppState>) -> Response {
    let ttl = state.config.database.client_cache_secs as i64;
    let origins = match state.origins.get(&state.db, state.clock.now(), ttl).await {
        Ok(o) => o,
        Err(e) => return Failure::internal(e).render(&state.issuer, &state.brand),
    };
    let mut ancestors: Vec<&str> = origins.rp.iter().map(String::as_str).collect();
    ancestors.sort_unstable();
    let page = Page { cookie_name: crate::session::browser_state_cookie_name(&state), script: SCRIPT };
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => return Failure::internal(e).render(&state.issuer, &state.brand),
    };
    let mut resp = (StatusCode::OK, Html(body)).into_response();
    let csp = format!(
        "default-src 'none'; script-src '{}'; frame-ancestors {}; base-uri 'none'",
        crate::http::csp_hash(SCRIPT),
        page::sources(&ancestors)
    );
    page::set_csp(&mut resp, &csp);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(mode: ResponseMode, uri: &str, origin: Option<&str>) -> Target {
        Target {
            redirect_uri: uri.into(),
            redirect_uri_sent: true,
            mode,
            state: None,
            web_origin: origin.map(str::to_string),
            frame_ancestors: vec![],
        }
    }

    #[test]
    fn session_state_binds_client_origin_and_browser_state() {
        let t = target(ResponseMode::Query, "https://app.example.com/cb?x=1", None);
        let ss = session_state("app", &t, "h1").unwrap();
        let (hash, salt) = ss.split_once('.').unwrap();
        let expect = |origin: &str, bs: &str| random::sha256_hex(&format!("app {origin} {bs} {salt}"));
        assert_eq!(hash, expect("https://app.example.com", &browser_state("h1")));
        assert_ne!(hash, expect("https://evil.example.com", &browser_state("h1")));
        assert_ne!(hash, expect("https://app.example.com", &browser_state("h2")));
        assert_ne!(hash, expect("https://app.example.com", ""));
        let wm = target(ResponseMode::WebMessage, "https://app.example.com/cb", Some("https://spa.example.com"));
        let ss = session_state("app", &wm, "h1").unwrap();
        let (hash, salt) = ss.split_once('.').unwrap();
        assert_eq!(hash, random::sha256_hex(&format!("app https://spa.example.com {} {salt}", browser_state("h1"))));
        assert!(session_state("app", &target(ResponseMode::Query, "com.example.app:/cb", None), "h1").is_none());
    }
}
