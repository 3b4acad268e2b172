//! The document log: metadata, envelopes and appends, with the `LogStore` trait.
//!
//! Per document the store keeps its metadata (audience, owner, positions) and an append-only
//! log of encrypted envelopes, each given the next `server_seq`. Appends are idempotent on
//! (device, client_seq), so a retried push is stored once and answered with its first seqs.

use super::StoreError;
use crate::clock::UnixSeconds;
use crate::ids::{DeviceId, DocId, MemberId, ServerSeq, SpaceId};

/// Who may read and write a document. Fixed by the document's first push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every member's devices.
    Shared,
    /// Only the devices of the owning member.
    Private,
}

/// What the server knows about a document: never its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocMeta {
    pub audience: Audience,
    /// The member whose push created the document; for a private document, its only reader.
    pub owner: MemberId,
    /// The highest server_seq assigned.
    pub head_seq: ServerSeq,
    /// Every log entry up to here was deleted by compaction; the serving snapshot covers them.
    pub pruned_through: ServerSeq,
    pub created_at: UnixSeconds,
    /// A member's device rejected a candidate snapshot at this position: no snapshot covering
    /// this much or less is accepted again, so a rejected one cannot come back.
    pub rejected_through: ServerSeq,
}

impl DocMeta {
    /// Whether `member`'s devices may read and write this document.
    pub fn readable_by(&self, member: MemberId) -> bool {
        self.audience == Audience::Shared || self.owner == member
    }
}

/// An encrypted envelope as stored. Its kind is implied by where it is stored: the log holds
/// changes, the snapshot slot holds a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub device_id: DeviceId,
    pub client_seq: u64,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    /// The author's signature, relayed as it came; devices check it, the server cannot.
    pub signature: Vec<u8>,
    /// The key epoch the author sealed it under, relayed as it came (0 from before epochs).
    pub key_epoch: u64,
}

impl Envelope {
    /// What endorsements and rejections of a snapshot name: SHA-256 over the device id,
    /// client_seq (big-endian), nonce and ciphertext (docs/protocol.md §8). Devices compute
    /// the same from the envelope they received.
    pub fn snapshot_hash(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(self.device_id.as_bytes());
        hash.update(self.client_seq.to_be_bytes());
        hash.update(&self.nonce);
        hash.update(&self.ciphertext);
        hash.finalize().into()
    }

    /// Bytes this envelope adds to a response, for page budgets.
    pub fn wire_size(&self) -> usize {
        // 16-byte id, nonce, ciphertext, plus about 32 bytes of protobuf tags and varints.
        16 + self.nonce.len() + self.ciphertext.len() + 32
    }
}

/// A log entry: an envelope and its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencedEnvelope {
    pub server_seq: ServerSeq,
    pub envelope: Envelope,
}

/// Envelopes to append to a document's log.
#[derive(Debug, Clone)]
pub struct AppendEnvelopes {
    pub space_id: SpaceId,
    pub doc_id: DocId,
    /// Declared audience; must match the recorded one, or creates the document with it.
    pub audience: Audience,
    /// The pushing member; owner of the document if this push creates it.
    pub member_id: MemberId,
    pub envelopes: Vec<Envelope>,
    pub now: UnixSeconds,
    /// The space's storage quota: the append is refused if the space's nonce and ciphertext
    /// bytes would exceed it. `u64::MAX` for none.
    pub quota_bytes: u64,
    /// For an append-only log whose writers chain their entries (the roster): the number of
    /// entries the log must hold for a fresh envelope to be appended; otherwise
    /// `PositionTaken`. Retries of stored envelopes still get their seqs.
    pub expect_head: Option<u64>,
}

/// The result of an append.
#[derive(Debug, Clone)]
pub struct Appended {
    /// One per envelope, in order; a retried envelope gets its original seq.
    pub server_seqs: Vec<ServerSeq>,
    /// The envelopes stored by this call (retries excluded), in seq order.
    pub fresh: Vec<SequencedEnvelope>,
    /// The envelopes of this call that were stored before (retries), once each, with their
    /// original seqs, in seq order. A push relays these too: the push that stored them may
    /// have been cut off before it relayed them.
    pub retried: Vec<SequencedEnvelope>,
    /// The document after the append.
    pub meta: DocMeta,
}

/// One page of a document's log.
#[derive(Debug, Clone, Default)]
pub struct EnvelopePage {
    pub envelopes: Vec<SequencedEnvelope>,
    /// True when entries after the last one returned exist.
    pub more: bool,
}

/// The log of every document. Every method is atomic (see `crate::store`).
pub trait LogStore {
    /// A document's metadata, `None` before its first push.
    fn doc_meta(&self, space_id: SpaceId, doc_id: DocId) -> Result<Option<DocMeta>, StoreError>;
    /// Every document of the space with its metadata.
    fn list_docs(&self, space_id: SpaceId) -> Result<Vec<(DocId, DocMeta)>, StoreError>;
    /// Appends envelopes idempotently on (device, client_seq), creating the document on its
    /// first push.
    fn append_envelopes(&self, append: AppendEnvelopes) -> Result<Appended, StoreError>;
    /// Log entries with seq > `after`, at most `max_count`, stopping before `max_bytes` would
    /// be exceeded (but always at least one entry if any exists).
    fn read_envelopes(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
        after: ServerSeq,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<EnvelopePage, StoreError>;
}
