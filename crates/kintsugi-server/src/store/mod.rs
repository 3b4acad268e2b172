//! Storage behind a small trait, so the services do not know which database holds the data.
//!
//! The server stores spaces, members, devices (with the SHA-256 of their tokens), invites (with
//! the SHA-256 of their secrets), and per document a log of encrypted envelopes, a dedup index
//! and two snapshot slots (serving and candidate, see `put_snapshot`). It can read none of the
//! content. `SledStore` is the backend today;
//! a networked database can come later and must pass the same conformance suite
//! (`store_conformance_tests!`). Methods are synchronous because sled is; async handlers call
//! them through `spawn_blocking`. Writes are atomic per call, and `durable()` promises that
//! every write that returned before it is on disk once it resolves.
//!
//! Beyond reads and writes, a backend keeps a per-space byte counter for quotas, erases a
//! member (or a whole space) on `leave_space`, writes a consistent copy of itself in the
//! backup format of `dump` on `export`, and on `vacuum` rewrites its files so that deleted
//! ciphertext is really gone (why sled needs that: `sled_vacuum`).

use std::io::Write;
use std::path::PathBuf;

pub use crate::ids::{DeviceId, DocId, InviteId, MemberId, SecretHash, ServerSeq, SpaceId};

#[doc(hidden)]
pub mod conformance;
pub mod dump;
mod durable;
mod records;
mod sled_erase;
mod sled_log;
mod sled_pairing;
mod sled_snapshots;
mod sled_store;
mod sled_usage;
mod sled_vacuum;

pub use dump::{DumpError, DumpSummary};
pub use durable::Durable;
pub(crate) use sled_store::MARKER_FILE;
pub use sled_store::SledStore;
pub(crate) use sled_vacuum::BACKUP_TMP_PREFIX;

/// Who may read and write a document. Fixed by the document's first push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every member's devices.
    Shared,
    /// Only the devices of the owning member.
    Private,
}

/// What an invite adds when it is redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteKind {
    /// The second partner (a new member with a first device).
    Partner,
    /// Another device of the inviting member.
    Device,
}

/// A new space with its first member and device.
#[derive(Debug, Clone)]
pub struct NewSpace {
    pub space_id: SpaceId,
    pub member_id: MemberId,
    pub device_id: DeviceId,
    pub token_hash: SecretHash,
    pub sealed_member_name: Vec<u8>,
    pub sealed_device_name: Vec<u8>,
    pub now: i64,
}

/// A device as the store knows it. Names are sealed by clients; the server cannot read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub space_id: SpaceId,
    pub member_id: MemberId,
    pub device_id: DeviceId,
    pub token_hash: SecretHash,
    pub sealed_device_name: Vec<u8>,
    pub sealed_member_name: Vec<u8>,
    pub revoked: bool,
    pub created_at: i64,
    /// The device whose device-link code enrolled this one; `None` for a member's first device.
    pub enrolled_by: Option<DeviceId>,
}

impl DeviceInfo {
    /// Whether `self` may revoke `other`, among one member's devices: a member's first device
    /// (the root, which no device linked) may revoke any other; any other device only those
    /// linked through it. Never itself, so no device a thief holds can revoke an older one it
    /// did not link, and the member's first phone always wins.
    pub fn may_revoke(&self, other: &DeviceInfo, all: &[DeviceInfo]) -> bool {
        self.device_id != other.device_id
            && self.member_id == other.member_id
            && !self.revoked
            && (self.enrolled_by.is_none() || enrolled_through(other, self.device_id, all))
    }

    /// Whether `self` may act for its whole member (leave the space): it may revoke every other
    /// live device of the member.
    pub fn speaks_for_member(&self, all: &[DeviceInfo]) -> bool {
        !self.revoked
            && all
                .iter()
                .filter(|d| d.member_id == self.member_id && d.device_id != self.device_id)
                .filter(|d| !d.revoked)
                .all(|d| self.may_revoke(d, all))
    }
}

/// Whether `device` was enrolled by `ancestor`, directly or through a chain of devices.
pub fn enrolled_through(device: &DeviceInfo, ancestor: DeviceId, all: &[DeviceInfo]) -> bool {
    let mut next = device.enrolled_by;
    // A chain is at most as long as the list; the bound also stops a corrupt cycle.
    for _ in 0..=all.len() {
        match next {
            None => return false,
            Some(id) if id == ancestor => return true,
            Some(id) => {
                next = all
                    .iter()
                    .find(|d| d.device_id == id)
                    .and_then(|d| d.enrolled_by)
            }
        }
    }
    false
}

/// A new invite. The secret itself never reaches the store.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub invite_id: InviteId,
    pub space_id: SpaceId,
    /// The inviting member: a device invite links a device of this member.
    pub member_id: MemberId,
    /// The device that made the invite: once it is revoked, the invite is void.
    pub device_id: DeviceId,
    pub kind: InviteKind,
    pub secret_hash: SecretHash,
    pub expires_at: i64,
    pub now: i64,
}

/// A request to redeem an invite; the ids and token hash are made by the caller beforehand so
/// the store stays free of randomness.
#[derive(Debug, Clone)]
pub struct RedeemInvite {
    pub invite_id: InviteId,
    pub secret_hash: SecretHash,
    pub now: i64,
    /// Failed attempts after which the invite is deleted.
    pub max_failed_attempts: u32,
    /// Used only by a partner invite.
    pub new_member_id: MemberId,
    pub new_device_id: DeviceId,
    pub token_hash: SecretHash,
    pub sealed_member_name: Vec<u8>,
    pub sealed_device_name: Vec<u8>,
}

/// Live devices one member may have: each may hold streams and push, so a member who linked
/// devices without end could make the server hold without end.
pub const MAX_DEVICES_PER_MEMBER: usize = 10;

/// The outcome of redeeming an invite. Refusals are outcomes, not errors, because some of them
/// (a counted wrong attempt, a deleted expired invite) still change the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The invite was used up and a device (and for a partner, a member) was added.
    Joined {
        space_id: SpaceId,
        member_id: MemberId,
        device_id: DeviceId,
        kind: InviteKind,
    },
    /// No such invite, or it was used already.
    Unknown,
    /// The invite had expired; it is deleted now.
    Expired,
    /// The secret was wrong; the attempt was counted (and the invite deleted at the limit).
    WrongSecret,
    /// A partner invite, but the space already has two members.
    SpaceFull,
    /// The device that made the invite was revoked (or is gone); the invite is deleted now.
    InviterRevoked,
    /// A device invite, but its member has `MAX_DEVICES_PER_MEMBER` live devices already; the
    /// invite stays, for after a device is revoked.
    TooManyDevices,
}

/// The outcome of revoking a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The device is revoked now, and with it `cascade`: every device it enrolled, transitively,
    /// that was not revoked yet.
    Revoked { cascade: Vec<DeviceId> },
    /// The calling device named itself: a device leaves with `leave` or `wipe`, not `revoke`.
    Itself,
    /// The device is older than the caller, which did not enroll it.
    Older,
    /// It was revoked before; nothing changed.
    AlreadyRevoked,
    /// No such device in the caller's space.
    NotFound,
    /// The device belongs to another member.
    OtherMember,
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
    pub created_at: i64,
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
    pub now: i64,
    /// The space's storage quota: the append is refused if the space's nonce and ciphertext
    /// bytes would exceed it. `u64::MAX` for none.
    pub quota_bytes: u64,
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

/// A stored snapshot: the whole document, encrypted, up to `covers_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub covers_seq: ServerSeq,
    pub envelope: Envelope,
    pub stored_at: i64,
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
    pub now: i64,
    /// How long a snapshot stands as the candidate before it may serve and anything it
    /// covers may be pruned.
    pub retention_secs: i64,
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

/// What `leave_space` erased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Departure {
    /// The member's devices, revoked and deleted with their token hashes.
    pub devices: Vec<DeviceId>,
    /// How many documents were deleted: the member's private ones, or every one of the space.
    pub documents: u64,
    /// True when the member was the last one and the whole space was deleted.
    pub space_erased: bool,
}

/// The size of the store's files before and after `vacuum`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VacuumReport {
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Counts of what the store holds, for `kintsugi admin stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub spaces: u64,
    pub devices: u64,
    pub documents: u64,
    /// Log entries plus stored snapshots (serving and candidate).
    pub envelopes: u64,
    /// Nonce and ciphertext bytes of those envelopes.
    pub bytes: u64,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("another process holds the lock on {}", .0.display())]
    Locked(PathBuf),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("storage i/o failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage failed: {0}")]
    Backend(String),
    #[error("making writes durable failed: {0}")]
    Durability(String),
    #[error("a space with this id already exists")]
    SpaceExists,
    #[error("the space does not exist")]
    UnknownSpace,
    #[error("the document's audience is fixed as {recorded:?}")]
    AudienceFixed { recorded: Audience },
    #[error("the document is private to another member")]
    PrivateDocument,
    #[error("client_seq {client_seq} was reused with different content")]
    ClientSeqReused { client_seq: u64 },
    #[error("the document does not exist")]
    UnknownDocument,
    #[error("covers_seq {covers_seq} is beyond head_seq {head_seq}")]
    SnapshotBeyondHead { covers_seq: u64, head_seq: u64 },
    #[error("the space holds {used} of {quota} bytes; {needed} more do not fit")]
    QuotaExceeded { used: u64, quota: u64, needed: u64 },
    #[error(
        "a member rejected a snapshot at position {rejected_through}; offer one that covers more than that (this one covers {covers_seq})"
    )]
    SnapshotRejected {
        covers_seq: u64,
        rejected_through: u64,
    },
    #[error("the member is not (or no longer) in the space")]
    UnknownMember,
    #[error("the store is unavailable for a moment: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Dump(#[from] DumpError),
}

/// Storage for the blind server. Every method is atomic; see the module docs.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Creates a space with its first member and device. `SpaceExists` if the id is taken.
    fn create_space(&self, space: NewSpace) -> Result<(), StoreError>;
    /// The device holding the token with this hash, revoked or not.
    fn device_by_token_hash(
        &self,
        token_hash: &SecretHash,
    ) -> Result<Option<DeviceInfo>, StoreError>;
    /// How many members the space has.
    fn member_count(&self, space_id: SpaceId) -> Result<usize, StoreError>;
    /// Stores a new invite.
    fn create_invite(&self, invite: NewInvite) -> Result<(), StoreError>;
    /// Redeems an invite in one transaction: checks (the inviting device must not be
    /// revoked), uses it up, adds the device.
    fn redeem_invite(&self, redeem: RedeemInvite) -> Result<Redeemed, StoreError>;
    /// One device of the space, revoked or not.
    fn device(
        &self,
        space_id: SpaceId,
        device_id: DeviceId,
    ) -> Result<Option<DeviceInfo>, StoreError>;
    /// Every device of the space, revoked ones included, oldest first.
    fn list_devices(&self, space_id: SpaceId) -> Result<Vec<DeviceInfo>, StoreError>;
    /// `by` (a device of `member_id` in `space_id`) revokes `device_id` if
    /// `DeviceInfo::may_revoke` allows it, with every device it enrolled, transitively, and
    /// deletes the invites they made (also when it was revoked already, to finish a revocation
    /// a crash interrupted).
    fn revoke_device(
        &self,
        space_id: SpaceId,
        member_id: MemberId,
        by: DeviceId,
        device_id: DeviceId,
    ) -> Result<Revocation, StoreError>;
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
    /// Promotes a candidate that has stood `retention_secs` and that every member who reads
    /// the document endorsed, then deletes the log entries the
    /// serving snapshot covers (if it has stood its window too) and records how far the log is
    /// pruned, durably, before it deletes. Returns the new `pruned_through`.
    fn compact(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
        now: i64,
        retention_secs: i64,
    ) -> Result<ServerSeq, StoreError>;
    /// `compact` for every document with a snapshot in either slot. Returns how many entries
    /// were deleted.
    fn compact_all(&self, now: i64, retention_secs: i64) -> Result<u64, StoreError>;
    /// Counts of what the store holds.
    fn stats(&self) -> Result<StoreStats, StoreError>;
    /// Nonce and ciphertext bytes the space holds, as counted against its quota.
    fn space_usage(&self, space_id: SpaceId) -> Result<u64, StoreError>;
    /// The sum of every space's `space_usage`: what `stats` counts as bytes, read from the
    /// counters instead of a full scan, so it is cheap enough for a metrics gauge.
    fn total_usage(&self) -> Result<u64, StoreError>;
    /// Erases `member_id` from the space: their private documents, their devices and token
    /// hashes, their invites and the member. If they were the last member, erases everything
    /// of the space. Deleted data may linger in a backend's files until `vacuum`.
    fn leave_space(&self, space_id: SpaceId, member_id: MemberId) -> Result<Departure, StoreError>;
    /// Writes a consistent copy of everything in the `dump` format. Writes wait meanwhile.
    fn export(&self, out: &mut dyn Write) -> Result<DumpSummary, StoreError>;
    /// Rewrites the store's files so that deleted values no longer remain in them.
    fn vacuum(&self) -> Result<VacuumReport, StoreError>;
    /// Resolves once every write that returned before this call is on disk.
    fn durable(&self) -> Durable;
    /// Blocks until every earlier write is on disk.
    fn flush(&self) -> Result<(), StoreError> {
        self.durable().wait_blocking()
    }
}
