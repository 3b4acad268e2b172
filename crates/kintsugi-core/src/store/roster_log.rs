//! The roster log as this device verified it, and the head its user last compared.
//!
//! Entries are stored by position once `Roster::apply` accepted them, so a device replays its
//! roster without the server and notices a server that later shows it another history.

use kintsugi_proto::v1::SignedRosterEntry;
use prost::Message;

use super::{LocalStore, PendingRosterEntry, decode_u64};
use crate::error::Result;

/// The meta key of the roster the user last verified (`kintsugi verify --confirm`): its
/// length, 8 bytes big-endian, then its head.
const VERIFIED_HEAD_KEY: &[u8] = b"verified-roster-head";
const PENDING_ENTRY_KEY: &[u8] = b"pending-roster-entry";

impl LocalStore {
    /// Every verified roster entry, in order.
    pub fn roster_log(&self) -> Result<Vec<SignedRosterEntry>> {
        self.roster_log
            .iter()
            .enumerate()
            .map(|(position, kv)| {
                let (k, v) = kv.map_err(|e| self.unreadable(e))?;
                if decode_u64(&k) != Some(position as u64) {
                    return Err(self.damaged("the roster log has a gap"));
                }
                SignedRosterEntry::decode(&*v).map_err(|e| self.damaged(e))
            })
            .collect()
    }

    /// Appends verified entries starting at `first`, the log's length, and flushes.
    pub fn append_roster_log(&self, first: u64, entries: &[SignedRosterEntry]) -> Result<()> {
        if self.roster_log.len() as u64 != first {
            return Err(self.damaged("the roster log is not as long as the roster"));
        }
        let mut batch = sled::Batch::default();
        for (position, entry) in (first..).zip(entries) {
            batch.insert(&position.to_be_bytes(), entry.encode_to_vec());
        }
        self.roster_log
            .apply_batch(batch)
            .map_err(|e| self.unreadable(e))?;
        self.flush()
    }

    /// The length and head of the roster the user last verified, if any.
    pub fn verified_roster(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let stored = self.meta.get(VERIFIED_HEAD_KEY);
        let Some(bytes) = stored.map_err(|e| self.unreadable(e))? else {
            return Ok(None);
        };
        let damaged = || self.damaged("the verified roster record");
        let (len, head) = bytes.split_at_checked(8).ok_or_else(damaged)?;
        Ok(Some((decode_u64(len).ok_or_else(damaged)?, head.to_vec())))
    }

    /// Records the roster of `len` entries ending in `head` as verified, and flushes.
    pub fn set_verified_roster(&self, len: u64, head: &[u8]) -> Result<()> {
        let value = [len.to_be_bytes().as_slice(), head].concat();
        self.meta
            .insert(VERIFIED_HEAD_KEY, value)
            .map_err(|e| self.unreadable(e))?;
        self.flush()
    }

    /// The roster entry this device still has to write, if any.
    pub fn pending_roster_entry(&self) -> Result<Option<PendingRosterEntry>> {
        self.read_meta(PENDING_ENTRY_KEY)
    }

    /// Remembers (or, with `None`, forgets) the roster entry this device has to write.
    pub fn set_pending_roster_entry(&self, pending: Option<&PendingRosterEntry>) -> Result<()> {
        let Some(pending) = pending else {
            let removed = self.meta.remove(PENDING_ENTRY_KEY);
            removed.map_err(|e| self.unreadable(e))?;
            return self.flush();
        };
        self.write_meta(PENDING_ENTRY_KEY, pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(byte: u8) -> SignedRosterEntry {
        SignedRosterEntry {
            entry: vec![byte],
            signature: vec![byte; 64],
        }
    }

    #[test]
    fn the_log_keeps_its_order_and_refuses_a_misplaced_append() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = LocalStore::open(dir.path()).expect("opens");
        store
            .append_roster_log(0, &[entry(1), entry(2)])
            .expect("append");
        store.append_roster_log(2, &[entry(3)]).expect("append");
        assert!(store.append_roster_log(1, &[entry(9)]).is_err());
        let log = store.roster_log().expect("read");
        assert_eq!(log, vec![entry(1), entry(2), entry(3)]);
        assert_eq!(store.verified_roster().expect("read"), None);
        store.set_verified_roster(3, &[7; 32]).expect("write");
        let verified = store.verified_roster().expect("read");
        assert_eq!(verified, Some((3, vec![7; 32])));
    }
}
