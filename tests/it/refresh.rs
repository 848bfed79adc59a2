//! Refresh-token hardening: scope on every path, the reuse leeway (off by
//! default), and no refresh token outliving a logout, a revocation or a code replay.

use serde_json::Value;

use crate::authorize::{CB, VERIFIER, auth, setup};
use crate::backend_tests;
use crate::logout::{refresh_ok, tokens};
use crate::support::browser::{Browser, location, params};
use crate::support::{TestApp, TestDb};

async fn refresh(app: &TestApp, rt: &str, scope: Option<&str>) -> (u16, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let r = reqwest::Client::new().post(format!("{}/token", app.base_url)).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn set_leeway(app: &TestApp, secs: Option<u64>) {
    let mut c = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    c.refresh_leeway_secs = secs;
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
}

backend_tests!(
    replay_revokes_family_by_default,
    leeway_replay_never_widens_scope,
    leeway_successor_is_wiped_after_the_leeway,
    revoked_grant_refuses_rotation,
    refresh_after_logout_always_fails,
    code_redemption_writes_refresh_token_with_the_code,
);

/// RFC 9700 §4.14.2: with no leeway, the first replay of a rotated token is
/// `invalid_grant` and kills the successor too.
async fn replay_revokes_family_by_default(db: TestDb) {
    let app = setup(&db).await;
    assert_eq!(app.state.config.tokens.refresh_reuse_grace_secs, 0);
    let b = Browser::new(&app.base_url);
    let r0 = tokens(&app, &b, "openid%20email").await["refresh_token"].as_str().unwrap().to_string();
    let (s, v) = refresh(&app, &r0, None).await;
    assert_eq!(s, 200, "{v}");
    let r1 = v["refresh_token"].as_str().unwrap().to_string();
    let (s, e) = refresh(&app, &r0, None).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")), "immediate replay refused");
    assert!(!refresh_ok(&app, &r1).await, "the family is revoked");
}

/// The escalation the review found: a just-rotated token re-sent with a wider
/// scope inside the leeway got that scope. Now: invalid_scope, and a plain
/// replay gets the same successor with the original scope.
async fn leeway_replay_never_widens_scope(db: TestDb) {
    let app = setup(&db).await;
    set_leeway(&app, Some(10)).await;
    let b = Browser::new(&app.base_url);
    let r0 = tokens(&app, &b, "openid").await["refresh_token"].as_str().unwrap().to_string();
    let (_, v) = refresh(&app, &r0, None).await;
    let r1 = v["refresh_token"].as_str().unwrap().to_string();
    let (s, e) = refresh(&app, &r0, Some("openid email profile admin:all")).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_scope")), "{e}");
    let (s, v) = refresh(&app, &r0, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["refresh_token"], r1.as_str(), "same successor inside the leeway");
    assert_eq!(v["scope"], "openid");
    let claims = crate::flow::decode_payload(v["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "openid");
    // Past the leeway the same replay is reuse: the family dies.
    app.state.clock.advance(11);
    assert_eq!(refresh(&app, &r0, None).await.1["error"], "invalid_grant");
    assert!(!refresh_ok(&app, &r1).await);
}

/// The sealed successor is kept only with a leeway, and the janitor's wipe
/// forgets it once the longest leeway has passed.
async fn leeway_successor_is_wiped_after_the_leeway(db: TestDb) {
    use sqlx::Row;
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let sealed = |hash: String| {
        let pool = app.state.db.pool().clone();
        async move {
            let row = sqlx::query("SELECT successor_sealed FROM refresh_tokens WHERE token_hash = $1")
                .bind(hash)
                .fetch_one(&pool)
                .await
                .unwrap();
            row.try_get::<Option<Vec<u8>>, _>("successor_sealed").unwrap().is_some()
        }
    };
    let hash = sesame::crypto::random::sha256_hex;
    let r0 = tokens(&app, &b, "openid").await["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(refresh(&app, &r0, None).await.0, 200);
    assert!(!sealed(hash(&r0)).await, "no leeway: nothing kept");
    set_leeway(&app, Some(30)).await;
    app.state.clock.advance(6); // past the per-replica client cache
    let r0 = tokens(&app, &b, "openid").await["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(refresh(&app, &r0, None).await.0, 200);
    assert!(sealed(hash(&r0)).await);
    let now = app.state.clock.now();
    sesame::storage::refresh_tokens::wipe_successors(&app.state.db, now - 60).await.unwrap();
    assert!(sealed(hash(&r0)).await, "still inside the longest leeway");
    sesame::storage::refresh_tokens::wipe_successors(&app.state.db, now + 1).await.unwrap();
    assert!(!sealed(hash(&r0)).await, "wiped once the leeway has passed");
}

/// A row that survived a revocation (as when a rotation raced a logout) is
/// refused by the rotation statement itself.
async fn revoked_grant_refuses_rotation(db: TestDb) {
    use sqlx::Row;
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let rt = tokens(&app, &b, "openid").await["refresh_token"].as_str().unwrap().to_string();
    let row = sqlx::query("SELECT grant_id FROM refresh_tokens WHERE token_hash = $1")
        .bind(sesame::crypto::random::sha256_hex(&rt))
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let grant: String = row.try_get("grant_id").unwrap();
    sqlx::query("INSERT INTO revoked_grants (grant_id, revoked_at) VALUES ($1, $2)")
        .bind(&grant)
        .bind(app.state.clock.now())
        .execute(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(refresh(&app, &rt, None).await.1["error"], "invalid_grant");
}

/// Logout racing refreshes and code redemptions: once logout has answered, no
/// refresh token of the session works.
async fn refresh_after_logout_always_fails(db: TestDb) {
    let app = setup(&db).await;
    for round in 0..5 {
        let b = Browser::new(&app.base_url);
        let t = tokens(&app, &b, "openid").await;
        let (rt, id_token) = (t["refresh_token"].as_str().unwrap(), t["id_token"].as_str().unwrap());
        // A second code of the same session, redeemed while the logout runs.
        let r = b.get(&auth("spa", "")).await;
        let code = params(&url::Url::parse(&location(&r)).unwrap())["code"].clone();
        let base = app.base_url.clone();
        let racing_refresh = {
            let (base, rt) = (base.clone(), rt.to_string());
            tokio::spawn(async move {
                let form = [("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt.as_str())];
                let r = reqwest::Client::new().post(format!("{base}/token")).form(&form).send().await.unwrap();
                r.json::<Value>().await.unwrap()["refresh_token"].as_str().map(str::to_string)
            })
        };
        let racing_code = {
            let base = base.clone();
            tokio::spawn(async move {
                let form = [
                    ("grant_type", "authorization_code"),
                    ("client_id", "spa"),
                    ("code", code.as_str()),
                    ("redirect_uri", CB),
                    ("code_verifier", VERIFIER),
                ];
                let r = reqwest::Client::new().post(format!("{base}/token")).form(&form).send().await.unwrap();
                r.json::<Value>().await.unwrap()["refresh_token"].as_str().map(str::to_string)
            })
        };
        let r = b.get(&format!("/logout?id_token_hint={id_token}")).await;
        assert_eq!(r.status(), 200, "round {round}: signed out");
        let survivors: Vec<String> =
            [racing_refresh.await.unwrap(), racing_code.await.unwrap()].into_iter().flatten().collect();
        for t in survivors.iter().chain([&rt.to_string()]) {
            assert!(!refresh_ok(&app, t).await, "round {round}: a refresh token outlived the logout");
        }
    }
}

/// The first refresh token is written in the transaction that spends the code:
/// a code whose exchange was refused leaves no token, and a replay revokes it.
async fn code_redemption_writes_refresh_token_with_the_code(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let r = b.get(&auth("spa", "")).await;
    assert!(location(&r).contains("/login"));
    let back = b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let code = params(&back)["code"].clone();
    let form = |verifier: &'static str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", "spa".into()),
            ("code", code.clone()),
            ("redirect_uri", CB.into()),
            ("code_verifier", verifier.into()),
        ]
    };
    let post = |f: Vec<(&'static str, String)>| {
        let url = app.url("/token");
        async move { reqwest::Client::new().post(url).form(&f).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let bad = post(form("wrong-verifier-wrong-verifier-wrong-verifier-0")).await;
    assert_eq!(bad["error"], "invalid_grant");
    let count: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT COUNT(*) AS n FROM refresh_tokens").fetch_one(app.state.db.pool()).await.unwrap(),
        "n",
    )
    .unwrap();
    assert_eq!(count, 0, "a refused exchange writes no refresh token");
    let again = post(form(VERIFIER)).await;
    assert_eq!(again["error"], "invalid_grant", "the refused code stays spent");
}
