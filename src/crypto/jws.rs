//! Compact JWS signing with keys parsed once. jsonwebtoken re-parses the
//! private key on every `encode` (for Ed25519 that includes deriving the public
//! key, doubling the cost); on the token endpoint's hot path we keep the parsed
//! aws-lc key pairs instead. Verification and JWK export stay with jsonwebtoken.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::config::SigningAlg;

/// What Sesame accepts from keys that are not its own (DPoP proofs):
/// asymmetric algorithms only, never `none`, never a shared secret.
pub const FOREIGN_ALGS: [&str; 9] = ["ES256", "ES384", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"];

pub enum Signer {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JwsError(String);

impl Signer {
    /// `der` is PKCS#8 for Ed25519 and P-256, PKCS#1 for RSA (as stored).
    pub fn from_der(alg: SigningAlg, der: &[u8]) -> Result<Signer, JwsError> {
        let e = |e: aws_lc_rs::error::KeyRejected| JwsError(format!("{alg} key rejected: {e}"));
        Ok(match alg {
            SigningAlg::EdDSA => Signer::Ed(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(e)?),
            SigningAlg::ES256 => {
                Signer::Ec(EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(e)?)
            }
            SigningAlg::RS256 => Signer::Rsa(RsaKeyPair::from_der(der).map_err(e)?),
        })
    }

    fn signature(&self, msg: &[u8]) -> Result<Vec<u8>, JwsError> {
        let fail = |_| JwsError("signing failed".into());
        match self {
            Signer::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Signer::Ec(k) => Ok(k.sign(&SystemRandom::new(), msg).map_err(fail)?.as_ref().to_vec()),
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig).map_err(fail)?;
                Ok(sig)
            }
        }
    }

    /// The public key bytes, to check a signer against its published JWK in tests.
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            Signer::Ed(k) => k.public_key().as_ref().to_vec(),
            Signer::Ec(k) => k.public_key().as_ref().to_vec(),
            Signer::Rsa(k) => k.public_key().as_ref().to_vec(),
        }
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// `base64url(header).base64url(claims).base64url(signature)`.
pub fn sign<T: Serialize>(
    signer: &Signer,
    alg: SigningAlg,
    kid: &str,
    typ: &str,
    claims: &T,
) -> Result<String, JwsError> {
    let header = serde_json::to_vec(&Header { alg: alg.as_str(), typ, kid }).map_err(|e| JwsError(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| JwsError(e.to_string()))?;
    let mut out = URL_SAFE_NO_PAD.encode(header);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let sig = signer.signature(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(out)
}
