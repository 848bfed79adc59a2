//! Requests cancelled mid-flight (the client hangs up) must never leave a
//! transaction open on a pooled connection: if one did, later requests'
//! writes would join it and vanish when it rolled back — acknowledged
//! tokens, sessions and pending logins included. Many clients hang up on
//! refresh requests (each one opens a transaction) while others rotate
//! refresh tokens and sign in, against the real `sesame serve`; afterwards
//! no transaction warning is in its log, no connection sits idle in a
//! transaction, and every acknowledged refresh token still works.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::authorize::{CB, VERIFIER, auth};
use crate::backend_tests;
use crate::support::browser::{Browser, params};
use crate::support::process::serve;
use crate::support::{Backend, TestApp, TestDb, add_client, add_user};

backend_tests!(hung_up_requests_lose_no_acknowledged_write);

const PW: &str = "correct horse battery";

/// A full sign-in: the refresh token of its code exchange.
async fn sign_in(base: &str) -> String {
    let b = Browser::new(base);
    let back = b.authorize_with_login(&auth("spa", ""), "alice@example.com", PW).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", &params(&back)["code"]),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ];
    let r = reqwest::Client::new().post(format!("{base}/token")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["refresh_token"].as_str().unwrap().to_string()
}

async fn refresh(base: &str, rt: &str) -> Result<String, String> {
    let form = [("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt)];
    let r = reqwest::Client::new().post(format!("{base}/token")).form(&form).send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    match v["refresh_token"].as_str() {
        Some(t) if status == StatusCode::OK => Ok(t.to_string()),
        _ => Err(format!("{status}: {v}")),
    }
}

/// Sends a refresh request (it opens a transaction) and hangs up after
/// `after`, whatever the server is doing.
async fn hang_up(addr: &str, n: u64, after: Duration) {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return };
    let body = format!("grant_type=refresh_token&client_id=spa&refresh_token=bogus-{n}");
    let req = format!(
        "POST /token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(req.as_bytes()).await;
    tokio::time::sleep(after).await;
    drop(s);
}

async fn hung_up_requests_lose_no_acknowledged_write(db: TestDb) {
    let setup = TestApp::spawn(&db, |_| {}).await;
    add_client(&setup, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    add_user(&setup, "alice@example.com", PW).await;
    setup.stop().await;
    let server = serve(
        &db,
        &[
            // The storm below comes from one address.
            ("SESAME_RATE_LIMIT__ENABLED", "false"),
            // What is tested is that no write is lost, not how long a request
            // waits for a connection: on a loaded CI machine a 1 s wait can pass.
            ("SESAME_DATABASE__ACQUIRE_TIMEOUT_SECS", "30"),
        ],
    );
    let base = format!("http://{}", server.addr);

    let mut chains = Vec::new();
    for _ in 0..6 {
        chains.push(sign_in(&base).await);
    }
    let until = Instant::now() + Duration::from_secs(4);
    let mut storm = Vec::new();
    for w in 0..6u64 {
        let addr = server.addr.clone();
        storm.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                // Hang up at every point from "still sending" to "nearly done".
                hang_up(&addr, w * 1_000_000 + n, Duration::from_micros((n * 37) % 1500)).await;
                n += 1;
            }
            n
        }));
    }
    let mut honest = Vec::new();
    for rt in chains {
        let base = base.clone();
        honest.push(tokio::spawn(async move {
            let mut last = rt;
            let mut failures = Vec::new();
            while Instant::now() < until {
                match refresh(&base, &last).await {
                    Ok(next) => last = next,
                    // Nothing was written: the same token is tried again, as a client would.
                    Err(e) if e.starts_with("503") => tokio::time::sleep(Duration::from_millis(50)).await,
                    Err(e) => failures.push(e),
                }
            }
            (last, failures)
        }));
    }
    let signing_in = {
        let base = base.clone();
        tokio::spawn(async move {
            let mut tokens = Vec::new();
            while Instant::now() < until {
                tokens.push(sign_in(&base).await);
            }
            tokens
        })
    };
    let mut hung = 0;
    for s in storm {
        hung += s.await.unwrap();
    }
    let mut acknowledged = Vec::new();
    for h in honest {
        let (last, failures) = h.await.unwrap();
        assert!(failures.is_empty(), "honest refreshes failed during the storm: {failures:?}");
        acknowledged.push(last);
    }
    acknowledged.extend(signing_in.await.unwrap());
    assert!(hung > 100, "the storm hung up {hung} times");

    // Every acknowledged write is there: each last token rotates once more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for rt in &acknowledged {
        refresh(&base, rt).await.unwrap_or_else(|e| panic!("an acknowledged refresh token was lost: {e}"));
    }
    if db.backend == Backend::Postgres {
        let pool = sqlx::AnyPool::connect(&crate::support::postgres_admin_url()).await.unwrap();
        let name = url::Url::parse(&db.url).unwrap().path().trim_start_matches('/').to_string();
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'",
        )
        .bind(&name)
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        assert_eq!(open, 0, "connections left idle in a transaction");
    }
    let lines = server.lines.lock().unwrap().clone();
    let bad: Vec<&String> = lines.iter().filter(|l| l.contains("transaction in progress")).collect();
    assert!(bad.is_empty(), "transaction warnings in the log: {bad:?}");
}
