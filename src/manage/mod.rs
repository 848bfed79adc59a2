//! What an administrator does to users, applications, APIs, roles, groups
//! and signing keys: one implementation of every operation, shared by the
//! management API (`/api/v1`, a client's token) and the admin console
//! (`/admin`, a signed-in user). Each operation checks the permission it
//! needs against the actor (`Admin`) and the ceiling (nobody hands out more
//! of the management API than it holds), so neither caller can forget to.
//! The caller records the `admin_change` event; what an operation does to an
//! account (sessions ended, password changed, factor removed) is recorded
//! here with the actor.

pub mod ceiling;
pub mod clients;
pub mod directory;
pub mod keys;
pub mod users;

use crate::access::AccessError;
use crate::audit::Auditor;
use crate::config::Config;
use crate::crypto::seal::MasterKey;
use crate::domain::Clock;
use crate::emails::Emails;
use crate::logouts::Logouts;
use crate::mfa::Factors;
use crate::storage::{Db, StorageError};

/// Who is acting, and the management API permissions they hold (a client's
/// token, or a user's roles).
#[derive(Debug, Clone)]
pub struct Admin {
    /// `client:ID` or `user:ID`, as audit events name it.
    pub actor: String,
    /// The acting client, when it is one (it never changes its own grants).
    pub client_id: Option<String>,
    pub permissions: Vec<String>,
}

impl Admin {
    pub fn client(client_id: &str, permissions: Vec<String>) -> Admin {
        Admin { actor: format!("client:{client_id}"), client_id: Some(client_id.into()), permissions }
    }

    pub fn user(user_id: &str, permissions: Vec<String>) -> Admin {
        Admin { actor: format!("user:{user_id}"), client_id: None, permissions }
    }

    pub fn may(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// Refuses (403) an operation that needs `permission` the actor lacks.
    pub fn need(&self, permission: &str) -> Result<()> {
        if self.may(permission) {
            return Ok(());
        }
        Err(OpError::Forbidden(format!("this needs the `{permission}` permission, which {} lacks", self.actor)))
    }
}

/// Why an operation was refused; the API renders it as problem+json, the
/// console as a message on the page.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Something on this side failed (the cause is in the message, for the log).
    #[error("{0}")]
    Internal(String),
}

impl From<AccessError> for OpError {
    fn from(e: AccessError) -> OpError {
        match e {
            AccessError::Invalid(m) => OpError::Invalid(m),
            AccessError::NotFound(m) => OpError::NotFound(m),
            AccessError::Storage(s) => OpError::Storage(s),
        }
    }
}

pub type Result<T> = std::result::Result<T, OpError>;

/// The handles the operations use (`AppState::manage`).
pub struct Manage<'a> {
    pub db: &'a Db,
    pub clock: &'a Clock,
    pub audit: &'a Auditor,
    pub emails: &'a Emails,
    pub logouts: &'a Logouts,
    pub factors: Factors<'a>,
    pub master: &'a MasterKey,
    pub config: &'a Config,
    pub issuer: &'a str,
}

impl Manage<'_> {
    /// The built-in management API's audience.
    pub fn management_api(&self) -> String {
        crate::access::management_audience(self.issuer)
    }

    fn https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}
