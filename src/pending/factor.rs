//! The second-factor step of a pending authorization: a factor proved in the
//! session (by code or passkey, on the login box's factor page), and the
//! browser remembered for it; a remembered browser's proof joined to a new
//! sign-in.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::{Loaded, SignedIn};
use crate::audit::{self, Event, Kind};
use crate::domain::User;
use crate::error::Failure;
use crate::mfa::policy::{self, Proofs};
use crate::state::AppState;
use crate::storage::sessions::{self, SessionRow};

/// The remembered-browser cookie: `{session cookie}_mfa`.
pub fn remember_cookie_name(state: &AppState) -> String {
    format!("{}_mfa", state.config.session_cookie_name())
}

fn remember_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let path = match state.issuer.path_prefix() {
        "" => "/".to_string(),
        p => p.to_string(),
    };
    let days = state.config.mfa.remember_browser_days as i64;
    let mut c = Cookie::build((remember_cookie_name(state), value))
        .path(path)
        .http_only(true)
        .secure(state.config.cookie_secure())
        .same_site(SameSite::Lax)
        .max_age(time::Duration::days(days))
        .build();
    if !state.config.session.cookie_domain.is_empty() {
        c.set_domain(state.config.session.cookie_domain.clone());
    }
    c
}

/// `how`, with the second factor this browser proved for `user` before, when
/// it is remembered (and still may be: not expired, nor revoked by a factor
/// removed, a password reset or a sign-out everywhere).
pub(super) async fn with_remembered(
    state: &AppState,
    jar: &CookieJar,
    user: &User,
    mut how: SignedIn,
) -> Result<SignedIn, Failure> {
    if how.proofs.mfa_at.is_some() || state.config.mfa.remember_browser_days == 0 {
        return Ok(how);
    }
    let Some(value) = jar.get(&remember_cookie_name(state)).map(|c| c.value().to_string()) else { return Ok(how) };
    if let Some((amr, at)) = state.factors().remembered(&value, &user.user_id).await.map_err(Failure::internal)? {
        // A second factor, never a passkey's phishing resistance: that needs
        // the key itself (`phr` is proved by touching it).
        how.amr = policy::joined_amr(&how.amr, &amr);
        how.proofs = Proofs { mfa_at: Some(at), phr_at: None };
    }
    Ok(how)
}

/// `user` proved a second factor (`amr`; `phr` for a passkey) in session `s`
/// for pending request `l`: the session records it, the event is audited,
/// and the browser is remembered when asked (and allowed).
#[allow(clippy::too_many_arguments)]
pub async fn factor_proved(
    state: &AppState,
    jar: CookieJar,
    s: &SessionRow,
    user: &User,
    amr: &[String],
    phr: bool,
    remember: bool,
    l: &Loaded,
) -> Result<CookieJar, Failure> {
    let now = state.clock.now();
    let joined = policy::joined_amr(&s.amr, amr);
    sessions::prove_factor(&state.db, &s.id_hash, &joined, now, phr).await.map_err(Failure::internal)?;
    let method = amr.first().cloned().unwrap_or_default();
    let e = Event::new(Kind::MfaChallengeSuccess).account(user).client(&l.client.client_id).sid(&s.sid);
    audit::record(&state.audit, e.method(method));
    if !remember || state.config.mfa.remember_browser_days == 0 {
        return Ok(jar);
    }
    let days = state.config.mfa.remember_browser_days;
    let value = state.factors().remember(&user.user_id, amr, now, days).await.map_err(Failure::internal)?;
    Ok(jar.add(remember_cookie(state, value)))
}
