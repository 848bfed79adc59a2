//! Importing users from Auth0 (and bcrypt/argon2 hashes from elsewhere):
//! the bulk user export (`user_id`, `email`, `identities`, …), the
//! password-hash export (`_id.$oid`, `passwordHash`), merged with it by id or
//! email, and Auth0's own import format (`custom_password_hash`). Idempotent
//! by old id and email: a re-run updates profile fields, never duplicates a
//! user and never overwrites a hash already upgraded to argon2id.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::audit::{Event, Kind};
use crate::crypto::password;
use crate::domain::{User, normalize_email, validate_email};
use crate::storage::identities::{self, Identity};
use crate::storage::{Db, StorageError, users};

/// One person as the files describe them, before merging.
#[derive(Debug, Default, Clone)]
struct Record {
    /// Auth0's `user_id` (`auth0|…`, `google-oauth2|…`).
    old_id: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
    name: Option<String>,
    picture: Option<String>,
    created_at: Option<i64>,
    hash: Option<String>,
    /// (connection, upstream subject) of social and enterprise identities.
    identities: Vec<(String, String)>,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub created: usize,
    pub updated: usize,
    pub identities_linked: usize,
    pub skipped: Vec<Skipped>,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub user: String,
    pub reason: String,
}

pub struct Options {
    /// Where `user_imported` events go (none for a dry run's callers that
    /// want no record).
    pub audit: Option<crate::audit::Auditor>,
    /// Keep Auth0's `user_id` as the `sub`.
    pub keep_ids: bool,
    pub dry_run: bool,
    /// Auth0 connection name → provider id (`google-oauth2` → `google`).
    pub connections: HashMap<String, String>,
}

fn text(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn timestamp(v: &Value, k: &str) -> Option<i64> {
    let s = v.get(k)?.as_str()?;
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

/// One JSON object of any of the three formats.
fn record(v: &Value) -> Record {
    let mut r = Record {
        email: text(v, "email"),
        email_verified: v.get("email_verified").and_then(Value::as_bool),
        name: text(v, "name"),
        picture: text(v, "picture"),
        created_at: timestamp(v, "created_at"),
        ..Default::default()
    };
    // The password-hash export: Mongo-style `_id`, bcrypt `passwordHash`.
    if let Some(oid) = v.get("_id").and_then(|i| i.get("$oid")).and_then(Value::as_str) {
        r.old_id = Some(format!("auth0|{oid}"));
    }
    r.old_id = text(v, "user_id").or(r.old_id);
    r.hash = text(v, "passwordHash")
        .or_else(|| text(v, "password_hash"))
        .or_else(|| v.pointer("/custom_password_hash/hash/value").and_then(Value::as_str).map(str::to_string));
    if let Some(ids) = v.get("identities").and_then(Value::as_array) {
        for i in ids {
            let provider = text(i, "provider").unwrap_or_default();
            let conn = text(i, "connection").unwrap_or_else(|| provider.clone());
            let social = i.get("isSocial").and_then(Value::as_bool).unwrap_or(provider != "auth0");
            if let (true, Some(sub)) = (social && provider != "auth0", text(i, "user_id")) {
                r.identities.push((conn, sub));
            }
        }
    }
    r
}

/// Reads a JSON array or JSON lines.
pub fn parse(content: &str) -> Result<Vec<Value>, String> {
    let t = content.trim_start();
    if t.starts_with('[') {
        return serde_json::from_str::<Vec<Value>>(t).map_err(|e| format!("not a JSON array: {e}"));
    }
    t.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

/// Merges records describing the same person: the same old id, or the same
/// address verified in both records when their ids do not differ. Two
/// Auth0 users with one address stay two (the second is then reported, not
/// merged, when it reaches the account the first made).
fn merge(all: Vec<Record>) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for r in all {
        let keys: Vec<String> = r
            .old_id
            .iter()
            .map(|i| format!("id:{i}"))
            .chain(
                r.email
                    .iter()
                    .filter(|_| r.email_verified == Some(true))
                    .map(|e| format!("email:{}", normalize_email(e))),
            )
            .collect();
        let found = keys.iter().find_map(|k| by_key.get(k).copied()).filter(|&i| {
            let m: &Record = &out[i];
            m.old_id.is_none() || r.old_id.is_none() || m.old_id == r.old_id
        });
        match found {
            Some(i) => {
                let m = &mut out[i];
                m.old_id = m.old_id.take().or(r.old_id);
                m.email = m.email.take().or(r.email);
                m.email_verified = m.email_verified.or(r.email_verified);
                m.name = m.name.take().or(r.name);
                m.picture = m.picture.take().or(r.picture);
                m.created_at = m.created_at.or(r.created_at);
                m.hash = m.hash.take().or(r.hash);
                m.identities.extend(r.identities);
                for k in keys {
                    by_key.insert(k, i);
                }
            }
            None => {
                for k in keys {
                    by_key.insert(k, out.len());
                }
                out.push(r);
            }
        }
    }
    out
}

pub async fn run(db: &Db, values: Vec<Value>, opts: &Options, now: i64) -> Result<Report, StorageError> {
    let mut report = Report { dry_run: opts.dry_run, ..Default::default() };
    // Addresses this run has given an account, with the old id of the record
    // that got it: another Auth0 user with the same address is not merged in.
    let mut taken: HashMap<String, Option<String>> = HashMap::new();
    for r in merge(values.iter().map(record).collect()) {
        let label = r.email.clone().or(r.old_id.clone()).unwrap_or_else(|| "(no email, no id)".into());
        let key = r.email.as_deref().map(normalize_email);
        if let Some(first) = key.as_ref().and_then(|k| taken.get(k))
            && first.is_some()
            && r.old_id.is_some()
            && *first != r.old_id
        {
            let reason = format!(
                "another user of this import ({}) has this address: two users are never merged into one",
                first.as_deref().unwrap_or_default()
            );
            report.skipped.push(Skipped { user: label, reason });
            continue;
        }
        match one(db, &r, opts, now, &mut report).await {
            Ok(()) => {
                if let Some(k) = key {
                    taken.entry(k).or_insert(r.old_id.clone());
                }
            }
            Err(Skip(reason)) => report.skipped.push(Skipped { user: label, reason }),
        }
    }
    Ok(report)
}

struct Skip(String);

impl From<StorageError> for Skip {
    fn from(e: StorageError) -> Self {
        Skip(e.to_string())
    }
}

async fn one(db: &Db, r: &Record, opts: &Options, now: i64, report: &mut Report) -> Result<(), Skip> {
    if let Some(e) = &r.email
        && validate_email(e).is_err()
    {
        return Err(Skip(format!("`{e}` is not an email address")));
    }
    if r.email.is_none() && r.identities.is_empty() {
        return Err(Skip("no email and no linked identity: no way to sign in".into()));
    }
    if let Some(h) = &r.hash
        && !password::is_supported(h)
    {
        return Err(Skip("the password hash is neither bcrypt nor argon2".into()));
    }
    if let Some(h) = &r.hash
        && let Err(why) = password::within_bounds(h)
    {
        return Err(Skip(format!("the password hash asks for too much work ({why})")));
    }
    let by_id = match (&r.old_id, opts.keep_ids) {
        (Some(id), true) => users::find_by_id(db, id).await?,
        _ => None,
    };
    let by_email = match &r.email {
        Some(e) => users::find_by_email(db, e).await?,
        None => None,
    };
    let existing = match (by_id, by_email) {
        (Some(a), Some(b)) if a.user_id != b.user_id => {
            return Err(Skip(format!("its id is user {} and its email is user {}", a.user_id, b.user_id)));
        }
        (Some(a), _) => Some(a),
        // By address only when both sides verified it: an unverified address
        // is a claim, which never merges into an account (nor installs a
        // hash on it).
        (None, Some(b)) if b.email_verified && r.email_verified == Some(true) => Some(b),
        (None, Some(b)) => {
            let side = match (r.email_verified == Some(true), b.email_verified) {
                (false, true) => "the record's",
                (true, false) => "the account's",
                _ => "both sides'",
            };
            return Err(Skip(format!(
                "not merged into user {}: {side} address is not verified (records merge by id, or by an address verified on both sides)",
                b.user_id
            )));
        }
        (None, None) => None,
    };
    let user = match existing {
        Some(mut u) => {
            let before = u.clone();
            u.name = r.name.clone().or(u.name);
            u.picture = r.picture.clone().or(u.picture);
            // Only the address the record itself verified.
            let same = u.email.as_deref().map(normalize_email) == r.email.as_deref().map(normalize_email);
            if r.email_verified == Some(true) && same {
                u.email_verified = true;
            }
            // Never replace a hash already upgraded at a sign-in.
            if let Some(h) = &r.hash
                && u.password_hash.as_deref().is_none_or(password::needs_upgrade)
            {
                u.password_hash = Some(h.clone());
            }
            if u != before {
                u.updated_at = now;
                if !opts.dry_run {
                    users::update(db, &u).await?;
                }
                report.updated += 1;
            }
            u
        }
        None => {
            let user_id = match (&r.old_id, opts.keep_ids) {
                (Some(id), true) if id.len() <= 255 => id.clone(),
                (Some(_), true) => return Err(Skip("its id is longer than 255 bytes".into())),
                _ => uuid::Uuid::new_v4().to_string(),
            };
            let u = User {
                user_id,
                email: r.email.clone(),
                email_verified: r.email_verified.unwrap_or(false),
                name: r.name.clone(),
                picture: r.picture.clone(),
                password_hash: r.hash.clone(),
                disabled: false,
                created_at: r.created_at.unwrap_or(now),
                updated_at: now,
            };
            if !opts.dry_run {
                users::insert(db, &u).await?;
                if let Some(a) = &opts.audit {
                    let e = Event::new(Kind::UserImported).account(&u).actor(crate::audit::ACTOR_CLI);
                    a.record(e.details(serde_json::json!({ "old_id": r.old_id })));
                }
            }
            report.created += 1;
            u
        }
    };
    for (conn, subject) in &r.identities {
        let provider = opts.connections.get(conn).cloned().unwrap_or_else(|| conn.clone());
        match identities::find(db, &provider, subject).await? {
            Some(i) if i.user_id == user.user_id => continue,
            Some(i) => {
                return Err(Skip(format!("identity {provider} {subject} belongs to user {}", i.user_id)));
            }
            None => {}
        }
        let i = Identity {
            provider,
            subject: subject.clone(),
            user_id: user.user_id.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            profile: "{}".into(),
            created_at: now,
            last_login_at: now,
        };
        if !opts.dry_run {
            identities::insert(db, &i).await?;
        }
        report.identities_linked += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_and_hash_export_merge_by_id() {
        let export = r#"{"user_id":"auth0|5f1","email":"a@x.com","email_verified":true,"name":"A","identities":[{"provider":"auth0","user_id":"5f1","connection":"Username-Password-Authentication","isSocial":false}]}
{"user_id":"google-oauth2|123","email":"g@x.com","identities":[{"provider":"google-oauth2","user_id":"123","connection":"google-oauth2","isSocial":true}]}"#;
        let hashes = r#"{"_id":{"$oid":"5f1"},"email":"a@x.com","email_verified":true,"passwordHash":"$2b$10$abcdefghijklmnopqrstuuJ1aX9l3J5E7O0G8s0g6bAqk6y0uJb2C","connection":"Username-Password-Authentication"}"#;
        let mut all: Vec<Record> = parse(export).unwrap().iter().map(record).collect();
        all.extend(parse(hashes).unwrap().iter().map(record));
        let m = merge(all);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].old_id.as_deref(), Some("auth0|5f1"));
        assert!(m[0].hash.as_deref().is_some_and(|h| h.starts_with("$2b$")));
        assert!(m[0].identities.is_empty(), "a database identity is not a linked identity");
        assert_eq!(m[1].identities, [("google-oauth2".to_string(), "123".to_string())]);
        let custom =
            r#"[{"email":"c@x.com","custom_password_hash":{"algorithm":"bcrypt","hash":{"value":"$2a$04$x"}}}]"#;
        assert_eq!(record(&parse(custom).unwrap()[0]).hash.as_deref(), Some("$2a$04$x"));
    }
}
