//! Sign in with Apple's client secret: an ES256 JWT signed with the team's
//! `.p8` key (iss = team id, sub = client id, aud = Apple's issuer), minted
//! here and renewed an hour before it expires.

use std::sync::Mutex;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::config::ProviderConfig;

/// A minted secret lives a day (Apple accepts up to six months).
const LIFETIME_SECS: i64 = 86_400;
const RENEW_BEFORE_SECS: i64 = 3_600;

pub struct AppleSecret {
    team_id: String,
    key_id: String,
    audience: String,
    key: EncodingKey,
    minted: Mutex<Option<(String, i64)>>,
}

impl AppleSecret {
    pub fn load(cfg: &ProviderConfig, preset_issuer: &str) -> anyhow::Result<AppleSecret> {
        let pem = std::fs::read(&cfg.private_key_file)
            .map_err(|e| anyhow::anyhow!("providers `{}`: cannot read {}: {e}", cfg.id, cfg.private_key_file))?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| {
            anyhow::anyhow!("providers `{}`: {} is not a P-256 .p8 key: {e}", cfg.id, cfg.private_key_file)
        })?;
        let audience = if cfg.issuer.is_empty() { preset_issuer.to_string() } else { cfg.issuer.clone() };
        Ok(AppleSecret {
            team_id: cfg.team_id.clone(),
            key_id: cfg.key_id.clone(),
            audience: audience.trim_end_matches('/').to_string(),
            key,
            minted: Mutex::new(None),
        })
    }

    /// The current secret, minted again when it is within an hour of expiry.
    pub fn secret(&self, client_id: &str, now: i64) -> anyhow::Result<String> {
        let mut minted = self.minted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, exp)) = minted.as_ref()
            && *exp - now > RENEW_BEFORE_SECS
        {
            return Ok(s.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let exp = now + LIFETIME_SECS;
        let claims = serde_json::json!({
            "iss": self.team_id,
            "iat": now,
            "exp": exp,
            "aud": self.audience,
            "sub": client_id,
        });
        let s = jsonwebtoken::encode(&header, &claims, &self.key)?;
        *minted = Some((s.clone(), exp));
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use p256::pkcs8::EncodePrivateKey;

    use super::*;

    #[test]
    fn minted_once_then_renewed_an_hour_before_expiry() {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("AuthKey.p8");
        std::fs::write(&file, key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap().as_bytes()).unwrap();
        let cfg = ProviderConfig {
            id: "apple".into(),
            team_id: "TEAM".into(),
            key_id: "KID".into(),
            private_key_file: file.display().to_string(),
            ..Default::default()
        };
        let a = AppleSecret::load(&cfg, "https://appleid.apple.com").unwrap();
        let first = a.secret("com.example.web", 1_000).unwrap();
        assert_eq!(a.secret("com.example.web", 1_000 + LIFETIME_SECS - RENEW_BEFORE_SECS - 1).unwrap(), first);
        let renewed = a.secret("com.example.web", 1_000 + LIFETIME_SECS - RENEW_BEFORE_SECS + 1).unwrap();
        assert_ne!(renewed, first);
        let header = jsonwebtoken::decode_header(&renewed).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("KID"));
    }
}
