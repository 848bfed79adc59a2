//! The log: every audit event, newest first, filtered by user, application,
//! type, outcome, IP and dates (in the viewer's time zone), paged by cursor;
//! an event opens to its full record; live mode asks for what is new every
//! few seconds (`/admin/log/feed`). A user's history is this view for one user.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::pages::{EventRow, Log, LogRows};
use super::{When, path, render, run, urlencode, viewer};
use crate::audit::Kind;
use crate::audit::search::{self, EventOut, Search, SearchError};
use crate::error::Failure;
use crate::state::AppState;

#[derive(Deserialize, Default, Clone)]
pub struct LogQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    client: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    ip: String,
    /// A day (`2026-12-06`), in the viewer's time zone.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// The viewer's offset from UTC in minutes, as JavaScript's
    /// `getTimezoneOffset()` gives it (the page's script fills it in).
    #[serde(default)]
    tzo: String,
    /// A duration back from now (`24h`) or RFC 3339.
    #[serde(default)]
    since: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    live: String,
    /// Live mode: events stored after this id.
    #[serde(default)]
    after: Option<i64>,
}

const PAGE: i64 = 50;

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A day in the viewer's zone as RFC 3339 (start of it, or the end of it).
fn day(d: &str, tzo: i64, end: bool) -> Result<Option<String>, SearchError> {
    let Some(d) = opt(d) else { return Ok(None) };
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(&d, fmt).map_err(|_| SearchError::Invalid(format!("`{d}` is not a date")))?;
    let mut t = date.midnight().assume_utc() + time::Duration::minutes(tzo.clamp(-1080, 1080));
    if end {
        t += time::Duration::days(1) - time::Duration::milliseconds(1);
    }
    Ok(t.format(&time::format_description::well_known::Rfc3339).ok())
}

fn search_of(q: &LogQuery, limit: i64) -> Result<Search, SearchError> {
    let tzo = q.tzo.trim().parse::<i64>().unwrap_or(0);
    Ok(Search {
        user: opt(&q.user),
        client: opt(&q.client),
        kind: opt(&q.kind),
        outcome: opt(&q.outcome),
        ip: opt(&q.ip),
        since: match day(&q.from, tzo, false)? {
            Some(d) => Some(d),
            None => opt(&q.since),
        },
        until: day(&q.to, tzo, true)?,
        cursor: opt(&q.cursor),
        after_id: q.after,
        limit,
    })
}

/// `rows`, with `user:ID` actors named by their address (one lookup per
/// distinct actor on the page).
pub async fn named_rows(state: &AppState, events: Vec<EventOut>) -> Result<Vec<EventRow>, Failure> {
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for actor in events.iter().filter_map(|e| e.actor.as_deref()) {
        if let Some(id) = actor.strip_prefix("user:")
            && !names.contains_key(actor)
        {
            let email = crate::storage::users::find_by_id(&state.db, id).await.map_err(Failure::internal)?;
            names.insert(actor.to_string(), email.and_then(|u| u.email).unwrap_or_else(|| actor.to_string()));
        }
    }
    let mut out = rows(state, events);
    for r in &mut out {
        if let Some(n) = names.get(&r.actor) {
            r.actor = n.clone();
        }
    }
    Ok(out)
}

pub fn rows(state: &AppState, events: Vec<EventOut>) -> Vec<EventRow> {
    let now = state.clock.now();
    events
        .into_iter()
        .map(|e| {
            let at_ms = time::OffsetDateTime::parse(&e.time, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .unwrap_or_default();
            let record = serde_json::to_string_pretty(&e).unwrap_or_default();
            let user = e.email.clone().or(e.user_id.clone()).unwrap_or_default();
            let operation = e
                .details
                .as_ref()
                .and_then(|d| d.get("operation"))
                .and_then(|o| o.as_str())
                .unwrap_or_default()
                .to_string();
            EventRow {
                id: e.id,
                when: When::at_ms(at_ms, now),
                failed: e.outcome == "failure",
                outcome: e.outcome,
                kind: e.kind,
                reason: e.reason.unwrap_or_default(),
                user_link: e.user_id.as_deref().map(|u| path(state, &format!("/users/{u}"))).unwrap_or_default(),
                user,
                client: e.client_id.unwrap_or_default(),
                ip: e.ip.unwrap_or_default(),
                user_agent: e.user_agent.unwrap_or_default(),
                method: e.method.unwrap_or_default(),
                actor: e.actor.unwrap_or_default(),
                operation,
                record,
            }
        })
        .collect()
}

/// The newest `n` events of a user, or of a type.
pub async fn recent(
    state: &AppState,
    user: Option<&str>,
    kind: Option<Kind>,
    n: i64,
) -> Result<Vec<EventRow>, Failure> {
    let s = Search {
        user: user.map(str::to_string),
        kind: kind.map(|k| k.as_str().to_string()),
        limit: n,
        ..Search::default()
    };
    match search::run(&state.db, &state.audit, &s, state.clock.now()).await {
        Ok((events, _)) => named_rows(state, events).await,
        Err(SearchError::Storage(e)) => Err(Failure::internal(e)),
        Err(SearchError::Invalid(_)) => Ok(Vec::new()),
    }
}

/// The query string of `q` (its filters), with `cursor` or `after`.
fn query(q: &LogQuery) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("user", &q.user),
        ("client", &q.client),
        ("type", &q.kind),
        ("outcome", &q.outcome),
        ("ip", &q.ip),
        ("from", &q.from),
        ("to", &q.to),
        ("tzo", &q.tzo),
        ("since", &q.since),
        ("live", &q.live),
    ] {
        if !v.trim().is_empty() {
            s.append_pair(k, v.trim());
        }
    }
    s.finish()
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, jar) = match super::reader(&state, jar, "read:audit").await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
        let mut q = q;
        q.after = None;
        let (events, next, error) = match search_of(&q, PAGE) {
            Ok(s) => match search::run(&state.db, &state.audit, &s, state.clock.now()).await {
                Ok((events, next)) => (events, next, None),
                Err(SearchError::Invalid(m)) => (Vec::new(), None, Some(m)),
                Err(SearchError::Storage(e)) => return Err(Failure::internal(e)),
            },
            Err(SearchError::Invalid(m)) => (Vec::new(), None, Some(m)),
            Err(SearchError::Storage(e)) => return Err(Failure::internal(e)),
        };
        let newest = events.iter().map(|e| e.id).max().unwrap_or(0);
        let base = path(&state, "/log");
        let next = next.map(|c| format!("{base}?{}&cursor={}", query(&q), urlencode(&c)));
        let mut clients: Vec<(String, String)> = crate::storage::clients::list(&state.db)
            .await
            .map_err(Failure::internal)?
            .into_iter()
            .map(|c| (c.client_id, c.name))
            .collect();
        clients.push((crate::clients::ACCOUNT_CLIENT_ID.into(), "Your account (built in)".into()));
        clients.push((super::CONSOLE_CLIENT_ID.into(), "Admin console (built in)".into()));
        let title = if q.user.trim().is_empty() { "Log".to_string() } else { format!("History of {}", q.user.trim()) };
        let live = q.live == "1";
        let page = Log {
            nav: v.nav(&state, "log"),
            title,
            user: q.user.clone(),
            client: q.client.clone(),
            kind: q.kind.clone(),
            outcome: q.outcome.clone(),
            ip: q.ip.clone(),
            from: q.from.clone(),
            to: q.to.clone(),
            tzo: q.tzo.clone(),
            since: q.since.clone(),
            kinds: Kind::ALL.iter().map(|k| k.as_str().to_string()).collect(),
            clients,
            events: named_rows(&state, events).await?,
            next,
            live,
            live_url: format!("{}?{}", path(&state, "/log/feed"), query(&q)),
            newest,
            error,
        };
        let status = if page.error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        Ok((jar, render(status, &page)).into_response())
    })
    .await
}

/// Live mode: the rows of events stored after `after` (HTML, newest first).
pub async fn feed(
    State(state): State<AppState>,
    jar: CookieJar,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    run(&state, async {
        let (v, _jar) = match viewer(&state, jar).await? {
            Ok(x) => x,
            Err(_) => return Ok(StatusCode::UNAUTHORIZED.into_response()),
        };
        if !v.may("read:audit") {
            return Ok(StatusCode::FORBIDDEN.into_response());
        }
        let mut q = q;
        q.cursor.clear();
        q.after = Some(q.after.unwrap_or(0));
        let events = match search_of(&q, 200) {
            Ok(s) => match search::run(&state.db, &state.audit, &s, state.clock.now()).await {
                Ok((events, _)) => events,
                Err(SearchError::Invalid(m)) => return Ok((StatusCode::BAD_REQUEST, m).into_response()),
                Err(SearchError::Storage(e)) => return Err(Failure::internal(e)),
            },
            Err(SearchError::Invalid(m)) => return Ok((StatusCode::BAD_REQUEST, m).into_response()),
            Err(SearchError::Storage(e)) => return Err(Failure::internal(e)),
        };
        Ok(render(StatusCode::OK, &LogRows { events: named_rows(&state, events).await? }))
    })
    .await
}
