//! Snapshots and compaction, with the `SnapshotStore` trait.
//!
//! Each document has two snapshot slots: the *candidate*, the newest snapshot accepted, which
//! members' devices audit and endorse or reject, and the *serving* one, which stood the whole
//! retention window and which a device behind the pruned part of the log receives. Compaction
//! promotes a candidate and deletes the log entries the serving snapshot covers.

use std::time::Duration;

use super::{Envelope, StoreError};
use crate::clock::UnixSeconds;
use crate::ids::{DeviceId, DocId, MemberId, ServerSeq, SpaceId};

/// A stored snapshot: the whole document, encrypted, up to `covers_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub covers_seq: ServerSeq,
    pub envelope: Envelope,
    pub stored_at: UnixSeconds,
}

/// A snapshot to store; `put_snapshot` decides which slot, if any, it takes.
#[derive(Debug, Clone)]
pub struct NewSnapshot {
    pub space_id: SpaceId,
    pub doc_id: DocId,
    /// The storing member; must be allowed to write the document.
    pub member_id: MemberId,
    pub covers_seq: ServerSeq,
    pub envelope: Envelope,
    pub now: UnixSeconds,
    /// How long a snapshot stands as the candidate before it may serve and anything it
    /// covers may be pruned.
    pub retention: Duration,
    /// The space's storage quota, as in `AppendEnvelopes`.
    pub quota_bytes: u64,
}

/// What `put_snapshot` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotPut {
    /// The candidate had stood its window and serves now. Nothing is pruned yet: the caller
    /// makes this durable and then calls `compact`.
    pub promoted: bool,
    /// The new snapshot is the candidate now. False when a younger candidate stands, or when
    /// it covers no more than the newest snapshot stored.
    pub kept: bool,
}

/// A member's verdict on the current candidate snapshot of a document, naming it by position
/// and content hash (`Envelope::snapshot_hash`), so a verdict on one snapshot never applies to
/// another stored at the same position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateVerdict {
    pub space_id: SpaceId,
    pub doc_id: DocId,
    /// The member whose device checked the candidate; must be able to read the document.
    pub member_id: MemberId,
    /// That device: its endorsement counts only while it is not revoked.
    pub device_id: DeviceId,
    pub covers_seq: ServerSeq,
    pub content_hash: [u8; 32],
}

/// The snapshot slots of every document and the compaction they allow. Every method is
/// atomic (see `crate::store`).
pub trait SnapshotStore {
    /// The document's SERVING snapshot: it stood the whole retention window as the candidate,
    /// and the log is pruned through at most its `covers_seq`. A pull from before
    /// `pruned_through` starts with it.
    fn snapshot(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
    ) -> Result<Option<StoredSnapshot>, StoreError>;
    /// The document's CANDIDATE snapshot: the newest one accepted, younger than the window.
    /// Nothing is pruned for it and it is never served.
    fn candidate_snapshot(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
    ) -> Result<Option<StoredSnapshot>, StoreError>;
    /// Drops the document's candidate snapshot if it is the one the verdict names: a member
    /// whose device found that it does not hold exactly the logged changes up to its position
    /// refuses it before it can serve or prune anything, and the document's `rejected_through`
    /// rises to its position, so no snapshot covering that much or less is accepted again.
    /// Returns whether a candidate was dropped.
    fn reject_candidate(&self, verdict: CandidateVerdict) -> Result<bool, StoreError>;
    /// Records the member's endorsement of the candidate the verdict names. Returns false when
    /// it is no longer the candidate (replaced or rejected meanwhile).
    fn endorse_candidate(&self, verdict: CandidateVerdict) -> Result<bool, StoreError>;
    /// Offers a snapshot, in one transaction. Refused (`SnapshotRejected`) at or below the
    /// document's `rejected_through`. A candidate younger than the window stands: the new one
    /// is not kept. A candidate that has stood its window is promoted to serving (replacing
    /// the serving one) if every member who reads the document endorsed it, and dropped if not.
    /// The new one then becomes the candidate if it covers more than the newest snapshot
    /// stored. Checks the document, the audience, membership, `covers_seq <= head_seq` and the
    /// quota first.
    fn put_snapshot(&self, snapshot: NewSnapshot) -> Result<SnapshotPut, StoreError>;
    /// Promotes a candidate that has stood `retention` and that every member who reads
    /// the document endorsed, then deletes the log entries the
    /// serving snapshot covers (if it has stood its window too) and records how far the log is
    /// pruned, durably, before it deletes. Returns the new `pruned_through`.
    fn compact(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
        now: UnixSeconds,
        retention: Duration,
    ) -> Result<ServerSeq, StoreError>;
    /// `compact` for every document with a snapshot in either slot. Returns how many entries
    /// were deleted.
    fn compact_all(&self, now: UnixSeconds, retention: Duration) -> Result<u64, StoreError>;
}
