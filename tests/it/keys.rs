//! Signing keys: publication, verification, rotation schedule, persistence,
//! sealing at rest, and agreement between replicas.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;
use sesame::config::SigningAlg;
use sesame::crypto::seal::MasterKey;

use crate::backend_tests;
use crate::support::{MASTER_KEY, TestApp, TestDb, stdout_json};

backend_tests!(
    jwks_publishes_one_key_per_alg,
    signatures_verify_against_published_jwks,
    rotation_publishes_first_and_retires_after_expiry,
    restart_keeps_keys,
    private_keys_sealed_at_rest,
    replicas_share_keys,
    a_retired_key_stays_for_the_longest_api_lifetime,
);

async fn jwks(app: &TestApp) -> JwkSet {
    serde_json::from_value(app.get_json("/jwks").await).unwrap()
}

fn kids(set: &JwkSet) -> Vec<String> {
    let mut v: Vec<String> = set.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    v.sort();
    v
}

async fn jwks_publishes_one_key_per_alg(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let resp = app.http.get(app.url("/jwks")).send().await.unwrap();
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let raw: serde_json::Value = resp.json().await.unwrap();
    let keys = raw["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].as_str().is_some_and(|s| s.len() == 43));
        // Public keys only.
        assert!(k.get("d").is_none() && k.get("p").is_none());
    }
    let rsa = keys.iter().find(|k| k["alg"] == "RS256").unwrap();
    assert!(rsa["n"].as_str().unwrap().len() >= 342, "RSA modulus at least 2048 bits");
    // The Auth0-style alias serves the same set.
    assert_eq!(app.get_json("/.well-known/jwks.json").await, raw);
}

async fn signatures_verify_against_published_jwks(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let set = jwks(&app).await;
    let now = app.state.clock.now();
    for (alg, jalg) in [
        (SigningAlg::RS256, Algorithm::RS256),
        (SigningAlg::ES256, Algorithm::ES256),
        (SigningAlg::EdDSA, Algorithm::EdDSA),
    ] {
        let claims = json!({"iss": app.base_url, "sub": "u1", "aud": "c1", "exp": now + 60, "iat": now});
        let token = app.state.keys.snapshot().sign(alg, "JWT", &claims, now).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        let jwk: &Jwk = set.find(header.kid.as_deref().unwrap()).expect("signing kid is published");
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut v = Validation::new(jalg);
        v.set_audience(&["c1"]);
        v.set_issuer(&[&app.base_url]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).unwrap();
        assert_eq!(data.claims["sub"], "u1");
        // A flipped signature byte fails.
        let mut bad = token.clone().into_bytes();
        let i = bad.len() - 5;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        assert!(jsonwebtoken::decode::<serde_json::Value>(std::str::from_utf8(&bad).unwrap(), &key, &v).is_err());
        // The alg allow-list holds: the same token is refused under another algorithm.
        let wrong = if jalg == Algorithm::RS256 { Algorithm::ES256 } else { Algorithm::RS256 };
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &key, &Validation::new(wrong)).is_err());
    }
}

async fn rotation_publishes_first_and_retires_after_expiry(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.keys.reload_interval_secs = 1).await;
    let clock = app.state.clock.clone();
    let before = jwks(&app).await;
    let old_kid = signing_kid(&app, SigningAlg::EdDSA);

    // Rotate from the CLI, as an operator would, against the same database.
    let out = db.sesame(&["keys", "rotate", "--alg", "EdDSA", "--json"]);
    let made = stdout_json(&out);
    let new_kid = made[0]["kid"].as_str().unwrap().to_string();
    assert_eq!(made[0]["status"], "pending");
    let lead = made[0]["activates_at"].as_i64().unwrap() - made[0]["created_at"].as_i64().unwrap();
    assert_eq!(lead, 330, "jwks_cache_secs + reload_interval_secs by default");

    // The server picks it up by itself: published at once, not yet signing.
    wait_for(|| async { kids(&jwks(&app).await).contains(&new_kid) }).await;
    assert_eq!(jwks(&app).await.keys.len(), before.keys.len() + 1);
    assert_eq!(signing_kid(&app, SigningAlg::EdDSA), old_kid);

    // After the lead time the new key signs; the old one stays published.
    clock.advance(lead);
    assert_eq!(signing_kid(&app, SigningAlg::EdDSA), new_kid);
    assert!(kids(&jwks(&app).await).contains(&old_kid));
    let listed = stdout_json(&db.sesame(&["keys", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 4);

    // Once every token the old key signed has expired (+ leeway), it drops out.
    // (Seconds of real time pass during the test, hence the margins.)
    clock.advance(3600 + 45);
    assert!(kids(&jwks(&app).await).contains(&old_kid));
    clock.advance(16);
    let after = kids(&jwks(&app).await);
    assert!(!after.contains(&old_kid));
    assert!(after.contains(&new_kid));
    assert_eq!(after.len(), 3);
}

async fn a_retired_key_stays_for_the_longest_api_lifetime(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.keys.reload_interval_secs = 1).await;
    let clock = app.state.clock.clone();
    let api = ["api", "add", "--identifier", "https://api.example.com", "--name", "API", "--token-ttl", "7200"];
    assert!(db.sesame(&api).status.success());
    let old_kid = signing_kid(&app, SigningAlg::EdDSA);
    let made = stdout_json(&db.sesame(&["keys", "rotate", "--alg", "EdDSA", "--json"]));
    let new_kid = made[0]["kid"].as_str().unwrap().to_string();
    wait_for(|| async { kids(&jwks(&app).await).contains(&new_kid) }).await;
    clock.advance(made[0]["activates_at"].as_i64().unwrap() - made[0]["created_at"].as_i64().unwrap());
    assert_eq!(signing_kid(&app, SigningAlg::EdDSA), new_kid);
    // Past the configured lifetimes (an hour) the old key is still published:
    // tokens for the API live two hours.
    clock.advance(3600 + 120);
    assert!(kids(&jwks(&app).await).contains(&old_kid));
    clock.advance(3600);
    assert!(!kids(&jwks(&app).await).contains(&old_kid));
}

fn signing_kid(app: &TestApp, alg: SigningAlg) -> String {
    let now = app.state.clock.now();
    app.state.keys.snapshot().signing_key(alg, now).unwrap().kid.clone()
}

async fn wait_for<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("condition not met within 10 s");
}

async fn restart_keeps_keys(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let first = kids(&jwks(&app).await);
    app.stop().await;
    let app = TestApp::spawn(&db, |_| {}).await;
    assert_eq!(kids(&jwks(&app).await), first);
}

async fn private_keys_sealed_at_rest(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let rows = sesame::storage::keys::list(&app.state.db).await.unwrap();
    assert_eq!(rows.len(), 3);
    let master = MasterKey::new(&sesame::config::decode_master_key(MASTER_KEY).unwrap());
    for row in &rows {
        let der = master.open(&row.private_key_sealed, row.kid.as_bytes()).expect("opens with the master key");
        assert!(der.len() >= 48);
        assert!(
            !row.private_key_sealed.windows(32).any(|w| der.windows(32).any(|d| d == w)),
            "no plaintext key bytes stored"
        );
        assert!(!row.public_jwk.contains("\"d\""));
    }
    app.stop().await;
    // A different master key cannot open them, and the server says so instead of starting.
    let other = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let err = TestApp::try_spawn(&db, |c| c.master_key = sesame::config::Secret::new(other)).await.err().unwrap();
    assert!(format!("{err:#}").contains("master key"), "{err:#}");
}

async fn replicas_share_keys(db: TestDb) {
    // Two replicas starting at once on an empty Postgres database must agree on one
    // key per algorithm. (SQLite is single-node: start them one after the other.)
    let (a, b) = if db.backend == crate::support::Backend::Postgres {
        tokio::join!(TestApp::spawn(&db, |_| {}), TestApp::spawn(&db, |_| {}))
    } else {
        let a = TestApp::spawn(&db, |_| {}).await;
        (a, TestApp::spawn(&db, |_| {}).await)
    };
    assert_eq!(sesame::storage::keys::list(&a.state.db).await.unwrap().len(), 3);
    assert_eq!(kids(&jwks(&a).await), kids(&jwks(&b).await));
    assert_eq!(signing_kid(&a, SigningAlg::RS256), signing_kid(&b, SigningAlg::RS256));
}
