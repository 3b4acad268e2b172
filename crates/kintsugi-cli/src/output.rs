//! Printing results: one JSON value on stdout with `--json`, readable text otherwise.

use kintsugi_core::UnixMillis;
use serde::Serialize;

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
            println!("{}", serde_json::to_string(value)?);
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{text}");
            }
        }
        Ok(())
    }

    /// Progress for people: stderr, so stdout stays one JSON value with `--json`.
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.json {
            eprintln!("{}", text.as_ref());
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
