//! Sealing private keys at rest under the master key (XChaCha20-Poly1305).
//! The row's identifier is bound as associated data, so a sealed blob cannot be
//! moved to another row.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Version byte in front of every sealed blob, so the format can change later.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct MasterKey(XChaCha20Poly1305);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealing failed")]
    Seal,
    #[error("cannot open sealed data: wrong master key or corrupted data")]
    Open,
}

impl MasterKey {
    pub fn new(key: &[u8; 32]) -> MasterKey {
        MasterKey(XChaCha20Poly1305::new(key.into()))
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce_bytes = super::random::bytes::<NONCE_LEN>();
        let ct = self
            .0
            .encrypt(XNonce::from_slice(&nonce_bytes), Payload { msg: plaintext, aad })
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let (version, rest) = sealed.split_first().ok_or(SealError::Open)?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        self.0.decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad }).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = MasterKey::new(&[7u8; 32]);
        let sealed = k.seal(b"secret key", b"kid-1").unwrap_or_default();
        assert_eq!(k.open(&sealed, b"kid-1").ok(), Some(b"secret key".to_vec()));
        assert!(k.open(&sealed, b"kid-2").is_err());
        assert!(MasterKey::new(&[8u8; 32]).open(&sealed, b"kid-1").is_err());
        assert!(!sealed.windows(10).any(|w| w == b"secret key"));
    }
}
