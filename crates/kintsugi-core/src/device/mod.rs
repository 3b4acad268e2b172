//! `Device`: one install of the core, the API the apps and the CLI use.
//!
//! A device owns its local store and its identity. Every edit is one Automerge transaction whose
//! change, sealed envelope and outbox entry are written in one sled transaction; nothing here
//! needs the network, so every edit works offline and syncs later.

mod domain;
mod live;
mod ops;
pub mod pairing;
mod recovery;
mod verify;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use automerge::ReadDoc;
use automerge::transaction::{CommitOptions, Transaction};

use crate::clock::{Clock, UnixMillis, system_clock};
use crate::docs::DocKind;
use crate::error::{CoreError, Result};
pub use crate::identity::Identity;
use crate::key_store::{FileKeyStore, KeyStore};
use crate::replica::Replica;
use crate::store::LocalStore;
pub use crate::sync::DeviceView;
pub use domain::HistoryEntry;
pub use verify::Verification;

/// One device: its store, identity and clock.
pub struct Device {
    /// The local state the sync engine works on.
    pub(crate) replica: Arc<Replica>,
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("dir", &self.replica.store.dir())
            .field("identity", &self.replica.identity)
            .finish()
    }
}

impl Device {
    /// Opens the device whose state is in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_clock(dir, system_clock())
    }

    pub fn open_with_clock(dir: &Path, clock: Clock) -> Result<Self> {
        if !dir.join("store").exists() {
            return Err(CoreError::NotInitialised(dir.to_path_buf()));
        }
        let store = LocalStore::open(dir)?;
        let record = store
            .identity()?
            .ok_or_else(|| CoreError::NotInitialised(dir.to_path_buf()))?;
        let secrets = FileKeyStore::in_dir(dir)
            .load()?
            .ok_or_else(|| CoreError::damaged(dir, "the device's keys are missing"))?;
        let identity = Identity::from_record(&record, Arc::new(secrets))
            .map_err(|reason| CoreError::damaged(dir, reason))?;
        Ok(Self::assemble(store, identity, clock))
    }

    pub(crate) fn assemble(store: LocalStore, identity: Identity, clock: Clock) -> Self {
        Self {
            replica: Arc::new(Replica::new(store, identity)),
            clock,
        }
    }

    /// Changes how many log entries pass between the snapshots this device offers the server.
    pub fn with_snapshot_every(self, entries: u64) -> Self {
        let every = entries.max(1);
        self.replica.snapshot_every.store(every, Ordering::Relaxed);
        self
    }

    pub fn identity(&self) -> &Identity {
        &self.replica.identity
    }

    pub fn dir(&self) -> &Path {
        self.replica.store.dir()
    }

    /// The id of one of this device's documents.
    pub fn doc_id(&self, kind: DocKind) -> crate::ids::DocId {
        self.replica.identity.keys.doc_id(kind)
    }

    /// Local changes not yet acknowledged by the server.
    pub fn pending_changes(&self) -> usize {
        self.replica.store.outbox_len()
    }

    pub(crate) fn now(&self) -> UnixMillis {
        (self.clock)()
    }

    /// How many changes in `dir` were never synced: `None` when the store is too damaged to
    /// tell. Refuses a folder another process is using.
    pub fn unsynced_changes(dir: &Path) -> Result<Option<usize>> {
        if !dir.join("store").exists() {
            return Err(CoreError::NotInitialised(dir.to_path_buf()));
        }
        match LocalStore::open(dir) {
            Ok(store) => Ok(Some(store.outbox_len())),
            Err(busy @ CoreError::Busy(_)) => Err(busy),
            Err(_) => Ok(None),
        }
    }

    /// Erases the device state in `dir`: keys, token, documents, outbox and cursors, damaged or
    /// not (that is when it is needed most). Changes never synced are lost with it, so callers
    /// ask `unsynced_changes` first. The folder itself is kept (it may be a mount point).
    pub fn wipe(dir: &Path) -> Result<()> {
        if !dir.join("store").exists() {
            return Err(CoreError::NotInitialised(dir.to_path_buf()));
        }
        LocalStore::erase(dir)?;
        crate::recovery_kit::RecoveryKitFile::in_dir(dir).erase()?;
        FileKeyStore::in_dir(dir).erase()
    }

    /// Runs `f` as one Automerge transaction and stores its change with a sealed outbox entry.
    /// Validation errors from `f` roll the transaction back and write nothing.
    /// `describe` says what changed, from `f`'s result; the message travels encrypted inside the
    /// change and `history` shows it.
    pub(crate) fn edit<T>(
        &self,
        kind: DocKind,
        describe: impl FnOnce(&T) -> String,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut open = self.replica.lock_documents();
        let mut loaded = self.replica.take_doc(&mut open, kind)?;
        let now = self.now();
        let options = |result: &T| {
            CommitOptions::default()
                .with_time(now.as_millis())
                .with_message(describe(result))
        };
        let success = match loaded.doc.transact_with(options, f) {
            Ok(success) => success,
            Err(failure) => {
                // Rolled back: the document is as stored.
                self.replica.put_back(&mut open, kind, loaded)?;
                return Err(failure.error);
            }
        };
        if let Some(hash) = success.hash {
            let change = loaded
                .doc
                .get_change_by_hash(&hash)
                .ok_or_else(|| CoreError::Shape("the new change vanished".into()))?;
            let key = self.replica.commit_local_change(kind, change.raw_bytes())?;
            loaded.change_keys.push(key);
            open.record_edit(kind, hash);
        }
        self.replica.put_back(&mut open, kind, loaded)?;
        Ok(success.result)
    }
}
