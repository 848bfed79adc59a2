//! The mails Sesame sends on its own and the links in them: one place that
//! makes a link (its token hashed in `email_tokens`, replacing the account's
//! earlier one), writes the message, hands it to the mailer and records the
//! audit event. Used by the login box, the self-service pages and the CLI.

use crate::app::AppState;
use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::domain::User;
use crate::mail::Mail;
use crate::storage::StorageError;
use crate::storage::email_tokens::{self, EmailToken, Purpose};

pub const VERIFY_EMAIL: &str = "/verify-email";
pub const RESET_PASSWORD: &str = "/reset-password";

/// What a new link is for, and what it carries.
pub struct LinkFor<'a> {
    pub purpose: Purpose,
    /// The address the mail goes to (the new one for an email change).
    pub email: &'a str,
    /// Sign-up: the chosen password, set when the link is followed in the
    /// browser that signed up.
    pub password_hash: Option<String>,
    /// Sign-up: the name typed with it.
    pub name: Option<String>,
    /// The pending authorization to continue afterwards.
    pub request_id: Option<String>,
}

impl<'a> LinkFor<'a> {
    /// A link that carries nothing but where to continue.
    pub fn verify(purpose: Purpose, email: &'a str, request_id: Option<String>) -> LinkFor<'a> {
        LinkFor { purpose, email, password_hash: None, name: None, request_id }
    }
}

/// Makes a link for `user`, mails it and records `verification_sent` or
/// `password_reset_requested`.
pub async fn send_link(state: &AppState, user: &User, link: LinkFor<'_>) -> Result<(), StorageError> {
    let token = random::token(32);
    let now = state.clock.now();
    let ttl = match link.purpose {
        Purpose::Reset => state.config.login.reset_password_ttl_secs,
        _ => state.config.login.verify_email_ttl_secs,
    };
    let row = EmailToken {
        token_hash: random::sha256_hex(&token),
        user_id: user.user_id.clone(),
        purpose: link.purpose,
        email: link.email.to_string(),
        password_hash: link.password_hash,
        name: link.name,
        request_id: link.request_id,
        created_at: now,
        expires_at: now + ttl as i64,
    };
    email_tokens::replace(&state.db, &row).await?;
    let product = &state.config.login.product_name;
    let hours = ttl.div_ceil(3600);
    let (path, kind) = match link.purpose {
        Purpose::Reset => (RESET_PASSWORD, Kind::PasswordResetRequested),
        _ => (VERIFY_EMAIL, Kind::VerificationSent),
    };
    let url = format!("{}{path}?token={token}", state.issuer.as_str().trim_end_matches('/'));
    let (subject, body) = match link.purpose {
        Purpose::Signup => (
            format!("Finish signing up to {product}"),
            format!(
                "Follow this link to verify your email address and finish creating your {product} account:\n\n{url}\n\nThe link works once, for {hours} hour(s). If you did not sign up, ignore this mail."
            ),
        ),
        Purpose::Verify => (
            format!("Verify your email address for {product}"),
            format!(
                "Follow this link to verify your email address:\n\n{url}\n\nThe link works once, for {hours} hour(s)."
            ),
        ),
        Purpose::ChangeEmail => (
            format!("Confirm your new email address for {product}"),
            format!(
                "Follow this link to make this address the one you sign in to {product} with:\n\n{url}\n\nThe link works once, for {hours} hour(s). If you did not ask for this, ignore this mail."
            ),
        ),
        Purpose::Reset => (
            format!("Reset your {product} password"),
            format!(
                "Follow this link to choose a new password:\n\n{url}\n\nThe link works once, for {hours} hour(s). Resetting your password signs you out everywhere. If you did not ask for this, ignore this mail: your password stays as it is."
            ),
        ),
    };
    state.mailer.send(Mail { to: link.email.to_string(), subject, body });
    let e = Event::new(kind).user(user.user_id.clone()).email(link.email);
    audit::record(&state.audit, e.details(serde_json::json!({ "purpose": link.purpose.as_str() })));
    Ok(())
}

/// Tells an account's owner that somebody tried to sign up with their address.
pub fn signup_attempt_notice(state: &AppState, email: &str) {
    let product = &state.config.login.product_name;
    let reset = format!("{}/forgot-password", state.issuer.as_str().trim_end_matches('/'));
    state.mailer.send(Mail {
        to: email.to_string(),
        subject: format!("Someone tried to sign up to {product} with your address"),
        body: format!(
            "Someone (perhaps you) tried to create a {product} account with this address, which already has one. Nothing was changed.\n\nIf you forgot your password, you can reset it here:\n\n{reset}\n"
        ),
    });
}

/// Tells the owner that their password was changed (reset, account page, admin).
pub fn password_changed_notice(state: &AppState, email: &str) {
    let product = &state.config.login.product_name;
    state.mailer.send(Mail {
        to: email.to_string(),
        subject: format!("Your {product} password was changed"),
        body: format!(
            "The password of your {product} account was just changed, and every session was signed out.\n\nIf this was not you, reset your password at once and tell your administrator."
        ),
    });
}

/// Tells the old address that the account now signs in with another one.
pub fn email_changed_notice(state: &AppState, old: &str, new: &str) {
    let product = &state.config.login.product_name;
    state.mailer.send(Mail {
        to: old.to_string(),
        subject: format!("Your {product} sign-in address was changed"),
        body: format!(
            "The {product} account that used this address now signs in with {new}, and links mailed here before no longer work.\n\nIf this was not you, tell your administrator at once."
        ),
    });
}
