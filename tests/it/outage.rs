//! The database going away (Postgres): Sesame answers fast and correctly
//! instead of hanging or 500ing, and recovers without a restart. Sesame is
//! pointed at a TCP proxy inside the test, which is cut both ways: refusing
//! connections, and silently dropping traffic (a black hole).

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::authorize::{CB, auth};
use crate::logout::tokens;
use crate::support::browser::{Browser, location, params};
use crate::support::{Backend, TestApp, TestDb, add_client, add_user};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Existing connections are closed, new ones closed at once.
    Refuse,
    /// Nothing is answered: bytes are read and dropped, connections stay open.
    BlackHole,
}

struct Proxy {
    addr: std::net::SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, rx) = watch::channel(Mode::Pass);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let rx = rx.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move { relay(client, upstream, rx).await });
            }
        });
        Proxy { addr, mode }
    }

    fn set(&self, m: Mode) {
        self.mode.send_replace(m);
    }
}

async fn relay(mut client: TcpStream, upstream: String, mut rx: watch::Receiver<Mode>) {
    let now = *rx.borrow_and_update();
    match now {
        Mode::Refuse => return,
        Mode::BlackHole => return swallow(client).await,
        Mode::Pass => {}
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let (mut a, mut b) = (vec![0u8; 16384], vec![0u8; 16384]);
    loop {
        tokio::select! {
            _ = rx.changed() => {
                let m = *rx.borrow_and_update();
                match m {
                    Mode::Pass => continue,
                    Mode::Refuse => return,
                    Mode::BlackHole => break,
                }
            }
            n = cr.read(&mut a) => match n { Ok(0) | Err(_) => return, Ok(n) => if sw.write_all(&a[..n]).await.is_err() { return } },
            n = sr.read(&mut b) => match n { Ok(0) | Err(_) => return, Ok(n) => if cw.write_all(&b[..n]).await.is_err() { return } },
        }
    }
    drop(server);
    swallow(client).await;
}

/// Reads and drops everything, answering nothing, until the peer gives up.
async fn swallow(mut s: TcpStream) {
    let mut buf = vec![0u8; 16384];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let v = f.await;
    (v, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_503_within_a_second_and_recovers() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    let mut url = url::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let proxied = url.to_string();
    let app = TestApp::spawn(&db, |c| c.database_url = proxied).await;
    let spa_secret = add_client(&app, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    assert!(spa_secret.is_none());
    add_user(&app, "alice@example.com", "correct horse battery").await;
    let b = Browser::new(&app.base_url);
    let mut rt = tokens(&app, &b, "openid").await["refresh_token"].as_str().unwrap().to_string();

    for mode in [Mode::Refuse, Mode::BlackHole] {
        proxy.set(mode);
        // /token: 503 temporarily_unavailable as JSON, within about a second.
        let form = [("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt.as_str())];
        let (r, took) = timed(reqwest::Client::new().post(app.url("/token")).form(&form).send()).await;
        let r = r.unwrap();
        assert_eq!(r.status(), 503, "{mode:?}");
        assert!(r.headers().contains_key("retry-after"));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "temporarily_unavailable", "{mode:?}: {v}");
        assert!(took < Duration::from_millis(2500), "{mode:?}: /token took {took:?}");
        // /readyz: 503 within a second or so.
        let (r, took) = timed(reqwest::Client::new().get(app.url("/readyz")).send()).await;
        assert_eq!(r.unwrap().status(), 503, "{mode:?}");
        assert!(took < Duration::from_millis(2500), "{mode:?}: /readyz took {took:?}");
        // /authorize for a known client: the error goes back through the response mode.
        let (r, took) = timed(b.get(&auth("spa", ""))).await;
        assert_eq!(r.status(), 302, "{mode:?}");
        let back = url::Url::parse(&location(&r)).unwrap();
        assert!(back.as_str().starts_with(CB));
        assert_eq!(params(&back)["error"], "temporarily_unavailable", "{mode:?}");
        assert!(took < Duration::from_millis(2500), "{mode:?}: /authorize took {took:?}");
        // An unknown client cannot be validated: a 503 page, never a redirect.
        let r = b.get(&auth("nobody", "")).await;
        assert_eq!(r.status(), 503, "{mode:?}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        // Back up: everything works again without a restart.
        proxy.set(Mode::Pass);
        let mut ok = false;
        for _ in 0..20 {
            if reqwest::get(app.url("/readyz")).await.unwrap().status() == 200 {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(ok, "{mode:?}: ready again");
        let r = reqwest::Client::new().post(app.url("/token")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 200, "{mode:?}: the refresh token was not spent by the outage");
        let v: Value = r.json().await.unwrap();
        // Rotation: the next round uses the successor.
        rt = v["refresh_token"].as_str().unwrap().to_string();
    }
}
