//! Roles and groups: lists, creating, changing and deleting them, and who
//! holds what; through `manage`, as the management API does.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::{GroupPage, GroupsPage, RolePage, RolesPage};
use super::{Viewer, changed, done, poster, reader, refused, render, run};
use crate::error::Failure;
use crate::http::params::Params;
use crate::manage::directory::{ApiPermissions, GroupPatch, NewRole, RolePatch};
use crate::manage::{OpError, Result as OpResult};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub(super) struct Q {
    #[serde(default)]
    pub(super) id: String,
    #[serde(default)]
    pub(super) done: Option<String>,
}

pub(super) fn notice(d: &Option<String>) -> Option<String> {
    super::done_notice(d.as_deref())
}

pub(super) fn words(p: &Params, k: &str) -> Vec<String> {
    p.first(k).unwrap_or("").split_whitespace().map(str::to_string).collect()
}

/// Runs a change and answers: back to `to` with `word`, or the refusal.
pub(super) fn answer(
    state: &AppState,
    v: &Viewer,
    jar: CookieJar,
    r: OpResult<()>,
    (op, to, word): (&str, &str, &str),
    d: serde_json::Value,
) -> Result<Response, Failure> {
    match r {
        Ok(()) => {
            changed(state, v, op, None, d);
            Ok((jar, done(state, to, word)).into_response())
        }
        Err(e) => refused(state, v, e),
    }
}

/// Users as (id, what the page shows): their address for a viewer who may
/// read users, their id otherwise; at most 500.
async fn labelled(state: &AppState, v: &Viewer, ids: Vec<String>) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for id in ids.into_iter().take(500) {
        let label = if v.may("read:users") {
            crate::storage::users::find_by_id(&state.db, &id).await.map_err(Failure::internal)?.and_then(|u| u.email)
        } else {
            None
        };
        out.push((id.clone(), label.unwrap_or(id)));
    }
    Ok(out)
}

pub async fn roles(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<Q>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match reader(&state, jar, "read:roles").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let roles = match state.manage().roles().await {
            Ok(r) => r,
            Err(e) => return refused(&state, &v, e),
        };
        let roles = roles
            .into_iter()
            .map(|r| {
                let perms: Vec<String> =
                    r.permissions.iter().map(|p| format!("{} ({})", p.permissions.join(" "), p.api)).collect();
                (r.name, if perms.is_empty() { "none".into() } else { perms.join("; ") })
            })
            .collect();
        let page =
            RolesPage { nav: v.nav(&state, "roles"), notice: notice(&q.done), roles, can_write: v.may("write:roles") };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

pub async fn create_role(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let name = p.first("name").unwrap_or("").trim().to_string();
        let r = state.manage().create_role(&v.admin, NewRole { name: name.clone(), permissions: None }).await.map(drop);
        answer(
            &state,
            &v,
            jar,
            r,
            ("create role", &format!("/roles/{name}"), "created"),
            serde_json::json!({ "role": name }),
        )
    })
    .await
}

pub async fn role(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(name): Path<String>,
    q: Result<Query<Q>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match reader(&state, jar, "read:roles").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let m = state.manage();
        let role = match m.role(&name).await {
            Ok(r) => r,
            Err(e) => return refused(&state, &v, e),
        };
        let (user_ids, groups) = crate::storage::roles::holders(&state.db, &name).await.map_err(Failure::internal)?;
        let users = labelled(&state, &v, user_ids).await?;
        let apis = crate::storage::apis::list(&state.db)
            .await
            .map_err(Failure::internal)?
            .into_iter()
            .map(|a| a.identifier)
            .collect();
        let page = RolePage {
            nav: v.nav(&state, "roles"),
            notice: notice(&q.done),
            built_in: name == crate::access::ADMIN_ROLE || name == crate::access::SUPPORT_ROLE,
            name: role.name,
            permissions: role
                .permissions
                .into_iter()
                .map(|p| {
                    let words: Vec<&str> =
                        p.permissions.iter().filter_map(|x| crate::access::describe_permission(x)).collect();
                    let words = if p.api.ends_with(crate::access::MANAGEMENT_PREFIX) {
                        words.join("; ")
                    } else {
                        String::new()
                    };
                    (p.api, p.permissions.join(" "), words)
                })
                .collect(),
            users,
            groups,
            apis,
            can_write: v.may("write:roles"),
        };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

pub async fn save_role(State(state): State<AppState>, jar: CookieJar, Path(name): Path<String>, p: Params) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let m = state.manage();
        let perms =
            ApiPermissions { api: p.first("api").unwrap_or("").to_string(), permissions: words(&p, "permissions") };
        let d = serde_json::json!({ "role": name, "api": perms.api, "permissions": perms.permissions });
        let to = format!("/roles/{name}");
        let r = match p.first("do") {
            Some("delete") => {
                let r = m.delete_role(&v.admin, &name).await;
                return answer(&state, &v, jar, r, ("delete role", "/roles", "deleted"), d);
            }
            Some("grant") => m.update_role(&v.admin, &name, RolePatch { grant: Some(perms), revoke: None }).await,
            Some("revoke") => m.update_role(&v.admin, &name, RolePatch { grant: None, revoke: Some(perms) }).await,
            _ => Err(OpError::Invalid("nothing to do".into())),
        };
        answer(&state, &v, jar, r.map(drop), ("change role", &to, "saved"), d)
    })
    .await
}

pub async fn groups(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<Q>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match reader(&state, jar, "read:roles").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let groups = match state.manage().groups().await {
            Ok(g) => g,
            Err(e) => return refused(&state, &v, e),
        };
        let groups = groups.into_iter().map(|g| (g.name, g.members.len(), g.roles.join(", "))).collect();
        let page = GroupsPage {
            nav: v.nav(&state, "groups"),
            notice: notice(&q.done),
            groups,
            can_write: v.may("write:roles"),
        };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

pub async fn create_group(State(state): State<AppState>, jar: CookieJar, p: Params) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let name = p.first("name").unwrap_or("").trim().to_string();
        let r = state.manage().create_group(&v.admin, &name).await.map(drop);
        answer(
            &state,
            &v,
            jar,
            r,
            ("create group", &format!("/groups/{name}"), "created"),
            serde_json::json!({ "group": name }),
        )
    })
    .await
}

pub async fn group(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(name): Path<String>,
    q: Result<Query<Q>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match reader(&state, jar, "read:roles").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let m = state.manage();
        let g = match m.group(&name).await {
            Ok(g) => g,
            Err(e) => return refused(&state, &v, e),
        };
        let members = labelled(&state, &v, g.members).await?;
        let other_roles = match m.roles().await {
            Ok(r) => r.into_iter().map(|r| r.name).filter(|r| !g.roles.contains(r)).collect(),
            Err(e) => return refused(&state, &v, e),
        };
        let page = GroupPage {
            nav: v.nav(&state, "groups"),
            notice: notice(&q.done),
            name: g.name,
            members,
            roles: g.roles,
            other_roles,
            can_write: v.may("write:roles"),
        };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

pub async fn save_group(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(name): Path<String>,
    p: Params,
) -> Response {
    run(&state, async {
        let (v, jar) = match poster(&state, jar, &p).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let m = state.manage();
        let one = |k: &str| p.first(k).map(|s| vec![s.trim().to_string()]).unwrap_or_default();
        let d = serde_json::json!({ "group": name, "do": p.first("do") });
        let patch = match p.first("do") {
            Some("delete") => {
                let r = m.delete_group(&v.admin, &name).await;
                return answer(&state, &v, jar, r, ("delete group", "/groups", "deleted"), d);
            }
            Some("add-member") => GroupPatch { add_members: one("member"), ..Default::default() },
            Some("remove-member") => GroupPatch { remove_members: one("member"), ..Default::default() },
            Some("add-role") => GroupPatch { add_roles: one("role"), ..Default::default() },
            Some("remove-role") => GroupPatch { remove_roles: one("role"), ..Default::default() },
            _ => return refused(&state, &v, OpError::Invalid("nothing to do".into())),
        };
        let r = m.update_group(&v.admin, &name, patch).await.map(drop);
        answer(&state, &v, jar, r, ("change group", &format!("/groups/{name}"), "saved"), d)
    })
    .await
}
