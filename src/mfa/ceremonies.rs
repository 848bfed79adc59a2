//! Passkeys through `Factors`: registering one, using one as a second
//! factor, and passwordless sign-in. Ceremony state is kept under the
//! caller's key (`Factors::put`), spent by the step that finishes it.

use webauthn_rs::prelude::{AuthenticationResult, Passkey};

use super::passkeys::{self, PasskeyError};
use super::{Enrolled, FactorError, Factors, clean_name};
use crate::crypto::random;
use crate::domain::User;
use crate::storage::StorageError;
use crate::storage::factors::{self, Factor, PASSKEY};

impl Factors<'_> {
    /// Starts registering a passkey for `user`, kept under `key`.
    pub async fn start_passkey(&self, key: &str, user: &User) -> Result<serde_json::Value, FactorError> {
        let mine = self.user_passkeys(&user.user_id).await?;
        let keys: Vec<_> = mine.into_iter().map(|(_, p)| p).collect();
        let handle = passkeys::user_handle(&user.user_id);
        let started = self.passkeys.start_registration(handle, user.label(), user.label(), &keys)?;
        self.put("passkey-register", key, &started.state).await?;
        Ok(started.options)
    }

    pub async fn finish_passkey(
        &self,
        key: &str,
        user: &User,
        name: &str,
        response: &serde_json::Value,
    ) -> Result<Enrolled, FactorError> {
        let state = self.take("passkey-register", key, true).await?;
        let pk = self.passkeys.finish_registration(response, &state)?;
        let now = self.clock.now();
        let factor_id = format!("pk_{}", random::token(12));
        let f = Factor {
            factor_id,
            user_id: user.user_id.clone(),
            kind: PASSKEY.into(),
            name: clean_name(name, "Passkey"),
            secret: serde_json::to_string(&pk).map_err(|e| StorageError::Corrupt(e.to_string()))?,
            credential_id: Some(passkeys::credential_id(&pk)),
            last_step: 0,
            created_at: now,
            last_used_at: Some(now),
        };
        self.enrolled(user, f).await
    }

    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<(Factor, Passkey)>, StorageError> {
        Ok(factors::for_user(self.db, user_id)
            .await?
            .into_iter()
            .filter(|f| f.kind == PASSKEY)
            .filter_map(|f| serde_json::from_str(&f.secret).ok().map(|p| (f, p)))
            .collect())
    }

    /// Starts using one of `user`'s passkeys as a second factor, under `key`.
    pub async fn start_passkey_check(&self, key: &str, user: &User) -> Result<serde_json::Value, FactorError> {
        let keys: Vec<_> = self.user_passkeys(&user.user_id).await?.into_iter().map(|(_, p)| p).collect();
        if keys.is_empty() {
            return Err(PasskeyError::Refused("no passkey registered".into()).into());
        }
        let started = self.passkeys.start_authentication(&keys)?;
        self.put("passkey-check", key, &started.state).await?;
        Ok(started.options)
    }

    /// Finishes a second-factor passkey check; its `amr`.
    pub async fn finish_passkey_check(
        &self,
        key: &str,
        user: &User,
        response: &serde_json::Value,
    ) -> Result<Vec<String>, FactorError> {
        let state = self.take("passkey-check", key, true).await?;
        let result = self.passkeys.finish_authentication(response, &state)?;
        let mut mine = self.user_passkeys(&user.user_id).await?;
        let Some((f, pk)) = mine.iter_mut().find(|(_, p)| p.cred_id() == result.cred_id()) else {
            return Err(PasskeyError::Refused("not one of this account's passkeys".into()).into());
        };
        self.after_use(f, pk, &result).await?;
        Ok(passkeys::amr(&result))
    }

    /// Starts a passwordless sign-in under `key`.
    pub async fn start_passwordless(&self, key: &str) -> Result<serde_json::Value, FactorError> {
        let started = self.passkeys.start_discoverable()?;
        self.put("passkey-signin", key, &started.state).await?;
        Ok(started.options)
    }

    /// Finishes a passwordless sign-in: the user id the passkey belongs to,
    /// the `amr` of its use, and its credential id.
    pub async fn finish_passwordless(
        &self,
        key: &str,
        response: &serde_json::Value,
    ) -> Result<(String, Vec<String>, String), FactorError> {
        let state = self.take("passkey-signin", key, true).await?;
        let (handle, cred_id) = self.passkeys.identify(response)?;
        let unknown = || FactorError::Passkey(PasskeyError::Refused("no account has this passkey".into()));
        let f = factors::by_credential(self.db, &cred_id).await?.ok_or_else(unknown)?;
        if passkeys::user_handle(&f.user_id) != handle {
            return Err(unknown());
        }
        let mut pk: Passkey = serde_json::from_str(&f.secret).map_err(|_| unknown())?;
        let result = self.passkeys.finish_discoverable(response, &state, &pk)?;
        self.after_use(&f, &mut pk, &result).await?;
        Ok((f.user_id.clone(), passkeys::amr(&result), cred_id))
    }

    async fn after_use(&self, f: &Factor, pk: &mut Passkey, result: &AuthenticationResult) -> Result<(), StorageError> {
        let updated = pk.update_credential(result).unwrap_or(false);
        let secret = if updated { serde_json::to_string(pk).ok() } else { None };
        factors::used(self.db, &f.factor_id, secret.as_deref(), self.clock.now()).await
    }
}
