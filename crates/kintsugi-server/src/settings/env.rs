//! Environment variables: each overrides one key of the file, and flags override them.
//!
//! Containers and systemd units configure services through the environment, so every key of
//! the file has a variable. The names follow the key: `KINTSUGI_` and the key's last part in
//! capitals (`limits.space_quota_bytes` is `KINTSUGI_SPACE_QUOTA_BYTES`), with the section
//! kept where the last part alone would be vague (`KINTSUGI_TLS_CERT`,
//! `KINTSUGI_METRICS_LISTEN`). An empty variable counts as unset.

use std::time::Duration;

use super::file::parse_addr;
use super::{ConfigError, ServerSettings, invalid};
use crate::logging::LogFormat;

/// The variable naming the configuration file when `load` is given none.
pub const CONFIG_VARIABLE: &str = "KINTSUGI_CONFIG";

/// Every variable `load` reads, with the key it overrides, for documentation and `--help`.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "KINTSUGI_CONFIG",
        "the configuration file (when no --config is given)",
    ),
    ("KINTSUGI_LISTEN", "listen"),
    ("KINTSUGI_DATA", "data"),
    ("KINTSUGI_LOG_FORMAT", "log_format"),
    ("KINTSUGI_TLS_CERT", "tls.cert"),
    ("KINTSUGI_TLS_KEY", "tls.key"),
    ("KINTSUGI_METRICS_LISTEN", "metrics.listen"),
    ("KINTSUGI_METRICS_PUBLIC", "metrics.public"),
    ("KINTSUGI_MAX_ENVELOPE_BYTES", "limits.max_envelope_bytes"),
    (
        "KINTSUGI_MAX_ENVELOPES_PER_PUSH",
        "limits.max_envelopes_per_push",
    ),
    ("KINTSUGI_MAX_MESSAGE_BYTES", "limits.max_message_bytes"),
    ("KINTSUGI_PULL_PAGE_LIMIT", "limits.pull_page_limit"),
    ("KINTSUGI_MAX_INVITE_ATTEMPTS", "limits.max_invite_attempts"),
    ("KINTSUGI_SPACE_QUOTA_BYTES", "limits.space_quota_bytes"),
    (
        "KINTSUGI_DEVICE_CALLS_PER_SECOND",
        "limits.device_calls_per_second",
    ),
    ("KINTSUGI_DEVICE_CALL_BURST", "limits.device_call_burst"),
    (
        "KINTSUGI_PAIRING_CALLS_PER_MINUTE",
        "limits.pairing_calls_per_minute",
    ),
    ("KINTSUGI_PAIRING_CALL_BURST", "limits.pairing_call_burst"),
    ("KINTSUGI_INVITE_TTL_SECS", "timing.invite_ttl_secs"),
    ("KINTSUGI_HEARTBEAT_SECS", "timing.heartbeat_secs"),
    (
        "KINTSUGI_SNAPSHOT_RETENTION_DAYS",
        "timing.snapshot_retention_days",
    ),
    (
        "KINTSUGI_KEEPALIVE_INTERVAL_SECS",
        "timing.keepalive_interval_secs",
    ),
    (
        "KINTSUGI_KEEPALIVE_TIMEOUT_SECS",
        "timing.keepalive_timeout_secs",
    ),
    ("KINTSUGI_SHUTDOWN_GRACE_SECS", "timing.shutdown_grace_secs"),
];

/// Applies every set variable, then checks the limits again.
pub(super) fn apply(
    settings: &mut ServerSettings,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (name, key) in VARIABLES.iter().skip(1) {
        let Some(value) = env(name).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        set(settings, name, key, value.trim()).map_err(|problem| invalid(name, key, &problem))?;
        settings
            .config
            .check()
            .map_err(|e| invalid(name, e.key, &e.problem))?;
    }
    Ok(())
}

/// Sets `key` from the text of variable `name`; the error is the problem only.
fn set(settings: &mut ServerSettings, name: &str, key: &str, text: &str) -> Result<(), String> {
    let config = &mut settings.config;
    match key {
        "listen" => settings.listen = addr(name, key, text)?,
        "data" => config.data_dir = text.into(),
        "log_format" => settings.log_format = text.parse::<LogFormat>()?,
        "tls.cert" => settings.tls_cert = Some(text.into()),
        "tls.key" => settings.tls_key = Some(text.into()),
        "metrics.listen" => config.metrics_listen = Some(addr(name, key, text)?),
        "metrics.public" => config.metrics_public = boolean(text)?,
        "limits.max_envelope_bytes" => config.max_envelope_bytes = number(text)?,
        "limits.max_envelopes_per_push" => config.max_envelopes_per_push = number(text)?,
        "limits.max_message_bytes" => config.max_message_bytes = number(text)?,
        "limits.pull_page_limit" => config.pull_page_limit = number(text)?,
        "limits.max_invite_attempts" => config.max_invite_attempts = number(text)?,
        "limits.space_quota_bytes" => config.space_quota_bytes = number(text)?,
        "limits.device_calls_per_second" => config.device_rate.per_second = rate(text)?,
        "limits.device_call_burst" => config.device_rate.burst = number(text)?,
        "limits.pairing_calls_per_minute" => config.pairing_rate.per_second = rate(text)? / 60.0,
        "limits.pairing_call_burst" => config.pairing_rate.burst = number(text)?,
        "timing.invite_ttl_secs" => config.invite_ttl = secs(text)?,
        "timing.heartbeat_secs" => config.heartbeat = secs(text)?,
        "timing.snapshot_retention_days" => {
            config.snapshot_retention =
                Duration::from_secs(number::<u64>(text)?.saturating_mul(86_400));
        }
        "timing.keepalive_interval_secs" => config.keepalive_interval = secs(text)?,
        "timing.keepalive_timeout_secs" => config.keepalive_timeout = secs(text)?,
        "timing.shutdown_grace_secs" => config.shutdown_grace = secs(text)?,
        other => return Err(format!("is not a setting this server knows ({other})")),
    }
    Ok(())
}

fn addr(name: &str, key: &str, text: &str) -> Result<std::net::SocketAddr, String> {
    parse_addr(name, key, text).map_err(|error| match error {
        ConfigError::Invalid { problem, .. } => problem,
        other => other.to_string(),
    })
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number in range"))
}

fn rate(text: &str) -> Result<f64, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a number (like 20 or 0.5)"))
}

fn secs(text: &str) -> Result<Duration, String> {
    number::<u64>(text).map(Duration::from_secs)
}

fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("`{text}` is not true or false")),
    }
}
