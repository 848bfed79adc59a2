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

/// Text lines: every field (the message too) goes through `text::escape`,
/// so a value from outside — an upstream's `error_description`, a header, a
/// typed address — can neither forge a line nor carry terminal escapes. JSON
/// lines need nothing more: serde_json writes every control character as
/// `\uXXXX`.
fn escaped() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let v = format!("{value:?}");
        let v = crate::text::escape(&v);
        if field.name() == "message" { write!(w, "{v}") } else { write!(w, "{}={v}", field.name()) }
    })
    .delimited(" ")
}

/// Starts logging (and, when `traces` names an endpoint, the OpenTelemetry
/// exporter, whose handle comes back to be flushed at shutdown).
pub fn init(
    format: LogFormat,
    level: &str,
    sink: Sink,
    traces: Option<&crate::config::TracingConfig>,
) -> anyhow::Result<Option<crate::telemetry::traces::Traces>> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

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
    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    let base = tracing_subscriber::fmt::layer().with_ansi(ansi);
    let lines: Boxed = match (format, sink) {
        (LogFormat::Json, Sink::Stdout) => {
            base.json().with_current_span(true).with_span_list(false).with_writer(std::io::stdout).boxed()
        }
        (LogFormat::Json, Sink::Stderr) => {
            base.json().with_current_span(true).with_span_list(false).with_writer(std::io::stderr).boxed()
        }
        (LogFormat::Text, Sink::Stdout) => base.fmt_fields(escaped()).with_writer(std::io::stdout).boxed(),
        (LogFormat::Text, Sink::Stderr) => base.fmt_fields(escaped()).with_writer(std::io::stderr).boxed(),
    };
    // Spans only: events (log lines, the audit log's among them) carry typed
    // addresses and the like, which stay in the logs.
    let (otel, handle) = match traces.map(crate::telemetry::traces::layer).transpose()?.flatten() {
        Some((layer, handle)) => {
            (Some(layer.with_filter(tracing_subscriber::filter::filter_fn(|m| m.is_span()))), Some(handle))
        }
        None => (None, None),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(lines).with(otel).with(filter).try_init();
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_lines_escape_values_from_outside() {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(super::escaped())
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(sub, || {
            let reason = "upstream error `x`: bad\n2026-01-01T00:00:00Z  INFO forged=1 \u{1b}[31m";
            tracing::warn!(provider = %"corp", reason = %reason, "upstream sign-in failed {}", "\r\nagain");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "one event, one line: {out}");
        assert!(out.contains("bad\\n2026") && out.contains("\\u{1b}[31m") && out.contains("\\r\\nagain"), "{out}");
    }
}
