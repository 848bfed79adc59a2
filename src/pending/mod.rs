//! The pending authorization: a validated `/authorize` request kept
//! server-side, bound to the browser's CSRF cookie, while the user is
//! identified and asked for consent. It belongs to neither the protocol
//! (`oidc/`) nor the pages (`login/`): `/authorize` parks a request here with
//! its next step; a way of identifying the user (the password form today, an
//! upstream identity provider next) hands it an authenticated user through
//! `identified`; `/authorize/resume` then decides again.

mod factor;
pub mod password;
pub mod ticket;

use std::sync::Arc;

use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::domain::{Client, User};
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::mfa::policy;
use crate::oidc::request::AuthRequest;
use crate::session;
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::auth_requests::{self, AuthRequestRow};
use crate::storage::identities::{self, Identity};
use crate::storage::sessions::SessionRow;

/// Where the user is identified (the login box).
pub const IDENTIFY: &str = "/login";
/// Where the user grants a third-party client its scopes.
pub const CONSENT: &str = "/consent";
/// Where the user proves a second factor (or enrols one).
pub const SECOND_FACTOR: &str = "/login/factor";
/// Where a user who may not use the client is told so.
pub const NO_ACCESS: &str = "/no-access";
/// Where a request goes once a step is done, to be decided again.
pub const RESUME: &str = "/authorize/resume";

/// What must happen before the request can be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Identify,
    SecondFactor,
    Consent,
    /// The signed-in user may not use this client: say so, then `access_denied`.
    NoAccess,
}

/// The stored form of a pending request.
#[derive(Serialize, Deserialize)]
struct Stored {
    req: AuthRequest,
    hint_sub: Option<String>,
    #[serde(default)]
    link: Option<PendingLink>,
    /// Started from the account page: the upstream identity the provider
    /// returns is linked to this signed-in user (who must still be signed in).
    #[serde(default)]
    link_to: Option<String>,
}

/// An upstream identity waiting to be linked to the account that holds its
/// verified email: stored with the pending request (so bound to the browser
/// that started it), short-lived, and spent by the next identification, which
/// links it only if it signed in to that very account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLink {
    pub identity: Identity,
    pub provider_name: String,
    /// The account's email, shown on the login box.
    pub email: String,
    pub expires_at: i64,
}

/// How the user was identified.
pub struct SignedIn {
    pub amr: Vec<String>,
    /// The upstream provider; None for a password.
    pub idp: Option<String>,
    /// The upstream subject the provider vouched for; for a passkey sign-in
    /// (no `idp`), the passkey's credential id.
    pub subject: Option<String>,
    /// Second factors this sign-in proved already (a passkey, a trusted provider's).
    pub proofs: crate::mfa::policy::Proofs,
}

/// A pending request loaded for the browser that started it.
pub struct Loaded {
    pub row: AuthRequestRow,
    pub req: AuthRequest,
    /// `sub` of a verified `id_token_hint`.
    pub hint_sub: Option<String>,
    pub client: Arc<Client>,
    /// A live account link waiting for proof.
    pub link: Option<PendingLink>,
    /// The signed-in user an upstream identity is to be linked to.
    pub link_to: Option<String>,
}

/// The page of `step` for pending request `id`.
pub fn url(state: &AppState, step: Step, id: &str) -> String {
    let path = match step {
        Step::Identify => IDENTIFY,
        Step::SecondFactor => SECOND_FACTOR,
        Step::Consent => CONSENT,
        Step::NoAccess => NO_ACCESS,
    };
    format!("{}{path}?req={id}", state.issuer.path_prefix())
}

/// `/authorize/resume` for pending request `id`.
pub fn resume_url(state: &AppState, id: &str) -> String {
    format!("{}{RESUME}?req={id}", state.issuer.path_prefix())
}

/// Parks `req` bound to this browser's CSRF value; returns its id.
pub async fn park(
    state: &AppState,
    req: &AuthRequest,
    csrf: &str,
    hint_sub: Option<String>,
) -> Result<String, Failure> {
    park_with(state, req, csrf, hint_sub, None).await
}

/// Parks a request whose identify step links an upstream identity to
/// `user_id` (the account page's "Link" button) instead of signing in.
pub async fn park_for_linking(
    state: &AppState,
    req: &AuthRequest,
    csrf: &str,
    user_id: &str,
) -> Result<String, Failure> {
    park_with(state, req, csrf, None, Some(user_id.to_string())).await
}

async fn park_with(
    state: &AppState,
    req: &AuthRequest,
    csrf: &str,
    hint_sub: Option<String>,
    link_to: Option<String>,
) -> Result<String, Failure> {
    let back = |e: anyhow::Error| Failure::redirect(&req.target, OAuthError::internal(e));
    let now = state.clock.now();
    let id = random::token(24);
    let stored = Stored { req: req.clone(), hint_sub, link: None, link_to };
    let row = AuthRequestRow {
        id: id.clone(),
        browser_hash: random::sha256_hex(csrf),
        client_id: req.client_id.clone(),
        params: serde_json::to_string(&stored).map_err(|e| back(e.into()))?,
        created_at: now,
        expires_at: now + state.config.login.request_ttl_secs as i64,
    };
    auth_requests::insert(&state.db, &row).await.map_err(|e| back(e.into()))?;
    Ok(id)
}

/// Loads pending request `id`, refusing it unless this browser started it.
pub async fn load(state: &AppState, jar: &CookieJar, id: &str) -> Result<Loaded, Failure> {
    let expired = || {
        let mut e = OAuthError::invalid_request(
            "This sign-in request has expired or was started in another browser. Go back to the application and try again.",
        );
        e.detail = Some(session::unbound_detail(state, jar));
        Failure::page(e)
    };
    let csrf = session::csrf_value(state, jar).ok_or_else(expired)?;
    let row = auth_requests::find_live(&state.db, id, state.clock.now())
        .await
        .map_err(Failure::internal)?
        .ok_or_else(expired)?;
    if !random::ct_eq(&row.browser_hash, &random::sha256_hex(&csrf)) {
        return Err(expired());
    }
    let p: Stored = serde_json::from_str(&row.params).map_err(Failure::internal)?;
    let client = state
        .client(&row.client_id)
        .await
        .map_err(Failure::internal)?
        .ok_or_else(|| Failure::page(OAuthError::invalid_request("The application is no longer registered.")))?;
    let now = state.clock.now();
    let link = p.link.filter(|k| k.expires_at > now);
    Ok(Loaded { row, req: p.req, hint_sub: p.hint_sub, client, link, link_to: p.link_to })
}

/// Where the identify step starts: the login box, or straight to the
/// provider named by `connection=` (or the only one, without password login).
pub fn identify_url(state: &AppState, req: &AuthRequest, id: &str) -> String {
    let direct = match req.connection.as_deref() {
        Some(c) => state.federation.get(c).map(|p| p.id().to_string()),
        None if !state.config.login.password_login => {
            let mut it = state.federation.enabled();
            match (it.next(), it.next()) {
                (Some(p), None) => Some(p.id().to_string()),
                _ => None,
            }
        }
        None => None,
    };
    match direct {
        Some(p) => crate::federation::start_url(&state.issuer, &p, id),
        None => url(state, Step::Identify, id),
    }
}

/// Keeps `link` with pending request `l` until the user proves the account.
pub async fn ask_link(state: &AppState, l: &Loaded, link: PendingLink) -> Result<(), Failure> {
    let stored =
        Stored { req: l.req.clone(), hint_sub: l.hint_sub.clone(), link: Some(link), link_to: l.link_to.clone() };
    let params = serde_json::to_string(&stored).map_err(Failure::internal)?;
    auth_requests::update_params(&state.db, &l.row.id, &params).await.map_err(Failure::internal)
}

/// The level the standing rules ask of `user_id` at `client`: the global
/// policy, the client's, a role's (no `acr_values`: a refresh has none).
pub async fn rules_level(state: &AppState, client: &Client, user_id: &str) -> Result<policy::Level, StorageError> {
    let global = state.config.mfa.policy == crate::config::MfaPolicy::Required;
    if global || client.require_mfa {
        return Ok(policy::Level::Mfa);
    }
    if !state.role_rules.any_requires_mfa(&state.db, state.clock.now()).await? {
        return Ok(policy::Level::Single);
    }
    let role = crate::storage::roles::requires_mfa(&state.db, user_id).await?;
    Ok(if role { policy::Level::Mfa } else { policy::Level::Single })
}

/// The level of sign-in `req` needs. A role's rule costs a query only for a
/// session that has not proved a second factor yet, and only while some role
/// has the rule (`cache::RoleRuleCache`).
pub async fn needed_level(
    state: &AppState,
    req: &AuthRequest,
    client: &Client,
    current: Option<&SessionRow>,
) -> Result<policy::Level, StorageError> {
    let global = state.config.mfa.policy == crate::config::MfaPolicy::Required;
    let rules = policy::Rules { global, client: client.require_mfa, role: false };
    let need = policy::needed(rules, req.acr_values.as_deref());
    let Some(s) = current else { return Ok(need) };
    let proofs = policy::Proofs { mfa_at: s.mfa_at, phr_at: s.phr_at };
    if need >= policy::Level::Mfa || proofs.level(req.max_age, state.clock.now()) >= policy::Level::Mfa {
        return Ok(need);
    }
    if !state.role_rules.any_requires_mfa(&state.db, state.clock.now()).await? {
        return Ok(need);
    }
    let role = crate::storage::roles::requires_mfa(&state.db, &s.user_id).await?;
    Ok(policy::needed(policy::Rules { role, ..rules }, req.acr_values.as_deref()))
}

pub use factor::{factor_proved, remember_cookie_name};

/// Ends a pending request with an error sent back to its client.
pub fn fail(l: &Loaded, err: OAuthError) -> Failure {
    Failure::redirect(&l.req.target, err)
}

/// Forgets a pending request once it has been answered.
pub async fn finish(state: &AppState, id: &str) {
    let _ = auth_requests::delete(&state.db, id).await;
}

/// Whether `user`, as stored now, still has the way in `how` names: not
/// disabled, the same password hash (for a password sign-in), the provider
/// still linked (for a provider sign-in), the passkey still on the account
/// (for a passkey sign-in).
async fn still_holds(state: &AppState, user: &User, how: &SignedIn) -> Result<bool, Failure> {
    let Some(now) = crate::storage::users::find_by_id(&state.db, &user.user_id).await.map_err(Failure::internal)?
    else {
        return Ok(false);
    };
    if now.disabled {
        return Ok(false);
    }
    if let Some(p) = &how.idp {
        let linked = identities::for_user(&state.db, &user.user_id).await.map_err(Failure::internal)?;
        return Ok(linked.iter().any(|i| &i.provider == p && how.subject.as_ref().is_none_or(|s| &i.subject == s)));
    }
    if let Some(credential) = how.subject.as_deref() {
        // A passkey sign-in: the passkey is still this account's.
        let f = crate::storage::factors::by_credential(&state.db, credential).await.map_err(Failure::internal)?;
        return Ok(f.is_some_and(|f| f.user_id == user.user_id));
    }
    Ok(!how.amr.iter().any(|a| a == "pwd") || now.password_hash == user.password_hash)
}

/// The hand-off: `user` was identified (`amr` says how). Starts the session,
/// renews the CSRF value (a value known before a login is worthless after it)
/// with the pending request rebound to it, and continues at `/authorize/resume`.
pub async fn identified(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    how: SignedIn,
    l: &Loaded,
) -> Result<Response, Failure> {
    let how = factor::with_remembered(state, &jar, user, how).await?;
    // A pending link is spent here: stored only if this sign-in proved the
    // account it names.
    if let Some(link) = &l.link {
        if link.identity.user_id == user.user_id {
            let mut identity = link.identity.clone();
            identity.created_at = state.clock.now();
            identity.last_login_at = identity.created_at;
            match identities::insert(&state.db, &identity).await {
                Ok(()) | Err(StorageError::Conflict(_)) => {}
                Err(e) => return Err(Failure::internal(e)),
            }
            let e = Event::new(Kind::IdentityLinked).account(user).client(&l.client.client_id);
            audit::record(&state.audit, e.method(identity.provider.clone()));
        }
        let stored =
            Stored { req: l.req.clone(), hint_sub: l.hint_sub.clone(), link: None, link_to: l.link_to.clone() };
        let params = serde_json::to_string(&stored).map_err(Failure::internal)?;
        auth_requests::update_params(&state.db, &l.row.id, &params).await.map_err(Failure::internal)?;
    }
    let method = how.idp.clone().unwrap_or_else(|| if how.proofs.phr_at.is_some() { "passkey" } else { "pwd" }.into());
    if state.config.login.require_verified_email && !user.email_verified {
        let e = Event::failure(Kind::LoginFailure, "email_not_verified").account(user).client(&l.client.client_id);
        audit::record(&state.audit, e.method(method));
        let msg =
            "Verify your email address first: follow the link we sent you, or ask for a new one on the sign-in page.";
        return Err(Failure::page(OAuthError::new(ErrorCode::AccessDenied, msg)));
    }
    let (jar, s) = session::create(state, jar, &user.user_id, how.amr.clone(), how.idp.clone(), how.proofs)
        .await
        .map_err(Failure::internal)?;
    // The credential this sign-in used must still be the account's: a proof
    // of the mailbox (`proof::reclaim`) may have removed it meanwhile. Checked
    // once the session exists: reclaim saves the account before it ends the
    // sessions, so a session it could not see finds the change here.
    if !still_holds(state, user, &how).await? {
        crate::storage::sessions::delete(&state.db, &s.id_hash).await.map_err(Failure::internal)?;
        let msg = "This sign-in is no longer valid: the account changed meanwhile. Sign in again.";
        return Err(Failure::page(OAuthError::new(ErrorCode::AccessDenied, msg)));
    }
    let (jar, csrf) = session::new_csrf(state, jar);
    auth_requests::rebind(&state.db, &l.row.id, &random::sha256_hex(&csrf)).await.map_err(Failure::internal)?;
    let e = Event::new(Kind::LoginSuccess).account(user).client(&l.client.client_id).sid(&s.sid);
    audit::record(&state.audit, e.method(method));
    Ok((jar, Redirect::to(&resume_url(state, &l.row.id))).into_response())
}
