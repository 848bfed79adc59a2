//! Findings of the security review that are not about refresh tokens or
//! throttling: ID-token hints, bearer tokens in URLs, redirect_uri binding at
//! /token, request values in errors, the SQLite file's mode.

use serde_json::Value;

use crate::authorize::{CB, VERIFIER, auth, setup};
use crate::backend_tests;
use crate::logout::tokens;
use crate::support::browser::{Browser, location, params};
use crate::support::{Backend, TestDb};

backend_tests!(
    id_token_hint_must_be_an_id_token,
    userinfo_ignores_token_in_query,
    redirect_uri_required_at_token_when_sent,
    control_characters_never_reach_errors,
    sqlite_file_is_private,
    host_prefix_cookies_and_csrf_renewal,
);

/// An access token (which every API sees) as `id_token_hint` must not end the
/// session without confirmation.
async fn id_token_hint_must_be_an_id_token(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let t = tokens(&app, &b, "openid").await;
    let at = t["access_token"].as_str().unwrap();
    let r = b.get(&format!("/logout?id_token_hint={at}")).await;
    assert_eq!(r.status(), 400, "an access token is not an ID token");
    // Nor is a logout token (typ logout+jwt), though it carries sub and aud too.
    let spa = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    let sub = crate::flow::decode_payload(at)["sub"].as_str().unwrap().to_string();
    let lt = app.state.logouts.logout_token(&spa, "sid", &sub, app.state.clock.now()).unwrap();
    let r = b.get(&format!("/logout?id_token_hint={lt}")).await;
    assert_eq!(r.status(), 400, "a logout token is not an ID token");
    let r = b.get(&auth("spa", "&prompt=none")).await;
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"), "still signed in");
    // The real ID token still works.
    let r = b.get(&format!("/logout?id_token_hint={}", t["id_token"].as_str().unwrap())).await;
    assert_eq!(r.status(), 200);
    let r = b.get(&auth("spa", "&prompt=none")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "login_required");
}

/// OAuth 2.1: never a bearer token from the query string; the POST form body stays.
async fn userinfo_ignores_token_in_query(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let at = tokens(&app, &b, "openid%20email").await["access_token"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let r = http.get(app.url(&format!("/userinfo?access_token={at}"))).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request", "no token was presented: {v}");
    let r = http.post(app.url("/userinfo")).form(&[("access_token", at.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// RFC 6749 §4.1.3: redirect_uri is required at /token when /authorize had one.
async fn redirect_uri_required_at_token_when_sent(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let back = b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let code = params(&back)["code"].clone();
    let form =
        [("grant_type", "authorization_code"), ("client_id", "spa"), ("code", &code), ("code_verifier", VERIFIER)];
    let r = reqwest::Client::new().post(app.url("/token")).form(&form).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("redirect_uri"));
    // Without redirect_uri at /authorize (one registered URI), /token may omit it too.
    let url = auth("spa", "").replace(&format!("&redirect_uri={}", crate::authorize::urlencode(CB)), "");
    let r = b.get(&url).await;
    let code = params(&url::Url::parse(&location(&r)).unwrap())["code"].clone();
    let form =
        [("grant_type", "authorization_code"), ("client_id", "spa"), ("code", &code), ("code_verifier", VERIFIER)];
    let r = reqwest::Client::new().post(app.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Request values are echoed in descriptions (and so in logs) without control
/// characters: no forged log lines, no terminal escapes.
async fn control_characters_never_reach_errors(db: TestDb) {
    let app = setup(&db).await;
    let form = [("grant_type", "x\u{1b}[31m\nlevel=ERROR forged\r"), ("client_id", "spa")];
    let r = reqwest::Client::new().post(app.url("/token")).form(&form).send().await.unwrap();
    // Refused at the edge, before the grant is even read.
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    let d = v["error_description"].as_str().unwrap();
    assert!(!d.chars().any(char::is_control), "{d:?}");
    assert!(d.contains("`grant_type`") && !d.contains("forged"), "{d}");
}

async fn sqlite_file_is_private(db: TestDb) {
    if db.backend != Backend::Sqlite {
        return;
    }
    let app = setup(&db).await;
    use std::os::unix::fs::PermissionsExt;
    let path = db.dir.path().join("sesame.db");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "sesame.db");
    let wal = db.dir.path().join("sesame.db-wal");
    if wal.exists() {
        assert_eq!(std::fs::metadata(&wal).unwrap().permissions().mode() & 0o777, 0o600, "-wal");
    }
    drop(app);
}

/// The cookies a response sets: name -> (value, attributes).
fn set_cookies(r: &reqwest::Response) -> std::collections::HashMap<String, (String, String)> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=')?;
            Some((k.to_string(), (v.to_string(), attrs.to_string())))
        })
        .collect()
}

/// `__Host-` cookies where the cookie qualifies (Secure, host-only, Path=/),
/// the old name still read (and moved) after an upgrade, and a CSRF value
/// renewed at login. Cookies are carried by hand: the test issuer is plain
/// http, where a cookie store would not send Secure cookies.
async fn host_prefix_cookies_and_csrf_renewal(db: TestDb) {
    let app = crate::support::TestApp::spawn(&db, |c| c.session.cookie_secure = Some(true)).await;
    crate::support::add_client(&app, "spa", true, true, CB, None, &["authorization_code"]).await;
    crate::support::add_user(&app, "alice@example.com", "correct horse battery").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(app.url(&auth("spa", ""))).send().await.unwrap();
    let login_url = location(&r);
    let set = set_cookies(&r);
    let (c1, attrs) = set.get("__Host-sesame_session_csrf").expect("prefixed CSRF cookie").clone();
    assert!(attrs.contains("Secure") && attrs.contains("Path=/") && !attrs.contains("Domain"), "{attrs}");
    let html = http.get(app.url(&login_url)).header("cookie", format!("__Host-sesame_session_csrf={c1}")).send();
    let html = html.await.unwrap().text().await.unwrap();
    let req = crate::support::browser::hidden(&html, "req");
    let form =
        [("csrf", c1.as_str()), ("req", &req), ("email", "alice@example.com"), ("password", "correct horse battery")];
    let r = http
        .post(app.url("/login"))
        .header("cookie", format!("__Host-sesame_session_csrf={c1}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = set_cookies(&r);
    let session = set["__Host-sesame_session"].0.clone();
    let c2 = set.get("__Host-sesame_session_csrf").expect("CSRF renewed at login").0.clone();
    assert_ne!(c1, c2);
    // The pending request follows the renewed value.
    let cookie = format!("__Host-sesame_session={session}; __Host-sesame_session_csrf={c2}");
    let r = http.get(app.url(&location(&r))).header("cookie", &cookie).send().await.unwrap();
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"));
    let stale = format!("__Host-sesame_session={session}; __Host-sesame_session_csrf={c1}");
    let r = http.get(app.url(&format!("/consent?req={req}"))).header("cookie", &stale).send().await.unwrap();
    assert_ne!(r.status(), 200, "the pre-login CSRF value no longer opens the request");

    // A browser from before the upgrade still has `sesame_session`: still signed in, cookie moved.
    let r = http
        .get(app.url(&auth("spa", "&prompt=none")))
        .header("cookie", format!("sesame_session={session}"))
        .send()
        .await
        .unwrap();
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"), "legacy cookie read");
    let set = set_cookies(&r);
    assert_eq!(set["__Host-sesame_session"].0, session, "moved to the prefixed name");
    assert!(set["sesame_session"].0.is_empty(), "old name expired");
}
