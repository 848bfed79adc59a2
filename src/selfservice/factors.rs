//! `/account`'s second factors: list them, add an authenticator app or a
//! passkey, rename or remove one, make new recovery codes. Every change needs
//! a fresh sign-in that proved a second factor when the account has one
//! (`mfa::policy::may_change_factors`); otherwise the page asks to sign in
//! again. Changes are audited and mailed by `mfa::Factors`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::account::{AccountForm, back, signed_in};
use super::pages::{AccountTotpPage, FactorView, FactorsView};
use super::{ACCOUNT, with_req};
use crate::domain::User;
use crate::error::Failure;
use crate::http::page::{self, RecoveryCodesPage, json_error};
use crate::mfa::FactorError;
use crate::mfa::policy::{Change, Level, Proofs, change_needs, may_change_factors};
use crate::session::{self, PageCall};
use crate::state::AppState;
use crate::storage::factors::{PASSKEY, TOTP};
use crate::storage::sessions::SessionRow;

/// The ceremony key of this session's enrolments.
fn key(s: &SessionRow) -> String {
    format!("sid:{}", s.sid)
}

pub(super) async fn section(state: &AppState, user: &User) -> Result<FactorsView, Failure> {
    let f = state.factors();
    let now = state.clock.now();
    let list = f
        .list(&user.user_id)
        .await
        .map_err(Failure::internal)?
        .into_iter()
        .map(|x| FactorView {
            kind: if x.kind == TOTP { "Authenticator app" } else { "Passkey" }.into(),
            added: crate::domain::ago(x.created_at, now),
            last_used: x.last_used_at.map(|t| crate::domain::ago(t, now)).unwrap_or_else(|| "never".into()),
            factor_id: x.factor_id,
            name: x.name,
        })
        .collect();
    Ok(FactorsView {
        list,
        recovery_codes_left: f.recovery_codes_left(&user.user_id).await.map_err(Failure::internal)?,
        passkeys: state.passkeys.available(),
    })
}

/// Whether this session may make `change`, or the error code that asks for
/// a fresh sign-in: with a second factor, or a passkey, as the change needs
/// (`mfa::policy::change_needs`).
async fn allowed(
    state: &AppState,
    s: &SessionRow,
    user: &User,
    change: Change,
) -> Result<Result<(), &'static str>, Failure> {
    let list = state.factors().list(&user.user_id).await.map_err(Failure::internal)?;
    let has_passkey = list.iter().any(|f| f.kind == PASSKEY);
    let need = change_needs(!list.is_empty(), has_passkey, change);
    let proofs = Proofs { mfa_at: s.mfa_at, phr_at: s.phr_at };
    if may_change_factors(state.clock.now(), s.auth_time, state.config.login.reauth_secs, proofs, need) {
        return Ok(Ok(()));
    }
    Ok(Err(match need {
        Level::Single => "reauth",
        Level::Mfa => "reauth_mfa",
        Level::Phr => "reauth_phr",
    }))
}

/// For an account with second factors, a change to its ways in (password,
/// address, linked providers) needs a session that proved one; without
/// factors, nothing more than before.
pub(super) async fn gate(state: &AppState, s: &SessionRow, user: &User) -> Result<Result<(), &'static str>, Failure> {
    if state.factors().list(&user.user_id).await.map_err(Failure::internal)?.is_empty() {
        return Ok(Ok(()));
    }
    let level = Proofs { mfa_at: s.mfa_at, phr_at: s.phr_at }.level(None, state.clock.now());
    Ok(if level >= Level::Mfa { Ok(()) } else { Err("reauth_mfa") })
}

/// The change removing `factor_id` is (the last passkey needs a passkey).
async fn removal(state: &AppState, user: &User, factor_id: &str) -> Result<Change, Failure> {
    let list = state.factors().list(&user.user_id).await.map_err(Failure::internal)?;
    let passkeys: Vec<_> = list.iter().filter(|f| f.kind == PASSKEY).collect();
    Ok(Change::Remove { last_passkey: passkeys.len() == 1 && passkeys[0].factor_id == factor_id })
}

fn totp_page(state: &AppState, csrf: String, secret: String, qr_svg: String, error: Option<String>) -> AccountTotpPage {
    AccountTotpPage { brand: state.brand.clone(), base: with_req(state, ACCOUNT, None), csrf, secret, qr_svg, error }
}

/// The page that adds an authenticator app.
pub async fn totp_get(State(state): State<AppState>, jar: CookieJar) -> Response {
    let run = async {
        let (s, user) = match signed_in(&state, &jar).await? {
            Ok(v) => v,
            Err(to_login) => return Ok(to_login),
        };
        if let Err(code) = allowed(&state, &s, &user, Change::Other).await? {
            return Ok(back(&state, "error", code));
        }
        let e = state.factors().start_totp(&key(&s), &user).await.map_err(|e| Failure::internal(anyhow::anyhow!(e)))?;
        let (jar, csrf) = session::ensure_csrf(&state, jar);
        Ok::<_, Failure>(
            (jar, page::render(StatusCode::OK, &totp_page(&state, csrf, e.secret, e.qr_svg, None))).into_response(),
        )
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

/// Confirms the app with a code: added, and the recovery codes shown once
/// when it is the account's first factor.
pub async fn totp_post(State(state): State<AppState>, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { session: s, user, p, .. } = f;
        if let Err(code) = allowed(&state, &s, &user, Change::Other).await? {
            return Ok(back(&state, "error", code));
        }
        let factors = state.factors();
        match factors.confirm_totp(&key(&s), &user, p.first("name").unwrap_or(""), p.first("code").unwrap_or("")).await
        {
            Ok(done) if !session::still_live(&state, &s).await.map_err(Failure::internal)? => {
                factors.remove(&user, &done.factor.factor_id, "system").await.map_err(Failure::internal)?;
                Ok(back(&state, "error", "reauth"))
            }
            Ok(done) => Ok(after_enrol(&state, done.recovery_codes)),
            Err(FactorError::WrongCode) => {
                let e = factors.start_totp(&key(&s), &user).await.map_err(|e| Failure::internal(anyhow::anyhow!(e)))?;
                let csrf = p.first("csrf").unwrap_or("").to_string();
                let msg = "That code is not right. Check the time on your phone, and try the newest code.";
                Ok(page::render(
                    StatusCode::BAD_REQUEST,
                    &totp_page(&state, csrf, e.secret, e.qr_svg, Some(msg.into())),
                ))
            }
            Err(FactorError::Expired) => Ok(back(&state, "error", "expired")),
            Err(e) => Err(Failure::internal(anyhow::anyhow!(e))),
        }
    };
    run.await.unwrap_or_else(|f: Failure| f.render(&state.issuer, &state.brand))
}

fn after_enrol(state: &AppState, codes: Option<Vec<String>>) -> Response {
    match codes {
        Some(codes) => codes_page(state, codes),
        None => back(state, "done", "factor_added"),
    }
}

fn codes_page(state: &AppState, codes: Vec<String>) -> Response {
    let page = RecoveryCodesPage {
        brand: state.brand.clone(),
        codes,
        next: with_req(state, ACCOUNT, None),
        next_label: "Back to your account".into(),
    };
    page::render(StatusCode::OK, &page)
}

pub async fn rename(State(state): State<AppState>, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { session: s, user, p, .. } = f;
        if let Err(code) = allowed(&state, &s, &user, Change::Other).await? {
            return Ok(back(&state, "error", code));
        }
        let id = p.first("factor_id").unwrap_or("");
        if !state.factors().rename(&user, id, p.first("name").unwrap_or("")).await.map_err(Failure::internal)? {
            return Ok(back(&state, "error", "unknown_factor"));
        }
        Ok::<_, Failure>(back(&state, "done", "factor_renamed"))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

pub async fn remove(State(state): State<AppState>, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { session: s, user, p, .. } = f;
        let id = p.first("factor_id").unwrap_or("");
        if let Err(code) = allowed(&state, &s, &user, removal(&state, &user, id).await?).await? {
            return Ok(back(&state, "error", code));
        }
        let actor = format!("user:{}", user.user_id);
        if !state.factors().remove(&user, id, &actor).await.map_err(Failure::internal)? {
            return Ok(back(&state, "error", "unknown_factor"));
        }
        Ok::<_, Failure>(back(&state, "done", "factor_removed"))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

/// New recovery codes, shown once; the old ones stop working.
pub async fn recovery_codes(State(state): State<AppState>, f: AccountForm) -> Response {
    let run = async {
        let AccountForm { session: s, user, .. } = f;
        if let Err(code) = allowed(&state, &s, &user, Change::Other).await? {
            return Ok(back(&state, "error", code));
        }
        if state.factors().list(&user.user_id).await.map_err(Failure::internal)?.is_empty() {
            return Ok(back(&state, "error", "no_factor"));
        }
        let actor = format!("user:{}", user.user_id);
        let codes = state.factors().regenerate_codes(&user, &actor).await.map_err(Failure::internal)?;
        Ok::<_, Failure>(codes_page(&state, codes))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

#[derive(Deserialize)]
pub struct PasskeyCall {
    #[serde(default)]
    credential: Option<serde_json::Value>,
    #[serde(default)]
    name: String,
}

/// The session and user of a JSON call, or its error.
async fn json_caller(state: &AppState, jar: &CookieJar) -> Result<(SessionRow, User), Response> {
    let (s, user) = match signed_in(state, jar).await {
        Ok(Ok(v)) => v,
        _ => return Err(json_error(StatusCode::FORBIDDEN, session::PAGE_EXPIRED)),
    };
    match allowed(state, &s, &user, Change::AddPasskey).await {
        Ok(Ok(())) => Ok((s, user)),
        _ => Err(json_error(
            StatusCode::FORBIDDEN,
            "Sign in again (with your second factor or passkey) to add a passkey.",
        )),
    }
}

pub async fn passkey_options(State(state): State<AppState>, PageCall(_, jar): PageCall<PasskeyCall>) -> Response {
    let (s, user) = match json_caller(&state, &jar).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match state.factors().start_passkey(&key(&s), &user).await {
        Ok(o) => Json(o).into_response(),
        Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

pub async fn passkey_finish(State(state): State<AppState>, PageCall(c, jar): PageCall<PasskeyCall>) -> Response {
    let (s, user) = match json_caller(&state, &jar).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(credential) = &c.credential else {
        return json_error(StatusCode::BAD_REQUEST, "The passkey could not be added.");
    };
    let f = state.factors();
    match f.finish_passkey(&key(&s), &user, &c.name, credential).await {
        Ok(done) if !session::still_live(&state, &s).await.unwrap_or(false) => {
            let _ = f.remove(&user, &done.factor.factor_id, "system").await;
            json_error(StatusCode::FORBIDDEN, "This session ended meanwhile. Sign in again.")
        }
        Ok(done) => {
            let next = match done.recovery_codes {
                Some(codes) => match f.keep_codes(&key(&s), &codes).await {
                    Ok(()) => format!("{}/factors/codes", with_req(&state, ACCOUNT, None)),
                    Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
                },
                None => format!("{}?done=factor_added", with_req(&state, ACCOUNT, None)),
            };
            Json(json!({ "next": next })).into_response()
        }
        Err(FactorError::Duplicate) => json_error(StatusCode::CONFLICT, "This passkey is registered already."),
        Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// The recovery codes of a passkey just added as the first factor, once.
pub async fn codes(State(state): State<AppState>, jar: CookieJar) -> Response {
    let run = async {
        let (s, _) = match signed_in(&state, &jar).await? {
            Ok(v) => v,
            Err(to_login) => return Ok(to_login),
        };
        match state.factors().shown_codes(&key(&s)).await.map_err(Failure::internal)? {
            Some(codes) => Ok(codes_page(&state, codes)),
            None => Ok::<_, Failure>(back(&state, "done", "factor_added")),
        }
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}
