//! The TOML file: its shape as serde structs, and how its values land in `ServerSettings`.
//!
//! Every section and struct denies unknown fields, so `max_envelope = 10` (a typo) fails with
//! the line and the known keys instead of silently keeping a default. Durations are whole
//! seconds (`*_secs`) or days (`*_days`), byte sizes whole bytes; see `deploy/kintsugi.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, ServerSettings, invalid};
use crate::logging::LogFormat;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    data: Option<PathBuf>,
    log_format: Option<String>,
    tls: Option<TlsSection>,
    metrics: Option<MetricsSection>,
    limits: Option<LimitsSection>,
    timing: Option<TimingSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    listen: Option<String>,
    public: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_envelope_bytes: Option<usize>,
    max_envelopes_per_push: Option<usize>,
    max_message_bytes: Option<usize>,
    pull_page_limit: Option<u32>,
    max_invite_attempts: Option<u32>,
    space_quota_bytes: Option<u64>,
    device_calls_per_second: Option<f64>,
    device_call_burst: Option<u32>,
    pairing_calls_per_minute: Option<f64>,
    pairing_call_burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingSection {
    invite_ttl_secs: Option<u64>,
    heartbeat_secs: Option<u64>,
    snapshot_retention_days: Option<u64>,
    keepalive_interval_secs: Option<u64>,
    keepalive_timeout_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
}

/// Reads `path` and overrides `settings` with every key it sets.
pub(super) fn apply(settings: &mut ServerSettings, path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let parsed: FileSettings = toml::from_str(&text).map_err(|error| ConfigError::Parse {
        file: path.to_path_buf(),
        line: error.span().map(|span| {
            text.get(..span.start)
                .unwrap_or(&text)
                .matches('\n')
                .count()
                + 1
        }),
        message: error.message().trim().to_owned(),
    })?;
    let origin = path.display().to_string();
    let addr = |key: &str, text: &str| parse_addr(&origin, key, text);
    if let Some(listen) = &parsed.listen {
        settings.listen = addr("listen", listen)?;
    }
    if let Some(data) = parsed.data {
        settings.config.data_dir = data;
    }
    if let Some(format) = &parsed.log_format {
        settings.log_format = format
            .parse::<LogFormat>()
            .map_err(|problem| invalid(&origin, "log_format", &problem))?;
    }
    if let Some(tls) = parsed.tls {
        settings.tls_cert = tls.cert.or(settings.tls_cert.take());
        settings.tls_key = tls.key.or(settings.tls_key.take());
    }
    if let Some(metrics) = parsed.metrics {
        if let Some(listen) = &metrics.listen {
            settings.config.metrics_listen = Some(addr("metrics.listen", listen)?);
        }
        if let Some(public) = metrics.public {
            settings.config.metrics_public = public;
        }
    }
    if let Some(limits) = parsed.limits {
        apply_limits(settings, limits);
    }
    if let Some(timing) = parsed.timing {
        apply_timing(settings, timing);
    }
    Ok(())
}

fn apply_limits(settings: &mut ServerSettings, limits: LimitsSection) {
    let config = &mut settings.config;
    set(&mut config.max_envelope_bytes, limits.max_envelope_bytes);
    set(
        &mut config.max_envelopes_per_push,
        limits.max_envelopes_per_push,
    );
    set(&mut config.max_message_bytes, limits.max_message_bytes);
    set(&mut config.pull_page_limit, limits.pull_page_limit);
    set(&mut config.max_invite_attempts, limits.max_invite_attempts);
    set(&mut config.space_quota_bytes, limits.space_quota_bytes);
    set(
        &mut config.device_rate.per_second,
        limits.device_calls_per_second,
    );
    set(&mut config.device_rate.burst, limits.device_call_burst);
    set(
        &mut config.pairing_rate.per_second,
        limits.pairing_calls_per_minute.map(|m| m / 60.0),
    );
    set(&mut config.pairing_rate.burst, limits.pairing_call_burst);
}

fn apply_timing(settings: &mut ServerSettings, timing: TimingSection) {
    let config = &mut settings.config;
    let secs = |s: Option<u64>| s.map(Duration::from_secs);
    set(&mut config.invite_ttl, secs(timing.invite_ttl_secs));
    set(&mut config.heartbeat, secs(timing.heartbeat_secs));
    set(
        &mut config.snapshot_retention,
        secs(
            timing
                .snapshot_retention_days
                .map(|d| d.saturating_mul(86_400)),
        ),
    );
    set(
        &mut config.keepalive_interval,
        secs(timing.keepalive_interval_secs),
    );
    set(
        &mut config.keepalive_timeout,
        secs(timing.keepalive_timeout_secs),
    );
    set(&mut config.shutdown_grace, secs(timing.shutdown_grace_secs));
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// An address like `127.0.0.1:7878` or `[::1]:7878`.
pub(super) fn parse_addr(origin: &str, key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.trim().parse().map_err(|_| {
        invalid(
            origin,
            key,
            &format!("`{text}` is not an address with a port, like 127.0.0.1:7878 or [::1]:7878"),
        )
    })
}
