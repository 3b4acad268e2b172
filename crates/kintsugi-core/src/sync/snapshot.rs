//! Snapshots: a whole saved document, sealed like a change, that lets the server prune its log.
//!
//! The snapshot's plaintext carries the heads it claims to cover. A device that loads one checks
//! that the document really contains every claimed head before it moves its cursor past the
//! pruned log, so a bad or truncated snapshot is detected and nothing is lost.

use automerge::{Automerge, ChangeHash, ReadDoc};
use kintsugi_proto::v1::{EnvelopeKind, PutSnapshotRequest, Snapshot};
use prost::Message;

use super::client::Connection;
use crate::device::Device;
use crate::docs::DocKind;
use crate::envelope::{EnvelopeContext, open, seal};
use crate::error::{CoreError, Result};

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
}

impl Device {
    /// Loads a snapshot from the server, checks it holds what it claims, and merges it.
    pub(crate) fn load_snapshot(&self, kind: DocKind, snapshot: &Snapshot) -> Result<()> {
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
        let mut remote = Automerge::load(&payload.document)
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
        let mut loaded = self.load(kind)?;
        loaded
            .doc
            .merge(&mut remote)
            .map_err(|e| CoreError::InvalidChange(format!("snapshot: {e}")))?;
        self.store.replace_doc(
            doc_id,
            &loaded.doc.save(),
            &loaded.change_keys,
            Some(snapshot.covers_seq),
        )
    }

    /// Offers the server a snapshot when the log grew enough since the last one this device sent.
    pub(crate) async fn maybe_put_snapshot(
        &self,
        conn: &mut Connection,
        kind: DocKind,
    ) -> Result<()> {
        let doc_id = kind.id(&self.identity.keys);
        let covers_seq = self.store.cursor(doc_id)?;
        let last = self.store.last_snapshot(doc_id)?;
        if covers_seq < last + SNAPSHOT_EVERY {
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
        let doc = self.load(kind)?.doc;
        let payload = SnapshotPayload {
            heads: doc.get_heads().iter().map(|h| h.0.to_vec()).collect(),
            document: doc.save(),
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
        self.store.set_last_snapshot(doc_id, covers_seq)
    }
}
