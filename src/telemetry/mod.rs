//! Prometheus metrics: one process-wide recorder (the `metrics` facade and its
//! Prometheus exporter), the series Sesame records, and their names. Series
//! names and label names are a public contract (dashboards and alerts use
//! them): add freely, never rename.
//!
//! Labels hold only bounded values: route templates, status codes, grant
//! types, outcome and reason codes, and the ids of clients and providers an
//! operator registered — never a user, an address or a token. A value that is
//! not a plain identifier, or one more than `MAX_VALUES` distinct values of
//! one label, is recorded as `other`, so no input can grow the registry.

pub mod http;
pub mod traces;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Distinct values one label may take before further ones read `other`.
const MAX_VALUES: usize = 500;

/// Latency buckets (seconds): from a cached document to a slow upstream.
const SECONDS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The process-wide recorder's handle; installed once (a process may run
/// several servers, as the tests do: they share it).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS);
            match builder.and_then(PrometheusBuilder::install_recorder) {
                Ok(h) => {
                    describe();
                    gauge!("sesame_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// What a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

/// Every series Sesame exports: name, type, and what it answers.
pub const SERIES: &[(&str, Type, &str)] = &[
    ("sesame_http_request_duration_seconds", Type::Histogram, "HTTP requests by route template, method and status"),
    ("sesame_sign_ins_total", Type::Counter, "Sign-ins by outcome, method (pwd or provider id), client and reason"),
    ("sesame_events_total", Type::Counter, "Audit events by type and outcome"),
    ("sesame_tokens_issued_total", Type::Counter, "Tokens issued by grant type and client"),
    ("sesame_refresh_reuse_detected_total", Type::Counter, "Refresh tokens presented again (family revoked)"),
    ("sesame_rate_limited_total", Type::Counter, "Requests refused by a rate limiter, by limiter"),
    ("sesame_federation_round_trips_total", Type::Counter, "Upstream sign-ins by provider and outcome"),
    ("sesame_federation_duration_seconds", Type::Histogram, "Time to redeem an upstream code, by provider"),
    ("sesame_mails_total", Type::Counter, "Mails by outcome (sent, failed, logged)"),
    ("sesame_audit_events_written_total", Type::Counter, "Audit events stored"),
    ("sesame_audit_events_dropped_total", Type::Counter, "Audit events lost, by reason (queue_full, refused)"),
    ("sesame_audit_queue_depth", Type::Gauge, "Audit events waiting to be written"),
    ("sesame_db_connections", Type::Gauge, "Database pool connections by pool (main, audit) and state (in_use, idle)"),
    ("sesame_db_connections_max", Type::Gauge, "Database pool size limit, by pool"),
    ("sesame_db_acquire_seconds", Type::Histogram, "Time a transaction waited for a pooled connection"),
    ("sesame_password_hashing_queue", Type::Gauge, "Sign-ins holding or waiting for a password-hashing slot"),
    ("sesame_rate_limit_tracked_keys", Type::Gauge, "Keys the in-memory rate limiters track"),
    ("sesame_signing_key_age_seconds", Type::Gauge, "Age of the key signing new tokens, by algorithm"),
    ("sesame_build_info", Type::Gauge, "Always 1; the version as a label"),
];

fn describe() {
    for &(name, kind, help) in SERIES {
        match kind {
            Type::Counter => describe_counter!(name, help),
            Type::Gauge => describe_gauge!(name, help),
            Type::Histogram => describe_histogram!(name, help),
        }
    }
}

/// `v` if it may be a label value of `label`, else `other`.
fn bounded(label: &'static str, v: &str) -> String {
    let plain = !v.is_empty()
        && v.len() <= 64
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if !plain {
        return "other".into();
    }
    static SEEN: OnceLock<Mutex<HashMap<&'static str, HashSet<String>>>> = OnceLock::new();
    let Ok(mut seen) = SEEN.get_or_init(Mutex::default).lock() else { return "other".into() };
    let set = seen.entry(label).or_default();
    if set.contains(v) || set.len() < MAX_VALUES {
        set.insert(v.to_string());
        v.to_string()
    } else {
        "other".into()
    }
}

/// An audit event of `kind` with `outcome` (every event passes here).
pub fn event(kind: &'static str, outcome: &'static str) {
    counter!("sesame_events_total", "type" => kind, "outcome" => outcome).increment(1);
}

/// A sign-in that succeeded or failed at the login box: `method` is `pwd` or
/// the provider's id, `reason` the failure's code (empty on success).
pub fn sign_in(outcome: &'static str, method: &str, client: &str, reason: &str) {
    counter!(
        "sesame_sign_ins_total",
        "outcome" => outcome,
        "method" => bounded("method", method),
        "client" => bounded("client", client),
        "reason" => if reason.is_empty() { "none".to_string() } else { bounded("reason", reason) },
    )
    .increment(1);
}

/// Tokens issued to `client` (authenticated or registered) by `grant`.
pub fn token_issued(grant: &'static str, client: &str) {
    counter!("sesame_tokens_issued_total", "grant_type" => grant, "client" => bounded("client", client)).increment(1);
}

/// A refresh token presented again: its family was revoked.
pub fn refresh_reuse(client: &str) {
    counter!("sesame_refresh_reuse_detected_total", "client" => bounded("client", client)).increment(1);
}

/// A request refused by `limiter`.
pub fn rate_limited(limiter: &'static str) {
    counter!("sesame_rate_limited_total", "limiter" => limiter).increment(1);
}

/// An upstream sign-in through `provider` that ended in `outcome` (`success`
/// or the problem's code).
pub fn federation(provider: &str, outcome: &str) {
    counter!(
        "sesame_federation_round_trips_total",
        "provider" => bounded("provider", provider),
        "outcome" => bounded("federation_outcome", outcome),
    )
    .increment(1);
}

/// The time an upstream code redemption took.
pub fn federation_duration(provider: &str, secs: f64) {
    histogram!("sesame_federation_duration_seconds", "provider" => bounded("provider", provider)).record(secs);
}

/// A mail that was `sent`, `failed` or only `logged` (no SMTP host).
pub fn mail(outcome: &'static str) {
    counter!("sesame_mails_total", "outcome" => outcome).increment(1);
}

/// `n` audit events stored.
pub fn audit_written(n: u64) {
    counter!("sesame_audit_events_written_total").increment(n);
}

/// `n` audit events lost: `queue_full` or `refused` by the database.
pub fn audit_dropped(reason: &'static str, n: u64) {
    counter!("sesame_audit_events_dropped_total", "reason" => reason).increment(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_bounded() {
        assert_eq!(bounded("t_plain", "web-app_1"), "web-app_1");
        assert_eq!(bounded("t_plain", "a b"), "other");
        assert_eq!(bounded("t_plain", "mia@example.com"), "other", "never an address");
        assert_eq!(bounded("t_plain", "x\u{0}"), "other");
        assert_eq!(bounded("t_plain", &"a".repeat(65)), "other");
        for i in 0..MAX_VALUES {
            bounded("t_many", &format!("c{i}"));
        }
        assert_eq!(bounded("t_many", "c0"), "c0", "a value already seen keeps its label");
        assert_eq!(bounded("t_many", "new-one"), "other");
    }
}
