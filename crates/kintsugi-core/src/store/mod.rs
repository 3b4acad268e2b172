//! One device's state in a sled database: identity and keys, documents, outbox and cursors.
//!
//! Each document is stored as a saved snapshot plus the changes applied since, so an edit
//! writes one small change instead of the whole document. Every state transition is one sled
//! transaction followed by a flush: a local edit writes its change, its sealed outbox entry and
//! the client sequence counter together; applying pulled changes writes them and the advanced
//! cursor together. A process killed at any point leaves either all of it or none of it.

mod known_keys;
mod private;
mod records;
mod roster_log;
mod sled_open;

use std::path::{Path, PathBuf};

use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::error::{CoreError, Result};
use crate::ids::DocId;
use kintsugi_proto::v1::Audience;
use records::OutboxRecord;
pub use records::{
    IdentityRecord, PendingChange, PendingRosterEntry, RosterEntry, RosterRecord, SetAsideRecord,
};

const IDENTITY_KEY: &[u8] = b"identity";
const NEXT_CLIENT_SEQ_KEY: &[u8] = b"next_client_seq";
const ROSTER_KEY: &[u8] = b"roster";
/// Prefix of the per-document content hash of the last candidate snapshot audited.
const AUDITED_PREFIX: &[u8] = b"audited-snapshot/";

/// The saved parts of one document, as stored.
#[derive(Debug, Default)]
pub struct StoredDoc {
    pub saved: Option<Vec<u8>>,
    /// Keys and bytes of the changes applied after `saved`, in order.
    pub changes: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The local sled database of one device.
#[derive(Debug)]
pub struct LocalStore {
    dir: PathBuf,
    db: sled::Db,
    meta: sled::Tree,
    docs: sled::Tree,
    changes: sled::Tree,
    outbox: sled::Tree,
    cursors: sled::Tree,
    set_aside: sled::Tree,
    roster_log: sled::Tree,
    /// Held while the store is open (`sled_open.rs`); declared last, so it is released last.
    _lock: std::fs::File,
}

impl LocalStore {
    /// Opens (or creates) the store in `dir`, readable by this user only.
    pub fn open(dir: &Path) -> Result<Self> {
        create_private_dir(dir)?;
        let lock = sled_open::lock(dir)?;
        sled_open::remove_unfinished_snapshots(dir, &dir.join("store"))?;
        let db = sled::Config::new()
            .path(dir.join("store"))
            .open()
            .map_err(|e| open_error(dir, e))?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| open_error(dir, e));
        Ok(Self {
            meta: tree("meta")?,
            docs: tree("docs")?,
            changes: tree("changes")?,
            outbox: tree("outbox")?,
            cursors: tree("cursors")?,
            set_aside: tree("set_aside")?,
            roster_log: tree("roster_log")?,
            dir: dir.to_path_buf(),
            db,
            _lock: lock,
        })
    }

    /// Erases the store in `dir`, damaged or not; `Busy` while another process has it open.
    pub fn erase(dir: &Path) -> Result<()> {
        sled_open::erase(dir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn identity(&self) -> Result<Option<IdentityRecord>> {
        self.read_meta(IDENTITY_KEY)
    }

    pub fn save_identity(&self, identity: &IdentityRecord) -> Result<()> {
        self.write_meta(IDENTITY_KEY, identity)
    }

    /// The record stored under `key` in the meta tree, `None` before it is first written.
    fn read_meta<M: Message + Default>(&self, key: &[u8]) -> Result<Option<M>> {
        match self.meta.get(key).map_err(|e| self.unreadable(e))? {
            None => Ok(None),
            Some(bytes) => M::decode(&*bytes).map(Some).map_err(|e| self.damaged(e)),
        }
    }

    /// Stores `record` under `key` in the meta tree and flushes.
    fn write_meta(&self, key: &[u8], record: &impl Message) -> Result<()> {
        self.meta
            .insert(key, record.encode_to_vec())
            .map_err(|e| self.unreadable(e))?;
        self.flush()
    }

    pub fn load_doc(&self, doc: DocId) -> Result<StoredDoc> {
        let saved = self
            .docs
            .get(doc.as_bytes())
            .map_err(|e| self.unreadable(e))?
            .map(|v| v.to_vec());
        let changes = self
            .changes
            .scan_prefix(doc.as_bytes())
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.unreadable(e))?;
        Ok(StoredDoc { saved, changes })
    }

    /// Writes a local change, its sealed outbox entry and the next client sequence number in one
    /// transaction. `seal` gets the client sequence number the envelope must carry. Returns the
    /// key the change is stored under.
    pub fn commit_local_change(
        &self,
        doc: DocId,
        change: &[u8],
        audience: Audience,
        seal: impl Fn(u64) -> kintsugi_proto::v1::Envelope,
    ) -> Result<Vec<u8>> {
        let change_key = self.change_key(doc)?;
        let result =
            (&self.meta, &self.changes, &self.outbox).transaction(|(meta, changes, outbox)| {
                let seq = take_client_seq(meta)?;
                changes.insert(change_key.as_slice(), change)?;
                let record = OutboxRecord {
                    doc_id: doc.as_bytes().to_vec(),
                    audience: audience.into(),
                    envelope: Some(seal(seq)),
                };
                outbox.insert(&seq.to_be_bytes(), record.encode_to_vec())?;
                Ok(())
            });
        self.finish(result)?;
        self.flush()?;
        Ok(change_key)
    }

    /// The next client sequence number, reserved outside a change (for snapshots).
    pub fn reserve_client_seq(&self) -> Result<u64> {
        let result = self.meta.transaction(take_client_seq);
        let seq = self.finish(result)?;
        self.flush()?;
        Ok(seq)
    }

    /// Every change not yet acknowledged by the server, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, PendingChange)>> {
        self.outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.unreadable(e))?;
                let seq = decode_u64(&k).ok_or_else(|| self.damaged("outbox key"))?;
                Ok((seq, self.pending_change(&v)?))
            })
            .collect()
    }

    fn pending_change(&self, bytes: &[u8]) -> Result<PendingChange> {
        let record = OutboxRecord::decode(bytes).map_err(|e| self.damaged(e))?;
        let doc_id = DocId::from_slice(&record.doc_id)
            .map_err(|_| self.damaged("outbox entry for a malformed document id"))?;
        let audience = Audience::try_from(record.audience)
            .map_err(|_| self.damaged("outbox entry of an unknown audience"))?;
        let envelope = record
            .envelope
            .ok_or_else(|| self.damaged("outbox entry without envelope"))?;
        Ok(PendingChange {
            doc_id,
            audience,
            envelope,
        })
    }

    /// Replaces the envelope of outbox entry `seq` (sealed again under a newer key epoch), and
    /// flushes, so a retry after a crash sends the very same bytes.
    pub fn replace_outbox_envelope(
        &self,
        seq: u64,
        envelope: &kintsugi_proto::v1::Envelope,
    ) -> Result<()> {
        let key = seq.to_be_bytes();
        let stored = self.outbox.get(key).map_err(|e| self.unreadable(e))?;
        let stored =
            stored.ok_or_else(|| self.damaged("the outbox entry to seal again is gone"))?;
        let mut record = OutboxRecord::decode(&*stored).map_err(|e| self.damaged(e))?;
        record.envelope = Some(envelope.clone());
        self.outbox
            .insert(key, record.encode_to_vec())
            .map_err(|e| self.unreadable(e))?;
        self.flush()
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Drops outbox entries the server acknowledged.
    pub fn remove_from_outbox(&self, seqs: &[u64]) -> Result<()> {
        let result = self.outbox.transaction(|outbox| {
            for seq in seqs {
                outbox.remove(&seq.to_be_bytes())?;
            }
            Ok(())
        });
        self.finish(result)?;
        self.flush()
    }

    /// The highest server sequence number applied for `doc`.
    pub fn cursor(&self, doc: DocId) -> Result<u64> {
        match self
            .cursors
            .get(doc.as_bytes())
            .map_err(|e| self.unreadable(e))?
        {
            None => Ok(0),
            Some(v) => decode_u64(&v).ok_or_else(|| self.damaged("cursor")),
        }
    }

    /// Stores pulled changes, the envelopes set aside from the same page, and the new cursor
    /// together. Returns the keys the changes are stored under.
    pub fn apply_pulled(
        &self,
        doc: DocId,
        new_changes: &[Vec<u8>],
        set_aside: &[SetAsideRecord],
        cursor: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let keys = new_changes
            .iter()
            .map(|_| self.change_key(doc))
            .collect::<Result<Vec<_>>>()?;
        let aside = encode_set_aside(set_aside);
        let result = (&self.changes, &self.cursors, &self.set_aside).transaction(
            |(changes, cursors, kept)| {
                for (key, change) in keys.iter().zip(new_changes) {
                    changes.insert(key.as_slice(), change.as_slice())?;
                }
                for (key, record) in &aside {
                    kept.insert(key.as_slice(), record.as_slice())?;
                }
                cursors.insert(doc.as_bytes(), &cursor.to_be_bytes())?;
                Ok(())
            },
        );
        self.finish(result)?;
        self.flush()?;
        Ok(keys)
    }

    /// Every envelope set aside so far, oldest first per document.
    pub fn set_aside(&self) -> Result<Vec<SetAsideRecord>> {
        self.set_aside
            .iter()
            .values()
            .map(|v| {
                let bytes = v.map_err(|e| self.unreadable(e))?;
                SetAsideRecord::decode(&*bytes).map_err(|e| self.damaged(e))
            })
            .collect()
    }

    /// The devices of the space as last seen, `None` before the first look.
    pub fn roster(&self) -> Result<Option<RosterRecord>> {
        self.read_meta(ROSTER_KEY)
    }

    pub fn save_roster(&self, roster: &RosterRecord) -> Result<()> {
        self.write_meta(ROSTER_KEY, roster)
    }

    /// Replaces a document's saved bytes, dropping the changes they include, and optionally moves
    /// its cursor (after loading a snapshot). Used for compaction of the local store too.
    pub fn replace_doc(
        &self,
        doc: DocId,
        saved: &[u8],
        included_change_keys: &[Vec<u8>],
        cursor: Option<u64>,
    ) -> Result<()> {
        self.replace_doc_setting_aside(doc, saved, included_change_keys, &[], cursor)
    }

    /// `replace_doc`, storing envelopes set aside from the same page with it.
    pub fn replace_doc_setting_aside(
        &self,
        doc: DocId,
        saved: &[u8],
        included_change_keys: &[Vec<u8>],
        set_aside: &[SetAsideRecord],
        cursor: Option<u64>,
    ) -> Result<()> {
        let aside = encode_set_aside(set_aside);
        let trees = (&self.docs, &self.changes, &self.cursors, &self.set_aside);
        let result = trees.transaction(|(docs, changes, cursors, kept)| {
            docs.insert(doc.as_bytes(), saved)?;
            for key in included_change_keys {
                changes.remove(key.as_slice())?;
            }
            for (key, record) in &aside {
                kept.insert(key.as_slice(), record.as_slice())?;
            }
            if let Some(cursor) = cursor {
                cursors.insert(doc.as_bytes(), &cursor.to_be_bytes())?;
            }
            Ok(())
        });
        self.finish(result)?;
        self.flush()
    }

    /// A per-document position this device remembers (0 until set).
    pub fn mark(&self, mark: Mark, doc: DocId) -> Result<u64> {
        match self
            .meta
            .get(mark.key(doc))
            .map_err(|e| self.unreadable(e))?
        {
            None => Ok(0),
            Some(v) => decode_u64(&v).ok_or_else(|| self.damaged("a document mark")),
        }
    }

    pub fn set_mark(&self, mark: Mark, doc: DocId, seq: u64) -> Result<()> {
        self.meta
            .insert(mark.key(doc), &seq.to_be_bytes())
            .map_err(|e| self.unreadable(e))?;
        self.flush()
    }

    /// The content hash of the last candidate snapshot of `doc` this device audited.
    pub fn audited_snapshot(&self, doc: DocId) -> Result<Option<Vec<u8>>> {
        let key = [AUDITED_PREFIX, doc.as_bytes()].concat();
        let value = self.meta.get(key).map_err(|e| self.unreadable(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    pub fn set_audited_snapshot(&self, doc: DocId, content_hash: &[u8]) -> Result<()> {
        let key = [AUDITED_PREFIX, doc.as_bytes()].concat();
        self.meta
            .insert(key, content_hash)
            .map_err(|e| self.unreadable(e))?;
        self.flush()
    }

    /// Whether local changes of `doc` wait in the outbox.
    pub fn has_pending(&self, doc: DocId) -> Result<bool> {
        Ok(self
            .outbox()?
            .iter()
            .any(|(_, pending)| pending.doc_id == doc))
    }

    /// Makes everything written so far survive a killed process.
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }

    fn change_key(&self, doc: DocId) -> Result<Vec<u8>> {
        // generate_id is monotonic across restarts, so changes keep their order under the prefix.
        let id = self.db.generate_id().map_err(|e| self.io(e))?;
        Ok([doc.as_bytes().as_slice(), &id.to_be_bytes()].concat())
    }

    fn finish<T>(&self, result: Result<T, TransactionError<String>>) -> Result<T> {
        result.map_err(|e| match e {
            TransactionError::Abort(reason) => self.damaged(reason),
            TransactionError::Storage(e) => self.io(e),
        })
    }

    fn damaged(&self, reason: impl ToString) -> CoreError {
        CoreError::damaged(&self.dir, reason)
    }

    /// A failed read of the store's files.
    fn unreadable(&self, e: sled::Error) -> CoreError {
        CoreError::damaged(&self.dir, plain_reason(&e))
    }

    fn io(&self, e: sled::Error) -> CoreError {
        match e {
            sled::Error::Io(io) => CoreError::io(&self.dir, io),
            other => CoreError::io(&self.dir, std::io::Error::other(plain_reason(&other))),
        }
    }
}

/// Set-aside records keyed `doc | server_seq`, so they list in log order per document.
fn encode_set_aside(records: &[SetAsideRecord]) -> Vec<(Vec<u8>, Vec<u8>)> {
    records
        .iter()
        .map(|r| {
            let key = [r.doc_id.as_slice(), &r.server_seq.to_be_bytes()].concat();
            (key, r.encode_to_vec())
        })
        .collect()
}

/// Takes the device's next client sequence number (1 for the first) and moves the counter on,
/// inside a transaction over the meta tree.
fn take_client_seq(
    meta: &sled::transaction::TransactionalTree,
) -> Result<u64, ConflictableTransactionError<String>> {
    let seq = match meta.get(NEXT_CLIENT_SEQ_KEY)? {
        Some(v) => decode_u64(&v).ok_or_else(|| abort("client sequence counter is damaged"))?,
        None => 1,
    };
    meta.insert(NEXT_CLIENT_SEQ_KEY, &(seq + 1).to_be_bytes())?;
    Ok(seq)
}

fn abort(reason: &str) -> ConflictableTransactionError<String> {
    ConflictableTransactionError::Abort(reason.to_string())
}

/// Per-document positions kept in the meta tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The `covers_seq` of the last snapshot this device gave the server.
    SnapshotSent,
}

impl Mark {
    fn key(self, doc: DocId) -> Vec<u8> {
        let prefix: &[u8] = match self {
            Mark::SnapshotSent => b"snapshot/",
        };
        [prefix, doc.as_bytes()].concat()
    }
}

fn decode_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

fn open_error(dir: &Path, e: sled::Error) -> CoreError {
    match e {
        // sled reports its lock as ErrorKind::Other with this text (config.rs, try_lock).
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock") =>
        {
            CoreError::Busy(dir.to_path_buf())
        }
        sled::Error::Io(io) => CoreError::io(dir, io),
        other => CoreError::damaged(dir, plain_reason(&other)),
    }
}

/// sled's own text carries debug details ("Read corrupted data at file offset Some(Inline(434))
/// backtrace ()"); people need the gist.
pub(crate) fn plain_reason(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { .. } => "its files are corrupted".into(),
        sled::Error::Io(io) => io.to_string(),
        sled::Error::Unsupported(what) => format!("unsupported: {what}"),
        sled::Error::ReportableBug(_) => "the storage engine hit an internal error".into(),
        sled::Error::CollectionNotFound(_) => "a part of the store is missing".into(),
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    private::make_private(dir).map_err(|e| CoreError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kintsugi_proto::v1::Envelope;

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            client_seq: seq,
            ..Default::default()
        }
    }

    #[test]
    fn local_change_outbox_and_counter_move_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path()).expect("open");
        let doc = DocId([1; 16]);
        let first = store
            .commit_local_change(doc, b"c1", Audience::Shared, envelope)
            .expect("c1");
        let second = store
            .commit_local_change(doc, b"c2", Audience::Shared, envelope)
            .expect("c2");
        let outbox = store.outbox().expect("outbox");
        assert_eq!(
            outbox.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(outbox[1].1.envelope.client_seq, 2);
        let stored = store.load_doc(doc).expect("load");
        assert_eq!(
            stored
                .changes
                .iter()
                .map(|(_, c)| c.as_slice())
                .collect::<Vec<_>>(),
            [b"c1", b"c2"]
        );
        let keys: Vec<_> = stored.changes.into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [first, second],
            "the keys returned are those stored under"
        );
        store.remove_from_outbox(&[1]).expect("remove");
        assert_eq!(store.outbox_len(), 1);
    }

    #[test]
    fn state_survives_reopen_and_second_open_is_busy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let doc = DocId([2; 16]);
        {
            let store = LocalStore::open(dir.path()).expect("open");
            store
                .apply_pulled(doc, &[b"x".to_vec()], &[], 9)
                .expect("apply");
            assert!(matches!(
                LocalStore::open(dir.path()),
                Err(CoreError::Busy(_))
            ));
        }
        let store = LocalStore::open(dir.path()).expect("reopen");
        assert_eq!(store.cursor(doc).expect("cursor"), 9);
        assert_eq!(store.load_doc(doc).expect("load").changes.len(), 1);
    }
}
