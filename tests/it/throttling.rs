//! Throttling and input bounds: the client address behind proxies, owners not
//! locked out by strangers, bounded limiter memory and /authorize values,
//! sign-up throttling, a bounded password-hashing queue, and the HTTP edge
//! (413 on every route, header and request timeouts).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::authorize::{CB, auth};
use crate::backend_tests;
use crate::support::browser::{Browser, hidden, location, params};
use crate::support::{TestApp, TestDb, add_client, add_user};

const PW: &str = "correct horse battery";

async fn app_with(db: &TestDb, f: impl FnOnce(&mut sesame::config::Config)) -> TestApp {
    let app = TestApp::spawn(db, |c| {
        c.rate_limit.trust_forwarded_for = true;
        f(c)
    })
    .await;
    add_client(&app, "spa", true, true, CB, None, &["authorization_code"]).await;
    add_user(&app, "alice@example.com", PW).await;
    app
}

/// Opens the login box in a fresh browser: (browser, csrf, req).
async fn login_box(app: &TestApp) -> (Browser, String, String) {
    let b = Browser::new(&app.base_url);
    let html = b.follow(b.get(&auth("spa", "")).await).await.text().await.unwrap();
    let (csrf, req) = (hidden(&html, "csrf"), hidden(&html, "req"));
    (b, csrf, req)
}

/// One password attempt, as forwarded by a proxy with `X-Forwarded-For: xff`.
async fn attempt(app: &TestApp, xff: &str, email: &str, pw: &str) -> u16 {
    let (b, csrf, req) = login_box(app).await;
    let form = [("csrf", csrf.as_str()), ("req", &req), ("email", email), ("password", pw)];
    let r = b.http.post(app.url("/login")).header("x-forwarded-for", xff).form(&form).send().await.unwrap();
    r.status().as_u16()
}

backend_tests!(
    forwarded_for_cannot_be_spoofed,
    strangers_cannot_lock_the_owner_out,
    limiter_memory_and_authorize_values_are_bounded,
    signup_throttled_and_password_queue_bounded,
    a_burst_of_sign_ins_is_served,
    oversized_bodies_get_413_on_every_route,
    failed_client_authentication_is_throttled,
    attempt_windows_never_move_back,
);

/// A replica whose clock is a minute behind must not reset a budget by moving
/// its window back (it used to start a fresh window with one attempt).
async fn attempt_windows_never_move_back(db: TestDb) {
    use sesame::storage::attempts::count;
    let app = TestApp::spawn(&db, |_| {}).await;
    let b = vec!["skewed".to_string()];
    let now = 1_800_000_030;
    for _ in 0..3 {
        count(&app.state.db, &b, now + 60).await.unwrap();
    }
    let behind = count(&app.state.db, &b, now).await.unwrap()[0];
    assert_eq!((behind.n, behind.prev_n), (4, 0), "counted in the newer window");
    assert!(behind.in_last_minute() >= 4.0);
    let ahead = count(&app.state.db, &b, now + 61).await.unwrap()[0];
    assert_eq!(ahead.n, 5);
}

/// The review's spoof: a random leftmost X-Forwarded-For entry per attempt got
/// 20 of 20 attempts through. The client is the rightmost untrusted entry.
async fn forwarded_for_cannot_be_spoofed(db: TestDb) {
    let app = app_with(&db, |c| {
        c.rate_limit.login_per_ip_per_minute = 5;
        c.rate_limit.login_per_account_per_minute = 1000;
    })
    .await;
    let mut throttled = 0;
    for i in 0..20 {
        // The load balancer (127.0.0.1, trusted) appends the real client.
        let s = attempt(&app, &format!("203.0.113.{i}, 198.51.100.7"), "alice@example.com", "wrong password!").await;
        throttled += usize::from(s == 429);
    }
    assert_eq!(throttled, 15, "five attempts from 198.51.100.7, then 429");
    // From an untrusted peer, X-Forwarded-For is not believed at all.
    app.stop().await;
    let app = TestApp::spawn(&db, |c| {
        c.rate_limit.trust_forwarded_for = true;
        c.rate_limit.login_per_ip_per_minute = 5;
        c.rate_limit.login_per_account_per_minute = 1000;
        c.rate_limit.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(attempt(&app, &format!("203.0.113.{i}"), "bob@example.com", "wrong password!").await);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");
}

/// Ten wrong passwords from rotating addresses used to make the owner's
/// correct password answer 429. The owner's address keeps working; strangers
/// are throttled.
async fn strangers_cannot_lock_the_owner_out(db: TestDb) {
    let app = app_with(&db, |c| c.rate_limit.login_per_account_per_minute = 3).await;
    let owner = "198.51.100.1";
    assert_eq!(attempt(&app, owner, "alice@example.com", PW).await, 303, "the owner signs in");
    for i in 0..10 {
        let s = attempt(&app, &format!("203.0.113.{i}"), "alice@example.com", "wrong password!").await;
        assert!(s == 401 || s == 429, "{s}");
    }
    assert_eq!(attempt(&app, owner, "alice@example.com", PW).await, 303, "the owner is not locked out");
    assert_eq!(attempt(&app, "203.0.113.200", "alice@example.com", PW).await, 429, "a stranger is throttled");
}

async fn limiter_memory_and_authorize_values_are_bounded(db: TestDb) {
    let app = app_with(&db, |c| {
        c.rate_limit.authorize_per_ip_per_minute = 2;
        c.rate_limit.max_tracked_keys = 20;
    })
    .await;
    // 60 KB emails are refused before any limiter or database work.
    let huge = format!("{}@example.com", "a".repeat(60_000));
    let (b, csrf, req) = login_box(&app).await;
    let before = app.state.limits.tracked_keys();
    for _ in 0..30 {
        let form = [("csrf", csrf.as_str()), ("req", &req), ("email", &huge), ("password", "whatever!")];
        let r = b.http.post(app.url("/login")).header("x-forwarded-for", "198.51.100.9").form(&form).send().await;
        assert_eq!(r.unwrap().status(), 400);
    }
    assert_eq!(app.state.limits.tracked_keys(), before, "nothing stored for oversized emails");

    // A throttled address stays throttled however many new addresses come.
    let silent = |ip: String| {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let url = app.url(&auth("spa", "&prompt=none"));
        async move {
            let r = http.get(url).header("x-forwarded-for", ip).send().await.unwrap();
            params(&url::Url::parse(&location(&r)).unwrap()).get("error").cloned().unwrap_or_default()
        }
    };
    assert_eq!(silent("198.51.100.50".into()).await, "login_required");
    assert_eq!(silent("198.51.100.50".into()).await, "login_required");
    assert_eq!(silent("198.51.100.50".into()).await, "temporarily_unavailable");
    for i in 0..60 {
        let _ = silent(format!("203.0.113.{i}")).await;
    }
    assert!(app.state.limits.tracked_keys() <= 20 * 5, "bounded: {}", app.state.limits.tracked_keys());
    assert_eq!(silent("198.51.100.50".into()).await, "temporarily_unavailable", "not flushed by strangers");

    // /authorize values: 2 KiB each (id_token_hint 16 KiB), else invalid_request.
    let b = Browser::new(&app.base_url);
    for extra in [format!("&nonce={}", "n".repeat(2049)), format!("&id_token_hint={}", "h".repeat(16 * 1024 + 1))] {
        let r = b.http.get(app.url(&auth("spa", &extra))).header("x-forwarded-for", "198.51.100.77").send().await;
        let r = r.unwrap();
        assert_eq!(r.status(), 302);
        let p = params(&url::Url::parse(&location(&r)).unwrap());
        assert_eq!(p["error"], "invalid_request", "{p:?}");
    }
}

async fn signup_throttled_and_password_queue_bounded(db: TestDb) {
    let app = app_with(&db, |c| {
        c.rate_limit.login_per_ip_per_minute = 2;
        c.rate_limit.login_per_account_per_minute = 1000;
        c.login.max_password_queue = 1;
    })
    .await;
    // Sign-up counts against the per-address budget.
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (b, csrf, req) = login_box(&app).await;
        let email = format!("new{i}@example.com");
        let form = [("csrf", csrf.as_str()), ("req", &req), ("email", &email), ("password", PW)];
        let r = b.http.post(app.url("/signup")).header("x-forwarded-for", "198.51.100.3").form(&form).send().await;
        statuses.push(r.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);

    // With the password queue full, a login gets 503 with Retry-After at once
    // (no argon2 work queued behind the others), and works again once a place frees up.
    let held = app.state.passwords.clone().try_acquire_owned().unwrap();
    let (b, csrf, req) = login_box(&app).await;
    let form = [("csrf", csrf.as_str()), ("req", &req), ("email", "alice@example.com"), ("password", "wrong!!!")];
    let started = Instant::now();
    let r = b.http.post(app.url("/login")).header("x-forwarded-for", "198.51.100.100").form(&form).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_secs(1), "answered at once");
    drop(held);
    let r = b.http.post(app.url("/login")).header("x-forwarded-for", "198.51.100.101").form(&form).send().await;
    assert_eq!(r.unwrap().status(), 401);

    // Sixteen at once with room for one hash: some get 503, none a 500.
    let mut forms = Vec::new();
    for i in 0..16 {
        let (b, csrf, req) = login_box(&app).await;
        forms.push((b, csrf, req, format!("198.51.100.{}", 110 + i)));
    }
    let mut set = tokio::task::JoinSet::new();
    let url = app.url("/login");
    for (b, csrf, req, ip) in forms {
        let url = url.clone();
        set.spawn(async move {
            let form =
                [("csrf", csrf.as_str()), ("req", &req), ("email", "alice@example.com"), ("password", "wrong!!!")];
            let r = b.http.post(url).header("x-forwarded-for", ip).form(&form).send().await.unwrap();
            r.status().as_u16()
        });
    }
    let results = set.join_all().await;
    assert!(results.iter().all(|s| *s == 401 || *s == 503), "{results:?}");
}

/// Fifty password sign-ins at once (about half a second of argon2 work on two
/// cores) are all served: admission is bounded by the expected wait, not by
/// a fixed queue (which shed 16 of them). The wait bound is raised from 3 s
/// because this suite shares the machine with every other test.
async fn a_burst_of_sign_ins_is_served(db: TestDb) {
    let app = app_with(&db, |c| {
        c.rate_limit.enabled = false;
        c.login.max_password_wait_ms = 10_000;
    })
    .await;
    let mut boxes = Vec::new();
    for _ in 0..50 {
        boxes.push(login_box(&app).await);
    }
    let url = app.url("/login");
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (b, csrf, req) in boxes {
        let url = url.clone();
        set.spawn(async move {
            let form = [("csrf", csrf.as_str()), ("req", &req), ("email", "alice@example.com"), ("password", PW)];
            b.http.post(url).form(&form).send().await.unwrap().status().as_u16()
        });
    }
    let results = set.join_all().await;
    let served = results.iter().filter(|s| **s == 303).count();
    assert_eq!(served, 50, "{results:?} in {:?}", started.elapsed());
}

/// 1 MB bodies used to end in a connection reset on routes that read no body.
async fn oversized_bodies_get_413_on_every_route(db: TestDb) {
    let app = TestApp::spawn(&db, |c| {
        c.http.header_read_timeout_secs = 1;
        c.http.request_timeout_secs = 2;
    })
    .await;
    let body = vec![b'x'; 1024 * 1024];
    let http = reqwest::Client::new();
    for path in
        ["/healthz", "/readyz", "/jwks", "/.well-known/openid-configuration", "/check_session", "/revoke", "/token"]
    {
        let r = http.post(app.url(path)).body(body.clone()).send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status(), 413, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["error_description"].as_str().unwrap().contains("64 KiB"), "{path}");
    }
    // Within the limit, a form still works.
    let r = http.post(app.url("/token")).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // A client trickling its headers is cut off after the header timeout.
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("closed in time");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let answer = String::from_utf8_lossy(&buf[..n.unwrap_or(0)]).to_string();
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A body that never finishes is answered 408 after the request timeout.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ngrant").await.unwrap();
    let t = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(6), s.read(&mut buf)).await.expect("answered in time").unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&buf[..n]));
    assert!(t.elapsed() < Duration::from_secs(5));
}

async fn client_auth(app: &TestApp, xff: &str, id: &str, secret: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/token"))
        .header("x-forwarded-for", xff)
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

/// Failed client authentication is throttled per address and per client id
/// (429 slow_down with Retry-After, not written to the audit log one by one):
/// an address past its budget waits for everything; strangers failing with a
/// client's id cannot lock the client out of its own addresses.
async fn failed_client_authentication_is_throttled(db: TestDb) {
    let app = app_with(&db, |c| c.rate_limit.client_auth_failures_per_minute = 5).await;
    let secret = add_client(&app, "m2m", false, true, CB, None, &["client_credentials"]).await.unwrap();
    for _ in 0..5 {
        assert_eq!(client_auth(&app, "10.0.0.2", "m2m", "wrong").await.status(), 401);
    }
    let r = client_auth(&app, "10.0.0.2", "m2m", "wrong").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "slow_down");
    // The failing address waits, right credentials too (a hit is not told from a miss).
    assert_eq!(client_auth(&app, "10.0.0.2", "m2m", &secret).await.status(), 429);
    // Another address failing with the same id: the id's budget is spent too.
    assert_eq!(client_auth(&app, "10.0.0.3", "m2m", "wrong").await.status(), 429);
    // The client itself, from its own addresses, is never locked out by the id's budget.
    assert_eq!(client_auth(&app, "10.0.0.3", "m2m", &secret).await.status(), 200);
    assert_eq!(client_auth(&app, "10.0.0.9", "m2m", &secret).await.status(), 200);
    // Made-up client ids from one address: the address's budget.
    for i in 0..5 {
        assert_eq!(client_auth(&app, "10.0.0.4", &format!("nobody{i}"), "x").await.status(), 401);
    }
    assert_eq!(client_auth(&app, "10.0.0.4", "nobody-else", "x").await.status(), 429);
    // Only the refused authentications are events, not the throttled flood.
    let failures =
        crate::selfservice::audit(&db, &["--type", "token_issued", "--outcome", "failure"], |e| e.len() >= 10).await;
    assert_eq!(failures.len(), 10, "{failures:?}");
}
