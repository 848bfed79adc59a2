//! Account integrity: an account, or a credential on it, is reachable only by
//! someone who proved control of it. One test per pre-account-hijacking class
//! of Sudhodanan & Paverd ("Pre-hijacked accounts", USENIX Security 2022) —
//! classic-federated merge, unexpired session, trojan identifier, unexpired
//! email change, non-verifying IdP — plus the review's findings on the
//! verification link and on changing the address. The attacker's provider is
//! a second Sesame where the victim's address is *not* verified (as
//! Microsoft, Facebook or Spotify send addresses); mail is a real SMTP
//! conversation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authorize::auth;
use crate::backend_tests;
use crate::federation::{Fed, browser, fed, redeem, sign_in_through_corp, walk};
use crate::management::token_for;
use crate::selfservice::{follow_link, login_box};
use crate::support::browser::{Browser, hidden, location, params};
use crate::support::smtp::SmtpSink;
use crate::support::{TestApp, TestDb, add_user};

const VICTIM: &str = "victim@example.com";
/// Verified at the upstream: the victim's own provider account.
const ALICE: &str = "alice@example.com";
const ATTACKER_PW: &str = "attacker chosen pw";
const VICTIM_PW: &str = "victim chosen pw";
const PW: &str = "correct horse battery";

backend_tests!(
    classic_federated_merge,
    unexpired_session,
    trojan_identifier,
    unexpired_email_change,
    non_verifying_idp,
    a_resent_link_never_installs_a_strangers_password,
    changing_the_address_needs_a_fresh_proof_and_spends_old_links,
    write_clients_is_not_full_admin,
);

/// A downstream Sesame with mail, whose provider `corp` (an upstream Sesame)
/// holds `victim@example.com` unverified: anyone may claim it there.
async fn world(db: &TestDb) -> (Fed, SmtpSink) {
    let sink = SmtpSink::start().await;
    let s = sink.clone();
    let f = fed(db, move |c| s.configure(c)).await;
    let id = add_user(&f.up, VICTIM, PW).await;
    let mut u = sesame::storage::users::find_by_id(&f.up.state.db, &id).await.unwrap().unwrap();
    u.email_verified = false;
    sesame::storage::users::update(&f.up.state.db, &u).await.unwrap();
    (f, sink)
}

/// The attacker signs in through the non-verifying provider with the
/// victim's address; returns the downstream account's id and the browser.
async fn attacker_account(f: &Fed) -> (String, reqwest::Client) {
    let c = browser();
    let claims = sign_in_through_corp(f, &c, VICTIM).await;
    assert_eq!(claims["email"], VICTIM, "the claim is on the account: {claims}");
    assert_eq!(claims["email_verified"], false);
    (claims["sub"].as_str().unwrap().to_string(), c)
}

/// Whoever signs in through `corp` as the victim's upstream account now.
async fn corp_sub(f: &Fed) -> String {
    sign_in_through_corp(f, &browser(), VICTIM).await["sub"].as_str().unwrap().to_string()
}

/// Signs up on the login box in `b` with `email`/`pw`.
async fn sign_up(b: &Browser, email: &str, pw: &str) {
    let (_, req) = login_box(b).await;
    let html = b.get(&format!("/signup?req={req}")).await.text().await.unwrap();
    let form = [("csrf", hidden(&html, "csrf")), ("req", req), ("email", email.into()), ("password", pw.into())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.post_form("/signup", &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Check your email"));
}

/// The password login of `email`/`pw` on a fresh browser: the `sub`, or None.
async fn password_sub(f: &Fed, email: &str, pw: &str) -> Option<String> {
    let b = Browser::new(&f.down.base_url);
    let (html, _) = login_box(&b).await;
    let r = b.submit_login(&html, email, pw).await;
    if r.status() != StatusCode::SEE_OTHER {
        return None;
    }
    let back = b.follow(r).await;
    Some(redeem(&f.down, &back).await["sub"].as_str().unwrap().to_string())
}

/// "Forgot password?" for `email` in a fresh browser, then the mailed link
/// (the `n`th mail to it) with `pw`.
async fn reset_by_mail(f: &Fed, sink: &SmtpSink, email: &str, n: usize, pw: &str) {
    let b = Browser::new(&f.down.base_url);
    let (_, req) = login_box(&b).await;
    let html = b.get(&format!("/forgot-password?req={req}")).await.text().await.unwrap();
    let r = b.post_form("/forgot-password", &[("csrf", &hidden(&html, "csrf")), ("req", &req), ("email", email)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let link = sink.nth(email, n).await.link("/reset-password").expect("a reset link");
    let done = follow_link(&b, &link, &[("password", pw)]).await;
    assert_eq!(done.status(), StatusCode::OK, "{}", done.text().await.unwrap());
}

/// The first mail to `to` whose subject holds `subject` (mails are sent
/// concurrently, so their order is not the order they were asked for).
async fn mail_with(sink: &SmtpSink, to: &str, subject: &str) -> crate::support::smtp::Received {
    for _ in 0..50 {
        if let Some(m) = sink.to(to).into_iter().find(|m| m.subject().contains(subject)) {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no mail to {to} about {subject:?}: {:?}", sink.to(to).iter().map(|m| m.subject()).collect::<Vec<_>>());
}

/// The mail that says what a reclaim removed.
async fn secured_notice(sink: &SmtpSink, to: &str) -> String {
    for _ in 0..50 {
        if let Some(m) = sink.to(to).into_iter().find(|m| m.subject().contains("was secured")) {
            return m.data;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no 'secured' notice to {to}: {:?}", sink.to(to).iter().map(|m| m.subject()).collect::<Vec<_>>());
}

async fn silent_auth(f: &Fed, c: &reqwest::Client) -> std::collections::HashMap<String, String> {
    let r = walk(c, c.get(f.down.url(&auth("spa", "&prompt=none"))).send().await.unwrap()).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    params(&url::Url::parse(&location(&r)).unwrap())
}

/// Classic-federated merge: the attacker signs up with the victim's address
/// (a password of theirs, never verified); the victim later signs in with a
/// provider that verified the address. The victim gets in at once (the
/// attacker's sign-up reserved nothing) and the attacker's password is
/// nowhere.
async fn classic_federated_merge(db: TestDb) {
    let (f, sink) = world(&db).await;
    let attacker = Browser::new(&f.down.base_url);
    sign_up(&attacker, ALICE, ATTACKER_PW).await;
    let attackers_link = sink.nth(ALICE, 1).await.link("/verify-email").unwrap();

    let claims = sign_in_through_corp(&f, &browser(), ALICE).await;
    assert_eq!(claims["email"], ALICE);
    assert_eq!(claims["email_verified"], true);
    let sub = claims["sub"].as_str().unwrap().to_string();
    assert_eq!(password_sub(&f, ALICE, ATTACKER_PW).await, None, "the attacker's password opens nothing");
    // The sign-up link in the victim's mailbox is void too.
    assert_eq!(attacker.get(&attackers_link).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sign_in_through_corp(&f, &browser(), ALICE).await["sub"], sub.as_str(), "the victim's account stays");
}

/// Unexpired session: the attacker holds a session on an account made with
/// the victim's unverified address; the victim resets the password by mail.
/// The attacker's session and identity are gone from the account.
async fn unexpired_session(db: TestDb) {
    let (f, sink) = world(&db).await;
    let (account, attacker) = attacker_account(&f).await;
    assert!(silent_auth(&f, &attacker).await.contains_key("code"), "the attacker's session works before");

    reset_by_mail(&f, &sink, VICTIM, 1, VICTIM_PW).await;
    assert_eq!(silent_auth(&f, &attacker).await.get("error").map(String::as_str), Some("login_required"));
    assert_ne!(corp_sub(&f).await, account, "the attacker's identity no longer reaches the account");
    assert_eq!(password_sub(&f, VICTIM, VICTIM_PW).await.as_deref(), Some(account.as_str()));
    let notice = secured_notice(&sink, VICTIM).await;
    assert!(notice.contains("Corp SSO"), "{notice}");
}

/// Trojan identifier: the attacker adds a credential of their own (a
/// password) to the account made with the victim's unverified address; the
/// victim signs up with the address and follows the link on another device.
/// Neither the attacker's password nor their identity opens the account.
async fn trojan_identifier(db: TestDb) {
    let (f, sink) = world(&db).await;
    let (account, attacker) = attacker_account(&f).await;
    let html = attacker.get(f.down.url("/account")).send().await.unwrap().text().await.unwrap();
    let set =
        [("csrf", hidden(&html, "csrf")), ("current_password", String::new()), ("new_password", ATTACKER_PW.into())];
    let r = attacker.post(f.down.url("/account/password")).form(&set).send().await.unwrap();
    assert!(location(&r).contains("done=password"), "{}", location(&r));
    assert_eq!(password_sub(&f, VICTIM, ATTACKER_PW).await.as_deref(), Some(account.as_str()));

    sign_up(&Browser::new(&f.down.base_url), VICTIM, VICTIM_PW).await;
    let link = mail_with(&sink, VICTIM, "Finish signing up").await.link("/verify-email").unwrap();
    // Another device: the password typed at sign-up is not installed; the
    // page asks for one.
    let phone = Browser::new(&f.down.base_url);
    let page = phone.get(&link).await.text().await.unwrap();
    assert!(page.contains("name=\"password\""), "the link page asks for a password");
    let missing = follow_link(&phone, &link, &[]).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST, "no password, no verification");
    let done = follow_link(&phone, &link, &[("password", VICTIM_PW)]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);

    assert_eq!(password_sub(&f, VICTIM, ATTACKER_PW).await, None, "the attacker's password is gone");
    assert_eq!(password_sub(&f, VICTIM, VICTIM_PW).await.as_deref(), Some(account.as_str()));
    assert_ne!(corp_sub(&f).await, account);
    let notice = secured_notice(&sink, VICTIM).await;
    assert!(notice.contains("Corp SSO") && notice.contains("a password set before"), "{notice}");
    let events = crate::selfservice::audit(&db, &["--type", "account_reclaimed"], |e| !e.is_empty()).await;
    assert_eq!(events[0]["user_id"], account.as_str());
    assert_eq!(events[0]["details"]["identities"], 1);
}

/// Unexpired email change: the attacker, on an account made with the
/// victim's unverified address, asks to move it to their own address and
/// keeps the link; the victim signs up and proves the address. The
/// attacker's link no longer works.
async fn unexpired_email_change(db: TestDb) {
    let (f, sink) = world(&db).await;
    let (account, attacker) = attacker_account(&f).await;
    let html = attacker.get(f.down.url("/account")).send().await.unwrap().text().await.unwrap();
    let form = [("csrf", hidden(&html, "csrf")), ("email", "attacker@evil.test".into())];
    let r = attacker.post(f.down.url("/account/email")).form(&form).send().await.unwrap();
    assert!(location(&r).contains("done=email"), "{}", location(&r));
    let change = sink.nth("attacker@evil.test", 1).await.link("/verify-email").unwrap();

    let victim = Browser::new(&f.down.base_url);
    sign_up(&victim, VICTIM, VICTIM_PW).await;
    let link = sink.nth(VICTIM, 1).await.link("/verify-email").unwrap();
    let done = follow_link(&victim, &link, &[]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "same browser: the sign-up password is used");

    let a = Browser::new(&f.down.base_url);
    assert_eq!(a.get(&change).await.status(), StatusCode::BAD_REQUEST, "the attacker's change link is spent");
    let u = sesame::storage::users::find_by_id(&f.down.state.db, &account).await.unwrap().unwrap();
    assert_eq!(u.email.as_deref(), Some(VICTIM));
    assert!(u.email_verified);
    assert_ne!(corp_sub(&f).await, account);
}

/// Non-verifying IdP: a provider that does not verify addresses signs the
/// attacker in with the victim's address; the victim signs up with it and
/// follows the link. The victim's account holds nothing of the attacker's,
/// the attacker's identity now makes an account of its own, without the
/// address, and the victim is told what was removed.
async fn non_verifying_idp(db: TestDb) {
    let (f, sink) = world(&db).await;
    let (account, _attacker) = attacker_account(&f).await;
    let victim = Browser::new(&f.down.base_url);
    sign_up(&victim, VICTIM, VICTIM_PW).await;
    let link = sink.nth(VICTIM, 1).await.link("/verify-email").unwrap();
    let done = follow_link(&victim, &link, &[]).await;
    let back = victim.follow(done).await;
    let claims: Value = redeem(&f.down, &back).await;
    assert_eq!(claims["sub"], account.as_str());
    assert_eq!(claims["email_verified"], true);
    assert!(
        sesame::storage::identities::for_user(&f.down.state.db, &account).await.unwrap().is_empty(),
        "the attacker's identity is not on the victim's account"
    );
    let again = sign_in_through_corp(&f, &browser(), VICTIM).await;
    assert_ne!(again["sub"], account.as_str());
    assert!(again.get("email").is_none(), "the address is the victim's now: {again}");
    assert!(secured_notice(&sink, VICTIM).await.contains("Corp SSO"));
}

/// A stranger signs up with the owner's address and a password of theirs;
/// the owner asks for a new link and follows it. The stranger's password is
/// never installed: the owner chooses one on the link's page.
async fn a_resent_link_never_installs_a_strangers_password(db: TestDb) {
    let (f, sink) = world(&db).await;
    const OWNER: &str = "owner@example.com";
    sign_up(&Browser::new(&f.down.base_url), OWNER, ATTACKER_PW).await;
    let owner = Browser::new(&f.down.base_url);
    let html = owner.get("/verify-email/resend").await.text().await.unwrap();
    let r = owner.post_form("/verify-email/resend", &[("csrf", &hidden(&html, "csrf")), ("email", OWNER)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Mails go out concurrently: the resent link is the "Verify" one.
    let link = mail_with(&sink, OWNER, "Verify your email").await.link("/verify-email").unwrap();
    let page = owner.get(&link).await.text().await.unwrap();
    assert!(page.contains("name=\"password\""), "the owner chooses the password");
    let done = follow_link(&owner, &link, &[("password", VICTIM_PW)]).await;
    assert!(done.status().is_success() || done.status().is_redirection(), "{}", done.status());
    assert_eq!(password_sub(&f, OWNER, ATTACKER_PW).await, None, "the stranger's password never works");
    assert!(password_sub(&f, OWNER, VICTIM_PW).await.is_some());
}

/// Changing the address of an account without a password needs a recent
/// sign-in; the old address is told, and links mailed to it stop working.
async fn changing_the_address_needs_a_fresh_proof_and_spends_old_links(db: TestDb) {
    let (f, sink) = world(&db).await;
    let c = browser();
    let sub = sign_in_through_corp(&f, &c, ALICE).await["sub"].as_str().unwrap().to_string();
    f.down.state.clock.advance(f.down.state.config.login.reauth_secs as i64 + 60);
    let html = c.get(f.down.url("/account")).send().await.unwrap().text().await.unwrap();
    let form = [("csrf", hidden(&html, "csrf")), ("email", "alice@new.example".into())];
    let r = c.post(f.down.url("/account/email")).form(&form).send().await.unwrap();
    assert!(location(&r).contains("error=reauth"), "a stale session cannot move the address: {}", location(&r));
    let page = c.get(f.down.url("/account?error=reauth")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"reauth\""), "a way to sign in again");
    let again = c.get(f.down.url("/account?reauth=1")).send().await.unwrap();
    assert!(location(&again).contains("prompt=login"), "{}", location(&again));
    let link_form = [("csrf", hidden(&html, "csrf")), ("provider", "corp".into())];
    let r = c.post(f.down.url("/account/identities/link")).form(&link_form).send().await.unwrap();
    assert!(location(&r).contains("error=reauth"), "nor link another way in: {}", location(&r));

    // Signed in again: the change goes through, and a reset link mailed to
    // the old address before it is spent by it.
    let c = browser();
    assert_eq!(sign_in_through_corp(&f, &c, ALICE).await["sub"], sub.as_str());
    reset_request(&f, ALICE).await;
    let old_reset = sink.nth(ALICE, 1).await.link("/reset-password").unwrap();
    let html = c.get(f.down.url("/account")).send().await.unwrap().text().await.unwrap();
    let form = [("csrf", hidden(&html, "csrf")), ("email", "alice@new.example".into())];
    let r = c.post(f.down.url("/account/email")).form(&form).send().await.unwrap();
    assert!(location(&r).contains("done=email"), "{}", location(&r));
    let change = sink.nth("alice@new.example", 1).await.link("/verify-email").unwrap();
    let b = Browser::new(&f.down.base_url);
    assert_eq!(follow_link(&b, &change, &[]).await.status(), StatusCode::OK);
    mail_with(&sink, ALICE, "address was changed").await;
    assert_eq!(b.get(&old_reset).await.status(), StatusCode::BAD_REQUEST, "the old address's link is spent");
}

async fn reset_request(f: &Fed, email: &str) {
    let b = Browser::new(&f.down.base_url);
    let html = b.get("/forgot-password").await.text().await.unwrap();
    let r = b.post_form("/forgot-password", &[("csrf", &hidden(&html, "csrf")), ("email", email)]).await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn manage(app: &TestApp, token: &str, m: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .request(m, app.url(&format!("/api/v1{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A management client holding `write:clients` cannot give itself (or any
/// client) management permissions it does not hold; `write:roles` cannot
/// mint a role that does. A grant within the caller's own is fine.
async fn write_clients_is_not_full_admin(db: TestDb) {
    use reqwest::Method;
    let app = TestApp::spawn(&db, |c| c.database.client_cache_secs = 0).await;
    let aud = format!("{}/api/v1", app.base_url);
    let clerk = token_for(&app, &db, "clerk", &["read:clients", "write:clients"]).await;
    let every = ["read:users", "write:users", "read:clients", "write:clients", "read:roles", "write:roles"];

    let (status, p) =
        manage(&app, &clerk, Method::PATCH, "/clients/clerk", json!({"grant": {"api": aud, "permissions": every}}))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("its own API grants"), "{p}");
    let (status, _) = manage(
        &app,
        &clerk,
        Method::PATCH,
        "/clients/clerk",
        json!({"grant": {"api": aud, "permissions": ["read:clients"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not even within the ceiling: never its own");

    token_for(&app, &db, "other", &["read:users"]).await;
    let (status, p) = manage(
        &app,
        &clerk,
        Method::PATCH,
        "/clients/other",
        json!({"grant": {"api": aud, "permissions": ["write:users"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("`write:users`"), "{p}");
    let (status, p) = manage(
        &app,
        &clerk,
        Method::PATCH,
        "/clients/other",
        json!({"grant": {"api": aud, "permissions": ["read:clients"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a grant within the caller's own: {p}");

    // The token the clerk gets now carries no more than before.
    let again = token_for(&app, &db, "clerk2", &["read:clients"]).await;
    let claims = crate::flow::decode_payload(&again);
    assert_eq!(claims["permissions"], json!(["read:clients"]));

    let roler = token_for(&app, &db, "roler", &["read:roles", "write:roles"]).await;
    let (status, _) = manage(
        &app,
        &roler,
        Method::POST,
        "/roles",
        json!({"name": "superadmin", "permissions": {"api": aud, "permissions": ["write:keys"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = token_for(&app, &db, "admin", &["read:roles", "write:roles", "write:keys", "write:users"]).await;
    let (status, _) = manage(
        &app,
        &admin,
        Method::POST,
        "/roles",
        json!({"name": "keykeeper", "permissions": {"api": aud, "permissions": ["write:keys"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let user = add_user(&app, "someone@example.com", PW).await;
    let (status, p) =
        manage(&app, &roler, Method::POST, &format!("/users/{user}/roles"), json!({"role": "keykeeper"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a role carrying more than the caller holds: {p}");
    let (status, _) =
        manage(&app, &admin, Method::POST, &format!("/users/{user}/roles"), json!({"role": "keykeeper"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // `write:users` alone cannot take over that administrator's account.
    let clerk_users = token_for(&app, &db, "hr", &["read:users", "write:users"]).await;
    let (status, p) =
        manage(&app, &clerk_users, Method::PATCH, &format!("/users/{user}"), json!({"password": "a takeover pw"}))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
    // Nor `write:clients` redirect an administrator's tool to itself.
    let (status, p) =
        manage(&app, &clerk, Method::PATCH, "/clients/admin", json!({"redirect_uris": ["https://evil.example/cb"]}))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{p}");

    // An unverified address names nobody for a change: it may be a stranger's claim.
    crate::support::add_claim(&app, "claimant", "boss@example.com").await;
    let (status, _) = manage(&app, &admin, Method::POST, "/groups", json!({"name": "admins"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, p) =
        manage(&app, &admin, Method::PATCH, "/groups/admins", json!({"add_members": ["boss@example.com"]})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    let out = db.sesame_with(
        &["user", "set-password", "boss@example.com", "--password-stdin"],
        &[],
        Some("a new password 1"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not verified"), "{}", String::from_utf8_lossy(&out.stderr));
}
