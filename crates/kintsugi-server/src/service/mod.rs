//! The gRPC services and what they share: the store, the settings, the clock and the fan-out.
//!
//! One file per service (`pairing`, `space`, `sync`, `admin`) plus `subscribe` for the
//! long-lived stream and `recovery` for recovery kits (a call of each of the first two).
//! Handlers validate input, call the store through `State::blocking` (sled is
//! synchronous; async code must not block), wait for durability where a reply promises it,
//! and turn their `ServiceError` into a `tonic::Status` only at the edge. Every task that
//! outlives a request (streams, compaction) holds an `Arc<State>`; `run` waits until all of
//! them have let go before it flushes and closes the store.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::error::ServiceError;
use crate::fanout::FanOut;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::settings::Config;
use crate::store::{Durable, Store};

pub(crate) mod admin;
pub(crate) mod doc_page;
pub(crate) mod pairing;
pub(crate) mod push_pipeline;
pub(crate) mod recovery;
pub(crate) mod space;
pub(crate) mod stream_queue;
pub(crate) mod streams;
pub(crate) mod subscribe;
pub(crate) mod sync;

pub(crate) use admin::AdminApi;
pub(crate) use pairing::PairingApi;
pub(crate) use space::SpaceApi;
pub(crate) use sync::SyncApi;

/// The longest sealed (client-encrypted) name the server keeps.
pub(crate) const MAX_SEALED_NAME_BYTES: usize = 1024;

/// What every handler needs.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: Config,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) fanout: Arc<FanOut>,
    /// Where pushes queue to be appended, synced and relayed in batches.
    pub(crate) pushes: push_pipeline::PushPipeline,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    /// The live streams each device holds open, capped per device.
    pub(crate) streams: streams::StreamRegistry,
    /// Turns true when the server shuts down; long-lived streams end then.
    pub(crate) stop: watch::Receiver<bool>,
    /// Never sent on: `run` learns that every holder of the state is gone when the channel
    /// closes.
    _alive: mpsc::Sender<()>,
}

impl State {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        config: Config,
        clock: Arc<dyn Clock>,
        stop: watch::Receiver<bool>,
        alive: mpsc::Sender<()>,
    ) -> std::io::Result<Self> {
        let limits = Limits::new(config.device_rate, config.pairing_rate);
        let fanout = Arc::new(FanOut::new());
        let metrics = Arc::new(Metrics::new());
        let relay = push_pipeline::Relay {
            store: Arc::clone(&store),
            fanout: Arc::clone(&fanout),
            metrics: Arc::clone(&metrics),
        };
        let pushes = push_pipeline::PushPipeline::start(relay, alive.clone())?;
        Ok(Self {
            store,
            config,
            clock,
            fanout,
            pushes,
            metrics,
            limits,
            streams: streams::StreamRegistry::default(),
            stop,
            _alive: alive,
        })
    }

    /// Runs store work on tokio's blocking pool. The closure holds the state, so shutdown
    /// waits for it even if the request that started it was cancelled.
    pub(crate) async fn blocking<T, F>(self: &Arc<Self>, work: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&State) -> Result<T, ServiceError> + Send + 'static,
    {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&state)).await?
    }

    /// Settles once every write made so far is on disk.
    pub(crate) async fn durable(&self) -> Result<(), ServiceError> {
        let promise: Durable = self.store.durable();
        Ok(promise.await?)
    }

    /// Whether the server is shutting down.
    pub(crate) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

/// A 16-byte id from a request field, or a message naming the field.
pub(crate) fn parse_id<T>(
    bytes: &[u8],
    field: &str,
    parse: fn(&[u8]) -> Option<T>,
) -> Result<T, ServiceError> {
    parse(bytes).ok_or_else(|| {
        ServiceError::invalid(format!("{field} must be 16 bytes, got {}", bytes.len()))
    })
}

/// Refuses a sealed name over the size limit. Names are opaque ciphertext; empty is allowed.
pub(crate) fn check_sealed_name(bytes: &[u8], field: &str) -> Result<(), ServiceError> {
    if bytes.len() > MAX_SEALED_NAME_BYTES {
        return Err(ServiceError::invalid(format!(
            "{field} is {} bytes; sealed names are at most {MAX_SEALED_NAME_BYTES} bytes",
            bytes.len()
        )));
    }
    Ok(())
}

/// Once an hour (and at start): promotes every candidate snapshot that has stood the
/// retention window to serving, and deletes the log entries the serving snapshots cover.
pub(crate) fn spawn_compaction(state: Arc<State>) {
    const PERIOD: Duration = Duration::from_secs(60 * 60);
    tokio::spawn(async move {
        let mut stop = state.stop.clone();
        // The first sweep runs at start, so a server that was down past a retention window
        // catches up at once.
        let mut first = true;
        loop {
            if state.stopping() {
                break;
            }
            if !first {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(PERIOD) => {}
                }
            }
            first = false;
            let now = state.clock.now();
            let retention = state.config.snapshot_retention;
            let swept = state
                .blocking(move |state| Ok(state.store.compact_all(now, retention)?))
                .await;
            match swept {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "compaction deleted covered log entries"),
                Err(error) => tracing::warn!(%error, "compaction failed; will try again"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DocId;

    #[test]
    fn ids_and_names_are_checked_with_the_field_named() {
        let error = parse_id(&[1, 2], "doc_id", DocId::from_slice).expect_err("too short");
        assert_eq!(error.to_string(), "doc_id must be 16 bytes, got 2");
        assert!(check_sealed_name(&[0; 1024], "name").is_ok());
        assert!(check_sealed_name(&[0; 1025], "name").is_err());
    }
}
