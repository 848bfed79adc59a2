//! One audit event and its stable names. Type names are a public contract
//! (operators search and alert on them): add freely, never rename.

use serde::Serialize;

macro_rules! kinds {
    ($($v:ident = $s:literal),* $(,)?) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        pub enum Kind { $($v),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$v => $s),* }
            }
        }
    };
}

kinds! {
    LoginSuccess = "login_success",
    LoginFailure = "login_failure",
    Signup = "signup",
    Logout = "logout",
    SessionEnded = "session_ended",
    SilentAuthSuccess = "silent_auth_success",
    SilentAuthFailure = "silent_auth_failure",
    ConsentGranted = "consent_granted",
    ConsentDenied = "consent_denied",
    ConsentRevoked = "consent_revoked",
    TokenIssued = "token_issued",
    TokenRefreshed = "token_refreshed",
    TokenRevoked = "token_revoked",
    RefreshReuseDetected = "refresh_reuse_detected",
    CodeReplay = "code_replay",
    VerificationSent = "verification_sent",
    EmailVerified = "email_verified",
    PasswordResetRequested = "password_reset_requested",
    PasswordReset = "password_reset",
    PasswordChanged = "password_changed",
    IdentityLinked = "identity_linked",
    IdentityUnlinked = "identity_unlinked",
    AccessDenied = "access_denied",
    UserImported = "user_imported",
    AdminChange = "admin_change",
    AccountReclaimed = "account_reclaimed",
    EmailReleased = "email_released",
    MfaEnrolled = "mfa_enrolled",
    MfaRemoved = "mfa_removed",
    MfaChallengeSuccess = "mfa_challenge_success",
    MfaChallengeFailure = "mfa_challenge_failure",
    RecoveryCodeUsed = "recovery_code_used",
    PasskeyLogin = "passkey_login",
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// An event. Never holds a password, secret or token: identifiers, the
/// reason for a failure, and small details only.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub outcome: Outcome,
    /// Milliseconds since the epoch, set by `record()`.
    pub at_ms: i64,
    pub user_id: Option<String>,
    /// Normalised (trimmed, lower case): also the address typed in a failed
    /// attempt for an account that does not exist.
    pub email: Option<String>,
    pub client_id: Option<String>,
    /// SHA-256 of the session's `sid` (first 32 hex digits).
    pub sid_hash: Option<String>,
    /// The request's address, user agent and id (shared, not copied).
    pub context: Option<std::sync::Arc<super::Context>>,
    /// How the user proved who they are: `pwd`, or the provider's id.
    pub method: Option<String>,
    /// Why it failed, in snake_case (`wrong_password`, `login_required`, …).
    pub reason: Option<String>,
    /// Who did it when not the user: `cli`, `client:ID`, or `user:ID`.
    pub actor: Option<String>,
    pub details: Option<serde_json::Value>,
}

impl Event {
    /// The row storage writes, borrowing this event's fields.
    pub fn row(&self) -> crate::storage::audit::NewEvent<'_> {
        let ctx = self.context.as_deref();
        crate::storage::audit::NewEvent {
            at_ms: self.at_ms,
            kind: self.kind.as_str(),
            outcome: self.outcome.as_str(),
            user_id: self.user_id.as_deref(),
            email: self.email.as_deref(),
            client_id: self.client_id.as_deref(),
            sid_hash: self.sid_hash.as_deref(),
            ip: ctx.and_then(|c| c.ip.as_deref()),
            user_agent: ctx.and_then(|c| c.user_agent.as_deref()),
            request_id: ctx.and_then(|c| c.request_id.as_deref()),
            method: self.method.as_deref(),
            reason: self.reason.as_deref(),
            actor: self.actor.as_deref(),
            details: self.details.as_ref(),
        }
    }

    /// Takes control characters out of every text field: whatever reached
    /// the event (the request edge refuses them already), what is stored and
    /// logged holds none, so no event can fail its batch or forge a line.
    pub fn clean(&mut self) {
        for f in [
            &mut self.user_id,
            &mut self.email,
            &mut self.client_id,
            &mut self.sid_hash,
            &mut self.method,
            &mut self.reason,
            &mut self.actor,
        ] {
            if let Some(v) = f
                && crate::text::has_control(v)
            {
                *v = crate::text::clean(v);
            }
        }
    }

    pub fn new(kind: Kind) -> Event {
        Event {
            kind,
            outcome: Outcome::Success,
            at_ms: 0,
            user_id: None,
            email: None,
            client_id: None,
            sid_hash: None,
            context: None,
            method: None,
            reason: None,
            actor: None,
            details: None,
        }
    }

    /// A failed attempt and why.
    pub fn failure(kind: Kind, reason: impl Into<String>) -> Event {
        Event { outcome: Outcome::Failure, reason: Some(reason.into()), ..Event::new(kind) }
    }

    pub fn user(mut self, user_id: impl Into<String>) -> Event {
        self.user_id = Some(user_id.into());
        self
    }

    pub fn email(mut self, email: &str) -> Event {
        let e = crate::domain::normalize_email(email);
        self.email = (!e.is_empty()).then_some(e);
        self
    }

    /// The user and, when they have one, their address.
    pub fn account(self, u: &crate::domain::User) -> Event {
        let e = self.user(u.user_id.clone());
        match u.email.as_deref() {
            Some(m) => e.email(m),
            None => e,
        }
    }

    pub fn client(mut self, client_id: impl Into<String>) -> Event {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn sid(mut self, sid: &str) -> Event {
        self.sid_hash = Some(hash_sid(sid));
        self
    }

    pub fn method(mut self, m: impl Into<String>) -> Event {
        self.method = Some(m.into());
        self
    }

    pub fn actor(mut self, a: impl Into<String>) -> Event {
        self.actor = Some(a.into());
        self
    }

    pub fn details(mut self, d: serde_json::Value) -> Event {
        self.details = Some(d);
        self
    }

    /// The event as one JSON log line (target `audit`); replays and reuse
    /// are warnings, so they can be alerted on from the logs alone.
    pub(super) fn log(&self) {
        if !tracing::enabled!(target: "audit", tracing::Level::INFO) {
            return;
        }
        let details = self.details.as_ref().map(|d| d.to_string());
        let ip = self.context.as_ref().and_then(|c| c.ip.as_deref());
        macro_rules! line {
            ($m:ident) => {
                tracing::$m!(
                    target: "audit", event = self.kind.as_str(), outcome = self.outcome.as_str(),
                    user_id = self.user_id.as_deref(), email = self.email.as_deref(),
                    client_id = self.client_id.as_deref(), sid_hash = self.sid_hash.as_deref(),
                    ip, method = self.method.as_deref(), reason = self.reason.as_deref(),
                    actor = self.actor.as_deref(), details = details.as_deref(), "{}", self.kind.as_str()
                )
            };
        }
        if matches!(self.kind, Kind::RefreshReuseDetected | Kind::CodeReplay) { line!(warn) } else { line!(info) }
    }
}

pub fn hash_sid(sid: &str) -> String {
    let h = crate::crypto::random::sha256_hex(sid);
    h.get(..32).unwrap_or(&h).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for k in Kind::ALL {
            assert!(seen.insert(k.as_str()));
            assert!(k.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(Kind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(Kind::ALL.len(), 33);
    }

    #[test]
    fn emails_are_normalised_and_sids_hashed() {
        let e = Event::failure(Kind::LoginFailure, "unknown_user").email("  Bob@Example.COM ").sid("abc");
        assert_eq!(e.email.as_deref(), Some("bob@example.com"));
        assert_ne!(e.sid_hash.as_deref(), Some("abc"));
        assert_eq!(e.sid_hash.as_ref().map(String::len), Some(32));
    }
}
