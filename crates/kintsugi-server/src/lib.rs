//! The blind Kintsugi sync server: it stores and relays end-to-end encrypted changes.
//!
//! Devices push encrypted Automerge changes ("envelopes") to a document's log, pull them
//! back, and keep a Subscribe stream open for live ones. The server assigns each envelope a
//! position, makes it durable before it acknowledges it, enforces who may read which
//! document (shared, or private to one member) and relays envelopes to the other devices; it
//! never holds a key and cannot read a single change.
//!
//! The binary, the demo and every test start the server the same way:
//!
//! ```no_run
//! # async fn example() -> Result<(), kintsugi_server::ServerError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = kintsugi_server::Config::new("/var/lib/kintsugi");
//! kintsugi_server::run(listener, config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
//!
//! Tests do it through `testing::TestServer` (the `testing` feature), which runs
//! `run_with_listeners` on a loopback port over a scratch sled folder.
//!
//! `kintsugi serve` builds its `Config` with `ServerSettings` (file, environment, flags) and
//! calls `serve_settings`. Modules: `server` (the gRPC stack: TLS, health, reflection,
//! metrics, shutdown), `service` (one file per gRPC service), `auth` (bearer-token
//! interceptors), `observe` (a span, a log line and metrics per call), `limits` (rate limits),
//! `store` (the `Store` traits, the sled backend, backups and their conformance suite),
//! `durability` (group commit to disk), `fanout` (live relay), `offline_admin` (operator tasks
//! on a data folder no server uses), `admin_token`, `owner_only` (the data folder's modes),
//! `settings` (the operator's file, environment and flags, and the `Config` they make), `tls`,
//! `logging`, `metrics`, `clock` and `error`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;

pub mod admin_token;
mod auth;
mod clock;
mod durability;
mod error;
mod fanout;
pub mod ids;
mod limits;
pub mod logging;
mod metrics;
mod observe;
pub mod offline_admin;
pub mod owner_only;
mod server;
mod service;
mod settings;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tls;
mod wire_bytes;

pub use auth::AuthedDevice;
pub use clock::{Clock, ManualClock, SystemClock, UnixSeconds};
pub use error::{ServerError, ServiceError};
pub use logging::LogFormat;
pub use offline_admin::AdminError;
pub use server::PAIRING_MESSAGE_BYTES;
pub use settings::{
    Config, ConfigError, DEFAULT_DATA, DEFAULT_LISTEN, RateLimit, ServerSettings, TlsFiles,
    VARIABLES,
};
pub use tls::error_chain;

/// Serves the Kintsugi services on `listener` until `shutdown` resolves, then ends open
/// Subscribe streams, flushes the store and returns. Also serves metrics when
/// `config.metrics_listen` is set.
///
/// Without `config.tls`, plaintext gRPC is served only on a loopback address; any other
/// listener is refused with `ServerError::PlaintextNotLoopback`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_with_clock(listener, config, Arc::new(SystemClock), shutdown).await
}

/// `run` with another source of time, so tests can let invites expire and snapshots age.
pub async fn run_with_clock(
    listener: TcpListener,
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_with_listeners(listener, None, config, clock, shutdown).await
}

/// `run_with_clock` with the metrics listener bound by the caller (tests bind port 0 to
/// learn the address). With `None`, `config.metrics_listen` is bound if it is set.
pub async fn run_with_listeners(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    server::start(listener, metrics_listener, config, clock, shutdown).await
}

/// Binds `settings.listen` and runs the server with `settings.config` until `shutdown`.
/// Call `settings.validate()` first.
pub async fn serve_settings(
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener =
        TcpListener::bind(settings.listen)
            .await
            .map_err(|source| ServerError::Bind {
                what: "gRPC",
                address: settings.listen,
                source,
            })?;
    run(listener, settings.config, shutdown).await
}

/// Plaintext is acceptable only where no one else can listen: 127.0.0.0/8 and ::1 (also as
/// an IPv4-mapped address).
pub(crate) fn is_loopback(address: SocketAddr) -> bool {
    match address.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip
            .to_ipv4_mapped()
            .map_or(ip.is_loopback(), |v4| v4.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_count_as_loopback() {
        let ok = [
            "127.0.0.1:1",
            "127.8.9.1:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ];
        for address in ok {
            assert!(
                is_loopback(address.parse().expect("an address")),
                "{address}"
            );
        }
        for address in [
            "0.0.0.0:1",
            "192.168.1.2:1",
            "[::]:1",
            "[::ffff:10.0.0.1]:1",
        ] {
            assert!(
                !is_loopback(address.parse().expect("an address")),
                "{address}"
            );
        }
    }
}
