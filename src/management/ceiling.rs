//! Who may grant what on the management API: a caller hands out permissions
//! of the built-in management API only within what its own token holds, and
//! never changes its own client's grants, so `write:clients` or
//! `write:roles` is not a way to every other permission. Grants on other
//! APIs are the operator's to make freely.

use super::problem::Problem;
use crate::oidc::tokens::AccessClaims;
use crate::state::AppState;
use crate::storage::roles;

/// Refuses (403) granting `perms` of `api` beyond the caller's own, when
/// `api` is the management API.
pub fn within(state: &AppState, who: &AccessClaims, api: &str, perms: &[String]) -> Result<(), Problem> {
    if api.trim_end_matches('/') != crate::access::management_audience(state.issuer.as_str()) {
        return Ok(());
    }
    let held = who.permissions.as_deref().unwrap_or_default();
    match perms.iter().find(|p| !held.contains(p)) {
        None => Ok(()),
        Some(p) => Err(Problem::forbidden(format!(
            "a caller may grant permissions of the management API only within its own token's, and it lacks `{p}`"
        ))),
    }
}

/// Refuses a client's change to its own API grants.
pub fn not_self(who: &AccessClaims, client_id: &str) -> Result<(), Problem> {
    if who.client_id == client_id {
        return Err(Problem::forbidden("a client cannot change its own API grants; another client must"));
    }
    Ok(())
}

/// Refuses handing out `role` (to a user or a group) when it carries
/// management permissions beyond the caller's own.
pub async fn role(state: &AppState, who: &AccessClaims, role: &str) -> Result<(), Problem> {
    let all = roles::list_roles(&state.db).await?;
    let Some(r) = all.iter().find(|r| r.name == role) else { return Ok(()) };
    let aud = crate::access::management_audience(state.issuer.as_str());
    let perms: Vec<String> =
        r.permissions.iter().filter(|(api, _)| api.trim_end_matches('/') == aud).map(|(_, p)| p.clone()).collect();
    within(state, who, &aud, &perms)
}

/// Refuses taking over `user_id` (setting its password or its address)
/// when its roles carry management permissions beyond the caller's: with
/// `write:users` alone, an administrator's account is out of reach.
pub async fn user(state: &AppState, who: &AccessClaims, user_id: &str) -> Result<(), Problem> {
    let aud = crate::access::management_audience(state.issuer.as_str());
    let held = roles::access_of(&state.db, user_id, Some(&aud)).await?;
    within(state, who, &aud, &held.permissions)
}

/// Refuses redirecting `client_id`'s sign-ins elsewhere (its redirect URIs,
/// web origins) when the client holds management permissions beyond the
/// caller's: codes for an administrator's tool would go to the caller.
pub async fn client(state: &AppState, who: &AccessClaims, client_id: &str) -> Result<(), Problem> {
    let aud = crate::access::management_audience(state.issuer.as_str());
    let grants = crate::storage::apis::client_grants(&state.db, client_id).await?;
    let perms: Vec<String> =
        grants.into_iter().filter(|(api, _)| api.trim_end_matches('/') == aud).flat_map(|(_, p)| p).collect();
    within(state, who, &aud, &perms)
}
