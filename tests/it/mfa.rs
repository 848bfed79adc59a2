//! Second factors over HTTP, on both backends: an authenticator app enrolled
//! during a sign-in that requires it, codes computed here (RFC 6238), a code
//! accepted once and within one step of skew, recovery codes once each; the
//! policies (client, role, global), `acr`/`amr` in tokens and a refresh that
//! never raises them, step-up with `acr_values` and `max_age`, `prompt=none`,
//! remembered browsers and what revokes them, the account page's fresh-proof
//! rule, the CLI and the management API, wrong-code budgets, and a mailbox
//! proof that strips factors a stranger added.

use reqwest::StatusCode;
use serde_json::Value;

use crate::authorize::{CB, VERIFIER, auth, urlencode};
use crate::backend_tests;
use crate::flow::decode_payload;
use crate::management::token_for;
use crate::selfservice::{app_with_mail, audit, follow_link, has};
use crate::support::browser::{Browser, hidden, location, params};
use crate::support::{TestApp, TestDb, add_user, stdout_json};

backend_tests!(
    totp_enrolment_replay_skew_and_recovery_codes,
    policies_step_up_and_remembered_browsers,
    factor_changes_need_a_fresh_second_factor,
    admins_list_and_reset_factors,
    wrong_codes_are_budgeted_per_account,
    a_proven_mailbox_removes_factors_a_stranger_added,
    phishable_factors_never_make_themselves_phishing_resistant,
    a_remembered_browser_cannot_change_factors,
    max_age_zero_and_tightened_rules,
    an_old_session_signs_in_again_to_set_up_a_factor,
);

const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
const PW: &str = "correct horse battery";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn code(secret: &str, at: i64) -> String {
    sesame::mfa::totp::code_at(secret, at).unwrap()
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html.find(start).unwrap_or_else(|| panic!("no {start} in {html}")) + start.len();
    &html[i..i + html[i..].find(end).unwrap()]
}

async fn require_mfa(app: &TestApp, client_id: &str, on: bool) {
    let mut c = sesame::storage::clients::find(&app.state.db, client_id).await.unwrap().unwrap();
    c.require_mfa = on;
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
}

/// Opens `url` in `b` and signs in with the password; the first page that is
/// not a redirect within Sesame (the factor page, or the way back to the app).
async fn password(b: &Browser, url: &str, email: &str) -> reqwest::Response {
    let page = b.follow(b.get(url).await).await;
    let html = page.text().await.unwrap();
    let r = b.submit_login(&html, email, PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "password accepted");
    b.follow(r).await
}

/// Posts `code` on the factor page `html`.
async fn submit_code(b: &Browser, html: &str, code: &str, remember: bool) -> reqwest::Response {
    let (csrf, req) = (hidden(html, "csrf"), hidden(html, "req"));
    let mut form = vec![("csrf", csrf.as_str()), ("req", req.as_str()), ("code", code)];
    if remember {
        form.push(("remember", "1"));
    }
    b.post_form("/login/factor", &form).await
}

/// Redeems the code of a redirect back to the app; the token response.
async fn redeem(app: &TestApp, back: &reqwest::Response) -> Value {
    let u = url::Url::parse(&location(back)).unwrap_or_else(|_| panic!("not a redirect to the app: {back:?}"));
    let code = params(&u).get("code").cloned().unwrap_or_else(|| panic!("no code: {u}"));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("client_id", "spa"),
        ("code_verifier", VERIFIER),
    ];
    let r = app.http.post(app.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn id_claims(tokens: &Value) -> Value {
    decode_payload(tokens["id_token"].as_str().unwrap())
}

fn amr(c: &Value) -> Vec<String> {
    c["amr"].as_array().map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// Enrols an authenticator app for `user_id` through the service; its secret.
async fn enrol_totp(app: &TestApp, user_id: &str) -> String {
    let user = sesame::storage::users::find_by_id(&app.state.db, user_id).await.unwrap().unwrap();
    let f = app.state.factors();
    let e = f.start_totp("test", &user).await.unwrap();
    // The confirming code spends the current step: sign-ins use later ones.
    f.confirm_totp("test", &user, "Phone", &code(&e.secret, now() - 30)).await.unwrap();
    e.secret
}

async fn totp_enrolment_replay_skew_and_recovery_codes(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |c| c.database.client_cache_secs = 0).await;
    let alice = add_user(&app, "alice@example.com", PW).await;
    require_mfa(&app, "spa", true).await;

    // Required and none yet: the sign-in enrols one before any code is issued.
    let b = Browser::new(&app.base_url);
    let page = password(&b, &auth("spa", ""), "alice@example.com").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.url().path().ends_with("/login/factor"), "{}", page.url());
    let html = page.text().await.unwrap();
    assert!(html.contains("Set up a second factor") && html.contains("<svg"), "{html}");
    let secret = between(&html, "<code id=\"totp-secret\">", "</code>").to_string();
    let (csrf, req) = (hidden(&html, "csrf"), hidden(&html, "req"));
    let wrong = b.post_form("/login/factor/enrol", &[("csrf", &csrf), ("req", &req), ("code", "000000")]).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST, "a wrong code enrols nothing");
    let enrol_code = code(&secret, now());
    let r = b
        .post_form("/login/factor/enrol", &[("csrf", &csrf), ("req", &req), ("code", &enrol_code), ("name", "Phone")])
        .await;
    assert!(location(&r).contains("/login/factor/codes"), "{r:?}");
    let page = b.get(&location(&r)).await;
    let html = page.text().await.unwrap();
    let codes: Vec<String> = between(&html, "id=\"recovery-codes\">", "</ul>")
        .split("<code>")
        .skip(1)
        .map(|s| s[..s.find("</code>").unwrap()].to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{html}");
    // Shown once.
    let again = b.get(&format!("/login/factor/codes?req={req}")).await;
    assert!(again.status().is_redirection(), "the codes are not shown twice");
    let back = b.follow(b.get(&format!("/authorize/resume?req={req}")).await).await;
    let c = id_claims(&redeem(&app, &back).await);
    assert_eq!(amr(&c), ["pwd", "otp", "mfa"]);
    assert_eq!(c["acr"], MFA);
    assert!(sink.nth("alice@example.com", 1).await.subject().contains("sign-in methods changed"));

    // Another browser: the enrolment's code is spent; the next step (one
    // step of skew) is accepted; then it is spent too.
    let b2 = Browser::new(&app.base_url);
    let page = password(&b2, &auth("spa", ""), "alice@example.com").await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Verify it&#39;s you"), "{html}");
    let replay = submit_code(&b2, &html, &enrol_code, false).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert!(replay.text().await.unwrap().contains("used already"));
    let next = code(&secret, now() + 30);
    let ok = submit_code(&b2, &html, &next, false).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let back = b2.follow(ok).await;
    assert_eq!(id_claims(&redeem(&app, &back).await)["acr"], MFA);
    let b3 = Browser::new(&app.base_url);
    let html = password(&b3, &auth("spa", ""), "alice@example.com").await.text().await.unwrap();
    assert_eq!(submit_code(&b3, &html, &next, false).await.status(), StatusCode::UNAUTHORIZED, "each step once");
    assert_eq!(submit_code(&b3, &html, "123456", false).await.status(), StatusCode::UNAUTHORIZED);
    // Two steps away is outside the skew.
    let far = code(&secret, now() + 90);
    if far != next {
        assert_eq!(submit_code(&b3, &html, &far, false).await.status(), StatusCode::UNAUTHORIZED);
    }

    // A recovery code signs in once (typed any way), audited and mailed.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let ok = submit_code(&b3, &html, &typed, false).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER, "recovery code accepted");
    assert!(sink.nth("alice@example.com", 2).await.subject().contains("recovery code was used"));
    let b4 = Browser::new(&app.base_url);
    let html = password(&b4, &auth("spa", ""), "alice@example.com").await.text().await.unwrap();
    assert_eq!(submit_code(&b4, &html, &codes[0], false).await.status(), StatusCode::UNAUTHORIZED, "once each");
    let left = app.state.factors().recovery_codes_left(&alice).await.unwrap();
    assert_eq!(left, 9);

    let events = audit(&db, &["--user", &alice], |e| has(e, "recovery_code_used", "success", None)).await;
    assert!(has(&events, "mfa_enrolled", "success", None));
    assert!(has(&events, "mfa_challenge_success", "success", None));
    assert!(has(&events, "mfa_challenge_failure", "failure", Some("replayed_code")));
    assert!(has(&events, "mfa_challenge_failure", "failure", Some("wrong_code")));
    // Secrets are sealed at rest: the stored value is not the base32 key.
    let stored = sesame::storage::factors::for_user(&app.state.db, &alice).await.unwrap();
    assert!(!stored[0].secret.contains(&secret));
}

async fn policies_step_up_and_remembered_browsers(db: TestDb) {
    let (app, _sink) = app_with_mail(&db, |c| c.database.client_cache_secs = 0).await;
    let alice = add_user(&app, "alice@example.com", PW).await;
    let secret = enrol_totp(&app, &alice).await;

    // No rule asks: a password is enough, and tokens say so.
    let b = Browser::new(&app.base_url);
    let back = password(&b, &auth("spa", ""), "alice@example.com").await;
    assert_eq!(back.status(), StatusCode::FOUND);
    let first = redeem(&app, &back).await;
    let c = id_claims(&first);
    assert_eq!(amr(&c), ["pwd"]);
    assert!(c.get("acr").is_none());

    // prompt=none never shows a page: a step-up it cannot satisfy is interaction_required.
    let silent = b.get(&auth("spa", &format!("&prompt=none&acr_values={}", urlencode(MFA)))).await;
    let p = params(&url::Url::parse(&location(&silent)).unwrap());
    assert_eq!(p["error"], "interaction_required");

    // Step-up: the session proves a second factor; the browser is remembered.
    let r = b.follow(b.get(&auth("spa", &format!("&acr_values={}", urlencode(MFA)))).await).await;
    assert!(r.url().path().ends_with("/login/factor"));
    let html = r.text().await.unwrap();
    let ok = submit_code(&b, &html, &code(&secret, now()), true).await;
    assert!(ok.headers().get_all("set-cookie").iter().any(|v| v.to_str().unwrap().contains("_mfa=")));
    let c = id_claims(&redeem(&app, &b.follow(ok).await).await);
    assert_eq!(c["acr"], MFA);
    assert!(amr(&c).contains(&"otp".to_string()) && amr(&c).contains(&"mfa".to_string()));
    // The session keeps its level: silent auth gets it without a page.
    let silent = b.follow(b.get(&auth("spa", &format!("&prompt=none&acr_values={}", urlencode(MFA)))).await).await;
    assert_eq!(id_claims(&redeem(&app, &silent).await)["acr"], MFA);

    // A refresh never raises the level of a grant issued below it.
    let rt = first["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", "spa")];
    let refreshed: Value = app.http.post(app.url("/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let c = id_claims(&refreshed);
    assert!(c.get("acr").is_none(), "{c}");
    assert_eq!(amr(&c), ["pwd"]);

    // The remembered browser: a new sign-in here needs no code again.
    let back =
        password(&b, &auth("spa", &format!("&prompt=login&acr_values={}", urlencode(MFA))), "alice@example.com").await;
    assert_eq!(back.status(), StatusCode::FOUND, "remembered: straight back to the app");
    assert_eq!(id_claims(&redeem(&app, &back).await)["acr"], MFA);
    // …unless max_age is younger than the remembered proof.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = password(&b, &auth("spa", &format!("&max_age=1&acr_values={}", urlencode(MFA))), "alice@example.com").await;
    assert!(r.url().path().ends_with("/login/factor"), "max_age asks for the factor again");

    // A role's rule: its holders need a second factor on every client.
    assert!(db.sesame(&["role", "add", "finance", "--require-mfa"]).status.success());
    assert!(db.sesame(&["user", "grant-role", "alice@example.com", "finance"]).status.success());
    let b2 = Browser::new(&app.base_url);
    let r = password(&b2, &auth("spa", ""), "alice@example.com").await;
    assert!(r.url().path().ends_with("/login/factor"), "the role asks");
    assert!(db.sesame(&["role", "update", "finance", "--no-require-mfa"]).status.success());
    let back = password(&Browser::new(&app.base_url), &auth("spa", ""), "alice@example.com").await;
    assert_eq!(back.status(), StatusCode::FOUND);

    // Removing a factor forgets every remembered browser.
    let f = sesame::storage::factors::for_user(&app.state.db, &alice).await.unwrap();
    let user = sesame::storage::users::find_by_id(&app.state.db, &alice).await.unwrap().unwrap();
    app.state.factors().remove(&user, &f[0].factor_id, "test").await.unwrap();
    let secret = enrol_totp(&app, &alice).await;
    require_mfa(&app, "spa", true).await;
    let r = password(&b, &auth("spa", "&prompt=login"), "alice@example.com").await;
    assert!(r.url().path().ends_with("/login/factor"), "no longer remembered");
    let html = r.text().await.unwrap();
    assert_eq!(submit_code(&b, &html, &code(&secret, now()), false).await.status(), StatusCode::SEE_OTHER);
    app.stop().await;

    // The global policy: everyone, every client.
    let app = TestApp::spawn(&db, |c| c.mfa.policy = sesame::config::MfaPolicy::Required).await;
    add_user(&app, "bob@example.com", PW).await;
    let r = password(&Browser::new(&app.base_url), &auth("spa", ""), "bob@example.com").await;
    assert!(r.text().await.unwrap().contains("Set up a second factor"));
    let d = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(d["acr_values_supported"], serde_json::json!([MFA, "phr"]));
}

/// The account page, for a browser whose session proved `secret` (or only
/// the password when None): its HTML.
async fn account(b: &Browser) -> String {
    let r = b.get("/account").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

async fn factor_changes_need_a_fresh_second_factor(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |c| c.database.client_cache_secs = 0).await;
    let alice = add_user(&app, "alice@example.com", PW).await;
    let secret = enrol_totp(&app, &alice).await;
    // Signed in with the password only.
    let b = Browser::new(&app.base_url);
    assert_eq!(password(&b, &auth("spa", ""), "alice@example.com").await.status(), StatusCode::FOUND);
    let html = account(&b).await;
    assert!(html.contains("Phone") && html.contains("Authenticator app"), "{html}");
    let csrf = hidden(&html, "csrf");
    let factor = sesame::storage::factors::for_user(&app.state.db, &alice).await.unwrap()[0].factor_id.clone();
    // A password alone cannot take the factor away, nor add another.
    let r = b.post_form("/account/factors/remove", &[("csrf", &csrf), ("factor_id", &factor)]).await;
    assert!(location(&r).contains("error=reauth_mfa"), "{}", location(&r));
    assert!(location(&b.get("/account/factors/totp").await).contains("error=reauth_mfa"));
    let r = b.post_form("/account/factors/recovery-codes", &[("csrf", &csrf)]).await;
    assert!(location(&r).contains("error=reauth_mfa"));
    assert_eq!(sesame::storage::factors::for_user(&app.state.db, &alice).await.unwrap().len(), 1);
    // Nor change the password or the address of an account that has a factor.
    let form = [("csrf", csrf.as_str()), ("current_password", PW), ("new_password", "another long password")];
    assert!(location(&b.post_form("/account/password", &form).await).contains("error=reauth_mfa"));
    let form = [("csrf", csrf.as_str()), ("current_password", PW), ("email", "mallory@example.com")];
    assert!(location(&b.post_form("/account/email", &form).await).contains("error=reauth_mfa"));
    // "Sign in again" asks for the password and the second factor.
    let r = b.follow(b.get("/account?reauth=mfa").await).await;
    let html = r.text().await.unwrap();
    let r = b.submit_login(&html, "alice@example.com", PW).await;
    let page = b.follow(r).await;
    assert!(page.url().path().ends_with("/login/factor"));
    let html = page.text().await.unwrap();
    let r = b.follow(submit_code(&b, &html, &code(&secret, now()), false).await).await;
    assert_eq!(r.url().path(), "/account", "{r:?}");
    // Now: a second app, renamed; new recovery codes; the first removed.
    let html = b.follow(b.get("/account/factors/totp").await).await.text().await.unwrap();
    let second = between(&html, "<code id=\"totp-secret\">", "</code>").to_string();
    let csrf = hidden(&html, "csrf");
    let r = b
        .post_form("/account/factors/totp", &[("csrf", &csrf), ("code", &code(&second, now())), ("name", "Tablet")])
        .await;
    assert!(location(&r).contains("done=factor_added"), "{r:?}");
    let r =
        b.post_form("/account/factors/rename", &[("csrf", &csrf), ("factor_id", &factor), ("name", "Old phone")]).await;
    assert!(location(&r).contains("done=factor_renamed"));
    let r = b.post_form("/account/factors/recovery-codes", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap().matches("<code>").count(), 10);
    let r = b.post_form("/account/factors/remove", &[("csrf", &csrf), ("factor_id", &factor)]).await;
    assert!(location(&r).contains("done=factor_removed"));
    let left = sesame::storage::factors::for_user(&app.state.db, &alice).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "Tablet");
    let events = audit(&db, &["--user", &alice, "--type", "mfa_removed"], |e| !e.is_empty()).await;
    assert_eq!(events[0]["actor"], format!("user:{alice}"));
    // Mailed: the app added first, the second, the new codes, the removal.
    for n in 1..=4 {
        assert!(sink.nth("alice@example.com", n).await.subject().contains("sign-in methods changed"));
    }
}

async fn admins_list_and_reset_factors(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |c| c.database.client_cache_secs = 0).await;
    let alice = add_user(&app, "alice@example.com", PW).await;
    enrol_totp(&app, &alice).await;
    enrol_totp(&app, &alice).await;
    let out = db.sesame(&["--json", "user", "factors", "alice@example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    assert_eq!(v["factors"].as_array().unwrap().len(), 2);
    assert_eq!(v["recovery_codes_left"], 10);
    assert!(v["factors"][0].get("secret").is_none(), "no secret leaves");

    // A session that proved a factor: the reset ends it.
    let b = Browser::new(&app.base_url);
    let secret = enrol_totp(&app, &alice).await;
    let html = password(&b, &auth("spa", &format!("&acr_values={}", urlencode(MFA))), "alice@example.com").await;
    let html = html.text().await.unwrap();
    assert_eq!(submit_code(&b, &html, &code(&secret, now()), false).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(b.get("/account").await.status(), StatusCode::OK);
    let token = token_for(&app, &db, "admin", &["read:users", "write:users"]).await;
    let api = |path: &str| app.url(&format!("/api/v1/users/{alice}/factors{path}"));
    let list: Value = app.http.get(api("")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["factors"].as_array().unwrap().len(), 3);
    let id = list["factors"][0]["factor_id"].as_str().unwrap();
    let r = app.http.delete(api(&format!("/{id}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.http.delete(api(&format!("/{id}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let reader = token_for(&app, &db, "reader", &["read:users"]).await;
    let r = app.http.delete(api("/x")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let doc = app.get_json("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/users/{id}/factors/{factor_id}"]["delete"].is_object());

    let out = db.sesame_with(&["user", "reset-mfa", "alice@example.com"], &[], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(sesame::storage::factors::for_user(&app.state.db, &alice).await.unwrap().is_empty());
    assert_eq!(app.state.factors().recovery_codes_left(&alice).await.unwrap(), 0);
    assert!(b.get("/account").await.status().is_redirection(), "the reset ended the session");
    let events = audit(&db, &["--user", &alice, "--type", "mfa_removed"], |e| e.len() >= 2).await;
    assert!(events.iter().any(|e| e["actor"] == "cli"), "{events:?}");
    assert!(events.iter().any(|e| e["actor"] == "client:admin"), "{events:?}");
    let _ = sink.nth("alice@example.com", 3).await;
}

async fn wrong_codes_are_budgeted_per_account(db: TestDb) {
    let (app, _sink) = app_with_mail(&db, |c| {
        c.database.client_cache_secs = 0;
        c.rate_limit.trust_forwarded_for = true;
        c.rate_limit.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.mfa.max_attempts_per_hour = 8;
    })
    .await;
    let alice = add_user(&app, "alice@example.com", PW).await;
    let secret = enrol_totp(&app, &alice).await;
    require_mfa(&app, "spa", true).await;
    // The owner proves the factor once from their address: it becomes known.
    let owner = Browser::new(&app.base_url);
    let html = password(&owner, &auth("spa", ""), "alice@example.com").await.text().await.unwrap();
    assert_eq!(submit_code(&owner, &html, &code(&secret, now()), false).await.status(), StatusCode::SEE_OTHER);
    // A stranger who has the password guesses from many addresses.
    let thief = Browser::new(&app.base_url);
    let html = password(&thief, &auth("spa", ""), "alice@example.com").await.text().await.unwrap();
    let (csrf, req) = (hidden(&html, "csrf"), hidden(&html, "req"));
    let mut refused = 0;
    for i in 0..12 {
        let form = [("csrf", csrf.as_str()), ("req", req.as_str()), ("code", "000000")];
        let xff = format!("203.0.113.{}", i + 1);
        let r =
            thief.http.post(app.url("/login/factor")).header("x-forwarded-for", xff).form(&form).send().await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused >= 3, "the hourly budget stops strangers ({refused} refused)");
    // The owner is not locked out: their address proved the factor before.
    let html = password(&owner, &auth("spa", "&prompt=login"), "alice@example.com").await.text().await.unwrap();
    let r = submit_code(&owner, &html, &code(&secret, now() + 30), false).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the owner still signs in");
    audit(&db, &["--user", &alice], |e| has(e, "mfa_challenge_failure", "failure", Some("throttled"))).await;
}

async fn a_proven_mailbox_removes_factors_a_stranger_added(db: TestDb) {
    let (app, sink) = app_with_mail(&db, |c| c.database.client_cache_secs = 0).await;
    // A stranger's account claims the address, unverified, with their own app.
    let claim = "00000000-0000-0000-0000-00000000c1a1";
    crate::support::add_claim(&app, claim, "victim@example.com").await;
    enrol_totp(&app, claim).await;
    // The owner resets the password through the mailbox.
    let b = Browser::new(&app.base_url);
    let html = b.get("/forgot-password").await.text().await.unwrap();
    let r = b.post_form("/forgot-password", &[("csrf", &hidden(&html, "csrf")), ("email", "victim@example.com")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Two mails: the notice of the app added to the claim, and the link
    // (sent each on its own task, in either order).
    let _ = sink.nth("victim@example.com", 2).await;
    let link = sink.to("victim@example.com").iter().find_map(|m| m.link("/reset-password")).expect("the reset link");
    let r = follow_link(&b, &link, &[("password", "the owner's new pw")]).await;
    assert!(r.status().is_success() || r.status().is_redirection(), "{r:?}");
    assert!(
        sesame::storage::factors::for_user(&app.state.db, claim).await.unwrap().is_empty(),
        "the stranger's factor is gone"
    );
    let mut notice = None;
    for _ in 0..50 {
        notice = sink.to("victim@example.com").into_iter().find(|m| m.subject().contains("secured"));
        if notice.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let notice = notice.expect("the owner is told what was removed");
    assert!(notice.data.contains("second factor"), "{}", notice.data);
}

/// A passkey stored for `user_id` as if registered (the browser suite
/// registers real ones; here only the rules around it are under test).
async fn fake_passkey(app: &TestApp, user_id: &str) {
    let now = app.state.clock.now();
    let f = sesame::storage::factors::Factor {
        factor_id: format!("pk_{user_id}"),
        user_id: user_id.into(),
        kind: "passkey".into(),
        name: "Laptop".into(),
        secret: "{}".into(),
        credential_id: Some(format!("cred-{user_id}")),
        last_step: 0,
        created_at: now,
        last_used_at: None,
    };
    sesame::storage::factors::insert(&app.state.db, &f).await.unwrap();
}

/// The JSON passkey endpoint `path` for the page `html`: its status.
async fn passkey_call(b: &Browser, path: &str, html: &str, mode: &str) -> StatusCode {
    // The values the page's script reads (`data-csrf`, `data-req`).
    // (or, on a page without them, its forms' hidden fields).
    let data = |name: &str| match html.contains(&format!("data-{name}=")) {
        true => between(html, &format!("data-{name}=\""), "\"").to_string(),
        false if html.contains(&format!("name=\"{name}\"")) => hidden(html, name),
        false => String::new(),
    };
    let body = serde_json::json!({ "csrf": data("csrf"), "req": data("req"), "mode": mode });
    b.http.post(format!("{}{path}", b.base)).json(&body).send().await.unwrap().status()
}

async fn phishable_factors_never_make_themselves_phishing_resistant(db: TestDb) {
    let (app, _sink) = app_with_mail(&db, |c| {
        c.database.client_cache_secs = 0;
        // A host name: passkeys are offered.
        c.issuer = "{localhost}".into();
    })
    .await;
    let alice = add_user(&app, "alice@example.com", PW).await;
    let secret = enrol_totp(&app, &alice).await;
    let phr = "&acr_values=phr";
    // The passkey endpoints answer bad calls with the JSON error their script shows.
    let probe = Browser::new(&app.base_url);
    for (body, status) in [("{not json", StatusCode::BAD_REQUEST), ("{\"req\": \"x\"}", StatusCode::FORBIDDEN)] {
        for path in ["/login/passkey/options", "/login/factor/passkey", "/account/factors/passkey"] {
            let r = probe.http.post(format!("{}{path}", probe.base)).header("content-type", "application/json");
            let r = r.body(body).send().await.unwrap();
            assert_eq!(r.status(), status, "{path} {body}");
            let e: Value = r.json().await.unwrap();
            assert!(e["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{e}");
        }
    }
    // An account with an app only: a request for `phr` may add a passkey
    // after the app's code (it counts once it is used)…
    let b = Browser::new(&app.base_url);
    let html = password(&b, &auth("spa", phr), "alice@example.com").await.text().await.unwrap();
    assert!(html.contains("asks for a passkey"), "{html}");
    assert_eq!(passkey_call(&b, "/login/factor/passkey/options", &html, "register").await, StatusCode::FORBIDDEN);
    let r = b.follow(submit_code(&b, &html, &code(&secret, now()), false).await).await;
    let html = r.text().await.unwrap();
    assert_eq!(passkey_call(&b, "/login/factor/passkey/options", &html, "register").await, StatusCode::OK);
    // …but beside a passkey, the app's code adds none, here or on the account page.
    fake_passkey(&app, &alice).await;
    let b = Browser::new(&app.base_url);
    let html = password(&b, &auth("spa", phr), "alice@example.com").await.text().await.unwrap();
    let r = b.follow(submit_code(&b, &html, &code(&secret, now() + 30), false).await).await;
    let html = r.text().await.unwrap();
    assert_eq!(passkey_call(&b, "/login/factor/passkey/options", &html, "register").await, StatusCode::FORBIDDEN);
    // (The stored passkey is a stand-in: no ceremony can start with it.)
    assert_ne!(passkey_call(&b, "/login/factor/passkey/options", &html, "check").await, StatusCode::FORBIDDEN);
    let html = account(&b).await;
    assert_eq!(passkey_call(&b, "/account/factors/passkey/options", &html, "").await, StatusCode::FORBIDDEN);
    // Nor takes the last passkey away.
    let csrf = hidden(&html, "csrf");
    let pk = format!("pk_{alice}");
    let r = b.post_form("/account/factors/remove", &[("csrf", &csrf), ("factor_id", &pk)]).await;
    assert!(location(&r).contains("error=reauth_phr"), "{}", location(&r));
    assert_eq!(sesame::storage::factors::for_user(&app.state.db, &alice).await.unwrap().len(), 2);
}

async fn a_remembered_browser_cannot_change_factors(db: TestDb) {
    let (app, _sink) = app_with_mail(&db, |c| {
        c.database.client_cache_secs = 0;
        c.login.reauth_secs = 2;
    })
    .await;
    let alice = add_user(&app, "alice@example.com", PW).await;
    let secret = enrol_totp(&app, &alice).await;
    require_mfa(&app, "spa", true).await;
    let b = Browser::new(&app.base_url);
    let html = password(&b, &auth("spa", ""), "alice@example.com").await.text().await.unwrap();
    assert_eq!(submit_code(&b, &html, &code(&secret, now()), true).await.status(), StatusCode::SEE_OTHER);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    // A new sign-in in the remembered browser needs no code…
    assert_eq!(password(&b, &auth("spa", "&prompt=login"), "alice@example.com").await.status(), StatusCode::FOUND);
    // …but its old proof changes no factor.
    let csrf = hidden(&account(&b).await, "csrf");
    let r = b.post_form("/account/factors/recovery-codes", &[("csrf", &csrf)]).await;
    assert!(location(&r).contains("error=reauth_mfa"), "{}", location(&r));
    // "Sign in again" asks for the code again, then the change goes through.
    let r = b.follow(b.get("/account?reauth=mfa").await).await;
    let html = r.text().await.unwrap();
    let page = b.follow(b.submit_login(&html, "alice@example.com", PW).await).await;
    assert!(page.url().path().ends_with("/login/factor"), "the remembered proof is too old for max_age");
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"code\""), "the page offers the code form: {html}");
    let r = b.follow(submit_code(&b, &html, &code(&secret, now() + 30), false).await).await;
    assert_eq!(r.url().path(), "/account");
    let csrf = hidden(&r.text().await.unwrap(), "csrf");
    let r = b.post_form("/account/factors/recovery-codes", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn max_age_zero_and_tightened_rules(db: TestDb) {
    let (app, _sink) = app_with_mail(&db, |c| c.database.client_cache_secs = 0).await;
    let alice = add_user(&app, "alice@example.com", PW).await;
    let secret = enrol_totp(&app, &alice).await;
    // A token issued on a password alone.
    let b = Browser::new(&app.base_url);
    let plain = redeem(&app, &password(&b, &auth("spa", ""), "alice@example.com").await).await;
    // max_age=0 with a second factor: the password and the code, then the
    // app — a proof made during the request is not asked for again.
    let step = format!("&max_age=0&acr_values={}", urlencode(MFA));
    let page = password(&b, &auth("spa", &step), "alice@example.com").await;
    assert!(page.url().path().ends_with("/login/factor"));
    let html = page.text().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let back = b.follow(submit_code(&b, &html, &code(&secret, now()), false).await).await;
    assert_eq!(back.status(), StatusCode::FOUND, "back to the app, not stuck");
    assert_eq!(id_claims(&redeem(&app, &back).await)["acr"], MFA);
    // The application now requires a second factor: the older grant's
    // refresh token is refused; the user signs in again.
    require_mfa(&app, "spa", true).await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", plain["refresh_token"].as_str().unwrap()),
        ("client_id", "spa"),
    ];
    let r = app.http.post(app.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert!(e["error_description"].as_str().unwrap().contains("second factor"));
}

async fn an_old_session_signs_in_again_to_set_up_a_factor(db: TestDb) {
    let (app, _sink) = app_with_mail(&db, |c| {
        c.database.client_cache_secs = 0;
        c.login.reauth_secs = 1;
    })
    .await;
    add_user(&app, "alice@example.com", PW).await;
    let b = Browser::new(&app.base_url);
    assert_eq!(password(&b, &auth("spa", ""), "alice@example.com").await.status(), StatusCode::FOUND);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // The rule arrives; single sign-on brings the old session to the factor page.
    require_mfa(&app, "spa", true).await;
    let page = b.follow(b.get(&auth("spa", "")).await).await;
    assert!(page.url().path().ends_with("/login/factor"));
    let html = page.text().await.unwrap();
    assert!(!html.contains("totp-secret"), "no setup on an old session");
    let again = between(&html, "id=\"relogin\" href=\"", "\"").replace("&amp;", "&");
    let login = b.follow(b.get(&again).await).await;
    let html = login.text().await.unwrap();
    let page = b.follow(b.submit_login(&html, "alice@example.com", PW).await).await;
    assert!(page.text().await.unwrap().contains("Set up a second factor"));
}
