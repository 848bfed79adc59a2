//! A small OAuth 2.0 / OpenID Connect provider inside the test process, for
//! what a second Sesame cannot play: a GitHub-style provider (profile and
//! `/user/emails` with verified and unverified addresses), an Apple-style one
//! (form_post, a client secret that must be an ES256 JWT signed by the team
//! key), and ID tokens that are wrong on purpose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use sha2::Digest;

/// How the ID token comes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    None,
    BadSignature,
    WrongAudience,
    WrongNonce,
    Expired,
}

pub struct Settings {
    pub client_id: String,
    pub client_secret: String,
    pub tamper: Tamper,
    /// The ID token's claims besides iss/aud/exp/iat/nonce.
    pub claims: Value,
    /// GitHub-style profile and address list.
    pub profile: Value,
    pub emails: Value,
    /// Apple-style: the client secret must be a JWT signed by this key's pair.
    pub apple_team_key: Option<DecodingKey>,
    pub apple_user: Option<String>,
    /// Bytes of padding in the token response (a hostile provider).
    pub token_padding: usize,
    /// Bytes of padding in the discovery document and in the key set.
    pub discovery_padding: usize,
    pub jwks_padding: usize,
}

struct Grant {
    challenge: String,
    nonce: Option<String>,
}

struct Inner {
    base: String,
    key: EncodingKey,
    other_key: EncodingKey,
    jwk: Jwk,
    settings: Mutex<Settings>,
    grants: Mutex<HashMap<String, Grant>>,
    pub token_calls: Mutex<u32>,
}

#[derive(Clone)]
pub struct FakeIdp(Arc<Inner>);

fn p256_key() -> (EncodingKey, p256::ecdsa::SigningKey) {
    let k = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    (EncodingKey::from_ec_der(k.to_pkcs8_der().unwrap().as_bytes()), k)
}

/// A P-256 key pair as a `.p8` PEM (for Apple's team key) and its public key.
pub fn apple_team_key() -> (String, DecodingKey) {
    let k = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let pem = k.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap().to_string();
    let public = DecodingKey::from_ec_der(k.verifying_key().to_encoded_point(false).as_bytes());
    (pem, public)
}

impl FakeIdp {
    pub async fn start(settings: Settings) -> FakeIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (key, _) = p256_key();
        let (other_key, _) = p256_key();
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some("k1".into());
        let inner = Inner {
            base,
            key,
            other_key,
            jwk,
            settings: Mutex::new(settings),
            grants: Mutex::new(HashMap::new()),
            token_calls: Mutex::new(0),
        };
        let idp = FakeIdp(Arc::new(inner));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/user", get(user))
            .route("/user/emails", get(emails))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        idp
    }

    pub fn base(&self) -> &str {
        &self.0.base
    }

    pub fn set(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut self.0.settings.lock().unwrap());
    }

    pub fn token_calls(&self) -> u32 {
        *self.0.token_calls.lock().unwrap()
    }
}

async fn discovery(State(idp): State<FakeIdp>) -> Json<Value> {
    let b = &idp.0.base;
    let padding = "x".repeat(idp.0.settings.lock().unwrap().discovery_padding);
    Json(json!({
        "padding": padding,
        "issuer": b,
        "authorization_endpoint": format!("{b}/authorize"),
        "token_endpoint": format!("{b}/token"),
        "jwks_uri": format!("{b}/jwks"),
        "userinfo_endpoint": format!("{b}/userinfo"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

async fn jwks(State(idp): State<FakeIdp>) -> Json<Value> {
    let padding = "x".repeat(idp.0.settings.lock().unwrap().jwks_padding);
    let mut set = serde_json::to_value(JwkSet { keys: vec![idp.0.jwk.clone()] }).unwrap();
    set["padding"] = padding.into();
    Json(set)
}

/// Signs the user in at once: back to redirect_uri with a code (query), or a
/// page with the form Apple posts (form_post).
async fn authorize(State(idp): State<FakeIdp>, Query(q): Query<HashMap<String, String>>) -> Response {
    let code = format!("code-{}", uuid::Uuid::new_v4().simple());
    let challenge = q.get("code_challenge").cloned().unwrap_or_default();
    idp.0.grants.lock().unwrap().insert(code.clone(), Grant { challenge, nonce: q.get("nonce").cloned() });
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    if q.get("response_mode").map(String::as_str) == Some("form_post") {
        let user = idp.0.settings.lock().unwrap().apple_user.clone().unwrap_or_default();
        let esc = |s: &str| s.replace('&', "&amp;").replace('"', "&quot;");
        return Html(format!(
            "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"code\" value=\"{}\">\
             <input type=\"hidden\" name=\"state\" value=\"{}\"><input type=\"hidden\" name=\"user\" value=\"{}\"></form>",
            esc(&redirect),
            esc(&code),
            esc(&state),
            esc(&user)
        ))
        .into_response();
    }
    let mut url = url::Url::parse(&redirect).unwrap();
    url.query_pairs_mut().append_pair("code", &code).append_pair("state", &state);
    Redirect::to(url.as_str()).into_response()
}

fn oauth_error(code: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": code }))).into_response()
}

async fn token(State(idp): State<FakeIdp>, headers: HeaderMap, Form(f): Form<HashMap<String, String>>) -> Response {
    *idp.0.token_calls.lock().unwrap() += 1;
    let s = idp.0.settings.lock().unwrap();
    // Client authentication: basic or in the body.
    let (id, secret) = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(h) if h.starts_with("Basic ") => {
            let raw = base64::engine::general_purpose::STANDARD.decode(&h[6..]).unwrap();
            let raw = String::from_utf8(raw).unwrap();
            let (i, p) = raw.split_once(':').unwrap();
            let dec = |v: &str| url::form_urlencoded::parse(format!("x={v}").as_bytes()).next().unwrap().1.to_string();
            (dec(i), dec(p))
        }
        _ => (f.get("client_id").cloned().unwrap_or_default(), f.get("client_secret").cloned().unwrap_or_default()),
    };
    if id != s.client_id {
        return oauth_error("invalid_client");
    }
    match &s.apple_team_key {
        Some(team) => {
            let mut v = Validation::new(Algorithm::ES256);
            v.set_audience(&[idp.0.base.as_str()]);
            v.set_issuer(&["TEAM123456"]);
            v.sub = Some(s.client_id.clone());
            if jsonwebtoken::decode::<Value>(&secret, team, &v).is_err() {
                return oauth_error("invalid_client");
            }
        }
        None if secret != s.client_secret => return oauth_error("invalid_client"),
        None => {}
    }
    let code = f.get("code").cloned().unwrap_or_default();
    let Some(grant) = idp.0.grants.lock().unwrap().remove(&code) else { return oauth_error("invalid_grant") };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    if computed != grant.challenge {
        return oauth_error("invalid_grant");
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = s.claims.clone();
    let o = claims.as_object_mut().unwrap();
    o.insert("iss".into(), idp.0.base.clone().into());
    o.insert(
        "aud".into(),
        if s.tamper == Tamper::WrongAudience { "someone-else".into() } else { s.client_id.clone().into() },
    );
    o.insert("iat".into(), (now - 5).into());
    o.insert("exp".into(), if s.tamper == Tamper::Expired { (now - 600).into() } else { (now + 300).into() });
    let nonce = if s.tamper == Tamper::WrongNonce { Some("not-the-nonce".to_string()) } else { grant.nonce };
    if let Some(n) = nonce {
        o.insert("nonce".into(), n.into());
    }
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("k1".into());
    let key = if s.tamper == Tamper::BadSignature { &idp.0.other_key } else { &idp.0.key };
    let id_token = jsonwebtoken::encode(&h, &claims, key).unwrap();
    let mut body =
        json!({ "access_token": "at-fake", "token_type": "Bearer", "expires_in": 300, "id_token": id_token });
    if s.token_padding > 0 {
        body["padding"] = "x".repeat(s.token_padding).into();
    }
    Json(body).into_response()
}

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer at-fake")
}

async fn user(State(idp): State<FakeIdp>, headers: HeaderMap) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(idp.0.settings.lock().unwrap().profile.clone()).into_response()
}

async fn emails(State(idp): State<FakeIdp>, headers: HeaderMap) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(idp.0.settings.lock().unwrap().emails.clone()).into_response()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            client_id: "sesame".into(),
            client_secret: "fake-secret".into(),
            tamper: Tamper::None,
            claims: json!({ "sub": "fake-1", "email": "fake@example.com", "email_verified": true, "name": "Fake User" }),
            profile: json!({ "id": 4242, "login": "octo", "name": "Octo Cat", "email": "public@example.com",
                "avatar_url": "https://avatars.example.com/u/4242" }),
            emails: json!([
                { "email": "octo@example.com", "primary": true, "verified": true },
                { "email": "unverified@example.com", "primary": false, "verified": false },
            ]),
            apple_team_key: None,
            apple_user: None,
            token_padding: 0,
            discovery_padding: 0,
            jwks_padding: 0,
        }
    }
}
