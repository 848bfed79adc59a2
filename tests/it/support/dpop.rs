//! A DPoP client's key and its proofs (RFC 9449 §4), made here with p256 the
//! way a browser makes them with WebCrypto: ES256 over the JWS signing input.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};

pub struct DpopKey {
    key: SigningKey,
    pub jwk: serde_json::Value,
}

impl Default for DpopKey {
    fn default() -> Self {
        DpopKey::new()
    }
}

impl DpopKey {
    pub fn new() -> DpopKey {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let point = key.verifying_key().to_encoded_point(false);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap()),
        });
        DpopKey { key, jwk }
    }

    /// RFC 7638 SHA-256 thumbprint.
    pub fn jkt(&self) -> String {
        let j = &self.jwk;
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        );
        B64.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A proof for `method url`, with `ath` for `token` and `nonce` when given.
    pub fn proof(&self, method: &str, url: &str, token: Option<&str>, nonce: Option<&str>) -> String {
        self.proof_with(
            serde_json::json!({
                "jti": sesame::crypto::random::token(12), "htm": method, "htu": url,
                "iat": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            }),
            token,
            nonce,
        )
    }

    pub fn proof_with(&self, mut claims: serde_json::Value, token: Option<&str>, nonce: Option<&str>) -> String {
        if let Some(t) = token {
            claims["ath"] = B64.encode(Sha256::digest(t.as_bytes())).into();
        }
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        let head = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        self.sign(&head, &claims)
    }

    pub fn sign(&self, head: &serde_json::Value, claims: &serde_json::Value) -> String {
        let input = format!("{}.{}", B64.encode(head.to_string()), B64.encode(claims.to_string()));
        let sig: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }
}

/// A JWT's claims, unverified (the test reads what it was given).
pub fn claims(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
}
