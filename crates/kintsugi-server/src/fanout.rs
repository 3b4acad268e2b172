//! Live fan-out: durable pushes and revocations, relayed to the open Subscribe streams.
//!
//! One tokio broadcast channel per space, created when its first subscriber arrives and
//! dropped once nobody listens, so idle spaces cost nothing. A push publishes its envelopes
//! only after they are durable, which means a subscriber never sees a change the server could
//! still lose. Each event carries the document's audience and owner, so a stream filters out
//! another member's private documents without asking the store. The channel is bounded: a
//! subscriber that falls too far behind gets `Lagged` and must resubscribe with its cursors,
//! instead of the server buffering without limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::broadcast;

use crate::ids::{DeviceId, DocId, SpaceId};
use crate::store::{DocMeta, SequencedEnvelope};

/// How many events a space's channel holds for its slowest subscriber. tokio allocates every
/// slot when the channel is made, so this is memory each space with a subscriber costs (about
/// 100 bytes a slot); one that falls further behind resubscribes from its cursors, losing
/// nothing.
pub(crate) const CHANNEL_CAPACITY: usize = 64;

/// Something that happened in a space.
#[derive(Debug, Clone)]
pub(crate) enum SpaceEvent {
    /// Envelopes were appended to a document and are durable.
    Appended {
        doc_id: DocId,
        meta: DocMeta,
        envelopes: Arc<Vec<SequencedEnvelope>>,
        /// When the push became durable, for `kintsugi_push_to_delivery_seconds`.
        durable_at: Instant,
    },
    /// A device was revoked; its stream must end.
    Revoked { device_id: DeviceId },
}

/// The per-space channels.
#[derive(Debug, Default)]
pub(crate) struct FanOut {
    spaces: Mutex<HashMap<SpaceId, broadcast::Sender<SpaceEvent>>>,
}

impl FanOut {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Starts listening to a space. Events published after this call are received.
    pub(crate) fn subscribe(&self, space: SpaceId) -> broadcast::Receiver<SpaceEvent> {
        let mut spaces = self.lock();
        // Forget channels nobody listens to any more, while we hold the lock anyway.
        spaces.retain(|_, sender| sender.receiver_count() > 0);
        spaces
            .entry(space)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Relays an event to the space's subscribers, if there are any.
    pub(crate) fn publish(&self, space: SpaceId, event: SpaceEvent) {
        let spaces = self.lock();
        if let Some(sender) = spaces.get(&space) {
            // An error only means nobody listens right now; the event is in the store.
            let _ = sender.send(event);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SpaceId, broadcast::Sender<SpaceEvent>>> {
        // The map stays consistent even if a holder panicked: every operation on it is a
        // single insert, lookup or retain.
        self.spaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn channels(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_of_a_space_receive_its_events_only() {
        let fanout = FanOut::new();
        let ours = SpaceId([1; 16]);
        let theirs = SpaceId([2; 16]);
        let mut receiver = fanout.subscribe(ours);
        let device = DeviceId([3; 16]);
        fanout.publish(
            theirs,
            SpaceEvent::Revoked {
                device_id: DeviceId([9; 16]),
            },
        );
        fanout.publish(ours, SpaceEvent::Revoked { device_id: device });
        match receiver.recv().await {
            Ok(SpaceEvent::Revoked { device_id }) => assert_eq!(device_id, device),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn channels_of_spaces_nobody_listens_to_are_dropped() {
        let fanout = FanOut::new();
        let receiver = fanout.subscribe(SpaceId([1; 16]));
        drop(receiver);
        let _other = fanout.subscribe(SpaceId([2; 16]));
        assert_eq!(fanout.channels(), 1);
    }
}
