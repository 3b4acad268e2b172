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
//! Modules: `service` (one file per gRPC service), `auth` (the bearer-token interceptor),
//! `store` (the `Store` trait, the sled backend and its conformance suite), `durability`
//! (group commit to disk), `fanout` (live relay), `clock`, `config` and `error`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use kintsugi_proto::v1::pairing_service_server::PairingServiceServer;
use kintsugi_proto::v1::space_service_server::SpaceServiceServer;
use kintsugi_proto::v1::sync_service_server::SyncServiceServer;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;

mod auth;
mod clock;
mod config;
mod durability;
mod error;
mod fanout;
pub mod ids;
mod service;
pub mod store;

pub use auth::AuthedDevice;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use error::{ServerError, ServiceError};

use service::{PairingApi, SpaceApi, State, SyncApi};
use store::{SledStore, Store};

/// How long `run` waits, after the last connection closed, for streams and background tasks
/// to let go of the store before it closes it anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the Kintsugi services on `listener` until `shutdown` resolves, then ends open
/// Subscribe streams, flushes the store and returns.
///
/// Plaintext gRPC is served only on a loopback address; any other listener is refused with
/// `ServerError::PlaintextNotLoopback`.
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
    let address = listener.local_addr()?;
    if !is_loopback(address) {
        return Err(ServerError::PlaintextNotLoopback(address));
    }
    let dir = config.data_dir.clone();
    let opening = dir.clone();
    let opened = tokio::task::spawn_blocking(move || SledStore::open(opening))
        .await
        .map_err(|error| ServerError::Io(std::io::Error::other(error)))?;
    let store: Arc<dyn Store> =
        Arc::new(opened.map_err(|e| ServerError::from_open(dir.clone(), e))?);
    tracing::info!(%address, data = %dir.display(), "kintsugi server listening");
    serve(listener, config, store, clock, shutdown).await
}

/// Plaintext is acceptable only where no one else can listen: 127.0.0.0/8 and ::1 (also as
/// an IPv4-mapped address).
fn is_loopback(address: SocketAddr) -> bool {
    match address.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip
            .to_ipv4_mapped()
            .map_or(ip.is_loopback(), |v4| v4.is_loopback()),
    }
}

async fn serve(
    listener: TcpListener,
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let dir = config.data_dir.clone();
    let max_message = config.max_message_bytes;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let state = Arc::new(State::new(store.clone(), config, clock, stop_rx, alive_tx));
    service::spawn_compaction(state.clone());

    let authenticator = auth::Authenticator::new(store.clone());
    let pairing = PairingServiceServer::new(PairingApi::new(state.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let space = SpaceServiceServer::new(SpaceApi::new(state.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let sync = SyncServiceServer::new(SyncApi::new(state.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    drop(state);

    // Small gRPC frames must not wait for Nagle's algorithm; tonic sets this itself only for
    // listeners it binds.
    let incoming = TcpListenerStream::new(listener).map(|connection| {
        if let Ok(stream) = &connection {
            let _ = stream.set_nodelay(true);
        }
        connection
    });
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: ending streams, finishing requests");
        // Ends the Subscribe streams, which graceful shutdown would otherwise wait on forever.
        let _ = stop_tx.send(true);
    };
    let served = Server::builder()
        .add_service(pairing)
        .add_service(InterceptedService::new(space, authenticator.clone()))
        .add_service(InterceptedService::new(sync, authenticator))
        .serve_with_incoming_shutdown(incoming, signal)
        .await;

    // Every stream, blocking task and background loop holds the state; wait until they let go.
    if tokio::time::timeout(DRAIN_TIMEOUT, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not finish in time; closing the store anyway");
    }
    let closed = tokio::task::spawn_blocking(move || {
        let flushed = store.flush();
        // Dropping the last handle closes sled and releases the folder's lock.
        drop(store);
        flushed
    })
    .await
    .map_err(|error| ServerError::Io(std::io::Error::other(error)))?;
    served?;
    closed.map_err(|source| ServerError::Store { dir, source })?;
    tracing::info!("kintsugi server stopped");
    Ok(())
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
