//! The admin console end to end, over HTTP as a browser drives it: the
//! first-administrator link (once), who gets in (an administrator, read-only
//! support, nobody else), support's "why can't this user sign in?" (the
//! failed attempts with their reasons, block and unblock, a reset link, a
//! role, ending sessions), applications (a secret shown once, rotation), APIs,
//! roles, groups, keys and providers; every change an `admin_change` event
//! naming the administrator, and read back through `/api/v1`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::backend_tests;
use crate::management::token_for;
use crate::selfservice::{app_with_mail, audit};
use crate::support::browser::{Browser, hidden, location};
use crate::support::{TestApp, TestDb, add_user, stdout_json};

backend_tests!(
    first_admin_link_and_who_gets_in,
    support_answers_why_a_user_cannot_sign_in,
    apps_apis_roles_and_keys,
    the_console_can_require_a_second_factor,
    nobody_strips_or_locks_out_who_holds_more,
    a_logged_link_dies_with_the_first_administrator,
    replicas_starting_together_make_the_console_roles_once,
);

const PW: &str = "correct horse battery";

/// `sesame admin create-link` for `app`.
fn create_link(db: &TestDb, app: &TestApp) -> String {
    let out = db.sesame_with(&["--json", "admin", "create-link"], &[("SESAME_ISSUER", app.base_url.as_str())], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stdout_json(&out)["link"].as_str().unwrap().to_string()
}

/// Signs in to the console (the login box for `sesame-console`); the page.
pub async fn console(b: &Browser, email: &str) -> reqwest::Response {
    let first = b.get("/admin").await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert!(location(&first).contains("client_id=sesame-console"), "{}", location(&first));
    let login = b.follow(first).await;
    let html = login.text().await.unwrap();
    assert!(html.contains("Admin console"), "the console's client is named on the login box");
    b.follow(b.submit_login(&html, email, PW).await).await
}

async fn grant(db: &TestDb, app: &TestApp, email: &str, role: &str) {
    let out = db.sesame_with(&["user", "grant-role", email, role], &[("SESAME_ISSUER", app.base_url.as_str())], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn text(r: reqwest::Response) -> (StatusCode, String) {
    let s = r.status();
    (s, r.text().await.unwrap())
}

async fn first_admin_link_and_who_gets_in(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let link = create_link(&db, &app);
    assert!(link.starts_with(&format!("{}/admin/setup?token=", app.base_url)), "{link}");

    // The link's form creates the administrator; the console then signs in
    // through the login box like anybody else.
    let b = Browser::new(&app.base_url);
    let (st, html) = text(b.get(&link).await).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let form = |pw: &'static str| {
        vec![
            ("csrf", hidden(&html, "csrf")),
            ("token", hidden(&html, "token")),
            ("email", "root@example.com".to_string()),
            ("name", "Root".to_string()),
            ("password", pw.to_string()),
        ]
    };
    let short: Vec<(&str, String)> = form("short");
    let short: Vec<(&str, &str)> = short.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, page) = text(b.post_form("/admin/setup", &short).await).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a weak password is refused and the link kept: {page}");
    let good = form(PW);
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = b.post_form("/admin/setup", &good).await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&made), "/admin");
    // Once only.
    let (st, _) = text(b.get(&link).await).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "the link works once");
    let (st, _) = text(b.post_form("/admin/setup", &good).await).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "its form too");

    let (st, html) = text(console(&b, "root@example.com").await).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(html.contains("Overview") && html.contains("Active sessions"), "{html}");
    // The landing page offers the console to an administrator.
    let (_, home) = text(b.get("/").await).await;
    assert!(home.contains("id=\"home-console\"") && home.contains("id=\"home-account\""), "{home}");
    audit(&db, &["--type", "admin_change"], |e| {
        e.iter().any(|x| x["actor"] == "setup-link" && x["email"] == "root@example.com")
    })
    .await;

    // Someone without a console role signs in and is told so; `/` has no console link.
    add_user(&app, "eve@example.com", PW).await;
    let eve = Browser::new(&app.base_url);
    let (st, html) = text(console(&eve, "eve@example.com").await).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("No access to the console"));
    let (_, home) = text(eve.get("/").await).await;
    assert!(!home.contains("home-console"), "{home}");
    let (st, _) = text(eve.get("/admin/users").await).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // A form without its CSRF token changes nothing.
    let root_id =
        sesame::storage::users::find_by_email(&app.state.db, "root@example.com").await.unwrap().unwrap().user_id;
    let eve_id =
        sesame::storage::users::find_by_email(&app.state.db, "eve@example.com").await.unwrap().unwrap().user_id;
    let (st, _) = text(b.post_form(&format!("/admin/users/{eve_id}/block"), &[("csrf", "forged")]).await).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(!sesame::storage::users::find_by_id(&app.state.db, &eve_id).await.unwrap().unwrap().disabled);

    // Read-only support: sees the user, no write buttons, and a 403 for a write.
    grant(&db, &app, "eve@example.com", "sesame-support").await;
    let (st, html) = text(eve.get(&format!("/admin/users/{root_id}")).await).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(html.contains("root@example.com") && html.contains("History"), "support reads users and the log");
    assert!(
        !html.contains("id=\"block\"") && !html.contains("id=\"delete\"") && !html.contains("grant-role"),
        "{html}"
    );
    let csrf = hidden(&html, "csrf");
    let (st, html) = text(eve.post_form(&format!("/admin/users/{root_id}/block"), &[("csrf", &csrf)]).await).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("write:users"), "{html}");
    assert!(!sesame::storage::users::find_by_id(&app.state.db, &root_id).await.unwrap().unwrap().disabled);
    let (_, apps) = text(eve.get("/admin/apps").await).await;
    assert!(!apps.contains("id=\"new-app\""), "no write buttons for support: {apps}");
    app.stop().await;
}

async fn support_answers_why_a_user_cannot_sign_in(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |c| c.database.client_cache_secs = 0).await;
    let admin_id = add_user(&app, "root@example.com", PW).await;
    grant(&db, &app, "root@example.com", "sesame-admin").await;
    let carol = add_user(&app, "carol@example.com", PW).await;

    // Carol signs in once (a session), then fails with a wrong password.
    let c = Browser::new(&app.base_url);
    let (html, _) = crate::selfservice::login_box(&c).await;
    assert_eq!(c.submit_login(&html, "carol@example.com", PW).await.status(), StatusCode::SEE_OTHER);
    let other = Browser::new(&app.base_url);
    let (html, _) = crate::selfservice::login_box(&other).await;
    assert_eq!(
        other.submit_login(&html, "carol@example.com", "wrong password!").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Support finds her by part of her address, and her failed attempt with its reason.
    let b = Browser::new(&app.base_url);
    assert_eq!(console(&b, "root@example.com").await.status(), StatusCode::OK);
    let (_, list) = text(b.get("/admin/users?q=CAROL@example").await).await;
    assert!(list.contains(&format!("/admin/users/{carol}")), "{list}");
    let (_, none) = text(b.get("/admin/users?q=nobody-here").await).await;
    assert!(none.contains("No user matches"));
    audit(&db, &["--user", "carol@example.com", "--type", "login_failure"], |e| !e.is_empty()).await;
    let (st, page) = text(b.get(&format!("/admin/users/{carol}")).await).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        page.contains("</span> login_failure") && page.contains("wrong_password"),
        "the reason is on her page: {page}"
    );
    let (_, log) = text(b.get(&format!("/admin/log?user={carol}&type=login_failure&client=spa")).await).await;
    assert!(log.contains("wrong_password") && !log.contains("</span> login_success"), "{log}");
    let (_, log) = text(b.get(&format!("/admin/log?user={carol}&type=login_success")).await).await;
    assert!(log.contains("</span> login_success") && !log.contains("wrong_password"), "{log}");
    let (st, bad) = text(b.get("/admin/log?type=no_such_type").await).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad.contains("unknown event type"));
    let (st, _) = text(b.get("/admin/log?from=2026-13-45").await).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Live mode: only what is newer than the page's newest event.
    let (_, all) = text(b.get(&format!("/admin/log?user={carol}")).await).await;
    let newest: i64 = {
        let log = all;
        let i = log.find("data-id=\"").unwrap() + 9;
        log[i..i + log[i..].find('"').unwrap()].parse().unwrap()
    };
    let (st, feed) = text(b.get(&format!("/admin/log/feed?user={carol}&after={newest}")).await).await;
    assert_eq!(st, StatusCode::OK);
    assert!(!feed.contains("data-id"), "nothing new yet: {feed}");

    // Block: her session ends at once and she cannot sign in; unblock; a reset link.
    let csrf = hidden(&page, "csrf");
    let r = b.post_form(&format!("/admin/users/{carol}/block"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", location(&r));
    assert!(location(&r).contains("done=blocked"));
    let again = c.get(&crate::authorize::auth("spa", "&prompt=none")).await;
    assert!(location(&again).contains("error=login_required"), "her session ended: {}", location(&again));
    let (_, page) = text(b.get(&format!("/admin/users/{carol}")).await).await;
    assert!(page.contains("id=\"blocked\"") && page.contains("id=\"no-sessions\""), "{page}");
    // Read back through the management API: the same service changed it.
    let token = token_for(&app, &db, "reader", &["read:users"]).await;
    let u: Value = app
        .http
        .get(app.url(&format!("/api/v1/users/{carol}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u["disabled"], true, "{u}");
    let (_, feed) = text(b.get(&format!("/admin/log/feed?user={carol}&after={newest}")).await).await;
    assert!(feed.contains("admin_change") && feed.contains("session_ended"), "the live feed shows the block: {feed}");
    b.post_form(&format!("/admin/users/{carol}/unblock"), &[("csrf", &csrf)]).await;
    let r = b.post_form(&format!("/admin/users/{carol}/reset-link"), &[("csrf", &csrf)]).await;
    assert!(location(&r).contains("done=reset-link"));
    let mail = sink.nth("carol@example.com", 1).await;
    assert!(mail.link("/reset-password").is_some(), "a reset link was mailed");

    // A role: granted in the console, on her page and in the API's view of the role.
    let (_, roles) = text(b.get("/admin/roles").await).await;
    assert!(roles.contains("sesame-admin") && roles.contains("sesame-support"));
    let r = b.post_form("/admin/roles", &[("csrf", &csrf), ("name", "billing")]).await;
    assert!(location(&r).contains("/admin/roles/billing"), "{}", location(&r));
    let r = b.post_form(&format!("/admin/users/{carol}/grant-role"), &[("csrf", &csrf), ("role", "billing")]).await;
    assert!(location(&r).contains("done=role-granted"));
    let (_, page) = text(b.get(&format!("/admin/users/{carol}")).await).await;
    assert!(page.contains("/admin/roles/billing"), "{page}");
    let (_, role) = text(b.get("/admin/roles/billing").await).await;
    assert!(role.contains("carol@example.com"), "who holds it: {role}");
    // Every change names the administrator and is in Carol's history.
    let events = audit(&db, &["--type", "admin_change", "--user", &carol], |e| e.len() >= 4).await;
    assert!(events.iter().all(|e| e["actor"] == format!("user:{admin_id}")), "{events:?}");
    let ops: Vec<&str> = events.iter().filter_map(|e| e["details"]["operation"].as_str()).collect();
    let (_, log) = text(b.get(&format!("/admin/log?user={carol}&type=admin_change")).await).await;
    assert!(
        log.contains("by root@example.com") && log.contains("<strong>block</strong>"),
        "named, with the operation: {log}"
    );
    for op in ["block", "unblock", "reset link", "grant role"] {
        assert!(ops.contains(&op), "{op} in {ops:?}");
    }

    // Ending sessions: one, then all.
    let (html, _) = crate::selfservice::login_box(&c).await;
    c.follow(c.submit_login(&html, "carol@example.com", PW).await).await;
    let (_, page) = text(b.get(&format!("/admin/users/{carol}")).await).await;
    let sid = hidden(&page, "sid");
    let r = b.post_form(&format!("/admin/users/{carol}/end-session"), &[("csrf", &csrf), ("sid", &sid)]).await;
    assert!(location(&r).contains("done=session"));
    let again = c.get(&crate::authorize::auth("spa", "&prompt=none")).await;
    assert!(location(&again).contains("error=login_required"), "{}", location(&again));

    // Deleting needs the address typed.
    let (st, _) =
        text(b.post_form(&format!("/admin/users/{carol}/delete"), &[("csrf", &csrf), ("confirm", "x")]).await).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let r = b
        .post_form(&format!("/admin/users/{carol}/delete"), &[("csrf", &csrf), ("confirm", "carol@example.com")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(sesame::storage::users::find_by_id(&app.state.db, &carol).await.unwrap().is_none());
    app.stop().await;
}

async fn apps_apis_roles_and_keys(db: TestDb) {
    let app = TestApp::spawn(&db, |c| {
        c.database.client_cache_secs = 0;
        c.clients.push(sesame::config::StaticClient {
            spec: sesame::clients::ClientSpec {
                client_id: Some("from-file".into()),
                name: "From the file".into(),
                public: true,
                redirect_uris: vec!["http://localhost:3000/cb".into()],
                grant_types: vec!["authorization_code".into()],
                token_endpoint_auth_method: Some("none".into()),
                ..Default::default()
            },
            ..Default::default()
        });
    })
    .await;
    add_user(&app, "root@example.com", PW).await;
    grant(&db, &app, "root@example.com", "sesame-admin").await;
    let b = Browser::new(&app.base_url);
    assert_eq!(console(&b, "root@example.com").await.status(), StatusCode::OK);
    let (_, html) = text(b.get("/admin/keys").await).await;
    let csrf = hidden(&html, "csrf");

    // An API, then an application that may call it: the secret is shown once.
    let r = b
        .post_form(
            "/admin/apis",
            &[
                ("csrf", &csrf),
                ("name", "Orders"),
                ("identifier", "https://orders.example.com"),
                ("permissions", "read:orders write:orders"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", location(&r));
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "Billing worker"),
        ("client_id", "billing-worker"),
        ("kind", "confidential"),
        ("grant_types", "client_credentials"),
        ("grant_api", "https://orders.example.com"),
        ("grant_permissions", "read:orders"),
    ];
    let (st, shown) = text(b.post_form("/admin/apps", &form).await).await;
    assert_eq!(st, StatusCode::CREATED, "{shown}");
    let secret = {
        let i = shown.find("id=\"secret\">").unwrap() + 12;
        shown[i..i + shown[i..].find('<').unwrap()].to_string()
    };
    let cc = |s: String| {
        let http = app.http.clone();
        let url = app.url("/token");
        async move {
            http.post(url)
                .basic_auth("billing-worker", Some(s))
                .form(&[("grant_type", "client_credentials"), ("audience", "https://orders.example.com")])
                .send()
                .await
                .unwrap()
        }
    };
    let t = cc(secret.clone()).await;
    assert_eq!(t.status(), StatusCode::OK, "the shown secret works");
    let body: Value = t.json().await.unwrap();
    let claims = crate::flow::decode_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["permissions"], serde_json::json!(["read:orders"]), "{claims}");
    let (_, page) = text(b.get("/admin/apps/billing-worker").await).await;
    assert!(!page.contains(&secret), "never shown again");
    assert!(page.contains("id=\"app-apis\"") && page.contains("read:orders"), "{page}");
    // Rotation: the old secret stops working, the new one works.
    let (st, shown) = text(b.post_form("/admin/apps/billing-worker/rotate-secret", &[("csrf", &csrf)]).await).await;
    assert_eq!(st, StatusCode::OK);
    let fresh = {
        let i = shown.find("id=\"secret\">").unwrap() + 12;
        shown[i..i + shown[i..].find('<').unwrap()].to_string()
    };
    assert_eq!(cc(secret).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(cc(fresh).await.status(), StatusCode::OK);
    // Settings change through the same service as PATCH /api/v1/clients.
    let save = [
        ("csrf", csrf.as_str()),
        ("name", "Billing worker 2"),
        ("grant_types", "client_credentials"),
        ("require_roles", "billing"),
    ];
    let (st, refused) = text(b.post_form("/admin/apps/billing-worker", &save).await).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "a role that does not exist is refused: {refused}");
    let save = [("csrf", csrf.as_str()), ("name", "Billing worker 2"), ("grant_types", "client_credentials")];
    let r = b.post_form("/admin/apps/billing-worker", &save).await;
    assert!(location(&r).contains("done=saved"), "{}", location(&r));
    let token = token_for(&app, &db, "reader", &["read:clients"]).await;
    let c: Value = app
        .http
        .get(app.url("/api/v1/clients/billing-worker"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["name"], "Billing worker 2", "{c}");
    // A client from the config file is read-only, saying why.
    let (_, page) = text(b.get("/admin/apps/from-file").await).await;
    assert!(page.contains("id=\"read-only\"") && page.contains("<fieldset disabled>"), "{page}");
    let (st, _) = text(b.post_form("/admin/apps/from-file", &[("csrf", &csrf), ("name", "x")]).await).await;
    assert_eq!(st, StatusCode::CONFLICT);
    // An API taken away: its tokens are refused from then on.
    let form = [("csrf", csrf.as_str()), ("api", "https://orders.example.com")];
    let r = b.post_form("/admin/apps/billing-worker/remove-api", &form).await;
    assert!(location(&r).contains("done=saved"), "{}", location(&r));
    let c: Value = app
        .http
        .get(app.url("/api/v1/clients/billing-worker"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["apis"], serde_json::json!([]), "{c}");
    // Deleting needs the id typed.
    let r = b.post_form("/admin/apps/billing-worker/delete", &[("csrf", &csrf), ("confirm", "billing-worker")]).await;
    assert!(location(&r).contains("/admin/apps"), "{}", location(&r));

    // Groups, APIs, providers and keys pages.
    let r = b.post_form("/admin/groups", &[("csrf", &csrf), ("name", "staff")]).await;
    assert!(location(&r).contains("/admin/groups/staff"));
    let r = b
        .post_form("/admin/groups/staff", &[("csrf", &csrf), ("do", "add-member"), ("member", "root@example.com")])
        .await;
    assert!(location(&r).contains("done=saved"), "{}", location(&r));
    let (_, g) = text(b.get("/admin/groups/staff").await).await;
    assert!(g.contains("root@example.com"));
    let (_, api) = text(b.get("/admin/api?id=https%3A%2F%2Forders.example.com").await).await;
    assert!(api.contains("read:orders write:orders"), "{api}");
    let (st, _) = text(
        b.get(&format!("/admin/api?id={}", crate::authorize::urlencode(&format!("{}/api/v1", app.base_url)))).await,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "the management API is shown, fixed");
    assert_eq!(b.get("/admin/providers").await.status(), StatusCode::OK);
    let (_, keys) = text(b.get("/admin/keys").await).await;
    let before = keys.matches("<tr><td><code>").count();
    let r = b.post_form("/admin/keys", &[("csrf", &csrf)]).await;
    assert!(location(&r).contains("done="), "{}", location(&r));
    let (_, keys) = text(b.get("/admin/keys").await).await;
    assert!(keys.matches("<tr><td><code>").count() > before, "{keys}");
    assert!(keys.contains("pending"), "{keys}");
    app.stop().await;
}

async fn the_console_can_require_a_second_factor(db: TestDb) {
    let (app, _sink) = app_with_mail(&db, |c| c.admin.require_mfa = true).await;
    add_user(&app, "root@example.com", PW).await;
    grant(&db, &app, "root@example.com", "sesame-admin").await;
    // A session made at another application, by password only: the console
    // sends it back to the login box for a second factor.
    let b = Browser::new(&app.base_url);
    let (html, _) = crate::selfservice::login_box(&b).await;
    b.follow(b.submit_login(&html, "root@example.com", PW).await).await;
    let r = b.get("/admin").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.contains("client_id=sesame-console") && to.contains("acr_values="), "{to}");
    let (_, page) = text(b.follow(r).await).await;
    assert!(page.contains("Set up a second factor"), "the administrator sets one up on the way: {page}");
    // Signing in afresh asks for it too.
    let fresh = Browser::new(&app.base_url);
    let (_, page) = text(console(&fresh, "root@example.com").await).await;
    assert!(page.contains("Set up a second factor"), "{page}");
    app.stop().await;
}

fn sesame(db: &TestDb, app: &TestApp, args: &[&str]) {
    let out = db.sesame_with(args, &[("SESAME_ISSUER", app.base_url.as_str())], None);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Signs `email` in to the console; a CSRF token for its forms.
async fn signed_in(app: &TestApp, email: &str) -> (Browser, String) {
    let b = Browser::new(&app.base_url);
    let (st, html) = text(console(&b, email).await).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let csrf = hidden(&html, "csrf");
    (b, csrf)
}

async fn nobody_strips_or_locks_out_who_holds_more(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.database.client_cache_secs = 0).await;
    let api = format!("{}/api/v1", app.base_url);
    let root = add_user(&app, "root@example.com", PW).await;
    grant(&db, &app, "root@example.com", "sesame-admin").await;
    add_user(&app, "desk@example.com", PW).await;
    add_user(&app, "roles@example.com", PW).await;
    sesame(&db, &app, &["role", "add", "helpdesk", "--api", &api, "--permission", "read:users", "write:users"]);
    sesame(
        &db,
        &app,
        &["role", "add", "rolemgr", "--api", &api, "--permission", "read:users", "read:roles", "write:roles"],
    );
    grant(&db, &app, "desk@example.com", "helpdesk").await;
    grant(&db, &app, "roles@example.com", "rolemgr").await;

    // Help desk (write:users) cannot block, delete or strip the administrator.
    let (desk, csrf) = signed_in(&app, "desk@example.com").await;
    for action in ["block", "remove-factor", "unlink"] {
        let (st, html) = text(desk.post_form(&format!("/admin/users/{root}/{action}"), &[("csrf", &csrf)]).await).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{action}: {html}");
    }
    let form = [("csrf", csrf.as_str()), ("confirm", "root@example.com")];
    assert_eq!(
        text(desk.post_form(&format!("/admin/users/{root}/delete"), &form).await).await.0,
        StatusCode::FORBIDDEN
    );
    let u = sesame::storage::users::find_by_id(&app.state.db, &root).await.unwrap().unwrap();
    assert!(!u.disabled, "the administrator is not blocked");
    // The refusals are in the log, naming who tried.
    let desk_id =
        sesame::storage::users::find_by_email(&app.state.db, "desk@example.com").await.unwrap().unwrap().user_id;
    let refused = audit(&db, &["--type", "admin_change", "--outcome", "failure"], |e| e.len() >= 4).await;
    assert!(
        refused.iter().all(|e| e["actor"] == format!("user:{desk_id}") && e["reason"] == "forbidden"),
        "{refused:?}"
    );

    // The role manager (write:roles) cannot take sesame-admin away, empty it or delete it.
    let (rm, csrf) = signed_in(&app, "roles@example.com").await;
    let (st, _) = text(
        rm.post_form(&format!("/admin/users/{root}/revoke-role"), &[("csrf", &csrf), ("role", "sesame-admin")]).await,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let revoke = [("csrf", csrf.as_str()), ("do", "revoke"), ("api", api.as_str()), ("permissions", "write:keys")];
    assert_eq!(text(rm.post_form("/admin/roles/sesame-admin", &revoke).await).await.0, StatusCode::FORBIDDEN);
    let (st, html) = text(rm.post_form("/admin/roles/sesame-admin", &[("csrf", &csrf), ("do", "delete")]).await).await;
    assert_eq!(st, StatusCode::CONFLICT, "built in: {html}");
    // Nor through a group holding it.
    sesame(&db, &app, &["group", "add", "admins"]);
    sesame(&db, &app, &["group", "grant-role", "admins", "sesame-admin"]);
    sesame(&db, &app, &["group", "add-member", "admins", "root@example.com"]);
    let remove = [("csrf", csrf.as_str()), ("do", "remove-member"), ("member", root.as_str())];
    assert_eq!(text(rm.post_form("/admin/groups/admins", &remove).await).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        text(rm.post_form("/admin/groups/admins", &[("csrf", &csrf), ("do", "delete")]).await).await.0,
        StatusCode::FORBIDDEN
    );
    let held = sesame::storage::roles::direct_of(&app.state.db, &root).await.unwrap();
    assert_eq!(held, vec!["sesame-admin".to_string()]);
    // Within its own reach it works: a role without management permissions.
    rm.post_form("/admin/roles", &[("csrf", &csrf), ("name", "billing")]).await;
    let r = rm.post_form(&format!("/admin/users/{root}/grant-role"), &[("csrf", &csrf), ("role", "billing")]).await;
    assert!(location(&r).contains("done=role-granted"), "{}", location(&r));
    let r = rm.post_form(&format!("/admin/users/{root}/revoke-role"), &[("csrf", &csrf), ("role", "billing")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "still: the user holds more than the role manager");

    // The same rules through the management API (the same service).
    let token = crate::management::token_for(&app, &db, "desk-client", &["read:users", "write:users"]).await;
    let r = app
        .http
        .patch(app.url(&format!("/api/v1/users/{root}")))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.http.delete(app.url(&format!("/api/v1/users/{root}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // An application with a grant beyond the registrar's reach leaves nothing behind.
    sesame(&db, &app, &["role", "add", "appmgr", "--api", &api, "--permission", "read:clients", "write:clients"]);
    add_user(&app, "apps@example.com", PW).await;
    grant(&db, &app, "apps@example.com", "appmgr").await;
    let (am, csrf) = signed_in(&app, "apps@example.com").await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "Orphan"),
        ("client_id", "orphan"),
        ("kind", "confidential"),
        ("grant_types", "client_credentials"),
        ("grant_api", api.as_str()),
        ("grant_permissions", "write:users"),
    ];
    assert_eq!(text(am.post_form("/admin/apps", &form).await).await.0, StatusCode::FORBIDDEN);
    assert!(sesame::storage::clients::find(&app.state.db, "orphan").await.unwrap().is_none());
    // Sesame's own client ids are not for registering.
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "Fake"),
        ("client_id", "sesame-console"),
        ("kind", "public"),
        ("redirect_uris", "https://evil.example/cb"),
    ];
    assert_eq!(text(am.post_form("/admin/apps", &form).await).await.0, StatusCode::BAD_REQUEST);
    // A link cannot put its own words on a page.
    let (_, page) = text(am.get("/admin/apps?done=call+us+at+evil.example").await).await;
    assert!(!page.contains("evil.example"), "{page}");
    app.stop().await;
}

async fn a_logged_link_dies_with_the_first_administrator(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let now = app.state.clock.now();
    let logged = sesame::console::create_link(&app.state.db, &app.base_url, "serve", now).await.unwrap();
    let logged2 = sesame::console::create_link(&app.state.db, &app.base_url, "serve", now).await.unwrap();
    // The first administrator, from the first logged link.
    let b = Browser::new(&app.base_url);
    let html = b.get(&logged).await.text().await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf")),
        ("token", hidden(&html, "token")),
        ("email", "root@example.com".to_string()),
        ("password", PW.to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(b.post_form("/admin/setup", &form).await.status(), StatusCode::SEE_OTHER);
    // The other logged link is gone with it.
    assert_eq!(b.get(&logged2).await.status(), StatusCode::BAD_REQUEST);
    // A link logged while nobody was an administrator stops working once
    // somebody is one, however that came about.
    let late = sesame::console::create_link(&app.state.db, &app.base_url, "serve", now).await.unwrap();
    assert_eq!(b.get(&late).await.status(), StatusCode::BAD_REQUEST);
    // The operator's command still makes one (another administrator).
    let link = create_link(&db, &app);
    assert_eq!(b.get(&link).await.status(), StatusCode::OK);
    app.stop().await;
}

/// Replicas starting at once race to make the console's roles: one makes
/// each, and every start goes on.
async fn replicas_starting_together_make_the_console_roles_once(db: TestDb) {
    let app = TestApp::spawn(&db, |_| {}).await;
    let d = &app.state.db;
    for _ in 0..5 {
        for role in ["sesame-admin", "sesame-support"] {
            sesame::storage::roles::remove_role(d, role).await.unwrap();
        }
        let now = app.state.clock.now();
        let issuer = app.base_url.as_str();
        let (a, b, c) = tokio::join!(
            sesame::access::ensure_console_roles(d, issuer, now),
            sesame::access::ensure_console_roles(d, issuer, now),
            sesame::access::ensure_console_roles(d, issuer, now),
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok(), "{a:?} {b:?} {c:?}");
    }
    let roles = sesame::storage::roles::list_roles(d).await.unwrap();
    let admin = roles.iter().find(|r| r.name == "sesame-admin").unwrap();
    assert_eq!(admin.permissions.len(), 9, "{:?}", admin.permissions);
    app.stop().await;
}
