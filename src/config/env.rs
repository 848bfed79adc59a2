//! `SESAME_*` variables that name no setting. Kubernetes injects service links
//! (`SESAME_PORT=tcp://…`, `SESAME_SERVICE_HOST`, …) into every pod of a
//! namespace that has a Service called `sesame`, so an unknown variable is a
//! warning that names it (and the setting it nearly spells), never an error.
//! Unknown keys in the TOML file stay errors.

use serde_json::Value;

/// The variables (prefix stripped, lower-cased) to ignore, and one warning each.
pub fn unknown(vars: impl Iterator<Item = (String, String)>, defaults: &Value) -> (Vec<String>, Vec<String>) {
    let known = leaf_names(defaults);
    let mut ignored = Vec::new();
    let mut warnings = Vec::new();
    for (var, _) in vars {
        let Some(rest) = var.strip_prefix("SESAME_") else { continue };
        let key = rest.to_ascii_lowercase();
        if key == "config" || is_known(&key, defaults) {
            continue;
        }
        let hint = nearest(&key, &known)
            .map(|k| format!(" (did you mean SESAME_{}?)", k.to_ascii_uppercase()))
            .unwrap_or_default();
        warnings.push(format!("{var} is not a Sesame setting; ignored{hint}"));
        ignored.push(key);
    }
    (ignored, warnings)
}

/// Whether `a__b__c` names a setting: each part a key of the defaults, down to a
/// value (a list such as `clients` counts as one setting).
fn is_known(key: &str, defaults: &Value) -> bool {
    let mut at = defaults;
    for part in key.split("__") {
        match at.as_object().and_then(|o| o.get(part)) {
            Some(v) => at = v,
            None => return false,
        }
    }
    true
}

/// Every setting as it is spelled after `SESAME_` (lower case).
fn leaf_names(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(o) = v.as_object() {
        for (k, child) in o {
            match child.as_object() {
                Some(_) => out.extend(leaf_names(child).into_iter().map(|c| format!("{k}__{c}"))),
                None => out.push(k.clone()),
            }
        }
    }
    out
}

/// The setting within a few typos of `key`, if one is that close.
fn nearest<'a>(key: &str, known: &'a [String]) -> Option<&'a String> {
    let limit = (key.len() / 4).clamp(1, 3);
    known.iter().map(|k| (distance(key, k), k)).filter(|(d, _)| *d <= limit).min_by_key(|(d, _)| *d).map(|(_, k)| k)
}

/// Levenshtein distance over bytes (keys are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Value {
        serde_json::to_value(super::super::Config::default()).unwrap()
    }

    #[test]
    fn kubernetes_service_links_are_warnings() {
        let vars = [
            ("SESAME_PORT", "tcp://10.0.0.1:8080"),
            ("SESAME_SERVICE_HOST", "10.0.0.1"),
            ("SESAME_PORT_8080_TCP_ADDR", "10.0.0.1"),
            ("SESAME_ISSUER", "https://a.example.com"),
            ("SESAME_KEYS__JWKS_CACHE_SECS", "60"),
            ("SESAME_CONFIG", "/etc/sesame.toml"),
            ("HOME", "/root"),
        ];
        let (ignored, warnings) = unknown(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())), &defaults());
        assert_eq!(ignored, ["port", "service_host", "port_8080_tcp_addr"]);
        assert!(warnings[0].starts_with("SESAME_PORT is not a Sesame setting"), "{warnings:?}");
    }

    #[test]
    fn near_misses_name_the_setting() {
        let vars = [("SESAME_ISUER".to_string(), String::new()), ("SESAME_KEYS__JWKS_CACHE_SEC".into(), String::new())];
        let (_, w) = unknown(vars.into_iter(), &defaults());
        assert!(w[0].ends_with("(did you mean SESAME_ISSUER?)"), "{w:?}");
        assert!(w[1].ends_with("(did you mean SESAME_KEYS__JWKS_CACHE_SECS?)"), "{w:?}");
    }
}
