//! Passkeys and security keys (WebAuthn, through webauthn-rs): registration,
//! use as a second factor, and discoverable (passwordless) sign-in. User
//! verification is required every time (a PIN or biometric on the
//! authenticator), so a passkey alone is two factors. The relying party is the
//! issuer's host name; an issuer on a bare IP address has no passkeys (the
//! browser would refuse them).
//!
//! Ceremony state is returned to the caller as JSON to keep server-side
//! (sealed, in `ceremonies`); it never goes to the browser.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;
use webauthn_rs::prelude::{
    AuthenticationResult, CredentialID, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

pub struct Passkeys {
    webauthn: Option<Webauthn>,
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys need an issuer with a host name")]
    Unavailable,
    #[error("the browser's answer is not valid: {0}")]
    BadResponse(String),
    #[error("the passkey was refused: {0}")]
    Refused(String),
}

type Result<T> = std::result::Result<T, PasskeyError>;

fn bad(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::BadResponse(e.to_string())
}

fn refused(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Refused(e.to_string())
}

/// Ceremony options for the browser, and the state to keep on the server.
pub struct Started {
    pub options: serde_json::Value,
    pub state: String,
}

impl Passkeys {
    pub fn new(issuer: &Url, product: &str) -> Passkeys {
        let origin = Url::parse(&issuer.origin().ascii_serialization()).ok();
        let webauthn = origin.and_then(|o| {
            let host = o.domain()?.to_string();
            WebauthnBuilder::new(&host, &o).ok()?.rp_name(product).build().ok()
        });
        Passkeys { webauthn }
    }

    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn w(&self) -> Result<&Webauthn> {
        self.webauthn.as_ref().ok_or(PasskeyError::Unavailable)
    }

    /// Starts registering a passkey for the user with `handle`; `exclude`:
    /// the user's passkeys (an authenticator holds at most one of them).
    pub fn start_registration(&self, handle: Uuid, name: &str, display: &str, exclude: &[Passkey]) -> Result<Started> {
        let exclude: Vec<CredentialID> = exclude.iter().map(|p| p.cred_id().clone()).collect();
        let (ccr, reg) = self.w()?.start_passkey_registration(handle, name, display, Some(exclude)).map_err(refused)?;
        let mut options = serde_json::to_value(&ccr).map_err(refused)?;
        // Ask for a discoverable credential where the authenticator can keep
        // one, so the passkey also signs in without a password.
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut()) {
            sel.insert("residentKey".into(), "preferred".into());
            sel.insert("requireResidentKey".into(), false.into());
        }
        Ok(Started { options, state: serde_json::to_string(&reg).map_err(refused)? })
    }

    pub fn finish_registration(&self, response: &serde_json::Value, state: &str) -> Result<Passkey> {
        let reg: RegisterPublicKeyCredential = serde_json::from_value(response.clone()).map_err(bad)?;
        let st: PasskeyRegistration = serde_json::from_str(state).map_err(bad)?;
        self.w()?.finish_passkey_registration(&reg, &st).map_err(refused)
    }

    /// Starts using one of `keys` (a user's passkeys) as a second factor.
    pub fn start_authentication(&self, keys: &[Passkey]) -> Result<Started> {
        let (rcr, st) = self.w()?.start_passkey_authentication(keys).map_err(refused)?;
        Ok(Started {
            options: serde_json::to_value(&rcr).map_err(refused)?,
            state: serde_json::to_string(&st).map_err(refused)?,
        })
    }

    pub fn finish_authentication(&self, response: &serde_json::Value, state: &str) -> Result<AuthenticationResult> {
        let cred: PublicKeyCredential = serde_json::from_value(response.clone()).map_err(bad)?;
        let st: PasskeyAuthentication = serde_json::from_str(state).map_err(bad)?;
        self.w()?.finish_passkey_authentication(&cred, &st).map_err(refused)
    }

    /// Starts a passwordless sign-in: the browser offers whichever passkey
    /// of this site it holds (conditional mediation, or a button).
    pub fn start_discoverable(&self) -> Result<Started> {
        let (rcr, st) = self.w()?.start_discoverable_authentication().map_err(refused)?;
        Ok(Started {
            options: serde_json::to_value(&rcr).map_err(refused)?,
            state: serde_json::to_string(&st).map_err(refused)?,
        })
    }

    /// The user handle and credential id (base64url) a discoverable answer names.
    pub fn identify(&self, response: &serde_json::Value) -> Result<(Uuid, String)> {
        let cred: PublicKeyCredential = serde_json::from_value(response.clone()).map_err(bad)?;
        let (handle, id) = self.w()?.identify_discoverable_authentication(&cred).map_err(bad)?;
        Ok((handle, URL_SAFE_NO_PAD.encode(id)))
    }

    pub fn finish_discoverable(
        &self,
        response: &serde_json::Value,
        state: &str,
        key: &Passkey,
    ) -> Result<AuthenticationResult> {
        let cred: PublicKeyCredential = serde_json::from_value(response.clone()).map_err(bad)?;
        let st: DiscoverableAuthentication = serde_json::from_str(state).map_err(bad)?;
        self.w()?.finish_discoverable_authentication_v2(&cred, st, key).map_err(refused)
    }
}

/// The WebAuthn user handle of `user_id`: stable, and no personal data.
pub fn user_handle(user_id: &str) -> Uuid {
    let h = crate::crypto::random::sha256_hex(&format!("sesame webauthn user {user_id}"));
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    Uuid::from_bytes(b)
}

/// A passkey's credential id as stored (base64url).
pub fn credential_id(p: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode(p.cred_id())
}

/// The `amr` of a passkey as stored (its registration): `swk` when it is
/// backup eligible (synced), else `hwk`; and `user`.
pub fn stored_amr(stored: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(stored).unwrap_or_default();
    let synced = v.pointer("/cred/backup_eligible").and_then(|b| b.as_bool()).unwrap_or(false);
    vec![if synced { "swk" } else { "hwk" }.into(), "user".into()]
}

/// RFC 8176 `amr` of a passkey use: `hwk` for a key bound to its device, `swk`
/// for one synced between devices (backup eligible), `user` for the user
/// verification it made.
pub fn amr(result: &AuthenticationResult) -> Vec<String> {
    let key = if result.backup_eligible() { "swk" } else { "hwk" };
    vec![key.into(), "user".into()]
}
