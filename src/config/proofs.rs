//! What a sign-in or a token must prove: second factors and DPoP.

use serde::{Deserialize, Serialize};

/// Where a second factor is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaPolicy {
    /// Only where a client or a role requires one, or a request asks (`acr_values`).
    Optional,
    /// Every sign-in.
    Required,
}

/// Second factors (TOTP, passkeys, recovery codes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    pub policy: MfaPolicy,
    /// Days a browser that proved a second factor may skip it ("Remember this
    /// browser"); 0 turns the option off.
    pub remember_browser_days: u64,
    /// Codes an account may be tried with in an hour (over every replica)
    /// before more are refused, except from addresses that proved its second
    /// factor before.
    pub max_attempts_per_hour: u32,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig { policy: MfaPolicy::Optional, remember_browser_days: 30, max_attempts_per_hour: 30 }
    }
}

/// DPoP (RFC 9449): tokens bound to a key the client holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpopConfig {
    /// Every proof must carry a nonce Sesame issued (`DPoP-Nonce`, `use_dpop_nonce`):
    /// a proof made in advance on a stolen device is worthless.
    pub require_nonce: bool,
    /// How far a proof's `iat` may be from Sesame's clock, either way (seconds).
    pub max_age_secs: u64,
}

impl Default for DpopConfig {
    fn default() -> Self {
        DpopConfig { require_nonce: false, max_age_secs: 300 }
    }
}

/// The admin console (`/admin`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Signing in to the console needs a second factor (set up on the way
    /// when the administrator has none).
    pub require_mfa: bool,
}
