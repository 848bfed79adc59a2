//! A password sign-in's check, shared by the login box and embedded login
//! (`/co/authenticate`): the attempt budgets (per address and account, over
//! every replica) before any argon2 time, the same time and answer for an
//! unknown address as for a wrong password, the hashing queue, the audit
//! events, and the upgrade of an imported hash.

use std::net::IpAddr;

use tokio::sync::OnceCell;

use crate::audit::{self, Event, Kind};
use crate::crypto::{password, random};
use crate::domain::User;
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::state::AppState;
use crate::storage::users;

/// `connection` / `realm` values that mean the email and password database
/// (Auth0's name for it too).
pub const PASSWORD_CONNECTIONS: [&str; 2] = ["password", "Username-Password-Authentication"];

/// Longest email an account can have (RFC 5321 path limit); anything longer is
/// refused before any limiter or database work.
pub const MAX_EMAIL_LEN: usize = 254;

/// What a password check found.
pub enum Checked {
    Signed(User),
    /// The address or the account is past its budget: nothing was checked.
    Throttled,
    /// Right password, but `login.require_verified_email` and the address is not.
    NotVerified,
    /// Unknown address, wrong password, no password, or a disabled account: one answer.
    Wrong,
}

/// Checks `pw` for `email` for a sign-in to `client_id`; failures are audited
/// (`login_failure`, method `pwd`) with the reason only the log sees.
pub async fn check(
    state: &AppState,
    ip: Option<IpAddr>,
    email: &str,
    pw: String,
    client_id: &str,
) -> Result<Checked, Failure> {
    let failed = |reason: &str, user: Option<&User>| {
        let e = Event::failure(Kind::LoginFailure, reason).email(email).client(client_id);
        let e = match user {
            Some(u) => e.user(u.user_id.clone()),
            None => e,
        };
        audit::record(&state.audit, e.method("pwd"));
    };
    if email.len() > MAX_EMAIL_LEN || pw.len() > 4 * password::MAX_PASSWORD_LEN {
        return Ok(Checked::Wrong);
    }
    // Throttle guessing per address and per account, before spending argon2 time.
    if !state.limits.login(&state.db, state.clock.now(), ip, email).await.map_err(Failure::internal)? {
        failed("throttled", None);
        return Ok(Checked::Throttled);
    }
    let _permit = slot(state)?;
    let user = users::find_by_email(&state.db, email).await.map_err(Failure::internal)?;
    let ok = match &user {
        Some(u) if !u.disabled => match &u.password_hash {
            Some(h) => password::verify(pw.clone(), h.clone()).await,
            None => dummy_verify(pw.clone()).await,
        },
        _ => dummy_verify(pw.clone()).await,
    };
    match user {
        Some(u) if ok && !u.disabled && state.config.login.require_verified_email && !u.email_verified => {
            let e = Event::failure(Kind::LoginFailure, "email_not_verified").account(&u).client(client_id);
            audit::record(&state.audit, e.method("pwd"));
            Ok(Checked::NotVerified)
        }
        Some(u) if ok && !u.disabled => {
            state.limits.signed_in(&state.db, state.clock.now(), ip, email).await.map_err(Failure::internal)?;
            Ok(Checked::Signed(upgrade_hash(state, u, pw).await))
        }
        other => {
            let reason = match &other {
                None => "unknown_user",
                Some(u) if u.disabled => "disabled",
                Some(u) if u.password_hash.is_none() => "no_password",
                Some(_) => "wrong_password",
            };
            failed(reason, other.as_ref());
            Ok(Checked::Wrong)
        }
    }
}

/// An imported (bcrypt) or weaker hash is replaced by argon2id with our
/// parameters once the password is known to be right. A failure keeps the old
/// hash: the sign-in goes on.
async fn upgrade_hash(state: &AppState, mut u: User, pw: String) -> User {
    if !u.password_hash.as_deref().is_some_and(password::needs_upgrade) {
        return u;
    }
    match password::hash(pw.clone()).await {
        Ok(h) => {
            // Only over the hash this sign-in verified: never over a change
            // made meanwhile (a reset, a reclaim).
            let old = u.password_hash.clone().unwrap_or_default();
            match users::replace_password_hash(&state.db, &u.user_id, &old, &h, state.clock.now()).await {
                Ok(true) => {
                    tracing::info!(user_id = %u.user_id, "password hash upgraded to argon2id");
                    u.password_hash = Some(h);
                }
                // Another sign-in upgraded it first (then the stored hash
                // takes the same password), or it changed: the sign-in goes
                // on with what is stored, which `pending::identified` checks.
                Ok(false) => match users::find_by_id(&state.db, &u.user_id).await {
                    Ok(Some(now)) if now.password_hash.as_deref().is_some_and(|h| !password::needs_upgrade(h)) => {
                        if let Some(h) = now.password_hash.clone()
                            && password::verify(pw, h.clone()).await
                        {
                            u.password_hash = Some(h);
                        }
                    }
                    _ => tracing::info!(user_id = %u.user_id, "password changed meanwhile; hash not upgraded"),
                },
                Err(e) => tracing::warn!(user_id = %u.user_id, error = %e, "password hash upgrade not stored"),
            }
        }
        // An imported password may be shorter than our policy: keep it as it is.
        Err(e) => tracing::info!(user_id = %u.user_id, reason = %e, "password hash not upgraded"),
    }
    u
}

/// A place in the password-hashing queue, or 503 with Retry-After. A burst is
/// served as long as each sign-in can start hashing within
/// `login.max_password_wait_ms` (the measured hash time times the rounds
/// queued ahead of it); only what could not start by then is shed, and
/// `login.max_password_queue` bounds the queue's memory.
pub fn slot(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, Failure> {
    let busy = || {
        Failure::page(OAuthError::new(ErrorCode::TemporarilyUnavailable, "too many sign-ins at once; retry shortly"))
    };
    let ahead = state.config.login.max_password_queue.saturating_sub(state.passwords.available_permits());
    let wait = password::expected_wait(ahead);
    if wait > std::time::Duration::from_millis(state.config.login.max_password_wait_ms) {
        tracing::warn!(ahead, wait_ms = wait.as_millis() as u64, "password hashing shed a sign-in");
        crate::telemetry::rate_limited("password_hashing");
        return Err(busy());
    }
    state.passwords.clone().try_acquire_owned().map_err(|_| busy())
}

/// Spends the same argon2 time for an unknown user as for a known one.
async fn dummy_verify(pw: String) -> bool {
    static DUMMY: OnceCell<String> = OnceCell::const_new();
    let hash = DUMMY.get_or_init(|| async { password::hash(random::token(16)).await.unwrap_or_default() }).await;
    let _ = password::verify(pw, hash.clone()).await;
    false
}
