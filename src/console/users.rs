//! Users: search, a user's page (profile, roles and groups, sessions,
//! identities, factors, consents, recent history) and its actions, each
//! through `manage` with the viewer as actor.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::{ConsentView, FactorView, IdentityView, SessionRowView, UserPage, UserRow, Users};
use super::{When, changed, done, path, poster, refused, render, run, urlencode};
use crate::domain::User;
use crate::error::Failure;
use crate::http::params::Params;
use crate::manage::users::UserPatch;
use crate::state::AppState;
use crate::storage::{consents, identities, roles, sessions, users};

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    done: Option<String>,
}

const PAGE: i64 = 50;

fn row(u: &User, now: i64) -> UserRow {
    UserRow {
        user_id: u.user_id.clone(),
        email: u.email.clone().unwrap_or_default(),
        name: u.name.clone().unwrap_or_default(),
        verified: u.email_verified,
        blocked: u.disabled,
        created: When::at(u.created_at, now),
    }
}

pub async fn list(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match super::reader(&state, jar, "read:users").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let text = q.q.trim().chars().take(254).collect::<String>();
        let mut f = users::Filter::default();
        match q.by.as_str() {
            "role" => f.role = text.clone(),
            "group" => f.group = text.clone(),
            "provider" => f.provider = text.clone(),
            _ => f.text = text.clone(),
        }
        let found = users::page(&state.db, &f, &q.after, PAGE + 1).await.map_err(Failure::internal)?;
        let now = state.clock.now();
        let more = found.len() as i64 > PAGE;
        let users: Vec<UserRow> = found.iter().take(PAGE as usize).map(|u| row(u, now)).collect();
        let next = match users.last() {
            Some(last) if more => Some(format!(
                "{}?q={}&by={}&after={}",
                path(&state, "/users"),
                urlencode(&text),
                urlencode(&q.by),
                urlencode(&last.user_id)
            )),
            _ => None,
        };
        let notice = super::done_notice(q.done.as_deref());
        // An address nobody has (or several attempts at one): its events in the log.
        let log_link = (users.is_empty() && text.contains('@') && v.may("read:audit"))
            .then(|| format!("{}?user={}", path(&state, "/log"), urlencode(&text)));
        let page = Users { nav: v.nav(&state, "users"), q: text, by: q.by.clone(), users, next, notice, log_link };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    done: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match super::reader(&state, jar, "read:users").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let m = state.manage();
        let u = match m.find_user(&id).await {
            Ok(u) => u,
            Err(e) => return refused(&state, &v, e),
        };
        let now = state.clock.now();
        let db = &state.db;
        let access = roles::access_of(db, &u.user_id, None).await.map_err(Failure::internal)?;
        let direct = roles::direct_of(db, &u.user_id).await.map_err(Failure::internal)?;
        let all_roles =
            m.roles().await.map_err(op)?.into_iter().map(|r| r.name).filter(|r| !direct.contains(r)).collect();
        let all_groups =
            m.groups().await.map_err(op)?.into_iter().map(|g| g.name).filter(|g| !access.groups.contains(g)).collect();
        let sessions = sessions::list_for_user(db, &u.user_id)
            .await
            .map_err(Failure::internal)?
            .into_iter()
            .filter(|s| s.expires_at > now && s.idle_expires_at > now)
            .map(|s| SessionRowView {
                device: crate::domain::device(s.user_agent.as_deref()),
                how: s.idp.clone().map(|p| format!("through {p}")).unwrap_or_else(|| s.amr.join(" + ")),
                ip: s.ip.clone().unwrap_or_else(|| "unknown".into()),
                started: When::at(s.created_at, now),
                last_seen: When::at(s.last_seen_at, now),
                sid: s.sid,
            })
            .collect();
        let identities: Vec<IdentityView> = identities::for_user(db, &u.user_id)
            .await
            .map_err(Failure::internal)?
            .into_iter()
            .map(|i| IdentityView {
                provider: i.provider,
                subject: i.subject,
                email: i.email.unwrap_or_default(),
                last_login: When::at(i.last_login_at, now),
            })
            .collect();
        let f = state.factors();
        let factors = f
            .list(&u.user_id)
            .await
            .map_err(Failure::internal)?
            .into_iter()
            .map(|x| FactorView {
                factor_id: x.factor_id,
                kind: x.kind,
                name: x.name,
                added: When::at(x.created_at, now),
            })
            .collect();
        let recovery_codes_left = f.recovery_codes_left(&u.user_id).await.map_err(Failure::internal)?;
        let consents = consents::list_for_user(db, &u.user_id)
            .await
            .map_err(Failure::internal)?
            .into_iter()
            .map(|(client, scopes, at)| ConsentView {
                client,
                scopes: scopes
                    .iter()
                    .map(|s| crate::domain::describe_scope(s).unwrap_or(s.as_str()))
                    .collect::<Vec<_>>()
                    .join("; "),
                granted: When::at(at, now),
            })
            .collect();
        let events = if v.may("read:audit") {
            super::log::recent(&state, Some(&history_key(&u)), None, 10).await?
        } else {
            Vec::new()
        };
        let page = UserPage {
            nav: v.nav(&state, "users"),
            notice: q.done.as_deref().and_then(done_words).map(str::to_string),
            user: row(&u, now),
            updated: When::at(u.updated_at, now),
            has_password: u.password_hash.is_some(),
            identities,
            direct_roles: direct,
            roles: access.roles,
            groups: access.groups,
            all_roles,
            all_groups,
            sessions,
            consents,
            factors,
            recovery_codes_left,
            events,
            history: format!("{}?user={}", path(&state, "/log"), urlencode(&history_key(&u))),
            write_users: v.may("write:users"),
            write_roles: v.may("write:roles"),
            read_audit: v.may("read:audit"),
        };
        Ok((jar, render(StatusCode::OK, &page)).into_response())
    })
    .await
}

/// How the log finds the user's events: the address (which also matches the
/// account's id, and the attempts that named only the address, as throttled
/// ones do), or the id.
fn history_key(u: &User) -> String {
    u.email.clone().unwrap_or_else(|| u.user_id.clone())
}

fn op(e: crate::manage::OpError) -> Failure {
    Failure::internal(anyhow::anyhow!(e.to_string()))
}

/// What an action did, in words (`?done=`).
fn done_words(code: &str) -> Option<&'static str> {
    Some(match code {
        "blocked" => "The user is blocked and every session of theirs ended.",
        "unblocked" => "The user can sign in again.",
        "reset-link" => "A password-reset link is on its way to the user.",
        "verify-link" => "A new verification link is on its way to the user.",
        "session" => "The session ended.",
        "sessions" => "Every session of the user ended.",
        "role-granted" => "The role was granted. The user's next token carries it.",
        "role-revoked" => "The role was taken away.",
        "group-joined" => "The user joined the group.",
        "group-left" => "The user left the group.",
        "unlinked" => "The identity was unlinked.",
        "factor-removed" => "The second factor was removed.",
        _ => return None,
    })
}

/// `POST /admin/users/{id}/{action}`.
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
        let u = match m.find_user(&id).await {
            Ok(u) => u,
            Err(e) => return refused(&state, &v, e),
        };
        let field = |k: &str| p.first(k).unwrap_or("").trim().to_string();
        let who = &v.admin;
        let back = format!("/users/{}", u.user_id);
        let (result, code, details) = match action.as_str() {
            "block" => {
                let patch = UserPatch { disabled: Some(true), ..Default::default() };
                (m.update_user(who, u.clone(), patch).await.map(drop), "blocked", serde_json::json!({}))
            }
            "unblock" => {
                let patch = UserPatch { disabled: Some(false), ..Default::default() };
                (m.update_user(who, u.clone(), patch).await.map(drop), "unblocked", serde_json::json!({}))
            }
            "reset-link" => (m.send_reset_link(who, &u).await, "reset-link", serde_json::json!({})),
            "verify-link" => (m.resend_verification(who, &u).await, "verify-link", serde_json::json!({})),
            "end-session" => {
                let sid = field("sid");
                (m.end_session(who, &u.user_id, &sid).await, "session", serde_json::json!({ "sid": sid }))
            }
            "end-sessions" => (m.end_sessions(who, &u.user_id).await.map(drop), "sessions", serde_json::json!({})),
            "grant-role" => {
                let role = field("role");
                (m.grant_role(who, &u.user_id, &role).await, "role-granted", serde_json::json!({ "role": role }))
            }
            "revoke-role" => {
                let role = field("role");
                (m.revoke_role(who, &u.user_id, &role).await, "role-revoked", serde_json::json!({ "role": role }))
            }
            "join-group" | "leave-group" => {
                let group = field("group");
                let joining = action == "join-group";
                let patch = crate::manage::directory::GroupPatch {
                    add_members: if joining { vec![u.user_id.clone()] } else { vec![] },
                    remove_members: if joining { vec![] } else { vec![u.user_id.clone()] },
                    ..Default::default()
                };
                let code = if joining { "group-joined" } else { "group-left" };
                (m.update_group(who, &group, patch).await.map(drop), code, serde_json::json!({ "group": group }))
            }
            "unlink" => {
                let (provider, subject) = (field("provider"), field("subject"));
                (m.unlink(who, &u, &provider, &subject).await, "unlinked", serde_json::json!({ "provider": provider }))
            }
            "remove-factor" => {
                let f = field("factor_id");
                (m.remove_factor(who, &u, &f).await, "factor-removed", serde_json::json!({ "factor_id": f }))
            }
            "delete" => {
                let expected = u.email.clone().unwrap_or_else(|| u.user_id.clone());
                if !field("confirm").eq_ignore_ascii_case(&expected) {
                    let msg = "The confirmation did not match the user's address; nothing was deleted.";
                    return Ok(super::message(&state, Some(&v), StatusCode::BAD_REQUEST, msg));
                }
                if let Err(e) = m.delete_user(who, &u).await {
                    return refused(&state, &v, e);
                }
                changed(&state, &v, "delete user", Some(&u), serde_json::json!({ "email": u.email }));
                return Ok((jar, done(&state, "/users", "deleted")).into_response());
            }
            _ => return Ok(super::message(&state, Some(&v), StatusCode::NOT_FOUND, "There is no such action.")),
        };
        if let Err(e) = result {
            return refused(&state, &v, e);
        }
        changed(&state, &v, &action.replace('-', " "), Some(&u), details);
        Ok((jar, done(&state, &back, code)).into_response())
    })
    .await
}
