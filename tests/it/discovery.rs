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
    assert_eq!(doc["jwks_uri"], format!("{}/jwks", app.base_url));
    assert_eq!(doc["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256", "ES256", "EdDSA"]));
    // Every advertised URL answers.
    let jwks_uri = doc["jwks_uri"].as_str().unwrap();
    assert_eq!(app.http.get(jwks_uri).send().await.unwrap().status(), 200);
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
