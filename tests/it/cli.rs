//! `sesame client`, `sesame user` and `sesame migrate` against the same database
//! the server uses, through the real binary.

use sesame::crypto::random::sha256_hex;

use crate::backend_tests;
use crate::support::{TestApp, TestDb, stdout_json};

backend_tests!(
    client_lifecycle,
    client_secret_from_stdin,
    client_rules,
    user_lifecycle,
    migrate_is_idempotent,
    commands_without_providers_need_no_provider_secrets,
);

/// A provider whose secret comes from a variable this shell does not have:
/// `sesame client add` (which never talks to a provider) works; `sesame
/// check-config` names the missing variable.
async fn commands_without_providers_need_no_provider_secrets(db: TestDb) {
    let file = db.dir.path().join("providers.toml");
    let toml = "[[providers]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\nclient_secret_env = \"SESAME_TEST_UNSET_SECRET\"\n";
    std::fs::write(&file, toml).unwrap();
    let path = file.display().to_string();
    assert!(db.sesame(&["migrate"]).status.success());
    let out = db.sesame(&[
        "--config",
        &path,
        "client",
        "add",
        "--name",
        "App",
        "--id",
        "app",
        "--public",
        "--redirect-uri",
        "http://localhost:3000/cb",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = db.sesame(&["--config", &path, "check-config"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SESAME_TEST_UNSET_SECRET"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn client_lifecycle(db: TestDb) {
    let out = db.sesame(&[
        "client",
        "add",
        "--name",
        "Games",
        "--id",
        "games",
        "--redirect-uri",
        "https://games.example.com/cb",
        "https://games.example.com/cb2",
        "--web-origin",
        "https://games.example.com",
        "--id-token-alg",
        "EdDSA",
        "--json",
    ]);
    let added = stdout_json(&out);
    assert_eq!(added["client_id"], "games");
    let secret = added["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 43, "256-bit secret");
    assert_eq!(added["token_endpoint_auth_method"], "client_secret_basic");
    assert!(added.get("secret_hash").is_none());

    // The server's repository sees exactly what the CLI wrote; only a SHA-256 of the secret is stored.
    let app = TestApp::spawn(&db, |_| {}).await;
    let c = sesame::storage::clients::find(&app.state.db, "games").await.unwrap().unwrap();
    assert_eq!(c.secret_hash.as_deref(), Some(sha256_hex(&secret).as_str()));
    assert_eq!(c.redirect_uris, ["https://games.example.com/cb", "https://games.example.com/cb2"]);
    assert_eq!(c.id_token_alg, Some(sesame::config::SigningAlg::EdDSA));

    let public = stdout_json(&db.sesame(&[
        "client",
        "add",
        "--name",
        "Store SPA",
        "--public",
        "--first-party",
        "--redirect-uri",
        "http://localhost:5173/cb",
        "--json",
    ]));
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["token_endpoint_auth_method"], "none");
    let spa_id = public["client_id"].as_str().unwrap().to_string();
    assert!(spa_id.len() >= 20, "generated ids are random");

    let list = stdout_json(&db.sesame(&["client", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);

    let updated = stdout_json(&db.sesame(&[
        "client",
        "update",
        "games",
        "--name",
        "Games!",
        "--redirect-uri",
        "https://games.example.com/new",
        "--frontchannel-logout-uri",
        "https://games.example.com/fc",
        "--json",
    ]));
    assert_eq!(updated["name"], "Games!");
    assert_eq!(updated["frontchannel_logout_uri"], "https://games.example.com/fc");
    assert_eq!(updated["redirect_uris"], serde_json::json!(["https://games.example.com/new"]));
    assert_eq!(updated["web_origins"], serde_json::json!(["https://games.example.com"]), "unnamed lists are kept");
    let c2 = sesame::storage::clients::find(&app.state.db, "games").await.unwrap().unwrap();
    assert_eq!(c2.secret_hash, c.secret_hash, "update keeps the secret");

    let rotated = stdout_json(&db.sesame(&["client", "update", "games", "--rotate-secret", "--json"]));
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let c3 = sesame::storage::clients::find(&app.state.db, "games").await.unwrap().unwrap();
    assert_eq!(c3.secret_hash.as_deref(), Some(sha256_hex(new_secret).as_str()));

    let shown = stdout_json(&db.sesame(&["client", "show", "games", "--json"]));
    assert_eq!(shown["name"], "Games!");
    assert!(shown.get("client_secret").is_none());

    let text = db.sesame(&["client", "show", "games"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("client_id: games"));
    assert!(String::from_utf8_lossy(&text.stdout).contains("frontchannel_logout_uri: https://games.example.com/fc"));

    stdout_json(&db.sesame(&["client", "remove", "games", "--json"]));
    let gone = db.sesame(&["client", "show", "games"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no client `games`"));
    assert!(sesame::storage::clients::find(&app.state.db, "games").await.unwrap().is_none());
}

async fn client_secret_from_stdin(db: TestDb) {
    let migrated = "an-existing-secret-from-another-provider";
    let out = db.sesame_with(
        &[
            "client",
            "add",
            "--name",
            "Legacy",
            "--id",
            "legacy",
            "--secret-stdin",
            "--redirect-uri",
            "https://l.example.com/cb",
            "--json",
        ],
        &[],
        Some(&format!("{migrated}\n")),
    );
    let added = stdout_json(&out);
    assert_eq!(added["client_secret"], migrated);
    let app = TestApp::spawn(&db, |_| {}).await;
    let c = sesame::storage::clients::find(&app.state.db, "legacy").await.unwrap().unwrap();
    assert_eq!(c.secret_hash.unwrap(), sha256_hex(migrated));
}

async fn client_rules(db: TestDb) {
    let https = [("SESAME_ISSUER", "https://auth.example.com")];
    let refused = |args: &[&str], env: &[(&str, &str)], needle: &str| {
        let out = db.sesame_with(args, env, None);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected `{needle}` in {err}");
        // Argument errors from clap add a usage hint; everything else is one line.
        if !err.starts_with("error: invalid value") {
            assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
        }
    };
    refused(&["client", "add", "--name", "A", "--redirect-uri", "http://app.example.com/cb"], &https, "plain http");
    refused(&["client", "add", "--name", "A", "--redirect-uri", "https://app.example.com/cb#frag"], &[], "fragment");
    refused(&["client", "add", "--name", "A", "--redirect-uri", "javascript:alert(1)"], &[], "not allowed");
    refused(&["client", "add", "--name", "A"], &[], "redirect-uri");
    // Access settings go through the access rules: an unknown role is refused
    // (not found) and leaves no client behind.
    let cb = "https://a.example.com/cb";
    let out =
        db.sesame(&["client", "add", "--name", "A", "--id", "gated", "--redirect-uri", cb, "--require-role", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(db.sesame(&["client", "show", "gated"]).status.code(), Some(1));
    refused(&["client", "add", "--name", "A", "--public", "--grant-type", "client_credentials"], &[], "confidential");
    refused(
        &["client", "add", "--name", "A", "--redirect-uri", "https://a.example.com/cb", "--grant-type", "password"],
        &[],
        "unknown grant type",
    );
    refused(
        &[
            "client",
            "add",
            "--name",
            "A",
            "--redirect-uri",
            "https://a.example.com/cb",
            "--web-origin",
            "https://a.example.com/",
        ],
        &[],
        "origin",
    );
    refused(
        &["client", "add", "--name", "A", "--redirect-uri", "https://a.example.com/cb", "--id-token-alg", "HS256"],
        &[],
        "HS256",
    );

    // Loopback http is fine with an https issuer; any http is accepted (with a warning) for a plain-http issuer.
    stdout_json(&db.sesame_with(
        &["client", "add", "--name", "L", "--redirect-uri", "http://127.0.0.1:9000/cb", "--json"],
        &https,
        None,
    ));
    let dev = db.sesame_with(
        &["client", "add", "--name", "D", "--redirect-uri", "http://app.internal/cb", "--json"],
        &[],
        None,
    );
    stdout_json(&dev);
    assert!(String::from_utf8_lossy(&dev.stderr).contains("warning"));

    // A machine client.
    let m =
        stdout_json(&db.sesame(&["client", "add", "--name", "Cron", "--grant-type", "client_credentials", "--json"]));
    assert_eq!(m["grant_types"], serde_json::json!(["client_credentials"]));

    // Duplicate ids are refused.
    stdout_json(&db.sesame(&[
        "client",
        "add",
        "--name",
        "X",
        "--id",
        "dup",
        "--grant-type",
        "client_credentials",
        "--json",
    ]));
    refused(
        &["client", "add", "--name", "X", "--id", "dup", "--grant-type", "client_credentials"],
        &[],
        "already exists",
    );

    // Refresh-token leeway: per client, at most 60 s; an API gateway may introspect any token.
    let cb = "https://a.example.com/cb";
    refused(&["client", "add", "--name", "T", "--redirect-uri", cb, "--refresh-leeway", "61"], &[], "at most 60");
    let t = stdout_json(&db.sesame(&[
        "client",
        "add",
        "--name",
        "Tabs",
        "--id",
        "tabs",
        "--redirect-uri",
        cb,
        "--refresh-leeway",
        "10",
        "--json",
    ]));
    assert_eq!((t["refresh_leeway_secs"].as_u64(), t["introspect_any"].as_bool()), (Some(10), Some(false)));
    let t =
        stdout_json(&db.sesame(&["client", "update", "tabs", "--refresh-leeway", "0", "--introspect-any", "--json"]));
    assert_eq!((t["refresh_leeway_secs"].as_u64(), t["introspect_any"].as_bool()), (Some(0), Some(true)));
    let t = stdout_json(&db.sesame(&["client", "update", "tabs", "--name", "Tabs 2", "--json"]));
    assert_eq!((t["refresh_leeway_secs"].as_u64(), t["introspect_any"].as_bool()), (Some(0), Some(true)), "kept");
    refused(&["client", "update", "tabs", "--refresh-leeway", "600"], &[], "at most 60");
}

async fn user_lifecycle(db: TestDb) {
    let out = db.sesame_with(
        &[
            "user",
            "add",
            "--email",
            "Alice@Example.com",
            "--password-stdin",
            "--name",
            "Alice",
            "--email-verified",
            "--json",
        ],
        &[],
        Some("correct horse battery\n"),
    );
    let alice = stdout_json(&out);
    let id = alice["user_id"].as_str().unwrap().to_string();
    assert_eq!(alice["email"], "Alice@Example.com");
    assert_eq!(alice["email_verified"], true);
    assert_eq!(alice["has_password"], true);
    assert!(alice.get("password_hash").is_none());

    // Email is unique case-insensitively.
    let dup = db.sesame(&["user", "add", "--email", "alice@EXAMPLE.com"]);
    assert_eq!(dup.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let app = TestApp::spawn(&db, |_| {}).await;
    let u = sesame::storage::users::find_by_email(&app.state.db, "ALICE@example.com").await.unwrap().unwrap();
    assert_eq!(u.user_id, id);
    let hash = u.password_hash.clone().unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(sesame::crypto::password::verify("correct horse battery".into(), hash.clone()).await);

    // Look-ups by id and by email.
    assert_eq!(stdout_json(&db.sesame(&["user", "show", &id, "--json"]))["email"], "Alice@Example.com");
    assert_eq!(stdout_json(&db.sesame(&["user", "show", "alice@example.com", "--json"]))["user_id"], id);

    stdout_json(&db.sesame(&[
        "user",
        "set-password",
        "alice@example.com",
        "--password",
        "a new long password",
        "--json",
    ]));
    let u2 = sesame::storage::users::find_by_id(&app.state.db, &id).await.unwrap().unwrap();
    assert!(sesame::crypto::password::verify("a new long password".into(), u2.password_hash.unwrap()).await);

    let short = db.sesame(&["user", "set-password", &id, "--password", "short"]);
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));

    assert_eq!(stdout_json(&db.sesame(&["user", "disable", &id, "--json"]))["disabled"], true);
    assert!(sesame::storage::users::find_by_id(&app.state.db, &id).await.unwrap().unwrap().disabled);
    assert_eq!(stdout_json(&db.sesame(&["user", "enable", &id, "--json"]))["disabled"], false);

    stdout_json(&db.sesame_with(&["user", "add", "--email", "bob@example.com", "--json"], &[], None));
    let list = stdout_json(&db.sesame(&["user", "list", "--json"]));
    let emails: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["Alice@Example.com", "bob@example.com"]);

    stdout_json(&db.sesame(&["user", "remove", &id, "--json"]));
    assert!(sesame::storage::users::find_by_id(&app.state.db, &id).await.unwrap().is_none());
    assert_eq!(db.sesame(&["user", "show", &id]).status.code(), Some(1));

    let bad = db.sesame(&["user", "add", "--email", "not-an-email"]);
    assert_eq!(bad.status.code(), Some(2));
}

async fn migrate_is_idempotent(db: TestDb) {
    // `--check` on a database never migrated: every migration would run, exit 1, nothing applied.
    for _ in 0..2 {
        let out = db.sesame(&["migrate", "--check"]);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("would apply 1 ") && text.lines().count() >= 7, "{text}");
    }
    for _ in 0..2 {
        let out = stdout_json(&db.sesame(&["migrate", "--json"]));
        assert_eq!(out["migrated"], true);
    }
    let out = db.sesame(&["migrate", "--check", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout_json(&out), serde_json::json!({ "pending": [] }));
    // The key listing works without the server having run.
    assert_eq!(stdout_json(&db.sesame(&["keys", "list", "--json"])), serde_json::json!([]));
}
