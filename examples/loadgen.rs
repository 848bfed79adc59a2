//! Load generator for `bench/run.sh`: drives a running Sesame over HTTP with a
//! fixed number of concurrent workers for a fixed time and prints one JSON line
//! (requests/s, p50/p99 latency, errors) per scenario.
//!
//!   loadgen --base URL --scenario cc|refresh|refresh-dpop|prompt-none|login [--concurrency N] [--secs S]
//!
//! Credentials come from the environment: BENCH_CLIENT_ID / BENCH_CLIENT_SECRET
//! (client_credentials), BENCH_SPA_ID (a public first-party client whose
//! redirect URI is BENCH_REDIRECT), BENCH_EMAIL / BENCH_PASSWORD (a user).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::Value;

const VERIFIER: &str = "dBjftJeZ4CVP-mJ0kVJcw7H5E9Mx3NNqz3V4z5dvrQ8";
const CHALLENGE: &str = "YKetmHAM6Hn_tWaLz7xEZXbtjbPF-XsZ62oXMgQvSsI";

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"))
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

fn client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).expect("hidden field") + needle.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

fn authorize_url(base: &str, extra: &str) -> String {
    let redirect: String = url::form_urlencoded::byte_serialize(env("BENCH_REDIRECT").as_bytes()).collect();
    format!(
        "{base}/authorize?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid%20email&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        env("BENCH_SPA_ID")
    )
}

fn code_of(loc: &str) -> Option<String> {
    let u = url::Url::parse(loc).ok()?;
    u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned())
}

/// Resolves a Location header against the server's URL.
fn abs(base: &str, loc: &str) -> Option<String> {
    Some(url::Url::parse(base).ok()?.join(loc).ok()?.to_string())
}

/// Signs in through the login box with `http` (which keeps the cookie) and returns a code.
async fn login(http: &reqwest::Client, base: &str) -> Option<String> {
    let r = http.get(authorize_url(base, "")).send().await.ok()?;
    let page = http.get(abs(base, &location(&r))?).send().await.ok()?.text().await.ok()?;
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("req", hidden(&page, "req")),
        ("email", env("BENCH_EMAIL")),
        ("password", env("BENCH_PASSWORD")),
    ];
    let r = http.post(format!("{base}/login")).form(&form).send().await.ok()?;
    if r.status() != 303 {
        return None;
    }
    let r = http.get(abs(base, &location(&r))?).send().await.ok()?;
    code_of(&location(&r))
}

async fn exchange(http: &reqwest::Client, base: &str, code: &str) -> Option<Value> {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", &env("BENCH_SPA_ID")),
        ("code", code),
        ("redirect_uri", &env("BENCH_REDIRECT")),
        ("code_verifier", VERIFIER),
    ];
    let r = http.post(format!("{base}/token")).form(&form).send().await.ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

/// A DPoP key (ES256, as browsers make them) and its proofs for `url`.
struct DpopKey(p256::ecdsa::SigningKey, Value);

impl DpopKey {
    fn new() -> DpopKey {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let p = key.verifying_key().to_encoded_point(false);
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64.encode(p.x().unwrap()), "y": b64.encode(p.y().unwrap())});
        DpopKey(key, jwk)
    }

    fn proof(&self, url: &str) -> String {
        use base64::Engine;
        use p256::ecdsa::signature::Signer;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let head = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.1});
        let claims =
            serde_json::json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": "POST", "htu": url, "iat": now});
        let input = format!("{}.{}", b64.encode(head.to_string()), b64.encode(claims.to_string()));
        let sig: p256::ecdsa::Signature = self.0.sign(input.as_bytes());
        format!("{input}.{}", b64.encode(sig.to_bytes()))
    }
}

/// One worker's loop state.
enum Worker {
    Cc(reqwest::Client),
    /// Rotation; with a key, of a DPoP-bound family (a proof per request).
    Refresh(reqwest::Client, String, Option<DpopKey>),
    PromptNone(reqwest::Client),
    Login,
}

impl Worker {
    async fn setup(scenario: &str, base: &str) -> Worker {
        match scenario {
            "cc" => Worker::Cc(client(false)),
            "refresh" => {
                let http = client(true);
                let code = login(&http, base).await.expect("login for refresh setup");
                let tok = exchange(&http, base, &code).await.expect("exchange");
                Worker::Refresh(client(false), tok["refresh_token"].as_str().expect("refresh token").to_string(), None)
            }
            "refresh-dpop" => {
                let http = client(true);
                let code = login(&http, base).await.expect("login for refresh setup");
                let key = DpopKey::new();
                let form = [
                    ("grant_type", "authorization_code"),
                    ("client_id", &env("BENCH_SPA_ID")),
                    ("code", &code),
                    ("redirect_uri", &env("BENCH_REDIRECT")),
                    ("code_verifier", VERIFIER),
                ];
                let r = http.post(format!("{base}/token")).header("DPoP", key.proof(&format!("{base}/token")));
                let tok: Value = r.form(&form).send().await.unwrap().json().await.unwrap();
                assert_eq!(tok["token_type"], "DPoP", "{tok}");
                Worker::Refresh(client(false), tok["refresh_token"].as_str().expect("refresh token").into(), Some(key))
            }
            "prompt-none" => {
                let http = client(true);
                login(&http, base).await.expect("login for prompt=none setup");
                Worker::PromptNone(http)
            }
            "login" => Worker::Login,
            s => panic!("unknown scenario {s}"),
        }
    }

    /// One unit of work; true when it succeeded.
    async fn step(&mut self, base: &str) -> bool {
        match self {
            Worker::Cc(http) => {
                let r = http
                    .post(format!("{base}/token"))
                    .basic_auth(env("BENCH_CLIENT_ID"), Some(env("BENCH_CLIENT_SECRET")))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
            Worker::Refresh(http, rt, key) => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", &env("BENCH_SPA_ID")),
                    ("refresh_token", rt.as_str()),
                ];
                let mut req = http.post(format!("{base}/token")).form(&form);
                if let Some(k) = key {
                    req = req.header("DPoP", k.proof(&format!("{base}/token")));
                }
                let Ok(r) = req.send().await else {
                    return false;
                };
                if r.status() != 200 {
                    return false;
                }
                match r.json::<Value>().await {
                    Ok(v) => {
                        *rt = v["refresh_token"].as_str().unwrap_or_default().to_string();
                        true
                    }
                    Err(_) => false,
                }
            }
            Worker::PromptNone(http) => {
                let Ok(r) = http.get(authorize_url(base, "&prompt=none")).send().await else {
                    return false;
                };
                r.status() == 302 && code_of(&location(&r)).is_some()
            }
            Worker::Login => {
                let http = client(true);
                match login(&http, base).await {
                    Some(code) => exchange(&http, base, &code).await.is_some(),
                    None => false,
                }
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = arg(&args, "--base", "http://127.0.0.1:8080");
    let scenario = arg(&args, "--scenario", "cc");
    let concurrency: usize = arg(&args, "--concurrency", "32").parse().unwrap();
    let secs: u64 = arg(&args, "--secs", "10").parse().unwrap();

    let mut workers = Vec::new();
    for _ in 0..concurrency {
        workers.push(Worker::setup(&scenario, &base).await);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for mut w in workers {
        let base = base.clone();
        set.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                if w.step(&base).await {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for (lat, e) in set.join_all().await {
        all.extend(lat);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0.0);
    let out = serde_json::json!({
        "scenario": scenario,
        "concurrency": concurrency,
        "ok": all.len(),
        "errors": errors,
        "rps": (all.len() as f64 / elapsed).round(),
        "p50_ms": (pct(0.50) * 100.0).round() / 100.0,
        "p99_ms": (pct(0.99) * 100.0).round() / 100.0,
    });
    println!("{out}");
}
