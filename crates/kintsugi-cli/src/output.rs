//! Printing results: one JSON value on stdout with `--json`, readable text otherwise.
//!
//! A command a running `sync --watch` carries out for another process prints into that
//! request's [`Captured`] instead, and the requesting process prints it.

use std::cell::RefCell;
use std::io::Write;

use kintsugi_core::UnixMillis;
use serde::Serialize;

/// What a command printed, when it ran for another process.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
}

tokio::task_local! {
    /// Set while a command runs for another process; its printing lands here.
    pub static CAPTURE: RefCell<Captured>;
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Prints `line` to `stream`, or into the request's capture when running for another process.
fn write_line(stream: Stream, line: &str) {
    let captured = CAPTURE.try_with(|c| {
        let mut c = c.borrow_mut();
        let buffer = match stream {
            Stream::Stdout => &mut c.stdout,
            Stream::Stderr => &mut c.stderr,
        };
        buffer.push_str(line);
        buffer.push('\n');
    });
    if captured.is_err() {
        let written = match stream {
            Stream::Stdout => writeln!(std::io::stdout().lock(), "{line}"),
            Stream::Stderr => writeln!(std::io::stderr().lock(), "{line}"),
        };
        // The reader went away (`kintsugi journal list | head -1`): stop as a pipeline expects,
        // with the status of a SIGPIPE, instead of panicking about it.
        if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
            std::process::exit(141);
        }
    }
}

/// Reports a failed command: with `--json` one object on stdout,
/// `{"error": {"code", "message"}}`, else one line on stderr.
pub fn report_error(error: &anyhow::Error, json: bool) {
    if json {
        let report = serde_json::json!({
            "error": { "code": error_code(error), "message": one_line(error) }
        });
        write_line(Stream::Stdout, &report.to_string());
    } else {
        write_line(Stream::Stderr, &format!("error: {}", one_line(error)));
    }
}

/// The stable code of the core error behind `error`; `command_failed` for the CLI's own
/// refusals (a missing argument, a declined confirmation), whose messages say what to do.
fn error_code(error: &anyhow::Error) -> &'static str {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<kintsugi_core::CoreError>())
        .map_or("command_failed", kintsugi_core::CoreError::code)
}

/// The error and its causes on one line, without repeating a cause its parent already says.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}

/// How this run prints.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `text` for people.
    pub fn print<T: Serialize>(
        &self,
        value: &T,
        text: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            write_line(Stream::Stdout, &serde_json::to_string(value)?);
        } else {
            let text = text();
            if !text.is_empty() {
                write_line(Stream::Stdout, &text);
            }
        }
        Ok(())
    }

    /// One JSON object on a line of its own, for a stream of events (`sync --watch --json`).
    pub fn json_line(&self, value: &serde_json::Value) {
        write_line(Stream::Stdout, &value.to_string());
    }

    /// Progress for people: stderr, so stdout stays one JSON value with `--json`.
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.json {
            write_line(Stream::Stderr, text.as_ref());
        }
    }
}

/// A timestamp (ms since the epoch) as RFC 3339, for people and JSON alike.
pub fn timestamp(at: UnixMillis) -> String {
    let millis = at.as_millis();
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| millis.to_string())
}

/// `text` as a QR code a terminal can show (empty if it is too long for one).
pub fn qr_code(text: &str) -> String {
    use qrcode::render::unicode;
    qrcode::QrCode::new(text.as_bytes())
        .map(|qr| qr.render::<unicode::Dense1x2>().quiet_zone(true).build())
        .unwrap_or_default()
}
