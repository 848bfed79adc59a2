//! OIDC Session Management (`session_state`, the check_session iframe) and
//! Front-Channel Logout, over HTTP. The iframe's script itself runs in the
//! browser tests (tests/browser).

use sesame::crypto::random::sha256_hex;

use crate::authorize::{auth, setup};
use crate::backend_tests;
use crate::support::TestDb;
use crate::support::browser::{Browser, location, params};

backend_tests!(session_state_tracks_the_browser_state, check_session_page, frontchannel_logout_iframes);

/// What the check_session iframe computes for `origin` from the cookie it reads.
fn expected(client: &str, origin: &str, browser_state: &str, session_state: &str) -> bool {
    let (hash, salt) = session_state.split_once('.').unwrap();
    sha256_hex(&format!("{client} {origin} {browser_state} {salt}")) == hash
}

async fn session_state_tracks_the_browser_state(db: TestDb) {
    let app = setup(&db).await;
    let b = Browser::new(&app.base_url);
    let page = b.follow(b.get(&auth("spa", "")).await).await;
    let login = b.submit_login(&page.text().await.unwrap(), "alice@example.com", "correct horse battery").await;
    let bs_cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("sesame_session_bs="))
        .expect("browser-state cookie set at login");
    assert!(!bs_cookie.to_ascii_lowercase().contains("httponly"), "the iframe's script must read it: {bs_cookie}");
    let back = url::Url::parse(&location(&b.follow(login).await)).unwrap();
    let ss = params(&back)["session_state"].clone();
    let bs = b.cookie("sesame_session_bs").unwrap();
    assert!(expected("spa", "https://app.example.com", &bs, &ss), "{ss}");
    assert!(!expected("spa", "https://evil.example.com", &bs, &ss), "bound to the origin");
    assert!(!expected("store", "https://app.example.com", &bs, &ss), "bound to the client");

    // Silent re-authentication in the same session: same browser state, fresh salt.
    let again = params(&url::Url::parse(&location(&b.get(&auth("spa", "&prompt=none")).await)).unwrap());
    assert_ne!(again["session_state"], ss);
    assert!(expected("spa", "https://app.example.com", &bs, &again["session_state"]));
    // Errors carry no session_state.
    let other = Browser::new(&app.base_url);
    let err = params(&url::Url::parse(&location(&other.get(&auth("spa", "&prompt=none")).await)).unwrap());
    assert_eq!(err["error"], "login_required");
    assert!(!err.contains_key("session_state"));

    // Logging out clears the browser state, so the earlier session_state reads as changed.
    let r = b.get("/logout?client_id=spa").await;
    let html = r.text().await.unwrap();
    let csrf = crate::support::browser::hidden(&html, "csrf");
    let r = b.post_form("/logout", &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(b.cookie("sesame_session_bs"), None);
    assert!(!expected("spa", "https://app.example.com", "", &ss));

    // A new login is a new browser state.
    let back = b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let bs2 = b.cookie("sesame_session_bs").unwrap();
    assert_ne!(bs2, bs);
    assert!(expected("spa", "https://app.example.com", &bs2, &params(&back)["session_state"]));
}

async fn check_session_page(db: TestDb) {
    let app = setup(&db).await;
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["check_session_iframe"], format!("{}/check_session", app.base_url));
    let b = Browser::new(&app.base_url);
    // No client has a web origin yet, but the origin of their redirect URI is
    // where a server-side RP's pages run (and where session_state is bound).
    let r = b.get("/check_session").await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors https://app.example.com;"), "{csp}");

    let mut c = sesame::storage::clients::find(&app.state.db, "spa").await.unwrap().unwrap();
    c.web_origins = vec!["https://games.example.com".into(), "https://store.example.com".into()];
    sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
    let app = crate::support::TestApp::spawn(&db, |_| {}).await;
    let r = Browser::new(&app.base_url).get("/check_session").await;
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("frame-ancestors https://app.example.com https://games.example.com https://store.example.com;"),
        "{csp}"
    );
    assert!(r.headers().get("x-frame-options").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("data-cookie=\"sesame_session_bs\""));
    let script = html.split("<script>").nth(1).unwrap().split("</script>").next().unwrap();
    assert!(csp.contains(&format!("script-src '{}'", sesame::http::csp_hash(script))), "{csp}");
    assert!(script.contains("e.source !== window.parent"), "answers its parent only");
}

async fn frontchannel_logout_iframes(db: TestDb) {
    let app = setup(&db).await;
    for (id, fc) in [("spa", Some("https://app.example.com/fc?keep=1")), ("store", None)] {
        let mut c = sesame::storage::clients::find(&app.state.db, id).await.unwrap().unwrap();
        c.post_logout_redirect_uris = vec!["https://app.example.com/bye".into()];
        c.frontchannel_logout_uri = fc.map(str::to_string);
        sesame::storage::clients::update(&app.state.db, &c).await.unwrap();
    }
    let doc = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["frontchannel_logout_supported"], true);
    assert_eq!(doc["frontchannel_logout_session_supported"], true);

    let b = Browser::new(&app.base_url);
    b.authorize_with_login(&auth("spa", ""), "alice@example.com", "correct horse battery").await;
    let back = url::Url::parse(&location(&b.get(&auth("store", "")).await)).unwrap();
    assert!(params(&back).contains_key("code"));
    let sessions = sesame::storage::sessions::clients;
    let sid = {
        let hash = sha256_hex(&b.cookie("sesame_session").unwrap());
        sesame::storage::sessions::find_live(&app.state.db, &hash, app.state.clock.now()).await.unwrap().unwrap().sid
    };
    assert_eq!(sessions(&app.state.db, &sid).await.unwrap(), vec!["spa".to_string(), "store".to_string()]);

    let r = b.get("/logout?client_id=spa&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2Fbye&state=s1").await;
    let csrf = crate::support::browser::hidden(&r.text().await.unwrap(), "csrf");
    let r = b
        .post_form(
            "/logout",
            &[
                ("csrf", &csrf),
                ("confirm", "yes"),
                ("client_id", "spa"),
                ("post_logout_redirect_uri", "https://app.example.com/bye"),
                ("state", "s1"),
            ],
        )
        .await;
    // Instead of a 302, a page that loads the iframes, then continues.
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-src https://app.example.com;"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = r.text().await.unwrap();
    let iss = url::form_urlencoded::byte_serialize(app.state.issuer.as_str().as_bytes()).collect::<String>();
    let src = format!("https://app.example.com/fc?keep=1&#38;iss={iss}&#38;sid={sid}");
    assert!(html.contains(&format!("src=\"{src}\"")), "{src} in {html}");
    assert_eq!(html.matches("<iframe").count(), 1, "only clients that registered a URI");
    assert!(html.contains("data-next=\"https://app.example.com/bye?state=s1\""), "{html}");
    let script = html.split("<script>").nth(1).unwrap().split("</script>").next().unwrap();
    assert!(csp.contains(&format!("script-src '{}'", sesame::http::csp_hash(script))), "{csp}");
    assert_eq!(b.cookie("sesame_session"), None);
}
