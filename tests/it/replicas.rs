//! Two replicas on one Postgres database act as one: a real browser (one
//! cookie jar, one issuer, as behind a load balancer) and a real client
//! alternate between them.

use reqwest::StatusCode;
use serde_json::Value;

use crate::authorize::{CB, VERIFIER, auth};
use crate::support::browser::{Browser, location, params};
use crate::support::{Backend, TestApp, TestDb, add_client, add_user, stdout_json};

const PW: &str = "correct horse battery";
const AFTER: &str = "https://app.example.com/bye";

async fn post(base: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = reqwest::Client::new().post(format!("{base}/token")).form(form).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn redeem(base: &str, code: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ];
    post(base, &form).await
}

async fn refresh(base: &str, rt: &str) -> (StatusCode, Value) {
    post(base, &[("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt)]).await
}

/// The browser's silent request at `base`: the code, or the OAuth error.
async fn silent(b: &mut Browser, base: &str) -> Result<String, String> {
    b.base = base.to_string();
    let r = b.get(&auth("spa", "&prompt=none")).await;
    let p = params(&url::Url::parse(&location(&r)).unwrap());
    p.get("code").cloned().ok_or_else(|| p.get("error").cloned().unwrap_or_default())
}

async fn kids(base: &str) -> Vec<String> {
    let v: Value = reqwest::get(format!("{base}/jwks")).await.unwrap().json().await.unwrap();
    v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn two_replicas_act_as_one() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    let a = TestApp::spawn(&db, |c| c.keys.reload_interval_secs = 1).await;
    // B answers for the same issuer, as a replica behind the same address.
    let issuer = a.base_url.clone();
    let b = TestApp::spawn(&db, |c| {
        c.issuer = issuer;
        c.keys.reload_interval_secs = 1;
    })
    .await;
    add_client(&a, "spa", true, false, CB, None, &["authorization_code", "refresh_token"]).await;
    let mut c = sesame::storage::clients::find(&a.state.db, "spa").await.unwrap().unwrap();
    c.first_party = true;
    c.post_logout_redirect_uris = vec![AFTER.into()];
    sesame::storage::clients::update(&a.state.db, &c).await.unwrap();
    add_user(&a, "alice@example.com", PW).await;

    // A login on A is a session on B.
    let mut browser = Browser::new(&a.base_url);
    let back = browser.authorize_with_login(&auth("spa", ""), "alice@example.com", PW).await;
    let code_a = params(&back)["code"].clone();
    let code_b = silent(&mut browser, &b.base_url).await.expect("B knows A's session");

    // A code issued on A is redeemed on B, once: the second try fails on either.
    let (st, tokens) = redeem(&b.base_url, &code_a).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    for base in [&a.base_url, &b.base_url] {
        let (st, e) = redeem(base, &code_a).await;
        assert_eq!((st, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    }

    // The replayed code took what it had issued with it, on both.
    let (st, _) = refresh(&a.base_url, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // A refresh rotated on A and replayed on B is caught, and the family dies.
    let (st, tokens) = redeem(&a.base_url, &code_b).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    let rt1 = tokens["refresh_token"].as_str().unwrap();
    let (st, rotated) = refresh(&a.base_url, rt1).await;
    assert_eq!(st, StatusCode::OK, "{rotated}");
    let (st, e) = refresh(&b.base_url, rt1).await;
    assert_eq!((st, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (st, _) = refresh(&a.base_url, rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "the replay on B revoked the family A rotated");

    // Logout on B ends the session on A at once.
    let code_c = silent(&mut browser, &a.base_url).await.expect("the session is still there");
    let (st, fresh) = redeem(&b.base_url, &code_c).await;
    assert_eq!(st, StatusCode::OK, "{fresh}");
    browser.base = b.base_url.clone();
    let hint = fresh["id_token"].as_str().unwrap();
    let after = url::form_urlencoded::byte_serialize(AFTER.as_bytes()).collect::<String>();
    let r = browser.get(&format!("/logout?id_token_hint={hint}&post_logout_redirect_uri={after}")).await;
    assert_eq!((r.status(), location(&r)), (StatusCode::FOUND, AFTER.to_string()));
    assert_eq!(silent(&mut browser, &a.base_url).await, Err("login_required".to_string()));
    let (st, _) = refresh(&a.base_url, fresh["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "the session's refresh token ended with it");

    // A key rotation made with the CLI is published by both within their reload interval.
    let before = kids(&a.base_url).await;
    let out = db.sesame_with(&["keys", "rotate", "--alg", "EdDSA"], &[("SESAME_ISSUER", &a.base_url)], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (on_a, on_b) = (kids(&a.base_url).await, kids(&b.base_url).await);
    assert_eq!(on_a, on_b, "both replicas publish the same keys");
    assert_eq!(on_a.len(), before.len() + 1, "the new key is published: {before:?} → {on_a:?}");

    // A client registered through B's management API signs users in at A.
    let args = ["--json", "client", "add", "--name", "admin", "--id", "admin", "--management-scope", "write:clients"];
    let out = db.sesame_with(&args, &[("SESAME_ISSUER", &a.base_url)], None);
    let secret = stdout_json(&out)["client_secret"].as_str().unwrap().to_string();
    let aud = format!("{}/api/v1", a.base_url);
    let form = [("grant_type", "client_credentials"), ("audience", aud.as_str())];
    let r = reqwest::Client::new().post(b.url("/token")).basic_auth("admin", Some(secret)).form(&form).send().await;
    let token: Value = r.unwrap().json().await.unwrap();
    let token = token["access_token"].as_str().unwrap_or_else(|| panic!("{token}"));
    let body = serde_json::json!({
        "client_id": "reports", "name": "Reports", "public": true, "first_party": true, "redirect_uris": [CB],
    });
    let r = reqwest::Client::new().post(b.url("/api/v1/clients")).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    browser.base = a.base_url.clone();
    let back = browser.authorize_with_login(&auth("reports", ""), "alice@example.com", PW).await;
    assert!(params(&back).contains_key("code"), "{back}");

    a.stop().await;
    b.stop().await;
}

/// N replicas must not give a guesser N times the attempts: the password
/// budgets are one, in the database. Before they were shared, each replica
/// allowed its own three a minute (six here).
#[tokio::test]
async fn password_attempt_budgets_are_shared_by_replicas() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    let limits = |c: &mut sesame::config::Config| {
        c.rate_limit.login_per_account_per_minute = 3;
        c.rate_limit.login_per_ip_per_minute = 1000;
    };
    let a = TestApp::spawn(&db, limits).await;
    let issuer = a.base_url.clone();
    let b = TestApp::spawn(&db, |c| {
        c.issuer = issuer;
        limits(c);
    })
    .await;
    add_client(&a, "spa", true, true, CB, None, &["authorization_code"]).await;
    add_user(&a, "alice@example.com", PW).await;
    let attempt = |base: String| async move {
        let b = Browser::new(&base);
        let html = b.follow(b.get(&auth("spa", "")).await).await.text().await.unwrap();
        b.submit_login(&html, "alice@example.com", "wrong password!").await.status()
    };
    let mut statuses = Vec::new();
    for i in 0..6 {
        let base = if i % 2 == 0 { a.base_url.clone() } else { b.base_url.clone() };
        statuses.push(attempt(base).await.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429], "three in all, whichever replica answers");
    a.stop().await;
    b.stop().await;
}

/// One authenticator-app code, sent to both replicas at once by two thieves
/// who both have the password: one sign-in gets it, never both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_code_is_accepted_once_across_replicas() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    let a = TestApp::spawn(&db, |c| c.mfa.policy = sesame::config::MfaPolicy::Required).await;
    let issuer = a.base_url.clone();
    let b = TestApp::spawn(&db, |c| {
        c.issuer = issuer;
        c.mfa.policy = sesame::config::MfaPolicy::Required;
    })
    .await;
    add_client(&a, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    let alice = add_user(&a, "alice@example.com", PW).await;
    let user = sesame::storage::users::find_by_id(&a.state.db, &alice).await.unwrap().unwrap();
    let f = a.state.factors();
    let e = f.start_totp("t", &user).await.unwrap();
    let now = a.state.clock.now();
    f.confirm_totp("t", &user, "Phone", &sesame::mfa::totp::code_at(&e.secret, now - 30).unwrap()).await.unwrap();
    let code = sesame::mfa::totp::code_at(&e.secret, now).unwrap();
    // Two browsers at the factor page, one on each replica.
    let mut pages = Vec::new();
    for base in [&a.base_url, &b.base_url] {
        let br = Browser::new(base);
        let page = br.follow(br.get(&auth("spa", "")).await).await;
        let html = page.text().await.unwrap();
        let page = br.follow(br.submit_login(&html, "alice@example.com", PW).await).await;
        assert!(page.url().path().ends_with("/login/factor"));
        let html = page.text().await.unwrap();
        pages.push((br, html));
    }
    let attempt = |(br, html): &(Browser, String)| {
        let form = [
            ("csrf", crate::support::browser::hidden(html, "csrf")),
            ("req", crate::support::browser::hidden(html, "req")),
            ("code", code.clone()),
        ];
        let req = br.http.post(format!("{}/login/factor", br.base)).form(&form);
        async move { req.send().await.unwrap().status() }
    };
    let (x, y) = tokio::join!(attempt(&pages[0]), attempt(&pages[1]));
    let statuses = [x, y];
    let accepted = statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count();
    assert_eq!(accepted, 1, "{statuses:?}");
    assert!(statuses.contains(&StatusCode::UNAUTHORIZED), "{statuses:?}");
}
