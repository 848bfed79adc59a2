//! `/metrics`: the Prometheus text an operator scrapes answers what they ask
//! (sign-ins by outcome, tokens by grant, refresh reuse, throttling, HTTP by
//! route), with bounded labels only, on the main listener or on a listener of
//! its own. The recorder is process-wide, so each test reads counts of its
//! own client ids, before and after.

use reqwest::StatusCode;

use crate::authorize::{CB, VERIFIER, auth};
use crate::backend_tests;
use crate::support::browser::{Browser, hidden, params};
use crate::support::process::free_port;
use crate::support::{TestApp, TestDb, add_client, add_user};

const PW: &str = "correct horse battery";

backend_tests!(metrics_answer_what_operators_ask, metrics_can_have_a_listener_of_their_own);

async fn scrape(base: &str) -> String {
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

/// The value of the series `name{labels}` whose labels include every one of
/// `want` (0 when absent).
fn value(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, labels) = series.split_once('{').unwrap_or((series, ""));
            (n == name && want.iter().all(|(k, val)| labels.contains(&format!("{k}=\"{val}\"")))).then_some(v)
        })
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

async fn metrics_answer_what_operators_ask(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.rate_limit.login_per_account_per_minute = 3).await;
    let client = format!("metrics-{:?}", db.backend).to_lowercase();
    add_client(&app, &client, true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    add_user(&app, "mia@example.com", PW).await;
    let before = scrape(&app.base_url).await;

    // One wrong password, then a sign-in, a code redeemed, a refresh rotated
    // and the old refresh token replayed.
    let b = Browser::new(&app.base_url);
    let html = b.follow(b.get(&auth(&client, "")).await).await.text().await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf")),
        ("req", hidden(&html, "req")),
        ("email", "mia@example.com".into()),
        ("password", "wrong password here".into()),
    ];
    let r = b.http.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let back = b.authorize_with_login(&auth(&client, ""), "mia@example.com", PW).await;
    let code = params(&back)["code"].clone();
    let token = |form: Vec<(&'static str, String)>| {
        let http = reqwest::Client::new();
        let url = app.url("/token");
        async move { http.post(url).form(&form).send().await.unwrap() }
    };
    let r = token(vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", client.clone()),
        ("code", code),
        ("redirect_uri", CB.into()),
        ("code_verifier", VERIFIER.into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rt = r.json::<serde_json::Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_string();
    let refresh = vec![("grant_type", "refresh_token"), ("client_id", &client), ("refresh_token", &rt)];
    let refresh: Vec<(&'static str, String)> = refresh.into_iter().map(|(k, v)| (k, v.to_string())).collect();
    assert_eq!(token(refresh.clone()).await.status(), StatusCode::OK);
    assert_eq!(token(refresh).await.status(), StatusCode::BAD_REQUEST, "the replay is refused");
    // A stranger's client id and a hostile one are refused, and are no label.
    for id in ["no-such-client", "x\u{1}y", &"z".repeat(300)] {
        let r = token(vec![("grant_type", "client_credentials".into()), ("client_id", id.into())]).await;
        assert!(r.status().is_client_error());
    }
    // The account's budget (3 a minute) is spent by a guesser.
    let mut throttled = false;
    for _ in 0..5 {
        let b = Browser::new(&app.base_url);
        let html = b.follow(b.get(&auth(&client, "")).await).await.text().await.unwrap();
        let form = [
            ("csrf", hidden(&html, "csrf")),
            ("req", hidden(&html, "req")),
            ("email", "mia@example.com".into()),
            ("password", "another wrong one".into()),
        ];
        throttled |= b.http.post(app.url("/login")).form(&form).send().await.unwrap().status() == 429;
    }
    assert!(throttled, "the guesser was throttled");
    app.state.audit.flush().await;

    let after = scrape(&app.base_url).await;
    let delta = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    let c = client.as_str();
    let ok = [("outcome", "success"), ("method", "pwd"), ("client", c)];
    assert_eq!(delta("sesame_sign_ins_total", &ok), 1.0, "{after}");
    let wrong = [("outcome", "failure"), ("method", "pwd"), ("client", c), ("reason", "wrong_password")];
    assert!(delta("sesame_sign_ins_total", &wrong) >= 1.0);
    let throttled = [("outcome", "failure"), ("client", c), ("reason", "throttled")];
    assert!(delta("sesame_sign_ins_total", &throttled) >= 1.0);
    assert!(delta("sesame_rate_limited_total", &[("limiter", "login_account_ip")]) >= 1.0);
    let issued = |g| delta("sesame_tokens_issued_total", &[("grant_type", g), ("client", c)]);
    assert_eq!((issued("authorization_code"), issued("refresh_token")), (1.0, 1.0));
    assert_eq!(delta("sesame_refresh_reuse_detected_total", &[("client", c)]), 1.0);
    assert!(delta("sesame_events_total", &[("type", "login_success"), ("outcome", "success")]) >= 1.0);
    assert!(delta("sesame_audit_events_written_total", &[]) >= 5.0);
    // HTTP by route template (never by the path as sent), method and status.
    let token_ok = [("route", "/token"), ("method", "POST"), ("status", "200")];
    assert!(delta("sesame_http_request_duration_seconds_count", &token_ok) >= 2.0);
    assert!(after.contains("sesame_http_request_duration_seconds_bucket{"), "a histogram, not a summary");
    reqwest::get(app.url("/no/such/path/12345")).await.unwrap();
    let text = scrape(&app.base_url).await;
    assert!(value(&text, "sesame_http_request_duration_seconds_count", &[("route", "unmatched")]) >= 1.0);
    // A request id the client wrote is kept only when it is a plain token;
    // anything else is replaced (it would reach logs and traces).
    for (sent, kept) in [("abc-123.X_y", true), ("a b", false), (&"r".repeat(65) as &str, false)] {
        let r = reqwest::Client::new().get(app.url("/healthz")).header("x-request-id", sent).send().await.unwrap();
        let back = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(back == sent, kept, "{sent:?} came back as {back:?}");
    }
    // Gauges sampled at scrape time.
    for series in [
        "sesame_db_connections{",
        "sesame_db_connections_max{",
        "sesame_audit_queue_depth",
        "sesame_password_hashing_queue",
        "sesame_signing_key_age_seconds{alg=\"RS256\"}",
        "sesame_build_info{version=",
        "sesame_db_acquire_seconds_bucket",
    ] {
        assert!(text.contains(series), "{series} missing");
    }
    // No user, address, token or unregistered client id is a label value.
    for secret in ["mia@example.com", "127.0.0.1", &rt, "no-such-client", "/no/such/path", "zzzzzzzz"] {
        assert!(!text.contains(secret), "{secret} appears in /metrics");
    }
    // The login box's users' requests are not what /metrics is for: it is
    // served without credentials, so it says only counts.
    let series = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#'));
    assert!(series.clone().all(|l| l.starts_with("sesame_")), "{text}");
    assert!(series.count() > 20);
}

async fn metrics_can_have_a_listener_of_their_own(db: TestDb) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let app = TestApp::spawn(&db, |c| c.metrics.listen = listen.clone()).await;
    let r = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "not on the main listener");
    let text = scrape(&format!("http://{listen}")).await;
    assert!(text.contains("sesame_build_info"));
    // A request for /metrics on the main listener passed on by a proxy, or
    // from another host, is not answered: there it is only for this host.
    let on_main = TestApp::spawn(&db, |_| {}).await;
    let r = reqwest::Client::new().get(on_main.url("/metrics")).header("x-forwarded-for", "203.0.113.9").send().await;
    assert_eq!(r.unwrap().status(), StatusCode::NOT_FOUND);
    let r = reqwest::Client::new().get(on_main.url("/metrics")).header("forwarded", "for=203.0.113.9").send().await;
    assert_eq!(r.unwrap().status(), StatusCode::NOT_FOUND);
    // Only /metrics there.
    let r = reqwest::get(format!("http://{listen}/authorize")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Off altogether.
    let off = TestApp::spawn(&db, |c| c.metrics.enabled = false).await;
    assert_eq!(reqwest::get(off.url("/metrics")).await.unwrap().status(), StatusCode::NOT_FOUND);
}
