//! Tracing setup: human-readable text or one JSON object per line, filtered by
//! `log_level` (or `RUST_LOG` when set).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Where log lines go: the server logs to stdout (container convention); other
/// commands log to stderr so their stdout stays machine-readable.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

pub fn init(format: LogFormat, level: &str, sink: Sink) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let ansi = match sink {
        Sink::Stdout => std::io::stdout().is_terminal(),
        Sink::Stderr => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    let res = match (format, sink) {
        (LogFormat::Json, Sink::Stdout) => {
            builder.json().with_current_span(true).with_span_list(false).with_writer(std::io::stdout).try_init()
        }
        (LogFormat::Json, Sink::Stderr) => {
            builder.json().with_current_span(true).with_span_list(false).with_writer(std::io::stderr).try_init()
        }
        (LogFormat::Text, Sink::Stdout) => builder.with_writer(std::io::stdout).try_init(),
        (LogFormat::Text, Sink::Stderr) => builder.with_writer(std::io::stderr).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(res);
}
