//! From an upstream's claims (ID token or profile response) to one
//! `Upstream` identity, through the kind's mapping and the config's overrides.

use serde_json::Value;

use super::provider::Provider;
use super::{Failed, Problem};

/// Who signed in at the upstream, as Sesame keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub subject: String,
    pub email: Option<String>,
    /// The upstream vouches for `email` (and only for that address).
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    /// `amr` as the upstream sent it; empty when it sent none.
    pub amr: Vec<String>,
    /// When the user signed in at the upstream (`auth_time`), if it said.
    pub auth_time: Option<i64>,
    /// Google Workspace domain (`hd`) and Microsoft tenant (`tid`), for `allowed_domains`.
    pub hd: Option<String>,
    pub tid: Option<String>,
}

impl Upstream {
    /// The profile kept with the identity (JSON).
    pub fn profile_json(&self) -> String {
        serde_json::json!({
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "picture": self.picture,
        })
        .to_string()
    }
}

/// `a.b.0.c` into nested objects and arrays.
pub fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |cur, part| match cur {
        Value::Object(m) => m.get(part),
        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A claim as text: strings as they are, numbers (GitHub's ids) in decimal.
fn text(v: &Value, path: &str) -> Option<String> {
    match lookup(v, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `true` or `"true"` (Apple sends strings).
fn truthy(v: &Value, path: &str) -> bool {
    matches!(lookup(v, path), Some(Value::Bool(true)))
        || matches!(lookup(v, path), Some(Value::String(s)) if s == "true")
}

/// Maps `claims` through the provider's claim mapping.
pub fn map(p: &Provider, claims: &Value) -> Result<Upstream, Failed> {
    let m = &p.cfg.claims;
    let pre = &p.preset;
    let subject_path = m.subject.as_deref().unwrap_or(pre.subject);
    let subject = match subject_path {
        // Microsoft: the tenant and the object id, stable across app registrations.
        "tid+oid" => match (text(claims, "tid"), text(claims, "oid")) {
            (Some(t), Some(o)) => Some(format!("{t}:{o}")),
            _ => None,
        },
        path => text(claims, path),
    }
    .ok_or_else(|| Failed::new(Problem::NoSubject, format!("no `{subject_path}` claim")))?;
    if subject.len() > 255 {
        return Err(Failed::new(Problem::NoSubject, "subject longer than 255 bytes"));
    }
    let email = m.email.as_deref().or(pre.email).and_then(|path| text(claims, path));
    let email = email.filter(|e| crate::domain::validate_email(e).is_ok());
    let verified_path = m.email_verified.as_deref().or(pre.email_verified);
    let email_verified = email.is_some() && verified_path.is_some_and(|path| truthy(claims, path));
    let name = text(claims, m.name.as_deref().unwrap_or(pre.name_claim)).map(|n| n.chars().take(200).collect());
    let picture = m
        .picture
        .as_deref()
        .or(pre.picture)
        .and_then(|path| text(claims, path))
        .filter(|u| u.starts_with("https://") && u.len() <= 2048);
    let amr = match claims.get("amr") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).take(8).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    Ok(Upstream {
        subject,
        email,
        email_verified,
        name,
        picture,
        amr,
        auth_time: claims.get("auth_time").and_then(Value::as_i64),
        hd: text(claims, "hd"),
        tid: text(claims, "tid"),
    })
}

/// `allowed_domains`: the verified email's domain, Google's `hd` or
/// Microsoft's tenant must be listed (when the list is not empty).
pub fn allowed(p: &Provider, u: &Upstream) -> bool {
    let list = &p.cfg.allowed_domains;
    if list.is_empty() {
        return true;
    }
    let has = |v: &str| list.iter().any(|d| d.eq_ignore_ascii_case(v));
    let domain = u.email.as_deref().filter(|_| u.email_verified).and_then(|e| e.rsplit_once('@')).map(|(_, d)| d);
    domain.is_some_and(has) || u.hd.as_deref().is_some_and(has) || u.tid.as_deref().is_some_and(has)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let v = serde_json::json!({"data": {"id": "7"}, "images": [{"url": "https://x/a.png"}], "id": 42});
        assert_eq!(text(&v, "data.id").as_deref(), Some("7"));
        assert_eq!(text(&v, "images.0.url").as_deref(), Some("https://x/a.png"));
        assert_eq!(text(&v, "id").as_deref(), Some("42"));
        assert_eq!(text(&v, "images.1.url"), None);
        assert!(truthy(&serde_json::json!({"v": "true"}), "v"));
        assert!(!truthy(&serde_json::json!({"v": "false"}), "v"));
    }
}
