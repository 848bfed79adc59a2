//! The consent page for clients that are not first-party. A grant is
//! remembered per user and client; `prompt=consent` asks again.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use super::CONSENT;
use super::handlers::ReqQuery;
use super::pages::{ConsentPage, describe_scope};
use crate::audit::{self, Event, Kind};
use crate::error::{ErrorCode, Failure, OAuthError};
use crate::http::page::{self};
use crate::http::params::Params;
use crate::pending::{self, RESUME};
use crate::session;
use crate::state::AppState;
use crate::storage::{consents, users};

pub async fn get(State(state): State<AppState>, jar: CookieJar, Query(q): Query<ReqQuery>) -> Response {
    let run = async {
        let l = pending::load(&state, &jar, q.req()).await?;
        let s = session::current(&state, &jar).await.map_err(Failure::internal)?;
        let Some(s) = s else {
            return Ok::<_, Failure>(
                Redirect::to(&format!("{}{}?req={}", state.issuer.path_prefix(), super::LOGIN, l.row.id))
                    .into_response(),
            );
        };
        let email = users::find_by_id(&state.db, &s.user_id)
            .await
            .ok()
            .flatten()
            .map(|u| u.label().to_string())
            .unwrap_or_default();
        let (jar, csrf) = session::ensure_csrf(&state, jar);
        let page = ConsentPage {
            brand: state.brand.clone(),
            client_name: l.client.name.clone(),
            action: format!("{}{CONSENT}", state.issuer.path_prefix()),
            csrf,
            req: l.row.id.clone(),
            email,
            scopes: scope_lines(&state, &l).await,
        };
        Ok((jar, page::render(StatusCode::OK, &page)).into_response())
    };
    match run.await {
        Ok(r) => r,
        Err(f) => f.render(&state.issuer, &state.brand),
    }
}

/// The scopes in plain words, then each API permission asked for, with the API's name.
async fn scope_lines(state: &AppState, l: &pending::Loaded) -> Vec<String> {
    let mut out: Vec<String> = l.req.scopes.iter().filter_map(|s| describe_scope(s)).map(str::to_string).collect();
    if let Some(aud) = &l.req.audience {
        let name = crate::storage::apis::find(&state.db, aud).await.ok().flatten().map(|a| a.name);
        let name = name.unwrap_or_else(|| aud.clone());
        out.extend(l.req.api_scopes.iter().map(|p| format!("{} on {name}", describe_permission(p))));
    }
    out
}

/// `read:users` → "Read users"; other names as they are.
fn describe_permission(p: &str) -> String {
    match p.split_once(':') {
        Some((verb, what)) if !verb.is_empty() && !what.is_empty() => {
            let mut v = verb.to_string();
            if let Some(f) = v.get_mut(0..1) {
                f.make_ascii_uppercase();
            }
            format!("{v} {}", what.replace(['_', '-'], " "))
        }
        _ => p.to_string(),
    }
}

pub async fn post(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    let run = async {
        super::handlers::check_csrf(&state, &jar, &p)?;
        let l = pending::load(&state, &jar, p.first("req").unwrap_or("")).await?;
        let s = session::current(&state, &jar)
            .await
            .map_err(Failure::internal)?
            .ok_or_else(|| Failure::page(OAuthError::new(ErrorCode::AccessDenied, "You are no longer signed in.")))?;
        if p.first("decision") != Some("allow") {
            let e = Event::failure(Kind::ConsentDenied, "user_denied").user(s.user_id.clone()).sid(&s.sid);
            audit::record(&state.audit, e.client(&l.client.client_id));
            return Err(pending::fail(&l, OAuthError::new(ErrorCode::AccessDenied, "the user denied access")));
        }
        let now = state.clock.now();
        let (mut granted, _) =
            consents::find(&state.db, &s.user_id, &l.client.client_id).await.map_err(Failure::internal)?;
        for sc in l.req.scopes.iter().chain(&l.req.api_scopes) {
            if !granted.contains(sc) {
                granted.push(sc.clone());
            }
        }
        consents::upsert(&state.db, &s.user_id, &l.client.client_id, &granted, now).await.map_err(Failure::internal)?;
        let e = Event::new(Kind::ConsentGranted).user(s.user_id.clone()).sid(&s.sid).client(&l.client.client_id);
        audit::record(&state.audit, e.details(serde_json::json!({ "scopes": granted })));
        Ok(Redirect::to(&format!("{}{RESUME}?req={}", state.issuer.path_prefix(), l.row.id)).into_response())
    };
    match run.await {
        Ok(r) => r,
        Err(f) => f.render(&state.issuer, &state.brand),
    }
}
