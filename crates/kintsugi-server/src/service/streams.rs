//! Bounds on the live streams one device can hold open: how many, and how many bytes each
//! buffers for a client that reads slowly or not at all.
//!
//! A device holds at most `MAX_STREAMS_PER_DEVICE` Subscribe streams; opening another ends
//! the oldest (a phone that lost its connection without the server noticing opens a new one,
//! so the newest is the one worth keeping). Each stream buffers at most
//! `STREAM_BUFFER_BYTES` of encoded events: an event waits for room before it is queued, so a
//! client that never reads holds one bounded buffer, not everything the space receives.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use crate::ids::DeviceId;

/// Live streams one device may hold at once.
pub(crate) const MAX_STREAMS_PER_DEVICE: usize = 4;
/// Encoded bytes one stream buffers between its task and the client's connection.
pub(crate) const STREAM_BUFFER_BYTES: usize = 2 * 1024 * 1024;

/// One device's open streams, oldest first; each with its id and the sender that ends it.
type DeviceStreams = VecDeque<(u64, oneshot::Sender<()>)>;

/// Every open stream, by device.
#[derive(Debug, Default)]
pub(crate) struct StreamRegistry {
    open: Mutex<HashMap<DeviceId, DeviceStreams>>,
    next_id: AtomicU64,
}

/// A registered stream: its id (to unregister) and the signal that a newer one replaced it.
#[derive(Debug)]
pub(crate) struct StreamTicket {
    pub(crate) id: u64,
    pub(crate) replaced: oneshot::Receiver<()>,
}

impl StreamRegistry {
    /// Registers a new stream of `device`, ending its oldest one beyond the cap.
    pub(crate) fn register(&self, device: DeviceId) -> StreamTicket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (end, replaced) = oneshot::channel();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let streams = open.entry(device).or_default();
        streams.push_back((id, end));
        while streams.len() > MAX_STREAMS_PER_DEVICE {
            if let Some((_, oldest)) = streams.pop_front() {
                let _ = oldest.send(());
            }
        }
        StreamTicket { id, replaced }
    }

    /// Forgets a stream that ended.
    pub(crate) fn unregister(&self, device: DeviceId, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(streams) = open.get_mut(&device) {
            streams.retain(|(stream, _)| *stream != id);
            if streams.is_empty() {
                open.remove(&device);
            }
        }
    }

    /// How many streams `device` holds open.
    #[cfg(test)]
    pub(crate) fn count(&self, device: DeviceId) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&device).map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_stream_beyond_the_cap_ends_the_oldest() {
        let registry = StreamRegistry::default();
        let device = DeviceId::random();
        let mut tickets: Vec<StreamTicket> = (0..MAX_STREAMS_PER_DEVICE)
            .map(|_| registry.register(device))
            .collect();
        assert_eq!(registry.count(device), MAX_STREAMS_PER_DEVICE);
        let newest = registry.register(device);
        assert_eq!(registry.count(device), MAX_STREAMS_PER_DEVICE);
        assert!(tickets[0].replaced.try_recv().is_ok(), "the oldest ends");
        assert!(tickets[1].replaced.try_recv().is_err(), "the others stay");
        registry.unregister(device, newest.id);
        for ticket in &tickets[1..] {
            registry.unregister(device, ticket.id);
        }
        assert_eq!(registry.count(device), 0);
        assert_eq!(registry.count(DeviceId::random()), 0);
    }
}
