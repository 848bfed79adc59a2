//! CORS on the fetched endpoints and the Auth0-compatible paths.

use crate::authorize::{CB, setup};
use crate::backend_tests;
use crate::support::TestDb;
use crate::support::browser::{Browser, location};

const SPA_ORIGIN: &str = "https://games.example.com";

backend_tests!(cors_only_for_registered_origins, auth0_paths);

async fn cors_only_for_registered_origins(db: TestDb) {
    let app = setup(&db).await;
    let mut c = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    c.web_origins = vec![SPA_ORIGIN.into()];
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
    let http = reqwest::Client::new();
    for path in ["/token", "/oauth/token", "/userinfo", "/revoke"] {
        let pre = http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", SPA_ORIGIN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "auth0-client, content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(pre.status(), 204, "{path}");
        assert_eq!(pre.headers()["access-control-allow-origin"], SPA_ORIGIN);
        assert!(pre.headers()["access-control-allow-headers"].to_str().unwrap().contains("auth0-client"));
        let evil = http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(evil.status(), 403, "{path}");
        assert!(evil.headers().get("access-control-allow-origin").is_none());
    }
    // The actual response carries the header only for the registered origin.
    let r = http
        .post(app.url("/token"))
        .header("origin", SPA_ORIGIN)
        .form(&[("grant_type", "x"), ("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], SPA_ORIGIN);
    let r = http
        .post(app.url("/token"))
        .header("origin", "https://evil.example")
        .form(&[("grant_type", "x"), ("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // Another client's registered origin cannot use this client at /token.
    let r = http
        .post(app.url("/token"))
        .header("origin", SPA_ORIGIN)
        .form(&[("grant_type", "x"), ("client_id", "store")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Never on /authorize; discovery and JWKS are open to all.
    let r = http.get(app.url("/authorize")).header("origin", SPA_ORIGIN).send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = http.get(app.url("/jwks")).header("origin", "https://anyone.example").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

async fn auth0_paths(db: TestDb) {
    let app = setup(&db).await;
    let mut c = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    c.post_logout_redirect_uris = vec!["https://app.example.com/bye".into()];
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
    let b = Browser::new(&app.base_url);
    b.authorize_with_login(&crate::authorize::auth("spa", ""), "alice@example.com", "correct horse battery").await;
    // /oauth/token is /token.
    let r = b
        .post_form("/oauth/token", &[("grant_type", "authorization_code"), ("client_id", "spa"), ("code", "nope")])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_grant");
    // /v2/logout with an unregistered returnTo: error page, still signed in.
    let r = b.get("/v2/logout?client_id=spa&returnTo=https%3A%2F%2Fevil.example%2F").await;
    assert_eq!(r.status(), 400);
    // With a registered returnTo: signed out at once, no confirmation page.
    let r = b.get("/v2/logout?client_id=spa&returnTo=https%3A%2F%2Fapp.example.com%2Fbye").await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "https://app.example.com/bye");
    let r = b.get(&crate::authorize::auth("spa", "&prompt=none")).await;
    assert!(location(&r).starts_with(CB) && location(&r).contains("error=login_required"));
}
