//! Administrators from a one-time link: with nobody holding `sesame-admin`,
//! `sesame serve` logs one (valid an hour; it stops working once anybody
//! holds the role, and the first administrator's creation forgets the
//! others); `sesame admin create-link` prints one at any time (the operator
//! can change the database anyway). The link opens a form that creates an
//! account (address, name, password) holding `sesame-admin`; the console
//! then signs in through the login box like anybody else. The link is spent
//! once, by the form's post; whoever holds it is the operator, so the address
//! they type counts as verified (as `sesame user add --email-verified`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::SetupPage;
use super::{path, render, run};
use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::error::Failure;
use crate::http::params::Params;
use crate::manage::Admin;
use crate::manage::users::NewUser;
use crate::session;
use crate::state::AppState;
use crate::storage::{Db, StorageError, setup_links, users};

pub const SETUP: &str = "/admin/setup";
/// How long a link works.
pub const LINK_TTL_SECS: i64 = 3600;
/// The actor audit events name for what a setup link did.
pub const ACTOR: &str = "setup-link";

/// A new one-time link (stored by its hash); `origin` is `serve` or `cli`.
pub async fn create_link(db: &Db, issuer: &str, origin: &str, now: i64) -> Result<String, StorageError> {
    let token = random::token(32);
    setup_links::insert(db, &random::sha256_hex(&token), origin, now, now + LINK_TTL_SECS).await?;
    Ok(format!("{}{SETUP}?token={token}", issuer.trim_end_matches('/')))
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn spent(state: &AppState) -> Response {
    crate::http::page::notice(
        &state.brand,
        StatusCode::BAD_REQUEST,
        "Link expired",
        "This link has expired or was already used. An operator can make a new one with the command: sesame admin create-link",
        None,
    )
}

fn form(state: &AppState, csrf: String, token: &str, email: &str, name: &str, error: Option<String>) -> SetupPage {
    SetupPage {
        brand: state.brand.clone(),
        action: path(state, "/setup"),
        csrf,
        token: token.to_string(),
        email: email.to_string(),
        name: name.to_string(),
        min_length: state.config.passwords.min_length,
        error,
    }
}

/// Whether the link may be used: live, and (for one `serve` logged) nobody
/// holds `sesame-admin` yet.
async fn usable(state: &AppState, hash: &str) -> Result<bool, Failure> {
    let origin = setup_links::live(&state.db, hash, state.clock.now()).await.map_err(Failure::internal)?;
    Ok(match origin.as_deref() {
        None => false,
        Some("serve") => {
            !crate::storage::roles::has_holder(&state.db, crate::access::ADMIN_ROLE).await.map_err(Failure::internal)?
        }
        Some(_) => true,
    })
}

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        if q.token.len() > 128 || !usable(&state, &random::sha256_hex(&q.token)).await? {
            return Ok(spent(&state));
        }
        let (jar, csrf) = session::ensure_csrf(&state, jar);
        Ok((jar, crate::http::page::render(StatusCode::OK, &form(&state, csrf, &q.token, "", "", None)))
            .into_response())
    })
    .await
}

pub async fn post(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    run(&state, async {
        let Some(csrf) = session::check_csrf(&state, &jar, p.first("csrf")) else {
            return Ok(super::message(&state, None, StatusCode::FORBIDDEN, "This form has expired. Open the link again."));
        };
        let token = p.first("token").unwrap_or("").to_string();
        let hash = random::sha256_hex(&token);
        let now = state.clock.now();
        let (email, name) = (p.first("email").unwrap_or("").trim().to_string(), p.first("name").unwrap_or("").trim().to_string());
        let again = |msg: &str| {
            let f = form(&state, csrf.clone(), &token, &email, &name, Some(msg.to_string()));
            Ok(render(StatusCode::BAD_REQUEST, &f))
        };
        if token.len() > 128 || !usable(&state, &hash).await? {
            return Ok(spent(&state));
        }
        if email.len() > 254 || crate::domain::validate_email(&email).is_err() {
            return again("That is not an email address.");
        }
        let password = p.first("password").unwrap_or("").to_string();
        if let Err(e) = crate::crypto::password::Policy::from_config(&state.config.passwords).check(&password) {
            return again(&format!("The {e}."));
        }
        if users::find_by_email(&state.db, &email).await.map_err(Failure::internal)?.is_some() {
            return again(
                "An account with this address exists. Give it the role with the command: sesame user grant-role ADDRESS sesame-admin",
            );
        }
        if !setup_links::spend(&state.db, &hash, now).await.map_err(Failure::internal)? {
            return Ok(spent(&state));
        }
        let all = crate::access::MANAGEMENT_PERMISSIONS.iter().map(|p| p.to_string()).collect();
        let who = Admin { actor: ACTOR.into(), client_id: None, permissions: all };
        let m = state.manage();
        let n = NewUser { email: email.clone(), email_verified: true, name: Some(name.clone()), password: Some(password) };
        let u = match m.create_user(&who, n).await {
            Ok(u) => u,
            Err(crate::manage::OpError::Invalid(msg)) => return again(&msg),
            Err(e) => {
                tracing::warn!(error = %e, "creating an administrator from a setup link failed");
                return again("The account could not be created. Open the link again.");
            }
        };
        crate::access::user_role(&state.db, &u.user_id, crate::access::ADMIN_ROLE, true)
            .await
            .map_err(|e| Failure::internal(anyhow::anyhow!(e.to_string())))?;
        // The links `serve` logged were for the first administrator: gone now.
        setup_links::forget_logged(&state.db).await.map_err(Failure::internal)?;
        let e = Event::new(Kind::AdminChange).actor(ACTOR).account(&u);
        audit::record(&state.audit, e.details(serde_json::json!({ "operation": "create the first administrator" })));
        Ok(Redirect::to(&path(&state, "")).into_response())
    })
    .await
}
