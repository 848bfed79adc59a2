//! The Dockerfile's build stage copies everything the build reads: the
//! manifest and lockfile, the build script, the crate's sources, every file
//! an `include_str!`/`include_bytes!` embeds, the `sqlx::migrate!` folders and
//! the askama templates; and nothing it copies is kept out by .dockerignore.
//! A cheap guard that runs with `cargo test`; building and running the image
//! itself is a script that needs podman.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &str) -> String {
    std::fs::read_to_string(root().join(p)).unwrap()
}

/// `a/b/../c` → `a/c`, as a path relative to the repository.
fn normal(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s.to_string_lossy().into()),
            _ => {}
        }
    }
    out.join("/")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The string literal arguments of `macro!(…)` calls in `text`.
fn literal_args<'a>(text: &'a str, mac: &str) -> Vec<&'a str> {
    text.match_indices(mac)
        .filter_map(|(i, _)| {
            let rest = &text[i + mac.len()..];
            let rest = rest.strip_prefix("(\"")?;
            Some(&rest[..rest.find('"')?])
        })
        .collect()
}

/// What the release build of the binary reads, relative to the repository.
fn build_inputs() -> Vec<String> {
    let mut inputs = vec!["Cargo.toml".to_string(), "Cargo.lock".into(), "build.rs".into(), "src".into()];
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let dir = f.parent().unwrap();
        for mac in ["include_str!", "include_bytes!"] {
            for p in literal_args(&text, mac) {
                inputs.push(normal(dir.join(p).strip_prefix(root()).unwrap()));
            }
        }
        // Relative to the manifest.
        for p in literal_args(&text, "sqlx::migrate!") {
            inputs.push(normal(Path::new(p)));
        }
        for p in literal_args(&text, "#[template(path = ") {
            inputs.push(format!("templates/{p}"));
        }
        if text.contains("#[template(path = ") {
            inputs.push("templates".into());
        }
    }
    inputs.sort();
    inputs.dedup();
    inputs
}

/// The sources of the `COPY` lines of the stage named `stage` (not those
/// copied `--from` another stage).
fn copied(dockerfile: &str, stage: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        if let Some(from) = line.strip_prefix("FROM ") {
            inside = from.to_lowercase().ends_with(&format!(" as {stage}"));
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(args) = line.strip_prefix("COPY ") {
            let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--chown")).collect();
            if words.iter().any(|w| w.starts_with("--from")) {
                continue;
            }
            let (_, sources) = words.split_last().unwrap();
            out.extend(sources.iter().map(|s| s.trim_start_matches("./").trim_end_matches('/').to_string()));
        }
    }
    out
}

fn covered(input: &str, sources: &[String]) -> bool {
    sources.iter().any(|s| input == s || input.starts_with(&format!("{s}/")))
}

#[test]
fn the_build_stage_copies_what_the_build_reads() {
    let dockerfile = read("Dockerfile");
    let sources = copied(&dockerfile, "build");
    assert!(!sources.is_empty(), "no COPY in the Dockerfile's `build` stage");
    let inputs = build_inputs();
    assert!(inputs.iter().any(|i| i.starts_with("assets/")), "the parser sees the embedded files: {inputs:?}");
    assert!(inputs.iter().any(|i| i.starts_with("migrations/")), "the parser sees the migrations: {inputs:?}");
    let missing: Vec<&String> = inputs.iter().filter(|i| !covered(i, &sources)).collect();
    assert!(
        missing.is_empty(),
        "the build reads files the Dockerfile does not copy: {missing:?} (it copies {sources:?})"
    );
    for s in &sources {
        assert!(root().join(s).exists(), "the Dockerfile copies `{s}`, which does not exist");
    }
}

#[test]
fn dockerignore_keeps_out_nothing_the_image_needs() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    let dockerfile = read("Dockerfile");
    let mut needed = copied(&dockerfile, "build");
    needed.extend(build_inputs());
    let shadowed: Vec<&String> = needed.iter().filter(|n| covered(n, &ignored)).collect();
    assert!(shadowed.is_empty(), ".dockerignore keeps out what the build needs: {shadowed:?}");
}

#[test]
fn the_guard_sees_a_missing_copy() {
    let without = "FROM rust AS build\nCOPY Cargo.toml Cargo.lock build.rs ./\nCOPY src src\nFROM x\n";
    let sources = copied(without, "build");
    assert_eq!(sources, ["Cargo.toml", "Cargo.lock", "build.rs", "src"]);
    assert!(!covered("assets/common-passwords.txt", &sources));
    assert!(covered("src/lib.rs", &sources));
}
