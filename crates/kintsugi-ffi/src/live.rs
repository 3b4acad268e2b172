//! Live sync for apps: it runs on the core's own tokio runtime and tells the app, through a
//! listener the app implements, when a document changed and when the connection state did.

use std::sync::{Arc, OnceLock};

use kintsugi_core::{Device as CoreDevice, WatchEvent};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::error::KintsugiError;

/// The connection as live sync sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    /// Connected and caught up; changes arrive as they happen.
    Online,
    /// The connection failed; the next attempt is in `retry_in_ms`.
    Retrying { reason: String, retry_in_ms: u64 },
    /// Live sync ended: stopped by the app, or an error retrying cannot fix (`message`).
    Stopped { message: Option<String> },
}

/// What the app implements to hear from live sync. Called on the core's threads.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// Changes from other devices were applied to `document` (agreement, journal, checkins or
    /// shared); `description` says how many, for a notification.
    fn document_changed(&self, document: String, description: String);
    fn connection_changed(&self, state: ConnectionState);
}

/// A running live sync; it stops when `stop` is called or the handle is dropped.
#[derive(Debug, uniffi::Object)]
pub struct LiveSync {
    stop: watch::Sender<bool>,
}

/// The runtime live sync runs on, started on first use.
fn runtime() -> Result<&'static Runtime, KintsugiError> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = Runtime::new().map_err(|error| KintsugiError::Internal {
        message: format!("cannot start live sync ({error}); restart the app"),
    })?;
    Ok(RUNTIME.get_or_init(|| built))
}

impl LiveSync {
    pub(crate) fn start(
        device: Arc<CoreDevice>,
        listener: Arc<dyn SyncListener>,
    ) -> Result<Arc<Self>, KintsugiError> {
        let (stop, mut stopped) = watch::channel(false);
        runtime()?.spawn(async move {
            let shutdown = async move {
                let _ = stopped.changed().await;
            };
            let told = listener.clone();
            let ended = device.watch(shutdown, |event| tell(&*told, event)).await;
            let message = ended.err().map(|error| error.to_string());
            listener.connection_changed(ConnectionState::Stopped { message });
        });
        Ok(Arc::new(Self { stop }))
    }
}

#[uniffi::export]
impl LiveSync {
    /// Stops live sync; the listener hears `Stopped`.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for LiveSync {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Passes one live-sync event on to the app.
fn tell(listener: &dyn SyncListener, event: WatchEvent) {
    match event {
        WatchEvent::Subscribed => listener.connection_changed(ConnectionState::Online),
        WatchEvent::Received { doc, changes, .. } => {
            let description = format!("{} new change(s) from another device", changes.len());
            listener.document_changed(doc.name().to_string(), description);
        }
        WatchEvent::Disconnected { reason, retry_in } => {
            let retry_in_ms = retry_in.as_millis() as u64;
            listener.connection_changed(ConnectionState::Retrying {
                reason,
                retry_in_ms,
            });
        }
        _ => {}
    }
}
