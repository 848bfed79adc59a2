//! Which Sesame user an upstream identity is. `decide` is the rule, a plain
//! function over what storage found; `resolve` looks those up and carries the
//! decision out.
//!
//! - A known (provider, subject) is its user, whatever the upstream's email
//!   says today; the profile is refreshed, and an email change is applied only
//!   when the upstream verified it and no other account holds the address.
//! - A new identity whose *verified* email belongs to an account that
//!   verified it too is never merged silently: the user proves the account
//!   first (`ProveOwnership`).
//! - A *verified* email that an account holds only unverified is a proof of
//!   the mailbox that account never gave: the account is reclaimed for the
//!   prover (`Reclaim`, see `proof`) and the identity linked to it.
//! - Otherwise a new user, if the provider may create users; an unverified
//!   email already held by an account is left off the new one. An unverified
//!   email never links, merges or takes anything.

use super::claims::Upstream;
use super::provider::Provider;
use super::{Failed, Problem};
use crate::domain::{User, normalize_email};
use crate::state::AppState;
use crate::storage::identities::{self, Identity};
use crate::storage::{StorageError, users};

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// A returning identity; `user` carries the refreshed profile.
    Returning {
        user: User,
        changed: bool,
        /// The account that held the new verified address unverified, which
        /// loses it.
        release_from: Option<String>,
    },
    /// A first login: this user and identity are created together.
    Create(User),
    /// The verified email is `existing`'s: sign in to it once to link.
    ProveOwnership {
        existing: User,
    },
    /// The verified email is on `existing` unverified: reclaim it, then link.
    Reclaim {
        existing: User,
    },
    Refuse(Problem),
}

/// What storage knows about this identity.
pub struct Found {
    /// The user the identity is linked to.
    pub linked: Option<User>,
    /// The user holding the upstream's email address.
    pub email_owner: Option<User>,
}

pub fn decide(create_users: bool, up: &Upstream, found: Found, new_id: String, now: i64) -> Decision {
    if let Some(mut user) = found.linked {
        if user.disabled {
            return Decision::Refuse(Problem::Disabled);
        }
        let before = user.clone();
        if up.name.is_some() {
            user.name = up.name.clone();
        }
        if up.picture.is_some() {
            user.picture = up.picture.clone();
        }
        let other = found.email_owner.as_ref().filter(|o| o.user_id != user.user_id);
        let mut release_from = None;
        if let Some(e) = &up.email
            && up.email_verified
            && other.is_none_or(|o| !o.email_verified)
        {
            let same = user.email.as_deref().map(normalize_email) == Some(normalize_email(e));
            if !same || !user.email_verified {
                user.email = Some(e.clone());
                user.email_verified = true;
                release_from = other.map(|o| o.user_id.clone());
            }
        }
        let changed = user != before;
        if changed {
            user.updated_at = now;
        }
        return Decision::Returning { user, changed, release_from };
    }
    if let (Some(owner), true) = (&found.email_owner, up.email_verified) {
        if owner.disabled {
            return Decision::Refuse(Problem::Disabled);
        }
        if !owner.email_verified {
            return Decision::Reclaim { existing: owner.clone() };
        }
        return Decision::ProveOwnership { existing: owner.clone() };
    }
    if !create_users {
        return Decision::Refuse(Problem::NoAccount);
    }
    // An address someone else holds is not taken onto the new account.
    let email = if found.email_owner.is_some() { None } else { up.email.clone() };
    Decision::Create(User {
        user_id: new_id,
        email_verified: email.is_some() && up.email_verified,
        email,
        name: up.name.clone(),
        picture: up.picture.clone(),
        password_hash: None,
        disabled: false,
        created_at: now,
        updated_at: now,
    })
}

/// The identity row for `user_id`.
pub fn identity(p: &Provider, up: &Upstream, user_id: &str, now: i64) -> Identity {
    Identity {
        provider: p.id().to_string(),
        subject: up.subject.clone(),
        user_id: user_id.to_string(),
        email: up.email.clone(),
        email_verified: up.email_verified,
        profile: up.profile_json(),
        created_at: now,
        last_login_at: now,
    }
}

/// What the callback does next.
pub enum Resolved {
    SignedIn(User),
    /// A first login made a new account.
    Created(User),
    ProveOwnership {
        existing: User,
        identity: Identity,
    },
    /// `existing` held the verified address unverified: the caller reclaims
    /// it (`proof::reclaim`), then links `identity` and signs in.
    Reclaim {
        existing: User,
        identity: Identity,
    },
}

pub async fn resolve(state: &AppState, p: &Provider, up: &Upstream, now: i64) -> Result<Resolved, ResolveError> {
    let db = &state.db;
    let known = identities::find(db, p.id(), &up.subject).await?;
    let linked = match &known {
        Some(i) => users::find_by_id(db, &i.user_id).await?,
        None => None,
    };
    let email_owner = match &up.email {
        Some(e) => users::find_by_email(db, e).await?,
        None => None,
    };
    let new_id = uuid::Uuid::new_v4().to_string();
    match decide(p.cfg.create_users, up, Found { linked, email_owner }, new_id, now) {
        Decision::Returning { user, changed, release_from } => {
            if let (Some(_), Some(e)) = (release_from, &user.email) {
                crate::proof::release(&state.prover(), e, &user.user_id).await?;
            }
            if changed {
                users::update(db, &user).await?;
            }
            identities::touch(db, &identity(p, up, &user.user_id, now)).await?;
            Ok(Resolved::SignedIn(user))
        }
        Decision::Create(user) => {
            identities::create_user_with(db, &user, &identity(p, up, &user.user_id, now)).await?;
            Ok(Resolved::Created(user))
        }
        Decision::ProveOwnership { existing } => {
            let identity = identity(p, up, &existing.user_id, now);
            Ok(Resolved::ProveOwnership { existing, identity })
        }
        Decision::Reclaim { existing } => {
            let identity = identity(p, up, &existing.user_id, now);
            Ok(Resolved::Reclaim { existing, identity })
        }
        Decision::Refuse(problem) => Err(ResolveError::Refused(Failed::new(problem, "refused by the account rules"))),
    }
}

#[derive(Debug)]
pub enum ResolveError {
    Refused(Failed),
    Storage(StorageError),
}

impl From<StorageError> for ResolveError {
    fn from(e: StorageError) -> Self {
        ResolveError::Storage(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(email: Option<&str>, verified: bool) -> Upstream {
        Upstream {
            subject: "s1".into(),
            email: email.map(str::to_string),
            email_verified: verified,
            name: Some("New Name".into()),
            picture: None,
            amr: vec![],
            auth_time: None,
            hd: None,
            tid: None,
        }
    }

    fn user(id: &str, email: Option<&str>) -> User {
        User {
            user_id: id.into(),
            email: email.map(str::to_string),
            email_verified: true,
            name: Some("Old".into()),
            picture: None,
            password_hash: None,
            disabled: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn verified_email_of_an_account_asks_for_proof() {
        let f = Found { linked: None, email_owner: Some(user("u1", Some("a@x.com"))) };
        let d = decide(true, &up(Some("a@x.com"), true), f, "new".into(), 5);
        assert!(matches!(d, Decision::ProveOwnership { existing } if existing.user_id == "u1"));
    }

    #[test]
    fn verified_email_held_unverified_reclaims_the_account() {
        let mut claimant = user("u1", Some("a@x.com"));
        claimant.email_verified = false;
        let f = Found { linked: None, email_owner: Some(claimant) };
        let d = decide(false, &up(Some("a@x.com"), true), f, "new".into(), 5);
        assert!(matches!(d, Decision::Reclaim { existing } if existing.user_id == "u1"));
    }

    #[test]
    fn unverified_email_never_reaches_an_unverified_holder() {
        let mut claimant = user("u1", Some("a@x.com"));
        claimant.email_verified = false;
        let f = Found { linked: None, email_owner: Some(claimant) };
        let Decision::Create(u) = decide(true, &up(Some("a@x.com"), false), f, "new".into(), 5) else { panic!() };
        assert_eq!(u.email, None);
    }

    #[test]
    fn unverified_email_of_an_account_is_left_off_the_new_user() {
        let f = Found { linked: None, email_owner: Some(user("u1", Some("a@x.com"))) };
        let Decision::Create(u) = decide(true, &up(Some("a@x.com"), false), f, "new".into(), 5) else { panic!() };
        assert_eq!(u.email, None);
        assert!(!u.email_verified);
    }

    #[test]
    fn returning_user_keeps_the_account_and_takes_only_verified_free_addresses() {
        let linked = user("u1", Some("old@x.com"));
        let f = Found { linked: Some(linked.clone()), email_owner: Some(user("u2", Some("new@x.com"))) };
        let Decision::Returning { user: u, .. } = decide(true, &up(Some("new@x.com"), true), f, "n".into(), 5) else {
            panic!()
        };
        assert_eq!(u.email.as_deref(), Some("old@x.com"), "held verified by another account");
        let mut claimant = user("u2", Some("new@x.com"));
        claimant.email_verified = false;
        let f = Found { linked: Some(linked.clone()), email_owner: Some(claimant) };
        let Decision::Returning { user: u, release_from, .. } =
            decide(true, &up(Some("new@x.com"), true), f, "n".into(), 5)
        else {
            panic!()
        };
        assert_eq!(u.email.as_deref(), Some("new@x.com"), "an unverified claim gives way to a verified address");
        assert_eq!(release_from.as_deref(), Some("u2"));
        assert_eq!(u.name.as_deref(), Some("New Name"));
        let f = Found { linked: Some(linked.clone()), email_owner: None };
        let Decision::Returning { user: u, .. } = decide(true, &up(Some("new@x.com"), false), f, "n".into(), 5) else {
            panic!()
        };
        assert_eq!(u.email.as_deref(), Some("old@x.com"), "unverified change");
        let f = Found { linked: Some(linked), email_owner: None };
        let Decision::Returning { user: u, .. } = decide(true, &up(Some("new@x.com"), true), f, "n".into(), 5) else {
            panic!()
        };
        assert_eq!(u.email.as_deref(), Some("new@x.com"));
    }

    #[test]
    fn no_account_without_create_users() {
        let f = Found { linked: None, email_owner: None };
        assert_eq!(decide(false, &up(None, false), f, "n".into(), 5), Decision::Refuse(Problem::NoAccount));
    }
}
