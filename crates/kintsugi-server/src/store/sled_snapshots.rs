//! Snapshots in the sled backend: the two slots per document, promotion, rejection, and
//! compaction of the log they cover (docs/protocol.md §8).
//!
//! Snapshots live in two slots per document: the *candidate* (`candidates`), the newest one
//! accepted, which must stand the whole retention window before anything it covers may go, and
//! the *serving* one (`snapshots`), which did, and which a device behind the pruned part of the
//! log receives. Compaction promotes a candidate that has stood its window, records
//! `pruned_through` (at most the serving snapshot's `covers_seq`), makes both durable, and only
//! then deletes entries, so a crash in between leaves extra entries, never a gap that the
//! serving snapshot does not explain.

use std::time::Duration;

use prost::Message;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::records::{self, SnapshotRecord};
use super::sled_log::{decode_meta, meta_to_record, stored_bytes};
use super::sled_store::{Opened, Tx, TxResult, abort, settled};
use super::sled_usage::{self, snapshot_record_bytes};
use super::{
    Audience, CandidateVerdict, DocMeta, NewSnapshot, SnapshotPut, StoreError, StoredSnapshot,
};
use crate::clock::UnixSeconds;
use crate::ids::{DocId, MemberId, ServerSeq, SpaceId};

impl Opened {
    pub(super) fn snapshot(
        &self,
        space: SpaceId,
        doc: DocId,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        self.read_slot(space, doc, Slot::Serving)
    }

    pub(super) fn candidate_snapshot(
        &self,
        space: SpaceId,
        doc: DocId,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        self.read_slot(space, doc, Slot::Candidate)
    }

    fn read_slot(
        &self,
        space: SpaceId,
        doc: DocId,
        slot: Slot,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let Some(bytes) = self.slot_tree(slot).get(records::doc_key(space, doc))? else {
            return Ok(None);
        };
        let record: SnapshotRecord = records::decode(slot.tree_name(), &bytes)?;
        let covers_seq = ServerSeq(record.covers_seq);
        let stored_at = UnixSeconds::from_secs(record.stored_at);
        Ok(Some(StoredSnapshot {
            covers_seq,
            stored_at,
            envelope: record.envelope()?,
        }))
    }

    fn slot_tree(&self, slot: Slot) -> &sled::Tree {
        match slot {
            Slot::Serving => &self.trees.snapshots,
            Slot::Candidate => &self.trees.candidates,
        }
    }

    /// The two-slot rule of `Store::put_snapshot`, in one transaction.
    pub(super) fn put_snapshot(&self, snapshot: NewSnapshot) -> Result<SnapshotPut, StoreError> {
        let key = records::doc_key(snapshot.space_id, snapshot.doc_id);
        let record = snapshot_record(&snapshot);
        let new_bytes = stored_bytes(&snapshot.envelope.nonce, &snapshot.envelope.ciphertext);
        let member_key = records::pair_key(snapshot.space_id, snapshot.member_id.as_bytes());
        let (now, retention) = (snapshot.now, snapshot.retention);
        let t = &self.trees;
        settled(
            (
                &t.docs,
                &t.snapshots,
                &t.candidates,
                &t.usage,
                &t.members,
                &t.spaces,
                &t.devices,
            )
                .transaction(
                    |(docs, serving, candidates, usage, members, spaces, devices)| {
                        let meta = readable_meta(docs, key, snapshot.member_id)?;
                        if members.get(member_key)?.is_none() {
                            return abort(StoreError::UnknownMember);
                        }
                        check_position(&snapshot, &meta)?;
                        let mut outcome = SnapshotPut::default();
                        let used_before = sled_usage::get(usage, snapshot.space_id)?;
                        let mut used = used_before;
                        let slots = Slots {
                            serving,
                            candidates,
                            key,
                        };
                        let readers = Readers {
                            spaces,
                            devices,
                            space: snapshot.space_id,
                        };
                        // The newest snapshot stored: the new one must cover more to be kept.
                        let old = slots.settle_candidate(&readers, &meta, (now, retention))?;
                        let newest = match old {
                            OldCandidate::Stands => return Ok(outcome),
                            OldCandidate::Promoted { covers_seq, freed } => {
                                outcome.promoted = true;
                                used = used.saturating_sub(freed);
                                covers_seq
                            }
                            OldCandidate::Dropped { freed } => {
                                used = used.saturating_sub(freed);
                                slots.serving_covers()?
                            }
                            OldCandidate::Absent => slots.serving_covers()?,
                        };
                        if snapshot.covers_seq.0 > newest {
                            used = within_quota(used, new_bytes, snapshot.quota_bytes)?;
                            candidates.insert(&key[..], record.clone())?;
                            outcome.kept = true;
                        }
                        if used != used_before {
                            sled_usage::set(usage, snapshot.space_id, used)?;
                        }
                        Ok(outcome)
                    },
                ),
        )
    }

    /// Drops the candidate the verdict names and raises the document's `rejected_through` to
    /// its position, so the same snapshot (or any other at that position) cannot come back.
    pub(super) fn reject_candidate(&self, verdict: CandidateVerdict) -> Result<bool, StoreError> {
        let key = records::doc_key(verdict.space_id, verdict.doc_id);
        let t = &self.trees;
        settled(
            (&t.docs, &t.candidates, &t.usage).transaction(|(docs, candidates, usage)| {
                let mut meta = readable_meta(docs, key, verdict.member_id)?;
                let Some(bytes) = named_candidate(candidates, key, &verdict)? else {
                    return Ok(false);
                };
                candidates.remove(&key[..])?;
                meta.rejected_through = meta.rejected_through.max(verdict.covers_seq);
                docs.insert(&key[..], meta_to_record(&meta))?;
                let freed = snapshot_record_bytes(&bytes).unwrap_or(0);
                let used = sled_usage::get(usage, verdict.space_id)?;
                sled_usage::set(usage, verdict.space_id, used.saturating_sub(freed))?;
                Ok(true)
            }),
        )
    }

    /// Adds the verdict's member to the endorsements of the candidate it names.
    pub(super) fn endorse_candidate(&self, verdict: CandidateVerdict) -> Result<bool, StoreError> {
        let key = records::doc_key(verdict.space_id, verdict.doc_id);
        let (member, device) = (verdict.member_id.to_vec(), verdict.device_id.to_vec());
        let t = &self.trees;
        settled((&t.docs, &t.candidates).transaction(|(docs, candidates)| {
            readable_meta(docs, key, verdict.member_id)?;
            let Some(bytes) = named_candidate(candidates, key, &verdict)? else {
                return Ok(false);
            };
            let mut candidate: SnapshotRecord = records::decode("candidates", &bytes)
                .map_err(ConflictableTransactionError::Abort)?;
            let pairs = candidate
                .endorsed_by
                .iter()
                .zip(&candidate.endorsing_devices);
            if !pairs.into_iter().any(|(m, d)| *m == member && *d == device) {
                // Older records kept members only; their devices are unknown, so not counted.
                candidate
                    .endorsing_devices
                    .resize(candidate.endorsed_by.len(), Vec::new());
                candidate.endorsed_by.push(member.clone());
                candidate.endorsing_devices.push(device.clone());
                candidates.insert(&key[..], candidate.encode_to_vec())?;
            }
            Ok(true)
        }))
    }

    /// Moves a candidate that has stood its window, endorsed by every member who reads the
    /// document, into the serving slot. Returns whether it did.
    fn promote_candidate(
        &self,
        space: SpaceId,
        doc: DocId,
        now: UnixSeconds,
        retention: Duration,
    ) -> Result<bool, StoreError> {
        let key = records::doc_key(space, doc);
        let t = &self.trees;
        settled(
            (
                &t.docs,
                &t.snapshots,
                &t.candidates,
                &t.usage,
                &t.spaces,
                &t.devices,
            )
                .transaction(|(docs, serving, candidates, usage, spaces, devices)| {
                    let Some(bytes) = candidates.get(key)? else {
                        return Ok(false);
                    };
                    let candidate: SnapshotRecord = records::decode("candidates", &bytes)
                        .map_err(ConflictableTransactionError::Abort)?;
                    let Some(meta) = docs.get(key)? else {
                        return Ok(false);
                    };
                    let meta = decode_meta(&meta).map_err(ConflictableTransactionError::Abort)?;
                    let readers = Readers {
                        spaces,
                        devices,
                        space,
                    };
                    if !has_stood(UnixSeconds::from_secs(candidate.stored_at), now, retention)
                        || !readers.all_endorsed(&candidate, &meta)?
                    {
                        return Ok(false);
                    }
                    if let Some(old) = serving.insert(&key[..], bytes)? {
                        let freed = snapshot_record_bytes(&old).unwrap_or(0);
                        let used = sled_usage::get(usage, space)?;
                        sled_usage::set(usage, space, used.saturating_sub(freed))?;
                    }
                    candidates.remove(&key[..])?;
                    Ok(true)
                }),
        )
    }

    /// Promotes a candidate that stood its window, then prunes what the serving snapshot
    /// covers. Returns the new `pruned_through` and how many entries were deleted.
    pub(super) fn compact(
        &self,
        space: SpaceId,
        doc: DocId,
        now: UnixSeconds,
        retention: Duration,
    ) -> Result<(ServerSeq, u64), StoreError> {
        let Some(meta) = self.doc_meta(space, doc)? else {
            return Ok((ServerSeq(0), 0));
        };
        self.promote_candidate(space, doc, now, retention)?;
        let Some(snapshot) = self.snapshot(space, doc)? else {
            return Ok((meta.pruned_through, 0));
        };
        // A snapshot serves only after standing its window as the candidate, so this holds for
        // every promoted one. It still guards a snapshot kept by an older server, which put a
        // new snapshot straight into the serving slot: nothing it covers goes before it has
        // stood the whole window.
        if !has_stood(snapshot.stored_at, now, retention) {
            return Ok((meta.pruned_through, 0));
        }
        let start = records::log_key(space, doc, meta.pruned_through.next());
        let end = records::log_key(space, doc, snapshot.covers_seq);
        let mut through = meta.pruned_through;
        let mut doomed = Vec::new();
        for item in self.trees.log.range(start..=end).keys() {
            let key = item?;
            through = records::seq_of_log_key(&key)?;
            doomed.push(key);
        }
        if doomed.is_empty() {
            return Ok((meta.pruned_through, 0));
        }
        let key = records::doc_key(space, doc);
        settled(self.trees.docs.transaction(|docs| {
            let Some(bytes) = docs.get(key)? else {
                return abort(StoreError::UnknownDocument);
            };
            let mut meta = decode_meta(&bytes).map_err(ConflictableTransactionError::Abort)?;
            meta.pruned_through = meta.pruned_through.max(through);
            docs.insert(&key[..], meta_to_record(&meta))?;
            Ok(())
        }))?;
        // The promotion and the new `pruned_through` reach the disk before any entry goes, so
        // no crash leaves a pruned log without a serving snapshot that covers it.
        self.commit.request().wait_blocking()?;
        let removed = self.remove_log_entries(space, &doomed)?;
        Ok((through, removed))
    }

    /// `compact` for every document with a snapshot in either slot, once each. Returns how
    /// many entries were deleted.
    pub(super) fn compact_all(
        &self,
        now: UnixSeconds,
        retention: Duration,
    ) -> Result<u64, StoreError> {
        let mut docs = std::collections::BTreeSet::new();
        for slot in [Slot::Serving, Slot::Candidate] {
            for key in self.slot_tree(slot).iter().keys() {
                docs.insert(records::split_pair_key(slot.tree_name(), &key?)?);
            }
        }
        let mut removed = 0;
        for (space, doc) in docs {
            removed += self.compact(space, DocId(doc), now, retention)?.1;
        }
        Ok(removed)
    }
}

/// The two snapshot slots of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// Stood its window; the log is pruned through at most its `covers_seq`; served.
    Serving,
    /// The newest accepted, younger than the window; nothing pruned for it; never served.
    Candidate,
}

impl Slot {
    fn tree_name(self) -> &'static str {
        match self {
            Slot::Serving => "snapshots",
            Slot::Candidate => "candidates",
        }
    }
}

/// The document's metadata, if `member` may read it.
fn readable_meta(docs: &Tx, key: [u8; 32], member: MemberId) -> TxResult<DocMeta> {
    let Some(bytes) = docs.get(key)? else {
        return abort(StoreError::UnknownDocument);
    };
    let meta = decode_meta(&bytes).map_err(ConflictableTransactionError::Abort)?;
    if !meta.readable_by(member) {
        return abort(StoreError::PrivateDocument);
    }
    Ok(meta)
}

/// The stored candidate, if it is the one the verdict names by position and content hash.
fn named_candidate(
    candidates: &Tx,
    key: [u8; 32],
    verdict: &CandidateVerdict,
) -> TxResult<Option<sled::IVec>> {
    let Some(bytes) = candidates.get(key)? else {
        return Ok(None);
    };
    let candidate: SnapshotRecord =
        records::decode("candidates", &bytes).map_err(ConflictableTransactionError::Abort)?;
    if candidate.covers_seq != verdict.covers_seq.0 {
        return Ok(None);
    }
    let envelope = candidate
        .envelope()
        .map_err(ConflictableTransactionError::Abort)?;
    let named = envelope.snapshot_hash() == verdict.content_hash;
    Ok(named.then_some(bytes))
}

/// What deciding whether every reader endorsed a candidate reads, inside a transaction.
struct Readers<'a> {
    spaces: &'a Tx,
    devices: &'a Tx,
    space: SpaceId,
}

impl Readers<'_> {
    /// Whether every member who reads the document (every member of the space for a shared
    /// one, the owner for a private one) endorsed the candidate from a device that is not
    /// revoked: a thief's endorsement from a phone revoked since does not count.
    fn all_endorsed(&self, candidate: &SnapshotRecord, meta: &DocMeta) -> TxResult<bool> {
        let readers = match meta.audience {
            Audience::Private => vec![meta.owner.to_vec()],
            Audience::Shared => {
                let Some(bytes) = self.spaces.get(self.space.as_bytes())? else {
                    return Ok(false);
                };
                let record: records::SpaceRecord = records::decode("spaces", &bytes)
                    .map_err(ConflictableTransactionError::Abort)?;
                record.member_ids
            }
        };
        let pairs: Vec<_> = candidate
            .endorsed_by
            .iter()
            .zip(&candidate.endorsing_devices)
            .collect();
        for reader in &readers {
            let mut endorsed = false;
            for (_, device) in pairs.iter().filter(|(m, _)| *m == reader) {
                endorsed |= self.live(device)?;
            }
            if !endorsed {
                return Ok(false);
            }
        }
        Ok(!readers.is_empty())
    }

    /// Whether the device with these id bytes exists and is not revoked.
    fn live(&self, device: &[u8]) -> TxResult<bool> {
        let Ok(device) = <&[u8; 16]>::try_from(device) else {
            return Ok(false);
        };
        let key = records::pair_key(self.space, device);
        let Some(bytes) = self.devices.get(key)? else {
            return Ok(false);
        };
        let record: records::DeviceRecord =
            records::decode("devices", &bytes).map_err(ConflictableTransactionError::Abort)?;
        Ok(!record.revoked)
    }
}

/// Whether a snapshot stored at `stored_at` has stood the whole retention window by `now`.
fn has_stood(stored_at: UnixSeconds, now: UnixSeconds, retention: Duration) -> bool {
    now.saturating_sub(stored_at) > retention
}

/// The record a new snapshot is stored as, encoded before the transaction.
fn snapshot_record(snapshot: &NewSnapshot) -> Vec<u8> {
    SnapshotRecord {
        covers_seq: snapshot.covers_seq.0,
        device_id: snapshot.envelope.device_id.to_vec(),
        client_seq: snapshot.envelope.client_seq,
        nonce: snapshot.envelope.nonce.clone(),
        ciphertext: snapshot.envelope.ciphertext.clone(),
        stored_at: snapshot.now.as_secs(),
        endorsed_by: Vec::new(),
        endorsing_devices: Vec::new(),
        signature: snapshot.envelope.signature.clone(),
        key_epoch: snapshot.envelope.key_epoch,
    }
    .encode_to_vec()
}

/// Refuses a snapshot beyond the document's head or at a position already rejected.
fn check_position(snapshot: &NewSnapshot, meta: &DocMeta) -> TxResult<()> {
    if snapshot.covers_seq > meta.head_seq {
        return abort(StoreError::SnapshotBeyondHead {
            covers_seq: snapshot.covers_seq.0,
            head_seq: meta.head_seq.0,
        });
    }
    if snapshot.covers_seq <= meta.rejected_through {
        return abort(StoreError::SnapshotRejected {
            covers_seq: snapshot.covers_seq.0,
            rejected_through: meta.rejected_through.0,
        });
    }
    Ok(())
}

/// The usage after adding `new_bytes`, refused if it would pass the quota.
fn within_quota(used: u64, new_bytes: u64, quota_bytes: u64) -> TxResult<u64> {
    if used.saturating_add(new_bytes) > quota_bytes {
        return abort(StoreError::QuotaExceeded {
            used,
            quota: quota_bytes,
            needed: new_bytes,
        });
    }
    Ok(used.saturating_add(new_bytes))
}

/// What became of the stored candidate before a new snapshot is considered.
enum OldCandidate {
    /// None was stored.
    Absent,
    /// It is still inside its window and stands, so the new snapshot is not kept.
    Stands,
    /// It stood its window with every reader's endorsement and now serves, replacing a
    /// serving one of `freed` bytes.
    Promoted { covers_seq: u64, freed: u64 },
    /// It stood its window without every reader's endorsement and was dropped, freeing `freed`.
    Dropped { freed: u64 },
}

/// A document's two snapshot slots, inside a transaction.
struct Slots<'a> {
    serving: &'a Tx,
    candidates: &'a Tx,
    key: [u8; 32],
}

impl Slots<'_> {
    /// Promotes or drops a candidate that stood its window (`now` and the retention).
    fn settle_candidate(
        &self,
        readers: &Readers<'_>,
        meta: &DocMeta,
        (now, retention): (UnixSeconds, Duration),
    ) -> TxResult<OldCandidate> {
        let key = self.key;
        let Some(bytes) = self.candidates.get(key)? else {
            return Ok(OldCandidate::Absent);
        };
        let candidate: SnapshotRecord =
            records::decode("candidates", &bytes).map_err(ConflictableTransactionError::Abort)?;
        if !has_stood(UnixSeconds::from_secs(candidate.stored_at), now, retention) {
            // A young candidate stands: a frequent writer cannot restart its
            // window for ever, and a bad snapshot cannot push out a good one.
            return Ok(OldCandidate::Stands);
        }
        self.candidates.remove(&key[..])?;
        if readers.all_endorsed(&candidate, meta)? {
            let freed = match self.serving.insert(&key[..], bytes)? {
                Some(old) => snapshot_record_bytes(&old).unwrap_or(0),
                None => 0,
            };
            Ok(OldCandidate::Promoted {
                covers_seq: candidate.covers_seq,
                freed,
            })
        } else {
            // It stood its window without every reader's endorsement: it never
            // serves, and makes room for a new one.
            Ok(OldCandidate::Dropped {
                freed: snapshot_record_bytes(&bytes).unwrap_or(0),
            })
        }
    }

    /// The position the serving snapshot covers, 0 if there is none.
    fn serving_covers(&self) -> TxResult<u64> {
        let Some(bytes) = self.serving.get(self.key)? else {
            return Ok(0);
        };
        let stored: SnapshotRecord =
            records::decode("snapshots", &bytes).map_err(ConflictableTransactionError::Abort)?;
        Ok(stored.covers_seq)
    }
}
