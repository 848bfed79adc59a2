//! The layering rules of README's Architecture section (docs/architecture.md),
//! checked over the `crate::` and `super::` paths of every file in `src/`
//! (test modules excluded). A path names the deepest module file it reaches,
//! so `crate::storage::users::find` is an import of `src/storage/users.rs`.
//!
//! A *handler* file is one with an axum extractor (`State(`) or a router
//! (`Router<`); every other file under `src/` (bar `app.rs`, `cli/`, `lib.rs`
//! and `main.rs`) is a *service*.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

struct Crate {
    /// Module path (`storage::users`) → file (`storage/users.rs`).
    modules: BTreeMap<String, String>,
    /// File → the text checked (without its test module).
    text: BTreeMap<String, String>,
    imports: Graph,
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(file: &str) -> String {
    let f = file.trim_end_matches(".rs");
    let f = f.strip_suffix("/mod").unwrap_or(f);
    if f == "lib" { String::new() } else { f.replace('/', "::") }
}

/// The code, without comments and without the `#[cfg(test)]` module.
fn code(src: &str) -> String {
    let body = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    body.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| match l.find(" // ") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands the path tree after `crate::` or `super::` at `s` into full paths
/// (`{a, b::{c, d}}` → `a`, `b::c`, `b::d`).
fn expand(s: &str, prefix: &str, out: &mut Vec<String>) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    let mut cur = prefix.to_string();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            i += 1;
            loop {
                i += expand(&s[i..], &cur, out);
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let seg = &s[start..i];
        if !seg.is_empty() && seg != "self" {
            if !cur.is_empty() {
                cur.push_str("::");
            }
            cur.push_str(seg);
        }
        if s[i..].starts_with("::") {
            i += 2;
            continue;
        }
        out.push(cur);
        return i;
    }
}

impl Crate {
    fn load() -> Crate {
        let root = std::env::var("LAYERING_SRC")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        let mut all = Vec::new();
        files(&root, &mut all);
        let mut modules = BTreeMap::new();
        let mut text = BTreeMap::new();
        for p in all {
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            if rel == "main.rs" {
                continue;
            }
            modules.insert(module_of(&rel), rel.clone());
            text.insert(rel, code(&std::fs::read_to_string(&p).unwrap()));
        }
        let mut c = Crate { modules, text, imports: Graph::new() };
        for (file, src) in &c.text {
            let here = module_of(file);
            let mut paths = Vec::new();
            for (i, _) in src.match_indices("crate::") {
                if i > 0 && (src.as_bytes()[i - 1].is_ascii_alphanumeric() || src.as_bytes()[i - 1] == b'_') {
                    continue;
                }
                expand(&src[i + 7..], "", &mut paths);
            }
            // `super::` from `a::b` (file a/b.rs, or a/b/mod.rs) is `a`.
            let parent = here.rsplit_once("::").map(|(p, _)| p.to_string()).unwrap_or_default();
            for (i, _) in src.match_indices("super::") {
                if i > 0 && (src.as_bytes()[i - 1].is_ascii_alphanumeric() || src.as_bytes()[i - 1] == b':') {
                    continue;
                }
                expand(&src[i + 7..], &parent, &mut paths);
            }
            let targets = paths.iter().filter_map(|p| c.file_of(p)).filter(|t| t != file).collect();
            c.imports.insert(file.clone(), targets);
        }
        c
    }

    /// The deepest module file `path` reaches.
    fn file_of(&self, path: &str) -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len()).rev().find_map(|n| self.modules.get(&segs[..n].join("::")).cloned())
    }

    fn is_handler(&self, file: &str) -> bool {
        let t = &self.text[file];
        let extractor = t.match_indices("State(").any(|(i, _)| i == 0 || !t.as_bytes()[i - 1].is_ascii_alphanumeric());
        extractor || t.contains("Router<")
    }

    fn is_service(&self, file: &str) -> bool {
        !(file == "app.rs" || file == "lib.rs" || file.starts_with("cli/") || self.is_handler(file))
    }

    /// Every import of a file matching `from` that reaches a file matching `to`.
    fn breaches(&self, from: impl Fn(&str) -> bool, to: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        for (f, ts) in &self.imports {
            if from(f) {
                out.extend(ts.iter().filter(|t| to(t)).map(|t| format!("{f} imports {t}")));
            }
        }
        out
    }

    /// The files that import `file` and are imported by it, directly or not.
    fn cycle_through(&self, file: &str) -> BTreeSet<String> {
        let reach = |start: &str, g: &Graph| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![start.to_string()];
            while let Some(f) = todo.pop() {
                for t in g.get(&f).into_iter().flatten() {
                    if seen.insert(t.clone()) {
                        todo.push(t.clone());
                    }
                }
            }
            seen
        };
        let mut reverse = Graph::new();
        for (f, ts) in &self.imports {
            for t in ts {
                reverse.entry(t.clone()).or_default().insert(f.clone());
            }
        }
        let down = reach(file, &self.imports);
        let up = reach(file, &reverse);
        down.intersection(&up).filter(|f| *f != file).cloned().collect()
    }
}

fn under(dir: &'static str) -> impl Fn(&str) -> bool {
    move |f: &str| f.starts_with(&format!("{dir}/")) || f == format!("{dir}.rs")
}

#[track_caller]
fn none(what: &str, breaches: Vec<String>) {
    assert!(breaches.is_empty(), "{what}:\n  {}", breaches.join("\n  "));
}

#[test]
fn the_parser_sees_the_imports() {
    let c = Crate::load();
    // A few imports known to exist, in each of the forms the check reads.
    for (from, to) in [
        ("app.rs", "state.rs"),
        ("storage/users.rs", "domain.rs"),
        ("oidc/cors.rs", "state.rs"),
        ("federation/provider.rs", "federation/mod.rs"),
    ] {
        assert!(c.imports[from].contains(to), "{from} should import {to}: {:?}", c.imports[from]);
    }
    assert!(c.is_handler("oidc/token.rs") && !c.is_handler("storage/users.rs"));
}

#[test]
fn storage_imports_nothing_above_it() {
    let c = Crate::load();
    let leaf = |f: &str| under("config")(f) || f == "domain.rs" || f == "text.rs";
    none("the leaves (config/, domain.rs, text.rs) import only each other", c.breaches(leaf, |t| !leaf(t)));
    let below = |f: &str| under("storage")(f) || leaf(f);
    none("storage/ imports only storage/ and the leaves", c.breaches(under("storage"), |t| !below(t)));
}

fn area(file: &str) -> &str {
    file.split_once('/').map(|(a, _)| a).unwrap_or(file)
}

#[test]
fn services_never_import_handlers() {
    let c = Crate::load();
    let mut found = Vec::new();
    for (f, ts) in &c.imports {
        if c.is_service(f) {
            // Within an area a helper may read its endpoint's types (a grant, its token request).
            let handlers = ts.iter().filter(|t| c.is_handler(t) && area(t) != area(f));
            found.extend(handlers.map(|t| format!("{f} imports {t}")));
        }
    }
    none("a service imports another area's handler file", found);
}

impl Crate {
    /// The import circles: sets of two or more files that all reach each other.
    fn circles(&self) -> Vec<BTreeSet<String>> {
        let mut out: Vec<BTreeSet<String>> = Vec::new();
        for f in self.imports.keys() {
            if out.iter().any(|c| c.contains(f)) {
                continue;
            }
            let mut circle = self.cycle_through(f);
            if !circle.is_empty() {
                circle.insert(f.clone());
                out.push(circle);
            }
        }
        out
    }
}

#[test]
fn no_import_circle_crosses_areas() {
    let c = Crate::load();
    let crossing: Vec<String> = c
        .circles()
        .into_iter()
        .filter(|circle| circle.iter().map(|f| area(f)).collect::<BTreeSet<_>>().len() > 1)
        .map(|circle| format!("{circle:?}"))
        .collect();
    none("an import circle spans areas (a lower module imports a higher one)", crossing);
}

#[test]
fn the_application_state_is_in_no_import_circle() {
    let c = Crate::load();
    let circle = c.cycle_through("state.rs");
    assert!(circle.is_empty(), "state.rs is in an import circle with {circle:?}");
    none("the state imports a handler", c.breaches(|f| f == "state.rs", |t| c.is_handler(t)));
}

/// The service layer shared by the CLI, the management API and the pages.
const SERVICES: [&str; 16] = [
    "access.rs",
    "accounts.rs",
    "clients.rs",
    "emails.rs",
    "import.rs",
    "logouts.rs",
    "proof.rs",
    "mail.rs",
    "cache.rs",
    "limits.rs",
    "outbound.rs",
    "audit/",
    "crypto/",
    "mfa/",
    "manage/",
    "storage/",
];

#[test]
fn services_take_handles_not_the_state() {
    let c = Crate::load();
    let service = |f: &str| SERVICES.iter().any(|s| if s.ends_with('/') { f.starts_with(s) } else { f == *s });
    assert!(SERVICES.iter().all(|s| c.imports.keys().any(|f| f.starts_with(s.trim_end_matches('/')))));
    none("a service takes the application state", c.breaches(service, |t| t == "state.rs"));
}

#[test]
fn the_web_layer_and_the_error_renderer_take_what_they_use() {
    let c = Crate::load();
    let web = |f: &str| under("http")(f) || f == "error.rs" || f == "emails.rs";
    none("http/, error.rs and emails.rs take pieces, not the state", c.breaches(web, |t| t == "state.rs"));
}

#[test]
fn protocol_login_and_federation_meet_only_in_pending() {
    let c = Crate::load();
    none("oidc/ imports login/", c.breaches(under("oidc"), under("login")));
    none("login/ imports oidc/", c.breaches(under("login"), under("oidc")));
    let protocol_or_box = |t: &str| under("oidc")(t) || under("login")(t);
    none("federation/ imports oidc/ or login/", c.breaches(under("federation"), protocol_or_box));
}

#[test]
fn only_the_front_ends_assemble_the_app() {
    let c = Crate::load();
    let front = |f: &str| f == "lib.rs" || under("cli")(f);
    none("app.rs is imported outside cli/", c.breaches(|f| !front(f), |t| t == "app.rs"));
    none("cli/ is imported outside cli/", c.breaches(|f| !front(f), under("cli")));
}

#[test]
fn files_stay_near_400_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut long = Vec::new();
    for p in all {
        let src = std::fs::read_to_string(&p).unwrap();
        let lines = src.find("#[cfg(test)]\nmod tests").map_or(src.as_str(), |i| &src[..i]).lines().count();
        if lines > 420 {
            long.push(format!("{} has {lines} lines before its tests", p.display()));
        }
    }
    none("a file is past 420 lines of code (split it by what it does)", long);
}
