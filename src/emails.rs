//! The mails Sesame sends on its own and the links in them: one place that
//! makes a link (its token hashed in `email_tokens`, replacing the account's
//! earlier one), writes the message, hands it to the mailer and records the
//! audit event. Used by the login box, the self-service pages and the CLI.

use crate::audit::{self, Auditor, Event, Kind};
use crate::config::Config;
use crate::crypto::random;
use crate::domain::{Clock, User};
use crate::issuer::Issuer;
use crate::mail::{Mail, Mailer};
use crate::storage::email_tokens::{self, EmailToken, Purpose};
use crate::storage::{Db, StorageError};

pub const VERIFY_EMAIL: &str = "/verify-email";
pub const RESET_PASSWORD: &str = "/reset-password";
/// What the notice says when every factor was removed.
pub const ALL_FACTORS_REMOVED: &str = "Every second factor and recovery code was removed from your account.";

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

/// The handles the mails need, built once (`AppState::emails`).
#[derive(Clone)]
pub struct Emails {
    db: Db,
    clock: Clock,
    mailer: Mailer,
    audit: Auditor,
    /// The issuer without a trailing slash, where links point.
    base: String,
    product: String,
    reset_ttl_secs: u64,
    verify_ttl_secs: u64,
}

impl Emails {
    pub fn new(config: &Config, issuer: &Issuer, db: &Db, clock: &Clock, mailer: &Mailer, audit: &Auditor) -> Emails {
        Emails {
            db: db.clone(),
            clock: clock.clone(),
            mailer: mailer.clone(),
            audit: audit.clone(),
            base: issuer.as_str().trim_end_matches('/').to_string(),
            product: config.login.product_name.clone(),
            reset_ttl_secs: config.login.reset_password_ttl_secs,
            verify_ttl_secs: config.login.verify_email_ttl_secs,
        }
    }

    /// Makes a link for `user`, mails it and records `verification_sent` or
    /// `password_reset_requested`.
    pub async fn send_link(&self, user: &User, link: LinkFor<'_>) -> Result<(), StorageError> {
        let token = random::token(32);
        let now = self.clock.now();
        let ttl = match link.purpose {
            Purpose::Reset => self.reset_ttl_secs,
            _ => self.verify_ttl_secs,
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
        email_tokens::replace(&self.db, &row).await?;
        let product = &self.product;
        let hours = ttl.div_ceil(3600);
        let (path, kind) = match link.purpose {
            Purpose::Reset => (RESET_PASSWORD, Kind::PasswordResetRequested),
            _ => (VERIFY_EMAIL, Kind::VerificationSent),
        };
        let url = format!("{}{path}?token={token}", self.base);
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
        self.mailer.send(Mail { to: link.email.to_string(), subject, body });
        let e = Event::new(kind).user(user.user_id.clone()).email(link.email);
        audit::record(&self.audit, e.details(serde_json::json!({ "purpose": link.purpose.as_str() })));
        Ok(())
    }

    /// Tells an account's owner that somebody tried to sign up with their address.
    pub fn signup_attempt_notice(&self, email: &str) {
        let product = &self.product;
        let reset = format!("{}/forgot-password", self.base);
        self.mailer.send(Mail {
        to: email.to_string(),
        subject: format!("Someone tried to sign up to {product} with your address"),
        body: format!(
            "Someone (perhaps you) tried to create a {product} account with this address, which already has one. Nothing was changed.\n\nIf you forgot your password, you can reset it here:\n\n{reset}\n"
        ),
    });
    }

    /// Tells the owner that their password was changed (reset, account page, admin).
    pub fn password_changed_notice(&self, email: &str) {
        let product = &self.product;
        self.mailer.send(Mail {
        to: email.to_string(),
        subject: format!("Your {product} password was changed"),
        body: format!(
            "The password of your {product} account was just changed, and every session was signed out.\n\nIf this was not you, reset your password at once and tell your administrator."
        ),
    });
    }

    /// Tells the old address that the account now signs in with another one.
    pub fn email_changed_notice(&self, old: &str, new: &str) {
        let product = &self.product;
        self.mailer.send(Mail {
        to: old.to_string(),
        subject: format!("Your {product} sign-in address was changed"),
        body: format!(
            "The {product} account that used this address now signs in with {new}, and links mailed here before no longer work.\n\nIf this was not you, tell your administrator at once."
        ),
    });
    }

    /// Tells the owner that a second factor was added or removed, or the
    /// recovery codes replaced (`what`, in words).
    pub fn factor_changed_notice(&self, email: &str, what: &str) {
        self.mailer.send(self.factor_changed_mail(email, what));
    }

    /// The mail `factor_changed_notice` sends (the CLI delivers it and waits).
    pub fn factor_changed_mail(&self, email: &str, what: &str) -> Mail {
        let product = &self.product;
        Mail {
            to: email.to_string(),
            subject: format!("Your {product} sign-in methods changed"),
            body: format!(
                "{what}\n\nIf this was not you, sign in, check the second factors on your account page, and tell your administrator."
            ),
        }
    }

    /// Tells the owner that a recovery code was used to sign in.
    pub fn recovery_code_notice(&self, email: &str, left: i64) {
        let product = &self.product;
        self.mailer.send(Mail {
            to: email.to_string(),
            subject: format!("A recovery code was used to sign in to {product}"),
            body: format!(
                "Someone (perhaps you) just signed in to your {product} account with one of your recovery codes. {left} unused code(s) remain; you can make new ones on your account page.\n\nIf this was not you, change your password and tell your administrator at once."
            ),
        });
    }

    /// Tells the owner of a proven address what was removed from the account
    /// that held it without proof (`proof::reclaim`).
    pub fn reclaimed_notice(&self, email: &str, list: &str) {
        let product = &self.product;
        self.mailer.send(Mail {
        to: email.to_string(),
        subject: format!("Your {product} account was secured"),
        body: format!(
            "You just proved that this address is yours. Until then it was on a {product} account without proof, so we removed from that account everything that was added before your proof:\n\n{list}\n\nIf one of these was yours, sign in and add it again from your account page."
        ),
    });
    }
}
