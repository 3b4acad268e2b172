//! Storage accounting in the sled backend: per-space byte counters, statistics, deletions.
//!
//! A space's quota is checked inside the transaction that appends to its log or stores its
//! snapshot, so it needs a counter that transaction can read: sled transactions cannot scan.
//! `usage` holds, per space, the nonce and ciphertext bytes of its log entries and snapshots
//! (serving and candidate), and every write that changes those (append, snapshot, compaction, erasure) updates the
//! counter in the same transaction. Stores made before the counter existed are counted once
//! on open. `count` is the slow, exact census behind `kintsugi admin stats`.

use sled::Transactional;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use super::records::{self, LogRecord, SnapshotRecord};
use super::sled_log::stored_bytes;
use super::sled_store::{Opened, settled};
use super::{StoreError, StoreStats};
use crate::ids::SpaceId;

/// Set in the default tree once every space's counter is right.
const USAGE_COUNTED_KEY: &[u8] = b"kintsugi/usage-counted";
/// How many log entries one deleting transaction removes.
const DELETE_CHUNK: usize = 512;

/// A space's counter inside a transaction.
pub(super) fn get(
    usage: &TransactionalTree,
    space: SpaceId,
) -> Result<u64, UnabortableTransactionError> {
    Ok(usage
        .get(space.as_bytes())?
        .map_or(0, |bytes| decode(&bytes)))
}

/// Sets a space's counter inside a transaction; zero removes it.
pub(super) fn set(
    usage: &TransactionalTree,
    space: SpaceId,
    bytes: u64,
) -> Result<(), UnabortableTransactionError> {
    if bytes == 0 {
        usage.remove(&space.as_bytes()[..])?;
    } else {
        usage.insert(&space.as_bytes()[..], &bytes.to_be_bytes()[..])?;
    }
    Ok(())
}

/// A counter's value; a damaged one counts as zero rather than locking the space out.
fn decode(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes)
}

/// The bytes a log record holds.
pub(super) fn log_record_bytes(value: &[u8]) -> Result<u64, StoreError> {
    let record: LogRecord = records::decode("log", value)?;
    Ok(stored_bytes(&record.nonce, &record.ciphertext))
}

/// The bytes a snapshot record holds.
pub(super) fn snapshot_record_bytes(value: &[u8]) -> Result<u64, StoreError> {
    let record: SnapshotRecord = records::decode("snapshots", value)?;
    Ok(stored_bytes(&record.nonce, &record.ciphertext))
}

impl Opened {
    /// The space's counter.
    pub(super) fn space_usage(&self, space: SpaceId) -> Result<u64, StoreError> {
        Ok(self
            .trees
            .usage
            .get(space.as_bytes())?
            .map_or(0, |bytes| decode(&bytes)))
    }

    /// The sum of every space's counter.
    pub(super) fn total_usage(&self) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for value in self.trees.usage.iter().values() {
            total = total.saturating_add(decode(&value?));
        }
        Ok(total)
    }

    /// Counts every space once if this store predates the counters.
    pub(super) fn ensure_usage_counted(&self) -> Result<(), StoreError> {
        if self.db.get(USAGE_COUNTED_KEY)?.is_some() {
            return Ok(());
        }
        let mut totals = std::collections::BTreeMap::<[u8; 16], u64>::new();
        for item in self.trees.log.iter() {
            let (key, value) = item?;
            let space = <[u8; 16]>::try_from(key.get(..16).unwrap_or_default())
                .map_err(|_| StoreError::Corrupt("a log key is too short".into()))?;
            *totals.entry(space).or_default() += log_record_bytes(&value)?;
        }
        for (name, tree) in [
            ("snapshots", &self.trees.snapshots),
            ("candidates", &self.trees.candidates),
        ] {
            for item in tree.iter() {
                let (key, value) = item?;
                let (space, _) = records::split_pair_key(name, &key)?;
                *totals.entry(space.0).or_default() += snapshot_record_bytes(&value)?;
            }
        }
        let mut batch = sled::Batch::default();
        for (space, bytes) in totals {
            batch.insert(&space[..], &bytes.to_be_bytes()[..]);
        }
        self.trees.usage.apply_batch(batch)?;
        self.db.insert(USAGE_COUNTED_KEY, &[1u8][..])?;
        Ok(())
    }

    /// Removes log entries of `space` and takes their bytes off its counter, a chunk per
    /// transaction. Keys already gone count nothing. Returns how many were removed.
    pub(super) fn remove_log_entries(
        &self,
        space: SpaceId,
        keys: &[sled::IVec],
    ) -> Result<u64, StoreError> {
        let t = &self.trees;
        let mut removed = 0;
        for chunk in keys.chunks(DELETE_CHUNK) {
            removed += settled((&t.log, &t.usage).transaction(|(log, usage)| {
                let mut bytes = 0u64;
                let mut count = 0u64;
                for key in chunk {
                    if let Some(value) = log.remove(key)? {
                        // A record too damaged to measure still goes; it counts as nothing.
                        bytes += log_record_bytes(&value).unwrap_or(0);
                        count += 1;
                    }
                }
                let used = get(usage, space)?;
                set(usage, space, used.saturating_sub(bytes))?;
                Ok(count)
            }))?;
        }
        Ok(removed)
    }

    pub(super) fn stats(&self) -> Result<StoreStats, StoreError> {
        let t = &self.trees;
        let mut bytes = 0u64;
        for value in t.log.iter().values() {
            bytes += log_record_bytes(&value?)?;
        }
        for value in t
            .snapshots
            .iter()
            .values()
            .chain(t.candidates.iter().values())
        {
            bytes += snapshot_record_bytes(&value?)?;
        }
        Ok(StoreStats {
            spaces: t.spaces.len() as u64,
            devices: t.devices.len() as u64,
            documents: t.docs.len() as u64,
            envelopes: (t.log.len() + t.snapshots.len() + t.candidates.len()) as u64,
            bytes,
        })
    }
}
