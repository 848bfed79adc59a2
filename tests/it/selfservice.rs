//! Users' self-service over a real SMTP conversation: sign-up finished by the
//! emailed link, the same answers whatever the address, password reset that
//! signs out everywhere, the account page, `require_verified_email` — and
//! every step in `sesame audit search`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::authorize::{CB, VERIFIER, auth, urlencode};
use crate::backend_tests;
use crate::support::browser::{Browser, hidden, location, params};
use crate::support::smtp::SmtpSink;
use crate::support::{TestApp, TestDb, add_client, add_user, stdout_json};

backend_tests!(
    sign_up_verify_forget_reset_and_end_a_session,
    verified_email_required,
    account_page_changes,
    account_page_links_back_to_the_app,
);

pub async fn app_with_mail(db: &TestDb, f: impl FnOnce(&mut sesame::config::Config)) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let s = sink.clone();
    let app = TestApp::spawn(db, move |c| {
        s.configure(c);
        f(c);
    })
    .await;
    add_client(&app, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    (app, sink)
}

/// The login box of a fresh authorization for `spa`: (html, req).
pub async fn login_box(b: &Browser) -> (String, String) {
    let page = b.follow(b.get(&auth("spa", "")).await).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let req = hidden(&html, "req");
    (html, req)
}

/// The page a link opens, then its button.
pub async fn follow_link(b: &Browser, link: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let page = b.get(link).await;
    assert_eq!(page.status(), StatusCode::OK, "the link's page opens");
    let html = page.text().await.unwrap();
    let path = url::Url::parse(link).unwrap().path().to_string();
    let mut form = vec![("csrf", hidden(&html, "csrf")), ("token", hidden(&html, "token"))];
    form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post_form(&path, &form).await
}

/// `sesame audit search ARGS --json`, waiting until `want` holds (the log is
/// written off the request path, so an event may land a moment later).
pub async fn audit(db: &TestDb, args: &[&str], want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut all = vec!["--json", "audit", "search", "--limit", "200"];
    all.extend_from_slice(args);
    let mut last = Vec::new();
    for _ in 0..40 {
        let out = db.sesame(&all);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        last = stdout_json(&out)["events"].as_array().cloned().unwrap_or_default();
        if want(&last) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("audit search {args:?} never matched: {}", serde_json::to_string_pretty(&last).unwrap());
}

pub fn has(events: &[Value], kind: &str, outcome: &str, reason: Option<&str>) -> bool {
    events
        .iter()
        .any(|e| e["type"] == kind && e["outcome"] == outcome && reason.is_none_or(|r| e["reason"].as_str() == Some(r)))
}

async fn redeem(app: &TestApp, code: &str) -> Value {
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn refresh(app: &TestApp, rt: &str) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", "spa")];
    app.http.post(app.url("/token")).form(&form).send().await.unwrap()
}

async fn sign_up_verify_forget_reset_and_end_a_session(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |_| {}).await;
    add_user(&app, "alice@example.com", "correct horse battery").await;
    let b = Browser::new(&app.base_url);
    let (_, req) = login_box(&b).await;
    let html = b.get(&format!("/signup?req={req}")).await.text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    let signup = |email: &'static str, pw: &'static str| {
        let (b, csrf, req) = (&b, csrf.clone(), req.clone());
        async move { b.post_form("/signup", &[("csrf", &csrf), ("req", &req), ("email", email), ("password", pw)]).await }
    };
    // The password policy: too short, too common.
    assert_eq!(signup("bob@example.com", "short").await.status(), StatusCode::BAD_REQUEST);
    let common = signup("bob@example.com", "Password123").await;
    assert_eq!(common.status(), StatusCode::BAD_REQUEST);
    assert!(common.text().await.unwrap().contains("most common passwords"));

    // A new address and a taken one get the same page.
    let new = signup("bob@example.com", "long enough pw").await;
    assert_eq!(new.status(), StatusCode::OK);
    let new = new.text().await.unwrap();
    let taken = signup("alice@example.com", "long enough pw").await;
    assert_eq!(taken.status(), StatusCode::OK);
    assert_eq!(taken.text().await.unwrap().replace("alice", "bob"), new);
    assert!(new.contains("Check your email"));
    assert!(sink.nth("alice@example.com", 1).await.subject().contains("tried to sign up"));

    // A second sign-up with the address (its owner, say) replaces the first
    // one's link and password: an unverified sign-up reserves nothing.
    let first = sink.nth("bob@example.com", 1).await.link("/verify-email").unwrap();
    assert_eq!(signup("bob@example.com", "long enough pw").await.status(), StatusCode::OK);
    assert_eq!(b.get(&first).await.status(), StatusCode::BAD_REQUEST, "the first link is void");

    // Not usable before the link: the password is not set yet.
    let (html, _) = login_box(&b).await;
    assert_eq!(b.submit_login(&html, "bob@example.com", "long enough pw").await.status(), StatusCode::UNAUTHORIZED);

    // The link finishes the sign-up and the session starts: back to the app.
    let mail = sink.nth("bob@example.com", 2).await;
    assert!(mail.subject().contains("Finish signing up"), "{}", mail.subject());
    let link = mail.link("/verify-email").expect("a verification link");
    let done = follow_link(&b, &link, &[]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let back = b.follow(done).await;
    let code = params(&url::Url::parse(&location(&back)).unwrap())["code"].clone();
    let tokens = redeem(&app, &code).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let bob = sesame::storage::users::find_by_email(&app.state.db, "bob@example.com").await.unwrap().unwrap();
    assert!(bob.email_verified && bob.password_hash.is_some());
    // Single use.
    let page = b.get(&link).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);

    // Forgot password, from another browser: the same answer for any address.
    let b2 = Browser::new(&app.base_url);
    let (_, req2) = login_box(&b2).await;
    let form = b2.get(&format!("/forgot-password?req={req2}")).await.text().await.unwrap();
    let csrf2 = hidden(&form, "csrf");
    let ask = |email: &'static str| {
        let (b2, csrf2, req2) = (&b2, csrf2.clone(), req2.clone());
        async move { b2.post_form("/forgot-password", &[("csrf", &csrf2), ("req", &req2), ("email", email)]).await }
    };
    let known = ask("bob@example.com").await;
    assert_eq!(known.status(), StatusCode::OK);
    let known = known.text().await.unwrap();
    let unknown = ask("nobody@example.com").await;
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(unknown.text().await.unwrap().replace("nobody", "bob"), known);
    let reset = sink.nth("bob@example.com", 3).await;
    assert!(reset.subject().contains("Reset"), "{}", reset.subject());
    let link = reset.link("/reset-password").expect("a reset link");

    // Throttled per address typed (3 a minute here), whatever the address.
    assert_eq!(ask("nobody@example.com").await.status(), StatusCode::OK);
    assert_eq!(ask("nobody@example.com").await.status(), StatusCode::OK);
    assert_eq!(ask("NOBODY@example.com").await.status(), StatusCode::TOO_MANY_REQUESTS);

    // A refused password keeps the link; the accepted one spends it.
    let weak = follow_link(&b2, &link, &[("password", "qwerty123")]).await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let ok = follow_link(&b2, &link, &[("password", "a brand new passphrase")]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap().contains("signed out everywhere"));
    assert_eq!(b2.get(&link).await.status(), StatusCode::BAD_REQUEST);
    assert!(sink.nth("bob@example.com", 4).await.subject().contains("password was changed"));

    // Signed out everywhere, offline refresh token included.
    let r = refresh(&app, &rt).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (html, _) = login_box(&b).await;
    assert!(html.contains("name=\"password\""), "the old browser's session is gone");
    assert_eq!(b.submit_login(&html, "bob@example.com", "long enough pw").await.status(), StatusCode::UNAUTHORIZED);

    // Two sessions with the new password; the account page ends the other one.
    b2.authorize_with_login(&auth("spa", ""), "bob@example.com", "a brand new passphrase").await;
    let b3 = Browser::new(&app.base_url);
    b3.authorize_with_login(&auth("spa", ""), "bob@example.com", "a brand new passphrase").await;
    let page = b2.get("/account").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let sids: Vec<String> = html.split("data-sid=\"").skip(1).map(|s| s[..s.find('"').unwrap()].to_string()).collect();
    assert_eq!(sids.len(), 2, "{html}");
    let mine = html.split("data-sid=\"").skip(1).find(|s| s.contains("(this browser)")).unwrap();
    let mine = &mine[..mine.find('"').unwrap()];
    let other = sids.iter().find(|s| s.as_str() != mine).unwrap();
    let csrf = hidden(&html, "csrf");
    let end = b2.post_form("/account/sessions/end", &[("csrf", &csrf), ("sid", other)]).await;
    assert_eq!(end.status(), StatusCode::SEE_OTHER);
    let (html, _) = login_box(&b3).await;
    assert!(html.contains("name=\"password\""), "the ended session asks to sign in again");
    let again = b2.follow(b2.get(&auth("spa", "")).await).await;
    assert_eq!(again.status(), StatusCode::FOUND, "this browser stays signed in");

    // Every step is in the audit log, with the reason for each failure.
    // Written in order: once the last step's event is there, so are the others.
    let events = audit(&db, &["--user", "bob@example.com"], |e| {
        e.iter().any(|x| x["type"] == "session_ended" && x["details"]["why"] == "account_page")
    })
    .await;
    for (kind, outcome, reason) in [
        ("signup", "success", None),
        ("verification_sent", "success", None),
        ("login_failure", "failure", Some("no_password")),
        ("email_verified", "success", None),
        ("login_success", "success", None),
        ("token_issued", "success", None),
        ("password_reset_requested", "success", None),
        ("password_reset", "success", None),
        ("session_ended", "success", None),
        ("login_failure", "failure", Some("wrong_password")),
    ] {
        assert!(has(&events, kind, outcome, reason), "{kind} {outcome} {reason:?} missing: {events:#?}");
    }
    let ended: Vec<&Value> = events.iter().filter(|e| e["type"] == "session_ended").collect();
    assert!(ended.iter().any(|e| e["details"]["why"] == "password_reset"));
    assert!(
        ended.iter().any(|e| e["details"]["why"] == "account_page" && e["actor"] == format!("user:{}", bob.user_id))
    );
    // Newest first; no secret anywhere.
    let times: Vec<&str> = events.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let text = serde_json::to_string(&events).unwrap();
    for secret in ["long enough pw", "a brand new passphrase", rt.as_str(), code.as_str()] {
        assert!(!text.contains(secret), "a secret reached the audit log");
    }
    // An address without an account is searchable too (normalised).
    let nobody = audit(&db, &["--user", "NoBody@Example.com"], |e| !e.is_empty()).await;
    assert!(has(&nobody, "password_reset_requested", "failure", Some("unknown_user")));
    let taken = audit(&db, &["--user", "alice@example.com", "--type", "signup"], |e| !e.is_empty()).await;
    assert!(has(&taken, "signup", "failure", Some("email_taken")));
    let failures =
        audit(&db, &["--type", "login_failure", "--outcome", "failure", "--since", "1h"], |e| e.len() >= 2).await;
    assert!(failures.iter().all(|e| e["type"] == "login_failure"));
    let refused = audit(&db, &["--client", "spa", "--type", "token_refreshed"], |e| !e.is_empty()).await;
    assert!(has(&refused, "token_refreshed", "failure", Some("invalid_grant")));
    app.stop().await;
}

async fn verified_email_required(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |c| c.login.require_verified_email = true).await;
    let id = add_user(&app, "carol@example.com", "correct horse battery").await;
    let mut u = sesame::storage::users::find_by_id(&app.state.db, &id).await.unwrap().unwrap();
    u.email_verified = false;
    sesame::storage::users::update(&app.state.db, &u).await.unwrap();
    let b = Browser::new(&app.base_url);
    let (html, req) = login_box(&b).await;
    let refused = b.submit_login(&html, "carol@example.com", "correct horse battery").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("Verify your email address first"));
    // "Resend the link" on the login box.
    let form = b.get(&format!("/verify-email/resend?req={req}")).await.text().await.unwrap();
    let csrf = hidden(&form, "csrf");
    let sent =
        b.post_form("/verify-email/resend", &[("csrf", &csrf), ("req", &req), ("email", "carol@example.com")]).await;
    assert_eq!(sent.status(), StatusCode::OK);
    let first = sink.nth("carol@example.com", 1).await.link("/verify-email").unwrap();
    // A newer link replaces the older one.
    let again =
        b.post_form("/verify-email/resend", &[("csrf", &csrf), ("req", &req), ("email", "carol@example.com")]).await;
    assert_eq!(again.status(), StatusCode::OK);
    let second = sink.nth("carol@example.com", 2).await.link("/verify-email").unwrap();
    assert_eq!(b.get(&first).await.status(), StatusCode::BAD_REQUEST, "the older link no longer works");
    // Whoever follows the link chooses the password: one set before the
    // address was proven does not survive the proof.
    assert_eq!(follow_link(&b, &second, &[]).await.status(), StatusCode::BAD_REQUEST, "a password is required");
    let ok = follow_link(&b, &second, &[("password", "a password of carol's")]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let (html, _) = login_box(&b).await;
    let old = b.submit_login(&html, "carol@example.com", "correct horse battery").await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED, "the password from before the proof is gone");
    // Now the sign-in goes through, and the ID token says the address is verified.
    let url = b.authorize_with_login(&auth("spa", ""), "carol@example.com", "a password of carol's").await;
    let tokens = redeem(&app, &params(&url)["code"]).await;
    let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    use base64::Engine;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["email_verified"], true);
    let events = audit(&db, &["--user", &id], |e| has(e, "email_verified", "success", None)).await;
    assert!(has(&events, "login_failure", "failure", Some("email_not_verified")));
    assert!(has(&events, "verification_sent", "success", None));
    app.stop().await;
}

async fn account_page_changes(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |_| {}).await;
    add_client(&app, "third", true, false, CB, None, &["authorization_code", "refresh_token"]).await;
    let id = add_user(&app, "dave@example.com", "correct horse battery").await;
    // Without a session the account page sends the browser to the login box.
    let b = Browser::new(&app.base_url);
    let first = b.get("/account").await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let login = b.follow(first).await;
    let html = login.text().await.unwrap();
    assert!(html.contains("Your account"), "the account client is named on the login box");
    let back = b.follow(b.submit_login(&html, "dave@example.com", "correct horse battery").await).await;
    assert_eq!(back.status(), StatusCode::OK, "back on the account page");
    let html = back.text().await.unwrap();
    assert!(html.contains("dave@example.com") && html.contains("(this browser)"), "{html}");

    // Consent to a third-party app, then withdraw it: its refresh tokens go too.
    let page = b.follow(b.get(&auth("third", "")).await).await;
    let html = page.text().await.unwrap();
    let consent = b
        .post_form(
            "/consent",
            &[("csrf", &hidden(&html, "csrf")), ("req", &hidden(&html, "req")), ("decision", "allow")],
        )
        .await;
    let to_app = b.follow(consent).await;
    let code = params(&url::Url::parse(&location(&to_app)).unwrap())["code"].clone();
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
            ("client_id", "third"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let rt = r.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_string();
    let html = b.get("/account").await.text().await.unwrap();
    assert!(html.contains("App third"), "{html}");
    let csrf = hidden(&html, "csrf");
    let revoked = b.post_form("/account/consents/revoke", &[("csrf", &csrf), ("client_id", "third")]).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt.as_str()), ("client_id", "third")];
    assert_eq!(app.http.post(app.url("/token")).form(&form).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert!(!b.get("/account").await.text().await.unwrap().contains("App third"));

    // Change password: the current one is required; the user gets a mail.
    let wrong = b
        .post_form(
            "/account/password",
            &[("csrf", &csrf), ("current_password", "nope"), ("new_password", "another long one")],
        )
        .await;
    assert!(location(&wrong).contains("error=current_password"));
    let ok = b
        .post_form(
            "/account/password",
            &[("csrf", &csrf), ("current_password", "correct horse battery"), ("new_password", "another long one")],
        )
        .await;
    assert!(location(&ok).contains("done=password"));
    assert!(sink.nth("dave@example.com", 1).await.subject().contains("password was changed"));

    // Change email: verified at the new address before it counts.
    let ok = b
        .post_form(
            "/account/email",
            &[("csrf", &csrf), ("email", "dave@new.example"), ("current_password", "another long one")],
        )
        .await;
    assert!(location(&ok).contains("done=email"));
    let u = sesame::storage::users::find_by_id(&app.state.db, &id).await.unwrap().unwrap();
    assert_eq!(u.email.as_deref(), Some("dave@example.com"));
    let link = sink.nth("dave@new.example", 1).await.link("/verify-email").unwrap();
    assert_eq!(follow_link(&b, &link, &[]).await.status(), StatusCode::OK);
    let u = sesame::storage::users::find_by_id(&app.state.db, &id).await.unwrap().unwrap();
    assert_eq!(u.email.as_deref(), Some("dave@new.example"));
    assert!(u.email_verified);

    // Guessing the password through the email form spends the sign-in
    // budget (it had none: every guess was checked).
    let mut answers = Vec::new();
    for _ in 0..12 {
        let form = [("csrf", csrf.as_str()), ("email", "dave@other.example"), ("current_password", "guess guess")];
        answers.push(location(&b.post_form("/account/email", &form).await));
    }
    assert!(answers.iter().any(|l| l.contains("error=throttled")), "{answers:?}");

    // A form without the CSRF value changes nothing.
    let forged = b.post_form("/account/sessions/end", &[("sid", "others")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let events = audit(&db, &["--user", &id], |e| has(e, "email_verified", "success", None)).await;
    for kind in ["consent_granted", "consent_revoked", "password_changed", "verification_sent", "email_verified"] {
        assert!(has(&events, kind, "success", None), "{kind} missing: {events:#?}");
    }
    assert!(has(&events, "password_changed", "failure", Some("wrong_password")));
    app.stop().await;
}

/// An application links to `/account?client_id=…&return_to=…`: the page
/// links back to it (across the sign-in), only to an address the client
/// registered or a page on its web origins.
async fn account_page_links_back_to_the_app(db: TestDb) {
    let (app, _sink) = app_with_mail(&db, |_| {}).await;
    add_user(&app, "dave@example.com", "correct horse battery").await;
    let b = Browser::new(&app.base_url);
    let to = format!("/account?client_id=spa&return_to={}", urlencode(CB));
    let login = b.follow(b.get(&to).await).await;
    let html = login.text().await.unwrap();
    let page = b.follow(b.submit_login(&html, "dave@example.com", "correct horse battery").await).await;
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("href=\"{CB}\" id=\"back-to-app\"")) && html.contains("Back to App spa"), "{html}");
    // Elsewhere, or for a client that never registered it: no link.
    for bad in ["https://evil.example/", "javascript:alert(1)", "//evil.example/x"] {
        let other = Browser::new(&app.base_url);
        let (html, _) = login_box(&other).await;
        other.follow(other.submit_login(&html, "dave@example.com", "correct horse battery").await).await;
        let page = other.follow(other.get(&format!("/account?client_id=spa&return_to={}", urlencode(bad))).await).await;
        let html = page.text().await.unwrap();
        assert!(!html.contains("back-to-app"), "{bad}: {html}");
    }
    let other = Browser::new(&app.base_url);
    let page = other.follow(other.get(&format!("/account?client_id=nobody&return_to={}", urlencode(CB))).await).await;
    let html = page.text().await.unwrap();
    assert!(!html.contains("back-to-app"));
    app.stop().await;
}
