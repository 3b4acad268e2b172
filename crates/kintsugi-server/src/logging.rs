//! Log output: plain lines for people, JSON lines for log collectors.
//!
//! The server logs through `tracing`; the binary chooses how lines look. `init` installs a
//! global subscriber in the chosen format with the filter from `RUST_LOG` (default `info`).
//! `subscriber` builds the same thing over any writer, which is how the tests capture the
//! output of a whole session and check it for secrets. What the server logs never contains a
//! token, a secret, a key, a name or ciphertext: ids, sizes, codes and latencies only (see
//! `observe`).

use std::str::FromStr;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Plain,
    /// One JSON object per line, with the call's span fields.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "plain" | "text" => Ok(LogFormat::Plain),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("`{text}` is not a log format; use plain or json")),
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("RUST_LOG is not a valid filter: {0}")]
    Filter(String),
    #[error("logging was set up already")]
    AlreadySet,
}

/// The filter from `RUST_LOG`, or `default` when it is unset.
pub fn filter(default: &str) -> Result<EnvFilter, LoggingError> {
    match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            EnvFilter::try_new(text).map_err(|e| LoggingError::Filter(e.to_string()))
        }
        _ => EnvFilter::try_new(default).map_err(|e| LoggingError::Filter(e.to_string())),
    }
}

/// A subscriber writing `format` lines to `writer`, filtered by `filter`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Colour only for a person at a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(true);
    match format {
        LogFormat::Plain => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// Installs the global subscriber: `format` lines on stderr, `RUST_LOG` or `info`.
pub fn init(format: LogFormat) -> Result<(), LoggingError> {
    let subscriber = subscriber(format, filter("info")?, std::io::stderr);
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LoggingError::AlreadySet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_from_settings_text() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("plain".parse::<LogFormat>(), Ok(LogFormat::Plain));
        assert!("xml".parse::<LogFormat>().is_err());
    }

    #[test]
    fn json_lines_carry_the_span_fields() {
        use std::sync::{Arc, Mutex};
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = buffer.clone();
        let make = move || Sink(sink.clone());
        let subscriber = subscriber(LogFormat::Json, EnvFilter::new("info"), make);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("call", method = "m", code = tracing::field::Empty);
            span.record("code", "OK");
            tracing::info!(parent: &span, "call finished");
        });
        let text = String::from_utf8(buffer.lock().expect("a lock").clone()).expect("UTF-8");
        assert!(
            text.contains(r#""span":{"code":"OK","method":"m","name":"call"}"#),
            "{text}"
        );
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("a lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
