//! `Subscribe`: one long-lived stream per device, catch-up first, then live envelopes.
//!
//! The order matters. The stream first joins the space's fan-out channel, then checks that the
//! device is still not revoked (the interceptor checked before the stream joined, and a
//! revocation published in between would never reach it), then reads every readable document
//! from the store from the cursor the device sent, then forwards live events. Whatever is
//! pushed while catching up is therefore either read from the store or received live (or
//! both: the per-document position drops the overlap). If a live event does not start right
//! after the position (two pushes to one document can publish out of order), the gap is
//! filled from the store instead of being skipped. A page read from the store is sent only
//! once it is durable: it may hold entries of a push whose group commit is still running,
//! and after a crash their seqs could go to other envelopes. Live events are durable already.
//!
//! The stream is a channel fed by a spawned task and bounded in bytes (`streams`), which is
//! back-pressure: a slow client slows its own task, and if it falls behind the fan-out buffer,
//! the stream ends with `Unavailable` and the device resubscribes with its cursors (or with
//! `Unauthenticated`, when a revocation it missed revoked it). The task
//! also ends the stream on server shutdown (otherwise graceful shutdown would wait on it
//! forever), when the device is revoked, and when the same device opens more streams than
//! `streams::MAX_STREAMS_PER_DEVICE` (the oldest goes). A request may name at most as many
//! cursors as the device may read documents, plus a few for documents not pushed yet.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kintsugi_proto::v1 as proto;
use kintsugi_proto::v1::subscribe_event::Event;
use tokio::sync::{OwnedSemaphorePermit, broadcast, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tonic::Status;

use super::State;
use super::doc_page::{DocPage, changes_to_proto, read_doc_page};
pub(crate) use super::stream_queue::EventStream;
use super::stream_queue::{QueueWriter, queue};
use crate::auth::{AuthedDevice, REVOKED_DEVICE, UNKNOWN_TOKEN};
use crate::error::ServiceError;
use crate::fanout::SpaceEvent;
use crate::ids::{DocId, ServerSeq};
use crate::store::{DocMeta, SequencedEnvelope};

/// Cursors a request may name beyond the documents the device may read: for documents the
/// device created locally and has not pushed yet.
const SPARE_CURSORS: usize = 16;
/// The most bytes of envelopes one event carries (one larger envelope goes alone).
const STREAM_PAGE_BYTES: usize = 1024 * 1024;
const REPLACED: &str = "a newer stream of this device replaced this one";
const FELL_BEHIND: &str = "subscriber fell behind; resubscribe with your cursors";
const SHUTTING_DOWN: &str = "the server is shutting down; resubscribe with your cursors later";

/// Why the stream ends: the client left (nothing to tell), or with a status.
enum End {
    ClientGone,
    With(Status),
}

impl From<ServiceError> for End {
    fn from(error: ServiceError) -> Self {
        End::With(error.into())
    }
}

/// Starts a subscription and returns its stream.
pub(crate) async fn open(
    state: Arc<State>,
    who: AuthedDevice,
    request: proto::SubscribeRequest,
) -> Result<EventStream, ServiceError> {
    let request_named = request
        .cursors
        .iter()
        .filter_map(|c| DocId::from_slice(&c.doc_id))
        .collect::<std::collections::HashSet<_>>();
    let positions = cursor_positions(&state, who, request.cursors).await?;
    // Join the fan-out before reading the store, so nothing falls between the two.
    let live = state.fanout.subscribe(who.space_id);
    // The interceptor authenticated the device before the stream listened: a revocation
    // published since then was missed, so read the device again now that it listens. A point
    // read of a hot key, like the interceptor's own lookup.
    match state.store.device(who.space_id, who.device_id)? {
        Some(device) if !device.revoked => {}
        Some(_) => return Err(ServiceError::Unauthenticated(REVOKED_DEVICE.into())),
        None => return Err(ServiceError::Unauthenticated(UNKNOWN_TOKEN.into())),
    }
    let (queue, stream) = queue();
    let stop = state.stop.clone();
    let ticket = state.streams.register(who.device_id);
    let named = (!request_named.is_empty()).then_some(request_named);
    let subscription = Subscription {
        named,
        queue,
        ticket: ticket.id,
        state,
        who,
        positions,
        live,
        stop,
    };
    subscription.state.metrics.live_subscribers.inc();
    tokio::spawn(subscription.run(ticket.replaced));
    tracing::debug!(space = %who.space_id, device = %who.device_id, "subscribed");
    Ok(stream)
}

/// The device's cursors for the documents it may read. Refuses a request naming more cursors
/// than it could need, and drops cursors of documents it may not read.
async fn cursor_positions(
    state: &Arc<State>,
    who: AuthedDevice,
    cursors: Vec<proto::DocCursor>,
) -> Result<HashMap<DocId, u64>, ServiceError> {
    let space = who.space_id;
    let docs = state
        .blocking(move |state| Ok(state.store.list_docs(space)?))
        .await?;
    let known: HashMap<DocId, bool> = docs
        .iter()
        .map(|(doc, meta)| (*doc, meta.readable_by(who.member_id)))
        .collect();
    let readable = known.values().filter(|r| **r).count();
    let most = readable + SPARE_CURSORS;
    if cursors.len() > most {
        return Err(ServiceError::invalid(format!(
            "{} cursors, but this device may read {readable} documents; send at most {most}",
            cursors.len()
        )));
    }
    let mut positions = HashMap::new();
    for cursor in cursors {
        let doc = super::parse_id(&cursor.doc_id, "cursor doc_id", DocId::from_slice)?;
        if known.get(&doc).copied().unwrap_or(true) {
            positions.insert(doc, cursor.after_seq);
        }
    }
    Ok(positions)
}

struct Subscription {
    /// What waits for the client's connection, bounded in bytes.
    queue: QueueWriter,
    ticket: u64,
    state: Arc<State>,
    who: AuthedDevice,
    /// Per document, the highest seq the device has (from its cursor or sent here).
    positions: HashMap<DocId, u64>,
    /// The documents the request named, if it named any: the only ones the stream carries.
    named: Option<std::collections::HashSet<DocId>>,
    live: broadcast::Receiver<SpaceEvent>,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Subscription {
    /// Serves until the stream ends, or until a newer stream of the device replaces it
    /// (`replaced` fires), whatever it is doing then, catch-up included.
    async fn run(mut self, replaced: oneshot::Receiver<()>) {
        let served = tokio::select! {
            served = self.serve() => served,
            _ = replaced => Err(End::With(Status::aborted(REPLACED))),
        };
        self.state.metrics.live_subscribers.dec();
        self.state
            .streams
            .unregister(self.who.device_id, self.ticket);
        let end = match served {
            Ok(()) => return,
            Err(end) => end,
        };
        if let End::With(status) = end {
            tracing::debug!(device = %self.who.device_id, code = ?status.code(), "subscription ended");
            // What still waits is dropped: a client that stopped reading holds nothing more.
            self.queue.end_with(status);
        }
    }

    async fn serve(&mut self) -> Result<(), End> {
        self.catch_up().await?;
        // Clamped: tokio's interval panics on a zero period, and on one so long it overflows.
        let period = (self.state.config.heartbeat).clamp(
            Duration::from_millis(100),
            Duration::from_secs(24 * 60 * 60),
        );
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.changed() => return Err(End::With(Status::unavailable(SHUTTING_DOWN))),
                _ = self.queue.client_gone() => return Err(End::ClientGone),
                _ = heartbeat.tick() => {
                    let beat = proto::Heartbeat { server_time: self.state.clock.now().as_secs() };
                    self.send(Event::Heartbeat(beat)).await?;
                }
                event = self.live.recv() => match event {
                    Ok(SpaceEvent::Appended { doc_id, meta, envelopes, durable_at }) => {
                        if self.forward(doc_id, meta, &envelopes).await? {
                            let delay = durable_at.elapsed().as_secs_f64();
                            self.state.metrics.push_to_delivery.observe(delay);
                        }
                    }
                    Ok(SpaceEvent::Revoked { device_id }) if device_id == self.who.device_id => {
                        return Err(End::With(Status::unauthenticated(REVOKED_DEVICE)));
                    }
                    Ok(SpaceEvent::Revoked { .. }) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return Err(self.fell_behind().await),
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(End::With(Status::unavailable(SHUTTING_DOWN)));
                    }
                }
            }
        }
    }

    /// How a stream that fell behind the fan-out buffer ends: `Unavailable`, so the device
    /// resubscribes from its cursors, unless one of the events it missed revoked it.
    async fn fell_behind(&self) -> End {
        let (space, device) = (self.who.space_id, self.who.device_id);
        let read = self
            .state
            .blocking(move |state| Ok(state.store.device(space, device)?));
        match read.await {
            Ok(Some(device)) if !device.revoked => End::With(Status::unavailable(FELL_BEHIND)),
            Ok(Some(_)) => End::With(Status::unauthenticated(REVOKED_DEVICE)),
            Ok(None) => End::With(Status::unauthenticated(UNKNOWN_TOKEN)),
            Err(error) => error.into(),
        }
    }

    /// Sends every readable document from the device's cursor to its head.
    async fn catch_up(&mut self) -> Result<(), End> {
        let space = self.who.space_id;
        let docs = self
            .state
            .blocking(move |state| Ok(state.store.list_docs(space)?))
            .await?;
        for (doc, meta) in docs {
            if !self.wants(doc, &meta) {
                continue;
            }
            if self.position(doc) >= meta.head_seq.0 {
                continue;
            }
            self.send_from_store(doc).await?;
        }
        Ok(())
    }

    /// Pages one document out of the store from its position until nothing more is left.
    async fn send_from_store(&mut self, doc: DocId) -> Result<(), End> {
        let limit = self.state.config.pull_page_limit.max(1) as usize;
        let budget = STREAM_PAGE_BYTES.min(self.state.config.page_budget_bytes());
        let key = (self.who.space_id, doc, self.who.member_id);
        loop {
            if self.state.stopping() {
                return Err(End::With(Status::unavailable(SHUTTING_DOWN)));
            }
            // Room first, then the read: a stream whose client does not read holds at most
            // its budget, never a page read ahead of it.
            let mut permit = self.room(budget).await?;
            let after = self.position(doc);
            let page: Option<DocPage> = self
                .state
                .blocking(move |state| {
                    read_doc_page(state.store.as_ref(), key, after, limit, budget)
                })
                .await?;
            let Some(page) = page.filter(|page| !page.is_empty()) else {
                return Ok(());
            };
            // Entries of a push still in its group commit are visible already; send them only
            // once they are on disk. Group commit makes this wait short.
            self.state.durable().await?;
            let event = Event::Envelopes(proto::DocEnvelopes {
                doc_id: doc.to_vec(),
                snapshot: page.proto_snapshot(),
                envelopes: changes_to_proto(doc, &page.envelopes),
            });
            let size = event.encoded_len();
            if size > permit.num_permits() {
                // One envelope or snapshot larger than a page goes alone.
                drop(permit);
                permit = self.room(size).await?;
            }
            self.send_within(event, permit).await?;
            self.positions.insert(doc, page.position(after));
            if !page.more {
                return Ok(());
            }
        }
    }

    /// Forwards a live append, if the device may read the document and lacks the entries.
    /// Returns whether anything was sent.
    async fn forward(
        &mut self,
        doc: DocId,
        meta: DocMeta,
        envelopes: &[SequencedEnvelope],
    ) -> Result<bool, End> {
        if !self.wants(doc, &meta) {
            return Ok(false);
        }
        let position = self.position(doc);
        let newer: Vec<&SequencedEnvelope> = envelopes
            .iter()
            .filter(|e| e.server_seq.0 > position)
            .collect();
        let Some(first) = newer.first() else {
            return Ok(false);
        };
        let contiguous = newer
            .windows(2)
            .all(|pair| pair[1].server_seq == pair[0].server_seq.next());
        if first.server_seq != ServerSeq(position).next() || !contiguous {
            self.send_from_store(doc).await?;
            return Ok(true);
        }
        // Split big appends so no event exceeds a stream page.
        let budget = STREAM_PAGE_BYTES.min(self.state.config.page_budget_bytes());
        let mut chunk: Vec<SequencedEnvelope> = Vec::new();
        let mut bytes = 0usize;
        for entry in newer {
            let size = entry.envelope.wire_size();
            if !chunk.is_empty() && bytes.saturating_add(size) > budget {
                self.send_chunk(doc, std::mem::take(&mut chunk)).await?;
                bytes = 0;
            }
            bytes = bytes.saturating_add(size);
            chunk.push(entry.clone());
        }
        self.send_chunk(doc, chunk).await?;
        Ok(true)
    }

    async fn send_chunk(&mut self, doc: DocId, chunk: Vec<SequencedEnvelope>) -> Result<(), End> {
        let Some(last) = chunk.last().map(|e| e.server_seq.0) else {
            return Ok(());
        };
        let event = proto::DocEnvelopes {
            doc_id: doc.to_vec(),
            snapshot: None,
            envelopes: changes_to_proto(doc, &chunk),
        };
        self.send(Event::Envelopes(event)).await?;
        self.positions.insert(doc, last);
        Ok(())
    }

    /// Whether the stream carries `doc`: one the device may read and, when its request named
    /// documents, one it named, so documents a partner creates by the thousand cannot crowd
    /// out the ones the device syncs.
    fn wants(&self, doc: DocId, meta: &DocMeta) -> bool {
        meta.readable_by(self.who.member_id)
            && self.named.as_ref().is_none_or(|named| named.contains(&doc))
    }

    fn position(&self, doc: DocId) -> u64 {
        self.positions.get(&doc).copied().unwrap_or(0)
    }

    /// Sends one event, waiting for room in the buffer (in events and in bytes) unless the
    /// server stops meanwhile.
    async fn send(&mut self, event: Event) -> Result<(), End> {
        let permit = self.room(event.encoded_len()).await?;
        self.send_within(event, permit).await
    }

    /// Waits for `bytes` of the stream's budget unless the server stops meanwhile.
    async fn room(&mut self, bytes: usize) -> Result<OwnedSemaphorePermit, End> {
        tokio::select! {
            permit = self.queue.room(bytes) => permit.ok_or(End::ClientGone),
            _ = self.stop.changed() => Err(End::With(Status::unavailable(SHUTTING_DOWN))),
        }
    }

    /// Queues an event whose bytes `permit` holds.
    async fn send_within(&mut self, event: Event, permit: OwnedSemaphorePermit) -> Result<(), End> {
        let event = proto::SubscribeEvent { event: Some(event) };
        if self.queue.push(event, permit) {
            Ok(())
        } else {
            Err(End::ClientGone)
        }
    }
}
