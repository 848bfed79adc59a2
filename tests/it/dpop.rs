//! DPoP (RFC 9449) at /token, /userinfo and /introspect: tokens bound to the
//! client's key, a stolen copy refused, proofs checked and spent once, and
//! server nonces. Proofs are made the way a browser makes them (ES256, a
//! fresh `jti` each).

use serde_json::Value;

use crate::authorize::{CB, VERIFIER, auth, setup};
use crate::backend_tests;
use crate::support::browser::{Browser, params};
use crate::support::dpop::{DpopKey, claims};
use crate::support::{TestApp, TestDb, add_client};

backend_tests!(
    tokens_are_bound_to_the_proof_key,
    a_stolen_copy_is_refused_everywhere,
    proofs_are_checked_and_spent_once,
    nonces_and_clients_that_require_dpop,
);

async fn post_token(
    app: &TestApp,
    form: &[(&str, &str)],
    proof: Option<String>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = reqwest::Client::new().post(app.url("/token")).form(form);
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.headers().clone(), r.json().await.unwrap())
}

/// Signs in (once per browser) and returns a code for `extra` /authorize parameters.
async fn code(b: &Browser, extra: &str) -> String {
    let url = auth("spa", extra);
    let r = b.get(&url).await;
    let back = if crate::support::browser::location(&r).contains("/login") {
        b.authorize_with_login(&url, "alice@example.com", "correct horse battery").await
    } else {
        url::Url::parse(&crate::support::browser::location(&r)).unwrap()
    };
    params(&back)["code"].clone()
}

fn code_form(code: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", "spa".into()),
        ("code", code.into()),
        ("redirect_uri", CB.into()),
        ("code_verifier", VERIFIER.into()),
    ]
}

fn borrow<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    f.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn userinfo(app: &TestApp, scheme: &str, token: &str, proof: Option<String>) -> (u16, String, Value) {
    let mut r = reqwest::Client::new().get(app.url("/userinfo")).header("Authorization", format!("{scheme} {token}"));
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status().as_u16(), challenge, r.json().await.unwrap_or(Value::Null))
}

/// The code flow with `dpop_jkt` and a proof: `token_type: DPoP`, `cnf.jkt` in
/// the access token, the refresh token bound to the key (a public client),
/// userinfo with `Authorization: DPoP`, introspection showing `cnf`, and
/// discovery listing the algorithms.
async fn tokens_are_bound_to_the_proof_key(db: TestDb) {
    let app = setup(&db).await;
    let secret = add_client(&app, "gateway", false, true, CB, None, &["client_credentials"]).await.unwrap();
    let mut gw = sesame::storage::clients::find(&app.state.db, "gateway").await.unwrap().unwrap();
    gw.introspect_any = true;
    sesame::storage::clients::update(&app.state.db, &gw).await.unwrap();
    let disco = app.get_json("/.well-known/openid-configuration").await;
    assert!(disco["dpop_signing_alg_values_supported"].as_array().unwrap().iter().any(|a| a == "ES256"));
    assert!(
        !disco["dpop_signing_alg_values_supported"].as_array().unwrap().iter().any(|a| a == "HS256" || a == "none")
    );

    let key = DpopKey::new();
    let b = Browser::new(&app.base_url);
    let c = code(&b, &format!("&dpop_jkt={}", key.jkt())).await;
    let (s, _, t) =
        post_token(&app, &borrow(&code_form(&c)), Some(key.proof("POST", &app.url("/token"), None, None))).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let at = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&at)["cnf"]["jkt"], key.jkt());

    // Userinfo: the proof names the token (ath), the method and the URL.
    let (s, _, v) = userinfo(&app, "DPoP", &at, Some(key.proof("GET", &app.url("/userinfo"), Some(&at), None))).await;
    assert_eq!((s, v["email"].as_str()), (200, Some("alice@example.com")));

    // Introspection tells an API the token is DPoP-bound and to which key.
    let form = [("token", at.as_str())];
    let r = reqwest::Client::new().post(app.url("/introspect")).basic_auth("gateway", Some(&secret)).form(&form);
    let v: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!((v["active"].as_bool(), v["token_type"].as_str()), (Some(true), Some("DPoP")), "{v}");
    assert_eq!(v["cnf"]["jkt"], key.jkt());
    let rt = t["refresh_token"].as_str().unwrap();
    let form = [("token", rt)];
    let r = reqwest::Client::new().post(app.url("/introspect")).basic_auth("gateway", Some(&secret)).form(&form);
    let v: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(v["cnf"]["jkt"], key.jkt(), "a public client's refresh token is bound: {v}");

    // Refresh with the key: rotated, still DPoP.
    let form = [("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt)];
    let (s, _, t2) = post_token(&app, &form, Some(key.proof("POST", &app.url("/token"), None, None))).await;
    assert_eq!((s, t2["token_type"].as_str()), (200, Some("DPoP")), "{t2}");
    assert_eq!(claims(t2["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt());

    // A client credentials token is bound too (a confidential client's proof).
    let form = [("grant_type", "client_credentials")];
    let mut r = reqwest::Client::new().post(app.url("/token")).basic_auth("gateway", Some(&secret)).form(&form);
    let gw_key = DpopKey::new();
    r = r.header("DPoP", gw_key.proof("POST", &app.url("/token"), None, None));
    let v: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(v["token_type"], "DPoP", "{v}");
    assert_eq!(claims(v["access_token"].as_str().unwrap())["cnf"]["jkt"], gw_key.jkt());

    // Without a proof, nothing changes: Bearer tokens as before.
    let b2 = Browser::new(&app.base_url);
    let c = code(&b2, "").await;
    let (s, _, t) = post_token(&app, &borrow(&code_form(&c)), None).await;
    assert_eq!((s, t["token_type"].as_str()), (200, Some("Bearer")));
    assert!(claims(t["access_token"].as_str().unwrap()).get("cnf").is_none());
    // Its family is bound by the first refresh made with a proof.
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "spa"),
        ("refresh_token", t["refresh_token"].as_str().unwrap()),
    ];
    let (s, _, t) = post_token(&app, &form, Some(key.proof("POST", &app.url("/token"), None, None))).await;
    assert_eq!((s, t["token_type"].as_str()), (200, Some("DPoP")), "{t}");
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "spa"),
        ("refresh_token", t["refresh_token"].as_str().unwrap()),
    ];
    let (s, _, e) = post_token(&app, &form, None).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_dpop_proof")), "bound from then on");
    app.stop().await;
}

/// What someone who copied the tokens (not the key) gets: nothing. The code
/// bound by `dpop_jkt`, the refresh token, and the access token at userinfo
/// (as DPoP with another key, or as a plain bearer token) are all refused,
/// and the refused refresh spends nothing: the owner refreshes afterwards.
async fn a_stolen_copy_is_refused_everywhere(db: TestDb) {
    let app = setup(&db).await;
    let (key, thief) = (DpopKey::new(), DpopKey::new());
    let b = Browser::new(&app.base_url);
    let token_url = app.url("/token");

    let c = code(&b, &format!("&dpop_jkt={}", key.jkt())).await;
    let (s, _, e) = post_token(&app, &borrow(&code_form(&c)), Some(thief.proof("POST", &token_url, None, None))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_dpop_proof")), "a bound code needs its key");
    let c = code(&b, &format!("&dpop_jkt={}", key.jkt())).await;
    let (s, _, e) = post_token(&app, &borrow(&code_form(&c)), None).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_dpop_proof")), "and a proof at all");

    let c = code(&b, "").await;
    let (s, _, t) = post_token(&app, &borrow(&code_form(&c)), Some(key.proof("POST", &token_url, None, None))).await;
    assert_eq!(s, 200);
    let (at, rt) = (t["access_token"].as_str().unwrap(), t["refresh_token"].as_str().unwrap());
    let form = [("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt)];
    let (s, _, e) = post_token(&app, &form, None).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_dpop_proof")), "a stolen refresh token without the key");
    let (s, _, e) = post_token(&app, &form, Some(thief.proof("POST", &token_url, None, None))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_dpop_proof")), "with the thief's own key");
    let (s, _, t) = post_token(&app, &form, Some(key.proof("POST", &token_url, None, None))).await;
    assert_eq!(s, 200, "the owner's refresh still works: {t}");

    let (s, challenge, e) = userinfo(&app, "Bearer", at, None).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_token")), "a bound token is no bearer token");
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(challenge.contains("algs=\"ES256"), "{challenge}");
    let stolen = thief.proof("GET", &app.url("/userinfo"), Some(at), None);
    let (s, _, e) = userinfo(&app, "DPoP", at, Some(stolen)).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_token")), "another key's proof: {e}");
    let (s, _, e) = userinfo(&app, "DPoP", at, None).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_dpop_proof")));
    // A proof for another token (ath) is no proof for this one.
    let other = key.proof("GET", &app.url("/userinfo"), Some("another token"), None);
    let (s, _, e) = userinfo(&app, "DPoP", at, Some(other)).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_dpop_proof")));
    // The management API takes bearer tokens only: a bound one is refused there too.
    let r = reqwest::Client::new().get(app.url("/api/v1/users")).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    app.stop().await;
}

/// RFC 9449 §4.3: a replayed proof, a proof for another method or URL, an old
/// or future `iat`, a symmetric or missing signature, a private key in the
/// header, and two DPoP headers are each refused with `invalid_dpop_proof`.
async fn proofs_are_checked_and_spent_once(db: TestDb) {
    let app = setup(&db).await;
    let key = DpopKey::new();
    let b = Browser::new(&app.base_url);
    let token_url = app.url("/token");
    let now = app.state.clock.now();
    let claims_at = |htm: &str, htu: &str, iat: i64| serde_json::json!({"jti": sesame::crypto::random::token(8), "htm": htm, "htu": htu, "iat": iat});
    let mut jwk_with_d = key.jwk.clone();
    jwk_with_d["d"] = "AAAA".into();
    let bad = [
        ("GET for POST", key.proof_with(claims_at("GET", &token_url, now), None, None)),
        ("another URL", key.proof_with(claims_at("POST", &app.url("/oauth/token"), now), None, None)),
        ("another host", key.proof_with(claims_at("POST", "https://evil.example/token", now), None, None)),
        ("an old iat", key.proof_with(claims_at("POST", &token_url, now - 3600), None, None)),
        ("a future iat", key.proof_with(claims_at("POST", &token_url, now + 3600), None, None)),
        (
            "typ JWT",
            key.sign(
                &serde_json::json!({"typ": "JWT", "alg": "ES256", "jwk": key.jwk}),
                &claims_at("POST", &token_url, now),
            ),
        ),
        (
            "a private key",
            key.sign(
                &serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk_with_d}),
                &claims_at("POST", &token_url, now),
            ),
        ),
        ("alg none", {
            let p = key.proof("POST", &token_url, None, None);
            let mut parts: Vec<String> = p.split('.').map(str::to_string).collect();
            use base64::Engine;
            parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk}).to_string());
            parts[2] = String::new();
            parts.join(".")
        }),
        ("a signature by another key", {
            let p = key.proof("POST", &token_url, None, None);
            let q = DpopKey::new().proof("POST", &token_url, None, None);
            format!("{}.{}", p.rsplit_once('.').unwrap().0, q.rsplit_once('.').unwrap().1)
        }),
    ];
    for (what, proof) in bad {
        let c = code(&b, "").await;
        let (s, _, e) = post_token(&app, &borrow(&code_form(&c)), Some(proof)).await;
        assert_eq!((s, e["error"].as_str()), (400, Some("invalid_dpop_proof")), "{what}: {e}");
    }
    // Auth0's path is its own URL: a proof for /oauth/token works there.
    let c = code(&b, "").await;
    let proof = key.proof("POST", &app.url("/oauth/token"), None, None);
    let r = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .header("DPoP", proof.clone())
        .form(&borrow(&code_form(&c)));
    let t: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(t["token_type"], "DPoP", "{t}");
    // The same proof again (a replay), even for a fresh code: refused.
    let c = code(&b, "").await;
    let r = reqwest::Client::new().post(app.url("/oauth/token")).header("DPoP", proof).form(&borrow(&code_form(&c)));
    let e: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(e["error"], "invalid_dpop_proof", "{e}");
    assert!(e["error_description"].as_str().unwrap().contains("already used"));
    // Two proofs in one request.
    let c = code(&b, "").await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .header("DPoP", key.proof("POST", &token_url, None, None))
        .header("DPoP", key.proof("POST", &token_url, None, None))
        .form(&borrow(&code_form(&c)));
    let e: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(e["error"], "invalid_dpop_proof");
    // A malformed dpop_jkt goes back to the client as invalid_request.
    let r = b.get(&auth("spa", "&dpop_jkt=short")).await;
    let loc = crate::support::browser::location(&r);
    assert!(loc.starts_with(CB) && loc.contains("error=invalid_request"), "{loc}");
    app.stop().await;
}

/// `[dpop] require_nonce`: the first proof is answered `use_dpop_nonce` with
/// a `DPoP-Nonce`, the retry with it succeeds (and carries the next nonce);
/// the same at userinfo (401 with the nonce). A client registered with
/// `require_dpop` gets nothing without a proof.
async fn nonces_and_clients_that_require_dpop(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.dpop.require_nonce = true).await;
    add_client(&app, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    crate::support::add_user(&app, "alice@example.com", "correct horse battery").await;
    let out = db.sesame(&["client", "update", "spa", "--require-dpop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The running server reads clients through its cache: wait until it sees the change.
    for _ in 0..100 {
        if app.state.client("spa").await.unwrap().unwrap().require_dpop {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let key = DpopKey::new();
    let b = Browser::new(&app.base_url);
    let token_url = app.url("/token");
    let c = code(&b, "").await;
    let (s, _, e) = post_token(&app, &borrow(&code_form(&c)), None).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_request")), "require_dpop: {e}");

    let c = code(&b, "").await;
    let form = code_form(&c);
    let (s, h, e) = post_token(&app, &borrow(&form), Some(key.proof("POST", &token_url, None, None))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("use_dpop_nonce")), "{e}");
    let nonce = h.get("dpop-nonce").unwrap().to_str().unwrap().to_string();
    // A nonce Sesame did not make is no nonce.
    let (_, _, e) = post_token(&app, &borrow(&form), Some(key.proof("POST", &token_url, None, Some("made-up")))).await;
    assert_eq!(e["error"], "use_dpop_nonce");
    let (s, h, t) = post_token(&app, &borrow(&form), Some(key.proof("POST", &token_url, None, Some(&nonce)))).await;
    assert_eq!((s, t["token_type"].as_str()), (200, Some("DPoP")), "the code survived the nonce dance: {t}");
    assert!(h.get("dpop-nonce").is_some(), "the next nonce comes with the answer");
    let at = t["access_token"].as_str().unwrap();

    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {at}"))
        .header("DPoP", key.proof("GET", &app.url("/userinfo"), Some(at), None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("use_dpop_nonce"));
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_string();
    let (s, _, v) =
        userinfo(&app, "DPoP", at, Some(key.proof("GET", &app.url("/userinfo"), Some(at), Some(&nonce)))).await;
    assert_eq!((s, v["sub"].is_string()), (200, true), "{v}");
    app.stop().await;
}
