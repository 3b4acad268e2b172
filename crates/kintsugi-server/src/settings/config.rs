//! Server settings: where data lives, TLS, metrics, and the limits that protect the server
//! from one client.
//!
//! `Config::new(dir)` gives defaults that suit a couple's phones; `ServerSettings` (in
//! `settings`) fills a `Config` from a TOML file, the environment and flags, and the tests
//! change single fields. Limits are enforced by the services, and `max_message_bytes` also
//! sets tonic's encode and decode limits, which default to 4 MiB.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The PEM files of the server's TLS identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A token bucket: `burst` calls at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Calls per second in the long run.
    pub per_second: f64,
    /// Calls allowed in a burst (the bucket's size).
    pub burst: u32,
}

/// Settings for one server process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The sled data folder. Only one server may use it at a time.
    pub data_dir: PathBuf,
    /// Serve gRPC over TLS with this identity. Without it, only loopback addresses are served.
    pub tls: Option<TlsFiles>,
    /// Serve Prometheus metrics over plain HTTP at `GET /metrics` on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// Allow `metrics_listen` off loopback. Metrics carry no secrets but do show activity,
    /// and they are never encrypted, so the operator has to ask for this explicitly.
    pub metrics_public: bool,
    /// How long an invite code stays redeemable.
    pub invite_ttl: Duration,
    /// Wrong secrets an invite survives; it is deleted at this many failed attempts, which
    /// keeps guessing a 32-byte secret hopeless even before its length is considered.
    pub max_invite_attempts: u32,
    /// The largest ciphertext of one change envelope.
    pub max_envelope_bytes: usize,
    /// The most envelopes one push may carry.
    pub max_envelopes_per_push: usize,
    /// The largest gRPC message the server sends or accepts (tonic's default is 4 MiB).
    pub max_message_bytes: usize,
    /// The most envelopes one pull returns, whatever the client asks for.
    pub pull_page_limit: u32,
    /// How often a Subscribe stream carries a heartbeat, so clients notice a dead connection.
    pub heartbeat: Duration,
    /// How long log entries covered by a snapshot are kept before compaction deletes them, so
    /// a client with a bad snapshot cannot destroy another device's data at once.
    pub snapshot_retention: Duration,
    /// Nonce and ciphertext bytes one space may hold (log and snapshots).
    pub space_quota_bytes: u64,
    /// Calls one device may make.
    pub device_rate: RateLimit,
    /// `CreateSpace` and `AcceptInvite` calls one IP address may make.
    pub pairing_rate: RateLimit,
    /// HTTP/2 pings on idle connections, so dead mobile connections are noticed and reaped.
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// After the shutdown signal, how long calls may take to finish before connections are
    /// closed anyway (a client could otherwise hold a stream open for ever).
    pub shutdown_grace: Duration,
}

/// The smallest `max_envelope_bytes` a configuration may set.
pub const MIN_ENVELOPE_BYTES: usize = 1024;
/// The smallest `max_message_bytes` a configuration may set.
pub const MIN_MESSAGE_BYTES: usize = 64 * 1024;
/// The shortest `snapshot_retention` a configuration may set: one day, so the devices of a
/// space have a chance to audit a candidate snapshot before the log it covers is pruned.
pub const MIN_SNAPSHOT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

impl Config {
    /// Defaults: no TLS (loopback only), no metrics endpoint, invites live 24 hours and
    /// survive 5 wrong secrets, envelopes up to 4 MiB, 1000 envelopes a push, 16 MiB messages,
    /// 1000 envelopes a pull page, a heartbeat every 15 seconds, 30 days of retention behind a
    /// snapshot, 1 GiB per space, 20 calls a second per device (bursts of 200), 10 pairing
    /// calls a minute per address (bursts of 20), keepalive pings every 30 s answered within
    /// 10 s, and 10 s for calls to finish at shutdown.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            tls: None,
            metrics_listen: None,
            metrics_public: false,
            invite_ttl: Duration::from_secs(24 * 60 * 60),
            max_invite_attempts: 5,
            max_envelope_bytes: 4 * 1024 * 1024,
            max_envelopes_per_push: 1000,
            max_message_bytes: 16 * 1024 * 1024,
            pull_page_limit: 1000,
            heartbeat: Duration::from_secs(15),
            snapshot_retention: Duration::from_secs(30 * 24 * 60 * 60),
            space_quota_bytes: 1 << 30,
            device_rate: RateLimit {
                per_second: 20.0,
                burst: 200,
            },
            pairing_rate: RateLimit {
                per_second: 10.0 / 60.0,
                burst: 20,
            },
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }

    /// The byte budget of one pull page or catch-up event: half a message, which leaves room
    /// for protobuf framing and a snapshot however the envelopes are sized.
    pub(crate) fn page_budget_bytes(&self) -> usize {
        self.max_message_bytes / 2
    }

    /// The largest snapshot ciphertext: a snapshot must fit into one pull response.
    pub(crate) fn max_snapshot_bytes(&self) -> usize {
        self.max_message_bytes / 2
    }

    /// Checks the limits; the error names the setting (as in the TOML file) and the problem.
    pub(crate) fn check(&self) -> Result<(), Invalid> {
        self.check_sizes()?;
        self.check_counts()?;
        self.check_rates()?;
        self.check_durations()?;
        self.check_tls()
    }

    /// Envelopes and messages are large enough, and an envelope fits into a pull page.
    fn check_sizes(&self) -> Result<(), Invalid> {
        if self.max_envelope_bytes < MIN_ENVELOPE_BYTES {
            return fail(
                "limits.max_envelope_bytes",
                format!("must be at least {MIN_ENVELOPE_BYTES}"),
            );
        }
        if self.max_message_bytes < MIN_MESSAGE_BYTES {
            return fail(
                "limits.max_message_bytes",
                format!("must be at least {MIN_MESSAGE_BYTES}"),
            );
        }
        // An envelope must fit into a pull page, which is half a message.
        if self.max_envelope_bytes > self.page_budget_bytes().saturating_sub(1024) {
            return fail(
                "limits.max_envelope_bytes",
                format!(
                    "must be at most half of limits.max_message_bytes minus 1024 ({})",
                    self.page_budget_bytes().saturating_sub(1024)
                ),
            );
        }
        Ok(())
    }

    /// Every count and burst is at least 1.
    fn check_counts(&self) -> Result<(), Invalid> {
        let counts = [
            (
                "limits.max_envelopes_per_push",
                self.max_envelopes_per_push as u64,
            ),
            ("limits.pull_page_limit", u64::from(self.pull_page_limit)),
            (
                "limits.max_invite_attempts",
                u64::from(self.max_invite_attempts),
            ),
            ("limits.space_quota_bytes", self.space_quota_bytes),
            (
                "limits.device_call_burst",
                u64::from(self.device_rate.burst),
            ),
            (
                "limits.pairing_call_burst",
                u64::from(self.pairing_rate.burst),
            ),
        ];
        for (key, value) in counts {
            if value == 0 {
                return fail(key, "must be at least 1".into());
            }
        }
        Ok(())
    }

    /// Every call rate is a number above 0.
    fn check_rates(&self) -> Result<(), Invalid> {
        let rates = [
            (
                "limits.device_calls_per_second",
                self.device_rate.per_second,
            ),
            (
                "limits.pairing_calls_per_minute",
                self.pairing_rate.per_second,
            ),
        ];
        for (key, rate) in rates {
            if !(rate.is_finite() && rate > 0.0) {
                return fail(key, "must be a number above 0".into());
            }
        }
        Ok(())
    }

    /// Every duration is at least a second, and snapshots stand at least a day.
    fn check_durations(&self) -> Result<(), Invalid> {
        let durations = [
            ("timing.heartbeat_secs", self.heartbeat),
            ("timing.invite_ttl_secs", self.invite_ttl),
            ("timing.keepalive_interval_secs", self.keepalive_interval),
            ("timing.keepalive_timeout_secs", self.keepalive_timeout),
        ];
        for (key, duration) in durations {
            if duration.is_zero() {
                return fail(key, "must be at least 1".into());
            }
        }
        if self.snapshot_retention < MIN_SNAPSHOT_RETENTION {
            return fail(
                "timing.snapshot_retention_days",
                "must be at least 1: devices audit a snapshot against the log it covers while \
                 it stands, and 0 would let a bad snapshot prune that log before any device \
                 looked (the default is 30)"
                    .into(),
            );
        }
        Ok(())
    }

    /// TLS, if on, names a certificate and a key file.
    fn check_tls(&self) -> Result<(), Invalid> {
        if self
            .tls
            .as_ref()
            .is_some_and(|tls| tls.cert.as_os_str().is_empty())
        {
            return fail("tls.cert", "must name a PEM file".into());
        }
        if self
            .tls
            .as_ref()
            .is_some_and(|tls| tls.key.as_os_str().is_empty())
        {
            return fail("tls.key", "must name a PEM file".into());
        }
        Ok(())
    }
}

/// A setting out of range: its key (as in the TOML file) and the problem.
#[derive(Debug, PartialEq)]
pub(crate) struct Invalid {
    pub(crate) key: &'static str,
    pub(crate) problem: String,
}

/// Refuses the setting `key` with `problem`.
fn fail(key: &'static str, problem: String) -> Result<(), Invalid> {
    Err(Invalid { key, problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_limits() {
        let config = Config::new("/tmp/x");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.invite_ttl, Duration::from_secs(86_400));
        assert_eq!(config.max_invite_attempts, 5);
        assert_eq!(config.max_envelope_bytes, 4 << 20);
        assert_eq!(config.max_envelopes_per_push, 1000);
        assert_eq!(config.max_message_bytes, 16 << 20);
        assert_eq!(config.pull_page_limit, 1000);
        assert_eq!(config.heartbeat, Duration::from_secs(15));
        assert_eq!(config.snapshot_retention, Duration::from_secs(30 * 86_400));
        assert_eq!(config.space_quota_bytes, 1 << 30);
        assert_eq!(
            (config.device_rate.per_second, config.device_rate.burst),
            (20.0, 200)
        );
        assert_eq!(config.keepalive_interval, Duration::from_secs(30));
        assert_eq!(config.keepalive_timeout, Duration::from_secs(10));
        assert!(config.tls.is_none() && config.metrics_listen.is_none());
        assert_eq!(config.check(), Ok(()));
    }

    #[test]
    fn limits_out_of_range_name_their_key() {
        let mut config = Config::new("/tmp/x");
        config.max_envelope_bytes = 10;
        assert_eq!(
            config.check(),
            Err(Invalid {
                key: "limits.max_envelope_bytes",
                problem: "must be at least 1024".into()
            })
        );
        let mut config = Config::new("/tmp/x");
        config.device_rate.per_second = 0.0;
        assert_eq!(
            config.check().map_err(|e| e.key),
            Err("limits.device_calls_per_second")
        );
    }
}
