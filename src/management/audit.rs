//! `GET /api/v1/audit`: the audit log, newest first, with the same filters as
//! `sesame audit search`, cursor-paginated. Needs `read:audit`.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::caller;
use super::problem::Problem;
use crate::audit::search::{self, Search};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// A user id or an email address (also an address typed in a failed attempt).
    pub user: Option<String>,
    pub client: Option<String>,
    /// An event type, e.g. `login_failure`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    pub ip: Option<String>,
    /// RFC 3339, or a duration back from now: `30m`, `2h`, `7d`.
    pub since: Option<String>,
    pub until: Option<String>,
    /// 1-200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<search::EventOut>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Search the audit log.
#[utoipa::path(get, path = "/audit", params(AuditQuery), responses((status = 200, body = AuditPage)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    caller(&state, &headers, "read:audit")?;
    let Query(q) = q.map_err(|e| Problem::bad_request(e.body_text()))?;
    let s = Search {
        user: q.user,
        client: q.client,
        kind: q.kind,
        outcome: q.outcome,
        ip: q.ip,
        since: q.since,
        until: q.until,
        cursor: q.cursor,
        after_id: None,
        limit: i64::from(q.limit.unwrap_or(50).clamp(1, 200)),
    };
    let (events, next_cursor) =
        search::run(&state.db, &state.audit, &s, state.clock.now()).await.map_err(|e| match e {
            search::SearchError::Invalid(m) => Problem::bad_request(m),
            search::SearchError::Storage(e) => e.into(),
        })?;
    Ok(axum::Json(AuditPage { events, next_cursor }).into_response())
}
