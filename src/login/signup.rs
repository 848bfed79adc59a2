//! What a sign-up does once the form is valid. The page says the same
//! whatever the address: a new address gets an empty account that is usable
//! once the emailed link is followed; an address whose account was never
//! verified gets a new link, and following it reclaims that account
//! (`proof::reclaim`: whatever an unverified claim put there goes); an
//! account's owner gets a notice instead. The password typed here is
//! installed only when the link is followed in this browser.

use crate::audit::{self, Event, Kind};
use crate::domain::User;
use crate::emails::LinkFor;
use crate::pending::Loaded;
use crate::state::AppState;
use crate::storage::email_tokens::Purpose;
use crate::storage::{StorageError, users};

pub async fn start(state: &AppState, l: &Loaded, email: &str, name: &str, hash: String) -> Result<(), StorageError> {
    let client = &l.client.client_id;
    let user = match users::find_by_email(&state.db, email).await? {
        Some(u) => u,
        None => {
            let now = state.clock.now();
            let u = User {
                user_id: uuid::Uuid::new_v4().to_string(),
                email: Some(email.to_string()),
                email_verified: false,
                // The name and the password are set from the link: until it is
                // followed nobody can sign in to it, and any proof of the
                // address takes it over (`proof`).
                name: None,
                picture: None,
                password_hash: None,
                disabled: false,
                created_at: now,
                updated_at: now,
            };
            match users::insert(&state.db, &u).await {
                Ok(()) => u,
                // Signed up twice at once: the other request made it.
                Err(StorageError::Conflict(_)) => match users::find_by_email(&state.db, email).await? {
                    Some(u) => u,
                    None => return Ok(()),
                },
                Err(e) => return Err(e),
            }
        }
    };
    if user.email_verified || user.disabled {
        audit::record(&state.audit, Event::failure(Kind::Signup, "email_taken").account(&user).client(client));
        if state.limits.mail_account(&user.user_id) && !user.disabled {
            state.emails.signup_attempt_notice(email);
        }
        return Ok(());
    }
    audit::record(&state.audit, Event::new(Kind::Signup).account(&user).client(client));
    if !state.limits.mail_account(&user.user_id) {
        let e = Event::failure(Kind::VerificationSent, "throttled").account(&user).client(client);
        audit::record(&state.audit, e);
        return Ok(());
    }
    let link = LinkFor {
        purpose: Purpose::Signup,
        email,
        password_hash: Some(hash),
        name: (!name.is_empty()).then(|| name.to_string()),
        request_id: Some(l.row.id.clone()),
    };
    state.emails.send_link(&user, link).await
}
