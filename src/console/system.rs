//! Providers (from the config file: their callback URLs and a check that
//! reaches them, as `sesame provider check` does) and signing keys (their
//! state and age; rotation).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::{KeyRow, KeysPage, ProviderRow, ProvidersPage};
use super::{When, changed, done, poster, refused, render, run};
use crate::error::Failure;
use crate::http::params::Params;
use crate::state::AppState;

fn rows(state: &AppState, checked: Option<(&str, bool, String)>) -> Vec<ProviderRow> {
    state
        .federation
        .all()
        .iter()
        .map(|p| ProviderRow {
            id: p.id().to_string(),
            name: p.name.clone(),
            kind: p.kind().as_str().to_string(),
            enabled: p.cfg.enabled,
            callback: p.callback.clone(),
            issuer: p.issuer().map(str::to_string).unwrap_or_default(),
            check: checked.as_ref().filter(|c| c.0 == p.id()).map(|c| (c.1, c.2.clone())),
        })
        .collect()
}

pub async fn providers(State(state): State<AppState>, jar: CookieJar) -> Response {
    run(&state, async {
        let (v, jar) = match super::reader(&state, jar, "read:clients").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let page = ProvidersPage { nav: v.nav(&state, "providers"), providers: rows(&state, None) };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

/// "Check": discovery, keys and the secret, as `sesame provider check`.
pub async fn check(State(state): State<AppState>, jar: CookieJar, Path(id): Path<String>, p: Params) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        if !v.may("read:clients") {
            return Ok(super::message(
                &state,
                Some(&v),
                StatusCode::FORBIDDEN,
                "Checking providers needs `read:clients`.",
            ));
        }
        let Some(provider) = state.federation.get(&id) else {
            return Ok(super::message(&state, Some(&v), StatusCode::NOT_FOUND, "There is no such provider."));
        };
        let (ok, detail) = match provider.check(state.clock.now()).await {
            Ok(s) => (true, s),
            Err(why) => (false, why),
        };
        let page = ProvidersPage { nav: v.nav(&state, "providers"), providers: rows(&state, Some((&id, ok, detail))) };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

pub async fn keys(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match super::reader(&state, jar, "read:keys").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let now = state.clock.now();
        let list = match state.manage().keys(state.keys.max_token_ttl()).await {
            Ok(k) => k,
            Err(e) => return refused(&state, &v, e),
        };
        let keys = list
            .into_iter()
            .map(|k| KeyRow {
                kid: k.kid,
                alg: k.alg.to_string(),
                generation: k.generation,
                status: serde_json::to_value(k.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                created: When::at(k.created_at, now),
                activates: When::at(k.activates_at, now),
            })
            .collect();
        let page = KeysPage {
            nav: v.nav(&state, "keys"),
            notice: super::done_notice(q.done.as_deref()),
            keys,
            can_write: v.may("write:keys"),
        };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

pub async fn rotate(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let algs: Vec<String> = p.first("alg").map(|a| vec![a.to_string()]).unwrap_or_default();
        match state.manage().rotate_keys(&v.admin, &algs).await {
            Ok(made) => {
                let kids: Vec<String> = made.iter().map(|k| k.kid.clone()).collect();
                changed(&state, &v, "rotate signing keys", None, serde_json::json!({ "kids": kids }));
                Ok::<_, Failure>((jar, done(&state, "/keys", "rotated")).into_response())
            }
            Err(e) => refused(&state, &v, e),
        }
    })
    .await
}
