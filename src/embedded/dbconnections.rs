//! `POST /dbconnections/signup` and `POST /dbconnections/change_password`
//! (auth0-js `webAuth.signup` / `webAuth.changePassword`).
//!
//! By default sign-up answers the same whatever the address: a new address
//! gets an account without a password and a link, whose follower chooses
//! the password (auth0-js sends no cookie here, so the typed password cannot
//! be tied to the browser that typed it); an address that has an account
//! gets no change — a verified one's owner is told by mail, an unverified
//! one is mailed a link (`proof::reclaim` then removes whatever the claim
//! brought). With `[login] reveal_existing_accounts` (Auth0's behaviour) a
//! new account gets the typed password and signs in at once, unverified,
//! and an existing address is answered `user_exists`. Either way an account
//! made here is a claim, never a reservation: the first proof of the mailbox
//! takes it over.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{client_for, db_error, password_connection};
use crate::audit::{self, Event, Kind};
use crate::crypto::password;
use crate::domain::{User, validate_email};
use crate::emails::LinkFor;
use crate::http::client_ip::ClientIp;
use crate::state::AppState;
use crate::storage::email_tokens::Purpose;
use crate::storage::{StorageError, users};

#[derive(Deserialize)]
pub struct Signup {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn bad(description: &str) -> Response {
    db_error(StatusCode::BAD_REQUEST, "BadRequestError", "invalid_signup", description.into())
}

fn throttled() -> Response {
    let msg = "Too many attempts. Wait a minute, then try again.";
    db_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsError", "too_many_attempts", msg.into())
}

fn unavailable() -> Response {
    let mut r = db_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableError",
        "temporarily_unavailable",
        "Sesame is temporarily unavailable; retry shortly".into(),
    );
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(crate::error::RETRY_AFTER_SECS));
    r
}

pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<axum::Json<Signup>, JsonRejection>,
) -> Response {
    let Ok(axum::Json(s)) = body else { return bad("the body must be JSON") };
    let client = match client_for(&state, &headers, &s.client_id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !password_connection(&state, s.connection.as_deref()) || !state.config.login.signup_enabled {
        return bad("Sign-up is not available here.");
    }
    let email = s.email.trim().to_string();
    if email.len() > 254 || validate_email(&email).is_err() {
        return bad("That is not an email address.");
    }
    let name = s.name.map(|n| n.trim().chars().take(200).collect::<String>()).filter(|n| !n.is_empty());
    if crate::text::has_control(&s.password) || name.as_deref().is_some_and(crate::text::has_control) {
        return bad("A field holds a control character.");
    }
    if !state.limits.signup(ip) {
        audit::record(&state.audit, Event::failure(Kind::Signup, "throttled").email(&email).client(&client.client_id));
        return throttled();
    }
    let policy = password::Policy::from_config(&state.config.passwords);
    if let Err(e) = policy.check(&s.password) {
        let rule = format!("The {e}.");
        let body = json!({
            "name": "PasswordStrengthError", "code": "invalid_password", "message": "Password is too weak",
            "description": { "rules": [{ "message": rule, "verified": false }], "verified": false },
            "policy": format!("* At least {} characters, not a common password", policy.min_length),
            "statusCode": 400,
        });
        return (StatusCode::BAD_REQUEST, crate::error::no_store(), axum::Json(body)).into_response();
    }
    // Spent whether or not the address has an account: the same work, the same answer.
    if !state.limits.mail(ip, &email) {
        return throttled();
    }
    // The typed password is kept only where it may sign in at once.
    let reveal = state.config.login.reveal_existing_accounts;
    let hash = if reveal {
        let _permit = match crate::pending::password::slot(&state) {
            Ok(p) => p,
            Err(_) => return unavailable(),
        };
        let Ok(hash) = password::hash(s.password).await else { return unavailable() };
        Some(hash)
    } else {
        None
    };
    match create(&state, &client.client_id, &email, name, hash).await {
        Ok(Created::New(id) | Created::Hidden(id)) => {
            let body = json!({ "_id": id, "email": email, "email_verified": false });
            (StatusCode::OK, crate::error::no_store(), axum::Json(body)).into_response()
        }
        Ok(Created::Exists) => {
            db_error(StatusCode::BAD_REQUEST, "BadRequestError", "user_exists", "The user already exists.".into())
        }
        Err(_) => unavailable(),
    }
}

/// What a sign-up made.
enum Created {
    New(String),
    /// The address has an account; the answer names a fresh id instead.
    Hidden(String),
    /// The address has an account, and the configuration says so.
    Exists,
}

/// The account for a new address (with `hash` when it signs in at once), or
/// what an existing one gets.
async fn create(
    state: &AppState,
    client_id: &str,
    email: &str,
    name: Option<String>,
    hash: Option<String>,
) -> Result<Created, StorageError> {
    let now = state.clock.now();
    let fresh = User {
        user_id: uuid::Uuid::new_v4().to_string(),
        email: Some(email.to_string()),
        email_verified: false,
        name,
        picture: None,
        password_hash: hash,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let existing = match users::find_by_email(&state.db, email).await? {
        Some(u) => Some(u),
        None => match users::insert(&state.db, &fresh).await {
            Ok(()) => None,
            // Signed up twice at once: the other request made it (or the
            // address was taken and released meanwhile: nothing to do).
            Err(StorageError::Conflict(_)) => match users::find_by_email(&state.db, email).await? {
                Some(u) => Some(u),
                None => return Ok(Created::Hidden(uuid::Uuid::new_v4().to_string())),
            },
            Err(e) => return Err(e),
        },
    };
    let Some(user) = existing else {
        let e = Event::new(Kind::Signup).account(&fresh).client(client_id);
        audit::record(&state.audit, e.details(json!({ "embedded": true })));
        if state.limits.mail_account(&fresh.user_id) {
            state.emails.send_link(&fresh, LinkFor::verify(Purpose::Signup, email, None)).await?;
        }
        return Ok(Created::New(fresh.user_id));
    };
    if state.config.login.reveal_existing_accounts {
        audit::record(&state.audit, Event::failure(Kind::Signup, "email_taken").account(&user).client(client_id));
        return Ok(Created::Exists);
    }
    if user.email_verified || user.disabled {
        audit::record(&state.audit, Event::failure(Kind::Signup, "email_taken").account(&user).client(client_id));
        if state.limits.mail_account(&user.user_id) && !user.disabled {
            state.emails.signup_attempt_notice(email);
        }
    } else {
        // Someone claimed the address before, unverified: no password is
        // installed; the link's follower chooses one.
        let e = Event::new(Kind::Signup).account(&user).client(client_id);
        audit::record(&state.audit, e.details(json!({ "embedded": true, "existing_claim": true })));
        if state.limits.mail_account(&user.user_id) {
            state.emails.send_link(&user, LinkFor::verify(Purpose::Signup, email, None)).await?;
        }
    }
    Ok(Created::Hidden(uuid::Uuid::new_v4().to_string()))
}

#[derive(Deserialize)]
pub struct ChangePassword {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    connection: Option<String>,
}

/// The reset mail; the same answer whether or not the address has an account.
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<axum::Json<ChangePassword>, JsonRejection>,
) -> Response {
    let Ok(axum::Json(c)) = body else { return bad("the body must be JSON") };
    if let Err(r) = client_for(&state, &headers, &c.client_id).await {
        return r;
    }
    if !password_connection(&state, c.connection.as_deref()) {
        return bad("unknown connection");
    }
    let email = c.email.trim().to_string();
    if email.len() > 254 || validate_email(&email).is_err() {
        return bad("That is not an email address.");
    }
    if !state.limits.mail(ip, &email) {
        let e = Event::failure(Kind::PasswordResetRequested, "throttled").email(&email);
        audit::record(&state.audit, e);
        return throttled();
    }
    if crate::selfservice::send_reset(&state, &email, None).await.is_err() {
        return unavailable();
    }
    let mut r = "We've just sent you an email to reset your password.".into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}
