//! Remembered browsers: a browser that proved a second factor may skip it
//! for `[mfa] remember_browser_days`. The cookie is sealed with the master
//! key and names the user; the database row (by the SHA-256 of its random
//! token) says which factor and when, and goes when the user removes a
//! factor, resets the password or signs out everywhere.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::Factors;
use crate::crypto::random;
use crate::storage::StorageError;
use crate::storage::factors;

impl Factors<'_> {
    /// A sealed cookie value remembering that this browser proved `amr` for
    /// `user_id` at `proven_at`, for `days`.
    pub async fn remember(
        &self,
        user_id: &str,
        amr: &[String],
        proven_at: i64,
        days: u64,
    ) -> Result<String, StorageError> {
        let token = random::token(32);
        let now = self.clock.now();
        factors::remember_browser(
            self.db,
            &random::sha256_hex(&token),
            user_id,
            amr,
            proven_at,
            now + days as i64 * 86_400,
        )
        .await?;
        let sealed = self
            .master
            .seal(format!("{user_id}\n{token}").as_bytes(), b"sesame remember")
            .map_err(|_| StorageError::Corrupt("seal".into()))?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The factor and proof time a remembered-browser cookie holds for
    /// `user_id`, if it is live (not expired, not revoked).
    pub async fn remembered(&self, cookie: &str, user_id: &str) -> Result<Option<(Vec<String>, i64)>, StorageError> {
        let Some(plain) = URL_SAFE_NO_PAD
            .decode(cookie)
            .ok()
            .and_then(|s| self.master.open(&s, b"sesame remember").ok())
            .and_then(|p| String::from_utf8(p).ok())
        else {
            return Ok(None);
        };
        let Some((uid, token)) = plain.split_once('\n') else { return Ok(None) };
        if !random::ct_eq(uid, user_id) {
            return Ok(None);
        }
        factors::remembered(self.db, &random::sha256_hex(token), user_id, self.clock.now()).await
    }

    /// Forgets every remembered browser of `user_id` (password reset, sign
    /// out everywhere).
    pub async fn forget_browsers(&self, user_id: &str) -> Result<u64, StorageError> {
        factors::forget_browsers(self.db, user_id).await
    }
}
