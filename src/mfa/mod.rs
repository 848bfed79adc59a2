//! Second factors as a service shared by the login box, the account page,
//! the CLI and the management API: enrolling authenticator apps and passkeys,
//! checking codes and passkeys, recovery codes, remembered browsers, and
//! removing factors — each change audited and mailed to the owner.
//!
//! Enrolment and WebAuthn ceremony state lives server-side in `ceremonies`,
//! sealed with the master key, under a key the caller derives from what the
//! browser already holds (the pending request, the session): it is spent by
//! the step that finishes it.

mod ceremonies;
pub mod passkeys;
pub mod policy;
mod remember;
pub mod totp;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::audit::{self, Auditor, Event, Kind};
use crate::crypto::random;
use crate::crypto::seal::MasterKey;
use crate::domain::{Clock, User};
use crate::emails::Emails;
use crate::storage::factors::{self, Factor, TOTP};
use crate::storage::{Db, StorageError};
use passkeys::{PasskeyError, Passkeys};

/// How long an enrolment or a ceremony may take.
const CEREMONY_SECS: i64 = 600;
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;
/// Longest factor name kept.
const MAX_NAME: usize = 64;

/// The handles the factors need (`AppState::factors`).
pub struct Factors<'a> {
    pub db: &'a Db,
    pub clock: &'a Clock,
    pub audit: &'a Auditor,
    pub emails: &'a Emails,
    pub master: &'a MasterKey,
    pub passkeys: &'a Passkeys,
    /// The issuer name authenticator apps show.
    pub product: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("the enrolment or sign-in step expired; start again")]
    Expired,
    #[error("the code is wrong")]
    WrongCode,
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error("this passkey is already registered")]
    Duplicate,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A TOTP enrolment shown to the user: the secret (as text), its URL and QR code.
pub struct TotpEnrolment {
    pub secret: String,
    pub url: String,
    pub qr_svg: String,
}

/// A factor just added; the recovery codes to show once when it was the first.
pub struct Enrolled {
    pub factor: Factor,
    pub recovery_codes: Option<Vec<String>>,
}

/// What a typed code turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// An authenticator-app code, accepted.
    Totp,
    /// A recovery code, now spent; how many are left.
    Recovery(i64),
    /// A right code already used (same or earlier time step).
    Replayed,
    Wrong,
}

fn ceremony_key(purpose: &str, key: &str) -> String {
    random::sha256_hex(&format!("sesame ceremony {purpose} {key}"))
}

/// Recovery codes are 79 random bits each (16 of 31 characters), so a plain
/// SHA-256 keeps them.
fn code_hash(code: &str) -> String {
    let norm: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    random::sha256_hex(&format!("sesame recovery {norm}"))
}

fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789"; // no 0/o, 1/l/i
    // Uniform: bytes past the last whole multiple of the alphabet are drawn again.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut chars = Vec::with_capacity(16);
    while chars.len() < 16 {
        for b in random::bytes::<32>() {
            if b < limit && chars.len() < 16 {
                chars.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// A factor's name as typed: trimmed, bounded, never empty.
pub fn clean_name(name: &str, default: &str) -> String {
    let n: String = name.trim().chars().filter(|c| !c.is_control()).take(MAX_NAME).collect();
    if n.is_empty() { default.to_string() } else { n }
}

impl Factors<'_> {
    async fn put(&self, purpose: &str, key: &str, state: &str) -> Result<(), FactorError> {
        let id = ceremony_key(purpose, key);
        let sealed = self.master.seal(state.as_bytes(), id.as_bytes()).map_err(|_| FactorError::Expired)?;
        let now = self.clock.now();
        factors::put_ceremony(self.db, &id, &URL_SAFE_NO_PAD.encode(sealed), now + CEREMONY_SECS).await?;
        Ok(())
    }

    async fn take(&self, purpose: &str, key: &str, spend: bool) -> Result<String, FactorError> {
        let id = ceremony_key(purpose, key);
        let now = self.clock.now();
        let stored = if spend {
            factors::take_ceremony(self.db, &id, now).await?
        } else {
            factors::peek_ceremony(self.db, &id, now).await?
        };
        let sealed = URL_SAFE_NO_PAD.decode(stored.ok_or(FactorError::Expired)?).map_err(|_| FactorError::Expired)?;
        let plain = self.master.open(&sealed, id.as_bytes()).map_err(|_| FactorError::Expired)?;
        String::from_utf8(plain).map_err(|_| FactorError::Expired)
    }

    pub async fn list(&self, user_id: &str) -> Result<Vec<Factor>, StorageError> {
        factors::for_user(self.db, user_id).await
    }

    fn seal_secret(&self, factor_id: &str, secret: &str) -> Result<String, FactorError> {
        let sealed = self.master.seal(secret.as_bytes(), factor_id.as_bytes()).map_err(|_| FactorError::Expired)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    fn open_secret(&self, f: &Factor) -> Option<String> {
        let sealed = URL_SAFE_NO_PAD.decode(&f.secret).ok()?;
        String::from_utf8(self.master.open(&sealed, f.factor_id.as_bytes()).ok()?).ok()
    }

    /// Starts (or shows again) an authenticator-app enrolment kept under `key`.
    pub async fn start_totp(&self, key: &str, user: &User) -> Result<TotpEnrolment, FactorError> {
        let secret = match self.take("totp", key, false).await {
            Ok(s) => s,
            Err(_) => {
                let s = totp::new_secret();
                self.put("totp", key, &s).await?;
                s
            }
        };
        let url = totp::url(&secret, self.product, user.label()).unwrap_or_default();
        let qr_svg = totp::qr_svg(&url).unwrap_or_default();
        Ok(TotpEnrolment { secret, url, qr_svg })
    }

    /// Confirms the enrolment under `key` with a code from the app.
    pub async fn confirm_totp(&self, key: &str, user: &User, name: &str, code: &str) -> Result<Enrolled, FactorError> {
        let secret = self.take("totp", key, false).await?;
        let now = self.clock.now();
        let step = totp::check(&secret, code, now).ok_or(FactorError::WrongCode)?;
        self.take("totp", key, true).await?;
        let factor_id = format!("totp_{}", random::token(12));
        let f = Factor {
            secret: self.seal_secret(&factor_id, &secret)?,
            factor_id,
            user_id: user.user_id.clone(),
            kind: TOTP.into(),
            name: clean_name(name, "Authenticator app"),
            credential_id: None,
            // The confirming code is spent: it cannot sign in again.
            last_step: step,
            created_at: now,
            last_used_at: Some(now),
        };
        self.enrolled(user, f).await
    }

    async fn enrolled(&self, user: &User, f: Factor) -> Result<Enrolled, FactorError> {
        let first_codes = factors::recovery_codes_left(self.db, &user.user_id).await? == 0
            && factors::for_user(self.db, &user.user_id).await?.is_empty();
        factors::insert(self.db, &f).await.map_err(|e| match e {
            StorageError::Conflict(_) => FactorError::Duplicate,
            e => e.into(),
        })?;
        let e =
            Event::new(Kind::MfaEnrolled).account(user).method(f.kind.clone()).actor(format!("user:{}", user.user_id));
        audit::record(self.audit, e.details(serde_json::json!({ "factor_id": f.factor_id, "name": f.name })));
        let recovery_codes = if first_codes { Some(self.new_codes(&user.user_id).await?) } else { None };
        if let Some(to) = &user.email {
            let what = match f.kind.as_str() {
                TOTP => format!("An authenticator app (\"{}\") was added to your account as a second factor.", f.name),
                _ => format!("A passkey (\"{}\") was added to your account.", f.name),
            };
            self.emails.factor_changed_notice(to, &what);
        }
        Ok(Enrolled { factor: f, recovery_codes })
    }

    async fn new_codes(&self, user_id: &str) -> Result<Vec<String>, StorageError> {
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes: Vec<String> = codes.iter().map(|c| code_hash(c)).collect();
        factors::set_recovery_codes(self.db, user_id, &hashes, self.clock.now()).await?;
        Ok(codes)
    }

    /// New recovery codes (the old ones stop working); audited and mailed.
    pub async fn regenerate_codes(&self, user: &User, actor: &str) -> Result<Vec<String>, StorageError> {
        let codes = self.new_codes(&user.user_id).await?;
        let e = Event::new(Kind::MfaEnrolled).account(user).method("recovery_codes").actor(actor.to_string());
        audit::record(self.audit, e.details(serde_json::json!({ "recovery_codes": codes.len() })));
        if let Some(to) = &user.email {
            self.emails.factor_changed_notice(
                to,
                "New recovery codes were made for your account; the old ones no longer work.",
            );
        }
        Ok(codes)
    }

    /// Keeps new recovery codes (sealed) under `key` for one showing.
    pub async fn keep_codes(&self, key: &str, codes: &[String]) -> Result<(), FactorError> {
        self.put("codes", key, &codes.join("\n")).await
    }

    /// The recovery codes kept under `key`, spent by reading them.
    pub async fn shown_codes(&self, key: &str) -> Result<Option<Vec<String>>, StorageError> {
        match self.take("codes", key, true).await {
            Ok(s) => Ok(Some(s.lines().map(str::to_string).collect())),
            Err(FactorError::Storage(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    pub async fn recovery_codes_left(&self, user_id: &str) -> Result<i64, StorageError> {
        factors::recovery_codes_left(self.db, user_id).await
    }

    /// Checks a typed code: an authenticator-app code of one of the user's
    /// apps (each step once), else one of their recovery codes (each once).
    pub async fn check_code(&self, user: &User, code: &str) -> Result<CodeCheck, StorageError> {
        let now = self.clock.now();
        let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() == totp::DIGITS as usize && compact.bytes().all(|b| b.is_ascii_digit()) {
            let mut replayed = false;
            for f in factors::for_user(self.db, &user.user_id).await?.iter().filter(|f| f.kind == TOTP) {
                let Some(secret) = self.open_secret(f) else { continue };
                if let Some(step) = totp::check(&secret, &compact, now) {
                    if factors::spend_step(self.db, &f.factor_id, step, now).await? {
                        return Ok(CodeCheck::Totp);
                    }
                    // Spent on this app; another app of the user's may match too.
                    replayed = true;
                }
            }
            return Ok(if replayed { CodeCheck::Replayed } else { CodeCheck::Wrong });
        }
        if compact.len() > 64 {
            return Ok(CodeCheck::Wrong);
        }
        if factors::spend_recovery_code(self.db, &user.user_id, &code_hash(&compact), now).await? {
            let left = factors::recovery_codes_left(self.db, &user.user_id).await?;
            audit::record(
                self.audit,
                Event::new(Kind::RecoveryCodeUsed).account(user).details(serde_json::json!({ "left": left })),
            );
            if let Some(to) = &user.email {
                self.emails.recovery_code_notice(to, left);
            }
            return Ok(CodeCheck::Recovery(left));
        }
        Ok(CodeCheck::Wrong)
    }

    pub async fn rename(&self, user: &User, factor_id: &str, name: &str) -> Result<bool, StorageError> {
        factors::rename(self.db, &user.user_id, factor_id, &clean_name(name, "Second factor")).await
    }

    /// Removes one factor; with it every remembered browser, and the
    /// recovery codes once no factor is left. Audited (`actor`) and mailed.
    pub async fn remove(&self, user: &User, factor_id: &str, actor: &str) -> Result<bool, StorageError> {
        let Some(f) = factors::remove(self.db, &user.user_id, factor_id).await? else { return Ok(false) };
        factors::forget_browsers(self.db, &user.user_id).await?;
        if factors::for_user(self.db, &user.user_id).await?.is_empty() {
            factors::set_recovery_codes(self.db, &user.user_id, &[], self.clock.now()).await?;
        }
        let e = Event::new(Kind::MfaRemoved).account(user).method(f.kind.clone()).actor(actor.to_string());
        audit::record(self.audit, e.details(serde_json::json!({ "factor_id": f.factor_id, "name": f.name })));
        if let Some(to) = &user.email {
            let what = format!("The second factor \"{}\" was removed from your account.", f.name);
            self.emails.factor_changed_notice(to, &what);
        }
        Ok(true)
    }

    /// Removes every factor, recovery code and remembered browser of `user`
    /// (`sesame user reset-mfa`, an administrator). Audited, and mailed when
    /// there was anything and `notify`; returns the factors removed.
    pub async fn reset(&self, user: &User, actor: &str, why: &str, notify: bool) -> Result<Vec<Factor>, StorageError> {
        let had_codes = factors::recovery_codes_left(self.db, &user.user_id).await? > 0;
        let removed = factors::remove_all(self.db, &user.user_id).await?;
        if removed.is_empty() && !had_codes {
            return Ok(removed);
        }
        let ids: Vec<&str> = removed.iter().map(|f| f.factor_id.as_str()).collect();
        let e = Event::new(Kind::MfaRemoved).account(user).method("all").actor(actor.to_string());
        audit::record(self.audit, e.details(serde_json::json!({ "factors": ids, "why": why })));
        if notify && let Some(to) = &user.email {
            self.emails.factor_changed_notice(to, crate::emails::ALL_FACTORS_REMOVED);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_read_back_however_typed() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 19);
        assert_eq!(code_hash(&c), code_hash(&c.to_uppercase().replace('-', " ")));
        assert_ne!(code_hash(&c), code_hash(&new_recovery_code()));
        assert_eq!(clean_name("  \u{0}  ", "Passkey"), "Passkey");
    }
}
