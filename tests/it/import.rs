//! `sesame user import` with what Auth0 hands out: a bulk export of a few
//! hundred users and the password-hash export (bcrypt, made here at a low
//! cost), merged; the imported users sign in with their old passwords, keep
//! their Auth0 ids as `sub`, and their hashes become argon2id.

use serde_json::json;

use crate::authorize::{CB, VERIFIER, auth};
use crate::backend_tests;
use crate::flow::decode_payload;
use crate::support::browser::{Browser, location, params};
use crate::support::{TestApp, TestDb, add_client, stdout_json};

backend_tests!(
    auth0_export_imports_signs_in_and_upgrades,
    unverified_records_never_merge,
    a_stored_hash_asking_for_unbounded_work_is_never_computed,
);

const N: usize = 300;

async fn auth0_export_imports_signs_in_and_upgrades(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut export = String::new();
    let mut hashes = String::new();
    for i in 0..N {
        let oid = format!("5f{i:022x}");
        let u = json!({
            "user_id": format!("auth0|{oid}"), "email": format!("user{i}@example.com"), "email_verified": true,
            "name": format!("User {i}"), "created_at": "2024-03-01T10:00:00.000Z",
            "identities": [{ "provider": "auth0", "user_id": oid, "connection": "Username-Password-Authentication", "isSocial": false }],
        });
        export.push_str(&format!("{u}\n"));
        // Only a few real hashes keep the test fast; the rest share one.
        let hash = if i < 3 {
            bcrypt::hash(format!("password number {i}"), 4).unwrap()
        } else {
            "$2b$04$K4Lm7ZL0WcQm7Rz5fS0HMeB9gaqJk1A2Z0y5kZ8mZq9zA6b0C5Rm.".into()
        };
        let h = json!({ "_id": { "$oid": oid }, "email": format!("user{i}@example.com"), "email_verified": true,
            "passwordHash": hash, "connection": "Username-Password-Authentication" });
        hashes.push_str(&format!("{h}\n"));
    }
    let social = json!({ "user_id": "google-oauth2|1098", "email": "g@example.com", "email_verified": true, "name": "G",
        "identities": [{ "provider": "google-oauth2", "user_id": "1098", "connection": "google-oauth2", "isSocial": true }] });
    export.push_str(&format!("{social}\n"));
    export.push_str(&format!("{}\n", json!({ "user_id": "auth0|bad", "email": "not an email" })));
    let custom = json!([{ "email": "md5@example.com", "custom_password_hash": { "algorithm": "md5", "hash": { "value": "5f4dcc3b5aa765d61d8327deb882cf99" } } }]);
    let (e, h, c) = (dir.path().join("export.json"), dir.path().join("hashes.json"), dir.path().join("custom.json"));
    std::fs::write(&e, export).unwrap();
    std::fs::write(&h, hashes).unwrap();
    std::fs::write(&c, custom.to_string()).unwrap();
    let files = [e.to_str().unwrap(), h.to_str().unwrap(), c.to_str().unwrap()];
    let import = |extra: &[&str]| {
        let mut args = vec!["--json", "user", "import", "--keep-ids", "--map-connection", "google-oauth2=google"];
        args.extend_from_slice(&files);
        args.extend_from_slice(extra);
        stdout_json(&db.sesame(&args))
    };

    // A dry run says what would happen and writes nothing.
    let r = import(&["--dry-run"]);
    assert_eq!(r["created"], N + 1);
    assert_eq!(r["dry_run"], true);
    let app = TestApp::spawn(&db, |_| {}).await;
    assert!(sesame::storage::users::list(&app.state.db, 10, 0).await.unwrap().is_empty());

    let r = import(&[]);
    assert_eq!(r["created"], N + 1, "{r}");
    assert_eq!(r["identities_linked"], 1);
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{r}");
    assert!(skipped.iter().any(|s| s["reason"].as_str().unwrap().contains("not an email")));
    assert!(skipped.iter().any(|s| s["reason"].as_str().unwrap().contains("neither bcrypt nor argon2")));
    let g = sesame::storage::identities::find(&app.state.db, "google", "1098").await.unwrap().unwrap();
    assert_eq!(g.user_id, "google-oauth2|1098");

    // An imported user signs in with the old password; the sub is Auth0's id.
    add_client(&app, "spa", true, true, CB, None, &["authorization_code"]).await;
    let b = Browser::new(&app.base_url);
    let back = b.authorize_with_login(&auth("spa", ""), "user1@example.com", "password number 1").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", &params(&back)["code"]),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ];
    let tok: serde_json::Value =
        reqwest::Client::new().post(app.url("/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let oid1 = format!("auth0|5f{:022x}", 1);
    assert_eq!(decode_payload(tok["id_token"].as_str().unwrap())["sub"], oid1.as_str());
    let u = sesame::storage::users::find_by_id(&app.state.db, &oid1).await.unwrap().unwrap();
    assert!(u.password_hash.as_deref().unwrap().starts_with("$argon2id$"), "upgraded at sign-in");
    // A wrong password still fails against a bcrypt hash.
    let r = b.get(&auth("spa", "&prompt=login")).await;
    let page = b.follow(r).await;
    let html = page.text().await.unwrap();
    let r = b.submit_login(&html, "user2@example.com", "not the password").await;
    assert_eq!(r.status(), 401);
    assert!(location(&r).is_empty());

    // A re-run changes nothing, duplicates nobody, and keeps the upgraded hash.
    let r = import(&[]);
    assert_eq!((r["created"].as_u64(), r["updated"].as_u64()), (Some(0), Some(0)), "{r}");
    let all = sesame::storage::users::list(&app.state.db, 10_000, 0).await.unwrap();
    assert_eq!(all.len(), N + 1);
    let u = sesame::storage::users::find_by_id(&app.state.db, &oid1).await.unwrap().unwrap();
    assert!(u.password_hash.as_deref().unwrap().starts_with("$argon2id$"));
}

/// Records merge into an account only by id, or by an address verified on
/// both sides; two Auth0 users with one address stay apart; hashes asking
/// for unbounded work are refused. The dry run reports the same.
async fn unverified_records_never_merge(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let owner = crate::support::add_user(&app, "owner@example.com", "the owner's own password").await;
    crate::support::add_claim(&app, "claimed", "claimed@example.com").await;
    let stranger = bcrypt::hash("the stranger's password", 4).unwrap();
    let lines = [
        // Unverified in the file, verified in Sesame: not merged, no hash installed.
        json!({"user_id": "auth0|a1", "email": "owner@example.com", "email_verified": false, "passwordHash": stranger}),
        // Verified in the file, unverified in Sesame: not merged either.
        json!({"user_id": "auth0|a2", "email": "claimed@example.com", "email_verified": true, "passwordHash": stranger}),
        // Two Auth0 users with one address: the first is created, the second reported.
        json!({"user_id": "auth0|b1", "email": "twice@example.com", "email_verified": true}),
        json!({"user_id": "auth0|b2", "email": "twice@example.com", "email_verified": true, "passwordHash": stranger}),
        // Unbounded work.
        json!({"user_id": "auth0|c1", "email": "slow@example.com", "email_verified": true,
               "passwordHash": "$argon2id$v=19$m=19456,t=4294967295,p=1$c29tZXNhbHRzb21lc2FsdA$dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q"}),
        json!({"user_id": "auth0|c2", "email": "slow2@example.com", "email_verified": true,
               "passwordHash": "$2b$31$abcdefghijklmnopqrstuuJ1aX9l3J5E7O0G8s0g6bAqk6y0uJb2C"}),
    ];
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("export.json");
    std::fs::write(&f, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["--json", "user", "import", f.to_str().unwrap()];
        args.extend_from_slice(extra);
        stdout_json(&db.sesame(&args))
    };
    let check = |r: &serde_json::Value| {
        let skipped = r["skipped"].as_array().unwrap();
        let reason = |who: &str| {
            skipped
                .iter()
                .filter(|s| s["user"] == who)
                .map(|s| s["reason"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert!(reason("owner@example.com")[0].contains("the record's address is not verified"), "{r}");
        assert!(reason("claimed@example.com")[0].contains("the account's address is not verified"), "{r}");
        assert!(reason("twice@example.com")[0].contains("never merged into one"), "{r}");
        assert!(reason("slow@example.com")[0].contains("too much work"), "{r}");
        assert!(reason("slow2@example.com")[0].contains("cost 31"), "{r}");
        assert_eq!(r["created"], 1, "only the first twice@: {r}");
        assert_eq!(r["updated"], 0, "{r}");
    };
    check(&run(&["--dry-run"]));
    check(&run(&[]));
    let o = sesame::storage::users::find_by_id(&app.state.db, &owner).await.unwrap().unwrap();
    assert!(o.password_hash.as_deref().unwrap().starts_with("$argon2id$"), "the owner's hash stays");
    let claimed = sesame::storage::users::find_by_id(&app.state.db, "claimed").await.unwrap().unwrap();
    assert_eq!(claimed.password_hash, None, "no hash installed on an unverified claim");
    let twice = sesame::storage::users::find_by_email(&app.state.db, "twice@example.com").await.unwrap().unwrap();
    assert_eq!(twice.password_hash, None, "the second user's hash is not on the first's account");
}

/// A hash that slipped in before the import checked its parameters (or was
/// written to the database by hand) asks for unbounded work: the sign-in is
/// refused at once, as a wrong password, and nothing is computed.
async fn a_stored_hash_asking_for_unbounded_work_is_never_computed(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    add_client(&app, "spa", true, true, CB, None, &["authorization_code"]).await;
    let hashes = [
        (
            "argon@example.com",
            "$argon2id$v=19$m=19456,t=4294967295,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
        ),
        (
            "wide@example.com",
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
        ),
        ("bcrypt@example.com", "$2b$31$abcdefghijklmnopqrstuu5OkYhO2dm8yC2Jk7mcZ9l5s4E2vQ0r6"),
    ];
    for (email, hash) in hashes {
        let now = app.state.clock.now();
        let u = sesame::domain::User {
            user_id: uuid::Uuid::new_v4().to_string(),
            email: Some(email.into()),
            email_verified: true,
            name: None,
            picture: None,
            password_hash: Some(hash.into()),
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        sesame::storage::users::insert(&app.state.db, &u).await.unwrap();
        let b = Browser::new(&app.base_url);
        let page = b.follow(b.get(&auth("spa", "")).await).await;
        let html = page.text().await.unwrap();
        let started = std::time::Instant::now();
        let r = b.submit_login(&html, email, "any password at all").await;
        assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED, "{email}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{email}: refused, not computed");
        assert!(!location(&r).contains("code="), "no code");
    }
    app.stop().await;
}
