//! Front-channel logout (OpenID Connect Front-Channel Logout 1.0) and the
//! signed-out page that carries it: every client that used an ended session
//! and registered a `frontchannel_logout_uri` is loaded in a hidden iframe
//! with `iss` and `sid`. Shared by RP-initiated logout and by the login box,
//! which shows it for a session that was ended without its browser.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;

use crate::http::page::{self, Brand};
use crate::oidc::response;
use crate::session;
use crate::state::AppState;
use crate::storage::sessions;

#[derive(Template)]
#[template(path = "logged_out.html")]
struct LoggedOutPage {
    brand: Brand,
    /// Where to continue once the front-channel iframes have loaded.
    next: Option<String>,
    frames: Vec<String>,
    script: &'static str,
}

/// Continues to `data-next` once every front-channel iframe has loaded, or
/// after 3 s, so one slow application cannot strand the user.
pub const FRONTCHANNEL_SCRIPT: &str = r#"(function () {
  var box = document.getElementById("frontchannel");
  var next = box && box.getAttribute("data-next");
  if (!next) return;
  var frames = box.getElementsByTagName("iframe"), left = frames.length, done = false;
  function go() { if (!done) { done = true; window.location.replace(next); } }
  for (var i = 0; i < frames.length; i++) {
    frames[i].addEventListener("load", function () { if (--left <= 0) go(); });
  }
  setTimeout(go, 3000);
})();"#;

/// The front-channel iframes of a session that was ended without this browser
/// (password change, disabled user), if the browser still presents its
/// cookie; handed out once.
pub async fn ended_elsewhere(state: &AppState, jar: &CookieJar) -> Option<Vec<String>> {
    let hash = session::cookie_hash(state, jar)?;
    let (sid, clients) = sessions::take_ended(&state.db, &hash).await.ok().flatten()?;
    Some(frames(state, &sid, &clients).await)
}

/// Front-channel logout (OIDC Front-Channel Logout 1.0): each client that used
/// the session and registered a `frontchannel_logout_uri` gets it loaded with
/// `iss` and `sid`.
pub async fn frames(state: &AppState, sid: &str, client_ids: &[String]) -> Vec<String> {
    let mut frames = Vec::new();
    for id in client_ids {
        if let Ok(Some(c)) = state.client(id).await
            && let Some(uri) = &c.frontchannel_logout_uri
        {
            frames.push(response::with_query(uri, &[("iss", state.issuer.as_str().to_string()), ("sid", sid.into())]));
        }
    }
    frames
}

/// The signed-out page; with front-channel iframes its CSP allows exactly
/// their origins as frames and its one script by hash.
pub fn logged_out_page(state: &AppState, next: Option<String>, frames: Vec<String>) -> Response {
    let sources: Vec<String> = frames
        .iter()
        .filter_map(|f| url::Url::parse(f).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect();
    let with_frames = !frames.is_empty();
    let mut resp = page::render(
        StatusCode::OK,
        &LoggedOutPage { brand: state.brand.clone(), next, frames, script: FRONTCHANNEL_SCRIPT },
    );
    if with_frames {
        let csp = format!(
            "default-src 'none'; style-src 'self'; img-src 'self' https: data:; script-src '{}'; frame-src {}; \
             frame-ancestors 'none'; base-uri 'none'",
            crate::http::csp_hash(FRONTCHANNEL_SCRIPT),
            page::sources(&sources)
        );
        page::set_csp(&mut resp, &csp);
    }
    resp
}
