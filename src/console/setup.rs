//! The first administrator: with nobody holding `sesame-admin`, `sesame
//! serve` logs a one-time link (valid an hour); `sesame admin create-link`
//! prints a new one at any time. The link opens a form that creates an
//! account (address, name, password) holding `sesame-admin`, then signs in
//! through the login box like anybody else. The link is spent once, by the
//! form's post; whoever holds it is the operator, so the address they type
//! counts as verified (as `sesame user add --email-verified`).

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

/// A new one-time link (stored by its hash).
pub async fn create_link(db: &Db, issuer: &str, now: i64) -> Result<String, StorageError> {
    let token = random::token(32);
    setup_links::insert(db, &random::sha256_hex(&token), now, now + LINK_TTL_SECS).await?;
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
        "This setup link has expired or was already used. Make a new one with `sesame admin create-link`.",
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

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let live = q.token.len() <= 128
            && setup_links::is_live(&state.db, &random::sha256_hex(&q.token), state.clock.now())
                .await
                .map_err(Failure::internal)?;
        if !live {
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
        if token.len() > 128 || !setup_links::is_live(&state.db, &hash, now).await.map_err(Failure::internal)? {
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
                "An account with this address exists. Give it the role instead: `sesame user grant-role ADDRESS sesame-admin`.",
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
            Err(e) => return again(&e.to_string()),
        };
        crate::access::user_role(&state.db, &u.user_id, crate::access::ADMIN_ROLE, true)
            .await
            .map_err(|e| Failure::internal(anyhow::anyhow!(e.to_string())))?;
        let e = Event::new(Kind::AdminChange).actor(ACTOR).account(&u);
        audit::record(&state.audit, e.details(serde_json::json!({ "operation": "create the first administrator" })));
        Ok(Redirect::to(&path(&state, "")).into_response())
    })
    .await
}
