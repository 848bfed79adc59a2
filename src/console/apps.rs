//! Applications: the list, registering one (a confidential one's secret
//! shown once), its settings, a new secret, deleting it. Clients from the
//! config file are shown read-only, saying why.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::{AppForm, AppRow, Apps, SecretShown};
use super::{Viewer, changed, done, path, poster, refused, render, run};
use crate::clients::{self, ClientSpec};
use crate::domain::Client;
use crate::error::Failure;
use crate::http::params::Params;
use crate::manage::clients::ClientPatch;
use crate::manage::directory::ApiPermissions;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

const GRANTS: [(&str, &str); 3] = [
    ("authorization_code", "Users sign in (authorization code with PKCE)"),
    ("refresh_token", "Refresh tokens"),
    ("client_credentials", "The application calls APIs as itself (client credentials)"),
];

fn notice(d: Option<&str>) -> Option<String> {
    super::done_notice(d)
}

pub async fn list(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match super::reader(&state, jar, "read:clients").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let apps = crate::storage::clients::list(&state.db)
            .await
            .map_err(Failure::internal)?
            .into_iter()
            .map(|c| AppRow {
                kind: if c.public { "public" } else { "confidential" },
                from_config: c.source == "config",
                client_id: c.client_id,
                name: c.name,
            })
            .collect();
        let page = Apps {
            nav: v.nav(&state, "apps"),
            notice: notice(q.done.as_deref()),
            apps,
            can_write: v.may("write:clients"),
        };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

async fn form(state: &AppState, v: &Viewer, c: Option<&Client>, notice: Option<String>) -> Result<AppForm, Failure> {
    let spec = c.map(clients::spec_of).unwrap_or_else(|| ClientSpec {
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        ..ClientSpec::default()
    });
    let apis = match c {
        Some(c) => crate::storage::apis::client_grants(&state.db, &c.client_id).await.map_err(Failure::internal)?,
        None => Vec::new(),
    };
    let all_apis = crate::storage::apis::list(&state.db).await.map_err(Failure::internal)?;
    let lines = |l: &[String]| l.join("\n");
    Ok(AppForm {
        nav: v.nav(state, "apps"),
        notice,
        new: c.is_none(),
        read_only: c
            .filter(|c| c.source == "config")
            .map(|_| "This application is declared in the config file: change it there (a change here would be undone at the next start).".to_string()),
        can_write: v.may("write:clients"),
        client_id: spec.client_id.clone().unwrap_or_default(),
        name: spec.name.clone(),
        public: spec.public,
        first_party: spec.first_party,
        redirect_uris: lines(&spec.redirect_uris),
        post_logout_redirect_uris: lines(&spec.post_logout_redirect_uris),
        web_origins: lines(&spec.web_origins),
        grant_types: GRANTS.iter().map(|(g, words)| (*g, *words, spec.grant_types.iter().any(|x| x == g))).collect(),
        id_token_alg: spec.id_token_alg.map(|a| a.as_str().to_string()).unwrap_or_default(),
        refresh_leeway: spec.refresh_leeway_secs.map(|s| format!("{s} seconds")).unwrap_or_else(|| "the default".into()),
        require_roles: lines(&spec.require_roles),
        require_groups: lines(&spec.require_groups),
        require_mfa: spec.require_mfa,
        apis: apis.into_iter().map(|(a, p)| (a, p.join(" "))).collect(),
        all_apis: all_apis.into_iter().map(|a| a.identifier).collect(),
    })
}

pub async fn new(State(state): State<AppState>, jar: CookieJar) -> Response {
    run(&state, async {
        let (v, jar) = match super::reader(&state, jar, "write:clients").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        Ok((jar, render(StatusCode::OK, &form(&state, &v, None, None).await?)).into_response())
    })
    .await
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    q: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match super::reader(&state, jar, "read:clients").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let c = match state.manage().find_client(&id).await {
            Ok(c) => c,
            Err(e) => return refused(&state, &v, e),
        };
        Ok((jar, render(StatusCode::OK, &form(&state, &v, Some(&c), notice(q.done.as_deref())).await?)).into_response())
    })
    .await
}

fn lines(p: &Params, k: &str) -> Vec<String> {
    p.first(k).unwrap_or("").lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// The API grant the form asks for, if any.
fn api_grant(p: &Params) -> Option<ApiPermissions> {
    let api = p.first("grant_api")?.trim().to_string();
    let permissions = p.first("grant_permissions").unwrap_or("").split_whitespace().map(str::to_string).collect();
    Some(ApiPermissions { api, permissions })
}

pub async fn create(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let public = p.first("kind") == Some("public");
        let spec = ClientSpec {
            client_id: p.first("client_id").map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
            name: p.first("name").unwrap_or("").trim().to_string(),
            public,
            first_party: p.first("first_party") == Some("1"),
            redirect_uris: lines(&p, "redirect_uris"),
            post_logout_redirect_uris: lines(&p, "post_logout_redirect_uris"),
            web_origins: lines(&p, "web_origins"),
            grant_types: p.all("grant_types").into_iter().map(str::to_string).collect(),
            id_token_alg: match p.first("id_token_alg") {
                Some(a) => match a.parse() {
                    Ok(a) => Some(a),
                    Err(e) => return Ok(super::message(&state, Some(&v), StatusCode::BAD_REQUEST, &e)),
                },
                None => None,
            },
            token_endpoint_auth_method: Some(if public { "none" } else { "client_secret_basic" }.into()),
            require_roles: lines(&p, "require_roles"),
            require_groups: lines(&p, "require_groups"),
            require_mfa: p.first("require_mfa") == Some("1"),
            ..ClientSpec::default()
        };
        let m = state.manage();
        // The grant's ceiling before anything is stored.
        if let Some(g) = api_grant(&p)
            && let Err(e) = m.within(&v.admin, &g.api, &g.permissions)
        {
            return refused(&state, &v, e);
        }
        let (c, secret) = match m.create_client(&v.admin, spec).await {
            Ok(x) => x,
            Err(e) => return refused(&state, &v, e),
        };
        if let Some(g) = api_grant(&p) {
            let patch = ClientPatch { grant: Some(g), ..Default::default() };
            if let Err(e) = m.update_client(&v.admin, c.clone(), patch).await {
                // A refused grant leaves no client behind (as a refused API request).
                m.delete_client(&v.admin, &c).await.map_err(|e| Failure::internal(anyhow::anyhow!(e.to_string())))?;
                return refused(&state, &v, e);
            }
        }
        changed(&state, &v, "register application", None, serde_json::json!({ "client_id": c.client_id }));
        let next = path(&state, &format!("/apps/{}", c.client_id));
        match secret {
            Some(secret) => {
                let page = SecretShown { nav: v.nav(&state, "apps"), client_id: c.client_id, secret, next };
                Ok((jar, render(StatusCode::CREATED, &page)).into_response())
            }
            None => Ok((jar, done(&state, &format!("/apps/{}", c.client_id), "registered")).into_response()),
        }
    })
    .await
}

pub async fn save(State(state): State<AppState>, jar: CookieJar, Path(id): Path<String>, p: Params) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let m = state.manage();
        let old = match m.find_client(&id).await {
            Ok(c) => c,
            Err(e) => return refused(&state, &v, e),
        };
        let patch = ClientPatch {
            name: p.first("name").map(|s| s.trim().to_string()),
            redirect_uris: Some(lines(&p, "redirect_uris")),
            post_logout_redirect_uris: Some(lines(&p, "post_logout_redirect_uris")),
            web_origins: Some(lines(&p, "web_origins")),
            grant_types: Some(p.all("grant_types").into_iter().map(str::to_string).collect()),
            id_token_alg: Some(p.first("id_token_alg").unwrap_or("").to_string()),
            require_roles: Some(lines(&p, "require_roles")),
            require_groups: Some(lines(&p, "require_groups")),
            require_mfa: Some(p.first("require_mfa") == Some("1")),
            grant: api_grant(&p),
            ..Default::default()
        };
        if let Err(e) = m.update_client(&v.admin, old, patch).await {
            return refused(&state, &v, e);
        }
        changed(&state, &v, "change application", None, serde_json::json!({ "client_id": id }));
        Ok((jar, done(&state, &format!("/apps/{id}"), "saved")).into_response())
    })
    .await
}

pub async fn act(
    State(state): State<AppState>,
    jar: CookieJar,
    Path((id, action)): Path<(String, String)>,
    p: Params,
) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let m = state.manage();
        match action.as_str() {
            "rotate-secret" => {
                let secret = match m.rotate_secret(&v.admin, &id).await {
                    Ok(s) => s,
                    Err(e) => return refused(&state, &v, e),
                };
                changed(&state, &v, "rotate application secret", None, serde_json::json!({ "client_id": id }));
                let next = path(&state, &format!("/apps/{id}"));
                let page = SecretShown { nav: v.nav(&state, "apps"), client_id: id, secret, next };
                Ok((jar, render(StatusCode::OK, &page)).into_response())
            }
            "remove-api" => {
                let c = match m.find_client(&id).await {
                    Ok(c) => c,
                    Err(e) => return refused(&state, &v, e),
                };
                let api = p.first("api").unwrap_or("").to_string();
                let patch = ClientPatch { remove_api: Some(api.clone()), ..Default::default() };
                if let Err(e) = m.update_client(&v.admin, c, patch).await {
                    return refused(&state, &v, e);
                }
                changed(
                    &state,
                    &v,
                    "change application",
                    None,
                    serde_json::json!({ "client_id": id, "remove_api": api }),
                );
                Ok((jar, done(&state, &format!("/apps/{id}"), "saved")).into_response())
            }
            "delete" => {
                let c = match m.find_client(&id).await {
                    Ok(c) => c,
                    Err(e) => return refused(&state, &v, e),
                };
                if p.first("confirm").map(str::trim) != Some(c.client_id.as_str()) {
                    let msg = "The confirmation did not match the client id; nothing was deleted.";
                    return Ok(super::message(&state, Some(&v), StatusCode::BAD_REQUEST, msg));
                }
                if let Err(e) = m.delete_client(&v.admin, &c).await {
                    return refused(&state, &v, e);
                }
                changed(&state, &v, "delete application", None, serde_json::json!({ "client_id": id }));
                Ok((jar, done(&state, "/apps", "deleted")).into_response())
            }
            _ => Ok(super::message(&state, Some(&v), StatusCode::NOT_FOUND, "There is no such action.")),
        }
    })
    .await
}
