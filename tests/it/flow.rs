//! The authorization code flow end to end with the `openidconnect` crate as the
//! relying party: it validates signatures, nonce and at_hash itself.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm as A, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use sesame::config::SigningAlg;

use crate::backend_tests;
use crate::support::browser::{Browser, params};
use crate::support::{TestApp, TestDb, add_client, add_user};

backend_tests!(code_flow_rs256_confidential, code_flow_es256_public_pkce, code_flow_eddsa_issuer_with_slash);

async fn code_flow_rs256_confidential(db: TestDb) {
    run_flow(db, SigningAlg::RS256, false, |_| {}).await
}

async fn code_flow_es256_public_pkce(db: TestDb) {
    run_flow(db, SigningAlg::ES256, true, |_| {}).await
}

async fn code_flow_eddsa_issuer_with_slash(db: TestDb) {
    run_flow(db, SigningAlg::EdDSA, false, |c| c.issuer = "{base}/".into()).await
}

async fn run_flow(db: TestDb, alg: SigningAlg, public: bool, cfg: impl FnOnce(&mut sesame::config::Config)) {
    let app = TestApp::spawn(&db, cfg).await;
    let redirect = "http://127.0.0.1:9/callback";
    let grants = ["authorization_code", "refresh_token"];
    let secret = add_client(&app, "rp", public, true, redirect, Some(alg), &grants).await;
    let user_id = add_user(&app, "alice@example.com", "correct horse battery").await;

    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = app.state.issuer.as_str().to_string();
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http).await.unwrap();
    let client =
        CoreClient::from_provider_metadata(meta, ClientId::new("rp".into()), secret.clone().map(ClientSecret::new))
            .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap());
    let client = if public { client.set_auth_type(openidconnect::AuthType::RequestBody) } else { client };
    let (pkce, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(pkce)
        .url();

    let browser = Browser::new(&app.base_url);
    let back = browser.authorize_with_login(auth_url.as_str(), "alice@example.com", "correct horse battery").await;
    assert!(back.as_str().starts_with(redirect));
    let p = params(&back);
    assert_eq!(p["state"], *csrf.secret());
    assert_eq!(p["iss"], issuer, "RFC 9207 iss");

    let tok = client
        .exchange_code(AuthorizationCode::new(p["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let verifier =
        client.id_token_verifier().set_allowed_algs(vec![A::EdDsa, A::EcdsaP256Sha256, A::RsaSsaPkcs1V15Sha256]);
    let id_token = tok.id_token().expect("id_token");
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert!(claims.auth_time().is_some());
    let expected_alg = match alg {
        SigningAlg::RS256 => A::RsaSsaPkcs1V15Sha256,
        SigningAlg::ES256 => A::EcdsaP256Sha256,
        SigningAlg::EdDSA => A::EdDsa,
    };
    assert_eq!(*id_token.signing_alg().unwrap(), expected_alg);
    let at_hash = claims.access_token_hash().expect("at_hash");
    let computed = AccessTokenHash::from_token(
        tok.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(*at_hash, computed);
    let raw: serde_json::Value = decode_payload(&id_token.to_string());
    assert_eq!(raw["azp"], "rp");
    assert!(raw["sid"].as_str().is_some());
    assert_eq!(raw["amr"], serde_json::json!(["pwd"]));
    assert_eq!(raw["iss"], issuer);

    // The access token is an RFC 9068 JWT.
    let at = tok.access_token().secret();
    let header = jsonwebtoken::decode_header(at).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let at_claims: serde_json::Value = decode_payload(at);
    for c in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"] {
        assert!(at_claims.get(c).is_some(), "access token lacks {c}");
    }
    assert_eq!(at_claims["scope"], "openid profile email");

    // userinfo through the RP library.
    let info: CoreUserInfoClaims =
        client.user_info(tok.access_token().clone(), None).unwrap().request_async(&http).await.unwrap();
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));

    // Refresh rotates the token and keeps the user.
    let rt = tok.refresh_token().expect("refresh token").clone();
    let tok2 = client.exchange_refresh_token(&rt).unwrap().request_async(&http).await.unwrap();
    let rt2 = tok2.refresh_token().expect("rotated").clone();
    assert_ne!(rt.secret(), rt2.secret());
    let id2 = tok2.id_token().expect("id token on refresh");
    assert_eq!(id2.claims(&verifier, |_: Option<&Nonce>| Ok(())).unwrap().subject().as_str(), user_id);

    // Revoking the refresh token ends the family and its access tokens at userinfo.
    let revoke = browser
        .http
        .post(format!("{}/revoke", app.base_url))
        .form(&client_form(&secret, &[("token", rt2.secret())]))
        .basic_auth_opt(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    let again =
        client.exchange_refresh_token(&RefreshToken::new(rt2.secret().clone())).unwrap().request_async(&http).await;
    assert!(again.is_err());
    let ui = browser
        .http
        .get(format!("{}/userinfo", app.base_url))
        .bearer_auth(tok2.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 401);
    assert!(ui.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

trait BasicOpt {
    fn basic_auth_opt(self, secret: &Option<String>) -> Self;
}

impl BasicOpt for reqwest::RequestBuilder {
    fn basic_auth_opt(self, secret: &Option<String>) -> Self {
        match secret {
            Some(s) => self.basic_auth("rp", Some(s)),
            None => self,
        }
    }
}

fn client_form<'a>(secret: &Option<String>, extra: &[(&'a str, &'a String)]) -> Vec<(&'a str, String)> {
    let mut v: Vec<(&str, String)> = extra.iter().map(|(k, v)| (*k, (*v).clone())).collect();
    if secret.is_none() {
        v.push(("client_id", "rp".into()));
    }
    v
}

pub fn decode_payload(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
