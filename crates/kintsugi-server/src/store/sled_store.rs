//! The sled backend: one embedded database folder, one tree per kind of record.
//!
//! Trees: `spaces`, `members`, `devices` (keyed `space | device`), `tokens` (token hash ->
//! `space | device`), `invites`, `docs`, `log` (`space | doc | seq`), `dedup` and `snapshots`.
//! Every write that touches several trees runs in one sled transaction, so a crash never
//! leaves a device without its token or a log entry without its dedup record. sled's own
//! flush is not a durable sync on Linux; `durable()` goes through the group-commit thread in
//! `crate::durability`. This file opens the store and implements the trait;
//! `sled_pairing.rs` (spaces, devices, invites) and `sled_log.rs` (documents) do the work.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::records;
use super::{
    AppendEnvelopes, Appended, DeviceInfo, DocMeta, Durable, EnvelopePage, NewInvite, NewSnapshot,
    NewSpace, RedeemInvite, Redeemed, Revocation, Store, StoreError, StoreStats, StoredSnapshot,
};
use crate::durability::GroupCommit;
use crate::ids::{DeviceId, DocId, MemberId, SecretHash, ServerSeq, SpaceId};

/// The store in one sled folder. Opening takes sled's exclusive lock on the folder; dropping
/// the store waits for the sync thread and releases it.
#[derive(Debug)]
pub struct SledStore {
    pub(super) trees: Trees,
    // Declared last so it is dropped last: its thread holds the final handle on the database.
    commit: GroupCommit,
}

#[derive(Debug)]
pub(super) struct Trees {
    pub(super) spaces: sled::Tree,
    pub(super) members: sled::Tree,
    pub(super) devices: sled::Tree,
    pub(super) tokens: sled::Tree,
    pub(super) invites: sled::Tree,
    pub(super) docs: sled::Tree,
    pub(super) log: sled::Tree,
    pub(super) dedup: sled::Tree,
    pub(super) snapshots: sled::Tree,
}

/// Aborts a sled transaction with a store error (nothing of it is written).
pub(super) fn abort<T>(error: StoreError) -> Result<T, ConflictableTransactionError<StoreError>> {
    Err(ConflictableTransactionError::Abort(error))
}

/// Unwraps a transaction's result into the store's error type.
pub(super) fn settled<T>(result: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    result.map_err(|error| match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => error.into(),
    })
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        match error {
            sled::Error::Io(error) => StoreError::Io(error),
            sled::Error::Corruption { .. } => StoreError::Corrupt(error.to_string()),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. Fails with `StoreError::Locked` while another
    /// process, or another `SledStore` in this one, has it open.
    pub fn open(dir: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let db = sled::Config::new()
            .path(&dir)
            .open()
            .map_err(|error| open_error(&dir, error))?;
        check_format(&db, &dir)?;
        let trees = Trees {
            spaces: db.open_tree("spaces")?,
            members: db.open_tree("members")?,
            devices: db.open_tree("devices")?,
            tokens: db.open_tree("tokens")?,
            invites: db.open_tree("invites")?,
            docs: db.open_tree("docs")?,
            log: db.open_tree("log")?,
            dedup: db.open_tree("dedup")?,
            snapshots: db.open_tree("snapshots")?,
        };
        let commit = GroupCommit::start(db, &dir)?;
        Ok(SledStore { trees, commit })
    }
}

fn open_error(dir: &Path, error: sled::Error) -> StoreError {
    match error {
        // sled reports its folder lock as an `Other` error whose text names the lock and the
        // underlying WouldBlock; there is no structured way to tell.
        sled::Error::Io(error)
            if error.kind() == std::io::ErrorKind::WouldBlock
                || error.to_string().contains("could not acquire lock") =>
        {
            StoreError::Locked(dir.to_path_buf())
        }
        sled::Error::Unsupported(why) => StoreError::Corrupt(why),
        other => other.into(),
    }
}

/// The marker file a store leaves beside sled's files once it has written its format key.
const MARKER_FILE: &str = "kintsugi-store";

/// Checks the layout version. sled opens a `db` file whose contents were destroyed as an empty
/// database without complaint; the marker file beside it tells such a loss from a new folder.
fn check_format(db: &sled::Db, dir: &Path) -> Result<(), StoreError> {
    let marker = dir.join(MARKER_FILE);
    match db.get(records::FORMAT_KEY)? {
        None if marker.exists() => Err(StoreError::Corrupt(
            "its database file lost the data this server wrote".into(),
        )),
        None => {
            db.insert(
                records::FORMAT_KEY,
                &records::FORMAT_VERSION.to_be_bytes()[..],
            )?;
            db.flush()?;
            // The key must be on disk before the marker claims it is.
            std::fs::File::open(dir.join("db"))?.sync_data()?;
            write_marker(&marker)
        }
        Some(bytes) if bytes.as_ref() == records::FORMAT_VERSION.to_be_bytes() => {
            if marker.exists() {
                Ok(())
            } else {
                write_marker(&marker)
            }
        }
        Some(_) => Err(StoreError::Corrupt(
            "it was written by another version of the Kintsugi server".into(),
        )),
    }
}

fn write_marker(marker: &Path) -> Result<(), StoreError> {
    let file = std::fs::File::create(marker)?;
    std::io::Write::write_all(&mut &file, b"kintsugi store, format 1\n")?;
    file.sync_all()?;
    Ok(())
}

impl Store for SledStore {
    fn create_space(&self, space: NewSpace) -> Result<(), StoreError> {
        self.insert_space(space)
    }

    fn device_by_token_hash(
        &self,
        token_hash: &SecretHash,
    ) -> Result<Option<DeviceInfo>, StoreError> {
        self.find_device_by_token(token_hash)
    }

    fn member_count(&self, space_id: SpaceId) -> Result<usize, StoreError> {
        self.count_members(space_id)
    }

    fn create_invite(&self, invite: NewInvite) -> Result<(), StoreError> {
        self.insert_invite(invite)
    }

    fn redeem_invite(&self, redeem: RedeemInvite) -> Result<Redeemed, StoreError> {
        self.redeem(redeem)
    }

    fn list_devices(&self, space_id: SpaceId) -> Result<Vec<DeviceInfo>, StoreError> {
        self.scan_devices(space_id)
    }

    fn revoke_device(
        &self,
        space_id: SpaceId,
        member_id: MemberId,
        device_id: DeviceId,
    ) -> Result<Revocation, StoreError> {
        self.revoke(space_id, member_id, device_id)
    }

    fn doc_meta(&self, space_id: SpaceId, doc_id: DocId) -> Result<Option<DocMeta>, StoreError> {
        self.read_doc_meta(space_id, doc_id)
    }

    fn list_docs(&self, space_id: SpaceId) -> Result<Vec<(DocId, DocMeta)>, StoreError> {
        self.scan_docs(space_id)
    }

    fn append_envelopes(&self, append: AppendEnvelopes) -> Result<Appended, StoreError> {
        self.append_to_log(append)
    }

    fn read_envelopes(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
        after: ServerSeq,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<EnvelopePage, StoreError> {
        self.read_log(space_id, doc_id, after, max_count, max_bytes)
    }

    fn snapshot(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        self.read_snapshot(space_id, doc_id)
    }

    fn put_snapshot(&self, snapshot: NewSnapshot) -> Result<bool, StoreError> {
        self.store_snapshot(snapshot)
    }

    fn compact(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
        now: i64,
        retention_secs: i64,
    ) -> Result<ServerSeq, StoreError> {
        self.compact_doc(space_id, doc_id, now, retention_secs)
            .map(|(through, _)| through)
    }

    fn compact_all(&self, now: i64, retention_secs: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        for key in self.trees.snapshots.iter().keys() {
            let (space, doc) = records::split_pair_key("snapshots", &key?)?;
            removed += self.compact_doc(space, DocId(doc), now, retention_secs)?.1;
        }
        Ok(removed)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.count()
    }

    fn durable(&self) -> Durable {
        self.commit.request()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store_conformance_tests!(|dir: &Path| SledStore::open(dir).expect("the store opens"));

    #[test]
    fn a_second_open_of_the_same_folder_is_refused_as_locked() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let _first = SledStore::open(dir.path()).expect("the first open works");
        let second = SledStore::open(dir.path());
        assert!(matches!(second, Err(StoreError::Locked(_))), "{second:?}");
    }

    #[test]
    fn a_damaged_folder_is_reported_as_damaged() {
        for (file, garbage) in [
            ("conf", b"not a sled config".to_vec()),
            ("db", vec![0xab; 4096]),
        ] {
            let dir = tempfile::tempdir().expect("a temporary folder");
            SledStore::open(dir.path())
                .expect("a new store opens")
                .flush()
                .expect("flushed");
            std::fs::write(dir.path().join(file), garbage).expect("the file is overwritten");
            let reopened = SledStore::open(dir.path());
            assert!(
                matches!(reopened, Err(StoreError::Corrupt(_))),
                "{file}: {reopened:?}"
            );
        }
    }
}
