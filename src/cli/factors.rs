//! `sesame user factors` and `sesame user reset-mfa`: an account's second
//! factors, and taking them all away (a lost phone, a help-desk request).

use serde_json::json;

use super::Out;
use crate::config::Config;
use crate::domain::{Clock, User};
use crate::storage::{Db, factors};

/// Lists the user's second factors and how many recovery codes are left.
pub async fn list(db: &Db, u: &User, out: &Out) -> anyhow::Result<()> {
    let list = factors::for_user(db, &u.user_id).await?;
    let left = factors::recovery_codes_left(db, &u.user_id).await?;
    if out.json {
        return out.print_json(&json!({ "user_id": u.user_id, "factors": list, "recovery_codes_left": left }));
    }
    println!("{:<22} {:<8} {:<26} {:<26} NAME", "FACTOR_ID", "KIND", "ADDED", "LAST USED");
    for f in &list {
        let used = f.last_used_at.map(crate::domain::rfc3339).unwrap_or_else(|| "never".into());
        println!(
            "{:<22} {:<8} {:<26} {:<26} {}",
            f.factor_id,
            f.kind,
            crate::domain::rfc3339(f.created_at),
            used,
            f.name
        );
    }
    println!("{left} unused recovery code(s)");
    Ok(())
}

/// Removes every factor, recovery code and remembered browser of the user,
/// and ends the user's sessions (they proved factors that are gone; the
/// next sign-in sets one up again where one is required); audited
/// (`mfa_removed`, actor `cli`) and mailed to the user.
pub async fn reset(cfg: &Config, u: &User, out: &Out) -> anyhow::Result<()> {
    let state = crate::state::AppState::init(cfg.clone(), Clock::system()).await?;
    let removed = state.factors().reset(u, crate::audit::ACTOR_CLI, "admin", false).await?;
    if !removed.is_empty()
        && let Some(to) = &u.email
    {
        let mail = state.emails.factor_changed_mail(to, crate::emails::ALL_FACTORS_REMOVED);
        if !state.mailer.deliver(mail).await {
            eprintln!("warning: the factors were removed, but the notice to {to} was not sent");
        }
    }
    let ended = state.logouts.end_user_sessions(&u.user_id, false, crate::audit::ACTOR_CLI, "mfa_reset").await?;
    state.audit.flush().await;
    state.db.close().await;
    out.done(
        &format!("removed {} second factor(s) of {}; {ended} session(s) ended", removed.len(), u.label()),
        &json!({ "user_id": u.user_id, "removed": removed.len(), "sessions_ended": ended }),
    )
}
