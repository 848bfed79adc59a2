//! Configuration: file + environment, one-line errors with exit code 2, the
//! development master key, static clients, masked secrets.

use std::io::Write;

use crate::backend_tests;
use crate::support::{Backend, MASTER_KEY, TestApp, TestDb, run_with_stdin, sesame_cmd, stdout_json};

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = sesame_cmd();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_stdin(cmd, None)
}

/// Asserts exit code 2 and a single stderr line containing every needle.
fn assert_config_error(out: &std::process::Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

async fn sqlite_url() -> (TestDb, String) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let url = db.url.clone();
    (db, url)
}

#[tokio::test]
async fn unknown_key_in_file_is_named() {
    let (db, url) = sqlite_url().await;
    let path = db.dir.path().join("sesame.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "isuer = \"https://auth.example.com\"").unwrap();
    let out = run(&["--config", path.to_str().unwrap(), "serve"], &[("SESAME_DATABASE_URL", &url)]);
    assert_config_error(&out, &["unknown key `isuer`", "sesame.toml"]);
}

/// Kubernetes injects `SESAME_PORT=tcp://…` and friends for a Service named
/// `sesame`: unknown variables are warnings naming them, never fatal.
#[tokio::test]
async fn unknown_env_variables_are_warnings() {
    let env = [
        ("SESAME_PORT", "tcp://10.0.0.1:8080"),
        ("SESAME_SERVICE_HOST", "10.0.0.1"),
        ("SESAME_PORT_8080_TCP_PROTO", "tcp"),
        ("SESAME_KEYS__BOGUS", "1"),
        ("SESAME_ISUER", "https://typo.example.com"),
    ];
    let out = run(&["--json", "check-config"], &env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for var in ["SESAME_PORT ", "SESAME_SERVICE_HOST", "SESAME_PORT_8080_TCP_PROTO", "SESAME_KEYS__BOGUS"] {
        assert!(err.contains(var), "warning names {var}: {err}");
    }
    assert!(err.contains("did you mean SESAME_ISSUER?"), "{err}");
    assert_eq!(stdout_json(&out)["issuer"], "http://localhost:8080", "the typo is not applied");
    // The server starts too.
    let (db, url) = sqlite_url().await;
    let mut cmd = sesame_cmd();
    cmd.args(["serve"]).env("SESAME_DATABASE_URL", &url).env("SESAME_LISTEN", "127.0.0.1:0");
    cmd.env("SESAME_PORT", "tcp://10.0.0.1:8080").env("SESAME_MASTER_KEY", MASTER_KEY);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(child.try_wait().unwrap().is_none(), "serve keeps running with SESAME_PORT set");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("SESAME_PORT is not a Sesame setting"));
    drop(db);
}

#[tokio::test]
async fn unknown_key_in_file_stays_an_error_and_leeway_is_bounded() {
    let (db, url) = sqlite_url().await;
    let path = db.dir.path().join("sesame.toml");
    std::fs::write(&path, "[tokens]\nrefresh_reuse_grace_secs = 61\n").unwrap();
    let out = run(&["--config", path.to_str().unwrap(), "check-config"], &[("SESAME_DATABASE_URL", &url)]);
    assert_config_error(&out, &["tokens.refresh_reuse_grace_secs"]);
    std::fs::write(&path, "[[clients]]\nclient_id = \"a\"\nrefresh_leeway_secs = 90\n").unwrap();
    let out = run(&["--config", path.to_str().unwrap(), "check-config"], &[("SESAME_DATABASE_URL", &url)]);
    assert_config_error(&out, &["refresh_leeway_secs"]);
}

#[tokio::test]
async fn malformed_values_are_named() {
    assert_config_error(&run(&["serve"], &[("SESAME_LISTEN", "nope")]), &["SESAME_LISTEN", "nope"]);
    assert_config_error(&run(&["serve"], &[("SESAME_ISSUER", "ftp://x")]), &["SESAME_ISSUER"]);
    let bad = [("SESAME_METRICS__LISTEN", "everywhere")];
    assert_config_error(&run(&["serve"], &bad), &["SESAME_METRICS__LISTEN", "everywhere"]);
    let bad = [("SESAME_TRACING__OTLP_ENDPOINT", "collector:4318")];
    assert_config_error(&run(&["serve"], &bad), &["SESAME_TRACING__OTLP_ENDPOINT"]);
    assert_config_error(
        &run(&["serve"], &[("SESAME_ISSUER", "https://a.example.com/?q=1")]),
        &["SESAME_ISSUER", "query"],
    );
    assert_config_error(&run(&["serve"], &[("SESAME_MASTER_KEY", "c2hvcnQ=")]), &["SESAME_MASTER_KEY", "32 bytes"]);
    assert_config_error(
        &run(&["serve"], &[("SESAME_DATABASE__MAX_CONNECTIONS", "lots")]),
        &["database.max_connections"],
    );
    assert_config_error(&run(&["serve"], &[("SESAME_DATABASE_URL", "mysql://x")]), &["SESAME_DATABASE_URL"]);
    assert_config_error(&run(&["serve"], &[("SESAME_LOG_FORMAT", "xml")]), &["log_format"]);
    assert_config_error(&run(&["--config", "/nonexistent/sesame.toml", "serve"], &[]), &["does not exist"]);
}

#[tokio::test]
async fn unreachable_database_is_one_line() {
    let out = run(
        &["serve"],
        &[("SESAME_DATABASE_URL", "postgres://postgres:pw@127.0.0.1:1/nothing"), ("SESAME_MASTER_KEY", MASTER_KEY)],
    );
    assert_config_error(&out, &["cannot open database", "127.0.0.1:1"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(":pw@"), "password redacted");
}

#[tokio::test]
async fn public_issuer_requires_master_key() {
    let (_db, url) = sqlite_url().await;
    let out = run(&["serve"], &[("SESAME_DATABASE_URL", &url), ("SESAME_ISSUER", "https://auth.example.com")]);
    assert_config_error(&out, &["SESAME_MASTER_KEY is required"]);
}

#[tokio::test]
async fn loopback_issuer_generates_private_dev_key_file() {
    let (db, url) = sqlite_url().await;
    let out = run(&["keys", "rotate", "--alg", "EdDSA", "--json"], &[("SESAME_DATABASE_URL", &url)]);
    stdout_json(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("development master key"));
    let key_file = db.dir.path().join("master.key");
    let meta = std::fs::metadata(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    assert!(meta.len() >= 44);
    // The same file is used again, so the keys open on the next run.
    stdout_json(&run(&["keys", "rotate", "--alg", "EdDSA", "--json"], &[("SESAME_DATABASE_URL", &url)]));
    let list = stdout_json(&run(&["keys", "list", "--json"], &[("SESAME_DATABASE_URL", &url)]));
    assert_eq!(list.as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn check_config_masks_secrets_and_reads_file() {
    let (db, url) = sqlite_url().await;
    let path = db.dir.path().join("sesame.toml");
    std::fs::write(&path, "issuer = \"https://auth.example.com/\"\n[tokens]\naccess_token_ttl_secs = 600\n").unwrap();
    let out = run(
        &["--config", path.to_str().unwrap(), "check-config", "--json"],
        &[("SESAME_DATABASE_URL", &url), ("SESAME_MASTER_KEY", MASTER_KEY), ("SESAME_LISTEN", "0.0.0.0:9000")],
    );
    let cfg = stdout_json(&out);
    assert_eq!(cfg["issuer"], "https://auth.example.com/");
    assert_eq!(cfg["listen"], "0.0.0.0:9000", "env overrides file");
    assert_eq!(cfg["tokens"]["access_token_ttl_secs"], 600);
    assert_eq!(cfg["master_key"], "***");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(MASTER_KEY));
}

backend_tests!(static_clients_from_config);

async fn static_clients_from_config(db: TestDb) {
    let static_client = |id: &str| sesame::config::StaticClient {
        secret: sesame::config::Secret::new("a-static-secret-of-enough-length"),
        secret_sha256: String::new(),
        spec: sesame::config::ClientSpec {
            client_id: Some(id.into()),
            name: "Dashboard".into(),
            redirect_uris: vec!["https://dash.example.com/cb".into()],
            ..Default::default()
        },
    };
    let app = TestApp::spawn(&db, |c| c.clients = vec![static_client("dash"), static_client("ops")]).await;
    let list = stdout_json(&db.sesame(&["client", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list.as_array().unwrap().iter().all(|c| c["source"] == "config"));
    let c = sesame::storage::clients::find(&app.state.db, "dash").await.unwrap().unwrap();
    assert_eq!(c.secret_hash.unwrap(), sesame::crypto::random::sha256_hex("a-static-secret-of-enough-length"));

    // The CLI refuses to edit what the config file owns.
    let out = db.sesame(&["client", "remove", "dash"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config file"));
    app.stop().await;

    // Dropping a client from the config removes it on the next start.
    let app = TestApp::spawn(&db, |c| c.clients = vec![static_client("dash")]).await;
    assert!(sesame::storage::clients::find(&app.state.db, "ops").await.unwrap().is_none());
    assert!(sesame::storage::clients::find(&app.state.db, "dash").await.unwrap().is_some());

    // A static client with an invalid redirect URI stops the server with a clear message.
    let mut bad = static_client("bad");
    bad.spec.redirect_uris = vec!["not a uri".into()];
    let err = TestApp::try_spawn(&db, |c| c.clients = vec![bad]).await.err().unwrap();
    assert!(format!("{err:#}").contains("clients `bad`"), "{err:#}");
}

#[tokio::test]
async fn example_config_is_complete_and_valid() {
    // The documented example must load as-is (unknown keys would be refused).
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sesame.example.toml");
    let out = run(&["--config", path, "check-config", "--json"], &[]);
    let cfg = stdout_json(&out);
    // Every table of the effective config appears in the example.
    let text = std::fs::read_to_string(path).unwrap();
    for (k, v) in cfg.as_object().unwrap() {
        assert!(
            text.contains(&format!("{k} =")) || text.contains(&format!("[{k}]")) || text.contains(&format!("[[{k}]]")),
            "{k} undocumented"
        );
        if let Some(table) = v.as_object() {
            for key in table.keys() {
                assert!(
                    text.contains(&format!("{key} =")) || text.contains(&format!("# {key} =")),
                    "{k}.{key} undocumented"
                );
            }
        }
    }
}

#[tokio::test]
async fn check_config_masks_passwords_in_database_url_queries() {
    let url = "postgres://sesame:userinfo-pw@127.0.0.1:5432/db?sslmode=disable&password=hunter2";
    let out = run(&["check-config"], &[("SESAME_DATABASE_URL", url)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("hunter2") && !text.contains("userinfo-pw"), "{text}");
    assert!(text.contains("sslmode=disable"), "{text}");
}
