//! Pages of a document's log as the protocol carries them: what Pull returns and what a
//! Subscribe stream sends while it catches up.
//!
//! `read_doc_page` reads one page for a member: it checks the audience, puts the serving
//! snapshot first when the cursor is behind the pruned part of the log, and fills the page up
//! to a count and a byte budget. Compaction may prune entries while a page is read; the page
//! is then read again rather than sent with a hole in it.
//!
//! A page may hold entries whose push is not durable yet (the append is visible before the
//! group commit that covers it). Callers therefore await `State::durable` before they send a
//! non-empty page, or a crash could reassign a seq the device already holds.

use kintsugi_proto::v1 as proto;

use crate::error::ServiceError;
use crate::ids::{DocId, MemberId, ServerSeq, SpaceId};
use crate::store::{DocMeta, Envelope, SequencedEnvelope, Store, StoreError, StoredSnapshot};

/// One page of a readable document: what Pull returns and what Subscribe sends.
#[derive(Debug)]
pub(crate) struct DocPage {
    pub(crate) meta: DocMeta,
    pub(crate) snapshot: Option<StoredSnapshot>,
    pub(crate) envelopes: Vec<SequencedEnvelope>,
    pub(crate) more: bool,
}

impl DocPage {
    /// The cursor a client reaches by applying this page after `after`. Behind a snapshot the
    /// page carries every entry after `pruned_through`, so the cursor moves by the envelopes.
    pub(crate) fn position(&self, after: u64) -> u64 {
        let pruned = self
            .snapshot
            .as_ref()
            .map_or(0, |_| self.meta.pruned_through.0);
        let last = self.envelopes.last().map_or(0, |e| e.server_seq.0);
        after.max(pruned).max(last)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.envelopes.is_empty()
    }

    pub(crate) fn proto_snapshot(&self) -> Option<proto::Snapshot> {
        self.snapshot.as_ref().map(snapshot_to_proto)
    }
}

/// A stored snapshot as the protocol carries it.
pub(crate) fn snapshot_to_proto(s: &crate::store::StoredSnapshot) -> proto::Snapshot {
    proto::Snapshot {
        envelope: Some(to_proto(
            &s.envelope,
            ServerSeq(0),
            proto::EnvelopeKind::Snapshot,
        )),
        covers_seq: s.covers_seq.0,
        content_hash: s.envelope.snapshot_hash().to_vec(),
    }
}

/// An envelope as the protocol carries it.
pub(crate) fn to_proto(
    envelope: &Envelope,
    seq: ServerSeq,
    kind: proto::EnvelopeKind,
) -> proto::Envelope {
    proto::Envelope {
        device_id: envelope.device_id.to_vec(),
        client_seq: envelope.client_seq,
        kind: kind as i32,
        nonce: envelope.nonce.clone(),
        ciphertext: envelope.ciphertext.clone(),
        server_seq: seq.0,
        signature: envelope.signature.clone(),
        key_epoch: envelope.key_epoch,
    }
}

/// Log entries of `doc` as the protocol carries them: roster entries in the roster log,
/// changes everywhere else.
pub(crate) fn changes_to_proto(doc: DocId, entries: &[SequencedEnvelope]) -> Vec<proto::Envelope> {
    let kind = if doc == DocId::ROSTER {
        proto::EnvelopeKind::Roster
    } else {
        proto::EnvelopeKind::Change
    };
    entries
        .iter()
        .map(|e| to_proto(&e.envelope, e.server_seq, kind))
        .collect()
}

/// Reads one page of a document for `member`, or `None` if the document does not exist.
/// Runs on a blocking thread. If compaction prunes entries while the page is read, the page
/// would have a hole; rereading the metadata afterwards notices, and the page is read again.
pub(crate) fn read_doc_page(
    store: &dyn Store,
    (space, doc, member): (SpaceId, DocId, MemberId),
    after: u64,
    limit: usize,
    budget_bytes: usize,
) -> Result<Option<DocPage>, ServiceError> {
    for _ in 0..3 {
        let Some(meta) = store.doc_meta(space, doc)? else {
            return Ok(None);
        };
        if !meta.readable_by(member) {
            return Err(StoreError::PrivateDocument.into());
        }
        let mut snapshot = None;
        let mut start = after;
        if after < meta.pruned_through.0 {
            // The serving snapshot, never the candidate: it stood the whole retention window
            // before anything it covers was pruned.
            let stored = store.snapshot(space, doc)?.ok_or_else(|| {
                StoreError::Corrupt("a document's log is pruned but its snapshot is missing".into())
            })?;
            if stored.covers_seq < meta.pruned_through {
                return Err(StoreError::Corrupt(format!(
                    "a document's log is pruned through {} but its serving snapshot covers only {}",
                    meta.pruned_through.0, stored.covers_seq.0
                ))
                .into());
            }
            // Send every entry still in the log, not only those after `covers_seq`: the snapshot
            // is a member's claim, and entries it wrongly claims to cover must still arrive.
            start = start.max(meta.pruned_through.0);
            snapshot = Some(stored);
        }
        let used = snapshot.as_ref().map_or(0, |s| s.envelope.wire_size());
        let page = store.read_envelopes(
            space,
            doc,
            ServerSeq(start),
            limit,
            budget_bytes.saturating_sub(used),
        )?;
        // Entries after `start` were deleted while we read if the log is now pruned past it.
        let pruned_meanwhile = store
            .doc_meta(space, doc)?
            .is_some_and(|now| start < now.pruned_through.0);
        if !pruned_meanwhile {
            return Ok(Some(DocPage {
                meta,
                snapshot,
                envelopes: page.envelopes,
                more: page.more,
            }));
        }
    }
    Err(ServiceError::Unavailable(
        "the document is being compacted; pull again".into(),
    ))
}
