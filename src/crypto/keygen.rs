//! Making signing keys: generation (on the blocking pool), sealing with the
//! master key, the first key per algorithm, rotation, and the start-up check
//! that the master key opens what is stored.

use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};

use super::keys::{KeyError, KeyInfo, KeyStatus, crypto_err, encoding_key, jwt_alg};
use super::seal::MasterKey;
use crate::config::SigningAlg;
use crate::storage::Db;
use crate::storage::keys::{self as store, KeyRow};

/// PKCS#8 v1 header for a bare Ed25519 seed; jsonwebtoken's JWK export rejects v2.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// Generates private key DER in the form `encoding_key` expects. RSA takes
/// a noticeable fraction of a second, so this runs on the blocking pool.
async fn generate_der(alg: SigningAlg) -> Result<Vec<u8>, KeyError> {
    tokio::task::spawn_blocking(move || -> Result<Vec<u8>, KeyError> {
        let mut rng = rand::rngs::OsRng;
        match alg {
            SigningAlg::EdDSA => {
                let sk = ed25519_dalek::SigningKey::generate(&mut rng);
                let mut der = ED25519_PKCS8_V1_PREFIX.to_vec();
                der.extend_from_slice(&sk.to_bytes());
                Ok(der)
            }
            SigningAlg::ES256 => {
                use p256::pkcs8::EncodePrivateKey;
                let sk = p256::ecdsa::SigningKey::random(&mut rng);
                Ok(sk.to_pkcs8_der().map_err(crypto_err)?.as_bytes().to_vec())
            }
            SigningAlg::RS256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let sk = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(crypto_err)?;
                Ok(sk.to_pkcs1_der().map_err(crypto_err)?.as_bytes().to_vec())
            }
        }
    })
    .await
    .map_err(crypto_err)?
}

/// Creates a key for `alg` in slot `generation`. Returns `None` when another
/// process filled that slot first.
async fn create(
    db: &Db,
    master: &MasterKey,
    alg: SigningAlg,
    generation: i64,
    now: i64,
    activates_at: i64,
) -> Result<Option<KeyInfo>, KeyError> {
    let der = generate_der(alg).await?;
    let enc = encoding_key(alg, &der);
    let mut jwk = Jwk::from_encoding_key(&enc, jwt_alg(alg)).map_err(crypto_err)?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(crypto_err)?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let sealed = master.seal(&der, kid.as_bytes()).map_err(|source| KeyError::Seal { kid: kid.clone(), source })?;
    let row = KeyRow {
        kid: kid.clone(),
        alg: alg.as_str().to_string(),
        generation,
        public_jwk: serde_json::to_string(&jwk).map_err(crypto_err)?,
        private_key_sealed: sealed,
        created_at: now,
        activates_at,
    };
    let inserted = store::insert(db, &row).await?;
    Ok(inserted.then_some(KeyInfo {
        kid,
        alg,
        generation,
        status: if activates_at > now { KeyStatus::Pending } else { KeyStatus::Active },
        created_at: now,
        activates_at,
    }))
}

/// First start: one key per algorithm, active at once (nothing can have cached
/// an older JWKS). A no-op when keys exist; safe when replicas race.
pub async fn ensure_initial(db: &Db, master: &MasterKey, now: i64) -> Result<Vec<KeyInfo>, KeyError> {
    let mut made = Vec::new();
    for alg in SigningAlg::ALL {
        if store::max_generation(db, alg.as_str()).await? == 0
            && let Some(k) = create(db, master, alg, 1, now, now).await?
        {
            made.push(k);
        }
    }
    Ok(made)
}

/// Adds the next key for each of `algs`, signing from `activates_at`.
pub async fn rotate(
    db: &Db,
    master: &MasterKey,
    algs: &[SigningAlg],
    now: i64,
    activates_at: i64,
) -> Result<Vec<KeyInfo>, KeyError> {
    let mut made = Vec::new();
    for &alg in algs {
        let next = store::max_generation(db, alg.as_str()).await? + 1;
        match create(db, master, alg, next, now, activates_at).await? {
            Some(k) => made.push(k),
            None => {
                return Err(KeyError::Crypto(format!("a concurrent rotation of {alg} won; run again")));
            }
        }
    }
    Ok(made)
}

/// Checks that `master` opens the stored keys, so a wrong master key is caught
/// at start with a clear message rather than at the first signature.
pub async fn check_master_key(db: &Db, master: &MasterKey) -> Result<(), KeyError> {
    if let Some(row) = store::list(db).await?.first() {
        master
            .open(&row.private_key_sealed, row.kid.as_bytes())
            .map_err(|source| KeyError::Seal { kid: row.kid.clone(), source })?;
    }
    Ok(())
}
