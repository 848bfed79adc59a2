//! Discovery, JWKS location and issuer handling.

use crate::backend_tests;
use crate::support::{TestApp, TestDb};

backend_tests!(discovery_document, issuer_trailing_slash_kept, issuer_path_prefix);

async fn discovery_document(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let resp = app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert!(resp.headers().contains_key("x-request-id"));
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(doc["issuer"], app.base_url);
    // The issuer's own address, opened by hand, says what it is.
    let home = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(home.text().await.unwrap().contains("href=\"/account\""));
    assert_eq!(doc["jwks_uri"], format!("{}/jwks", app.base_url));
    assert_eq!(doc["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256", "ES256", "EdDSA"]));
    // Every advertised URL answers (not 404/405), and the features it lists are the ones built.
    let jwks_uri = doc["jwks_uri"].as_str().unwrap();
    assert_eq!(app.http.get(jwks_uri).send().await.unwrap().status(), 200);
    for (key, method) in [
        ("authorization_endpoint", "GET"),
        ("token_endpoint", "POST"),
        ("userinfo_endpoint", "GET"),
        ("revocation_endpoint", "POST"),
        ("introspection_endpoint", "POST"),
        ("end_session_endpoint", "GET"),
        ("check_session_iframe", "GET"),
    ] {
        let url = doc[key].as_str().unwrap_or_else(|| panic!("{key} advertised"));
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let status = app.http.request(m, url).send().await.unwrap().status().as_u16();
        assert!(![404, 405].contains(&status) && status < 500, "{key} {url} -> {status}");
    }
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code", "id_token", "id_token token"]));
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    for flag in [
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ] {
        assert_eq!(doc[flag], true, "{flag}");
    }
}

backend_tests!(bad_input_is_never_a_server_error);

/// Malformed or missing input anywhere gets a 4xx (or an OAuth error), never a 5xx.
async fn bad_input_is_never_a_server_error(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let long = "x".repeat(100_000);
    let gets = [
        "/authorize".to_string(),
        "/authorize?client_id=%FF%FE".to_string(),
        format!("/authorize?client_id={}", "x".repeat(8_000)),
        "/authorize/resume".to_string(),
        "/authorize/resume?req=nope".to_string(),
        // (`/login` alone goes to the account page: authorize::login_box_pages_and_errors.)
        "/login?req=nope".to_string(),
        "/signup?req=nope".to_string(),
        "/consent".to_string(),
        "/logout?id_token_hint=a.b.c".to_string(),
        "/userinfo".to_string(),
    ];
    for path in &gets {
        let s = app.http.get(app.url(path)).send().await.unwrap().status();
        assert!(s.is_client_error(), "GET {} -> {s}", &path[..path.len().min(60)]);
    }
    let bodies: [(&str, &str, &str); 7] = [
        ("/token", "application/x-www-form-urlencoded", ""),
        ("/token", "application/json", "{\"grant_type\":\"client_credentials\"}"),
        ("/token", "application/x-www-form-urlencoded", "grant_type=authorization_code&client_id=x&client_id=y"),
        ("/revoke", "application/x-www-form-urlencoded", "token="),
        ("/introspect", "application/x-www-form-urlencoded", "%%%"),
        ("/login", "application/x-www-form-urlencoded", "csrf=x&req=y"),
        ("/consent", "application/x-www-form-urlencoded", "decision=allow"),
    ];
    for (path, ct, body) in bodies {
        let r = app.http.post(app.url(path)).header("content-type", ct).body(body).send().await.unwrap();
        assert!(r.status().is_client_error(), "POST {path} {body} -> {}", r.status());
    }
    let r = app.http.post(app.url("/token")).basic_auth("nobody", Some("x")).body(long.clone()).send().await.unwrap();
    assert!(r.status().is_client_error());
}

async fn issuer_trailing_slash_kept(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.issuer = "{base}/".into()).await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], format!("{}/", app.base_url));
    assert_eq!(doc["jwks_uri"], format!("{}/jwks", app.base_url));
    assert!(!doc["jwks_uri"].as_str().unwrap().contains("//jwks"));
}

async fn issuer_path_prefix(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.issuer = "{base}/tenants/acme".into()).await;
    let doc = app.get_json("/tenants/acme/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], format!("{}/tenants/acme", app.base_url));
    assert_eq!(doc["jwks_uri"], format!("{}/tenants/acme/jwks", app.base_url));
    app.get_json("/tenants/acme/jwks").await;
    app.get_json("/tenants/acme/.well-known/jwks.json").await;
    // Nothing answers outside the prefix except the health probes.
    let root = app.http.get(app.url("/jwks")).send().await.unwrap();
    assert_eq!(root.status(), 404);
    app.get_json("/healthz").await;
    app.get_json("/readyz").await;
}
