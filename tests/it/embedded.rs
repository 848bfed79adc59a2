//! Embedded login over HTTP, as auth0-js calls it: `/co/authenticate` and the
//! login ticket at `/authorize` (bound to its client and browser, spent
//! once), the verification fallback, `/dbconnections/signup` and
//! `/dbconnections/change_password` with the account-integrity rules, and
//! the error shapes auth0-js reads. The same calls from Chromium with the real
//! auth0-js are in tests/browser/embedded.test.mjs.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authorize::{CB, auth};
use crate::backend_tests;
use crate::selfservice::{app_with_mail, audit, follow_link};
use crate::support::browser::{Browser, location, params};
use crate::support::{TestApp, TestDb, add_client, add_user};

const APP: &str = "https://app.example.com";
const PW: &str = "correct horse battery";

backend_tests!(
    login_ticket_signs_in_once_for_its_client_and_browser,
    signup_and_change_password_keep_accounts_safe,
    auth0_behaviour_when_configured,
);

async fn allow_origin(app: &TestApp, client: &str, loc: Option<&str>) {
    let mut c = sesame::storage::clients::find(&app.state.db, client).await.unwrap().unwrap();
    c.web_origins = vec![APP.into()];
    c.cross_origin_authentication = true;
    c.cross_origin_loc = loc.map(str::to_string);
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
}

async fn co_authenticate(
    app: &TestApp,
    b: &Browser,
    client: &str,
    email: &str,
    pw: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let body = json!({ "client_id": client, "username": email, "password": pw,
        "realm": "Username-Password-Authentication", "credential_type": "http://auth0.com/oauth/grant-type/password-realm" });
    let r = b.http.post(app.url("/co/authenticate")).header("Origin", APP).json(&body).send().await.unwrap();
    (r.status(), r.headers().clone(), r.json().await.unwrap())
}

async fn db_call(app: &TestApp, path: &str, body: Value) -> (StatusCode, String) {
    let r = reqwest::Client::new().post(app.url(path)).header("Origin", APP).json(&body).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// The redirect an /authorize request with `ticket` ends at (following
/// Sesame's own hops): the client's callback, with a code or an error.
async fn with_ticket(b: &Browser, client: &str, ticket: &str) -> reqwest::Response {
    let r = b.get(&auth(client, &format!("&login_ticket={ticket}"))).await;
    b.follow(r).await
}

async fn login_ticket_signs_in_once_for_its_client_and_browser(db: TestDb) {
    let app = TestApp::spawn(&db, |c| c.database.client_cache_secs = 0).await;
    add_client(&app, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    add_client(&app, "other", true, true, CB, None, &["authorization_code"]).await;
    add_user(&app, "alice@example.com", PW).await;
    allow_origin(&app, "spa", None).await;
    let b = Browser::new(&app.base_url);
    // Embedded login is each client's choice: off, its origin gets nothing.
    let mut other = sesame::storage::clients::find(&app.state.db, "other").await.unwrap().unwrap();
    other.web_origins = vec![APP.into()];
    sesame::storage::clients::update(&app.state.db, &other).await.unwrap();
    let (s, _, e) = co_authenticate(&app, &b, "other", "alice@example.com", PW).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::FORBIDDEN, Some("unauthorized_client")), "{e}");
    allow_origin(&app, "other", None).await;

    // The preflight auth0-js's credentialed fetch needs.
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/co/authenticate"))
        .header("Origin", APP)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type, auth0-client")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    assert_eq!(r.headers()["access-control-allow-origin"], APP);

    // Wrong password and an unknown address: one answer, auth0-js's shape.
    for (email, pw) in [("alice@example.com", "wrong password!"), ("nobody@example.com", PW)] {
        let (s, _, e) = co_authenticate(&app, &b, "spa", email, pw).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(e, json!({"error": "access_denied", "error_description": "Wrong email or password."}));
    }
    // Another origin may not speak for this client.
    let r = b
        .http
        .post(app.url("/co/authenticate"))
        .header("Origin", "https://evil.example")
        .json(&json!({"client_id": "spa", "username": "alice@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // The right password: a ticket, and the cookie that binds it to this browser.
    let (s, h, t) = co_authenticate(&app, &b, "spa", "alice@example.com", PW).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(h["access-control-allow-origin"], APP);
    let ticket = t["login_ticket"].as_str().unwrap().to_string();
    assert!(t["co_id"].is_string() && t["co_verifier"].is_string());
    // Spent by another client: refused, and gone.
    let r = with_ticket(&b, "other", &ticket).await;
    let back = url::Url::parse(&location(&r)).unwrap();
    assert_eq!(params(&back)["error"], "access_denied", "{back}");
    let r = with_ticket(&b, "spa", &ticket).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "access_denied");

    // A fresh ticket signs in at /authorize without the login box; once.
    let (_, _, t) = co_authenticate(&app, &b, "spa", "alice@example.com", PW).await;
    let ticket = t["login_ticket"].as_str().unwrap().to_string();
    let r = with_ticket(&b, "spa", &ticket).await;
    let back = url::Url::parse(&location(&r)).unwrap();
    assert!(back.as_str().starts_with(CB) && params(&back).contains_key("code"), "{back}");
    let again = with_ticket(&Browser::new(&app.base_url), "spa", &ticket).await;
    assert_eq!(params(&url::Url::parse(&location(&again)).unwrap())["error"], "access_denied", "a replay");

    // Another browser (the ticket leaked, no cookie) and no verification page: a clear error.
    let (_, _, t) = co_authenticate(&app, &b, "spa", "alice@example.com", PW).await;
    let thief = Browser::new(&app.base_url);
    let r = with_ticket(&thief, "spa", t["login_ticket"].as_str().unwrap()).await;
    let back = url::Url::parse(&location(&r)).unwrap();
    assert!(params(&back)["error_description"].contains("cross_origin_loc"), "{back}");

    // With a verification page: the fallback asks it; a wrong verifier is refused and spends the ticket.
    allow_origin(&app, "spa", Some("https://app.example.com/verify.html")).await;
    let (_, _, t) = co_authenticate(&app, &b, "spa", "alice@example.com", PW).await;
    let r = thief.get(&auth("spa", &format!("&login_ticket={}", t["login_ticket"].as_str().unwrap()))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-src https://app.example.com"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("https://app.example.com/verify.html#origin="), "{html}");
    let form = |verifier: &str| {
        let h = crate::support::browser::hidden;
        vec![
            ("csrf", h(&html, "csrf")),
            ("req", h(&html, "req")),
            ("login_ticket", h(&html, "login_ticket")),
            ("verifier", verifier.to_string()),
        ]
    };
    let post = |f: Vec<(&'static str, String)>| {
        let thief = &thief;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = thief.post_form("/co/verify", &f).await;
            thief.follow(r).await
        }
    };
    let r = post(form("guessed")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "access_denied");
    // The browser that holds the verifier (relayed by the app's page) gets in.
    let (_, _, t) = co_authenticate(&app, &b, "spa", "alice@example.com", PW).await;
    let other_browser = Browser::new(&app.base_url);
    let r = other_browser.get(&auth("spa", &format!("&login_ticket={}", t["login_ticket"].as_str().unwrap()))).await;
    let html2 = r.text().await.unwrap();
    let h = crate::support::browser::hidden;
    let f = [
        ("csrf", h(&html2, "csrf")),
        ("req", h(&html2, "req")),
        ("login_ticket", h(&html2, "login_ticket")),
        ("verifier", t["co_verifier"].as_str().unwrap().to_string()),
    ];
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = other_browser.post_form("/co/verify", &f).await;
    let r = other_browser.follow(r).await;
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"));

    // A ticket issued before the client's embedded login was turned off: refused.
    let (_, _, t) = co_authenticate(&app, &b, "other", "alice@example.com", PW).await;
    let mut off = sesame::storage::clients::find(&app.state.db, "other").await.unwrap().unwrap();
    off.cross_origin_authentication = false;
    sesame::storage::clients::update(&app.state.db, &off).await.unwrap();
    let r = with_ticket(&b, "other", t["login_ticket"].as_str().unwrap()).await;
    let back = url::Url::parse(&location(&r)).unwrap();
    assert!(params(&back)["error_description"].contains("not enabled"), "{back}");

    // Throttling as on the login box: the address's budget, then 429 in auth0-js's shape.
    let mut last = (StatusCode::OK, Value::Null);
    for _ in 0..30 {
        let (s, _, e) = co_authenticate(&app, &b, "spa", "alice@example.com", "wrong password!").await;
        last = (s, e);
        if s == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last.0, StatusCode::TOO_MANY_REQUESTS, "{}", last.1);
    assert_eq!(last.1["error"], "too_many_attempts");

    // The same audit events as the login box, method pwd.
    let ev = audit(&db, &["--type", "login_success"], |e| !e.is_empty()).await;
    assert_eq!(ev[0]["method"], "pwd");
    let ev = audit(&db, &["--type", "login_failure"], |e| e.iter().any(|x| x["reason"] == "throttled")).await;
    assert!(ev.iter().any(|x| x["reason"] == "wrong_password"));
    app.stop().await;
}

/// Sign-up answers the same for every address and installs no password:
/// the link's follower chooses it (auth0-js sends no cookie with sign-up, so
/// nothing ties the typed password to the browser). A second sign-up changes
/// nothing; the owner of a verified address is told. Change password mails a
/// reset link and answers the same for any address.
async fn signup_and_change_password_keep_accounts_safe(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |c| c.database.client_cache_secs = 0).await;
    allow_origin(&app, "spa", None).await;
    let b = Browser::new(&app.base_url);
    let (s, body) = db_call(&app, "/dbconnections/signup", signup("bob@example.com", "a strange password")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["email"].as_str(), v["email_verified"].as_bool()), (Some("bob@example.com"), Some(false)));
    let (s, _, _) = co_authenticate(&app, &b, "spa", "bob@example.com", "a strange password").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no password until the mailbox is proven: sign-up reveals nothing");

    // Signing up again (the owner, say, or anyone): the same answer, nothing installed.
    let (s, body2) = db_call(&app, "/dbconnections/signup", signup("bob@example.com", "the owner's password")).await;
    assert_eq!(s, StatusCode::OK);
    let v2: Value = serde_json::from_str(&body2).unwrap();
    assert_ne!(v2["_id"], v["_id"], "the answer does not name the existing account");
    // The owner follows the link and chooses the password there.
    let link = sink.nth("bob@example.com", 2).await.link("/verify-email").unwrap();
    let owner = Browser::new(&app.base_url);
    let done = follow_link(&owner, &link, &[("password", "the owner's password")]).await;
    assert!(done.status().is_redirection(), "{}", done.status());
    let (s, _, _) = co_authenticate(&app, &b, "spa", "bob@example.com", "the owner's password").await;
    assert_eq!(s, StatusCode::OK);

    // A verified address: same answer, the owner is told.
    add_user(&app, "alice@example.com", PW).await;
    let (s, _) = db_call(&app, "/dbconnections/signup", signup("alice@example.com", "another long password")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(sink.nth("alice@example.com", 1).await.subject().contains("tried to sign up"));

    // Weak password and a bad address, in auth0-js's shapes.
    let (s, body) = db_call(&app, "/dbconnections/signup", signup("carol@example.com", "short")).await;
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (s, e["name"].as_str(), e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PasswordStrengthError"), Some("invalid_password"))
    );
    assert!(e["description"]["rules"].is_array() && e["policy"].is_string());
    let (s, body) = db_call(&app, "/dbconnections/signup", signup("not an address", "a long enough password")).await;
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_signup")));

    // Change password: the same text for an account and for nobody; the account gets the link.
    let change =
        |email: &str| json!({"client_id": "spa", "email": email, "connection": "Username-Password-Authentication"});
    let (s1, t1) = db_call(&app, "/dbconnections/change_password", change("alice@example.com")).await;
    let (s2, t2) = db_call(&app, "/dbconnections/change_password", change("nobody@example.com")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(t1, t2);
    assert_eq!(t1, "We've just sent you an email to reset your password.");
    assert!(sink.nth("alice@example.com", 2).await.link("/reset-password").is_some());
    app.stop().await;
}

fn signup(email: &str, pw: &str) -> Value {
    json!({"client_id": "spa", "email": email, "password": pw, "connection": "Username-Password-Authentication",
        "user_metadata": {"plan": "free"}})
}

/// `[login] reveal_existing_accounts` (Auth0's behaviour): the new account
/// signs in at once, unverified; an address with an account is answered
/// `user_exists`. The claim still never outlives the mailbox owner's proof:
/// the owner's reset link removes the claimant's password.
async fn auth0_behaviour_when_configured(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |c| {
        c.database.client_cache_secs = 0;
        c.login.reveal_existing_accounts = true;
    })
    .await;
    allow_origin(&app, "spa", None).await;
    let b = Browser::new(&app.base_url);
    let (s, _) = db_call(&app, "/dbconnections/signup", signup("carol@example.com", "a stranger's password")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, t) = co_authenticate(&app, &b, "spa", "carol@example.com", "a stranger's password").await;
    assert_eq!(s, StatusCode::OK, "signs in at once: {t}");
    let r = with_ticket(&b, "spa", t["login_ticket"].as_str().unwrap()).await;
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"));
    let (s, body) = db_call(&app, "/dbconnections/signup", signup("carol@example.com", "the owner's password")).await;
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (s, e),
        (
            StatusCode::BAD_REQUEST,
            json!({"name": "BadRequestError", "code": "user_exists", "description": "The user already exists.", "statusCode": 400})
        )
    );
    // The mailbox's owner asks for a reset: the claimant's password goes.
    let change =
        json!({"client_id": "spa", "email": "carol@example.com", "connection": "Username-Password-Authentication"});
    assert_eq!(db_call(&app, "/dbconnections/change_password", change).await.0, StatusCode::OK);
    let link = sink.nth("carol@example.com", 2).await.link("/reset-password").unwrap();
    let owner = Browser::new(&app.base_url);
    let done = follow_link(&owner, &link, &[("password", "the owner's password")]).await;
    assert!(done.status().is_success() || done.status().is_redirection(), "{}", done.status());
    let (s, _, _) = co_authenticate(&app, &b, "spa", "carol@example.com", "a stranger's password").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the claim's password is gone");
    let (s, _, _) = co_authenticate(&app, &b, "spa", "carol@example.com", "the owner's password").await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}
