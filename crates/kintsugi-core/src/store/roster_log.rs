//! The roster log as this device verified it, and the head its user last compared.
//!
//! Entries are stored by position once `Roster::apply` accepted them, so a device replays its
//! roster without the server and notices a server that later shows it another history.

use kintsugi_proto::v1::SignedRosterEntry;
use prost::Message;

use super::{LocalStore, decode_u64};
use crate::error::Result;

/// The meta key of the roster head the user last verified (`kintsugi verify --confirm`).
const VERIFIED_HEAD_KEY: &[u8] = b"verified-roster-head";

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

    /// The roster head the user last verified, if any.
    pub fn verified_roster_head(&self) -> Result<Option<Vec<u8>>> {
        let head = self
            .meta
            .get(VERIFIED_HEAD_KEY)
            .map_err(|e| self.unreadable(e))?;
        Ok(head.map(|h| h.to_vec()))
    }

    /// Records `head` as the roster the user verified, and flushes.
    pub fn set_verified_roster_head(&self, head: &[u8]) -> Result<()> {
        self.meta
            .insert(VERIFIED_HEAD_KEY, head)
            .map_err(|e| self.unreadable(e))?;
        self.flush()
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
        assert_eq!(store.verified_roster_head().expect("read"), None);
        store.set_verified_roster_head(&[7; 32]).expect("write");
        assert_eq!(
            store.verified_roster_head().expect("read"),
            Some(vec![7; 32])
        );
    }
}
