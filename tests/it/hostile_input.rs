//! Hostile text at the edge: NUL and other control characters, and bytes
//! that are not UTF-8 once percent-decoded, are refused with a clear 400
//! before they reach storage or a log — and whatever still reaches the audit
//! writer costs at most itself, never its neighbours. A 4-byte emoji is
//! ordinary text and is kept.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authorize::CB;
use crate::backend_tests;
use crate::selfservice::audit;
use crate::support::{TestApp, TestDb, add_client};

backend_tests!(control_characters_are_refused_and_every_legitimate_event_is_kept, a_bad_event_costs_only_itself);

async fn post_raw(app: &TestApp, path: &str, body: &str, accept: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", accept)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// The review's reproduction: `client_id=x%00` again and again between
/// legitimate token requests. Each hostile request is a 400 naming the
/// parameter; every legitimate request's event is in the log.
async fn control_characters_are_refused_and_every_legitimate_event_is_kept(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let secret = add_client(&app, "m2m", false, true, CB, None, &["client_credentials"]).await.unwrap();
    const ROUNDS: usize = 25;
    for _ in 0..ROUNDS {
        for hostile in ["grant_type=client_credentials&client_id=x%00&client_secret=y", "client_id=%FF%FE&grant_type=x"]
        {
            let r = post_raw(&app, "/token", hostile, "application/json").await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"], "invalid_request");
            assert!(e["error_description"].as_str().unwrap().contains("`client_id`"), "{e}");
        }
        let ok = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth("m2m", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
    }
    // A 4-byte emoji is text: an unknown client by that name is an ordinary failure.
    let emoji = "grant_type=client_credentials&client_id=%F0%9F%98%80&client_secret=y";
    assert_eq!(post_raw(&app, "/token", emoji, "application/json").await.status(), StatusCode::UNAUTHORIZED);

    // In the query, in a browser form (a page), and in the management API's JSON (problem+json).
    let q = reqwest::get(app.url("/authorize?client_id=a%00b&response_type=code")).await.unwrap();
    assert_eq!(q.status(), StatusCode::BAD_REQUEST);
    let page = post_raw(&app, "/login", "email=a%0D%0Aforged%40x.com&password=p", "text/html").await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    // The page echoes nothing from the request (a parameter name is not HTML).
    let xss = reqwest::Client::new()
        .get(app.url("/login?%3Cscript%3Ealert(1)%3C%2Fscript%3E=%01"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(xss.status(), StatusCode::BAD_REQUEST);
    assert!(xss.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert!(!xss.text().await.unwrap().contains("<script"));
    // Whatever a body claims to be, a form route reads it as a form, and checks it as one.
    for ct in ["text/plain", "application/json"] {
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .header("content-type", ct)
            .body("grant_type=client_credentials&client_id=x%1Bz")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{ct}");
    }
    let basic = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("x\u{0}y", Some("s"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::BAD_REQUEST, "a control character in Basic credentials");
    for body in ["{\"name\": \"a\\nb\"}", "{\"name\": \"a\\u0000b\"}", "{\"name\": \"a\u{7f}b\"}"] {
        let r = reqwest::Client::new()
            .post(app.url("/api/v1/roles"))
            .header("content-type", "Application/JSON")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let api =
        reqwest::Client::new().post(app.url("/api/v1/roles")).json(&json!({"name": "a\u{0}b"})).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::BAD_REQUEST);
    assert_eq!(api.headers()["content-type"], "application/problem+json");

    let issued = audit(&db, &["--client", "m2m", "--type", "token_issued"], |e| e.len() >= ROUNDS).await;
    assert_eq!(issued.len(), ROUNDS, "every legitimate event is stored");
    let emoji = audit(&db, &["--client", "😀"], |e| !e.is_empty()).await;
    assert_eq!(emoji[0]["outcome"], "failure");
    assert_eq!(app.state.audit.lost(), 0);
    assert_eq!(app.state.audit.dropped(), 0);
}

fn event(app: &TestApp, kind: sesame::audit::Kind, client: &str) -> sesame::audit::Event {
    let mut e = sesame::audit::Event::new(kind).client(client.to_string());
    e.at_ms = app.state.clock.now_ms();
    e
}

/// An event that still holds a NUL (it bypassed `record()`'s cleaning):
/// Postgres refuses it; its batch is written again row by row and only it
/// is lost. SQLite stores it. Either way the neighbours are kept.
async fn a_bad_event_costs_only_itself(db: TestDb) {
    use sesame::audit::Kind;
    let app = TestApp::spawn(&db, |_| {}).await;
    let batch = vec![
        event(&app, Kind::TokenIssued, "before"),
        event(&app, Kind::TokenIssued, "bad\u{0}client"),
        event(&app, Kind::TokenIssued, "after"),
    ];
    let lost = sesame::audit::write_batch(app.state.audit.db(), &batch).await;
    assert!(lost <= 1, "at most the bad event: {lost}");
    for c in ["before", "after"] {
        let found = audit(&db, &["--client", c], |e| !e.is_empty()).await;
        assert_eq!(found.len(), 1, "{c} was kept");
    }
    // Through record(), the same event is cleaned and stored.
    sesame::audit::record(&app.state.audit, sesame::audit::Event::new(Kind::TokenIssued).client("x\u{0}y".to_string()));
    let found = audit(&db, &["--client", "xy"], |e| !e.is_empty()).await;
    assert_eq!(found.len(), 1);
}
