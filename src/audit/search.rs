//! Searching the log, shared by `sesame audit search` and `GET /api/v1/audit`:
//! the filters as people type them (an email or a user id, `2h` or RFC 3339),
//! turned into an indexed query, newest first, with an opaque cursor.

use serde::Serialize;

use super::{Auditor, Kind};
use crate::storage::audit::{self as store, Filter, Stored};
use crate::storage::{Db, StorageError, users};

#[derive(Debug, Clone, Default)]
pub struct Search {
    pub user: Option<String>,
    pub client: Option<String>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
    pub ip: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub cursor: Option<String>,
    /// Only events stored after this id (a live view).
    pub after_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One event as the CLI and the API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventOut {
    pub id: i64,
    /// RFC 3339 with milliseconds.
    pub time: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// SHA-256 of the session id (first 32 hex digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl From<Stored> for EventOut {
    fn from(s: Stored) -> EventOut {
        EventOut {
            id: s.id,
            time: rfc3339_ms(s.at_ms),
            kind: s.kind,
            outcome: s.outcome,
            user_id: s.user_id,
            email: s.email,
            client_id: s.client_id,
            session: s.sid_hash,
            ip: s.ip,
            user_agent: s.user_agent,
            request_id: s.request_id,
            method: s.method,
            reason: s.reason,
            actor: s.actor,
            details: s.details,
        }
    }
}

/// RFC 3339 in UTC with exactly three fraction digits, so times sort as text.
fn rfc3339_ms(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Runs `s`; returns the events and the cursor of the next page.
pub async fn run(
    main: &Db,
    auditor: &Auditor,
    s: &Search,
    now: i64,
) -> Result<(Vec<EventOut>, Option<String>), SearchError> {
    let f = filter(main, s, now).await?;
    let limit = s.limit.clamp(1, 1000);
    let mut rows = store::search(auditor.db(), &f, limit + 1).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.at_ms, r.id))
    } else {
        None
    };
    Ok((rows.into_iter().map(EventOut::from).collect(), next))
}

/// The storage filter for `s`. A `user` with an `@` matches the address
/// (stored normalised) and, when it names an account, that account's id.
pub async fn filter(main: &Db, s: &Search, now: i64) -> Result<Filter, SearchError> {
    let mut f = Filter::default();
    if let Some(u) = s.user.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        if u.contains('@') {
            f.email = Some(crate::domain::normalize_email(u));
            f.user_id = users::find_by_email(main, u).await?.map(|x| x.user_id);
        } else {
            f.user_id = Some(u.to_string());
        }
    }
    if let Some(k) = s.kind.as_deref() {
        let kind = Kind::parse(k).ok_or_else(|| {
            let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            SearchError::Invalid(format!("unknown event type `{k}` (one of: {})", all.join(", ")))
        })?;
        f.kind = Some(kind.as_str().to_string());
    }
    if let Some(o) = s.outcome.as_deref() {
        if o != "success" && o != "failure" {
            return Err(SearchError::Invalid(format!("outcome `{o}` is neither success nor failure")));
        }
        f.outcome = Some(o.to_string());
    }
    if let Some(ip) = s.ip.as_deref() {
        let parsed: std::net::IpAddr =
            ip.trim().parse().map_err(|_| SearchError::Invalid(format!("`{ip}` is not an IP address")))?;
        f.ip = Some(parsed.to_string());
    }
    f.client_id = s.client.clone();
    f.since_ms = s.since.as_deref().map(|v| parse_time(v, now, "since")).transpose()?;
    f.until_ms = s.until.as_deref().map(|v| parse_time(v, now, "until")).transpose()?;
    f.before = s.cursor.as_deref().filter(|c| !c.is_empty()).map(decode_cursor).transpose()?;
    f.after_id = s.after_id;
    Ok(f)
}

/// `RFC 3339`, or a duration back from now (`90s`, `30m`, `2h`, `7d`, `2w`),
/// in milliseconds.
pub fn parse_time(v: &str, now: i64, what: &str) -> Result<i64, SearchError> {
    let v = v.trim();
    if let Ok(t) = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let bad = || SearchError::Invalid(format!("--{what} `{v}`: use RFC 3339 or a duration like 30m, 2h, 7d"));
    let split = v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = v.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    Ok((now - n.saturating_mul(secs)).saturating_mul(1000))
}

fn encode_cursor(at_ms: i64, id: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at_ms}.{id}"))
}

fn decode_cursor(c: &str) -> Result<(i64, i64), SearchError> {
    use base64::Engine;
    let bad = || SearchError::Invalid("the cursor is not one this server gave out".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let s = String::from_utf8(raw).map_err(|_| bad())?;
    let (a, b) = s.split_once('.').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_cursors() {
        assert_eq!(parse_time("2h", 10_000, "since").ok(), Some((10_000 - 7200) * 1000));
        assert_eq!(parse_time("2026-01-01T00:00:00Z", 0, "since").ok(), Some(1_767_225_600_000));
        assert!(parse_time("yesterday", 0, "since").is_err());
        assert!(parse_time("5y", 0, "since").is_err());
        assert_eq!(decode_cursor(&encode_cursor(123, 45)).ok(), Some((123, 45)));
        assert!(decode_cursor("!!").is_err());
        assert_eq!(rfc3339_ms(1_767_225_600_080), "2026-01-01T00:00:00.080Z");
    }
}
