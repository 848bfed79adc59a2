//! Test support: a fresh database per test on either backend, the real server
//! on a random port, and the real `sesame` binary for CLI tests.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

use sesame::app;
use sesame::config::{Config, Secret};
use sesame::domain::Clock;
use sesame::state::AppState;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn name(db: TestDb)` once per backend, as
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(db) = $crate::support::TestDb::new($crate::support::Backend::Sqlite).await {
                    super::$name(db).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::support::TestDb::new($crate::support::Backend::Postgres).await {
                    super::$name(db).await
                }
            }
        }
    )*};
}

/// A database of its own for one test: a temp SQLite file, or a fresh Postgres
/// database that is dropped when the test ends.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0").unwrap_or(false)
}

impl TestDb {
    /// `None` means "skip": Postgres is unreachable outside CI. In CI that panics.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}/sesame.db", dir.path().display());
                Some(TestDb { backend, url, dir, pg: None })
            }
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = postgres_admin_url();
                let conn = sqlx::AnyPool::connect(&admin).await;
                let pool = match conn {
                    Ok(p) => p,
                    Err(e) if !in_ci() => {
                        eprintln!("skipping Postgres test: {admin} unreachable ({e})");
                        return None;
                    }
                    Err(e) => panic!("Postgres at {admin} is unreachable in CI: {e}"),
                };
                let name = format!("sesame_t_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                let mut url = url::Url::parse(&admin).expect("admin url");
                url.set_path(&name);
                Some(TestDb { backend, url: url.to_string(), dir, pg: Some((admin, name)) })
            }
        }
    }

    /// A config pointing at this database, with a fixed master key.
    pub fn config(&self) -> Config {
        Config {
            database_url: self.url.clone(),
            master_key: Secret::new(MASTER_KEY),
            log_level: "warn".into(),
            ..Config::default()
        }
    }

    /// Runs the real `sesame` binary against this database.
    pub fn sesame(&self, args: &[&str]) -> Output {
        self.sesame_with(args, &[], None)
    }

    pub fn sesame_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut cmd = sesame_cmd();
        cmd.env("SESAME_DATABASE_URL", &self.url).env("SESAME_MASTER_KEY", MASTER_KEY);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args);
        run_with_stdin(cmd, stdin)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside any async context we can rely on: use a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// The `sesame` binary with no inherited `SESAME_*` variables.
pub fn sesame_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesame"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SESAME_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

pub fn run_with_stdin(mut cmd: Command, stdin: Option<&str>) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn sesame");
    if let (Some(mut pipe), Some(s)) = (child.stdin.take(), stdin) {
        pipe.write_all(s.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for sesame")
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "sesame failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The real server, in-process, on a random port.
pub struct TestApp {
    pub base_url: String,
    pub state: AppState,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Boots the server on `db`. The issuer defaults to the server's own address
    /// (`{base}` in an issuer set by `f` is replaced by it).
    pub async fn spawn(db: &TestDb, f: impl FnOnce(&mut Config)) -> TestApp {
        Self::try_spawn(db, f).await.expect("server starts")
    }

    pub async fn try_spawn(db: &TestDb, f: impl FnOnce(&mut Config)) -> anyhow::Result<TestApp> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let mut cfg = db.config();
        cfg.issuer = base_url.clone();
        f(&mut cfg);
        // `{localhost}`: the same address by host name (a WebAuthn relying party).
        cfg.issuer =
            cfg.issuer.replace("{base}", &base_url).replace("{localhost}", &base_url.replace("127.0.0.1", "localhost"));
        cfg.validate()?;
        let state = AppState::init(cfg, Clock::system()).await?;
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build()?;
        Ok(TestApp { base_url, state, http, shutdown: Some(tx), handle: Some(handle) })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self.http.get(self.url(path)).send().await.expect("request");
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.expect("json body")
    }

    /// Stops the server and waits until it has finished.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub mod browser;
pub mod dpop;
pub mod fake_idp;
pub mod process;
pub mod smtp;

/// Registers a client directly in storage; returns its secret for confidential ones.
pub async fn add_client(
    app: &TestApp,
    id: &str,
    public: bool,
    first_party: bool,
    redirect: &str,
    alg: Option<sesame::config::SigningAlg>,
    grants: &[&str],
) -> Option<String> {
    let spec = sesame::clients::ClientSpec {
        client_id: Some(id.into()),
        name: format!("App {id}"),
        public,
        first_party,
        redirect_uris: vec![redirect.into()],
        grant_types: grants.iter().map(|s| s.to_string()).collect(),
        id_token_alg: alg,
        ..Default::default()
    };
    let mut c = sesame::clients::validate(spec, false, app.state.clock.now()).unwrap().client;
    let secret = (!public).then(sesame::clients::new_secret);
    c.secret_hash = secret.as_deref().map(sesame::crypto::random::sha256_hex);
    sesame::storage::clients::insert(&app.state.db, &c).await.unwrap();
    secret
}

/// Creates a user with a password; returns the user id.
pub async fn add_user(app: &TestApp, email: &str, password: &str) -> String {
    let now = app.state.clock.now();
    let u = sesame::domain::User {
        user_id: uuid::Uuid::new_v4().to_string(),
        email: Some(email.into()),
        email_verified: true,
        name: Some("Alice Example".into()),
        picture: None,
        password_hash: Some(sesame::crypto::password::hash(password.into()).await.unwrap()),
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    sesame::storage::users::insert(&app.state.db, &u).await.unwrap();
    u.user_id
}

/// An account that only claims `email`: unverified, no password (as a
/// stranger's unfinished sign-up leaves it).
pub async fn add_claim(app: &TestApp, user_id: &str, email: &str) {
    let u = sesame::domain::User {
        user_id: user_id.into(),
        email: Some(email.into()),
        email_verified: false,
        name: None,
        picture: None,
        password_hash: None,
        disabled: false,
        created_at: 0,
        updated_at: 0,
    };
    sesame::storage::users::insert(&app.state.db, &u).await.unwrap();
}
