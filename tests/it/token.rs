//! /token, /userinfo, /revoke and /introspect: every misuse gets the right error.

use serde_json::Value;

use crate::authorize::{CB, VERIFIER, auth, setup};
use crate::backend_tests;
use crate::support::browser::{Browser, location, params};
use crate::support::{TestApp, TestDb, add_client};

async fn code(app: &TestApp, b: &Browser, client: &str) -> String {
    let r = b.get(&auth(client, "")).await;
    let loc = if location(&r).contains("/login") {
        b.authorize_with_login(&auth(client, ""), "alice@example.com", "correct horse battery").await
    } else {
        url::Url::parse(&location(&r)).unwrap()
    };
    let _ = app;
    params(&loc)["code"].clone()
}

async fn token(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{}/token", app.base_url)).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap())
}

async fn exchange(app: &TestApp, code: &str) -> (u16, Value) {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

backend_tests!(code_misuse, refresh_rotation_and_reuse, client_authentication_and_credentials, bearer_endpoints);

async fn code_misuse(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    // PKCE mismatch, wrong redirect_uri, wrong client: invalid_grant (and the code is spent).
    let c = code(&app, &b, "spa").await;
    let (s, e) = token(
        &app,
        &[("grant_type", "authorization_code"), ("client_id", "spa"), ("code", &c), ("code_verifier", &"x".repeat(43))],
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    let c = code(&app, &b, "spa").await;
    let (_, e) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &c),
            ("code_verifier", VERIFIER),
            ("redirect_uri", "https://app.example.com/other"),
        ],
    )
    .await;
    assert_eq!(e["error"], "invalid_grant");
    let c = code(&app, &b, "spa").await;
    let (_, e) = token(&app, &[("grant_type", "authorization_code"), ("client_id", "spa"), ("code", &c)]).await;
    assert_eq!(e["error"], "invalid_grant", "verifier required");
    let c = code(&app, &b, "spa").await;
    let (_, e) = token(
        &app,
        &[("grant_type", "authorization_code"), ("client_id", "store"), ("code", &c), ("code_verifier", VERIFIER)],
    )
    .await;
    assert_eq!(e["error"], "invalid_grant", "another client's code");

    // Expired code.
    let c = code(&app, &b, "spa").await;
    app.state.clock.advance(61);
    assert_eq!(exchange(&app, &c).await.1["error"], "invalid_grant");

    // Replay: the second use fails and revokes the refresh token from the first.
    let c = code(&app, &b, "spa").await;
    let (s, ok) = exchange(&app, &c).await;
    assert_eq!(s, 200, "{ok}");
    let rt = ok["refresh_token"].as_str().unwrap().to_string();
    let (s, e) = exchange(&app, &c).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    let (_, e) = token(&app, &[("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", &rt)]).await;
    assert_eq!(e["error"], "invalid_grant", "tokens from a replayed code are revoked");

    // Bad input never 500s.
    for form in [
        vec![],
        vec![("grant_type", "password"), ("client_id", "spa")],
        vec![("grant_type", "authorization_code"), ("client_id", "spa")],
    ] {
        let (s, e) = token(&app, &form).await;
        assert!(s == 400 || s == 401, "{form:?} -> {s} {e}");
        assert!(e["error"].is_string());
    }
    let (_, e) = token(&app, &[("grant_type", "password"), ("client_id", "spa")]).await;
    assert_eq!(e["error"], "unsupported_grant_type");
    let (_, e) = token(&app, &[("grant_type", "client_credentials"), ("client_id", "spa")]).await;
    assert_eq!(e["error"], "unauthorized_client");

    // The janitor's purge runs on this backend and removes what has expired.
    let far = app.state.clock.now() + 400 * 86_400;
    assert!(sesame::storage::purge_expired(&app.state.db, far).await.unwrap() > 0);
    // A backlog larger than one batch goes too, batch after batch.
    let backlog = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4500)
                   INSERT INTO attempts (bucket, window_start, n, prev_n) SELECT 'old' || i, 0, 1, 0 FROM n";
    sqlx::query(backlog).execute(app.state.db.pool()).await.unwrap();
    assert_eq!(sesame::storage::purge_expired(&app.state.db, far).await.unwrap(), 4500);
    let left: (i64,) = sqlx::query_as("SELECT count(*) FROM attempts").fetch_one(app.state.db.pool()).await.unwrap();
    assert_eq!(left.0, 0);
}

async fn refresh_rotation_and_reuse(db: TestDb) {
    let app = setup(&db).await;
    // Tabs refreshing at once need the opt-in leeway (the default is none).
    let mut spa = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    spa.refresh_leeway_secs = Some(5);
    sesame::storage::clients::update(&app.state.db, &spa).await.unwrap();
    let b = Browser::new(&app.base_url);
    let c = code(&app, &b, "spa").await;
    let r0 = exchange(&app, &c).await.1["refresh_token"].as_str().unwrap().to_string();
    let refresh = |t: String| {
        let app = &app;
        async move { token(app, &[("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", &t)]).await }
    };
    // Several tabs refreshing at once all get the same successor: never two valid ones.
    let mut tabs = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let url = format!("{}/token", app.base_url);
        let form =
            [("grant_type", "refresh_token".to_string()), ("client_id", "spa".into()), ("refresh_token", r0.clone())];
        tabs.spawn(async move {
            let r = reqwest::Client::new().post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    }
    let results = tabs.join_all().await;
    let successors: std::collections::HashSet<String> = results
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, 200, "{v}");
            v["refresh_token"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(successors.len(), 1, "one successor");
    let r1 = successors.into_iter().next().unwrap();
    assert_ne!(r1, r0);

    // Narrowing works, widening does not.
    let (s, v) = token(
        &app,
        &[("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", &r1), ("scope", "openid")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["scope"], "openid");
    assert!(v.get("id_token").is_some());
    let r2 = v["refresh_token"].as_str().unwrap().to_string();
    let (_, e) = token(
        &app,
        &[("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", &r2), ("scope", "openid profile")],
    )
    .await;
    assert_eq!(e["error"], "invalid_scope");

    // After the leeway, presenting a spent token is a replay: the family dies.
    app.state.clock.advance(10);
    let (_, e) = refresh(r1.clone()).await;
    assert_eq!(e["error"], "invalid_grant");
    let (_, e) = refresh(r2.clone()).await;
    assert_eq!(e["error"], "invalid_grant", "the whole family is revoked");

    // Another client cannot use it, and an unknown token is invalid_grant.
    let (_, e) = token(&app, &[("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", "nope")]).await;
    assert_eq!(e["error"], "invalid_grant");
}

async fn client_authentication_and_credentials(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let secret = add_client(&app, "m2m", false, true, CB, None, &["client_credentials"]).await.unwrap();
    let post_secret = {
        let s = add_client(&app, "poster", false, true, CB, None, &["client_credentials"]).await.unwrap();
        let mut c = sesame::storage::clients::find(&app.state.db, "poster").await.unwrap().unwrap();
        c.token_endpoint_auth_method = "client_secret_post".into();
        sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
        s
    };
    let http = reqwest::Client::new();
    let url = format!("{}/token", app.base_url);
    let r = http
        .post(&url)
        .basic_auth("m2m", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert!(v.get("refresh_token").is_none() && v.get("id_token").is_none());
    let claims = crate::flow::decode_payload(v["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "m2m");
    assert_eq!(claims["client_id"], "m2m");

    // Wrong secret: 401 with a Basic challenge.
    let r = http
        .post(&url)
        .basic_auth("m2m", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // Unknown client, and the wrong method for the client.
    let r = http
        .post(&url)
        .basic_auth("ghost", Some("x"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .form(&[("grant_type", "client_credentials"), ("client_id", "m2m"), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "m2m is registered for client_secret_basic");
    let r = http
        .post(&url)
        .form(&[("grant_type", "client_credentials"), ("client_id", "poster"), ("client_secret", &post_secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http.post(&url).form(&[("grant_type", "client_credentials"), ("client_id", "m2m")]).send().await.unwrap();
    assert_eq!(r.status(), 401, "no secret");

    // A removed client stops working once the per-replica cache (5 s) has lapsed.
    sesame::storage::clients::delete(&app.state.db, "m2m").await.unwrap();
    app.state.clock.advance(6);
    let r = http
        .post(&url)
        .basic_auth("m2m", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn bearer_endpoints(db: TestDb) {
    let app = setup(&db).await;
    let api_secret = add_client(&app, "api", false, true, CB, None, &["client_credentials"]).await.unwrap();
    // An API gateway may introspect every client's tokens; other clients only their own.
    let mut api = sesame::storage::clients::find(&app.state.db, "api").await.unwrap().unwrap();
    api.introspect_any = true;
    sesame::storage::clients::update(&app.state.db, &api).await.unwrap();
    let other_secret = add_client(&app, "other", false, true, CB, None, &["client_credentials"]).await.unwrap();
    let b = Browser::new(&app.base_url);
    let c = code(&app, &b, "spa").await;
    let tok = exchange(&app, &c).await.1;
    let at = tok["access_token"].as_str().unwrap();
    let rt = tok["refresh_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let ui = format!("{}/userinfo", app.base_url);

    let r = http.get(&ui).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"sesame\"");
    let r = http.get(&ui).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    let r = http.post(&ui).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["email"], "alice@example.com");
    assert!(v.get("name").is_none(), "profile was not granted");

    // Introspection: confidential clients only.
    let intro = format!("{}/introspect", app.base_url);
    let introspect = |token: &str| {
        let req = http.post(&intro).basic_auth("api", Some(&api_secret)).form(&[("token", token)]);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let v = introspect(at).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], "spa");
    let v = introspect(rt).await;
    assert_eq!(v["token_type"], "refresh_token");
    let v = introspect("nope").await;
    assert_eq!(v, serde_json::json!({"active": false}));
    for token in [at, rt] {
        let r = http.post(&intro).basic_auth("other", Some(&other_secret)).form(&[("token", token)]).send().await;
        let v: Value = r.unwrap().json().await.unwrap();
        assert_eq!(v, serde_json::json!({"active": false}), "another client's token is not revealed");
    }
    let r = http.post(&intro).form(&[("token", at), ("client_id", "spa")]).send().await.unwrap();
    assert_eq!(r.status(), 400, "public clients may not introspect");

    // Revoking the access token revokes its grant: userinfo, introspection and the refresh token all stop.
    let r = http
        .post(format!("{}/revoke", app.base_url))
        .form(&[("token", at), ("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(http.get(&ui).bearer_auth(at).send().await.unwrap().status(), 401);
    let v = introspect(at).await;
    assert_eq!(v["active"], false);
    let (_, e) = token(&app, &[("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt)]).await;
    assert_eq!(e["error"], "invalid_grant");
    // Unknown tokens revoke fine (RFC 7009 §2.2).
    let r = http
        .post(format!("{}/revoke", app.base_url))
        .form(&[("token", "unknown"), ("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Expired access tokens are refused.
    let c = code(&app, &b, "spa").await;
    let at2 = exchange(&app, &c).await.1["access_token"].as_str().unwrap().to_string();
    app.state.clock.advance(3601);
    assert_eq!(http.get(&ui).bearer_auth(&at2).send().await.unwrap().status(), 401);
}
