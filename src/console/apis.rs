//! APIs: the list, registering one, its settings and who holds what
//! (applications that may call it, roles carrying its permissions).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::directory::{Q, answer, notice, words};
use super::pages::{ApiPage, ApisPage};
use super::{poster, reader, refused, render, run, urlencode};
use crate::error::Failure;
use crate::http::params::Params;
use crate::manage::OpError;
use crate::manage::directory::{ApiPatch, NewApi};
use crate::state::AppState;

pub async fn apis(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<Q>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match reader(&state, jar, "read:clients").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let apis = match state.manage().apis().await {
            Ok(a) => a,
            Err(e) => return refused(&state, &v, e),
        };
        let page =
            ApisPage { nav: v.nav(&state, "apis"), notice: notice(&q.done), apis, can_write: v.may("write:clients") };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

pub async fn create_api(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let identifier = p.first("identifier").unwrap_or("").trim().to_string();
        let n = NewApi {
            identifier: identifier.clone(),
            name: p.first("name").unwrap_or("").trim().to_string(),
            permissions: words(&p, "permissions"),
            token_ttl_secs: None,
            alg: None,
        };
        let r = state.manage().create_api(&v.admin, n).await.map(drop);
        let to = format!("/api?id={}", urlencode(&identifier));
        answer(&state, &v, jar, r, ("register API", &to, "registered"), serde_json::json!({ "api": identifier }))
    })
    .await
}

pub async fn api(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<Q>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match reader(&state, jar, "read:clients").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let m = state.manage();
        let api = match m.api(&q.id).await {
            Ok(a) => a,
            Err(e) => return refused(&state, &v, e),
        };
        let mut clients = Vec::new();
        for c in crate::storage::clients::list(&state.db).await.map_err(Failure::internal)? {
            if let Some(p) = crate::storage::apis::client_grant(&state.db, &c.client_id, &api.identifier)
                .await
                .map_err(Failure::internal)?
            {
                clients.push((c.client_id, if p.is_empty() { "no permissions".into() } else { p.join(" ") }));
            }
        }
        let roles = m
            .roles()
            .await
            .map_err(|e| Failure::internal(anyhow::anyhow!(e.to_string())))?
            .into_iter()
            .filter_map(|r| {
                r.permissions.into_iter().find(|p| p.api == api.identifier).map(|p| (r.name, p.permissions.join(" ")))
            })
            .collect();
        let page = ApiPage {
            nav: v.nav(&state, "apis"),
            notice: notice(&q.done),
            permissions: api.permissions.join(" "),
            ttl: api.token_ttl_secs.map(|t| t.to_string()).unwrap_or_default(),
            alg: api.alg.clone().unwrap_or_default(),
            api,
            clients,
            roles,
            can_write: v.may("write:clients"),
        };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

pub async fn save_api(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<Q>, axum::extract::rejection::QueryRejection>,
    p: Params,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let m = state.manage();
        let d = serde_json::json!({ "api": q.id });
        if p.first("do") == Some("delete") {
            let r = m.delete_api(&v.admin, &q.id).await;
            return answer(&state, &v, jar, r, ("delete API", "/apis", "deleted"), d);
        }
        let ttl = match p.first("token_ttl_secs").map(|t| t.trim().parse::<u64>()) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => {
                return refused(&state, &v, OpError::Invalid("the token lifetime is a number of seconds".into()));
            }
        };
        let patch = ApiPatch {
            name: p.first("name").map(|s| s.trim().to_string()),
            permissions: Some(words(&p, "permissions")),
            token_ttl_secs: ttl,
            alg: p.first("alg").map(str::to_string),
        };
        let r = m.update_api(&v.admin, &q.id, patch).await.map(drop);
        let to = format!("/api?id={}", urlencode(&q.id));
        answer(&state, &v, jar, r, ("change API", &to, "saved"), d)
    })
    .await
}
