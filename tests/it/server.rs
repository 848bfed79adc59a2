//! The `sesame serve` process: start, probes, request ids, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::support::{MASTER_KEY, TestApp, TestDb, sesame_cmd};

backend_tests!(serve_probe_and_sigterm, readyz_fails_without_database);

async fn serve_probe_and_sigterm(db: TestDb) {
    let mut child = sesame_cmd()
        .args(["serve", "--log-format", "json"])
        .env("SESAME_DATABASE_URL", &db.url)
        .env("SESAME_MASTER_KEY", MASTER_KEY)
        .env("SESAME_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut addr = None;
    let mut lines = Vec::new();
    while addr.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
            if v["fields"]["message"] == "listening" {
                addr = v["fields"]["addr"].as_str().map(str::to_string);
            }
            lines.push(line);
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no listening line in {lines:?}"));
    let http = reqwest::Client::new();
    let r = http.get(format!("http://{addr}/healthz")).header("x-request-id", "probe-123").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "probe-123", "a proxy's request id is kept");
    assert_eq!(http.get(format!("http://{addr}/readyz")).send().await.unwrap().status(), 200);
    let d = http.get(format!("http://{addr}/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(d.status(), 200);
    let rid = d.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(rid.len(), 36, "a generated request id");

    // The container health check goes through the binary itself.
    let hc = sesame_cmd().args(["healthcheck", "--url", &format!("http://{addr}/healthz")]).output().unwrap();
    assert!(hc.status.success(), "{}", String::from_utf8_lossy(&hc.stderr));

    // Request log lines carry the request id.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = false;
    while !seen && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            seen = line.contains(&rid);
        }
    }
    assert!(seen, "a log line with request id {rid}");

    // Each audit event is also one JSON log line, target `audit`, carrying the request id.
    let refused = http
        .post(format!("http://{addr}/token"))
        .header("x-request-id", "audit-probe-1")
        .form(&[("grant_type", "client_credentials"), ("client_id", "nobody"), ("client_secret", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut audit_line = None;
    while audit_line.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
            if v["target"] == "audit" && v["fields"]["event"] == "token_issued" {
                audit_line = Some(v);
            }
        }
    }
    let v = audit_line.expect("an audit log line");
    assert_eq!(v["fields"]["outcome"], "failure");
    assert_eq!(v["fields"]["reason"], "invalid_client");
    assert_eq!(v["fields"]["client_id"], "nobody");
    assert!(line_has_request_id(&v, "audit-probe-1"), "{v}");

    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "clean exit after SIGTERM: {st:?}");
            break;
        }
        assert!(Instant::now() < deadline, "still running 20 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("\"stopped\"")), "{rest:?}");
}

#[tokio::test]
async fn healthcheck_fails_when_nothing_listens() {
    let out = sesame_cmd().args(["healthcheck", "--url", "http://127.0.0.1:1/healthz"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

async fn readyz_fails_without_database(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    app.state.db.close().await;
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    // Liveness does not depend on the database.
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

/// The request id sits on the line's request span.
fn line_has_request_id(v: &serde_json::Value, id: &str) -> bool {
    v.to_string().contains(id)
}
