//! Signing keys: generation, sealing, the in-memory key ring each replica
//! signs with, and the publication schedule.
//!
//! Every key row carries `activates_at`. A key signs from then until a newer key
//! of its algorithm activates; it is published in the JWKS from the moment it is
//! written (so caches learn it before it signs) until the longest-lived token it
//! could have signed has expired. The schedule is derived from the rows and the
//! clock alone, so every replica reaches the same answer without coordination.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::Serialize;

use super::seal::{MasterKey, SealError};
use crate::config::SigningAlg;
use crate::storage::keys::{self as store, KeyRow};
use crate::storage::{Db, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("signing key {kid}: {source}")]
    Seal { kid: String, source: SealError },
    #[error("key material: {0}")]
    Crypto(String),
    #[error("no active {0} signing key")]
    NoActiveKey(SigningAlg),
}

pub(super) fn crypto_err(e: impl std::fmt::Display) -> KeyError {
    KeyError::Crypto(e.to_string())
}

pub fn jwt_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// A decrypted key, ready to sign.
pub struct LoadedKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub generation: i64,
    pub created_at: i64,
    pub activates_at: i64,
    pub jwk: Jwk,
    signer: Option<super::jws::Signer>,
    decoding: Option<DecodingKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Published, not signing yet.
    Pending,
    /// Signing new tokens.
    Active,
    /// No longer signing, still published for tokens it signed.
    Retired,
    /// Dropped from the JWKS.
    Expired,
}

/// A snapshot of all keys; cheap to share between requests.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<Arc<LoadedKey>>,
}

impl KeySet {
    /// The key that signs `alg` tokens at `now`: the newest one already activated.
    pub fn signing_key(&self, alg: SigningAlg, now: i64) -> Option<&Arc<LoadedKey>> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && k.activates_at <= now && k.signer.is_some())
            .max_by_key(|k| k.generation)
    }

    pub fn status(&self, key: &LoadedKey, now: i64, max_token_ttl: i64) -> KeyStatus {
        status_of(&self.keys, key.alg, key.generation, key.activates_at, now, max_token_ttl)
    }

    /// The JWKS at `now`: pending, active and retired keys.
    pub fn jwks(&self, now: i64, max_token_ttl: i64) -> JwkSet {
        let keys = self
            .keys
            .iter()
            .filter(|k| self.status(k, now, max_token_ttl) != KeyStatus::Expired)
            .map(|k| k.jwk.clone())
            .collect();
        JwkSet { keys }
    }

    pub fn keys(&self) -> &[Arc<LoadedKey>] {
        &self.keys
    }

    /// Signs `claims` as a compact JWS with the active key for `alg`.
    pub fn sign<T: Serialize>(&self, alg: SigningAlg, typ: &str, claims: &T, now: i64) -> Result<String, KeyError> {
        let key = self.signing_key(alg, now).ok_or(KeyError::NoActiveKey(alg))?;
        let signer = key.signer.as_ref().ok_or(KeyError::NoActiveKey(alg))?;
        super::jws::sign(signer, alg, &key.kid, typ, claims).map_err(crypto_err)
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown or expired signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl KeySet {
    /// Verifies a token signed by one of our published keys. The algorithm is
    /// pinned to the key's own (never taken from the header alone), `iss` must be
    /// `issuer`, and `aud` must contain `audience` when given. `exp` is left to
    /// the caller, who holds the clock.
    pub fn verify<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        audience: Option<&str>,
        now: i64,
        max_token_ttl: i64,
    ) -> Result<(T, Option<String>), VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let kid = header.kid.as_deref().ok_or(VerifyError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid && self.status(k, now, max_token_ttl) != KeyStatus::Expired)
            .ok_or(VerifyError::UnknownKey)?;
        let dec = key.decoding.as_ref().ok_or(VerifyError::UnknownKey)?;
        let mut v = Validation::new(jwt_alg(key.alg));
        v.validate_exp = false;
        v.required_spec_claims.clear();
        v.set_issuer(&[issuer]);
        match audience {
            Some(a) => v.set_audience(&[a]),
            None => v.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<T>(token, dec, &v).map_err(|e| VerifyError::Invalid(e.to_string()))?;
        Ok((data.claims, header.typ))
    }
}

/// The one schedule rule, shared by the server and `sesame keys list`.
trait Scheduled {
    fn alg(&self) -> SigningAlg;
    fn generation(&self) -> i64;
    fn activates_at(&self) -> i64;
}

impl Scheduled for Arc<LoadedKey> {
    fn alg(&self) -> SigningAlg {
        self.alg
    }
    fn generation(&self) -> i64 {
        self.generation
    }
    fn activates_at(&self) -> i64 {
        self.activates_at
    }
}

impl Scheduled for (SigningAlg, KeyRow) {
    fn alg(&self) -> SigningAlg {
        self.0
    }
    fn generation(&self) -> i64 {
        self.1.generation
    }
    fn activates_at(&self) -> i64 {
        self.1.activates_at
    }
}

fn status_of<K: Scheduled>(
    all: &[K],
    alg: SigningAlg,
    generation: i64,
    activates_at: i64,
    now: i64,
    ttl: i64,
) -> KeyStatus {
    if activates_at > now {
        return KeyStatus::Pending;
    }
    // This key stopped signing when the first newer key of its algorithm activated.
    let superseded_at = all
        .iter()
        .filter(|k| k.alg() == alg && k.generation() > generation && k.activates_at() <= now)
        .map(Scheduled::activates_at)
        .min();
    match superseded_at {
        None => KeyStatus::Active,
        // A minute of leeway for verifiers whose clocks run behind.
        Some(t) if now < t + ttl + 60 => KeyStatus::Retired,
        Some(_) => KeyStatus::Expired,
    }
}

/// What `sesame keys list` shows; needs no master key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub generation: i64,
    pub status: KeyStatus,
    pub created_at: i64,
    pub activates_at: i64,
}

pub async fn list_info(db: &Db, now: i64, max_token_ttl: i64) -> Result<Vec<KeyInfo>, KeyError> {
    let rows = typed_rows(store::list(db).await?)?;
    Ok(rows
        .iter()
        .map(|(alg, r)| KeyInfo {
            kid: r.kid.clone(),
            alg: *alg,
            generation: r.generation,
            status: status_of(&rows, *alg, r.generation, r.activates_at, now, max_token_ttl),
            created_at: r.created_at,
            activates_at: r.activates_at,
        })
        .collect())
}

fn typed_rows(rows: Vec<KeyRow>) -> Result<Vec<(SigningAlg, KeyRow)>, KeyError> {
    rows.into_iter().map(|r| Ok((r.alg.parse::<SigningAlg>().map_err(KeyError::Crypto)?, r))).collect()
}

/// Shared handle to the current key set; every replica keeps one and reloads it.
#[derive(Clone)]
pub struct KeyRing {
    current: Arc<RwLock<Arc<KeySet>>>,
    master: MasterKey,
    db: Db,
    /// The configured token lifetimes; the effective retention also covers
    /// the longest lifetime an API sets, read again at every reload.
    base_ttl: i64,
    max_token_ttl: Arc<std::sync::atomic::AtomicI64>,
}

impl KeyRing {
    /// Loads (and decrypts) every key that can still sign or be published.
    pub async fn load(db: Db, master: MasterKey, max_token_ttl: i64, now: i64) -> Result<KeyRing, KeyError> {
        let ttl = Arc::new(std::sync::atomic::AtomicI64::new(max_token_ttl));
        let ring = KeyRing { current: Arc::default(), master, db, base_ttl: max_token_ttl, max_token_ttl: ttl };
        ring.reload(now).await?;
        Ok(ring)
    }

    pub fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The longest a token signed now may live: the configured lifetimes or
    /// the longest API lifetime, whichever is longer.
    pub fn max_token_ttl(&self) -> i64 {
        self.max_token_ttl.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Re-reads the rows, decrypting only keys this replica has not seen yet.
    pub async fn reload(&self, now: i64) -> Result<(), KeyError> {
        let api_ttl = crate::storage::apis::max_token_ttl(&self.db).await?.unwrap_or(0) as i64;
        let ttl = self.base_ttl.max(api_ttl);
        self.max_token_ttl.store(ttl, std::sync::atomic::Ordering::Relaxed);
        let rows = typed_rows(store::list(&self.db).await?)?;
        let old = self.snapshot();
        let mut keys = Vec::with_capacity(rows.len());
        for (alg, row) in &rows {
            if let Some(k) = old.keys.iter().find(|k| k.kid == row.kid) {
                keys.push(k.clone());
                continue;
            }
            let expired = status_of(&rows, *alg, row.generation, row.activates_at, now, ttl) == KeyStatus::Expired;
            keys.push(Arc::new(self.open(*alg, row, expired)?));
        }
        let set = Arc::new(KeySet { keys });
        match self.current.write() {
            Ok(mut g) => *g = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }

    fn open(&self, alg: SigningAlg, row: &KeyRow, expired: bool) -> Result<LoadedKey, KeyError> {
        let jwk: Jwk = serde_json::from_str(&row.public_jwk).map_err(crypto_err)?;
        // Expired keys never sign again; leave their private half sealed.
        let signer = if expired {
            None
        } else {
            let der = self
                .master
                .open(&row.private_key_sealed, row.kid.as_bytes())
                .map_err(|source| KeyError::Seal { kid: row.kid.clone(), source })?;
            Some(super::jws::Signer::from_der(alg, &der).map_err(crypto_err)?)
        };
        Ok(LoadedKey {
            kid: row.kid.clone(),
            alg,
            generation: row.generation,
            created_at: row.created_at,
            activates_at: row.activates_at,
            decoding: DecodingKey::from_jwk(&jwk).ok(),
            jwk,
            signer,
        })
    }

    /// Reloads on an interval until the process ends; errors are logged and retried.
    pub fn spawn_reloader(&self, every: Duration, clock: crate::domain::Clock) -> tokio::task::JoinHandle<()> {
        let ring = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = ring.reload(clock.now()).await {
                    tracing::warn!(error = %e, "reloading signing keys failed; keeping the current set");
                }
            }
        })
    }
}

pub(super) fn encoding_key(alg: SigningAlg, der: &[u8]) -> EncodingKey {
    match alg {
        SigningAlg::RS256 => EncodingKey::from_rsa_der(der),
        SigningAlg::ES256 => EncodingKey::from_ec_der(der),
        SigningAlg::EdDSA => EncodingKey::from_ed_der(der),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct K(SigningAlg, i64, i64);
    impl Scheduled for K {
        fn alg(&self) -> SigningAlg {
            self.0
        }
        fn generation(&self) -> i64 {
            self.1
        }
        fn activates_at(&self) -> i64 {
            self.2
        }
    }

    #[test]
    fn schedule() {
        let ttl = 3600;
        let keys = [K(SigningAlg::EdDSA, 1, 0), K(SigningAlg::EdDSA, 2, 1000), K(SigningAlg::RS256, 1, 0)];
        let st = |g: i64, act: i64, now: i64| status_of(&keys, SigningAlg::EdDSA, g, act, now, ttl);
        assert_eq!(st(1, 0, 500), KeyStatus::Active);
        assert_eq!(st(2, 1000, 500), KeyStatus::Pending);
        assert_eq!(st(1, 0, 1000), KeyStatus::Retired);
        assert_eq!(st(2, 1000, 1000), KeyStatus::Active);
        assert_eq!(st(1, 0, 1000 + ttl + 59), KeyStatus::Retired);
        assert_eq!(st(1, 0, 1000 + ttl + 60), KeyStatus::Expired);
        assert_eq!(status_of(&keys, SigningAlg::RS256, 1, 0, 99_999, ttl), KeyStatus::Active);
    }
}
