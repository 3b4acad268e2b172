//! The on-disk form of the sled store: record types and key layouts.
//!
//! Values are protobuf messages (`prost::Message`), which the server already depends on, so
//! fields can be added later without a migration and no second serialization crate is needed.
//! Keys are fixed-width byte strings whose order is the order scans need: a document's log
//! is keyed `space | doc | seq` with the seq big-endian, so a prefix scan walks one document
//! in seq order and a range scan starts right after a cursor. Times are `int64` Unix seconds,
//! as they always were: the backend converts them from and to `UnixSeconds` where it builds and
//! reads records, so the bytes on disk do not depend on the type.

use prost::Message;

use super::{Audience, Envelope, InviteKind, StoreError};
use crate::ids::{DeviceId, DocId, MemberId, ServerSeq, SpaceId};

/// Version of this layout, stored in the default tree, checked on open.
pub(super) const FORMAT_VERSION: u32 = 1;
pub(super) const FORMAT_KEY: &[u8] = b"kintsugi/format";

/// A space: its members, because member counts must be read inside transactions, where sled
/// cannot scan.
#[derive(Clone, PartialEq, Message)]
pub(super) struct SpaceRecord {
    #[prost(int64, tag = "1")]
    pub created_at: i64,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub member_ids: Vec<Vec<u8>>,
}

/// A member, keyed `space | member`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct MemberRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub sealed_name: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub created_at: i64,
    /// The member's recovery key (32 bytes); empty for members stored before recovery keys.
    #[prost(bytes = "vec", tag = "3")]
    pub recovery_key: Vec<u8>,
    /// The `issued_at` of the member's last recovery; none before the first.
    #[prost(int64, optional, tag = "4")]
    pub last_recovery_issued_at: Option<i64>,
}

/// A device, keyed `space | device`, so listing a space's devices is a prefix scan.
#[derive(Clone, PartialEq, Message)]
pub(super) struct DeviceRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub member_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub sealed_name: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub token_hash: Vec<u8>,
    #[prost(bool, tag = "4")]
    pub revoked: bool,
    #[prost(int64, tag = "5")]
    pub created_at: i64,
    /// The device whose device-link code enrolled this one; empty for a member's first device.
    #[prost(bytes = "vec", tag = "6")]
    pub enrolled_by: Vec<u8>,
}

/// An invite, keyed by invite id. Holds the SHA-256 of the secret only.
#[derive(Clone, PartialEq, Message)]
pub(super) struct InviteRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub space_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub member_id: Vec<u8>,
    /// 1 partner, 2 device (the protocol's numbers).
    #[prost(int32, tag = "3")]
    pub kind: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub secret_hash: Vec<u8>,
    #[prost(int64, tag = "5")]
    pub expires_at: i64,
    #[prost(uint32, tag = "6")]
    pub failed_attempts: u32,
    #[prost(int64, tag = "7")]
    pub created_at: i64,
    /// The device that made the invite; empty in invites stored before it was recorded.
    #[prost(bytes = "vec", tag = "8")]
    pub device_id: Vec<u8>,
}

/// A document's metadata, keyed `space | doc`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct DocRecord {
    /// 1 shared, 2 private (the protocol's numbers).
    #[prost(int32, tag = "1")]
    pub audience: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub owner_member_id: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub head_seq: u64,
    #[prost(uint64, tag = "4")]
    pub pruned_through: u64,
    #[prost(int64, tag = "5")]
    pub created_at: i64,
    #[prost(uint64, tag = "6")]
    pub rejected_through: u64,
}

/// One log entry, keyed `space | doc | seq`. The append time drives retention.
#[derive(Clone, PartialEq, Message)]
pub(super) struct LogRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub device_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub client_seq: u64,
    #[prost(bytes = "vec", tag = "3")]
    pub nonce: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub ciphertext: Vec<u8>,
    #[prost(int64, tag = "5")]
    pub appended_at: i64,
    #[prost(bytes = "vec", tag = "6")]
    pub signature: Vec<u8>,
    /// The envelope's key epoch; records stored before epochs read back as 0.
    #[prost(uint64, tag = "7")]
    pub key_epoch: u64,
}

/// The dedup index, keyed `space | doc | device | client_seq`. It keeps a hash of the content
/// rather than pointing into the log, so retries are recognised even after compaction.
#[derive(Clone, PartialEq, Message)]
pub(super) struct DedupRecord {
    #[prost(uint64, tag = "1")]
    pub server_seq: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub content_hash: Vec<u8>,
}

/// A document's snapshot, keyed `space | doc`, in `snapshots` (serving) or `candidates`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct SnapshotRecord {
    #[prost(uint64, tag = "1")]
    pub covers_seq: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub device_id: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub client_seq: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub nonce: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    pub ciphertext: Vec<u8>,
    #[prost(int64, tag = "6")]
    pub stored_at: i64,
    /// Members who checked this snapshot against the log and endorsed it (candidates only).
    #[prost(bytes = "vec", repeated, tag = "7")]
    pub endorsed_by: Vec<Vec<u8>>,
    /// The device each endorsement came from, in the same order: an endorsement counts only
    /// while its device is not revoked.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub endorsing_devices: Vec<Vec<u8>>,
    #[prost(bytes = "vec", tag = "9")]
    pub signature: Vec<u8>,
    /// The envelope's key epoch; records stored before epochs read back as 0.
    #[prost(uint64, tag = "10")]
    pub key_epoch: u64,
}

/// Decodes a record, reporting which tree held the damaged value.
pub(super) fn decode<M: Message + Default>(tree: &str, bytes: &[u8]) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Corrupt(format!("a record in `{tree}`: {e}")))
}

pub(super) fn id16<T>(
    tree: &str,
    bytes: &[u8],
    make: fn(&[u8]) -> Option<T>,
) -> Result<T, StoreError> {
    make(bytes).ok_or_else(|| StoreError::Corrupt(format!("an id in `{tree}` is not 16 bytes")))
}

pub(super) fn audience_to_i32(audience: Audience) -> i32 {
    match audience {
        Audience::Shared => 1,
        Audience::Private => 2,
    }
}

pub(super) fn audience_from_i32(value: i32) -> Result<Audience, StoreError> {
    match value {
        1 => Ok(Audience::Shared),
        2 => Ok(Audience::Private),
        other => Err(StoreError::Corrupt(format!("unknown audience {other}"))),
    }
}

pub(super) fn invite_kind_to_i32(kind: InviteKind) -> i32 {
    match kind {
        InviteKind::Partner => 1,
        InviteKind::Device => 2,
    }
}

pub(super) fn invite_kind_from_i32(value: i32) -> Result<InviteKind, StoreError> {
    match value {
        1 => Ok(InviteKind::Partner),
        2 => Ok(InviteKind::Device),
        other => Err(StoreError::Corrupt(format!("unknown invite kind {other}"))),
    }
}

impl LogRecord {
    pub(super) fn envelope(self) -> Result<Envelope, StoreError> {
        Ok(Envelope {
            device_id: id16("log", &self.device_id, DeviceId::from_slice)?,
            client_seq: self.client_seq,
            nonce: self.nonce,
            ciphertext: self.ciphertext,
            signature: self.signature,
            key_epoch: self.key_epoch,
        })
    }
}

impl SnapshotRecord {
    pub(super) fn envelope(self) -> Result<Envelope, StoreError> {
        Ok(Envelope {
            device_id: id16("snapshots", &self.device_id, DeviceId::from_slice)?,
            client_seq: self.client_seq,
            nonce: self.nonce,
            ciphertext: self.ciphertext,
            signature: self.signature,
            key_epoch: self.key_epoch,
        })
    }
}

/// SHA-256 over nonce and ciphertext: what a retry must repeat exactly.
pub(super) fn content_hash(envelope: &Envelope) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update((envelope.nonce.len() as u64).to_be_bytes());
    hasher.update(&envelope.nonce);
    hasher.update(&envelope.ciphertext);
    hasher.finalize().to_vec()
}

/// `space | x`: members, devices, documents and snapshots.
pub(super) fn pair_key(space: SpaceId, second: &[u8; 16]) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(space.as_bytes());
    key[16..].copy_from_slice(second);
    key
}

/// `space | doc`, as a vector for sled prefix scans.
pub(super) fn doc_key(space: SpaceId, doc: DocId) -> [u8; 32] {
    pair_key(space, doc.as_bytes())
}

/// `space | doc | seq` with seq big-endian, so byte order is seq order.
pub(super) fn log_key(space: SpaceId, doc: DocId, seq: ServerSeq) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(&doc_key(space, doc));
    key[32..].copy_from_slice(&seq.0.to_be_bytes());
    key
}

/// The seq at the end of a log key.
pub(super) fn seq_of_log_key(key: &[u8]) -> Result<ServerSeq, StoreError> {
    key.get(32..40)
        .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
        .map(|bytes| ServerSeq(u64::from_be_bytes(bytes)))
        .ok_or_else(|| StoreError::Corrupt("a log key is not 40 bytes".into()))
}

/// `space | doc | device | client_seq`.
pub(super) fn dedup_key(space: SpaceId, doc: DocId, device: DeviceId, client_seq: u64) -> [u8; 56] {
    let mut key = [0u8; 56];
    key[..32].copy_from_slice(&doc_key(space, doc));
    key[32..48].copy_from_slice(device.as_bytes());
    key[48..].copy_from_slice(&client_seq.to_be_bytes());
    key
}

/// Splits a 32-byte `space | x` key.
pub(super) fn split_pair_key(tree: &str, key: &[u8]) -> Result<(SpaceId, [u8; 16]), StoreError> {
    let bad = || StoreError::Corrupt(format!("a key in `{tree}` is not 32 bytes"));
    if key.len() != 32 {
        return Err(bad());
    }
    let space = SpaceId::from_slice(&key[..16]).ok_or_else(bad)?;
    let second = <[u8; 16]>::try_from(&key[16..]).map_err(|_| bad())?;
    Ok((space, second))
}

/// The member id stored in a record, checked.
pub(super) fn member_id(tree: &str, bytes: &[u8]) -> Result<MemberId, StoreError> {
    id16(tree, bytes, MemberId::from_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_seq() {
        let space = SpaceId([1; 16]);
        let doc = DocId([2; 16]);
        assert!(log_key(space, doc, ServerSeq(255)) < log_key(space, doc, ServerSeq(256)));
        assert_eq!(
            seq_of_log_key(&log_key(space, doc, ServerSeq(300))).expect("a log key"),
            ServerSeq(300)
        );
    }

    #[test]
    fn damaged_records_are_reported_not_panicked() {
        let result: Result<DocRecord, _> = decode("docs", &[0xff, 0xff, 0xff]);
        assert!(matches!(result, Err(StoreError::Corrupt(_))));
    }

    /// What an older server wrote: the records without the fields added since.
    #[derive(Clone, PartialEq, Message)]
    struct OlderLogRecord {
        #[prost(bytes = "vec", tag = "1")]
        device_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "6")]
        signature: Vec<u8>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct OlderSnapshotRecord {
        #[prost(bytes = "vec", tag = "2")]
        device_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "9")]
        signature: Vec<u8>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct OlderMemberRecord {
        #[prost(bytes = "vec", tag = "1")]
        sealed_name: Vec<u8>,
        #[prost(int64, tag = "2")]
        created_at: i64,
    }

    #[test]
    fn records_from_before_key_epochs_and_recovery_keys_read_back_without_them() {
        let older = OlderLogRecord {
            device_id: vec![3; 16],
            signature: vec![4; 64],
        }
        .encode_to_vec();
        let log: LogRecord = decode("log", &older).expect("decodes");
        let envelope = log.envelope().expect("an envelope");
        assert_eq!((envelope.signature, envelope.key_epoch), (vec![4; 64], 0));
        let older = OlderSnapshotRecord {
            device_id: vec![3; 16],
            signature: vec![4; 64],
        }
        .encode_to_vec();
        let snapshot: SnapshotRecord = decode("snapshots", &older).expect("decodes");
        let envelope = snapshot.envelope().expect("an envelope");
        assert_eq!((envelope.signature, envelope.key_epoch), (vec![4; 64], 0));
        let member = OlderMemberRecord {
            sealed_name: b"sealed".to_vec(),
            created_at: 5,
        }
        .encode_to_vec();
        let member: MemberRecord = decode("members", &member).expect("decodes");
        assert!(member.recovery_key.is_empty());
        assert_eq!(member.last_recovery_issued_at, None);
    }
}
