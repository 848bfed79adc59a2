//! Who may grant what on the management API: an actor hands out permissions
//! of the built-in management API only within what it holds itself, and a
//! client never changes its own grants, so `write:clients` or `write:roles`
//! is not a way to every other permission. Grants on other APIs are the
//! operator's to make freely.

use super::{Admin, Manage, OpError, Result};
use crate::storage::{apis, roles};

impl Manage<'_> {
    /// Refuses (403) granting `perms` of `api` beyond the actor's own, when
    /// `api` is the management API.
    pub fn within(&self, who: &Admin, api: &str, perms: &[String]) -> Result<()> {
        if api.trim_end_matches('/') != self.management_api() {
            return Ok(());
        }
        match perms.iter().find(|p| !who.may(p)) {
            None => Ok(()),
            Some(p) => Err(OpError::Forbidden(format!(
                "permissions of the management API may be granted only within the granter's own, and {} lacks `{p}`",
                who.actor
            ))),
        }
    }

    /// Refuses a client's change to its own API grants.
    pub fn not_self(&self, who: &Admin, client_id: &str) -> Result<()> {
        if who.client_id.as_deref() == Some(client_id) {
            return Err(OpError::Forbidden("a client cannot change its own API grants; another client must".into()));
        }
        Ok(())
    }

    /// Refuses handing out `role` (to a user or a group) when it carries
    /// management permissions beyond the actor's own.
    pub async fn role_within(&self, who: &Admin, role: &str) -> Result<()> {
        let all = roles::list_roles(self.db).await?;
        let Some(r) = all.iter().find(|r| r.name == role) else { return Ok(()) };
        let aud = self.management_api();
        let perms: Vec<String> =
            r.permissions.iter().filter(|(api, _)| api.trim_end_matches('/') == aud).map(|(_, p)| p.clone()).collect();
        self.within(who, &aud, &perms)
    }

    /// Refuses taking over `user_id` (setting its password or its address)
    /// when its roles carry management permissions beyond the actor's: with
    /// `write:users` alone, an administrator's account is out of reach.
    pub async fn user_within(&self, who: &Admin, user_id: &str) -> Result<()> {
        let aud = self.management_api();
        let held = roles::access_of(self.db, user_id, Some(&aud)).await?;
        self.within(who, &aud, &held.permissions)
    }

    /// Refuses redirecting `client_id`'s sign-ins elsewhere (its redirect
    /// URIs, web origins) when the client holds management permissions
    /// beyond the actor's: codes for an administrator's tool would go to it.
    pub async fn client_within(&self, who: &Admin, client_id: &str) -> Result<()> {
        let aud = self.management_api();
        let grants = apis::client_grants(self.db, client_id).await?;
        let perms: Vec<String> =
            grants.into_iter().filter(|(api, _)| api.trim_end_matches('/') == aud).flat_map(|(_, p)| p).collect();
        self.within(who, &aud, &perms)
    }
}
