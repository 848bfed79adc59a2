//! README and docs/ stay true to the tree and to the binary: every relative
//! link resolves (a `#fragment` to a heading of the file it names), and every
//! `sesame …` command line in a code block parses as `sesame` would parse it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use clap::Parser;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

fn name(p: &Path) -> String {
    p.strip_prefix(root()).unwrap().display().to_string()
}

/// Lines outside fenced code blocks, and the blocks' lines.
fn split(md: &str) -> (Vec<&str>, Vec<&str>) {
    let (mut prose, mut code, mut fenced) = (Vec::new(), Vec::new(), false);
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            code.push(line);
        } else {
            prose.push(line);
        }
    }
    (prose, code)
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(md: &str) -> Vec<String> {
    split(md).0.iter().filter_map(|l| l.strip_prefix('#')).map(|h| slug(h.trim_start_matches('#'))).collect()
}

/// The targets of `[text](target)` links in the prose.
fn links(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in split(md).0 {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut seen = 0;
    for page in pages() {
        let md = std::fs::read_to_string(&page).unwrap();
        for link in links(&md) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            seen += 1;
            let (file, fragment) = link.split_once('#').map_or((link.as_str(), None), |(f, a)| (f, Some(a)));
            let target = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", name(&page)));
                continue;
            }
            if let Some(anchor) = fragment {
                let text = std::fs::read_to_string(&target).unwrap();
                if !anchors(&text).iter().any(|a| a == anchor) {
                    broken.push(format!("{}: {link} (no such heading)", name(&page)));
                }
            }
        }
    }
    assert!(seen > 20, "only {seen} relative links were found: is the parser reading the pages?");
    assert!(broken.is_empty(), "broken links:\n  {}", broken.join("\n  "));
}

/// Splits a shell line at its unquoted `|`, `;`, `&&`, `||` and drops an
/// unquoted `# comment`.
fn commands(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), None::<char>);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (None, '#') if cur.is_empty() || cur.ends_with(' ') => break,
            (None, '|' | ';' | '&') => {
                while chars.peek().is_some_and(|n| matches!(n, '|' | '&')) {
                    chars.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            (None, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The arguments of a `sesame` (or `cargo run --release --`) invocation, if
/// `command` is one: a `$ ` prompt and `VAR=value` prefixes are skipped.
fn sesame_args(command: &str) -> Option<Vec<String>> {
    let words = shell_words::split(command.trim().trim_start_matches("$ ")).ok()?;
    let words: Vec<String> = words.into_iter().skip_while(|w| w.contains('=') && !w.starts_with('-')).collect();
    let args = match words.first().map(String::as_str) {
        Some("sesame") => words[1..].to_vec(),
        Some("cargo") if words.get(1).is_some_and(|w| w == "run") => {
            words.iter().position(|w| w == "--").map(|i| words[i + 1..].to_vec())?
        }
        _ => return None,
    };
    Some(args)
}

#[test]
fn every_sesame_command_line_parses() {
    let mut failed = Vec::new();
    let mut seen = 0;
    for page in pages() {
        let md = std::fs::read_to_string(&page).unwrap();
        // Continued lines (`\` at the end) are one command.
        let code = split(&md).1.join("\n").replace("\\\n", " ");
        for line in code.lines() {
            for command in commands(line) {
                let Some(args) = sesame_args(&command) else { continue };
                seen += 1;
                let argv = std::iter::once("sesame".to_string()).chain(args);
                if let Err(e) = sesame::cli::Cli::try_parse_from(argv) {
                    let first = e.to_string().lines().next().unwrap_or_default().to_string();
                    failed.push(format!("{}: `{}`: {first}", name(&page), command.trim()));
                }
            }
        }
    }
    assert!(seen > 20, "only {seen} sesame command lines were found: is the parser reading the pages?");
    assert!(failed.is_empty(), "command lines `sesame` refuses:\n  {}", failed.join("\n  "));
}

#[test]
fn the_checks_catch_what_they_should() {
    assert_eq!(slug("Session Management (check_session_iframe)"), "session-management-check_session_iframe");
    assert_eq!(
        slug("Email verification, password reset and the account page"),
        "email-verification-password-reset-and-the-account-page"
    );
    assert_eq!(commands("echo 'a | b' | sesame user add --email x # note").len(), 2);
    assert_eq!(sesame_args("$ SESAME_LISTEN=nope sesame serve"), Some(vec!["serve".to_string()]));
    assert_eq!(sesame_args("cargo run --release -- serve"), Some(vec!["serve".to_string()]));
    let parse =
        |line: &str| sesame::cli::Cli::try_parse_from(sesame_args(line).into_iter().flatten().collect::<Vec<_>>());
    assert!(
        parse("sesame client add --name App --redirect-uri https://a.example.com/cb").is_err(),
        "argv[0] is required"
    );
    let argv = |line: &str| std::iter::once("sesame".to_string()).chain(sesame_args(line).unwrap()).collect::<Vec<_>>();
    assert!(sesame::cli::Cli::try_parse_from(argv("sesame client add --name App")).is_ok());
    assert!(sesame::cli::Cli::try_parse_from(argv("sesame client add --nam App")).is_err());
    assert!(sesame::cli::Cli::try_parse_from(argv("sesame user list USER | show USER")).is_err());
}
