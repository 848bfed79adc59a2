//! The second-factor step of the login box (`/login/factor`): a code from an
//! authenticator app or a recovery code, a passkey (`passkey.rs`), or — for
//! a user who must have a factor and has none — enrolling one, before any
//! code is issued. The session already exists (the user was identified); the
//! step records the factor in it and continues at `/authorize/resume`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use super::handlers::{ReqQuery, check_csrf};
use super::pages::{FactorPage, RecoveryCodesPage, TotpView};
use crate::audit::{self, Event, Kind};
use crate::domain::User;
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::page;
use crate::http::params::Params;
use crate::mfa::policy::{self, Level, Proofs};
use crate::mfa::{CodeCheck, FactorError};
use crate::pending::{self, Loaded};
use crate::session;
use crate::state::AppState;
use crate::storage::factors::{PASSKEY, TOTP};
use crate::storage::sessions::SessionRow;
use crate::storage::users;

pub const FACTOR: &str = crate::pending::SECOND_FACTOR;
pub const FACTOR_ENROL: &str = "/login/factor/enrol";
pub const FACTOR_CODES: &str = "/login/factor/codes";
pub const PASSKEY_OPTIONS: &str = "/login/factor/passkey/options";
pub const PASSKEY_FINISH: &str = "/login/factor/passkey";

const THROTTLED: &str = "Too many attempts. Wait a while, then try again.";

/// The ceremony key of pending request `l` (bound to this browser by `pending::load`).
pub(super) fn key(l: &Loaded) -> String {
    format!("req:{}", l.row.id)
}

fn url(state: &AppState, path: &str, l: &Loaded) -> String {
    format!("{}{path}?req={}", state.issuer.path_prefix(), l.row.id)
}

/// The pending request, its session and user, or where to go instead.
pub(super) async fn context(
    state: &AppState,
    jar: &CookieJar,
    req: &str,
) -> Result<Result<(Loaded, SessionRow, User), Response>, Failure> {
    let l = pending::load(state, jar, req).await?;
    let s = session::current(state, jar).await.map_err(Failure::internal)?;
    let Some(s) = s else {
        return Ok(Err(Redirect::to(&pending::identify_url(state, &l.req, &l.row.id)).into_response()));
    };
    let user = users::find_by_id(&state.db, &s.user_id).await.map_err(Failure::internal)?;
    match user {
        Some(u) if !u.disabled => Ok(Ok((l, s, u))),
        _ => Ok(Err(Redirect::to(&pending::identify_url(state, &l.req, &l.row.id)).into_response())),
    }
}

/// What this sign-in may add on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Enrol {
    No,
    /// The account's first factor (an app or a passkey), after a recent sign-in.
    First,
    /// A passkey for a request that asks for one (`phr`), beside the factors
    /// the account has, after one of them was proved in this sign-in. It does
    /// not count until it is used.
    PasskeyForPhr,
}

/// What `s` may enrol during pending request `l` (`mfa::policy::change_needs`).
pub(super) async fn enrol_mode(state: &AppState, l: &Loaded, s: &SessionRow, user: &User) -> Result<Enrol, Failure> {
    let list = state.factors().list(&user.user_id).await.map_err(Failure::internal)?;
    let proofs = Proofs { mfa_at: s.mfa_at, phr_at: s.phr_at };
    let may =
        |need| policy::may_change_factors(state.clock.now(), s.auth_time, state.config.login.reauth_secs, proofs, need);
    if list.is_empty() {
        return Ok(if may(Level::Single) { Enrol::First } else { Enrol::No });
    }
    let need = pending::needed_level(state, &l.req, &l.client, Some(s)).await.map_err(Failure::internal)?;
    let has_passkey = list.iter().any(|x| x.kind == PASSKEY);
    let need_to_add = policy::change_needs(true, has_passkey, policy::Change::AddPasskey);
    Ok(if need == Level::Phr && !has_passkey && may(need_to_add) { Enrol::PasskeyForPhr } else { Enrol::No })
}

/// The factor page for this session's user.
#[allow(clippy::too_many_arguments)]
async fn view(
    state: &AppState,
    jar: CookieJar,
    l: &Loaded,
    s: &SessionRow,
    user: &User,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, Failure> {
    let need = pending::needed_level(state, &l.req, &l.client, Some(s)).await.map_err(Failure::internal)?;
    let f = state.factors();
    let list = f.list(&user.user_id).await.map_err(Failure::internal)?;
    let has_totp = list.iter().any(|x| x.kind == TOTP);
    let has_passkey = list.iter().any(|x| x.kind == PASSKEY);
    let codes_left = f.recovery_codes_left(&user.user_id).await.map_err(Failure::internal)?;
    // As `decide` counts them: within max_age, or proved during this request.
    let proofs = Proofs { mfa_at: s.mfa_at, phr_at: s.phr_at };
    let level = proofs.level_since(l.req.max_age, Some(l.row.created_at), state.clock.now());
    let mode = enrol_mode(state, l, s, user).await?;
    let passkeys = state.passkeys.available();
    let (jar, csrf) = session::ensure_csrf(state, jar);
    let enrol = if mode == Enrol::First && need < Level::Phr {
        let e = f.start_totp(&key(l), user).await.map_err(|e| Failure::internal(anyhow::anyhow!(e)))?;
        Some(TotpView { secret: e.secret, qr_svg: e.qr_svg })
    } else {
        None
    };
    let code_form = (has_totp || codes_left > 0) && level < Level::Mfa;
    let passkey_check = passkeys && has_passkey;
    let passkey_register = passkeys && mode != Enrol::No;
    let notice = if need == Level::Phr && !has_passkey && !list.is_empty() && level < Level::Mfa {
        Some("This application asks for a passkey. Verify with your authenticator app first, then add one.".into())
    } else if need == Level::Phr && !has_passkey {
        Some("This application asks for a passkey: add one to continue.".into())
    } else {
        None
    };
    // A first factor is set up only right after a sign-in: an older session
    // (single sign-on from before the rule) signs in again first.
    let relogin = (list.is_empty() && mode == Enrol::No).then(|| pending::identify_url(state, &l.req, &l.row.id));
    let stuck = !code_form && !passkey_check && !passkey_register && enrol.is_none();
    let error = if relogin.is_some() && error.is_none() {
        Some("To set up a second factor, sign in again first: your last sign-in was a while ago.".into())
    } else if stuck && error.is_none() {
        Some("A second factor is needed here, and this account has none that can be used now. Ask your administrator for help.".into())
    } else {
        error
    };
    let title = if enrol.is_some() || (passkey_register && list.is_empty()) {
        "Set up a second factor"
    } else {
        "Verify it's you"
    };
    let page = FactorPage {
        brand: state.brand.clone(),
        title: title.into(),
        client_name: l.client.name.clone(),
        account: user.label().to_string(),
        csrf,
        req: l.row.id.clone(),
        error,
        notice,
        enrol,
        enrol_action: url(state, FACTOR_ENROL, l),
        code_form,
        code_action: url(state, FACTOR, l),
        remember_days: state.config.mfa.remember_browser_days,
        passkey_check,
        passkey_register,
        passkey_options: format!("{}{PASSKEY_OPTIONS}", state.issuer.path_prefix()),
        passkey_finish: format!("{}{PASSKEY_FINISH}", state.issuer.path_prefix()),
        relogin,
    };
    Ok((jar, page::render_scripted(status, &page)).into_response())
}

pub async fn get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
    let run = async {
        let (l, s, user) = match context(&state, &jar, q.req()).await? {
            Ok(v) => v,
            Err(to) => return Ok(to),
        };
        view(&state, jar, &l, &s, &user, StatusCode::OK, None).await
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

/// Audits a refused second factor.
pub(super) fn refused(state: &AppState, user: &User, l: &Loaded, reason: &str, method: &str) {
    let e = Event::failure(Kind::MfaChallengeFailure, reason).account(user).client(&l.client.client_id);
    audit::record(&state.audit, e.method(method));
}

/// A code typed on the factor page: an authenticator-app code or a recovery code.
pub async fn post(State(state): State<AppState>, ClientIp(ip): ClientIp, jar: CookieJar, p: Params) -> Response {
    let run = async {
        check_csrf(&state, &jar, &p)?;
        let (l, s, user) = match context(&state, &jar, p.first("req").unwrap_or("")).await? {
            Ok(v) => v,
            Err(to) => return Ok(to),
        };
        let now = state.clock.now();
        let per_hour = state.config.mfa.max_attempts_per_hour;
        if !state.limits.second_factor(&state.db, now, ip, &user.user_id, per_hour).await.map_err(Failure::internal)? {
            refused(&state, &user, &l, "throttled", "otp");
            return view(&state, jar, &l, &s, &user, StatusCode::TOO_MANY_REQUESTS, Some(THROTTLED.into())).await;
        }
        let code = p.first("code").unwrap_or("");
        let check = state.factors().check_code(&user, code).await.map_err(Failure::internal)?;
        let method = match check {
            CodeCheck::Totp => "otp",
            CodeCheck::Recovery(_) => "recovery_code",
            CodeCheck::Replayed => {
                refused(&state, &user, &l, "replayed_code", "otp");
                let msg = "That code was used already. Wait for the next one.";
                return view(&state, jar, &l, &s, &user, StatusCode::UNAUTHORIZED, Some(msg.into())).await;
            }
            CodeCheck::Wrong => {
                refused(&state, &user, &l, "wrong_code", "otp");
                let msg = "That code is not right. Check the time on your phone, and try the newest code.";
                return view(&state, jar, &l, &s, &user, StatusCode::UNAUTHORIZED, Some(msg.into())).await;
            }
        };
        state.limits.second_factor_proved(&state.db, now, ip, &user.user_id).await.map_err(Failure::internal)?;
        let remember = p.first("remember") == Some("1");
        let jar = pending::factor_proved(&state, jar, &s, &user, &["otp".into()], false, remember, &l).await?;
        tracing::debug!(user_id = %user.user_id, method, "second factor proved");
        Ok((jar, Redirect::to(&pending::resume_url(&state, &l.row.id))).into_response())
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

/// Confirms an authenticator app enrolled during sign-in: the factor is
/// added, proved in this session, and the recovery codes shown once.
pub async fn enrol(State(state): State<AppState>, ClientIp(ip): ClientIp, jar: CookieJar, p: Params) -> Response {
    let run = async {
        check_csrf(&state, &jar, &p)?;
        let (l, s, user) = match context(&state, &jar, p.first("req").unwrap_or("")).await? {
            Ok(v) => v,
            Err(to) => return Ok(to),
        };
        let f = state.factors();
        // Only an account's first factor is set up here; more on the account page.
        if enrol_mode(&state, &l, &s, &user).await? != Enrol::First {
            let msg = "Sign in again to add a second factor.";
            return Err(Failure::page(OAuthError::new(ErrorCode::AccessDenied, msg)));
        }
        let per_hour = state.config.mfa.max_attempts_per_hour;
        let now = state.clock.now();
        if !state.limits.second_factor(&state.db, now, ip, &user.user_id, per_hour).await.map_err(Failure::internal)? {
            return view(&state, jar, &l, &s, &user, StatusCode::TOO_MANY_REQUESTS, Some(THROTTLED.into())).await;
        }
        let name = p.first("name").unwrap_or("");
        match f.confirm_totp(&key(&l), &user, name, p.first("code").unwrap_or("")).await {
            Ok(done) => {
                if !session::still_live(&state, &s).await.map_err(Failure::internal)? {
                    f.remove(&user, &done.factor.factor_id, "system").await.map_err(Failure::internal)?;
                    return Err(Failure::page(OAuthError::new(ErrorCode::AccessDenied, SIGNED_OUT)));
                }
                let jar = pending::factor_proved(&state, jar, &s, &user, &["otp".into()], false, false, &l).await?;
                Ok(show_codes_or_resume(&state, jar, &l, done.recovery_codes).await?)
            }
            Err(FactorError::WrongCode) => {
                let msg = "That code is not right. Check the time on your phone, and try the newest code.";
                view(&state, jar, &l, &s, &user, StatusCode::BAD_REQUEST, Some(msg.into())).await
            }
            Err(FactorError::Expired) => {
                let msg = "The setup expired. Scan the new code and try again.";
                view(&state, jar, &l, &s, &user, StatusCode::BAD_REQUEST, Some(msg.into())).await
            }
            Err(e) => Err(Failure::internal(anyhow::anyhow!(e))),
        }
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}

pub(super) const SIGNED_OUT: &str = "This sign-in ended meanwhile (the account changed). Sign in again.";

/// After a first factor: its recovery codes are kept (sealed) for one
/// showing at `/login/factor/codes`; otherwise straight on.
pub(super) async fn show_codes_or_resume(
    state: &AppState,
    jar: CookieJar,
    l: &Loaded,
    codes: Option<Vec<String>>,
) -> Result<Response, Failure> {
    let next = match codes {
        Some(codes) => {
            state.factors().keep_codes(&key(l), &codes).await.map_err(|e| Failure::internal(anyhow::anyhow!(e)))?;
            url(state, FACTOR_CODES, l)
        }
        None => pending::resume_url(state, &l.row.id),
    };
    Ok((jar, Redirect::to(&next)).into_response())
}

/// The recovery codes of a factor just enrolled, shown once.
pub async fn codes(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
    let run = async {
        let (l, _, _) = match context(&state, &jar, q.req()).await? {
            Ok(v) => v,
            Err(to) => return Ok(to),
        };
        let resume = pending::resume_url(&state, &l.row.id);
        let Some(codes) = state.factors().shown_codes(&key(&l)).await.map_err(Failure::internal)? else {
            return Ok(Redirect::to(&resume).into_response());
        };
        let page = RecoveryCodesPage { brand: state.brand.clone(), codes, next: resume, next_label: "Continue".into() };
        Ok::<_, Failure>(page::render(StatusCode::OK, &page))
    };
    run.await.unwrap_or_else(|f| f.render(&state.issuer, &state.brand))
}
