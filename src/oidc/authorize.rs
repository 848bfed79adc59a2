//! `/authorize` (GET and POST) and `/authorize/resume`: validate, then decide
//! between issuing a code, showing the login box or consent, or an error.
//! `decide` is a pure function of the request, the session and the clock.

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::audience;
use super::request::{self, AuthRequest, ResponseType};
use super::tokens;
use super::{check_session, response};
use crate::audit::{self, Event, Kind};
use crate::crypto::random;
use crate::domain::Client;
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::params::Params;
use crate::mfa::policy::{self, Level, Proofs};
use crate::pending::{self, Step};
use crate::session;
use crate::state::AppState;
use crate::storage::auth_codes::{self, CodeRow};
use crate::storage::sessions::SessionRow;
use crate::storage::{consents, roles};

/// What to do with a valid request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Issue,
    Login,
    /// The session lacks the second factor (or passkey) the request needs.
    SecondFactor,
    Consent,
    /// The signed-in user may not use this (restricted) client.
    NoAccess,
    Fail(OAuthError),
}

/// Facts about the browser and user that the decision needs.
pub struct Context<'a> {
    pub session: Option<&'a SessionRow>,
    /// Scopes the user already granted this client, and when.
    pub consent: (&'a [String], i64),
    /// For a resumed request: when it started. A login or consent given after
    /// this moment satisfies `prompt=login` / `prompt=consent`.
    pub started_at: Option<i64>,
    /// The user chose "continue as" on the account chooser.
    pub account_chosen: bool,
    /// `sub` of a verified id_token_hint.
    pub hint_sub: Option<&'a str>,
    /// The session's user may use this client (always true for unrestricted ones).
    pub access_ok: bool,
    /// The level of sign-in the request needs (policy, client, role, `acr_values`).
    pub need: Level,
    pub now: i64,
}

pub fn decide(req: &AuthRequest, client: &Client, cx: &Context) -> Outcome {
    let none = req.prompt("none");
    let Some(s) = cx.session else {
        return if none { Outcome::Fail(login_required("no active session")) } else { Outcome::Login };
    };
    let fresh = cx.started_at.is_some_and(|t| s.auth_time >= t);
    let too_old = req.max_age.is_some_and(|m| cx.now - s.auth_time > m);
    let other_user = cx.hint_sub.is_some_and(|sub| sub != s.user_id);
    if none {
        if too_old {
            return Outcome::Fail(login_required("the session is older than max_age"));
        }
        if other_user {
            return Outcome::Fail(login_required("the session belongs to another user than id_token_hint"));
        }
    } else if !fresh
        && (too_old || other_user || req.prompt("login") || (req.prompt("select_account") && !cx.account_chosen))
    {
        return Outcome::Login;
    }
    let proofs = Proofs { mfa_at: s.mfa_at, phr_at: s.phr_at };
    if policy::short(cx.need, proofs, req.max_age, cx.started_at, cx.now) {
        return if none {
            Outcome::Fail(OAuthError::new(ErrorCode::InteractionRequired, "a second factor is needed"))
        } else {
            Outcome::SecondFactor
        };
    }
    if !cx.access_ok {
        return if none {
            Outcome::Fail(OAuthError::new(ErrorCode::AccessDenied, "the user may not use this application"))
        } else {
            Outcome::NoAccess
        };
    }
    if !client.first_party {
        let (granted, granted_at) = cx.consent;
        let covered = req.scopes.iter().chain(&req.api_scopes).all(|s| granted.contains(s));
        let fresh_consent = cx.started_at.is_some_and(|t| granted_at >= t);
        let needs = !covered || (req.prompt("consent") && !fresh_consent);
        if needs {
            return if none {
                Outcome::Fail(OAuthError::new(ErrorCode::ConsentRequired, "the user has not granted these scopes"))
            } else {
                Outcome::Consent
            };
        }
    }
    Outcome::Issue
}

fn login_required(why: &str) -> OAuthError {
    OAuthError::new(ErrorCode::LoginRequired, why)
}

/// GET or POST /authorize.
pub async fn handle(State(state): State<AppState>, ClientIp(ip): ClientIp, jar: CookieJar, params: Params) -> Response {
    // A session cookie still under its pre-`__Host-` name moves to the new one.
    let upgraded = session::upgrade_legacy(&state, &jar);
    let resp = match start(&state, jar, &params, ip).await {
        Ok(r) => r,
        Err(f) => f.render(&state.issuer, &state.brand),
    };
    match upgraded {
        Some(moved) => (moved, resp).into_response(),
        None => resp,
    }
}

async fn start(state: &AppState, jar: CookieJar, params: &Params, ip: Option<IpAddr>) -> Result<Response, Failure> {
    let client_id = request::client_id(params)?;
    let client = state
        .client(client_id)
        .await
        .map_err(Failure::internal)?
        .ok_or_else(|| bad_page("The application is not registered here."))?;
    let mut req = request::validate(params, &client)?;
    if let Some(c) = &req.connection
        && state.federation.get(c).is_none()
        && !(state.config.login.password_login && pending::password::PASSWORD_CONNECTIONS.contains(&c.as_str()))
    {
        let err = OAuthError::invalid_request(format!("unknown connection `{c}`"));
        return Err(Failure::redirect(&req.target, err));
    }
    // Silent polling is cheap but not free: past the limit, the answer is an
    // error the SPA understands (by redirect or web message), not a hang.
    let session_key = session::cookie_hash(state, &jar);
    if !state.limits.authorize(ip, session_key.as_deref()) {
        let err = OAuthError::new(ErrorCode::TemporarilyUnavailable, "too many requests; retry later");
        return Err(Failure::redirect(&req.target, err));
    }
    // The API the access token will be for, and the permissions asked of it.
    if req.response_type == ResponseType::Code {
        let target = audience::resolve(state, &client, req.audience.as_deref(), ErrorCode::AccessDenied)
            .await
            .map_err(|e| Failure::redirect(&req.target, e))?;
        req.audience = target.as_ref().map(|t| t.api.identifier.clone());
        let defined = target.map(|t| t.api.permissions).unwrap_or_default();
        req.api_scopes.retain(|s| defined.contains(s));
    } else {
        req.audience = None;
        req.api_scopes.clear();
    }
    let hint_sub = match &req.id_token_hint {
        Some(h) => match super::tokens::id_token_hint_subject(state, h, &client.client_id) {
            Some(sub) => Some(sub),
            None => {
                return Err(Failure::redirect(
                    &req.target,
                    OAuthError::invalid_request("id_token_hint is not a valid ID token from this issuer"),
                ));
            }
        },
        None => None,
    };
    // Embedded login: the password was checked at /co/authenticate; the
    // ticket signs the user in (replacing any session) without the login box.
    if let Some(ticket) = params.first("login_ticket") {
        return pending::ticket::at_authorize(state, jar, &req, hint_sub, ticket).await;
    }
    let current = session::current_by_hash(state, session_key.as_deref()).await.map_err(|e| back(&req.target, e))?;
    let outcome = decide_with_consent(state, &req, &client, current.as_ref(), None, false, hint_sub.as_deref()).await?;
    if req.prompt("none") {
        record_silent(state, &client.client_id, current.as_ref(), &outcome);
    }
    match outcome {
        Outcome::Issue => match &current {
            Some(s) => issue(state, &req, s).await,
            None => Err(back(&req.target, anyhow::anyhow!("issue without session"))),
        },
        Outcome::Fail(e) => Err(Failure::redirect(&req.target, e)),
        Outcome::Login | Outcome::SecondFactor | Outcome::Consent | Outcome::NoAccess => {
            let (jar, csrf) = session::ensure_csrf(state, jar);
            let id = pending::park(state, &req, &csrf, hint_sub).await?;
            let to = match outcome {
                Outcome::Login => pending::identify_url(state, &req, &id),
                Outcome::NoAccess => pending::url(state, Step::NoAccess, &id),
                Outcome::SecondFactor => pending::url(state, Step::SecondFactor, &id),
                _ => pending::url(state, Step::Consent, &id),
            };
            Ok((jar, Redirect::to(&to)).into_response())
        }
    }
}

/// `silent_auth_success` / `silent_auth_failure` (with the error as reason),
/// or `access_denied` when an access rule refused a signed-in user.
fn record_silent(state: &AppState, client_id: &str, s: Option<&SessionRow>, outcome: &Outcome) {
    let e = match outcome {
        Outcome::Issue => Event::new(Kind::SilentAuthSuccess),
        Outcome::Fail(err) if err.error() == "access_denied" => Event::failure(Kind::AccessDenied, "access_rule"),
        Outcome::Fail(err) => Event::failure(Kind::SilentAuthFailure, err.error()),
        _ => return,
    };
    let e = e.client(client_id);
    let e = match s {
        Some(s) => e.user(s.user_id.clone()).sid(&s.sid),
        None => e,
    };
    audit::record(&state.audit, e);
}

async fn decide_with_consent(
    state: &AppState,
    req: &AuthRequest,
    client: &Client,
    current: Option<&SessionRow>,
    started_at: Option<i64>,
    account_chosen: bool,
    hint_sub: Option<&str>,
) -> Result<Outcome, Failure> {
    let consent = match (client.first_party, current) {
        (false, Some(s)) => {
            consents::find(&state.db, &s.user_id, &client.client_id).await.map_err(|e| back(&req.target, e))?
        }
        _ => (Vec::new(), 0),
    };
    // Per-application access costs a query only for restricted clients.
    let access_ok = match current {
        Some(s) if client.is_restricted() => {
            let held = roles::access_of(&state.db, &s.user_id, None).await.map_err(|e| back(&req.target, e))?;
            crate::access::has_access(client, &held)
        }
        _ => true,
    };
    let need = pending::needed_level(state, req, client, current).await.map_err(|e| back(&req.target, e))?;
    let cx = Context {
        session: current,
        consent: (&consent.0, consent.1),
        started_at,
        account_chosen,
        hint_sub,
        access_ok,
        need,
        now: state.clock.now(),
    };
    Ok(decide(req, client, &cx))
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    req: String,
    #[serde(default)]
    account: Option<String>,
}

/// GET /authorize/resume: after login or consent, decide again.
pub async fn resume(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ResumeQuery>) -> Response {
    let run = async {
        let l = pending::load(&state, &jar, &q.req).await?;
        let current = session::current(&state, &jar).await.map_err(|e| back(&l.req.target, e))?;
        let chosen = q.account.as_deref() == Some("current");
        let outcome = decide_with_consent(
            &state,
            &l.req,
            &l.client,
            current.as_ref(),
            Some(l.row.created_at),
            chosen,
            l.hint_sub.as_deref(),
        )
        .await?;
        match outcome {
            Outcome::Issue => {
                let s = current.ok_or_else(|| back(&l.req.target, anyhow::anyhow!("issue without session")))?;
                let resp = issue(&state, &l.req, &s).await?;
                pending::finish(&state, &l.row.id).await;
                Ok::<_, Failure>(resp)
            }
            Outcome::Fail(e) => Err(Failure::redirect(&l.req.target, e)),
            Outcome::Login => Ok(Redirect::to(&pending::identify_url(&state, &l.req, &l.row.id)).into_response()),
            Outcome::Consent => Ok(Redirect::to(&pending::url(&state, Step::Consent, &l.row.id)).into_response()),
            Outcome::NoAccess => Ok(Redirect::to(&pending::url(&state, Step::NoAccess, &l.row.id)).into_response()),
            Outcome::SecondFactor => {
                Ok(Redirect::to(&pending::url(&state, Step::SecondFactor, &l.row.id)).into_response())
            }
        }
    };
    match run.await {
        Ok(r) => r,
        Err(f) => f.render(&state.issuer, &state.brand),
    }
}

/// Mints a code for the session's user and sends it to the client.
async fn issue(state: &AppState, req: &AuthRequest, s: &SessionRow) -> Result<Response, Failure> {
    if req.response_type != ResponseType::Code {
        return issue_implicit(state, req, s).await;
    }
    let now = state.clock.now();
    let code = random::token(32);
    let row = CodeRow {
        code_hash: random::sha256_hex(&code),
        grant_id: random::token(16),
        client_id: req.client_id.clone(),
        user_id: s.user_id.clone(),
        sid: s.sid.clone(),
        redirect_uri: req.target.redirect_uri.clone(),
        redirect_uri_sent: req.target.redirect_uri_sent,
        scope: req.scopes.iter().chain(&req.api_scopes).cloned().collect::<Vec<_>>().join(" "),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: s.auth_time,
        amr: s.amr.clone(),
        idp: s.idp.clone(),
        audience: req.audience.clone(),
        acr: acr_of(req, s, now),
        dpop_jkt: req.dpop_jkt.clone(),
        created_at: now,
        expires_at: now + state.config.tokens.code_ttl_secs as i64,
    };
    auth_codes::insert_with_grant(&state.db, &row).await.map_err(|e| back(&req.target, e))?;
    tracing::debug!(client_id = %req.client_id, user_id = %s.user_id, "code issued");
    let mut params = vec![("code", code)];
    params.extend(check_session::session_state(&req.client_id, &req.target, &s.id_hash).map(|v| ("session_state", v)));
    Ok(response::deliver(&state.issuer, &req.target, params))
}

/// The implicit `id_token` / `id_token token` response (auth0-js checkSession).
async fn issue_implicit(state: &AppState, req: &AuthRequest, s: &SessionRow) -> Result<Response, Failure> {
    let now = state.clock.now();
    let client = state
        .client(&req.client_id)
        .await
        .map_err(|e| back(&req.target, e))?
        .ok_or_else(|| back(&req.target, anyhow::anyhow!("client vanished")))?;
    let user = crate::storage::users::find_by_id(&state.db, &s.user_id)
        .await
        .map_err(|e| back(&req.target, e))?
        .ok_or_else(|| back(&req.target, anyhow::anyhow!("user vanished")))?;
    let scope = req.scope_string();
    let mut params: Vec<(&'static str, String)> = Vec::new();
    let access = if req.response_type == ResponseType::IdTokenToken {
        let input = tokens::AccessInput {
            sub: &user.user_id,
            scope: &scope,
            auth_time: Some(s.auth_time),
            sid: Some(&s.sid),
            gid: None,
            ent: &Default::default(),
            jkt: None,
        };
        Some(tokens::access_token(state, &client, input, now).map_err(|e| back(&req.target, e))?)
    } else {
        None
    };
    let acr = acr_of(req, s, now);
    let id_input = tokens::IdInput {
        user: &user,
        scopes: &req.scopes,
        nonce: req.nonce.as_deref(),
        auth_time: s.auth_time,
        sid: Some(&s.sid),
        amr: &s.amr,
        idp: s.idp.as_deref(),
        acr: acr.as_deref(),
        access_token: access.as_deref(),
        ent: None,
    };
    let id_token = tokens::id_token(state, &client, id_input, now).map_err(|e| back(&req.target, e))?;
    let access_issued = access.is_some();
    if let Some(at) = access {
        params.push(("access_token", at));
        params.push(("token_type", "Bearer".into()));
        params.push(("expires_in", state.config.tokens.access_token_ttl_secs.to_string()));
        params.push(("scope", scope));
    }
    params.push(("id_token", id_token));
    params.extend(check_session::session_state(&req.client_id, &req.target, &s.id_hash).map(|v| ("session_state", v)));
    crate::storage::sessions::add_client(&state.db, &s.sid, &client.client_id, now)
        .await
        .map_err(|e| back(&req.target, e))?;
    let e = Event::new(Kind::TokenIssued).account(&user).client(&req.client_id).sid(&s.sid);
    audit::record(&state.audit, e.details(serde_json::json!({ "grant": "implicit", "access_token": access_issued })));
    crate::telemetry::token_issued("implicit", &client.client_id);
    Ok(response::deliver(&state.issuer, &req.target, params))
}

/// The `acr` tokens from this session say for `req` (`mfa::policy::acr_claim`).
fn acr_of(req: &AuthRequest, s: &SessionRow, now: i64) -> Option<String> {
    policy::acr_claim(req.acr_values.as_deref(), Proofs { mfa_at: s.mfa_at, phr_at: s.phr_at }, now)
}

/// A request that cannot go back to a client: the error page (400).
fn bad_page(msg: &str) -> Failure {
    Failure::page(OAuthError::invalid_request(msg))
}

/// A failure once the redirect_uri is verified: back to the client through its
/// response mode (`temporarily_unavailable` when the database is away).
fn back(target: &request::Target, e: impl Into<anyhow::Error>) -> Failure {
    Failure::redirect(target, OAuthError::internal(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::request::{ResponseMode, Target};

    fn req(prompt: &[&str], max_age: Option<i64>) -> AuthRequest {
        AuthRequest {
            client_id: "c".into(),
            response_type: ResponseType::Code,
            target: Target {
                redirect_uri: "https://a/cb".into(),
                redirect_uri_sent: true,
                mode: ResponseMode::Query,
                state: None,
                web_origin: None,
                frame_ancestors: vec![],
            },
            scopes: vec!["openid".into(), "email".into()],
            nonce: None,
            code_challenge: None,
            prompt: prompt.iter().map(|s| s.to_string()).collect(),
            max_age,
            login_hint: None,
            id_token_hint: None,
            ui_locales: None,
            acr_values: None,
            connection: None,
            dpop_jkt: None,
            audience: None,
            api_scopes: vec![],
        }
    }

    fn client(first_party: bool) -> Client {
        Client {
            client_id: "c".into(),
            name: "C".into(),
            secret_hash: None,
            public: true,
            first_party,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            web_origins: vec![],
            grant_types: vec![],
            id_token_alg: None,
            token_endpoint_auth_method: "none".into(),
            backchannel_logout_uri: None,
            frontchannel_logout_uri: None,
            refresh_leeway_secs: None,
            introspect_any: false,
            source: "cli".into(),
            require_roles: vec![],
            require_groups: vec![],
            default_audience: None,
            rbac_claims: false,
            require_mfa: false,
            require_dpop: false,
            cross_origin_loc: None,
            cross_origin_authentication: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn sess(auth_time: i64) -> SessionRow {
        SessionRow {
            id_hash: "h".into(),
            sid: "s".into(),
            user_id: "u".into(),
            auth_time,
            amr: vec!["pwd".into()],
            acr: None,
            mfa_at: None,
            phr_at: None,
            idp: None,
            created_at: auth_time,
            last_seen_at: auth_time,
            idle_expires_at: i64::MAX,
            expires_at: i64::MAX,
            ip: None,
            user_agent: None,
        }
    }

    fn cx<'a>(s: Option<&'a SessionRow>, consent: &'a [String], started_at: Option<i64>) -> Context<'a> {
        Context {
            session: s,
            consent: (consent, 50),
            started_at,
            account_chosen: false,
            hint_sub: None,
            access_ok: true,
            need: Level::Single,
            now: 1000,
        }
    }

    #[test]
    fn decisions() {
        let s = sess(900);
        let none: Vec<String> = vec![];
        let all: Vec<String> = vec!["openid".into(), "email".into()];
        assert_eq!(decide(&req(&[], None), &client(true), &cx(None, &none, None)), Outcome::Login);
        assert_eq!(decide(&req(&[], None), &client(true), &cx(Some(&s), &none, None)), Outcome::Issue);
        assert!(
            matches!(decide(&req(&["none"], None), &client(true), &cx(None, &none, None)), Outcome::Fail(e) if e.error() == "login_required")
        );
        assert_eq!(decide(&req(&["login"], None), &client(true), &cx(Some(&s), &none, None)), Outcome::Login);
        // A login after the request started satisfies prompt=login.
        assert_eq!(decide(&req(&["login"], None), &client(true), &cx(Some(&s), &none, Some(800))), Outcome::Issue);
        assert_eq!(decide(&req(&[], Some(50)), &client(true), &cx(Some(&s), &none, None)), Outcome::Login);
        assert_eq!(decide(&req(&[], Some(100)), &client(true), &cx(Some(&s), &none, None)), Outcome::Issue);
        assert!(
            matches!(decide(&req(&["none"], Some(50)), &client(true), &cx(Some(&s), &none, None)), Outcome::Fail(e) if e.error() == "login_required")
        );
        // Third-party clients need consent, remembered afterwards.
        assert_eq!(decide(&req(&[], None), &client(false), &cx(Some(&s), &none, None)), Outcome::Consent);
        assert!(
            matches!(decide(&req(&["none"], None), &client(false), &cx(Some(&s), &none, None)), Outcome::Fail(e) if e.error() == "consent_required")
        );
        assert_eq!(decide(&req(&[], None), &client(false), &cx(Some(&s), &all, None)), Outcome::Issue);
        assert_eq!(decide(&req(&["consent"], None), &client(false), &cx(Some(&s), &all, None)), Outcome::Consent);
        assert_eq!(decide(&req(&["consent"], None), &client(false), &cx(Some(&s), &all, Some(40))), Outcome::Issue);
    }
}
