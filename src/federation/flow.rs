//! The round trip: `start` sends the browser upstream with a fresh `state`,
//! `nonce` and PKCE verifier kept server-side; the callback spends them once,
//! redeems the code, decides whose account it is, and hands the user to the
//! pending authorization. Every failure ends on the login box with a message
//! and a retry (or, when no pending request can be named, an error page).
//!
//! Apple answers with a cross-site form POST, which `SameSite=Lax` cookies do
//! not accompany: `form_post` keeps the answer with the round trip and
//! answers with a page that navigates to the callback same-site, where the
//! browser's cookies (and so its binding) are back.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::claims;
use super::linking::{self, ResolveError, Resolved};
use super::upstream::{self, Answer, Ask};
use super::{Failed, Problem};
use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::page::{self, Brand};
use crate::http::params::Params;
use crate::pending::{self, Loaded, PendingLink, SignedIn, Step};
use crate::session;
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::federation_states::{self, FederationState};

#[derive(Deserialize)]
pub struct StartQuery {
    req: String,
}

pub async fn start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    let run = async {
        // Each round trip writes a row: it spends from the /authorize budget.
        if !state.limits.authorize(ip, None) {
            let msg = "too many sign-in attempts; retry shortly";
            return Err(Failure::page(OAuthError::new(ErrorCode::TemporarilyUnavailable, msg)));
        }
        let l = pending::load(&state, &jar, &q.req).await?;
        let p = state.federation.get(&id).cloned().ok_or_else(unavailable)?;
        let csrf = session::csrf_value(&state, &jar).ok_or_else(unavailable)?;
        let ep = match p.endpoints().await {
            Ok(ep) => ep,
            Err(f) => return Ok(back_to_login(&state, &l, &id, f)),
        };
        let value = random::token(32);
        let nonce = random::token(24);
        let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
        let now = state.clock.now();
        let row = FederationState {
            state_hash: random::sha256_hex(&value),
            provider: id.clone(),
            request_id: l.row.id.clone(),
            browser_hash: random::sha256_hex(&csrf),
            nonce: nonce.clone(),
            pkce_verifier: verifier.secret().clone(),
            response: None,
            created_at: now,
            expires_at: now + state.config.login.federation_ttl_secs as i64,
            used_at: None,
        };
        let ask = Ask {
            state: &value,
            nonce: &nonce,
            code_challenge: challenge.as_str(),
            login_hint: l.req.login_hint.as_deref(),
            reauthenticate: l.req.prompt("login") || l.req.max_age == Some(0),
        };
        let url = match upstream::authorization_url(&p, &ep, &ask) {
            Ok(u) => u,
            Err(f) => return Ok(back_to_login(&state, &l, &id, f)),
        };
        federation_states::insert(&state.db, &row).await.map_err(Failure::internal)?;
        tracing::info!(provider = %id, client_id = %l.client.client_id, "sent to the upstream provider");
        Ok(Redirect::to(&url).into_response())
    };
    run.await.unwrap_or_else(|f: Failure| f.render(&state.issuer, &state.brand))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// GET `/federation/{id}/callback`: the upstream's redirect, or the
/// same-site return after a form_post.
pub async fn callback(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let run = async {
        let value = q.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 512).ok_or_else(unknown_state)?;
        let hash = random::sha256_hex(value);
        let row = federation_states::find(&state.db, &hash).await.map_err(Failure::internal)?;
        let row = row.filter(|r| r.provider == id).ok_or_else(unknown_state)?;
        // Bound to the browser that started it, as its pending request is.
        let bound = session::csrf_value(&state, &jar)
            .is_some_and(|c| random::ct_eq(&row.browser_hash, &random::sha256_hex(&c)));
        if !bound {
            let mut f = other_browser();
            f.err.detail = Some(session::unbound_detail(&state, &jar));
            return Err(f);
        }
        let l = pending::load(&state, &jar, &row.request_id).await?;
        let p = state.federation.get(&id).cloned().ok_or_else(unavailable)?;
        let now = state.clock.now();
        if row.used_at.is_some() {
            return Ok(back_to_login(&state, &l, &id, Failed::new(Problem::Replayed, "state presented again")));
        }
        if row.expires_at <= now {
            return Ok(back_to_login(&state, &l, &id, Failed::new(Problem::Expired, "state expired")));
        }
        if !federation_states::spend(&state.db, &hash, now).await.map_err(Failure::internal)? {
            return Ok(back_to_login(&state, &l, &id, Failed::new(Problem::Replayed, "state spent concurrently")));
        }
        let answer = match &row.response {
            Some(json) => serde_json::from_str(json).map_err(Failure::internal)?,
            None => Answer { code: q.code, error: q.error, error_description: q.error_description, user: None },
        };
        if let Some(e) = &answer.error {
            let problem = if e == "access_denied" || e == "user_cancelled_authorize" {
                Problem::Cancelled
            } else {
                Problem::Refused
            };
            let why = format!("upstream error `{e}`: {}", answer.error_description.as_deref().unwrap_or(""));
            return Ok(back_to_login(&state, &l, &id, Failed::new(problem, why)));
        }
        let Some(code) = answer.code.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(back_to_login(&state, &l, &id, Failed::new(Problem::Invalid, "no code and no error")));
        };
        let started = std::time::Instant::now();
        let redeemed = upstream::redeem(&p, code, &row.pkce_verifier, &row.nonce, now, &answer).await;
        crate::telemetry::federation_duration(&id, started.elapsed().as_secs_f64());
        let up = match redeemed {
            Ok(u) => u,
            Err(f) => return Ok(back_to_login(&state, &l, &id, f)),
        };
        if !claims::allowed(&p, &up) {
            let f = Failed::new(Problem::NotAllowed, "outside allowed_domains");
            return Ok(back_to_login(&state, &l, &id, f));
        }
        crate::telemetry::federation(&id, "success");
        if let Some(user_id) = &l.link_to {
            return link_to_account(&state, &jar, &l, &p, &up, user_id, now).await;
        }
        // How this sign-in proved who the user is, whichever account it lands on.
        // A second factor the provider claims counts only when it is trusted for it.
        let (amr, upstream_mfa) = crate::mfa::policy::upstream_amr(&up.amr, p.cfg.trust_upstream_mfa);
        // Proved when the user signed in there (never later than now).
        let at = up.auth_time.map_or(now, |t| t.min(now));
        let proofs = crate::mfa::policy::Proofs { mfa_at: upstream_mfa.then_some(at), phr_at: None };
        let how = SignedIn { amr, idp: Some(id.clone()), subject: Some(up.subject.clone()), proofs };
        match linking::resolve(&state, &p, &up, now).await {
            Ok(Resolved::Created(user)) => {
                let e = Event::new(Kind::Signup).account(&user).client(&l.client.client_id).method(id.clone());
                audit::record(&state.audit, e);
                pending::identified(&state, jar, &user, how, &l).await
            }
            Ok(Resolved::SignedIn(user)) => pending::identified(&state, jar, &user, how, &l).await,
            Ok(Resolved::Reclaim { mut existing, identity }) => {
                // The provider verified the address this account only claimed.
                let email = up.email.clone().unwrap_or_default();
                crate::proof::reclaim(&state.prover(), &mut existing, &email, &id).await.map_err(Failure::internal)?;
                existing.email_verified = true;
                existing.name = up.name.clone().or(existing.name);
                existing.picture = up.picture.clone().or(existing.picture);
                existing.updated_at = now;
                crate::storage::users::update(&state.db, &existing).await.map_err(Failure::internal)?;
                match crate::storage::identities::insert(&state.db, &identity).await {
                    Ok(()) | Err(StorageError::Conflict(_)) => {}
                    Err(e) => return Err(Failure::internal(e)),
                }
                let e = Event::new(Kind::IdentityLinked).account(&existing).client(&l.client.client_id);
                audit::record(&state.audit, e.method(id.clone()));
                pending::identified(&state, jar, &existing, how, &l).await
            }
            Ok(Resolved::ProveOwnership { existing, identity }) => {
                tracing::info!(provider = %id, user_id = %existing.user_id, "link waits for proof of the account");
                let link = PendingLink {
                    identity,
                    provider_name: p.name.clone(),
                    email: existing.email_or_empty().to_string(),
                    expires_at: now + state.config.login.federation_ttl_secs as i64,
                };
                pending::ask_link(&state, &l, link).await?;
                Ok(Redirect::to(&pending::url(&state, Step::Identify, &l.row.id)).into_response())
            }
            Err(ResolveError::Refused(f)) => Ok(back_to_login(&state, &l, &id, f)),
            // Two first logins raced for one address: nothing was half-created.
            Err(ResolveError::Storage(StorageError::Conflict(what))) => {
                Ok(back_to_login(&state, &l, &id, Failed::new(Problem::Invalid, format!("{what} already exists"))))
            }
            Err(ResolveError::Storage(e)) => Err(Failure::internal(e)),
        }
    };
    run.await.unwrap_or_else(|f: Failure| f.render(&state.issuer, &state.brand))
}

/// The account page's "Link": the identity the provider returned joins the
/// signed-in user it was started for, unless it already belongs to another
/// account. Then the pending request goes on (back to the account page).
async fn link_to_account(
    state: &AppState,
    jar: &CookieJar,
    l: &Loaded,
    p: &super::Provider,
    up: &super::claims::Upstream,
    user_id: &str,
    now: i64,
) -> Result<Response, Failure> {
    let signed_in = crate::session::current(state, jar).await.map_err(Failure::internal)?;
    if signed_in.is_none_or(|s| s.user_id != user_id) {
        return Err(Failure::page(OAuthError::new(ErrorCode::AccessDenied, "You are no longer signed in.")));
    }
    match crate::storage::identities::find(&state.db, p.id(), &up.subject).await.map_err(Failure::internal)? {
        Some(i) if i.user_id != user_id => {
            let e = Event::failure(Kind::IdentityLinked, "linked_to_another_account").user(user_id).method(p.id());
            audit::record(&state.audit, e);
            let msg = format!("This {} account is already linked to another account.", p.name);
            return Err(Failure::page(OAuthError::new(ErrorCode::AccessDenied, msg)));
        }
        Some(_) => {}
        None => {
            match crate::storage::identities::insert(&state.db, &linking::identity(p, up, user_id, now)).await {
                Ok(()) | Err(StorageError::Conflict(_)) => {}
                Err(e) => return Err(Failure::internal(e)),
            }
            let e = Event::new(Kind::IdentityLinked).user(user_id).method(p.id()).actor(format!("user:{user_id}"));
            audit::record(&state.audit, e);
        }
    }
    Ok(Redirect::to(&pending::resume_url(state, &l.row.id)).into_response())
}

#[derive(askama::Template)]
#[template(path = "federation_return.html")]
struct ReturnPage {
    brand: Brand,
    url: String,
}

/// POST `/federation/{id}/callback` (response_mode=form_post): keeps the
/// answer with its round trip, then sends the browser to the GET callback
/// from this page, a same-site navigation that carries its cookies.
pub async fn form_post(State(state): State<AppState>, Path(id): Path<String>, p: Params) -> Response {
    let run = async {
        let value = p.first("state").filter(|s| !s.is_empty() && s.len() <= 512).ok_or_else(unknown_state)?;
        let hash = random::sha256_hex(value);
        let answer = Answer {
            code: p.first("code").map(str::to_string),
            error: p.first("error").map(str::to_string),
            error_description: p.first("error_description").map(str::to_string),
            user: p.first("user").map(str::to_string),
        };
        let json = serde_json::to_string(&answer).map_err(Failure::internal)?;
        let row = federation_states::find(&state.db, &hash).await.map_err(Failure::internal)?;
        if row.is_none_or(|r| r.provider != id) {
            return Err(unknown_state());
        }
        // Already answered or spent: the GET callback tells the user which.
        let _ = federation_states::keep_response(&state.db, &hash, &json, state.clock.now())
            .await
            .map_err(Failure::internal)?;
        let mut url = url::Url::parse("http://x/").map_err(Failure::internal)?;
        url.query_pairs_mut().append_pair("state", value);
        let url =
            format!("{}/federation/{id}/callback?{}", state.issuer.path_prefix(), url.query().unwrap_or_default());
        let mut resp = page::render(StatusCode::OK, &ReturnPage { brand: state.brand.clone(), url });
        resp.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        Ok(resp)
    };
    run.await.unwrap_or_else(|f: Failure| f.render(&state.issuer, &state.brand))
}

/// The login box again, with the problem in plain words; the reason is logged.
fn back_to_login(state: &AppState, l: &Loaded, provider: &str, f: Failed) -> Response {
    tracing::warn!(provider = %provider, problem = f.problem.code(), reason = %f.reason, "upstream sign-in failed");
    crate::telemetry::federation(provider, f.problem.code());
    let e = Event::failure(Kind::LoginFailure, f.problem.code()).client(&l.client.client_id).method(provider);
    audit::record(
        &state.audit,
        e.details(serde_json::json!({ "detail": f.reason.chars().take(300).collect::<String>() })),
    );
    let url = format!(
        "{}&fed_error={}&provider={provider}",
        pending::url(state, Step::Identify, &l.row.id),
        f.problem.code()
    );
    Redirect::to(&url).into_response()
}

fn unavailable() -> Failure {
    Failure::page(OAuthError::new(ErrorCode::NotFound, "This sign-in method is not available."))
}

fn unknown_state() -> Failure {
    Failure::page(OAuthError::invalid_request(
        "This sign-in answer is unknown. Go back to the application and sign in again.",
    ))
}

fn other_browser() -> Failure {
    Failure::page(OAuthError::invalid_request(
        "This sign-in was started in another browser, or has expired. Go back to the application and try again.",
    ))
}
