//! Optional OpenTelemetry traces: with `[tracing] otlp_endpoint` set, the
//! real `sesame serve` sends each request's span, with its request id, to an
//! OTLP/HTTP receiver (here a real HTTP server in the test), and flushes what
//! is batched when SIGTERM stops it. Off by default: nothing is sent.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

use crate::support::process::serve;
use crate::support::{Backend, TestDb};

/// An OTLP/HTTP receiver: every body posted to /v1/traces.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            keep.lock().unwrap().push(String::from_utf8_lossy(&body).to_string());
            async { "{}" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

// Multi-threaded: the receiver keeps answering while the test waits for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_go_to_the_otlp_endpoint() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let (url, got) = receiver().await;
    let mut server = serve(&db, &[("SESAME_TRACING__OTLP_ENDPOINT", &url)]);
    let base = format!("http://{}", server.addr);
    let r = reqwest::Client::new()
        .get(format!("{base}/.well-known/openid-configuration"))
        .header("x-request-id", "trace-me-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(server.terminate().success());
    let bodies = got.lock().unwrap().join("\n");
    assert!(bodies.contains("trace-me-4711"), "the request id is an attribute of the span: {bodies}");
    assert!(bodies.contains("/.well-known/openid-configuration"), "the route template too");
    assert!(bodies.contains("\"sesame\""), "service.name");

    // Off by default.
    let (url, got) = receiver().await;
    let mut server = serve(&db, &[]);
    reqwest::get(format!("http://{}/healthz", server.addr)).await.unwrap();
    assert!(server.terminate().success());
    assert!(got.lock().unwrap().is_empty(), "nothing sent to {url}");
}
