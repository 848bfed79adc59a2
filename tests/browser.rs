//! Runs the browser suite (`tests/browser`): the real `sesame` binary behind
//! an HTTPS front, driven in headless Chromium through auth0-spa-js, auth0-js
//! and oidc-client-ts; a second Sesame as an upstream provider; Auth0's Express
//! SDK (express-openid-connect). Once on SQLite, once on Postgres, one after the other
//! (two Chromiums on two cores would only slow both down).
//!
//! Needs Debian's `chromium` and Node.js; the npm packages are installed from
//! the committed lockfile on first run. Outside CI a missing browser or
//! Postgres skips with a message; under `CI=true` it fails.

#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn in_ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0").unwrap_or(false)
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn skip_or_fail(why: &str) -> bool {
    assert!(!in_ci(), "{why}");
    eprintln!("skipping the browser suite: {why}");
    false
}

/// Chromium, node and the npm packages are there (installing the packages if needed).
fn ready() -> bool {
    if !Path::new("/usr/bin/chromium").exists() {
        return skip_or_fail("/usr/bin/chromium is missing (apt-get install chromium)");
    }
    if Command::new("node").arg("--version").output().is_err() {
        return skip_or_fail("node is missing (apt-get install nodejs npm)");
    }
    let dir = suite_dir();
    let lock = std::fs::metadata(dir.join("package-lock.json")).and_then(|m| m.modified()).ok();
    let installed = std::fs::metadata(dir.join("node_modules/.package-lock.json")).and_then(|m| m.modified()).ok();
    if installed.is_none() || installed < lock {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return skip_or_fail("`npm ci` in tests/browser failed");
        }
    }
    true
}

fn postgres_reachable() -> bool {
    let admin = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    Command::new("psql").args([admin.as_str(), "-qAtc", "SELECT 1"]).output().is_ok_and(|o| o.status.success())
}

fn run(backend: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !ready() {
        return;
    }
    if backend == "postgres" && !postgres_reachable() && !skip_or_fail("Postgres is unreachable") {
        return;
    }
    let mut files = vec!["sso.test.mjs", "federation.test.mjs", "mfa.test.mjs", "sdks.test.mjs"];
    // The Express SDK and the console's pages do not depend on the backend
    // (the console's storage is tested on both in tests/it/console.rs): once is enough.
    if backend == "sqlite" {
        files.push("express.test.mjs");
        files.push("console.test.mjs");
    }
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(&files)
        .current_dir(suite_dir())
        .env("BROWSER_TEST_SESAME_BIN", env!("CARGO_BIN_EXE_sesame"))
        .env("BROWSER_TEST_BACKEND", backend)
        .status()
        .expect("running node");
    assert!(status.success(), "the browser suite failed on {backend}");
}

#[test]
fn browser_suite_sqlite() {
    run("sqlite");
}

#[test]
fn browser_suite_postgres() {
    run("postgres");
}
