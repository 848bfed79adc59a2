//! RP-initiated logout: id_token_hint, confirmation, post_logout_redirect_uri,
//! and what a logout revokes.

use serde_json::Value;

use crate::authorize::{CB, VERIFIER, auth, setup};
use crate::backend_tests;
use crate::support::TestApp;
use crate::support::TestDb;
use crate::support::browser::{Browser, hidden, location, params};

const AFTER: &str = "https://app.example.com/bye";

pub async fn tokens(app: &TestApp, b: &Browser, scope: &str) -> Value {
    let url = auth("spa", "").replace("scope=openid%20email", &format!("scope={scope}"));
    let r = b.get(&url).await;
    let back = if location(&r).contains("/login") {
        b.authorize_with_login(&url, "alice@example.com", "correct horse battery").await
    } else {
        url::Url::parse(&location(&r)).unwrap()
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", &params(&back)["code"]),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ];
    reqwest::Client::new()
        .post(format!("{}/token", app.base_url))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn refresh_ok(app: &TestApp, rt: &str) -> bool {
    let form = [("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt)];
    reqwest::Client::new().post(format!("{}/token", app.base_url)).form(&form).send().await.unwrap().status() == 200
}

backend_tests!(
    logout_with_hint_redirects_and_revokes,
    logout_without_hint_asks_first,
    logout_refuses_unregistered_redirect,
    backchannel_logout_delivered_with_retry,
    password_change_and_disable_end_sessions,
);

async fn backchannel_logout_delivered_with_retry(db: TestDb) {
    // A relying party's back-channel endpoint that fails once, then accepts.
    let (bc, got) = logout_receiver(1).await;
    let app = with_post_logout_uri(&db).await;
    let mut c = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    c.backchannel_logout_uri = Some(bc);
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
    let b = Browser::new(&app.base_url);
    let t = tokens(&app, &b, "openid%20email").await;
    let id_token = t["id_token"].as_str().unwrap();
    let sid = crate::flow::decode_payload(id_token)["sid"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let r = b.get(&format!("/logout?id_token_hint={id_token}")).await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "logout does not wait for the RP");
    for _ in 0..100 {
        if got.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let tokens_seen = got.lock().unwrap().clone();
    assert_eq!(tokens_seen.len(), 2, "one failure, one retry");
    let lt = &tokens_seen[1];
    let header = jsonwebtoken::decode_header(lt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(app.get_json("/jwks").await).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&["spa"]);
    v.set_issuer(&[app.state.issuer.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(lt, &key, &v).unwrap().claims;
    assert_eq!(claims["sid"], sid);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].is_string() && claims["iat"].is_i64() && claims["exp"].is_i64());
}

async fn with_post_logout_uri(db: &TestDb) -> TestApp {
    let app = setup(db).await;
    let mut c = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    c.post_logout_redirect_uris = vec![AFTER.into()];
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
    app
}

async fn logout_with_hint_redirects_and_revokes(db: TestDb) {
    let app = with_post_logout_uri(&db).await;
    let b = Browser::new(&app.base_url);
    let session_tokens = tokens(&app, &b, "openid%20email").await;
    let offline = tokens(&app, &b, "openid%20offline_access").await;
    let id_token = session_tokens["id_token"].as_str().unwrap();
    let url = format!(
        "/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye%26now",
        url::form_urlencoded::byte_serialize(AFTER.as_bytes()).collect::<String>()
    );
    let r = b.get(&url).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), format!("{AFTER}?state=bye%26now"));
    let cleared = r.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("sesame_session=;"));
    assert!(cleared, "cookie removed");
    // The session is gone server-side: a silent request now needs a login.
    let r = b.get(&auth("spa", "&prompt=none")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "login_required");
    // Session-bound refresh tokens die with it; offline_access ones survive.
    assert!(!refresh_ok(&app, session_tokens["refresh_token"].as_str().unwrap()).await);
    assert!(refresh_ok(&app, offline["refresh_token"].as_str().unwrap()).await);
    // Its access tokens stop at userinfo too.
    let ui = reqwest::Client::new()
        .get(format!("{}/userinfo", app.base_url))
        .bearer_auth(session_tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 401);
}

async fn logout_without_hint_asks_first(db: TestDb) {
    let app = with_post_logout_uri(&db).await;
    let b = Browser::new(&app.base_url);
    tokens(&app, &b, "openid%20email").await;
    let url = format!(
        "/logout?client_id=spa&post_logout_redirect_uri={}&state=s1",
        url::form_urlencoded::byte_serialize(AFTER.as_bytes()).collect::<String>()
    );
    let page = b.get(&url).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign out?") && html.contains("App spa"));
    // A forged POST without the CSRF token changes nothing.
    let r = b.post_form("/logout", &[("confirm", "yes"), ("client_id", "spa")]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Sign out?"));
    let r = b.get(&auth("spa", "&prompt=none")).await;
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"), "still signed in");
    // Confirming ends the session and goes back to the client.
    let form = [
        ("csrf", hidden(&html, "csrf")),
        ("confirm", "yes".into()),
        ("client_id", "spa".into()),
        ("post_logout_redirect_uri", AFTER.into()),
        ("state", "s1".into()),
    ];
    let r = b.http.post(format!("{}/logout", app.base_url)).form(&form).send().await.unwrap();
    assert_eq!(location(&r), format!("{AFTER}?state=s1"));
    let r = b.get(&auth("spa", "&prompt=none")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "login_required");
    // Logging out again, or without any session, shows the signed-out page.
    let r = b.get("/logout").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("You are signed out"));
}

async fn logout_refuses_unregistered_redirect(db: TestDb) {
    let app = with_post_logout_uri(&db).await;
    let b = Browser::new(&app.base_url);
    let t = tokens(&app, &b, "openid%20email").await;
    let id_token = t["id_token"].as_str().unwrap();
    for url in [
        format!("/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"),
        "/logout?post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2Fbye".to_string(),
        "/logout?id_token_hint=not-a-token".to_string(),
        format!("/logout?id_token_hint={id_token}&client_id=store"),
    ] {
        let r = b.get(&url).await;
        assert_eq!(r.status(), 400, "{url}");
        assert!(r.headers().get("location").is_none());
    }
    let r = b.get(&auth("spa", "&prompt=none")).await;
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"), "nothing was ended");
}

/// A relying party's back-channel endpoint that records every logout token and
/// answers 500 to the first `fail_first` of them.
async fn logout_receiver(fail_first: usize) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = got.clone();
    let rp = axum::Router::new().route(
        "/bc",
        axum::routing::post(move |axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| {
            let seen = seen.clone();
            async move {
                let mut v = seen.lock().unwrap();
                v.push(f.get("logout_token").cloned().unwrap_or_default());
                if v.len() <= fail_first {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, rp).await.unwrap() });
    (format!("http://{addr}/bc"), got)
}

/// `sesame user set-password` and `sesame user disable` end the user's
/// sessions like a logout: back-channel logout at once, front-channel on the
/// browser's next visit, session-bound refresh tokens revoked (offline ones
/// too with --revoke-all).
async fn password_change_and_disable_end_sessions(db: TestDb) {
    let (bc, got) = logout_receiver(0).await;
    let app = with_post_logout_uri(&db).await;
    let mut c = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    c.backchannel_logout_uri = Some(bc);
    c.frontchannel_logout_uri = Some("https://app.example.com/fc".into());
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
    let b = Browser::new(&app.base_url);
    let session_tokens = tokens(&app, &b, "openid%20email").await;
    let offline = tokens(&app, &b, "openid%20offline_access").await;
    let sid =
        crate::flow::decode_payload(session_tokens["id_token"].as_str().unwrap())["sid"].as_str().unwrap().to_string();
    let env = [("SESAME_ISSUER", app.base_url.as_str())];

    let out = db.sesame_with(
        &["user", "set-password", "alice@example.com", "--password-stdin", "--json"],
        &env,
        Some("another long password\n"),
    );
    assert_eq!(crate::support::stdout_json(&out)["sessions_ended"], 1);
    // Back-channel: delivered before the command returned.
    let seen = got.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one logout token");
    let claims = crate::flow::decode_payload(&seen[0]);
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["iss"], app.state.issuer.as_str());
    // The session is gone; its refresh tokens with it; offline_access survives.
    let r = b.get(&auth("spa", "&prompt=none")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "login_required");
    assert!(!refresh_ok(&app, session_tokens["refresh_token"].as_str().unwrap()).await);
    assert!(refresh_ok(&app, offline["refresh_token"].as_str().unwrap()).await);
    // Front-channel: the browser's next visit to the login box loads the iframes first.
    let r = b.follow(b.get(&auth("spa", "")).await).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("https://app.example.com/fc?iss="), "{html}");
    assert!(html.contains(&format!("sid={sid}")), "{html}");
    assert!(html.contains("data-next=\"/login?req="), "continues to the login box");
    let r = b.follow(b.get(&auth("spa", "")).await).await;
    assert!(!r.text().await.unwrap().contains("/fc?iss="), "shown once");

    // Disable with --revoke-all: offline_access tokens go too.
    let b = Browser::new(&app.base_url);
    let url = auth("spa", "");
    b.authorize_with_login(&url, "alice@example.com", "another long password").await;
    let offline = tokens(&app, &b, "openid%20offline_access").await;
    let out = db.sesame_with(&["user", "disable", "alice@example.com", "--revoke-all", "--json"], &env, None);
    let v = crate::support::stdout_json(&out);
    assert_eq!((v["disabled"].as_bool(), v["sessions_ended"].as_i64()), (Some(true), Some(1)));
    assert_eq!(got.lock().unwrap().len(), 2);
    assert!(!refresh_ok(&app, offline["refresh_token"].as_str().unwrap()).await);
}
