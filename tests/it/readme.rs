//! README's first sign-in, run as written: its shell blocks, in order, against
//! a real `sesame serve` on SQLite (as on a fresh checkout), with the one step
//! a person does in a browser (signing in at the printed URL) done by the
//! test's cookie-keeping client. Needs bash, curl, jq and openssl, as the
//! README does.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::browser::{Browser, hidden, location, params};
use crate::support::process::{free_port, serve};
use crate::support::{Backend, MASTER_KEY, TestDb};

/// The fenced `sh` blocks of README's section `heading`.
fn blocks(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find(&format!("\n## {heading}")).unwrap_or_else(|| panic!("README has no `## {heading}`"));
    let section = &readme[start + 4..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section.split("```sh\n").skip(1).map(|b| b[..b.find("```").unwrap()].to_string()).collect()
}

/// Runs `script` with bash (errors stop it), in `dir`, with `env`; its stdout.
fn bash(script: &str, dir: &Path, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script]).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{script}\nfailed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn the_first_sign_in_runs_as_pasted() {
    if let Some(missing) = ["bash", "curl", "jq", "openssl"].into_iter().find(|t| !have(t)) {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(!ci, "{missing} is needed by README's first sign-in");
        eprintln!("skipped: {missing} is not installed");
        return;
    }
    let blocks = blocks("Your first sign-in, in five minutes");
    let port = free_port();
    let base = format!("http://localhost:{port}");
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let listen = format!("127.0.0.1:{port}");
    // No client cache: the second-factor section's change counts at once.
    let _server = serve(
        &db,
        &[("SESAME_ISSUER", &base), ("SESAME_LISTEN", &listen), ("SESAME_DATABASE__CLIENT_CACHE_SECS", "0")],
    );

    // Where README says the build put the binary, this test's build put it.
    let bin = Path::new(env!("CARGO_BIN_EXE_sesame")).parent().unwrap().to_string_lossy().to_string();
    let path_line = "export PATH=\"$PWD/target/release:$PATH\"";
    assert!(blocks.iter().any(|b| b.contains(path_line)), "README puts target/release on the path");
    let env = [
        ("SESAME_DATABASE_URL", db.url.clone()),
        ("SESAME_MASTER_KEY", MASTER_KEY.to_string()),
        ("SESAME_ISSUER", base.clone()),
        ("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())),
    ];
    let as_here = |b: &str| b.replace("localhost:8080", &format!("localhost:{port}")).replace(path_line, "true");
    let work = tempfile::tempdir().unwrap();

    // Up to the browser: register, make the PKCE pair, print the URL. What
    // the shell remembers (VERIFIER) is kept for the blocks after it.
    let code_block =
        blocks.iter().position(|b| b.contains("CODE='paste the code here'")).expect("a block that takes the code");
    let before: Vec<String> = blocks[..code_block].iter().map(|b| as_here(b)).collect();
    let out = bash(&format!("{}\ndeclare -p VERIFIER > .shell", before.join("\n")), work.path(), &env);
    let url = out.lines().last().unwrap().trim().to_string();
    assert!(url.starts_with(&format!("{base}/authorize?")), "{out}");

    // The browser: README's user, README's password.
    let all = blocks.join("\n");
    let add = all.lines().find(|l| l.contains("sesame user add")).unwrap();
    let password = add.split('\'').nth(1).unwrap();
    let email = add.split("--email ").nth(1).unwrap().split(' ').next().unwrap();
    let back = Browser::new(&base).authorize_with_login(&url, email, password).await;
    assert!(back.as_str().starts_with("http://localhost:3000/callback?"), "{back}");
    let code = params(&back)["code"].clone();

    // The exchange and the claims, as pasted (with the code copied in).
    let exchange = as_here(&blocks[code_block]).replace("'paste the code here'", &format!("'{code}'"));
    let claims = as_here(&blocks[code_block + 1]);
    let out = bash(&format!(". ./.shell\n{exchange}\n{claims}"), work.path(), &env);
    let mut printed = serde_json::Deserializer::from_str(&out).into_iter::<Value>().map(Result::unwrap);
    let (tokens, claims) = (printed.next().unwrap(), printed.next().unwrap());
    for t in ["access_token", "id_token", "refresh_token"] {
        assert!(tokens[t].is_string(), "{t} in {tokens}");
    }
    assert_eq!(claims["iss"], base.as_str());
    assert_eq!(claims["aud"], "demo");
    assert_eq!(claims["email"], email);
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()), "{claims}");

    // "Second factors and passkeys": the app requires one; the same URL in a
    // new browser enrols an authenticator app on the way.
    let mfa = self::blocks("Second factors and passkeys");
    bash(&as_here(&mfa[0]), work.path(), &env);
    let b = Browser::new(&base);
    let page = b.follow(b.get(&url).await).await;
    let html = page.text().await.unwrap();
    let page = b.follow(b.submit_login(&html, email, password).await).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Set up a second factor"), "{html}");
    let secret = html.split("<code id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let code = sesame::mfa::totp::code_at(&secret, now).unwrap();
    let (csrf, req) = (hidden(&html, "csrf"), hidden(&html, "req"));
    let codes =
        b.follow(b.post_form("/login/factor/enrol", &[("csrf", &csrf), ("req", &req), ("code", &code)]).await).await;
    assert_eq!(codes.text().await.unwrap().matches("<code>").count(), 10, "ten recovery codes");
    let back = b.get(&format!("/authorize/resume?req={req}")).await;
    let back = url::Url::parse(&location(&back)).unwrap();
    let code = params(&back)["code"].clone();
    let exchange = as_here(&blocks[code_block]).replace("'paste the code here'", &format!("'{code}'"));
    let out = bash(&format!(". ./.shell\n{exchange}\n{}", as_here(&blocks[code_block + 1])), work.path(), &env);
    let claims = serde_json::Deserializer::from_str(&out).into_iter::<Value>().map(Result::unwrap).nth(1).unwrap();
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "http://schemas.openid.net/pape/policies/2007/06/multi-factor");
    // The administrator's commands, as pasted.
    let out = bash(&as_here(&mfa[1]), work.path(), &env);
    assert!(out.contains("totp") && out.contains("mfa_enrolled"), "{out}");

    // "The admin console": the printed link makes an administrator, once.
    let console = self::blocks("The admin console");
    let out = bash(&as_here(&console[0]), work.path(), &env);
    let link = out.lines().find(|l| l.starts_with(&format!("{base}/admin/setup?token="))).expect("a link").to_string();
    let admin = Browser::new(&base);
    let html = admin.get(&link).await.text().await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf")),
        ("token", hidden(&html, "token")),
        ("email", "admin@example.com".to_string()),
        ("password", "a long admin password".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = admin.post_form("/admin/setup", &form).await;
    assert_eq!(location(&made), "/admin", "the administrator is made");
    let login = admin.follow(made).await.text().await.unwrap();
    let overview = admin.follow(admin.submit_login(&login, "admin@example.com", "a long admin password").await).await;
    assert_eq!(overview.status(), 200);
    assert!(overview.text().await.unwrap().contains("The last 24 hours"));
    assert_eq!(admin.get(&link).await.status(), 400, "the link works once");

    // "The management API, from a script", as pasted: nothing it uses is
    // made anywhere else.
    let api = self::blocks("The management API, from a script");
    let out = bash(&as_here(&api[0]), work.path(), &env);
    assert!(out.contains("\"identifier\": \"https://api.example.com\""), "the API: {out}");
    assert!(out.contains("\"name\": \"support\""), "the role: {out}");
    assert!(out.lines().any(|l| l.trim() == "204"), "the role given: {out}");
    let history = out.lines().filter(|l| l.ends_with(" success") || l.ends_with(" failure")).count();
    assert!(history >= 3, "the user's history, newest first: {out}");
    assert!(out.contains("\"sessions_ended\""), "the sessions ended: {out}");
}
