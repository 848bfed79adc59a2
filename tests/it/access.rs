//! APIs, permissions, roles, groups and per-application access, set up with
//! the `sesame` CLI as an operator would, then exercised through the real
//! endpoints: tokens for an API carry its `aud` and the user's permissions
//! there; a restricted client refuses users without its role; taking a role
//! away stops the next refresh.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authorize::{CB, VERIFIER, auth, urlencode};
use crate::backend_tests;
use crate::flow::decode_payload;
use crate::support::browser::{Browser, hidden, location, params};
use crate::support::{TestApp, TestDb, add_client, add_user, stdout_json};

const API: &str = "https://api.example.com";
const PW: &str = "correct horse battery";

backend_tests!(
    tokens_for_an_api_carry_the_users_permissions,
    restricted_clients_refuse_users_without_access,
    machine_clients_get_their_granted_permissions,
    the_cli_lists_and_refuses_what_does_not_exist,
);

fn cli(db: &TestDb, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    stdout_json(&db.sesame(&all))
}

/// An API, an admin role carrying two of its permissions through a `staff`
/// group, alice in it, bob in nothing; `spa` may ask for read and write.
async fn setup(db: &TestDb) -> TestApp {
    let app = TestApp::spawn(db, |c| c.database.client_cache_secs = 0).await;
    add_client(&app, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    add_client(&app, "dash", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    add_user(&app, "alice@example.com", PW).await;
    add_user(&app, "bob@example.com", PW).await;
    cli(
        db,
        &[
            "api",
            "add",
            "--identifier",
            API,
            "--name",
            "Example API",
            "--permission",
            "read:users",
            "write:users",
            "delete:users",
            "--token-ttl",
            "600",
            "--alg",
            "ES256",
        ],
    );
    cli(db, &["role", "add", "admin", "--api", API, "--permission", "read:users", "write:users"]);
    cli(db, &["group", "add", "staff"]);
    cli(db, &["group", "grant-role", "staff", "admin"]);
    cli(db, &["group", "add-member", "staff", "alice@example.com"]);
    cli(db, &["client", "update", "spa", "--api", API, "--permission", "read:users", "write:users"]);
    app
}

/// Opens `url` and signs in as `email` if the login box shows.
async fn code_for(b: &Browser, url: &str, email: &str) -> reqwest::Response {
    let r = b.follow(b.get(url).await).await;
    if r.status() == StatusCode::OK && r.url().path().ends_with("/login") {
        let html = r.text().await.unwrap();
        return b.follow(b.submit_login(&html, email, PW).await).await;
    }
    r
}

async fn redeem(app: &TestApp, client: &str, back: &reqwest::Response) -> Value {
    let p = params(&url::Url::parse(&location(back)).unwrap());
    let code = p.get("code").unwrap_or_else(|| panic!("no code: {p:?}"));
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ];
    reqwest::Client::new().post(app.url("/token")).form(&form).send().await.unwrap().json().await.unwrap()
}

async fn refresh(app: &TestApp, client: &str, rt: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("client_id", client), ("refresh_token", rt)];
    form.extend_from_slice(extra);
    let r = reqwest::Client::new().post(app.url("/token")).form(&form).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn tokens_for_an_api_carry_the_users_permissions(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let url = auth("spa", &format!("&audience={}", urlencode(API)))
        .replace("scope=openid%20email", "scope=openid%20email%20roles%20groups%20read:users%20delete:users");
    let back = code_for(&b, &url, "alice@example.com").await;
    let tok = redeem(&app, "spa", &back).await;
    let at = tok["access_token"].as_str().unwrap_or_else(|| panic!("{tok}"));
    let claims = decode_payload(at);
    assert_eq!(claims["aud"], API);
    // Requested and held: read. Held but not requested: write (in `permissions` only).
    // Requested but not held: delete.
    assert_eq!(tok["scope"], "openid email roles groups read:users");
    assert_eq!(claims["scope"], "openid email roles groups read:users");
    assert_eq!(claims["permissions"], json!(["read:users", "write:users"]));
    assert_eq!(claims["roles"], json!(["admin"]));
    assert_eq!(claims["groups"], json!(["staff"]));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600, "the API's lifetime");
    assert_eq!(tok["expires_in"], 600);
    assert_eq!(jsonwebtoken::decode_header(at).unwrap().alg, jsonwebtoken::Algorithm::ES256, "the API's algorithm");
    let id = decode_payload(tok["id_token"].as_str().unwrap());
    assert_eq!(id["roles"], json!(["admin"]));
    assert_eq!(id["aud"], "spa");

    // A refresh keeps the API, may not switch to another, and sees role changes.
    let rt = tok["refresh_token"].as_str().unwrap().to_string();
    let (st, body) = refresh(&app, "spa", &rt, &[("resource", "https://other.example.com")]).await;
    assert_eq!((st, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));
    let (st, body) = refresh(&app, "spa", &rt, &[("audience", API)]).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    cli(&db, &["role", "revoke", "admin", "--api", API, "--permission", "read:users"]);
    let (_, body) = refresh(&app, "spa", body["refresh_token"].as_str().unwrap(), &[]).await;
    let claims = decode_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["permissions"], json!(["write:users"]));
    assert_eq!(body["scope"], "openid email roles groups", "read:users no longer held");

    // Unknown API: invalid_target; an API this client was not granted: access_denied.
    let r = b.get(&format!("{}&audience={}", auth("spa", ""), urlencode("https://nope.example.com"))).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "invalid_target");
    let r = b.get(&format!("{}&audience={}", auth("dash", ""), urlencode(API))).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "access_denied");
    // A client setting puts roles and groups in tokens without the scope.
    cli(&db, &["client", "update", "spa", "--rbac-claims"]);
    let tok = redeem(&app, "spa", &b.follow(b.get(&auth("spa", "")).await).await).await;
    let id = decode_payload(tok["id_token"].as_str().unwrap());
    assert_eq!((id["roles"].clone(), id["groups"].clone()), (json!(["admin"]), json!(["staff"])));
    cli(&db, &["client", "update", "spa", "--no-rbac-claims"]);

    // A third-party client's consent page names the API's permissions in words.
    add_client(&app, "third", true, false, CB, None, &["authorization_code"]).await;
    cli(&db, &["client", "update", "third", "--api", API, "--permission", "read:users"]);
    let url = auth("third", &format!("&audience={}", urlencode(API)))
        .replace("scope=openid%20email", "scope=openid%20read:users");
    let page = b.follow(b.get(&url).await).await;
    assert!(page.url().path().ends_with("/consent"), "{}", page.url());
    let html = page.text().await.unwrap();
    assert!(html.contains("Read users on Example API"), "{html}");

    // Without an audience, tokens stay the client's own.
    let tok = redeem(&app, "spa", &b.follow(b.get(&auth("spa", "")).await).await).await;
    let claims = decode_payload(tok["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "spa");
    assert!(claims.get("permissions").is_none());
}

async fn restricted_clients_refuse_users_without_access(db: TestDb) {
    let app = setup(&db).await;
    cli(&db, &["client", "update", "dash", "--require-role", "admin"]);

    // Bob: the page says so, its button answers access_denied; no code.
    let bob = Browser::new(&app.base_url);
    let page = code_for(&bob, &auth("dash", ""), "bob@example.com").await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.url().path().ends_with("/no-access"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("You don&#39;t have access to App dash") || html.contains("You don't have access to App dash"),
        "{html}"
    );
    let r = bob.post_form("/no-access", &[("csrf", &hidden(&html, "csrf")), ("req", &hidden(&html, "req"))]).await;
    let p = params(&url::Url::parse(&location(&r)).unwrap());
    assert_eq!(p["error"], "access_denied");
    assert!(!p.contains_key("code"));
    // prompt=none: access_denied at once.
    let r = bob.get(&auth("dash", "&prompt=none")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "access_denied");
    // Bob's session is intact for the applications he may use.
    let r = bob.get(&auth("spa", "&prompt=none")).await;
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"));

    // Alice holds admin through her group: a code, then tokens.
    let alice = Browser::new(&app.base_url);
    let tok = redeem(&app, "dash", &code_for(&alice, &auth("dash", ""), "alice@example.com").await).await;
    let rt = tok["refresh_token"].as_str().unwrap_or_else(|| panic!("{tok}")).to_string();
    // Out of the group: the next refresh is refused, and so is silent authentication.
    cli(&db, &["group", "remove-member", "staff", "alice@example.com"]);
    let (st, body) = refresh(&app, "dash", &rt, &[]).await;
    assert_eq!((st, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let r = alice.get(&auth("dash", "&prompt=none")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "access_denied");
    // Given the role directly: in again. --no-access-restriction opens it to everyone.
    cli(&db, &["user", "grant-role", "alice@example.com", "admin"]);
    let r = alice.get(&auth("dash", "&prompt=none")).await;
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"));
    cli(&db, &["client", "update", "dash", "--no-access-restriction"]);
    let r = bob.get(&auth("dash", "&prompt=none")).await;
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"));

    // Sessions: listed, then ended (silent authentication fails afterwards).
    let list = cli(&db, &["user", "sessions", "bob@example.com"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let ended = cli(&db, &["user", "end-sessions", "bob@example.com"]);
    assert_eq!(ended["sessions_ended"], 1);
    let r = bob.get(&auth("spa", "&prompt=none")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "login_required");
}

async fn machine_clients_get_their_granted_permissions(db: TestDb) {
    let app = setup(&db).await;
    let secret = add_client(&app, "m2m", false, true, CB, None, &["client_credentials"]).await.unwrap();
    let token = |extra: Vec<(&'static str, String)>| {
        let app_url = app.url("/token");
        let secret = secret.clone();
        async move {
            let mut form = vec![("grant_type", "client_credentials".to_string())];
            form.extend(extra);
            let r =
                reqwest::Client::new().post(app_url).basic_auth("m2m", Some(secret)).form(&form).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    // Not granted yet.
    let (st, body) = token(vec![("audience", API.into())]).await;
    assert_eq!((st, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));
    cli(&db, &["client", "update", "m2m", "--api", API, "--permission", "read:users", "delete:users"]);
    let (st, body) = token(vec![("audience", API.into()), ("scope", "read:users write:users".into())]).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read:users", "the intersection with the client's grant");
    let claims = decode_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["permissions"], json!(["read:users"]));
    // No scope: everything granted. RFC 8707 `resource` works the same.
    let (_, body) = token(vec![("resource", API.into())]).await;
    assert_eq!(body["scope"], "read:users delete:users");
    // A default audience applies when the request names none.
    cli(&db, &["client", "update", "m2m", "--default-audience", API]);
    let (_, body) = token(vec![]).await;
    assert_eq!(decode_payload(body["access_token"].as_str().unwrap())["aud"], API);
    // Removing the API's permission takes it from the grant too.
    cli(&db, &["api", "update", API, "--permission", "read:users", "write:users"]);
    let (_, body) = token(vec![]).await;
    assert_eq!(body["scope"], "read:users");
}

async fn the_cli_lists_and_refuses_what_does_not_exist(db: TestDb) {
    let _app = setup(&db).await;
    let apis = cli(&db, &["api", "list"]);
    let api = apis.as_array().unwrap().iter().find(|a| a["identifier"] == API).unwrap();
    assert_eq!(api["token_ttl_secs"], 600);
    // The built-in management API is listed too.
    assert!(apis.as_array().unwrap().iter().any(|a| a["identifier"].as_str().unwrap().ends_with("/api/v1")));
    let roles = cli(&db, &["role", "list"]);
    assert_eq!(roles[0]["name"], "admin");
    assert_eq!(roles[0]["permissions"].as_array().unwrap().len(), 2);
    let alice = cli(&db, &["user", "show", "alice@example.com"]);
    assert_eq!((alice["roles"].clone(), alice["groups"].clone()), (json!(["admin"]), json!(["staff"])));
    let spa = cli(&db, &["client", "show", "spa"]);
    assert_eq!(spa["apis"], json!([{ "api": API, "permissions": ["read:users", "write:users"] }]));
    let groups = cli(&db, &["group", "list"]);
    assert_eq!(groups[0]["name"], "staff");
    assert_eq!(groups[0]["roles"], json!(["admin"]));
    assert_eq!(groups[0]["members"].as_array().unwrap().len(), 1);
    // A permission the API does not define, an unknown role, group or API.
    let out = db.sesame(&["role", "grant", "admin", "--api", API, "--permission", "fly:planes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("defines no permission `fly:planes`"));
    for args in [
        vec!["user", "grant-role", "alice@example.com", "nope"],
        vec!["group", "add-member", "nope", "alice@example.com"],
        vec!["client", "update", "spa", "--require-group", "nope"],
        vec!["api", "remove", "https://nope.example.com"],
    ] {
        assert_eq!(db.sesame(&args).status.code(), Some(1), "{args:?}");
    }
    // Removing the API removes it from roles and client grants.
    cli(&db, &["api", "remove", API]);
    let roles = cli(&db, &["role", "list"]);
    assert!(roles[0]["permissions"].as_array().unwrap().is_empty());
    cli(&db, &["role", "remove", "admin"]);
    cli(&db, &["group", "remove", "staff"]);
    assert!(cli(&db, &["group", "list"]).as_array().unwrap().is_empty());
}
