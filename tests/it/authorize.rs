//! /authorize parameters and errors, the login box, SSO, prompt and consent.

use reqwest::StatusCode;

use crate::backend_tests;
use crate::support::browser::{Browser, hidden, location, params};
use crate::support::{TestApp, TestDb, add_client, add_user};

pub const CB: &str = "https://app.example.com/cb";
const CHALLENGE: &str = "YKetmHAM6Hn_tWaLz7xEZXbtjbPF-XsZ62oXMgQvSsI";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mJ0kVJcw7H5E9Mx3NNqz3V4z5dvrQ8";

pub fn auth(client: &str, extra: &str) -> String {
    format!(
        "/authorize?client_id={client}&redirect_uri={}&response_type=code&scope=openid%20email&state=st%26%3C1%3E&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        urlencode(CB)
    )
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn setup(db: &TestDb) -> TestApp {
    let app = TestApp::spawn(db, |_| {}).await;
    add_client(&app, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    add_client(&app, "store", true, true, CB, None, &["authorization_code"]).await;
    add_client(&app, "third", true, false, CB, None, &["authorization_code"]).await;
    add_user(&app, "alice@example.com", "correct horse battery").await;
    app
}

backend_tests!(
    unverified_client_or_redirect_never_redirects,
    errors_go_back_with_state_and_iss,
    login_box_pages_and_errors,
    sso_prompt_and_max_age,
    consent_is_asked_remembered_and_can_be_denied,
    response_modes,
    signup_creates_account,
    web_message_mode,
    implicit_only_where_allowed,
    rate_limits,
);

async fn rate_limits(db: TestDb) {
    let app = TestApp::spawn(&db, |c| {
        c.rate_limit.authorize_per_session_per_minute = 3;
        c.rate_limit.login_per_account_per_minute = 2;
    })
    .await;
    add_client(&app, "spa", true, true, CB, None, &["authorization_code"]).await;
    add_user(&app, "alice@example.com", "correct horse battery").await;
    let b = Browser::new(&app.base_url);
    // Two wrong passwords, then the account is throttled, even with the right one.
    let page = b.follow(b.get(&auth("spa", "")).await).await;
    let html = page.text().await.unwrap();
    for _ in 0..2 {
        assert_eq!(b.submit_login(&html, "alice@example.com", "wrong password!").await.status(), 401);
    }
    let r = b.submit_login(&html, "ALICE@example.com", "correct horse battery").await;
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("Too many attempts"));

    // A session polling prompt=none faster than its budget gets temporarily_unavailable, not a hang.
    let app2 = TestApp::spawn(&db, |c| c.rate_limit.authorize_per_session_per_minute = 3).await;
    let b = Browser::new(&app2.base_url);
    b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let mut errors = Vec::new();
    for _ in 0..4 {
        let r = b.get(&auth("spa", "&prompt=none")).await;
        errors.push(params(&url::Url::parse(&location(&r)).unwrap()).get("error").cloned());
    }
    assert_eq!(errors.iter().filter(|e| e.is_none()).count(), 3, "a burst of 3, then limited: {errors:?}");
    assert_eq!(errors.last().unwrap().as_deref(), Some("temporarily_unavailable"));
}

async fn implicit_only_where_allowed(db: TestDb) {
    let app = setup(&db).await;
    add_client(&app, "imp", true, true, "https://games.example.com/cb", None, &["implicit"]).await;
    let mut c = sesame::storage::clients::find(&app.state.db, "imp").await.unwrap().unwrap();
    c.web_origins = vec!["https://games.example.com".into()];
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
    let b = Browser::new(&app.base_url);
    b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let imp = |rt: &str, extra: &str| {
        format!(
            "/authorize?client_id=imp&redirect_uri={}&response_type={rt}&scope=openid%20email&state=s1{extra}",
            urlencode("https://games.example.com")
        )
    };
    // Not for clients without the implicit grant, not in query mode, not without a nonce.
    let r = b.get(&auth("spa", "").replace("response_type=code", "response_type=id_token%20token")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "unauthorized_client");
    let r = b
        .get(
            &imp("id_token", "&nonce=n&response_mode=query")
                .replace(&urlencode("https://games.example.com"), &urlencode("https://games.example.com/cb")),
        )
        .await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "invalid_request");
    let r = b.get(&imp("id_token", "&response_mode=web_message&prompt=none")).await;
    assert!(r.text().await.unwrap().contains("\"error\":\"invalid_request\""));

    // auth0-js checkSession: `token id_token` through web_message with prompt=none.
    let r = b.get(&imp("token%20id_token", "&nonce=n-123&response_mode=web_message&prompt=none")).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let field = |name: &str| {
        let start = html.find(&format!("\"{name}\":\"")).unwrap_or_else(|| panic!("{name} in {html}")) + name.len() + 4;
        html[start..].split('"').next().unwrap().to_string()
    };
    let id_token = field("id_token");
    let claims = crate::flow::decode_payload(&id_token);
    assert_eq!(claims["nonce"], "n-123");
    assert_eq!(claims["aud"], "imp");
    assert!(claims["at_hash"].is_string());
    assert_eq!(field("token_type"), "Bearer");
    assert!(jsonwebtoken::decode_header(field("access_token")).unwrap().typ.as_deref() == Some("at+jwt"));
    // Fragment mode works too.
    let r = b
        .get(
            &imp("id_token", "&nonce=n2")
                .replace(&urlencode("https://games.example.com"), &urlencode("https://games.example.com/cb")),
        )
        .await;
    let loc = location(&r);
    assert!(loc.starts_with("https://games.example.com/cb#") && loc.contains("id_token="), "{loc}");

    // An ID token alone by form_post (express-openid-connect's default): posted, never in a URL.
    let cb = urlencode("https://games.example.com/cb");
    let r = b
        .get(
            &imp("id_token", "&nonce=n3&response_mode=form_post").replace(&urlencode("https://games.example.com"), &cb),
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("action=\"https://games.example.com/cb\""), "{html}");
    let id_token = crate::support::browser::hidden(&html, "id_token");
    assert_eq!(crate::flow::decode_payload(&id_token)["nonce"], "n3");
    assert!(!html.contains("name=\"access_token\""), "no access token by form_post");
    // An access token by form_post stays refused.
    let r = b
        .get(
            &imp("id_token%20token", "&nonce=n4&response_mode=form_post")
                .replace(&urlencode("https://games.example.com"), &cb),
        )
        .await;
    // (The error itself goes back the way the request asked: posted.)
    let html = r.text().await.unwrap();
    assert_eq!(crate::support::browser::hidden(&html, "error"), "invalid_request");
    assert!(!html.contains("name=\"access_token\""));
}

async fn web_message_mode(db: TestDb) {
    let app = setup(&db).await;
    let mut c = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    c.web_origins = vec!["https://games.example.com".into()];
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
    let b = Browser::new(&app.base_url);
    let wm = |extra: &str| {
        auth("spa", &format!("&response_mode=web_message&prompt=none{extra}"))
            .replace(&urlencode(CB), &urlencode("https://games.example.com"))
    };
    // No session: the error travels by message, to the registered origin only.
    let r = b.get(&wm("")).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(r.headers().get("x-frame-options").is_none(), "this page must be frameable");
    assert!(csp.contains("frame-ancestors https://games.example.com"), "{csp}");
    let html = r.text().await.unwrap();
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert!(html.contains(&format!("<script nonce=\"{nonce}\">")));
    assert!(html.contains("\"error\":\"login_required\""), "{html}");
    assert!(html.contains("\"https://games.example.com\")"), "target origin, never *: {html}");
    assert!(!html.contains("\"*\""));
    assert!(html.contains("\"state\":\"st\\u0026\\u003c1\\u003e\""), "state JSON-escaped for a script: {html}");

    // With a session: a code, and a hostile state stays inert and byte-exact once parsed.
    b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let hostile = "%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let html = b.get(&wm("").replace("state=st%26%3C1%3E", &format!("state={hostile}"))).await.text().await.unwrap();
    assert!(html.contains("\"code\":\""), "{html}");
    assert_eq!(html.matches("</script>").count(), 1, "only the page's own script closes: {html}");
    assert!(html.contains("\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"));

    // An origin that is not registered: an error page and no message at all.
    let r = b.get(&wm("").replace(&urlencode("https://games.example.com"), &urlencode("https://evil.example"))).await;
    assert_eq!(r.status(), 400);
    assert!(!r.text().await.unwrap().contains("postMessage"));
}

async fn unverified_client_or_redirect_never_redirects(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let cases = [
        "/authorize?response_type=code".to_string(),
        "/authorize?client_id=nope&response_type=code".to_string(),
        auth("spa", "").replace(&urlencode(CB), &urlencode("https://app.example.com/cb/extra")),
        auth("spa", "").replace(&urlencode(CB), &urlencode("https://app.example.com/c")),
        auth("spa", "").replace(&urlencode(CB), &urlencode("https://APP.example.com/cb")),
        auth("spa", "").replace(&urlencode(CB), &urlencode("https://app.example.com/%63b")),
        auth("spa", "").replace(&urlencode(CB), &urlencode("https://app.example.com@evil.example/cb")),
        auth("spa", "").replace(&urlencode(CB), &urlencode("https://evil.example/cb")),
        auth("spa", "") + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
    ];
    for url in cases {
        let r = b.get(&url).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(r.headers().get("location").is_none(), "never redirect: {url}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }
}

async fn errors_go_back_with_state_and_iss(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let cases = [
        (auth("spa", "").replace("response_type=code", "response_type=token"), "unsupported_response_type"),
        (auth("spa", "").replace("&response_type=code", ""), "invalid_request"),
        (auth("spa", "").replace("S256", "plain"), "invalid_request"),
        (
            auth("spa", "").replace(&format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"), ""),
            "invalid_request",
        ),
        (auth("spa", "&prompt=bogus"), "invalid_request"),
        (auth("spa", "&prompt=none%20login"), "invalid_request"),
        (auth("spa", "&max_age=-1"), "invalid_request"),
        (auth("spa", "&request=eyJ"), "request_not_supported"),
        (auth("spa", "&state=again"), "invalid_request"),
        (auth("spa", "&prompt=none"), "login_required"),
        (auth("spa", "&id_token_hint=not.a.jwt"), "invalid_request"),
    ];
    for (url, code) in cases {
        let r = b.get(&url).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{url}");
        let back = url::Url::parse(&location(&r)).unwrap();
        assert!(back.as_str().starts_with(CB), "{back}");
        let p = params(&back);
        assert_eq!(p["error"], code, "{url}");
        assert!(p.contains_key("error_description"));
        assert_eq!(p["iss"], app.state.issuer.as_str());
        if !url.contains("state=again") {
            assert_eq!(p["state"], "st&<1>", "state echoed byte-exact");
        }
    }
    // Omitted redirect_uri is fine when exactly one is registered.
    let r = b.get(&auth("spa", "").replace(&format!("&redirect_uri={}", urlencode(CB)), "")).await;
    assert!(location(&r).contains("/login?req="));
}

async fn login_box_pages_and_errors(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    // Opened by themselves (a bookmark, a typed address): the account page,
    // not a deserialisation error; a step page without its request: the
    // styled error page.
    for path in ["/login", "/signup"] {
        let r = b.get(path).await;
        assert_eq!((r.status().as_u16(), location(&r).as_str()), (303, "/account"), "{path}");
    }
    let r = b.get("/consent").await;
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("has expired or was started in another browser"));
    let page = b.follow(b.get(&auth("spa", "&login_hint=alice%40example.com")).await).await;
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.contains_key("referrer-policy"));
    let html = page.text().await.unwrap();
    assert!(html.contains("App spa"), "shows the application name");
    assert!(html.contains("autocomplete=\"username\"") && html.contains("autocomplete=\"current-password\""));
    assert!(html.contains("value=\"alice@example.com\""), "login_hint prefills");
    assert!(html.contains("<label for=\"email\">"));

    // Wrong password and unknown email: the same answer.
    let wrong = b.submit_login(&html, "alice@example.com", "wrong password!").await;
    assert_eq!(wrong.status(), 401);
    let wrong_html = wrong.text().await.unwrap();
    let unknown = b.submit_login(&html, "nobody@example.com", "wrong password!").await;
    assert_eq!(unknown.status(), 401);
    let unknown_html = unknown.text().await.unwrap();
    assert!(wrong_html.contains("Wrong email or password.") && unknown_html.contains("Wrong email or password."));

    // Without the CSRF token, or from another browser, the form is refused.
    let req = hidden(&html, "req");
    let r = b
        .post_form("/login", &[("req", &req), ("email", "alice@example.com"), ("password", "correct horse battery")])
        .await;
    assert_eq!(r.status(), 403);
    let other = Browser::new(&app.base_url);
    let r = other.get(&format!("/login?req={req}")).await;
    assert_eq!(r.status(), 400, "a pending request belongs to the browser that started it");

    // The right password signs in; the session cookie is opaque, HttpOnly and Lax.
    let ok = b.submit_login(&html, "alice@example.com", "correct horse battery").await;
    assert_eq!(ok.status(), 303);
    let cookies: Vec<String> =
        ok.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let sc = cookies.iter().find(|c| c.starts_with("sesame_session=")).expect("session cookie");
    assert!(sc.contains("HttpOnly") && sc.contains("SameSite=Lax") && !sc.contains("Secure"), "{sc}");
    let back = b.follow(ok).await;
    assert!(params(&url::Url::parse(&location(&back)).unwrap()).contains_key("code"));
}

async fn sso_prompt_and_max_age(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    // Another app gets a code without the login box, and so does prompt=none.
    for extra in ["", "&prompt=none", "&max_age=3600"] {
        let r = b.get(&auth("store", extra)).await;
        assert_eq!(r.status(), 302, "{extra}");
        assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"), "{extra}");
    }
    // prompt=login and a stale max_age show the login box again; prompt=none with a stale max_age fails.
    app.state.clock.advance(120);
    for extra in ["&prompt=login", "&max_age=60", "&prompt=select_account"] {
        let r = b.get(&auth("store", extra)).await;
        assert!(location(&r).contains("/login?req="), "{extra}");
    }
    let r = b.get(&auth("store", "&prompt=none&max_age=60")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "login_required");
    // Signing in again satisfies prompt=login, and auth_time moves forward.
    let back =
        b.authorize_with_login(&auth("store", "&prompt=login"), "alice@example.com", "correct horse battery").await;
    assert!(params(&back).contains_key("code"));
}

async fn consent_is_asked_remembered_and_can_be_denied(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    // First-party sign-in, then a third-party app asks for consent.
    b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let r = b.get(&auth("third", "&prompt=none")).await;
    assert_eq!(params(&url::Url::parse(&location(&r)).unwrap())["error"], "consent_required");
    let page = b.follow(b.get(&auth("third", "")).await).await;
    assert!(page.url().path().ends_with("/consent"));
    let html = page.text().await.unwrap();
    assert!(html.contains("See your email address") && html.contains("App third"));
    let form = [("csrf", hidden(&html, "csrf")), ("req", hidden(&html, "req")), ("decision", "deny".into())];
    let denied = b.follow(b.http.post(format!("{}/consent", app.base_url)).form(&form).send().await.unwrap()).await;
    assert_eq!(params(&url::Url::parse(&location(&denied)).unwrap())["error"], "access_denied");

    let page = b.follow(b.get(&auth("third", "")).await).await;
    let html = page.text().await.unwrap();
    let form = [("csrf", hidden(&html, "csrf")), ("req", hidden(&html, "req")), ("decision", "allow".into())];
    let allowed = b.follow(b.http.post(format!("{}/consent", app.base_url)).form(&form).send().await.unwrap()).await;
    assert!(params(&url::Url::parse(&location(&allowed)).unwrap()).contains_key("code"));
    // Remembered: no page next time, even with prompt=none; prompt=consent asks again.
    let r = b.get(&auth("third", "&prompt=none")).await;
    assert!(params(&url::Url::parse(&location(&r)).unwrap()).contains_key("code"));
    let r = b.get(&auth("third", "&prompt=consent")).await;
    assert!(location(&r).contains("/consent?req="));
}

async fn response_modes(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let r = b.get(&auth("spa", "&response_mode=fragment")).await;
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{CB}#")) && loc.contains("code="), "{loc}");
    let r = b.get(&auth("spa", "&response_mode=form_post")).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'sha256-") && !csp.contains("unsafe-inline"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{CB}\"")));
    assert!(
        html.contains("name=\"code\"") && html.contains("value=\"st&#38;&#60;1&#62;\""),
        "state HTML-escaped: {html}"
    );
}

async fn signup_creates_account(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let page = b.follow(b.get(&auth("spa", "")).await).await;
    let req = hidden(&page.text().await.unwrap(), "req");
    let page = b.get(&format!("/signup?req={req}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("autocomplete=\"new-password\""));
    let csrf = hidden(&html, "csrf");
    let short = b
        .post_form("/signup", &[("csrf", &csrf), ("req", &req), ("email", "bob@example.com"), ("password", "short")])
        .await;
    assert_eq!(short.status(), 400);
    let taken = b
        .post_form(
            "/signup",
            &[("csrf", &csrf), ("req", &req), ("email", "ALICE@example.com"), ("password", "long enough pw")],
        )
        .await;
    // The same answer as for a new address (the owner gets a mail instead).
    assert_eq!(taken.status(), 200);
    let ok = b
        .post_form(
            "/signup",
            &[
                ("csrf", &csrf),
                ("req", &req),
                ("email", "bob@example.com"),
                ("name", "Bob"),
                ("password", "long enough pw"),
            ],
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("Check your email"));
    // The account waits for the emailed link (tests/it/selfservice.rs follows it).
    let bob = sesame::storage::users::find_by_email(&app.state.db, "bob@example.com").await.unwrap().unwrap();
    assert!(!bob.email_verified && bob.password_hash.is_none());
    // Disabled sign-up hides the page.
    app.stop().await;
    let app = TestApp::spawn(&db, |c| c.login.signup_enabled = false).await;
    let b = Browser::new(&app.base_url);
    assert_eq!(b.get(&format!("/signup?req={req}")).await.status(), 404);
}
