//! Snapshots: a whole saved document, sealed like a change, that lets the server prune its log.
//!
//! The snapshot's plaintext carries the heads and the log position it claims to cover. A device
//! that loads one checks both, and the server sends every entry still in its log after a
//! snapshot (not only those past what it claims to cover), so a bad snapshot hides nothing the
//! server still holds; the server keeps covered entries until a snapshot has stood unreplaced
//! for its retention window.

use automerge::{Automerge, ChangeHash, ReadDoc};
use kintsugi_proto::v1::{EnvelopeKind, PutSnapshotRequest, Snapshot};
use prost::Message;

use super::client::Connection;
use crate::device::Device;
use crate::docs::DocKind;
use crate::envelope::{EnvelopeContext, open, seal};
use crate::error::{CoreError, Result};
use crate::store::Mark;

/// A device offers a snapshot once the log grew this much past the last one it sent.
pub const SNAPSHOT_EVERY: u64 = 1000;

/// The plaintext of a snapshot envelope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotPayload {
    /// The heads (32-byte hashes) the document had when saved.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub heads: Vec<Vec<u8>>,
    /// `Automerge::save()` output.
    #[prost(bytes = "vec", tag = "2")]
    pub document: Vec<u8>,
    /// The log position the snapshot covers, sealed so the server cannot change it.
    #[prost(uint64, tag = "3")]
    pub covers_seq: u64,
}

impl Device {
    /// Opens a snapshot from the server and checks it is what its author sealed: a snapshot
    /// envelope of this document, for the `covers_seq` the server names, holding every head it
    /// claims. The caller merges it and stores the result with the rest of the page.
    pub(crate) fn open_snapshot(&self, kind: DocKind, snapshot: &Snapshot) -> Result<Automerge> {
        let envelope = snapshot
            .envelope
            .as_ref()
            .ok_or_else(|| CoreError::Protocol("a snapshot without an envelope".into()))?;
        let doc_id = kind.id(&self.identity.keys);
        let (ctx, plaintext) = open(
            &kind.key(&self.identity.keys),
            self.identity.space,
            doc_id,
            envelope,
        )?;
        if ctx.kind != EnvelopeKind::Snapshot {
            return Err(CoreError::Tampered(
                "a change was sent as a snapshot".into(),
            ));
        }
        let payload = SnapshotPayload::decode(plaintext.as_slice())
            .map_err(|e| CoreError::InvalidChange(format!("snapshot: {e}")))?;
        if payload.covers_seq != snapshot.covers_seq {
            return Err(CoreError::Tampered(format!(
                "the server presents a snapshot of position {} as covering {}",
                payload.covers_seq, snapshot.covers_seq
            )));
        }
        let remote = Automerge::load(&payload.document)
            .map_err(|e| CoreError::InvalidChange(format!("snapshot: {e}")))?;
        for head in &payload.heads {
            let hash = ChangeHash::try_from(head.as_slice())
                .map_err(|_| CoreError::InvalidChange("snapshot: malformed head".into()))?;
            if remote.get_change_by_hash(&hash).is_none() {
                return Err(CoreError::InvalidChange(
                    "the snapshot omits changes it claims to cover".into(),
                ));
            }
        }
        Ok(remote)
    }

    /// Offers the server a snapshot when the log grew enough since the last one this device sent.
    pub(crate) async fn maybe_put_snapshot(
        &self,
        conn: &mut Connection,
        kind: DocKind,
    ) -> Result<()> {
        let doc_id = kind.id(&self.identity.keys);
        let covers_seq = self.store.cursor(doc_id)?;
        let last = self.store.mark(Mark::SnapshotSent, doc_id)?;
        if covers_seq < last + self.snapshot_every {
            return Ok(());
        }
        self.put_snapshot(conn, kind, covers_seq).await
    }

    /// Seals the whole document and hands it to the server as covering the log to `covers_seq`.
    pub(crate) async fn put_snapshot(
        &self,
        conn: &mut Connection,
        kind: DocKind,
        covers_seq: u64,
    ) -> Result<()> {
        let doc_id = kind.id(&self.identity.keys);
        let doc = {
            let _documents = self.lock_documents();
            self.load(kind)?.doc
        };
        let payload = SnapshotPayload {
            heads: doc.get_heads().iter().map(|h| h.0.to_vec()).collect(),
            document: doc.save(),
            covers_seq,
        };
        let ctx = EnvelopeContext {
            space: self.identity.space,
            doc: doc_id,
            device: self.identity.device,
            client_seq: self.store.reserve_client_seq()?,
            kind: EnvelopeKind::Snapshot,
        };
        let envelope = seal(
            &kind.key(&self.identity.keys),
            &ctx,
            &payload.encode_to_vec(),
        );
        let request = PutSnapshotRequest {
            doc_id: doc_id.as_bytes().to_vec(),
            covers_seq,
            envelope: Some(envelope),
        };
        conn.sync
            .put_snapshot(request)
            .await
            .map_err(|s| conn.error(s))?;
        self.store.set_mark(Mark::SnapshotSent, doc_id, covers_seq)
    }
}

impl Device {
    /// Audits a candidate snapshot while the server still keeps the log it claims to cover:
    /// every change at a position up to its `covers_seq` must be in it. One that fails (or does
    /// not open) is rejected, so it never serves and nothing is pruned against it. Returns
    /// whether this device rejected it. Audits each candidate once, once caught up with it.
    pub(crate) async fn audit_candidate(
        &self,
        conn: &mut Connection,
        kind: DocKind,
        candidate: &Snapshot,
    ) -> Result<bool> {
        let doc_id = kind.id(&self.identity.keys);
        let covers = candidate.covers_seq;
        if covers <= self.store.mark(Mark::CandidateAudited, doc_id)?
            || self.store.cursor(doc_id)? < covers
        {
            return Ok(false);
        }
        let omitted = match self.open_snapshot(kind, candidate) {
            Ok(snapshot) => self.count_omissions(conn, kind, covers, &snapshot).await?,
            Err(error) => {
                tracing::warn!(doc = kind.name(), %error, "a candidate snapshot does not open");
                1
            }
        };
        if omitted > 0 {
            tracing::warn!(
                doc = kind.name(),
                omitted,
                covers,
                "a candidate snapshot omits changes it claims to cover; rejecting it"
            );
            let request = kintsugi_proto::v1::RejectSnapshotRequest {
                doc_id: doc_id.as_bytes().to_vec(),
                covers_seq: covers,
            };
            conn.sync
                .reject_snapshot(request)
                .await
                .map_err(|s| conn.error(s))?;
        }
        self.store
            .set_mark(Mark::CandidateAudited, doc_id, covers)?;
        Ok(omitted > 0)
    }

    /// Counts the changes the kept log holds at positions up to `covers` that `snapshot` lacks.
    async fn count_omissions(
        &self,
        conn: &mut Connection,
        kind: DocKind,
        covers: u64,
        snapshot: &Automerge,
    ) -> Result<u64> {
        let doc_id = kind.id(&self.identity.keys);
        let key = kind.key(&self.identity.keys);
        let (mut after, mut omitted) = (0, 0);
        while after < covers {
            let request = kintsugi_proto::v1::PullRequest {
                doc_id: doc_id.as_bytes().to_vec(),
                after_seq: after,
                limit: 250,
                with_candidate: false,
            };
            let page = conn
                .sync
                .pull(request)
                .await
                .map_err(|s| conn.error(s))?
                .into_inner();
            for envelope in page.envelopes.iter().filter(|e| e.server_seq <= covers) {
                let (_, plaintext) = open(&key, self.identity.space, doc_id, envelope)?;
                let change = automerge::Change::try_from(plaintext.as_slice())
                    .map_err(|e| CoreError::InvalidChange(e.to_string()))?;
                if snapshot.get_change_by_hash(&change.hash()).is_none() {
                    omitted += 1;
                }
            }
            match page.envelopes.last() {
                Some(last) if page.more => after = last.server_seq,
                _ => break,
            }
        }
        Ok(omitted)
    }
}
