//! Emailed links (sign-up, verification, email change, password reset): the
//! SHA-256 of each link's token, one live link per account and purpose, and
//! spent by deleting it.

use sqlx::Row;

use super::{Db, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Finishes a sign-up: verifies the address and sets the chosen password.
    Signup,
    Verify,
    /// Moves the account to `email` once it is verified there.
    ChangeEmail,
    Reset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Signup => "signup",
            Purpose::Verify => "verify",
            Purpose::ChangeEmail => "change_email",
            Purpose::Reset => "reset",
        }
    }

    fn parse(s: &str) -> Option<Purpose> {
        [Purpose::Signup, Purpose::Verify, Purpose::ChangeEmail, Purpose::Reset].into_iter().find(|p| p.as_str() == s)
    }

    /// The purposes that verify an address (one live link among them).
    fn family(self) -> &'static [&'static str] {
        match self {
            Purpose::Signup | Purpose::Verify => &["signup", "verify"],
            Purpose::ChangeEmail => &["change_email"],
            Purpose::Reset => &["reset"],
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmailToken {
    pub token_hash: String,
    pub user_id: String,
    pub purpose: Purpose,
    pub email: String,
    pub password_hash: Option<String>,
    /// Sign-up: the name typed with it, set when the link is followed.
    pub name: Option<String>,
    pub request_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Stores `t`, replacing the account's earlier link of the same kind.
pub async fn replace(db: &Db, t: &EmailToken) -> Result<()> {
    let mut tx = db.begin().await?;
    let family = t.purpose.family();
    sqlx::query("DELETE FROM email_tokens WHERE user_id = $1 AND (purpose = $2 OR purpose = $3)")
        .bind(&t.user_id)
        .bind(family[0])
        .bind(family.get(1).copied().unwrap_or(family[0]))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, password_hash, name, request_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&t.token_hash)
    .bind(&t.user_id)
    .bind(t.purpose.as_str())
    .bind(&t.email)
    .bind(&t.password_hash)
    .bind(&t.name)
    .bind(&t.request_id)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(&mut *tx)
    .await?;
    super::commit(tx).await?;
    Ok(())
}

/// The live link with this hash, without spending it (the page that asks
/// the user to confirm).
pub async fn peek(db: &Db, token_hash: &str, now: i64) -> Result<Option<EmailToken>> {
    let row = sqlx::query(
        "SELECT token_hash, user_id, purpose, email, password_hash, name, request_id, created_at, expires_at
         FROM email_tokens WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose().map(Option::flatten)
}

/// Spends the link: deleted whatever happens next, returned only when it
/// was still live. Two clicks at once: one gets it.
pub async fn take(db: &Db, token_hash: &str, now: i64) -> Result<Option<EmailToken>> {
    let row = sqlx::query(
        "DELETE FROM email_tokens WHERE token_hash = $1
         RETURNING token_hash, user_id, purpose, email, password_hash, name, request_id, created_at, expires_at",
    )
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?.flatten().filter(|t| t.expires_at > now))
}

/// The account's live sign-up link, if any (to resend it with its password).
pub async fn find_for_user(db: &Db, user_id: &str, purpose: Purpose, now: i64) -> Result<Option<EmailToken>> {
    let row = sqlx::query(
        "SELECT token_hash, user_id, purpose, email, password_hash, name, request_id, created_at, expires_at
         FROM email_tokens WHERE user_id = $1 AND purpose = $2 AND expires_at > $3",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose().map(Option::flatten)
}

/// Forgets every link of the account (after a password reset, an address
/// change or a reclaim); how many there were.
pub async fn delete_for_user(db: &Db, user_id: &str) -> Result<u64> {
    let res = sqlx::query("DELETE FROM email_tokens WHERE user_id = $1").bind(user_id).execute(db.pool()).await?;
    Ok(res.rows_affected())
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Option<EmailToken>> {
    let purpose: String = r.try_get("purpose")?;
    let Some(purpose) = Purpose::parse(&purpose) else { return Ok(None) };
    Ok(Some(EmailToken {
        token_hash: r.try_get("token_hash")?,
        user_id: r.try_get("user_id")?,
        purpose,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        name: r.try_get("name")?,
        request_id: r.try_get("request_id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    }))
}
