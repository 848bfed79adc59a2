//! The audit log, outgoing mail and the password policy.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, err};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Where the audit log is kept. Empty: with SQLite, a file of its own
    /// beside the main database (`sesame-audit.db` next to `sesame.db`), so
    /// audit writes never wait for the main database's one writer; with
    /// Postgres, the main database.
    pub database_url: String,
    /// Events older than this are deleted, in small batches (days).
    pub retention_days: u64,
    /// Each event is also one log line (target `audit`).
    pub log_lines: bool,
    /// Events waiting to be written, per replica; past it they are counted as
    /// dropped (and a warning says how many), never waited for.
    pub queue_size: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { database_url: String::new(), retention_days: 90, log_lines: true, queue_size: 10_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: a relay on localhost or a test sink only.
    None,
}

/// Outgoing mail. Without `host`, mails are written to the log (target
/// `mail`), links included, so a fresh install works without a mail server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: Secret,
    /// A file holding the password (container secrets); used when `password` is empty.
    pub password_file: String,
    /// The sender, e.g. `Sesame <no-reply@example.com>`.
    pub from: String,
    /// Give up on one delivery after this long (seconds).
    pub timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: Secret::default(),
            password_file: String::new(),
            from: "Sesame <no-reply@localhost>".into(),
            timeout_secs: 10,
        }
    }
}

impl SmtpConfig {
    /// The password, read from its file when given there.
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        if !self.password.is_empty() {
            return Ok(Some(self.password.expose().to_string()));
        }
        if self.password_file.is_empty() {
            return Ok(None);
        }
        std::fs::read_to_string(&self.password_file)
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| err(format!("smtp.password_file: cannot read {}: {e}", self.password_file)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordsConfig {
    /// Shortest password accepted at sign-up, reset and change (characters).
    pub min_length: usize,
    /// Refuse the 10,000 most common passwords (a list shipped with Sesame).
    pub reject_common: bool,
}

impl Default for PasswordsConfig {
    fn default() -> Self {
        PasswordsConfig { min_length: 8, reject_common: true }
    }
}

pub(super) fn validate(audit: &AuditConfig, smtp: &SmtpConfig, passwords: &PasswordsConfig) -> Result<(), ConfigError> {
    if audit.queue_size == 0 {
        return Err(err("audit.queue_size (SESAME_AUDIT__QUEUE_SIZE) must be at least 1"));
    }
    let u = &audit.database_url;
    if !(u.is_empty() || u.starts_with("sqlite:") || u.starts_with("postgres://") || u.starts_with("postgresql://")) {
        return Err(err("audit.database_url (SESAME_AUDIT__DATABASE_URL) is neither sqlite:… nor postgres://…"));
    }
    if !smtp.host.is_empty() {
        smtp.from.parse::<lettre::message::Mailbox>().map_err(|e| {
            err(format!(
                "smtp.from (SESAME_SMTP__FROM): `{}` is not an address like `Name <a@b.example>`: {e}",
                smtp.from
            ))
        })?;
        smtp.password()?;
    }
    if smtp.timeout_secs == 0 {
        return Err(err("smtp.timeout_secs (SESAME_SMTP__TIMEOUT_SECS) must be positive"));
    }
    if passwords.min_length == 0 || passwords.min_length > 128 {
        return Err(err("passwords.min_length (SESAME_PASSWORDS__MIN_LENGTH) must be between 1 and 128"));
    }
    Ok(())
}
