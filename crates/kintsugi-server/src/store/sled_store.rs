//! The sled backend: one embedded database folder, one tree per kind of record.
//!
//! Trees: `spaces`, `members`, `devices` (keyed `space | device`), `tokens` (token hash ->
//! `space | device`), `invites`, `docs`, `log` (`space | doc | seq`), `dedup`, `snapshots`
//! (the serving snapshot per document), `candidates` (the candidate snapshot per document),
//! `usage` (bytes per space, for quotas) and `erasures` (leaves in progress). Every write that
//! touches several trees runs in one sled transaction, so a crash never leaves a device
//! without its token or a log entry without its dedup record. sled's own flush is not a
//! durable sync on Linux; `durable()` goes through the group-commit thread in
//! `crate::durability`.
//!
//! Two locks, both held only by blocking threads: `open` guards which database is open (it is
//! swapped by `vacuum`) and is held just long enough to clone an `Arc`; `pause` is taken
//! shared by every write and exclusively by `export`, `leave_space`, `recover_member` and
//! `vacuum`, which is what makes a backup a consistent copy (and a recovery's scan of the
//! member's devices complete). Reads never take `pause`, so a backup does not stop
//! devices from pulling. This file opens the store and implements the four traits of
//! `crate::store`; `sled_pairing.rs`, `sled_log.rs`, `sled_snapshots.rs`, `sled_usage.rs`,
//! `sled_erase.rs` and `sled_vacuum.rs` do the work, each in an `Opened` method (for
//! `vacuum`, a function) named like the trait method it serves.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::records;
use super::{
    AdminStore, AppendEnvelopes, Appended, CandidateVerdict, Departure, DeviceInfo, DocMeta,
    DumpSummary, Durable, EnvelopePage, LogStore, MemberRecovery, NewInvite, NewSnapshot, NewSpace,
    PairingStore, Recovered, Recovery, RecoveryKey, RecoveryKeyChange, RedeemInvite, Redeemed,
    Revocation, SnapshotPut, SnapshotStore, StoreError, StoreStats, StoredSnapshot, VacuumReport,
};
use crate::clock::UnixSeconds;
use crate::durability::GroupCommit;
use crate::ids::{DeviceId, DocId, MemberId, SecretHash, ServerSeq, SpaceId};

/// The store in one sled folder. Opening takes sled's exclusive lock on the folder; dropping
/// the store waits for the sync thread and releases it.
#[derive(Debug)]
pub struct SledStore {
    pub(super) dir: PathBuf,
    pub(super) open: RwLock<Option<Arc<Opened>>>,
    pub(super) pause: RwLock<()>,
    /// An exclusive lock on `LOCK_FILE`, held as long as the store lives, also while `vacuum`
    /// closes and reopens sled (whose own lock lapses then).
    _lock: std::fs::File,
}

/// An open database: its trees and its sync thread.
#[derive(Debug)]
pub(super) struct Opened {
    pub(super) trees: Trees,
    pub(super) db: sled::Db,
    // Declared last so it is dropped last: its thread holds the final handle on the database.
    pub(super) commit: GroupCommit,
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
    pub(super) usage: sled::Tree,
    pub(super) erasures: sled::Tree,
    pub(super) candidates: sled::Tree,
}

/// The tree names, in backup order. `candidates` came last, so backups made before it
/// existed restore unchanged.
pub(super) const TREE_NAMES: [&str; 12] = [
    "spaces",
    "members",
    "devices",
    "tokens",
    "invites",
    "docs",
    "log",
    "dedup",
    "snapshots",
    "usage",
    "erasures",
    "candidates",
];

impl Trees {
    pub(super) fn open(db: &sled::Db) -> Result<Trees, StoreError> {
        Ok(Trees {
            spaces: db.open_tree("spaces")?,
            members: db.open_tree("members")?,
            devices: db.open_tree("devices")?,
            tokens: db.open_tree("tokens")?,
            invites: db.open_tree("invites")?,
            docs: db.open_tree("docs")?,
            log: db.open_tree("log")?,
            dedup: db.open_tree("dedup")?,
            snapshots: db.open_tree("snapshots")?,
            usage: db.open_tree("usage")?,
            erasures: db.open_tree("erasures")?,
            candidates: db.open_tree("candidates")?,
        })
    }

    /// The tree called `name`, as listed in `TREE_NAMES`.
    pub(super) fn by_name(&self, name: &str) -> Option<&sled::Tree> {
        Some(match name {
            "spaces" => &self.spaces,
            "members" => &self.members,
            "devices" => &self.devices,
            "tokens" => &self.tokens,
            "invites" => &self.invites,
            "docs" => &self.docs,
            "log" => &self.log,
            "dedup" => &self.dedup,
            "snapshots" => &self.snapshots,
            "usage" => &self.usage,
            "erasures" => &self.erasures,
            "candidates" => &self.candidates,
            _ => return None,
        })
    }
}

/// A tree inside a sled transaction.
pub(super) type Tx = sled::transaction::TransactionalTree;
/// What a step inside a sled transaction returns.
pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

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
    /// process, or another `SledStore` in this one, has it open. Finishes an erasure or a
    /// vacuum that a crash interrupted before it returns.
    pub fn open(dir: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let lock = lock_folder(&dir)?;
        let opened = super::sled_vacuum::open_recovering(&dir)?;
        let store = SledStore {
            dir,
            open: RwLock::new(Some(Arc::new(opened))),
            pause: RwLock::new(()),
            _lock: lock,
        };
        store.finish_erasures()?;
        Ok(store)
    }

    /// The open database, for a read.
    pub(super) fn reading(&self) -> Result<Arc<Opened>, StoreError> {
        let open = self.open.read().unwrap_or_else(|p| p.into_inner());
        open.clone().ok_or_else(|| {
            StoreError::Unavailable("the store is being rewritten; try again in a moment".into())
        })
    }

    /// Runs a write: shared with other writes, excluded while a backup or erasure runs.
    pub(super) fn writing<T>(
        &self,
        work: impl FnOnce(&Opened) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _pause = self.pause_shared();
        work(&*self.reading()?)
    }

    fn pause_shared(&self) -> RwLockReadGuard<'_, ()> {
        self.pause.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops every write until the guard is dropped.
    pub(super) fn pause_all(&self) -> RwLockWriteGuard<'_, ()> {
        self.pause.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The file whose lock says that a process has the store open.
pub(super) const LOCK_FILE: &str = "kintsugi-store.lock";

/// Creates `dir` if needed, makes it and what it holds owner-only (and what sled creates in it
/// later, through the umask), and takes the store's exclusive lock in it.
pub(super) fn lock_folder(dir: &Path) -> Result<std::fs::File, StoreError> {
    crate::owner_only::restrict_umask();
    crate::owner_only::private_dir(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(error)) => Err(error.into()),
    }
}

/// `open_db` for a store starting: its caller holds the store's own folder lock, so sled's
/// lock can only still be held by a handle this process just dropped (sled's I/O threads
/// finish after the drop), and a restart waits a moment for them rather than failing.
pub(super) fn open_db_at_start(dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match open_db(dir) {
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

/// Opens sled in `dir`, maps its folder lock to `Locked`.
pub(super) fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    sled::Config::new()
        .path(dir)
        .open()
        .map_err(|error| match error {
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
        })
}

/// The marker file a store leaves beside sled's files once it has written its format key.
pub(crate) const MARKER_FILE: &str = "kintsugi-store";

/// Checks the layout version. sled opens a `db` file whose contents were destroyed as an empty
/// database without complaint; the marker file beside it tells such a loss from a new folder.
pub(super) fn check_format(db: &sled::Db, dir: &Path) -> Result<(), StoreError> {
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

// Each method takes the lock its kind needs (`reading`, `writing`, `pause_all`) and hands the
// work to the `Opened` method of the same name, in the file of its concern.

impl PairingStore for SledStore {
    fn create_space(&self, space: NewSpace) -> Result<(), StoreError> {
        self.writing(|o| o.create_space(space))
    }

    fn device_by_token_hash(&self, hash: &SecretHash) -> Result<Option<DeviceInfo>, StoreError> {
        self.reading()?.device_by_token_hash(hash)
    }

    fn member_count(&self, space_id: SpaceId) -> Result<usize, StoreError> {
        self.reading()?.member_count(space_id)
    }

    fn create_invite(&self, invite: NewInvite) -> Result<(), StoreError> {
        self.writing(|o| o.create_invite(invite))
    }

    fn redeem_invite(&self, redeem: RedeemInvite) -> Result<Redeemed, StoreError> {
        self.writing(|o| o.redeem_invite(redeem))
    }

    fn device(&self, space: SpaceId, device: DeviceId) -> Result<Option<DeviceInfo>, StoreError> {
        self.reading()?.device(space, device)
    }

    fn list_devices(&self, space_id: SpaceId) -> Result<Vec<DeviceInfo>, StoreError> {
        self.reading()?.list_devices(space_id)
    }

    fn revoke_device(
        &self,
        space_id: SpaceId,
        member_id: MemberId,
        by: DeviceId,
        device_id: DeviceId,
    ) -> Result<Revocation, StoreError> {
        self.writing(|o| o.revoke_device(space_id, member_id, by, device_id))
    }

    fn leave_space(&self, space: SpaceId, member: MemberId) -> Result<Departure, StoreError> {
        let _pause = self.pause_all();
        self.reading()?.leave_space(space, member)
    }

    fn recovery_key(
        &self,
        space: SpaceId,
        member: MemberId,
    ) -> Result<Option<MemberRecovery>, StoreError> {
        self.reading()?.recovery_key(space, member)
    }

    fn set_recovery_key(
        &self,
        space: SpaceId,
        member: MemberId,
        by: DeviceId,
        key: RecoveryKey,
    ) -> Result<RecoveryKeyChange, StoreError> {
        self.writing(|o| o.set_recovery_key(space, member, by, key))
    }

    fn recover_member(&self, recovery: Recovery) -> Result<Recovered, StoreError> {
        // No device may be linked between the scan of the member's devices and the transaction.
        let _pause = self.pause_all();
        self.reading()?.recover_member(recovery)
    }
}

impl LogStore for SledStore {
    fn doc_meta(&self, space_id: SpaceId, doc_id: DocId) -> Result<Option<DocMeta>, StoreError> {
        self.reading()?.doc_meta(space_id, doc_id)
    }

    fn list_docs(&self, space_id: SpaceId) -> Result<Vec<(DocId, DocMeta)>, StoreError> {
        self.reading()?.list_docs(space_id)
    }

    fn append_envelopes(&self, append: AppendEnvelopes) -> Result<Appended, StoreError> {
        self.writing(|o| o.append_envelopes(append))
    }

    fn read_envelopes(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
        after: ServerSeq,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<EnvelopePage, StoreError> {
        self.reading()?
            .read_envelopes(space_id, doc_id, after, max_count, max_bytes)
    }
}

impl SnapshotStore for SledStore {
    fn snapshot(&self, space: SpaceId, doc: DocId) -> Result<Option<StoredSnapshot>, StoreError> {
        self.reading()?.snapshot(space, doc)
    }

    fn candidate_snapshot(
        &self,
        space: SpaceId,
        doc: DocId,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        self.reading()?.candidate_snapshot(space, doc)
    }

    fn put_snapshot(&self, snapshot: NewSnapshot) -> Result<SnapshotPut, StoreError> {
        self.writing(|o| o.put_snapshot(snapshot))
    }

    fn reject_candidate(&self, verdict: CandidateVerdict) -> Result<bool, StoreError> {
        self.writing(|o| o.reject_candidate(verdict))
    }

    fn endorse_candidate(&self, verdict: CandidateVerdict) -> Result<bool, StoreError> {
        self.writing(|o| o.endorse_candidate(verdict))
    }

    fn compact(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
        now: UnixSeconds,
        retention: Duration,
    ) -> Result<ServerSeq, StoreError> {
        self.writing(|o| o.compact(space_id, doc_id, now, retention))
            .map(|(through, _)| through)
    }

    fn compact_all(&self, now: UnixSeconds, retention: Duration) -> Result<u64, StoreError> {
        self.writing(|o| o.compact_all(now, retention))
    }
}

impl AdminStore for SledStore {
    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.reading()?.stats()
    }

    fn space_usage(&self, space_id: SpaceId) -> Result<u64, StoreError> {
        self.reading()?.space_usage(space_id)
    }

    fn total_usage(&self) -> Result<u64, StoreError> {
        self.reading()?.total_usage()
    }

    fn export(&self, out: &mut dyn Write) -> Result<DumpSummary, StoreError> {
        let _pause = self.pause_all();
        self.reading()?.export(out)
    }

    fn vacuum(&self) -> Result<VacuumReport, StoreError> {
        let _pause = self.pause_all();
        super::sled_vacuum::vacuum(self)
    }

    fn durable(&self) -> Durable {
        let open = self.open.read().unwrap_or_else(|p| p.into_inner()).clone();
        match open {
            Some(opened) => opened.commit.request(),
            // Only `vacuum` closes the database, and only after it has synced a complete copy
            // of every write that finished before it began: those writes are on disk already.
            None => Durable::ready(Ok(())),
        }
    }
}

#[cfg(test)]
#[path = "sled_store_tests.rs"]
mod tests;
