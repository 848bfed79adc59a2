//! What proving a mailbox does to the accounts that claimed its address.
//!
//! An unverified address on an account is a claim, not a possession: it was
//! typed at sign-up, sent unverified by a provider, read from an import file
//! or set by an administrator, and nobody has shown they read its mail. The
//! first proof of the mailbox (a verification, sign-up or reset link
//! followed, or a provider that verified the address) decides, and nothing
//! the claim brought along survives it:
//!
//! - [`reclaim`]: the proof lands on the account that holds the address
//!   unverified. Everything on it that the proof does not vouch for goes —
//!   linked identities, the password, every session and refresh token
//!   (offline ones too), consents and other outstanding links, and the name
//!   and picture they brought — and the owner is mailed a list of what went.
//!   The caller then installs what the prover chose (a password, an identity).
//! - [`release`]: another account proved the address: the claimant loses it
//!   and keeps its own ways in; an unfinished sign-up holding it is deleted.

use crate::audit::{self, Auditor, Event, Kind};
use crate::domain::{Clock, User, normalize_email};
use crate::emails::Emails;
use crate::federation::Registry;
use crate::logouts::Logouts;
use crate::storage::{Db, StorageError, consents, email_tokens, factors, identities, users};

/// The handles a proof touches (`AppState::prover`).
pub struct Prover<'a> {
    pub db: &'a Db,
    pub clock: &'a Clock,
    pub audit: &'a Auditor,
    pub emails: &'a Emails,
    pub logouts: &'a Logouts,
    /// For the names of the providers whose identities a reclaim unlinks.
    pub providers: &'a Registry,
}

/// What a reclaim took off an account.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// `provider: upstream email or subject` of each identity unlinked.
    pub identities: Vec<String>,
    pub password: bool,
    /// Second factors (authenticator apps, passkeys) and recovery codes.
    pub factors: usize,
    pub sessions: usize,
    pub consents: u64,
    pub links: u64,
}

impl Removed {
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && !self.password && self.factors == 0 && self.sessions == 0 && self.consents == 0
    }

    fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in &self.identities {
            out.push(format!("- the sign-in through {i}"));
        }
        if self.password {
            out.push("- a password set before your address was verified".into());
        }
        if self.factors > 0 {
            out.push(format!(
                "- {} second factor(s) (authenticator apps, passkeys) and their recovery codes",
                self.factors
            ));
        }
        if self.sessions > 0 {
            out.push(format!("- {} signed-in session(s) and their tokens", self.sessions));
        }
        if self.consents > 0 {
            out.push(format!("- {} application consent(s)", self.consents));
        }
        out
    }
}

/// `user` held `email` unverified and its owner just proved the mailbox
/// (`how`: `signup`, `verify`, `reset`, or a provider id). Strips the
/// account (see the module) in storage and in `user` — the password is gone
/// from the row before any session is ended — then the caller sets the
/// verified address and what the prover chose, and saves `user` again. A
/// no-op for an account whose address was already verified.
pub async fn reclaim(state: &Prover<'_>, user: &mut User, email: &str, how: &str) -> Result<Removed, StorageError> {
    let mut removed = Removed::default();
    if user.email_verified && user.email.as_deref().map(normalize_email) == Some(normalize_email(email)) {
        return Ok(removed);
    }
    let actor = format!("user:{}", user.user_id);
    // The row first: from here no sign-in with the old password can start
    // a session (`pending::identified` checks the credential it used is
    // still the account's), so ending the sessions below ends them all.
    removed.password = user.password_hash.take().is_some();
    user.updated_at = state.clock.now();
    users::update(state.db, user).await?;
    // Second factors someone added before the proof would otherwise guard the
    // owner's account against the owner.
    let factors = factors::remove_all(state.db, &user.user_id).await?;
    removed.factors = factors.len();
    if !factors.is_empty() {
        let ids: Vec<&str> = factors.iter().map(|f| f.factor_id.as_str()).collect();
        let e = Event::new(Kind::MfaRemoved).user(user.user_id.clone()).method("all").actor(actor.clone());
        audit::record(state.audit, e.details(serde_json::json!({ "factors": ids, "why": "address_proven" })));
    }
    for i in identities::remove_all(state.db, &user.user_id).await? {
        let name = state.providers.get(&i.provider).map(|p| p.name.clone()).unwrap_or_else(|| i.provider.clone());
        removed.identities.push(format!("{name} ({})", i.email.as_deref().unwrap_or(&i.subject)));
        let e = Event::new(Kind::IdentityUnlinked).user(user.user_id.clone()).method(i.provider).actor(actor.clone());
        audit::record(state.audit, e.details(serde_json::json!({ "why": "address_proven" })));
    }
    if !removed.identities.is_empty() {
        // The profile came with the identities.
        user.name = None;
        user.picture = None;
    }
    removed.sessions = state.logouts.end_user_sessions(&user.user_id, true, &actor, "address_proven").await?;
    removed.consents = consents::delete_for_user(state.db, &user.user_id).await?;
    removed.links = email_tokens::delete_for_user(state.db, &user.user_id).await?;
    let details = serde_json::json!({
        "how": how,
        "identities": removed.identities.len(),
        "password": removed.password,
        "factors": removed.factors,
        "sessions": removed.sessions,
        "consents": removed.consents,
        "links": removed.links,
    });
    let e = Event::new(Kind::AccountReclaimed).user(user.user_id.clone()).email(email).actor(actor);
    audit::record(state.audit, e.details(details));
    if !removed.is_empty() {
        reclaimed_notice(state, email, &removed);
    }
    Ok(removed)
}

/// `prover` proved `email`: whichever other account holds it unverified
/// loses it (an unfinished sign-up, with no way in at all, is deleted).
/// Returns whether an address was released.
pub async fn release(state: &Prover<'_>, email: &str, prover: &str) -> Result<bool, StorageError> {
    let Some(holder) = users::find_by_email(state.db, email).await? else { return Ok(false) };
    if holder.user_id == prover || holder.email_verified {
        return Ok(false);
    }
    let now = state.clock.now();
    let deleted = users::delete_unfinished(state.db, &holder.user_id).await?;
    let released = deleted || users::release_email(state.db, &holder.user_id, email, now).await?;
    if released {
        let e = Event::new(Kind::EmailReleased).user(holder.user_id.clone()).email(email);
        let details = serde_json::json!({ "proven_by": prover, "deleted": deleted });
        audit::record(state.audit, e.actor(format!("user:{prover}")).details(details));
    }
    Ok(released)
}

fn reclaimed_notice(state: &Prover<'_>, email: &str, removed: &Removed) {
    state.emails.reclaimed_notice(email, &removed.lines().join("\n"));
}
