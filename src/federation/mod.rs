//! Federation: Sesame as the relying party of upstream identity providers
//! (any OpenID Connect issuer, Google, Microsoft, GitLab, Apple; GitHub,
//! Facebook, Spotify, Discord and X over OAuth 2.0 plus a profile call).
//!
//! A round trip starts from a pending authorization (`start`), comes back to
//! `{issuer}/federation/{id}/callback`, and ends by handing the pending
//! authorization a user (`pending::identified`), as the password form does.
//! Depends on the pending seam, storage and crypto; never on the protocol
//! endpoints or the pages.

mod apple;
mod claims;
mod flow;
mod linking;
pub mod presets;
mod provider;
mod upstream;

pub mod registry;
pub mod routes;

pub use provider::Provider;
pub use registry::Registry;

use crate::issuer::Issuer;

/// Where the browser goes to sign in with provider `id` for pending request `req`.
pub fn start_url(issuer: &Issuer, id: &str, req: &str) -> String {
    format!("{}/federation/{id}/start?req={req}", issuer.path_prefix())
}

/// What the user is told on the login box when a round trip did not end in a
/// sign-in. The code travels in the login box's URL; the words stay here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The user cancelled at the provider.
    Cancelled,
    /// The provider answered with an error.
    Refused,
    /// The provider could not be reached in time.
    Unreachable,
    /// The provider's answer failed validation (token, signature, profile).
    Invalid,
    /// The round trip took too long.
    Expired,
    /// The round trip's answer was already used.
    Replayed,
    /// The account's domain or tenant may not sign in here.
    NotAllowed,
    /// No account, and this provider may not create one.
    NoAccount,
    Disabled,
    /// The provider gave no usable account id.
    NoSubject,
}

impl Problem {
    const ALL: [Problem; 10] = [
        Problem::Cancelled,
        Problem::Refused,
        Problem::Unreachable,
        Problem::Invalid,
        Problem::Expired,
        Problem::Replayed,
        Problem::NotAllowed,
        Problem::NoAccount,
        Problem::Disabled,
        Problem::NoSubject,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Problem::Cancelled => "cancelled",
            Problem::Refused => "refused",
            Problem::Unreachable => "unreachable",
            Problem::Invalid => "invalid",
            Problem::Expired => "expired",
            Problem::Replayed => "replayed",
            Problem::NotAllowed => "not_allowed",
            Problem::NoAccount => "no_account",
            Problem::Disabled => "disabled",
            Problem::NoSubject => "no_subject",
        }
    }

    pub fn from_code(c: &str) -> Option<Problem> {
        Problem::ALL.into_iter().find(|p| p.code() == c)
    }

    /// Plain words, with the provider's name.
    pub fn message(self, provider: &str) -> String {
        match self {
            Problem::Cancelled => {
                format!("Signing in with {provider} was cancelled. Try again, or choose another way.")
            }
            Problem::Refused => format!("{provider} did not sign you in. Try again, or choose another way."),
            Problem::Unreachable => format!("{provider} did not answer in time. Try again in a moment."),
            Problem::Invalid => format!("{provider} sent an answer that could not be verified. Try again."),
            Problem::Expired => format!("Signing in with {provider} took too long. Try again."),
            Problem::Replayed => format!("That answer from {provider} was already used. Try again."),
            Problem::NotAllowed => format!("This {provider} account may not sign in here."),
            Problem::NoAccount => format!("There is no account here for this {provider} login."),
            Problem::Disabled => "This account is disabled.".into(),
            Problem::NoSubject => format!("{provider} did not say which account signed in. Try again."),
        }
    }
}

/// Why a round trip failed: the user's words, and the reason for the log.
#[derive(Debug)]
pub struct Failed {
    pub problem: Problem,
    pub reason: String,
}

impl Failed {
    pub fn new(problem: Problem, reason: impl Into<String>) -> Failed {
        Failed { problem, reason: reason.into() }
    }
}
