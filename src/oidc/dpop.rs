//! DPoP (RFC 9449): a client proves, with every request, that it holds the
//! private key its tokens are bound to. `check` is the pure part (§4.3 steps
//! 1–12: shape, `typ`, `alg`, signature, public key, `htm`, `htu`, `iat`,
//! `ath`); `verify` adds the server's state: the nonce (stateless, sealed with
//! the master key, so every replica accepts every other's) and the replay
//! cache (`storage::dpop`, shared by the replicas through the database).

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::crypto::{random, seal::MasterKey};
use crate::state::AppState;
use crate::storage::StorageError;

/// The proof's header.
pub const HEADER: &str = "dpop";
/// The response header that carries a nonce.
pub const NONCE_HEADER: &str = "dpop-nonce";
/// Asymmetric algorithms only (§4.2): never `none`, never a shared secret.
pub use crate::crypto::jws::FOREIGN_ALGS as ALGS;
/// A proof is a few hundred bytes; anything much longer is not one.
const MAX_PROOF_LEN: usize = 8 * 1024;
const MAX_JTI_LEN: usize = 256;
/// How far ahead of Sesame's clock a proof's `iat` may be.
const MAX_FUTURE_SECS: i64 = 60;
/// A nonce is good for this window and the one before it.
const NONCE_WINDOW_SECS: i64 = 300;
const NONCE_AAD: &[u8] = b"sesame dpop nonce";

/// What a request's proof must match.
pub struct Expect<'a> {
    pub method: &'a str,
    /// The request's URL without query or fragment.
    pub url: &'a str,
    /// The access token presented with it (resource requests: `ath`).
    pub access_token: Option<&'a str>,
    pub now: i64,
    pub max_age: i64,
}

/// A proof that passed `check`.
#[derive(Debug)]
pub struct Checked {
    /// RFC 7638 SHA-256 thumbprint of the proof's key: what tokens are bound to.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub nonce: Option<String>,
}

/// Why a proof was refused.
#[derive(Debug)]
pub enum Refused {
    Invalid(String),
    /// A nonce is required and the proof has none, or a stale one.
    NonceNeeded,
    Storage(StorageError),
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

fn invalid(why: &str) -> Refused {
    Refused::Invalid(why.to_string())
}

/// RFC 9449 §4.3, without the server's state.
pub fn check(proof: &str, e: &Expect) -> Result<Checked, Refused> {
    if proof.len() > MAX_PROOF_LEN || proof.split('.').count() != 3 {
        return Err(invalid("the DPoP proof is not a JWT"));
    }
    let head = proof.split('.').next().unwrap_or("");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head).map_err(|_| invalid("malformed header"))?;
    let head: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| invalid("malformed header"))?;
    if head.get("typ").and_then(|t| t.as_str()) != Some("dpop+jwt") {
        return Err(invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    let alg_name = head.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    if !ALGS.contains(&alg_name) {
        return Err(invalid("the DPoP proof's alg is not allowed"));
    }
    let jwk_value = head.get("jwk").ok_or_else(|| invalid("the DPoP proof has no jwk"))?;
    // A private key in a header is a key given away: refused, not ignored.
    if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"].iter().any(|m| jwk_value.get(m).is_some()) {
        return Err(invalid("the DPoP proof's jwk must be a public key"));
    }
    // The key is of the kind the algorithm names (one key, one thumbprint).
    let kty = jwk_value.get("kty").and_then(|v| v.as_str()).unwrap_or("");
    let crv = jwk_value.get("crv").and_then(|v| v.as_str()).unwrap_or("");
    let fits = match alg_name {
        "ES256" => kty == "EC" && crv == "P-256",
        "ES384" => kty == "EC" && crv == "P-384",
        "EdDSA" => kty == "OKP" && crv == "Ed25519",
        _ => kty == "RSA",
    };
    if !fits {
        return Err(invalid("the DPoP proof's jwk does not fit its alg"));
    }
    let jwk: Jwk =
        serde_json::from_value(jwk_value.clone()).map_err(|_| invalid("the DPoP proof's jwk is malformed"))?;
    let alg: Algorithm = alg_name.parse().map_err(|_| invalid("the DPoP proof's alg is not allowed"))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid("the DPoP proof's jwk is not a usable key"))?;
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let c = jsonwebtoken::decode::<Claims>(proof, &key, &v)
        .map_err(|_| invalid("the DPoP proof's signature or claims are invalid"))?
        .claims;
    if c.jti.is_empty() || c.jti.len() > MAX_JTI_LEN {
        return Err(invalid("the DPoP proof's jti is missing or too long"));
    }
    if c.htm != e.method {
        return Err(invalid("the DPoP proof's htm does not match the request"));
    }
    if !same_url(&c.htu, e.url) {
        return Err(invalid("the DPoP proof's htu does not match the request"));
    }
    // Old by at most max_age; ahead of Sesame's clock by at most a minute.
    if e.now.saturating_sub(c.iat) > e.max_age || c.iat.saturating_sub(e.now) > MAX_FUTURE_SECS {
        return Err(invalid("the DPoP proof's iat is too far from now"));
    }
    if let Some(token) = e.access_token {
        let want = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if !c.ath.as_deref().is_some_and(|a| random::ct_eq(a, &want)) {
            return Err(invalid("the DPoP proof's ath does not match the access token"));
        }
    }
    let jkt = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| invalid("the DPoP proof's jwk has no thumbprint"))?;
    Ok(Checked { jkt, jti: c.jti, iat: c.iat, nonce: c.nonce })
}

/// `htu` names the request's URL: scheme, host, port and path compared after
/// URL normalisation (RFC 9449 §4.3 step 9, RFC 3986 §6.2.2–6.2.3), without
/// query and fragment.
fn same_url(htu: &str, want: &str) -> bool {
    let base = |s: &str| {
        url::Url::parse(s).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        })
    };
    matches!((base(htu), base(want)), (Some(a), Some(b)) if a == b)
}

/// A fresh nonce: the current window, sealed.
pub fn nonce(master: &MasterKey, now: i64) -> String {
    let window = (now / NONCE_WINDOW_SECS).to_be_bytes();
    let sealed = master.seal(&window, NONCE_AAD).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
}

/// A nonce Sesame made in this window or the one before.
fn nonce_ok(master: &MasterKey, nonce: &str, now: i64) -> bool {
    let Ok(sealed) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(nonce) else { return false };
    let Ok(window) = master.open(&sealed, NONCE_AAD) else { return false };
    let Ok(window) = <[u8; 8]>::try_from(window.as_slice()) else { return false };
    let (w, current) = (i64::from_be_bytes(window), now / NONCE_WINDOW_SECS);
    w == current || w == current - 1
}

/// The request's URL as the client addressed it: the issuer's origin and the
/// request's path.
pub fn request_url(state: &AppState, uri: &Uri) -> String {
    format!("{}{}", state.issuer.origin(), uri.path())
}

/// The request's proof, if it carries one: checked, its nonce when required,
/// and spent (a proof is accepted once, on every replica).
pub async fn verify(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    access_token: Option<&str>,
) -> Result<Option<Checked>, Refused> {
    let mut all = headers.get_all(HEADER).iter();
    let Some(first) = all.next() else { return Ok(None) };
    if all.next().is_some() {
        return Err(invalid("more than one DPoP header"));
    }
    let proof = first.to_str().map_err(|_| invalid("the DPoP proof is not a JWT"))?;
    let now = state.clock.now();
    let max_age = state.config.dpop.max_age_secs as i64;
    let url = request_url(state, uri);
    let c = check(proof, &Expect { method: method.as_str(), url: &url, access_token, now, max_age })?;
    if state.config.dpop.require_nonce && !c.nonce.as_deref().is_some_and(|n| nonce_ok(&state.master, n, now)) {
        return Err(Refused::NonceNeeded);
    }
    let key = random::sha256_hex(&format!("{}:{}", c.jkt, c.jti));
    let fresh = crate::storage::dpop::first_use(&state.db, &key, c.iat.max(now) + max_age + 1)
        .await
        .map_err(Refused::Storage)?;
    if !fresh {
        return Err(invalid("the DPoP proof was already used"));
    }
    Ok(Some(c))
}

/// A `DPoP-Nonce` header value, when nonces are required.
pub fn nonce_header(state: &AppState) -> Option<HeaderValue> {
    if !state.config.dpop.require_nonce {
        return None;
    }
    HeaderValue::from_str(&nonce(&state.master, state.clock.now())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint() {
        // RFC 7638 §3.1's example key and its thumbprint.
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        }))
        .unwrap();
        assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn htu_is_compared_without_query_and_after_normalisation() {
        assert!(same_url("https://auth.example.com/token", "https://auth.example.com/token"));
        assert!(same_url("https://AUTH.example.com:443/token?x=1#f", "https://auth.example.com/token"));
        assert!(!same_url("https://auth.example.com/token/", "https://auth.example.com/token"));
        assert!(!same_url("https://evil.example.com/token", "https://auth.example.com/token"));
        assert!(!same_url("not a url", "https://auth.example.com/token"));
    }

    #[test]
    fn nonces_last_two_windows() {
        let m = MasterKey::new(&[7; 32]);
        let n = nonce(&m, 1_000_000);
        assert!(nonce_ok(&m, &n, 1_000_000));
        assert!(nonce_ok(&m, &n, 1_000_000 + NONCE_WINDOW_SECS));
        assert!(!nonce_ok(&m, &n, 1_000_000 + 3 * NONCE_WINDOW_SECS));
        assert!(!nonce_ok(&MasterKey::new(&[8; 32]), &n, 1_000_000));
        assert!(!nonce_ok(&m, "not-a-nonce", 1_000_000));
    }

    #[test]
    fn malformed_proofs_are_refused_with_a_reason() {
        let e = Expect { method: "POST", url: "https://a.example/token", access_token: None, now: 0, max_age: 60 };
        let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let jwk = serde_json::json!({"kty":"EC","crv":"P-256","x":"a","y":"b"});
        for (head, why) in [
            (serde_json::json!({"typ":"JWT","alg":"ES256","jwk":jwk}), "typ"),
            (serde_json::json!({"typ":"dpop+jwt","alg":"HS256","jwk":jwk}), "alg"),
            (serde_json::json!({"typ":"dpop+jwt","alg":"none","jwk":jwk}), "alg"),
            (serde_json::json!({"typ":"dpop+jwt","alg":"ES256"}), "jwk"),
            (
                serde_json::json!({"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}}),
                "public",
            ),
            (serde_json::json!({"typ":"dpop+jwt","alg":"ES384","jwk":jwk}), "fit"),
            (serde_json::json!({"typ":"dpop+jwt","alg":"RS256","jwk":jwk}), "fit"),
        ] {
            let proof = format!("{}.{}.sig", b64(head), b64(serde_json::json!({})));
            match check(&proof, &e) {
                Err(Refused::Invalid(m)) => assert!(m.contains(why), "{m} should mention {why}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(check("a.b", &e), Err(Refused::Invalid(_))));
    }
}
