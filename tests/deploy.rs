//! What `deploy/` ships is checked like code: the Kubernetes manifests against
//! the Kubernetes schemas (kubernetes-validate, from PyPI, with the schemas
//! bundled: no cluster), their ConfigMap as a config Sesame accepts, their
//! probes and ports against the server's; the Grafana dashboard reads only
//! series Sesame exports, and docs/operations.md explains every series.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &str) -> String {
    std::fs::read_to_string(root().join(p)).unwrap()
}

const MANIFESTS: [&str; 2] = ["deploy/kubernetes/sesame.yaml", "deploy/kubernetes/secret.example.yaml"];

/// Runs kubernetes-validate on `files` for Kubernetes `version`; None when
/// the tool is missing outside CI.
fn validate(files: &[PathBuf], version: &str) -> Option<std::process::Output> {
    let out = Command::new("kubernetes-validate").args(["--strict", "--quiet", "-k", version]).args(files).output();
    match out {
        Ok(o) => Some(o),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("kubernetes-validate is not installed (pip install kubernetes-validate)")
        }
        Err(_) => {
            eprintln!("skipped: kubernetes-validate is not installed");
            None
        }
    }
}

#[test]
fn manifests_match_the_kubernetes_schemas() {
    let files: Vec<PathBuf> = MANIFESTS.iter().map(|m| root().join(m)).collect();
    // The oldest version the manifests use features of (preStop sleep), and the newest.
    for version in ["1.33", "1.37"] {
        let Some(out) = validate(&files, version) else { return };
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && !text.contains("ERROR"), "Kubernetes {version}:\n{text}");
    }
    // The check sees a mistake: a misspelt field, a port as a string.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = read(MANIFESTS[0]).replace("readinessProbe:", "readinesProbe:");
    std::fs::write(&bad, text).unwrap();
    let out = validate(std::slice::from_ref(&bad), "1.33").unwrap();
    assert!(!out.status.success(), "a misspelt field passed");
}

/// The `sesame.toml` of the ConfigMap, as written there.
fn configmap_toml() -> String {
    let yaml = read(MANIFESTS[0]);
    let start = yaml.find("sesame.toml: |\n").unwrap() + "sesame.toml: |\n".len();
    yaml[start..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_configmap_is_a_config_sesame_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sesame.toml");
    std::fs::write(&path, configmap_toml()).unwrap();
    let key = dir.path().join("master-key");
    std::fs::write(&key, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["--config", path.to_str().unwrap(), "check-config", "--json"])
        .env("SESAME_DATABASE_URL", "postgres://sesame:pw@postgres:5432/sesame")
        .env("SESAME_MASTER_KEY_FILE", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["listen"], "0.0.0.0:8080");
    assert_eq!(cfg["metrics"]["listen"], "0.0.0.0:9090");

    // The Deployment's ports and probes are the server's.
    let yaml = read(MANIFESTS[0]);
    for needle in [
        "containerPort: 8080",
        "containerPort: 9090",
        &format!("path: {}", sesame::health::HEALTHZ),
        &format!("path: {}", sesame::health::READYZ),
        "prometheus.io/port: \"9090\"",
        "SESAME_MASTER_KEY_FILE",
        "secretKeyRef:",
        "kind: PodDisruptionBudget",
        "kind: NetworkPolicy",
        "automountServiceAccountToken: false",
    ] {
        assert!(yaml.contains(needle), "{needle} missing from the manifests");
    }
}

/// Every `sesame_…` name in `text`.
fn series_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("sesame_") {
        let name: String =
            rest[i..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        rest = &rest[i + name.len()..];
        out.push(name);
    }
    out
}

#[test]
fn the_dashboard_reads_only_series_sesame_exports() {
    let dash: serde_json::Value = serde_json::from_str(&read("deploy/grafana/sesame.json")).unwrap();
    let known: Vec<&str> = sesame::telemetry::SERIES.iter().map(|s| s.0).collect();
    let mut used = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            for name in series_in(expr) {
                let base =
                    ["_bucket", "_count", "_sum"].iter().fold(name.as_str(), |n, s| n.strip_suffix(s).unwrap_or(n));
                assert!(known.contains(&base), "{} reads {name}, which Sesame does not export", panel["title"]);
                used.insert(base.to_string());
            }
        }
    }
    // Everything worth a panel has one.
    for name in &known {
        assert!(used.contains(*name), "no panel shows {name}");
    }
    // docs/operations.md says which question each series answers.
    let docs = read("docs/operations.md");
    for name in &known {
        assert!(docs.contains(&format!("`{name}`")), "docs/operations.md does not explain {name}");
    }
}

/// Every dashboard query parses as PromQL: promtool (Debian's `prometheus`
/// package) checks them as recording rules, Grafana's variables filled in.
#[test]
fn the_dashboard_queries_are_promql() {
    if Command::new("promtool").arg("--version").output().is_err() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "promtool is not installed (apt-get install prometheus)"
        );
        eprintln!("skipped: promtool is not installed");
        return;
    }
    let dash: serde_json::Value = serde_json::from_str(&read("deploy/grafana/sesame.json")).unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            let expr = expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$instance", ".*");
            n += 1;
            rules
                .push_str(&format!("      - record: dashboard_query_{n}\n        expr: {}\n", serde_json::json!(expr)));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new("promtool").args(["check", "rules"]).arg(&file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}\n{rules}");
    assert!(text.contains(&format!("{n} rules found")), "{text}");
    // And it sees a broken one.
    std::fs::write(&file, "groups:\n  - name: x\n    rules:\n      - record: broken\n        expr: sum(rate(x[5m])\n")
        .unwrap();
    assert!(!Command::new("promtool").args(["check", "rules"]).arg(&file).output().unwrap().status.success());
}
