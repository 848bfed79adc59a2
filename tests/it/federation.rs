//! Federation end to end: a second Sesame is the upstream OpenID provider
//! (real discovery, JWKS, PKCE and nonce on both sides); an in-process fake
//! plays GitHub- and Apple-style providers and sends tampered ID tokens.
//! The two Sesames share one cookie jar (cookies ignore ports), so the
//! upstream has its own session cookie name.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sesame::config::{ProviderConfig, ProviderKind, Secret};

use crate::authorize::{CB, VERIFIER, auth};
use crate::backend_tests;
use crate::flow::decode_payload;
use crate::support::browser::{hidden, location, params};
use crate::support::fake_idp::{FakeIdp, Settings, Tamper, apple_team_key};
use crate::support::{Backend, TestApp, TestDb, add_client, add_user};

const PW: &str = "correct horse battery";
const UP_SECRET: &str = "upstream-client-secret-0123456789";

pub struct Fed {
    pub down: TestApp,
    pub up: TestApp,
    _updb: TestDb,
}

/// A downstream Sesame with provider `corp` = an upstream Sesame where
/// alice@example.com (verified) has a password.
pub async fn fed(db: &TestDb, tweak: impl FnOnce(&mut sesame::config::Config)) -> Fed {
    let updb = TestDb::new(Backend::Sqlite).await.unwrap();
    let up = TestApp::spawn(&updb, |c| c.session.cookie_name = Some("upstream".into())).await;
    add_user(&up, "alice@example.com", PW).await;
    let p = ProviderConfig {
        id: "corp".into(),
        name: "Corp SSO".into(),
        kind: ProviderKind::Oidc,
        issuer: up.state.issuer.as_str().to_string(),
        client_id: "downstream".into(),
        client_secret: Secret::new(UP_SECRET),
        ..Default::default()
    };
    let down = TestApp::spawn(db, |c| {
        c.providers = vec![p];
        tweak(c);
    })
    .await;
    add_client(&down, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    let callbacks =
        down.state.config.providers.iter().map(|p| format!("{}/federation/{}/callback", down.base_url, p.id));
    let spec = sesame::clients::ClientSpec {
        client_id: Some("downstream".into()),
        name: "Downstream Sesame".into(),
        first_party: true,
        redirect_uris: callbacks.collect(),
        grant_types: vec!["authorization_code".into()],
        ..Default::default()
    };
    let mut c = sesame::clients::validate(spec, false, up.state.clock.now()).unwrap().client;
    c.secret_hash = Some(sesame::crypto::random::sha256_hex(UP_SECRET));
    sesame::storage::clients::insert(&up.state.db, &c).await.unwrap();
    Fed { down, up, _updb: updb }
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap()
}

/// Follows redirects through both Sesames; stops at a page or at the app's callback.
pub async fn walk(c: &reqwest::Client, mut resp: reqwest::Response) -> reqwest::Response {
    for _ in 0..12 {
        if !resp.status().is_redirection() {
            return resp;
        }
        let loc = location(&resp);
        if loc.starts_with(CB) {
            return resp;
        }
        let next = resp.url().join(&loc).unwrap();
        resp = c.get(next).send().await.unwrap();
    }
    panic!("redirect loop");
}

pub async fn open(c: &reqwest::Client, down: &TestApp, extra: &str) -> reqwest::Response {
    walk(c, c.get(down.url(&auth("spa", extra))).send().await.unwrap()).await
}

/// The href of the "Continue with …" button of provider `id`.
pub fn button(html: &str, id: &str) -> String {
    let needle = format!("id=\"provider-{id}\" href=\"");
    let start = html.find(&needle).unwrap_or_else(|| panic!("no button {id} in {html}")) + needle.len();
    html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&")
}

/// Signs in on the upstream Sesame's login box shown by `page`.
pub async fn upstream_login(c: &reqwest::Client, page: reqwest::Response, email: &str) -> reqwest::Response {
    let base = page.url().origin().ascii_serialization();
    assert!(page.url().path().ends_with("/login"), "upstream login box expected: {}", page.url());
    let html = page.text().await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf")),
        ("req", hidden(&html, "req")),
        ("email", email.into()),
        ("password", PW.into()),
    ];
    walk(c, c.post(format!("{base}/login")).form(&form).send().await.unwrap()).await
}

/// Submits the downstream login box shown in `html` with `email`'s password.
async fn password_on(c: &reqwest::Client, f: &Fed, html: &str, email: &str) -> reqwest::Response {
    let form = [
        ("csrf", hidden(html, "csrf")),
        ("req", hidden(html, "req")),
        ("email", email.into()),
        ("password", PW.into()),
    ];
    walk(c, c.post(f.down.url("/login")).form(&form).send().await.unwrap()).await
}

/// Redeems the code of a redirect to the app; returns the ID token's claims.
pub async fn redeem(down: &TestApp, back: &reqwest::Response) -> Value {
    assert_eq!(back.status(), StatusCode::FOUND, "redirect to the app expected");
    let p = params(&url::Url::parse(&location(back)).unwrap());
    let code = p.get("code").unwrap_or_else(|| panic!("no code: {p:?}"));
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ];
    let tok: Value =
        reqwest::Client::new().post(down.url("/token")).form(&form).send().await.unwrap().json().await.unwrap();
    decode_payload(tok["id_token"].as_str().unwrap_or_else(|| panic!("no id_token: {tok}")))
}

/// Chooser → upstream login box → back to the app.
pub async fn sign_in_through_corp(f: &Fed, c: &reqwest::Client, email: &str) -> Value {
    let page = open(c, &f.down, "").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Continue with Corp SSO"), "{html}");
    let go = button(&html, "corp");
    let at_upstream = walk(c, c.get(f.down.url(&go)).send().await.unwrap()).await;
    let back = upstream_login(c, at_upstream, email).await;
    redeem(&f.down, &back).await
}

backend_tests!(
    first_login_creates_the_user_and_returns_map_to_the_same_sub,
    linking_waits_for_proof_of_the_existing_account,
    an_unverified_email_never_links,
    connection_skips_the_chooser,
    upstream_errors_end_on_the_login_box,
    upstream_down_or_slow,
    tampered_id_tokens_are_refused,
    github_style_takes_only_the_primary_verified_email,
    apple_style_form_post_with_a_minted_secret,
    cli_shows_unlinks_and_checks,
    proof_through_a_provider_already_linked,
    account_rules_refuse_with_a_message,
    an_upstream_second_factor_counts_only_when_trusted,
    password_login_off_with_one_provider_goes_straight_there,
    a_pending_link_expires_unused,
    linked_from_the_account_page,
);

async fn first_login_creates_the_user_and_returns_map_to_the_same_sub(db: TestDb) {
    let f = fed(&db, |_| {}).await;
    let claims = sign_in_through_corp(&f, &browser(), "alice@example.com").await;
    let sub = claims["sub"].as_str().unwrap().to_string();
    assert_eq!(claims["idp"], "corp");
    // The upstream Sesame says how it authenticated (a password).
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    let user = sesame::storage::users::find_by_id(&f.down.state.db, &sub).await.unwrap().unwrap();
    assert!(user.password_hash.is_none(), "a federated user has no password");
    let ids = sesame::storage::identities::for_user(&f.down.state.db, &sub).await.unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].provider, "corp");

    // Upstream email changes (verified): same Sesame user, email follows.
    let mut u = sesame::storage::users::find_by_email(&f.up.state.db, "alice@example.com").await.unwrap().unwrap();
    u.email = Some("alice@corp.example".into());
    sesame::storage::users::update(&f.up.state.db, &u).await.unwrap();
    let again = sign_in_through_corp(&f, &browser(), "alice@corp.example").await;
    assert_eq!(again["sub"], sub.as_str());
    assert_eq!(again["email"], "alice@corp.example");
    let n = sesame::storage::users::list(&f.down.state.db, 100, 0).await.unwrap().len();
    assert_eq!(n, 1, "no second account");
}

async fn linking_waits_for_proof_of_the_existing_account(db: TestDb) {
    let f = fed(&db, |_| {}).await;
    let existing = add_user(&f.down, "alice@example.com", PW).await;
    let mallory = add_user(&f.down, "mallory@example.com", PW).await;
    let c = browser();
    let page = open(&c, &f.down, "").await;
    let go = button(&page.text().await.unwrap(), "corp");
    let at_upstream = walk(&c, c.get(f.down.url(&go)).send().await.unwrap()).await;
    let back = upstream_login(&c, at_upstream, "alice@example.com").await;
    // Not signed in, not merged: the login box asks for the account's password.
    assert_eq!(back.status(), StatusCode::OK);
    assert!(back.url().path().ends_with("/login"));
    let html = back.text().await.unwrap();
    assert!(html.contains("already exists") && html.contains("Corp SSO"), "{html}");
    assert!(sesame::storage::identities::for_user(&f.down.state.db, &existing).await.unwrap().is_empty());

    // Signing in to another account proves nothing and links nothing.
    let r = password_on(&c, &f, &html, "mallory@example.com").await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(sesame::storage::identities::for_user(&f.down.state.db, &mallory).await.unwrap().is_empty());
    assert!(sesame::storage::identities::for_user(&f.down.state.db, &existing).await.unwrap().is_empty());
    let n: usize = sesame::storage::users::list(&f.down.state.db, 100, 0).await.unwrap().len();
    assert_eq!(n, 2);

    // The owner proves it with the password: linked, and the tokens are the existing account's.
    let c = browser();
    let page = open(&c, &f.down, "").await;
    let go = button(&page.text().await.unwrap(), "corp");
    let at_upstream = walk(&c, c.get(f.down.url(&go)).send().await.unwrap()).await;
    let back = upstream_login(&c, at_upstream, "alice@example.com").await;
    let html = back.text().await.unwrap();
    let r = password_on(&c, &f, &html, "alice@example.com").await;
    let claims = redeem(&f.down, &r).await;
    assert_eq!(claims["sub"], existing.as_str());
    let ids = sesame::storage::identities::for_user(&f.down.state.db, &existing).await.unwrap();
    assert_eq!(ids.len(), 1, "linked after proof");

    // From now on the provider alone signs in to that account.
    let claims = sign_in_through_corp(&f, &browser(), "alice@example.com").await;
    assert_eq!(claims["sub"], existing.as_str());
    assert_eq!(claims["idp"], "corp");
}

async fn an_unverified_email_never_links(db: TestDb) {
    let f = fed(&db, |_| {}).await;
    let existing = add_user(&f.down, "alice@example.com", PW).await;
    let mut u = sesame::storage::users::find_by_email(&f.up.state.db, "alice@example.com").await.unwrap().unwrap();
    u.email_verified = false;
    sesame::storage::users::update(&f.up.state.db, &u).await.unwrap();
    let claims = sign_in_through_corp(&f, &browser(), "alice@example.com").await;
    let sub = claims["sub"].as_str().unwrap();
    assert_ne!(sub, existing, "a new account, not the existing one");
    assert!(claims.get("email").is_none(), "the unverified address is not taken onto the new account: {claims}");
    let new = sesame::storage::users::find_by_id(&f.down.state.db, sub).await.unwrap().unwrap();
    assert_eq!(new.email, None);
    assert!(sesame::storage::identities::for_user(&f.down.state.db, &existing).await.unwrap().is_empty());
}

async fn connection_skips_the_chooser(db: TestDb) {
    let f = fed(&db, |_| {}).await;
    let c = browser();
    let r = c
        .get(f.down.url(&auth("spa", "&connection=corp&login_hint=alice%40example.com&prompt=login")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).contains("/federation/corp/start?req="), "{}", location(&r));
    let r = c.get(r.url().join(&location(&r)).unwrap()).send().await.unwrap();
    let upstream = url::Url::parse(&location(&r)).unwrap();
    assert!(upstream.as_str().starts_with(&f.up.base_url), "{upstream}");
    let q = params(&upstream);
    assert_eq!(q["login_hint"], "alice@example.com", "login_hint forwarded");
    assert_eq!(q["prompt"], "login", "prompt=login forwarded");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["nonce"].len() >= 20 && q["state"].len() >= 32);
    assert_eq!(q["redirect_uri"], format!("{}/federation/corp/callback", f.down.base_url));
    let at_upstream = walk(&c, c.get(upstream).send().await.unwrap()).await;
    let back = upstream_login(&c, at_upstream, "alice@example.com").await;
    assert_eq!(redeem(&f.down, &back).await["idp"], "corp");

    // An unknown connection goes back to the app as invalid_request.
    let r = browser().get(f.down.url(&auth("spa", "&connection=nope"))).send().await.unwrap();
    let p = params(&url::Url::parse(&location(&r)).unwrap());
    assert_eq!(p["error"], "invalid_request");
}

/// Starts a round trip with `connection=corp` and returns the `state` sent upstream.
async fn state_sent_upstream(f: &Fed, c: &reqwest::Client) -> String {
    let r = c.get(f.down.url(&auth("spa", "&connection=corp"))).send().await.unwrap();
    let r = c.get(r.url().join(&location(&r)).unwrap()).send().await.unwrap();
    params(&url::Url::parse(&location(&r)).unwrap())["state"].clone()
}

async fn login_box_says(c: &reqwest::Client, r: reqwest::Response, words: &str) {
    let r = walk(c, r).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", r.url());
    assert!(r.url().path().ends_with("/login"));
    let html = r.text().await.unwrap();
    assert!(html.contains(words), "expected `{words}` in {html}");
    assert!(html.contains("id=\"provider-corp\""), "a retry button");
}

async fn upstream_errors_end_on_the_login_box(db: TestDb) {
    let f = fed(&db, |_| {}).await;
    let c = browser();
    let cb = f.down.url("/federation/corp/callback");

    // The user cancels at the upstream.
    let st = state_sent_upstream(&f, &c).await;
    let r = c.get(format!("{cb}?state={st}&error=access_denied")).send().await.unwrap();
    login_box_says(&c, r, "was cancelled").await;
    // The same answer again: a replay.
    let r = c.get(format!("{cb}?state={st}&error=access_denied")).send().await.unwrap();
    login_box_says(&c, r, "already used").await;
    // An upstream error.
    let st = state_sent_upstream(&f, &c).await;
    let r = c.get(format!("{cb}?state={st}&error=server_error&error_description=boom")).send().await.unwrap();
    login_box_says(&c, r, "did not sign you in").await;
    // An upstream error whose text would forge a log line is refused at the
    // edge, before anything logs it (every value from outside that reaches a
    // log line is escaped besides: logging.rs).
    let st = state_sent_upstream(&f, &c).await;
    let forged = format!("{cb}?state={st}&error=server_error&error_description=x%0D%0Alevel%3DERROR%20forged");
    let r = c.get(forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!r.text().await.unwrap().contains("forged"), "the text is not echoed");
    // A code the upstream never issued.
    let st = state_sent_upstream(&f, &c).await;
    let r = c.get(format!("{cb}?state={st}&code=forged")).send().await.unwrap();
    login_box_says(&c, r, "did not sign you in").await;
    // Too slow: the round trip expired.
    let st = state_sent_upstream(&f, &c).await;
    f.down.state.clock.advance(601);
    let r = c.get(format!("{cb}?state={st}&code=x")).send().await.unwrap();
    login_box_says(&c, r, "took too long").await;

    // A state nobody issued, or another browser's: an error page, no sign-in.
    let r = c.get(format!("{cb}?state=forged&code=x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("unknown"));
    let st = state_sent_upstream(&f, &c).await;
    let r = browser().get(format!("{cb}?state={st}&code=x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("another browser"));
    assert!(sesame::storage::users::list(&f.down.state.db, 10, 0).await.unwrap().is_empty(), "nobody half-created");
}

async fn upstream_down_or_slow(db: TestDb) {
    // Connection refused: a port that was bound and let go.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let f = fed(&db, |c| c.providers[0].issuer = format!("http://{closed}")).await;
    let c = browser();
    let r = c.get(f.down.url(&auth("spa", "&connection=corp"))).send().await.unwrap();
    login_box_says(&c, r, "did not answer in time").await;
    drop(f);

    // Slow: accepts the connection, never answers.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = slow.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = slow.accept().await {
            held.push(s);
        }
    });
    let db2 = TestDb::new(db.backend).await.unwrap();
    let f = fed(&db2, |c| {
        c.providers[0].issuer = format!("http://{addr}");
        c.providers[0].timeout_secs = 1;
    })
    .await;
    let c = browser();
    let started = std::time::Instant::now();
    let r = c.get(f.down.url(&auth("spa", "&connection=corp"))).send().await.unwrap();
    login_box_says(&c, r, "did not answer in time").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// Downstream with provider `fake` of `kind` pointing at an in-process fake.
async fn with_fake(
    db: &TestDb,
    kind: ProviderKind,
    settings: Settings,
    tweak: impl FnOnce(&mut ProviderConfig),
) -> (TestApp, FakeIdp) {
    let idp = FakeIdp::start(settings).await;
    let base = idp.base().to_string();
    let mut p = ProviderConfig {
        id: "fake".into(),
        kind,
        issuer: base.clone(),
        client_id: "sesame".into(),
        client_secret: Secret::new("fake-secret"),
        authorization_endpoint: Some(format!("{base}/authorize")),
        token_endpoint: Some(format!("{base}/token")),
        userinfo_endpoint: Some(format!("{base}/user")),
        emails_endpoint: Some(format!("{base}/user/emails")),
        jwks_uri: Some(format!("{base}/jwks")),
        ..Default::default()
    };
    tweak(&mut p);
    let down = TestApp::spawn(db, |c| c.providers = vec![p]).await;
    add_client(&down, "spa", true, true, CB, None, &["authorization_code", "refresh_token"]).await;
    (down, idp)
}

async fn fake_round_trip(down: &TestApp, c: &reqwest::Client) -> reqwest::Response {
    let r = c.get(down.url(&auth("spa", "&connection=fake"))).send().await.unwrap();
    walk(c, r).await
}

async fn tampered_id_tokens_are_refused(db: TestDb) {
    let (down, idp) = with_fake(&db, ProviderKind::Oidc, Settings::default(), |_| {}).await;
    for t in [Tamper::BadSignature, Tamper::WrongAudience, Tamper::WrongNonce, Tamper::Expired] {
        idp.set(|s| s.tamper = t);
        let c = browser();
        let r = fake_round_trip(&down, &c).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{t:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains("could not be verified"), "{t:?}: {html}");
    }
    assert!(sesame::storage::users::list(&down.state.db, 10, 0).await.unwrap().is_empty());
    // A token response past 1 MiB is refused, not read into memory.
    idp.set(|s| {
        s.tamper = Tamper::None;
        s.token_padding = 16 << 20;
    });
    let r = fake_round_trip(&down, &browser()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("could not be verified"));
    idp.set(|s| s.token_padding = 0);
    // A discovery document or a key set past 1 MiB: refused the same way
    // (providers fresh from the config, so nothing is cached yet).
    for (what, f) in [("discovery", 0), ("keys", 1)] {
        let mut settings = Settings::default();
        if f == 0 {
            settings.discovery_padding = 2 << 20;
        } else {
            settings.jwks_padding = 2 << 20;
        }
        let other = crate::support::TestDb::new(db.backend).await.unwrap();
        // Discovery is read only when the endpoints are not configured.
        let discover = |p: &mut ProviderConfig| {
            p.authorization_endpoint = None;
            p.token_endpoint = None;
            p.userinfo_endpoint = None;
            p.jwks_uri = None;
        };
        let (d, _i) = with_fake(&other, ProviderKind::Oidc, settings, discover).await;
        let p = d.state.federation.get("fake").unwrap().clone();
        let err = p.check(d.state.clock.now()).await.expect_err(what);
        assert!(err.contains("larger than"), "{what}: {err}");
        d.stop().await;
    }
    // The genuine token signs in.
    idp.set(|s| s.tamper = Tamper::None);
    let c = browser();
    let claims = redeem(&down, &fake_round_trip(&down, &c).await).await;
    assert_eq!(claims["email"], "fake@example.com");
    assert_eq!(claims["amr"], json!(["fed"]), "the upstream sent no amr");
}

async fn github_style_takes_only_the_primary_verified_email(db: TestDb) {
    let (down, idp) = with_fake(&db, ProviderKind::Github, Settings::default(), |_| {}).await;
    let claims = redeem(&down, &fake_round_trip(&down, &browser()).await).await;
    assert_eq!(claims["email"], "octo@example.com", "primary verified, not the public profile's");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["idp"], "fake");
    let ids = sesame::storage::identities::for_user(&down.state.db, claims["sub"].as_str().unwrap()).await.unwrap();
    assert_eq!(ids[0].subject, "4242", "GitHub's numeric id");

    // Another GitHub user whose primary address is unverified: no email at all.
    idp.set(|s| {
        s.profile = json!({ "id": 7, "login": "nomail", "email": "claimed@example.com" });
        s.emails = json!([{ "email": "claimed@example.com", "primary": true, "verified": false }]);
    });
    let claims = redeem(&down, &fake_round_trip(&down, &browser()).await).await;
    assert!(claims.get("email").is_none(), "{claims}");
    let u = sesame::storage::users::find_by_id(&down.state.db, claims["sub"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(u.email, None);
    assert_eq!(u.name.as_deref(), None);

    // A profile past 1 MiB is refused, not read into memory.
    idp.set(|s| s.profile = json!({ "id": 8, "name": "x".repeat(2 << 20) }));
    let r = fake_round_trip(&down, &browser()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("could not be verified"));
}

async fn apple_style_form_post_with_a_minted_secret(db: TestDb) {
    let (pem, public) = apple_team_key();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("AuthKey_KEY1.p8");
    std::fs::write(&key_file, pem).unwrap();
    let settings = Settings {
        apple_team_key: Some(public),
        apple_user: Some(r#"{"name":{"firstName":"Ada","lastName":"Lovelace"},"email":"ada@example.com"}"#.into()),
        claims: json!({ "sub": "001234.apple", "email": "ada@example.com", "email_verified": "true" }),
        ..Default::default()
    };
    let (down, idp) = with_fake(&db, ProviderKind::Apple, settings, |p| {
        p.client_secret = Secret::default();
        p.team_id = "TEAM123456".into();
        p.key_id = "KEY1".into();
        p.private_key_file = key_file.display().to_string();
    })
    .await;
    let c = browser();
    let page = fake_round_trip(&down, &c).await;
    // The upstream's page would post this form cross-site: no cookies come with it.
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let field = |n: &str| hidden(&html, n).replace("&quot;", "\"").replace("&amp;", "&");
    let form = [("code", field("code")), ("state", field("state")), ("user", field("user"))];
    let cookieless = browser();
    let r = cookieless.post(down.url("/federation/fake/callback")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let hop = r.text().await.unwrap();
    assert!(hop.contains("http-equiv=\"refresh\""), "{hop}");
    assert_eq!(idp.token_calls(), 0, "nothing redeemed before the browser is back");
    // The same-site hop, now with the browser's cookies.
    let start = hop.find("url=").unwrap() + 4;
    let next = hop[start..start + hop[start..].find('"').unwrap()].replace("&amp;", "&");
    let back = walk(&c, c.get(down.url(&next)).send().await.unwrap()).await;
    let claims = redeem(&down, &back).await;
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], true, "Apple's \"true\" string");
    let u = sesame::storage::users::find_by_id(&down.state.db, claims["sub"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(u.name.as_deref(), Some("Ada Lovelace"), "the name Apple posts once is kept");
    assert_eq!(idp.token_calls(), 1, "the minted ES256 secret was accepted");
}

async fn cli_shows_unlinks_and_checks(db: TestDb) {
    let f = fed(&db, |_| {}).await;
    let claims = sign_in_through_corp(&f, &browser(), "alice@example.com").await;
    let sub = claims["sub"].as_str().unwrap();
    let cfg = f.down.state.config.providers[0].clone();
    let toml = format!(
        "[[providers]]\nid = \"corp\"\nname = \"Corp SSO\"\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"downstream\"\nclient_secret_env = \"CORP_SECRET\"\n\n[[providers]]\nid = \"gone\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"x\"\nclient_secret = \"hunter2-provider\"\n",
        cfg.issuer
    );
    let file = db.dir.path().join("sesame.toml");
    std::fs::write(&file, toml).unwrap();
    let path = file.display().to_string();
    let env = [("SESAME_ISSUER", f.down.base_url.as_str()), ("CORP_SECRET", UP_SECRET)];

    let out = db.sesame_with(&["--config", &path, "user", "show", sub, "--json"], &env, None);
    let v = crate::support::stdout_json(&out);
    assert_eq!(v["identities"][0]["provider"], "corp");
    assert_eq!(v["has_password"], false);
    // The last way in is not removed.
    let out = db.sesame_with(&["--config", &path, "user", "unlink", sub, "--provider", "corp"], &env, None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("last way to sign in"));

    // provider list / check; check-config never shows a secret.
    let out = db.sesame_with(&["--config", &path, "provider", "list", "--json"], &env, None);
    let v = crate::support::stdout_json(&out);
    assert_eq!(v[0]["callback"], format!("{}/federation/corp/callback", f.down.base_url));
    let out = db.sesame_with(&["--config", &path, "provider", "check", "corp"], &env, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
    let out = db.sesame_with(&["--config", &path, "provider", "check", "gone"], &env, None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let out = db.sesame_with(&["--config", &path, "check-config"], &env, None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!text.contains("hunter2-provider") && !text.contains(UP_SECRET), "{text}");

    // With a password set, the identity may go.
    let out = db.sesame_with(
        &["--config", &path, "user", "set-password", sub, "--password-stdin"],
        &env,
        Some("a new long password\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = db.sesame_with(&["--config", &path, "user", "unlink", sub, "--provider", "corp", "--json"], &env, None);
    assert_eq!(crate::support::stdout_json(&out)["removed"], 1);
}

async fn proof_through_a_provider_already_linked(db: TestDb) {
    let f = fed(&db, |c| {
        let mut two = c.providers[0].clone();
        two.id = "corp2".into();
        two.name = "Corp Two".into();
        c.providers.push(two);
    })
    .await;
    let u = sign_in_through_corp(&f, &browser(), "alice@example.com").await["sub"].as_str().unwrap().to_string();
    let c = browser();
    let r = walk(&c, c.get(f.down.url(&auth("spa", "&connection=corp2"))).send().await.unwrap()).await;
    let back = upstream_login(&c, r, "alice@example.com").await;
    let html = back.text().await.unwrap();
    assert!(html.contains("already exists") && html.contains("Corp Two"), "{html}");
    // The proof: signing in with the provider already linked to the account
    // (the upstream still has a session: straight back).
    let r = walk(&c, c.get(f.down.url(&button(&html, "corp"))).send().await.unwrap()).await;
    let claims = redeem(&f.down, &r).await;
    assert_eq!(claims["sub"], u.as_str());
    assert_eq!(claims["idp"], "corp");
    let ids = sesame::storage::identities::for_user(&f.down.state.db, &u).await.unwrap();
    assert_eq!(ids.iter().map(|i| i.provider.as_str()).collect::<Vec<_>>(), ["corp", "corp2"]);
    // Corp Two alone now signs in to the same account.
    let c = browser();
    let r = walk(&c, c.get(f.down.url(&auth("spa", "&connection=corp2"))).send().await.unwrap()).await;
    let claims = redeem(&f.down, &upstream_login(&c, r, "alice@example.com").await).await;
    assert_eq!(claims["sub"], u.as_str());
    assert_eq!(claims["idp"], "corp2");
}

/// Signs in through `connection=corp` and returns the page the browser ends on.
async fn through_connection(f: &Fed) -> reqwest::Response {
    let c = browser();
    let r = walk(&c, c.get(f.down.url(&auth("spa", "&connection=corp"))).send().await.unwrap()).await;
    upstream_login(&c, r, "alice@example.com").await
}

async fn refused_with(r: reqwest::Response, words: &str) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", r.url());
    let html = r.text().await.unwrap();
    assert!(html.contains(words), "expected `{words}` in {html}");
}

async fn account_rules_refuse_with_a_message(db: TestDb) {
    // create_users = false: only identities linked before may sign in.
    let f = fed(&db, |c| c.providers[0].create_users = false).await;
    refused_with(through_connection(&f).await, "There is no account here").await;
    assert!(sesame::storage::users::list(&f.down.state.db, 10, 0).await.unwrap().is_empty());
    drop(f);

    // allowed_domains: alice@example.com is not from corp.example.
    let db2 = TestDb::new(db.backend).await.unwrap();
    let f = fed(&db2, |c| c.providers[0].allowed_domains = vec!["corp.example".into()]).await;
    refused_with(through_connection(&f).await, "may not sign in here").await;
    assert!(sesame::storage::users::list(&f.down.state.db, 10, 0).await.unwrap().is_empty());
    drop(f);

    // A disabled account stays disabled through a provider.
    let db3 = TestDb::new(db.backend).await.unwrap();
    let f = fed(&db3, |c| c.providers[0].allowed_domains = vec!["example.com".into()]).await;
    let sub = redeem(&f.down, &through_connection(&f).await).await["sub"].as_str().unwrap().to_string();
    let mut u = sesame::storage::users::find_by_id(&f.down.state.db, &sub).await.unwrap().unwrap();
    u.disabled = true;
    sesame::storage::users::update(&f.down.state.db, &u).await.unwrap();
    refused_with(through_connection(&f).await, "This account is disabled").await;
}

async fn password_login_off_with_one_provider_goes_straight_there(db: TestDb) {
    let f = fed(&db, |c| c.login.password_login = false).await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let r = walk(&c, c.get(f.down.url(&auth("spa", ""))).send().await.unwrap()).await;
    assert!(r.url().as_str().starts_with(&f.up.base_url), "straight to the provider: {}", r.url());
    // Cancelled there: the login box has the button and no password form.
    let st = state_sent_upstream(&f, &c).await;
    let cancel = format!("/federation/corp/callback?state={st}&error=access_denied");
    let r = walk(&c, c.get(f.down.url(&cancel)).send().await.unwrap()).await;
    let req = r.url().query_pairs().find(|(k, _)| k == "req").unwrap().1.to_string();
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"provider-corp\"") && !html.contains("name=\"password\""), "{html}");
    // And a password POST, with this browser's valid CSRF value, is refused outright.
    use reqwest::cookie::CookieStore;
    let cookies = jar.cookies(&f.down.base_url.parse().unwrap()).unwrap();
    let csrf = cookies.to_str().unwrap().split("; ").find_map(|c| c.strip_prefix("sesame_session_csrf=")).unwrap();
    let form = [("csrf", csrf), ("req", req.as_str()), ("email", "alice@example.com"), ("password", PW)];
    let r = c.post(f.down.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn a_pending_link_expires_unused(db: TestDb) {
    let f = fed(&db, |_| {}).await;
    let existing = add_user(&f.down, "alice@example.com", PW).await;
    let c = browser();
    let r = walk(&c, c.get(f.down.url(&auth("spa", "&connection=corp"))).send().await.unwrap()).await;
    let html = upstream_login(&c, r, "alice@example.com").await.text().await.unwrap();
    assert!(html.contains("already exists"));
    f.down.state.clock.advance(601);
    let r = password_on(&c, &f, &html, "alice@example.com").await;
    assert_eq!(redeem(&f.down, &r).await["sub"], existing.as_str(), "the password still signs in");
    assert!(
        sesame::storage::identities::for_user(&f.down.state.db, &existing).await.unwrap().is_empty(),
        "no late link"
    );
}

/// The account page's "Link Corp SSO": the upstream identity joins the
/// signed-in account, and signing in through Corp SSO is that account from
/// then on; an identity already linked elsewhere is refused.
async fn linked_from_the_account_page(db: TestDb) {
    let f = fed(&db, |_| {}).await;
    let bob = add_user(&f.down, "bob@example.com", PW).await;
    let c = browser();
    let login = walk(&c, c.get(f.down.url("/account")).send().await.unwrap()).await;
    let html = login.text().await.unwrap();
    let page = password_on(&c, &f, &html, "bob@example.com").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"link-corp\""), "{html}");
    let go = c
        .post(f.down.url("/account/identities/link"))
        .form(&[("csrf", hidden(&html, "csrf").as_str()), ("provider", "corp")])
        .send()
        .await
        .unwrap();
    let at_upstream = walk(&c, go).await;
    let back = upstream_login(&c, at_upstream, "alice@example.com").await;
    assert_eq!(back.status(), StatusCode::OK);
    assert!(back.url().path().ends_with("/account"), "{}", back.url());
    let html = back.text().await.unwrap();
    assert!(html.contains("Corp SSO") && !html.contains("id=\"link-corp\""), "{html}");
    let linked = sesame::storage::identities::for_user(&f.down.state.db, &bob).await.unwrap();
    assert_eq!(linked.len(), 1);
    // The account page can remove it again, and link it back.
    let unlink = c
        .post(f.down.url("/account/identities/unlink"))
        .form(&[("csrf", hidden(&html, "csrf").as_str()), ("provider", "corp"), ("subject", &linked[0].subject)])
        .send()
        .await
        .unwrap();
    assert!(location(&unlink).contains("done=unlinked"));
    assert!(sesame::storage::identities::for_user(&f.down.state.db, &bob).await.unwrap().is_empty());
    let html = walk(&c, c.get(f.down.url("/account")).send().await.unwrap()).await.text().await.unwrap();
    let go = c
        .post(f.down.url("/account/identities/link"))
        .form(&[("csrf", hidden(&html, "csrf").as_str()), ("provider", "corp")])
        .send()
        .await
        .unwrap();
    // Signed in upstream already: straight back to the account page.
    let back = walk(&c, go).await;
    assert_eq!(back.status(), StatusCode::OK);
    assert_eq!(sesame::storage::identities::for_user(&f.down.state.db, &bob).await.unwrap().len(), 1);
    // Corp SSO now signs in to Bob's account.
    let claims = sign_in_through_corp(&f, &browser(), "alice@example.com").await;
    assert_eq!(claims["sub"], bob);
    // Another account cannot take the same identity.
    let carol = add_user(&f.down, "carol@example.com", PW).await;
    let c2 = browser();
    let login = walk(&c2, c2.get(f.down.url("/account")).send().await.unwrap()).await;
    let html = password_on(&c2, &f, &login.text().await.unwrap(), "carol@example.com").await.text().await.unwrap();
    let go = c2
        .post(f.down.url("/account/identities/link"))
        .form(&[("csrf", hidden(&html, "csrf").as_str()), ("provider", "corp")])
        .send()
        .await
        .unwrap();
    let at_upstream = walk(&c2, go).await;
    let refused = upstream_login(&c2, at_upstream, "alice@example.com").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("already linked to another account"));
    assert!(sesame::storage::identities::for_user(&f.down.state.db, &carol).await.unwrap().is_empty());
    let events = crate::selfservice::audit(&db, &["--type", "identity_linked"], |e| {
        crate::selfservice::has(e, "identity_linked", "failure", None)
    })
    .await;
    assert!(crate::selfservice::has(&events, "identity_linked", "success", None));
    assert!(crate::selfservice::has(&events, "identity_linked", "failure", Some("linked_to_another_account")));
}

/// A provider whose `amr` says it checked a second factor: dropped (and
/// asked again where one is required) unless `trust_upstream_mfa`.
async fn an_upstream_second_factor_counts_only_when_trusted(db: TestDb) {
    let mfa = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    let settings = || {
        let mut s = Settings::default();
        s.claims["amr"] = json!(["pwd", "mfa"]);
        s
    };
    let step_up = format!("&connection=fake&acr_values={}", crate::authorize::urlencode(mfa));
    let (down, _idp) = with_fake(&db, ProviderKind::Oidc, settings(), |_| {}).await;
    let claims = redeem(&down, &fake_round_trip(&down, &browser()).await).await;
    assert_eq!(claims["amr"], json!(["pwd"]), "an untrusted upstream's mfa is dropped");
    assert!(claims.get("acr").is_none());
    // Where a second factor is required, the user is asked for one here.
    let c = browser();
    let r = walk(&c, c.get(down.url(&auth("spa", &step_up))).send().await.unwrap()).await;
    assert!(r.url().path().ends_with("/login/factor"), "{}", r.url());
    sesame::storage::clients::delete(&down.state.db, "spa").await.unwrap();
    down.stop().await;

    let (down, idp) = with_fake(&db, ProviderKind::Oidc, settings(), |p| p.trust_upstream_mfa = true).await;
    let c = browser();
    let back = walk(&c, c.get(down.url(&auth("spa", &step_up))).send().await.unwrap()).await;
    let claims = redeem(&down, &back).await;
    assert_eq!(claims["amr"], json!(["pwd", "mfa"]));
    assert_eq!(claims["acr"], mfa);
    // The upstream's second factor dates from its own sign-in (`auth_time`):
    // an hour old is too old for max_age=60.
    let hour_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 3600;
    idp.set(|s| s.claims["auth_time"] = json!(hour_ago));
    let c = browser();
    let r = walk(&c, c.get(down.url(&auth("spa", &format!("{step_up}&max_age=60")))).send().await.unwrap()).await;
    assert!(r.url().path().ends_with("/login/factor"), "{}", r.url());
}
