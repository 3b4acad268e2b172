//! Syncing, for apps: the facade over the sync engine, which works on the device's replica.

use std::future::Future;

use super::Device;
use crate::error::Result;
use crate::sync::{SetAside, SyncReport, WatchEvent};

impl Device {
    /// Pushes every local change, then pulls and applies every document. One document that
    /// fails is reported in the result's `failed` and the others still sync; only losing the
    /// server or this device's access fails it all.
    pub async fn sync(&self) -> Result<SyncReport> {
        let report = self.replica.sync().await.map_err(|error| {
            // Offline, a sync keeps what it would have sent, if there is anything.
            match self.pending_changes() {
                0 => error,
                _ => error.kept_offline(),
            }
        })?;
        // A device that finished joining in this sync writes its arrival, which the next sync
        // (or a live one at once) sends.
        self.announce_arrival()?;
        Ok(report)
    }

    /// Syncs live until `shutdown` completes or an error that retrying cannot fix occurs.
    pub async fn watch(
        &self,
        shutdown: impl Future<Output = ()>,
        on_event: impl FnMut(WatchEvent),
    ) -> Result<()> {
        self.announce_arrival()?;
        self.replica.watch(shutdown, on_event).await
    }

    /// Every envelope this device has set aside, for inspection (senders unnamed).
    pub fn set_aside(&self) -> Result<Vec<SetAside>> {
        self.replica.set_aside()
    }
}
