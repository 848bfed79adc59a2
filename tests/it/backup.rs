//! Backup and restore as docs/operations.md tells it: `pg_dump`/`pg_restore`
//! on Postgres, `sqlite3 .backup` on SQLite, and the same master key. A
//! restored Sesame publishes the same keys, verifies what was issued before,
//! rotates a refresh token issued before, and signs the user in; with another
//! master key it refuses to start and says why.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::authorize::{CB, VERIFIER, auth};
use crate::backend_tests;
use crate::support::browser::{Browser, params};
use crate::support::{Backend, TestApp, TestDb, add_client, add_user};

const PW: &str = "correct horse battery";

backend_tests!(a_backup_restores_with_the_master_key);

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn sqlite_file(db: &TestDb, name: &str) -> std::path::PathBuf {
    let main = sesame::config::sqlite_path(&db.url).unwrap();
    main.with_file_name(name)
}

/// Backs `from` up the documented way and restores it into the empty `to`.
fn backup_and_restore(from: &TestDb, to: &TestDb) {
    let dump = from.dir.path().join("backup");
    match from.backend {
        Backend::Postgres => {
            run(Command::new("pg_dump").args(["--format=custom", "--file"]).arg(&dump).arg(&from.url));
            run(Command::new("pg_restore").args(["--no-owner", "--dbname", &to.url]).arg(&dump));
        }
        Backend::Sqlite => {
            std::fs::create_dir_all(&dump).unwrap();
            for file in ["sesame.db", "sesame-audit.db"] {
                let copy = dump.join(file);
                let arg = format!(".backup '{}'", copy.display());
                run(Command::new("sqlite3").arg(sqlite_file(from, file)).arg(arg));
                std::fs::copy(&copy, sqlite_file(to, file)).unwrap();
            }
        }
    }
}

async fn a_backup_restores_with_the_master_key(db: TestDb) {
    let a = TestApp::spawn(&db, |_| {}).await;
    add_client(&a, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    add_user(&a, "alice@example.com", PW).await;
    let back = Browser::new(&a.base_url).authorize_with_login(&auth("spa", ""), "alice@example.com", PW).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", &params(&back)["code"]),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ];
    let tokens: Value =
        reqwest::Client::new().post(a.url("/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let jwks_before = a.get_json("/jwks").await;
    a.state.audit.flush().await;

    // Backed up while serving, restored into an empty database.
    let Some(restored) = TestDb::new(db.backend).await else { return };
    backup_and_restore(&db, &restored);
    let issuer = a.base_url.clone();
    a.stop().await;

    // Another master key opens nothing: the start fails and says why.
    let wrong = TestApp::try_spawn(&restored, |c| {
        c.issuer = issuer.clone();
        c.master_key = sesame::config::Secret::new("ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY");
    })
    .await;
    let err = format!("{:#}", wrong.err().expect("a start with another master key fails"));
    assert!(err.contains("master key"), "{err}");

    let b = TestApp::spawn(&restored, |c| c.issuer = issuer.clone()).await;
    assert_eq!(b.get_json("/jwks").await, jwks_before, "the same keys");
    let form = [("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", rt.as_str())];
    let r = reqwest::Client::new().post(b.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a refresh token from before the backup rotates");
    let back = Browser::new(&b.base_url).authorize_with_login(&auth("spa", ""), "alice@example.com", PW).await;
    assert!(params(&back).contains_key("code"));
    b.state.audit.flush().await;
    let out = restored.sesame(&["--json", "audit", "search", "--type", "login_success"]);
    let found = String::from_utf8_lossy(&out.stdout).matches("alice@example.com").count();
    assert!(found >= 2, "the audit log came along: {found} sign-ins");
    b.stop().await;
}
