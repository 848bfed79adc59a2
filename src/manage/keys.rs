//! Signing keys: the list with their state, and rotation (the next key of
//! each algorithm, signing once every replica and cache has seen it).

use super::{Admin, Manage, OpError, Result};
use crate::config::SigningAlg;
use crate::crypto::keys::{self, KeyInfo};

impl Manage<'_> {
    pub async fn keys(&self, max_token_ttl: i64) -> Result<Vec<KeyInfo>> {
        keys::list_info(self.db, self.clock.now(), max_token_ttl).await.map_err(key_error)
    }

    /// Adds the next key of each of `algs` (every algorithm when empty),
    /// published now and signing after the JWKS cache and the replicas'
    /// reload have had time to see it.
    pub async fn rotate_keys(&self, who: &Admin, algs: &[String]) -> Result<Vec<KeyInfo>> {
        who.need("write:keys")?;
        let algs: Vec<SigningAlg> =
            algs.iter().map(|a| a.parse::<SigningAlg>().map_err(OpError::Invalid)).collect::<Result<_>>()?;
        let algs = if algs.is_empty() { SigningAlg::ALL.to_vec() } else { algs };
        let now = self.clock.now();
        let lead = (self.config.keys.jwks_cache_secs + self.config.keys.reload_interval_secs) as i64;
        crate::crypto::keygen::rotate(self.db, self.master, &algs, now, now + lead).await.map_err(key_error)
    }
}

fn key_error(e: keys::KeyError) -> OpError {
    match e {
        keys::KeyError::Storage(s) => OpError::Storage(s),
        keys::KeyError::Crypto(m) if m.contains("concurrent") => OpError::Conflict(m),
        e => OpError::Internal(e.to_string()),
    }
}
