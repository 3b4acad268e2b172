//! Server settings: where data lives and the limits that protect the server from one client.
//!
//! `Config::new(dir)` gives defaults that suit a couple's phones; the `kintsugi serve` command
//! and the tests change single fields. Limits are enforced by the services, and
//! `max_message_bytes` also sets tonic's encode and decode limits, which default to 4 MiB.

use std::path::PathBuf;
use std::time::Duration;

/// Settings for one server process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The sled data folder. Only one server may use it at a time.
    pub data_dir: PathBuf,
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
}

impl Config {
    /// Defaults: invites live 24 hours and survive 5 wrong secrets, envelopes up to 4 MiB,
    /// 1000 envelopes a push, 16 MiB messages, 1000 envelopes a pull page, a heartbeat every
    /// 15 seconds and 30 days of retention behind a snapshot.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            invite_ttl: Duration::from_secs(24 * 60 * 60),
            max_invite_attempts: 5,
            max_envelope_bytes: 4 * 1024 * 1024,
            max_envelopes_per_push: 1000,
            max_message_bytes: 16 * 1024 * 1024,
            pull_page_limit: 1000,
            heartbeat: Duration::from_secs(15),
            snapshot_retention: Duration::from_secs(30 * 24 * 60 * 60),
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
    }
}
