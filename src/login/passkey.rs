//! The login box's passkey endpoints, called by `static/passkeys.js`: a
//! passkey as a second factor or enrolled during sign-in
//! (`/login/factor/passkey…`), and passwordless sign-in (`/login/passkey…`).
//! JSON in and out; every call names its pending request and carries the
//! CSRF value of the browser that started it. Ceremony state is kept
//! server-side under the pending request.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::factor::{Enrol, SIGNED_OUT, context, enrol_mode, key, refused, show_codes_or_resume};
use crate::audit::{self, Event, Kind};
use crate::error::Failure;
use crate::http::client_ip::ClientIp;
use crate::http::page::json_error as error;
use crate::mfa::FactorError;
use crate::mfa::policy::Proofs;
use crate::pending::{self, SignedIn};
use crate::session::{self, PageCall};
use crate::state::AppState;
use crate::storage::users;

pub const SIGNIN_OPTIONS: &str = "/login/passkey/options";
pub const SIGNIN_FINISH: &str = "/login/passkey";

#[derive(Deserialize)]
pub struct Call {
    #[serde(default)]
    req: String,
    /// `check` (a second factor) or `register` (enrol during sign-in).
    #[serde(default)]
    mode: String,
    #[serde(default)]
    credential: Option<serde_json::Value>,
    #[serde(default)]
    remember: bool,
    #[serde(default)]
    name: String,
}

/// A failure (an expired request, the database away) as JSON.
fn failed(state: &AppState, f: Failure) -> Response {
    Failure::json(f.err, false).render(&state.issuer, &state.brand)
}

/// A redirect (and its cookies) as `{"next": …}`: the script navigates.
fn as_next(resp: Response) -> Response {
    let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let Some(next) = location else { return resp };
    let (mut parts, _) = resp.into_parts();
    parts.status = StatusCode::OK;
    parts.headers.remove(header::LOCATION);
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    Response::from_parts(parts, axum::body::Body::from(json!({ "next": next }).to_string()))
}

const EXPIRED: &str = session::PAGE_EXPIRED;
const REFUSED: &str = "The passkey could not be used.";

/// Options for a second-factor passkey check, or a registration during sign-in.
pub async fn factor_options(State(state): State<AppState>, PageCall(c, jar): PageCall<Call>) -> Response {
    let run = async {
        let (l, s, user) = match context(&state, &jar, &c.req).await? {
            Ok(v) => v,
            Err(_) => return Ok(error(StatusCode::FORBIDDEN, EXPIRED)),
        };
        let f = state.factors();
        let options = if c.mode == "register" {
            if enrol_mode(&state, &l, &s, &user).await? == Enrol::No {
                return Ok(error(StatusCode::FORBIDDEN, "Sign in again to add a passkey."));
            }
            f.start_passkey(&key(&l), &user).await
        } else {
            f.start_passkey_check(&key(&l), &user).await
        };
        Ok::<_, Failure>(match options {
            Ok(o) => Json(o).into_response(),
            Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        })
    };
    run.await.unwrap_or_else(|f| failed(&state, f))
}

/// The authenticator's answer for a second-factor check or registration.
pub async fn factor_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    PageCall(c, jar): PageCall<Call>,
) -> Response {
    let run = async {
        let (l, s, user) = match context(&state, &jar, &c.req).await? {
            Ok(v) => v,
            Err(_) => return Ok(error(StatusCode::FORBIDDEN, EXPIRED)),
        };
        let Some(credential) = &c.credential else { return Ok(error(StatusCode::BAD_REQUEST, REFUSED)) };
        let f = state.factors();
        let now = state.clock.now();
        if c.mode == "register" {
            let mode = enrol_mode(&state, &l, &s, &user).await?;
            if mode == Enrol::No {
                return Ok(error(StatusCode::FORBIDDEN, "Sign in again to add a passkey."));
            }
            return Ok(match f.finish_passkey(&key(&l), &user, &c.name, credential).await {
                Ok(done) if !session::still_live(&state, &s).await.map_err(Failure::internal)? => {
                    f.remove(&user, &done.factor.factor_id, "system").await.map_err(Failure::internal)?;
                    error(StatusCode::FORBIDDEN, SIGNED_OUT)
                }
                // The account's first factor: registering it proved it.
                Ok(done) if mode == Enrol::First => {
                    let amr = crate::mfa::passkeys::stored_amr(&done.factor.secret);
                    let jar = pending::factor_proved(&state, jar, &s, &user, &amr, true, false, &l).await?;
                    as_next(show_codes_or_resume(&state, jar, &l, done.recovery_codes).await?)
                }
                // Beside phishable factors it counts once it is used: back to
                // the factor page, which now offers it.
                Ok(_) => {
                    let next =
                        format!("{}{}?req={}", state.issuer.path_prefix(), crate::pending::SECOND_FACTOR, l.row.id);
                    Json(json!({ "next": next })).into_response()
                }
                Err(FactorError::Duplicate) => error(StatusCode::CONFLICT, "This passkey is registered already."),
                Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
            });
        }
        let per_hour = state.config.mfa.max_attempts_per_hour;
        if !state.limits.second_factor(&state.db, now, ip, &user.user_id, per_hour).await.map_err(Failure::internal)? {
            refused(&state, &user, &l, "throttled", "passkey");
            return Ok(error(StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Wait a while, then try again."));
        }
        match f.finish_passkey_check(&key(&l), &user, credential).await {
            Ok(amr) => {
                state
                    .limits
                    .second_factor_proved(&state.db, now, ip, &user.user_id)
                    .await
                    .map_err(Failure::internal)?;
                let jar = pending::factor_proved(&state, jar, &s, &user, &amr, true, c.remember, &l).await?;
                let next = pending::resume_url(&state, &l.row.id);
                Ok((jar, Json(json!({ "next": next }))).into_response())
            }
            Err(e) => {
                refused(&state, &user, &l, "passkey_refused", "passkey");
                tracing::info!(user_id = %user.user_id, error = %e, "second-factor passkey refused");
                Ok(error(StatusCode::UNAUTHORIZED, REFUSED))
            }
        }
    };
    run.await.unwrap_or_else(|f| failed(&state, f))
}

/// Options for a passwordless sign-in (any passkey of this site the browser holds).
pub async fn signin_options(State(state): State<AppState>, PageCall(c, jar): PageCall<Call>) -> Response {
    let run = async {
        let l = pending::load(&state, &jar, &c.req).await?;
        Ok::<_, Failure>(match state.factors().start_passwordless(&key(&l)).await {
            Ok(o) => Json(o).into_response(),
            Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        })
    };
    run.await.unwrap_or_else(|f| failed(&state, f))
}

/// A passwordless sign-in: the passkey names its account, user verification
/// proves the user; the session starts with both factors.
pub async fn signin_finish(State(state): State<AppState>, PageCall(c, jar): PageCall<Call>) -> Response {
    let run = async {
        let l = pending::load(&state, &jar, &c.req).await?;
        let Some(credential) = &c.credential else { return Ok(error(StatusCode::BAD_REQUEST, REFUSED)) };
        let (user_id, amr, credential_id) = match state.factors().finish_passwordless(&key(&l), credential).await {
            Ok(v) => v,
            Err(e) => {
                let ev = Event::failure(Kind::LoginFailure, "passkey_refused").client(&l.client.client_id);
                audit::record(&state.audit, ev.method("passkey"));
                tracing::info!(error = %e, "passwordless passkey refused");
                return Ok(error(StatusCode::UNAUTHORIZED, REFUSED));
            }
        };
        let user = match users::find_by_id(&state.db, &user_id).await.map_err(Failure::internal)? {
            Some(u) if !u.disabled => u,
            _ => return Ok(error(StatusCode::UNAUTHORIZED, REFUSED)),
        };
        let now = state.clock.now();
        let mut full = amr.clone();
        full.push("mfa".into());
        let proofs = Proofs { mfa_at: Some(now), phr_at: Some(now) };
        let how = SignedIn { amr: full, idp: None, subject: Some(credential_id), proofs };
        let e = Event::new(Kind::PasskeyLogin).account(&user).client(&l.client.client_id);
        audit::record(&state.audit, e.method(amr.first().cloned().unwrap_or_default()));
        Ok(as_next(pending::identified(&state, jar, &user, how, &l).await?))
    };
    run.await.unwrap_or_else(|f| failed(&state, f))
}
