//! Users: create, change (block, verify, password), delete; their sessions,
//! identities, roles, groups and second factors; the links mailed on their
//! behalf. What takes a way in away (blocking, deleting, a password, a
//! factor, an identity, a role) is refused against a user whose roles carry
//! management permissions beyond the actor's: nobody locks out or strips
//! someone who holds more.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{Admin, Manage, OpError, Result};
use crate::audit::{self, Event, Kind};
use crate::crypto::password;
use crate::domain::{User, validate_email};
use crate::emails::LinkFor;
use crate::storage::email_tokens::Purpose;
use crate::storage::{sessions, users};

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    #[serde(default)]
    pub email_verified: bool,
    pub name: Option<String>,
    /// At least 8 characters; without one the user signs in through a provider.
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub email_verified: Option<bool>,
    /// Disabling ends every session of the user (back-channel logout now).
    pub disabled: Option<bool>,
    /// A new password ends every session of the user.
    pub password: Option<String>,
}

impl Manage<'_> {
    pub async fn find_user(&self, id: &str) -> Result<User> {
        users::find_by_id(self.db, id).await?.ok_or_else(|| OpError::NotFound(format!("no user `{id}`")))
    }

    async fn hash(&self, pw: String) -> Result<String> {
        password::Policy::from_config(&self.config.passwords)
            .check(&pw)
            .map_err(|e| OpError::Invalid(format!("the {e}")))?;
        password::hash(pw).await.map_err(|e| OpError::Invalid(format!("the {e}")))
    }

    pub async fn create_user(&self, who: &Admin, n: NewUser) -> Result<User> {
        who.need("write:users")?;
        validate_email(&n.email).map_err(OpError::Invalid)?;
        let password_hash = match n.password {
            Some(p) => Some(self.hash(p).await?),
            None => None,
        };
        let now = self.clock.now();
        let u = User {
            user_id: uuid::Uuid::new_v4().to_string(),
            email: Some(n.email.trim().to_string()),
            email_verified: n.email_verified,
            name: n.name.filter(|s| !s.trim().is_empty()),
            picture: None,
            password_hash,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        users::insert(self.db, &u).await?;
        Ok(u)
    }

    /// Changes `u` (as read by the caller, who may have compared its ETag).
    pub async fn update_user(&self, who: &Admin, mut u: User, p: UserPatch) -> Result<User> {
        who.need("write:users")?;
        if p.password.is_some() || p.email_verified == Some(true) || p.disabled == Some(true) {
            self.user_within(who, &u.user_id).await?;
        }
        let mut end = false;
        if let Some(n) = p.name {
            u.name = Some(n.trim().to_string()).filter(|s| !s.is_empty());
        }
        if let Some(v) = p.email_verified {
            u.email_verified = v;
        }
        if let Some(d) = p.disabled {
            end |= d && !u.disabled;
            u.disabled = d;
        }
        let new_password = p.password.is_some();
        if let Some(pw) = p.password {
            u.password_hash = Some(self.hash(pw).await?);
            end = true;
        }
        u.updated_at = self.clock.now();
        users::update(self.db, &u).await?;
        if new_password {
            let e = Event::new(Kind::PasswordChanged).account(&u).actor(&who.actor);
            audit::record(self.audit, e);
        }
        if end {
            let why = if new_password { "password_changed" } else { "disabled" };
            self.logouts.end_user_sessions(&u.user_id, false, &who.actor, why).await?;
        }
        Ok(u)
    }

    /// Deletes `u`; their sessions end first (back-channel logout), their
    /// identities, roles and factors go with the row.
    pub async fn delete_user(&self, who: &Admin, u: &User) -> Result<()> {
        who.need("write:users")?;
        self.user_within(who, &u.user_id).await?;
        self.logouts.end_user_sessions(&u.user_id, false, &who.actor, "user_deleted").await?;
        users::delete(self.db, &u.user_id).await?;
        Ok(())
    }

    /// Ends every session of the user; how many ended.
    pub async fn end_sessions(&self, who: &Admin, user_id: &str) -> Result<usize> {
        who.need("write:users")?;
        self.find_user(user_id).await?;
        Ok(self.logouts.end_user_sessions(user_id, false, &who.actor, "admin").await?)
    }

    pub async fn end_session(&self, who: &Admin, user_id: &str, sid: &str) -> Result<()> {
        who.need("write:users")?;
        let s = sessions::list_for_user(self.db, user_id)
            .await?
            .into_iter()
            .find(|s| s.sid == sid)
            .ok_or_else(|| OpError::NotFound(format!("no session `{sid}` for user `{user_id}`")))?;
        Ok(self.logouts.end_one_session(&s, &who.actor, "admin").await?)
    }

    /// Unlinks one identity (refused when it is the user's last way in).
    pub async fn unlink(&self, who: &Admin, u: &User, provider: &str, subject: &str) -> Result<()> {
        who.need("write:users")?;
        self.user_within(who, &u.user_id).await?;
        match crate::accounts::unlink(self.db, u, provider, Some(subject)).await {
            Ok(_) => {
                let e = Event::new(Kind::IdentityUnlinked).account(u).method(provider.to_string());
                audit::record(self.audit, e.actor(&who.actor));
                Ok(())
            }
            Err(crate::accounts::UnlinkError::NotLinked) => Err(OpError::NotFound("no such identity".into())),
            Err(crate::accounts::UnlinkError::LastWayIn) => {
                Err(OpError::Conflict("this is the user's last way to sign in (no password, no other identity)".into()))
            }
            Err(crate::accounts::UnlinkError::Storage(e)) => Err(e.into()),
        }
    }

    pub async fn grant_role(&self, who: &Admin, user_id: &str, role: &str) -> Result<()> {
        who.need("write:roles")?;
        self.find_user(user_id).await?;
        self.role_within(who, role).await?;
        crate::access::user_role(self.db, user_id, role, true).await?;
        Ok(())
    }

    pub async fn revoke_role(&self, who: &Admin, user_id: &str, role: &str) -> Result<()> {
        who.need("write:roles")?;
        self.find_user(user_id).await?;
        self.user_within(who, user_id).await?;
        crate::access::user_role(self.db, user_id, role, false).await?;
        Ok(())
    }

    /// Removes one second factor (and the browsers remembered for it).
    pub async fn remove_factor(&self, who: &Admin, u: &User, factor_id: &str) -> Result<()> {
        who.need("write:users")?;
        self.user_within(who, &u.user_id).await?;
        if !self.factors.remove(u, factor_id, &who.actor).await? {
            return Err(OpError::NotFound(format!("no factor `{factor_id}` for user `{}`", u.user_id)));
        }
        Ok(())
    }

    /// Mails the user a password-reset link (whoever follows it chooses the
    /// password; it ends the user's sessions).
    pub async fn send_reset_link(&self, who: &Admin, u: &User) -> Result<()> {
        who.need("write:users")?;
        let to = u.email.clone().ok_or_else(|| OpError::Conflict("the user has no email address".into()))?;
        if u.disabled {
            return Err(OpError::Conflict("the user is blocked; unblock them first".into()));
        }
        Ok(self.emails.send_link(u, LinkFor::verify(Purpose::Reset, &to, None)).await?)
    }

    /// Mails a new verification link to an address not verified yet (it only
    /// verifies; it never carries a password).
    pub async fn resend_verification(&self, who: &Admin, u: &User) -> Result<()> {
        who.need("write:users")?;
        let to = u.email.clone().ok_or_else(|| OpError::Conflict("the user has no email address".into()))?;
        if u.email_verified {
            return Err(OpError::Conflict("the address is verified already".into()));
        }
        Ok(self.emails.send_link(u, LinkFor::verify(Purpose::Verify, &to, None)).await?)
    }
}
