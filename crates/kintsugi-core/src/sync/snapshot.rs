//! Snapshots: a whole saved document, sealed like a change, that lets the server prune its log.
//!
//! The snapshot's plaintext carries the heads and the log position it claims to cover. A device
//! that loads one checks both, and the server sends every entry still in its log after a
//! snapshot (not only those past what it claims to cover), so a bad snapshot hides nothing the
//! server still holds. A new snapshot is only a candidate: every member's devices audit it
//! against the log and endorse or reject it by its content hash, and the server prunes what it
//! covers only once every member who reads the document endorsed it and it stood its
//! retention window (docs/protocol.md §8).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use automerge::{Automerge, ChangeHash, ReadDoc};
use kintsugi_proto::v1::{EnvelopeKind, PullResponse, PutSnapshotRequest, Snapshot};
use prost::Message;

use super::client::Connection;
use super::engine::pull_page;
use super::page::accept;
use crate::docs::{DocKind, apply_in_log_order, apply_one_by_one, genesis, merge_snapshot};
use crate::envelope::{EnvelopeContext, open, seal, snapshot_hash};
use crate::error::{CoreError, Result};
use crate::replica::Replica;
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

impl Replica {
    /// Opens a snapshot from the server and checks it is what its author sealed: a snapshot
    /// envelope of this document, for the `covers_seq` the server names, holding every head it
    /// claims. The caller merges it and stores the result with the rest of the page.
    pub(crate) fn open_snapshot(&self, kind: DocKind, snapshot: &Snapshot) -> Result<Automerge> {
        let envelope = snapshot
            .envelope
            .as_ref()
            .ok_or_else(|| CoreError::Protocol("a snapshot without an envelope".into()))?;
        let doc_id = self.identity.keys.doc_id(kind);
        let roster = self.roster()?;
        let (ctx, plaintext) = open(
            self.opening_keys(kind, doc_id)?,
            &roster.authors(self.audience_of(kind)),
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
        self: &Arc<Self>,
        conn: &mut Connection,
        kind: DocKind,
    ) -> Result<()> {
        let doc_id = self.identity.keys.doc_id(kind);
        let covers_seq = self.store.cursor(doc_id)?;
        let last = self.store.mark(Mark::SnapshotSent, doc_id)?;
        if covers_seq < last + self.snapshot_every.load(Ordering::Relaxed) {
            return Ok(());
        }
        let put = self.put_snapshot(conn, kind, covers_seq).await;
        if put.is_err() {
            // Refused (a member rejected one at this position, say): not offered again until
            // the log has grown as much again.
            self.store
                .set_mark(Mark::SnapshotSent, doc_id, covers_seq)?;
        }
        put
    }

    /// Seals the whole document and hands it to the server as covering the log to `covers_seq`.
    pub(crate) async fn put_snapshot(
        self: &Arc<Self>,
        conn: &mut Connection,
        kind: DocKind,
        covers_seq: u64,
    ) -> Result<()> {
        let sealed = self.off_runtime(move |replica| replica.sealed_snapshot(kind, covers_seq));
        let Some(request) = sealed.await? else {
            return Ok(());
        };
        conn.sync
            .put_snapshot(request)
            .await
            .map_err(|s| conn.error(s))?;
        let doc_id = self.identity.keys.doc_id(kind);
        self.store.set_mark(Mark::SnapshotSent, doc_id, covers_seq)
    }

    /// The whole document sealed as a snapshot covering the log to `covers_seq`; `None` when
    /// it no longer holds exactly the logged changes.
    fn sealed_snapshot(
        &self,
        kind: DocKind,
        covers_seq: u64,
    ) -> Result<Option<PutSnapshotRequest>> {
        let doc_id = self.identity.keys.doc_id(kind);
        let payload = {
            let mut open = self.lock_documents();
            // A snapshot must hold exactly the logged changes: none may wait in the outbox, and
            // nothing may have been applied past `covers_seq` since it was chosen.
            if self.store.has_pending(doc_id)? || self.store.cursor(doc_id)? != covers_seq {
                return Ok(None);
            }
            self.read_open(&mut open, kind, |doc| {
                Ok(SnapshotPayload {
                    heads: doc.get_heads().iter().map(|h| h.0.to_vec()).collect(),
                    document: doc.save(),
                    covers_seq,
                })
            })?
        };
        let (epoch, key) = self.sealing_key(kind, doc_id)?;
        let ctx = EnvelopeContext {
            space: self.identity.space,
            doc: doc_id,
            device: self.identity.device,
            client_seq: self.store.reserve_client_seq()?,
            kind: EnvelopeKind::Snapshot,
            epoch,
        };
        let envelope = seal(&key, &self.identity.secrets, &ctx, &payload.encode_to_vec());
        Ok(Some(PutSnapshotRequest {
            doc_id: doc_id.as_bytes().to_vec(),
            covers_seq,
            envelope: Some(envelope),
        }))
    }
}

/// What this device made of a candidate snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Audited before (by its content hash), or gone meanwhile.
    Skipped,
    Endorsed,
    Rejected,
}

impl Replica {
    /// Audits a candidate snapshot while the server still keeps the log it claims to cover:
    /// it must hold every change this device accepts from the log up to its `covers_seq`, and
    /// no other change (a change under another member's actor that no logged envelope carries
    /// would let one partner forge the other's approval). One that passes is endorsed, one
    /// that fails (or does not open) is rejected; the server prunes the log behind a snapshot
    /// only once every member endorsed it. Each candidate is audited once, by content hash, so
    /// a rejected one stored again is audited again.
    pub(crate) async fn audit_candidate(
        self: &Arc<Self>,
        conn: &mut Connection,
        kind: DocKind,
        candidate: &Snapshot,
    ) -> Result<Verdict> {
        let doc_id = self.identity.keys.doc_id(kind);
        let Some(envelope) = candidate.envelope.as_ref() else {
            return Ok(Verdict::Skipped);
        };
        let hash = snapshot_hash(envelope);
        if self.store.audited_snapshot(doc_id)?.as_deref() == Some(hash.as_slice()) {
            return Ok(Verdict::Skipped);
        }
        let covers = candidate.covers_seq;
        let opened = candidate.clone();
        let opened = self.off_runtime(move |replica| replica.open_snapshot(kind, &opened));
        let problem = match opened.await {
            Ok(snapshot) => self.compare_with_log(conn, kind, covers, snapshot).await?,
            Err(error) => Some(format!("it does not open ({error})")),
        };
        let (doc, content_hash) = (doc_id.as_bytes().to_vec(), hash.to_vec());
        let (sent, verdict) = match problem {
            Some(problem) => {
                tracing::warn!(doc = kind.name(), covers, %problem, "rejecting a candidate snapshot");
                let request = kintsugi_proto::v1::RejectSnapshotRequest {
                    doc_id: doc,
                    covers_seq: covers,
                    content_hash,
                };
                (
                    conn.sync.reject_snapshot(request).await.map(drop),
                    Verdict::Rejected,
                )
            }
            None => {
                let request = kintsugi_proto::v1::EndorseSnapshotRequest {
                    doc_id: doc,
                    covers_seq: covers,
                    content_hash,
                };
                (
                    conn.sync.endorse_snapshot(request).await.map(drop),
                    Verdict::Endorsed,
                )
            }
        };
        sent.map_err(|s| conn.error(s))?;
        self.store.set_audited_snapshot(doc_id, &hash)?;
        Ok(verdict)
    }

    /// Compares a snapshot with the log up to `covers`: says what is wrong, or `None` when it
    /// holds exactly genesis, the serving snapshot's changes (for a pruned log) and every
    /// change this device accepts from the log, in log order with its dependencies met.
    async fn compare_with_log(
        self: &Arc<Self>,
        conn: &mut Connection,
        kind: DocKind,
        covers: u64,
        snapshot: Automerge,
    ) -> Result<Option<String>> {
        let expected = self.logged_changes(conn, kind, covers).await?;
        let held: HashSet<ChangeHash> =
            snapshot.get_changes(&[]).iter().map(|c| c.hash()).collect();
        let omitted = expected.difference(&held).count();
        let added = held.difference(&expected).count();
        Ok(match (omitted, added) {
            (0, 0) => None,
            (omitted, 0) => Some(format!("it omits {omitted} logged change(s)")),
            (_, added) => Some(format!(
                "it holds {added} change(s) that no logged envelope carries"
            )),
        })
    }

    /// The hashes of the changes a snapshot covering the log to `covers` must hold: the
    /// document this device builds from the log by the rules it applies pages by (genesis, the
    /// serving snapshot where the log was pruned, then every change it accepts, in log order).
    async fn logged_changes(
        self: &Arc<Self>,
        conn: &mut Connection,
        kind: DocKind,
        covers: u64,
    ) -> Result<HashSet<ChangeHash>> {
        let doc_id = self.identity.keys.doc_id(kind);
        let mut doc = genesis(kind);
        let mut after = 0;
        while after < covers {
            let page = pull_page(conn, doc_id, after, false).await?;
            let next = match page.envelopes.last() {
                Some(last) if page.more => Some(last.server_seq),
                _ => None,
            };
            doc = self
                .off_runtime(move |replica| replica.replay_page(kind, doc, &page, covers))
                .await?;
            match next {
                Some(seq) => after = seq,
                None => break,
            }
        }
        Ok(doc.get_changes(&[]).iter().map(|c| c.hash()).collect())
    }

    /// `doc` with one page of the log applied by the rules pages are applied by: the serving
    /// snapshot where the log was pruned, then every change this device accepts to `covers`.
    fn replay_page(
        &self,
        kind: DocKind,
        mut doc: Automerge,
        page: &PullResponse,
        covers: u64,
    ) -> Result<Automerge> {
        let doc_id = self.identity.keys.doc_id(kind);
        let (keys, roster) = (self.opening_keys(kind, doc_id)?, self.roster()?);
        let authors = roster.authors(self.audience_of(kind));
        if let Some(serving) = &page.snapshot {
            merge_snapshot(&mut doc, self.open_snapshot(kind, serving)?)?;
        }
        // What this device would set aside is not part of the document.
        let changes: Vec<automerge::Change> = page
            .envelopes
            .iter()
            .filter(|e| e.server_seq <= covers)
            .filter_map(|e| accept(&keys, &authors, self.identity.space, doc_id, e).ok())
            .map(|accepted| accepted.change)
            .collect();
        let before = doc.clone();
        if apply_in_log_order(&mut doc, changes.clone()).is_err() {
            doc = before;
            apply_one_by_one(&mut doc, changes);
        }
        Ok(doc)
    }
}
