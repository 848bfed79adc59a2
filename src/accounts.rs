//! Account-wide operations, shared by the CLI (and the management API to
//! come): ending every session of a user whose password changed or who was
//! disabled, as a logout would end them.

use crate::storage::{StorageError, refresh_tokens, sessions};

/// A session that was ended, and the clients that had used it.
#[derive(Debug, Clone)]
pub struct EndedSession {
    pub sid: String,
    pub client_ids: Vec<String>,
}

/// Ends every session of `user_id` server-side (its unused codes and
/// non-offline refresh tokens with it) and revokes the user's other
/// non-offline refresh tokens; `revoke_all` revokes the offline ones too.
/// The browser is shown the front-channel logout on its next visit; the
/// caller sends the back-channel logout (`Logouts::deliver_all`),
/// which needs the signing keys.
pub async fn end_sessions(
    db: &crate::storage::Db,
    user_id: &str,
    revoke_all: bool,
    now: i64,
) -> Result<Vec<EndedSession>, StorageError> {
    let mut ended = Vec::new();
    for s in sessions::list_for_user(db, user_id).await? {
        let client_ids = sessions::end_remotely(db, &s, now).await?;
        ended.push(EndedSession { sid: s.sid, client_ids });
    }
    refresh_tokens::revoke_for_user(db, user_id, revoke_all, now).await?;
    // Signed out everywhere: the browsers remembered for a second factor too.
    crate::storage::factors::forget_browsers(db, user_id).await?;
    Ok(ended)
}

#[derive(Debug, thiserror::Error)]
pub enum UnlinkError {
    #[error("no such identity")]
    NotLinked,
    #[error("this is the user's last way to sign in (no password, no other identity); set a password first")]
    LastWayIn,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Removes `user`'s identities at `provider` (one `subject`, or all there),
/// refusing to leave the user with no way to sign in. Returns how many went.
pub async fn unlink(
    db: &crate::storage::Db,
    user: &crate::domain::User,
    provider: &str,
    subject: Option<&str>,
) -> Result<u64, UnlinkError> {
    let all = crate::storage::identities::for_user(db, &user.user_id).await?;
    let going = all.iter().filter(|i| i.provider == provider && subject.is_none_or(|s| i.subject == s)).count();
    if going == 0 {
        return Err(UnlinkError::NotLinked);
    }
    if going == all.len() && user.password_hash.is_none() {
        return Err(UnlinkError::LastWayIn);
    }
    Ok(crate::storage::identities::remove(db, &user.user_id, provider, subject).await?)
}
