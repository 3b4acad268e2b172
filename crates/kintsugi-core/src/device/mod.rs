//! `Device`: one install of the core, the API the apps and the CLI use.
//!
//! A device owns its local store and its identity. Every edit is one Automerge transaction whose
//! change, sealed envelope and outbox entry are written in one sled transaction; nothing here
//! needs the network, so every edit works offline and syncs later.

mod domain;
mod identity;
mod ops;
pub mod pairing;

use std::path::Path;
use std::sync::Arc;

use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge, Change, ReadDoc};
use kintsugi_proto::v1::EnvelopeKind;

use crate::docs::{DocKind, genesis};
use crate::envelope::{EnvelopeContext, seal};
use crate::error::{CoreError, Result};
use crate::store::LocalStore;
pub use domain::HistoryEntry;
pub use identity::Identity;
pub use ops::DeviceView;

/// Milliseconds since the Unix epoch; injected so tests can drive time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

/// After this many stored changes, a document is saved whole and its changes dropped.
const LOCAL_COMPACTION_AFTER: usize = 500;

/// One device: its store, identity and clock.
pub struct Device {
    pub(crate) store: LocalStore,
    pub(crate) identity: Identity,
    pub(crate) clock: Clock,
    /// Woken on every local edit, so a live sync pushes at once.
    pub(crate) changed: Arc<tokio::sync::Notify>,
    /// Offer the server a snapshot once a document's log grew this much past the last one.
    pub(crate) snapshot_every: u64,
    /// Held from loading a document to storing what changed, so two edits (or an edit and a
    /// pulled page) never start from the same heads: both would write change `n + 1` of this
    /// device's actor, and compaction could save over a change it did not include.
    pub(crate) documents: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("dir", &self.store.dir())
            .field("identity", &self.identity)
            .finish()
    }
}

/// A document as loaded, with the keys of the stored changes it includes.
pub(crate) struct LoadedDoc {
    pub doc: Automerge,
    pub change_keys: Vec<Vec<u8>>,
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
        let identity =
            Identity::from_record(&record).map_err(|reason| CoreError::damaged(dir, reason))?;
        Ok(Self::assemble(store, identity, clock))
    }

    pub(crate) fn assemble(store: LocalStore, identity: Identity, clock: Clock) -> Self {
        Self {
            store,
            identity,
            clock,
            changed: Arc::default(),
            snapshot_every: crate::sync::SNAPSHOT_EVERY,
            documents: std::sync::Mutex::new(()),
        }
    }

    /// Changes how many log entries pass between the snapshots this device offers the server.
    pub fn with_snapshot_every(mut self, entries: u64) -> Self {
        self.snapshot_every = entries.max(1);
        self
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// The id of one of this device's documents.
    pub fn doc_id(&self, kind: DocKind) -> crate::ids::DocId {
        kind.id(&self.identity.keys)
    }

    /// Local changes not yet acknowledged by the server.
    pub fn pending_changes(&self) -> usize {
        self.store.outbox_len()
    }

    pub(crate) fn now(&self) -> i64 {
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
        // Fails with Busy while another process holds sled's lock on the folder.
        Self::unsynced_changes(dir)?;
        std::fs::remove_dir_all(dir.join("store")).map_err(|e| CoreError::LocalIo {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Loads a document: its saved bytes (or genesis) plus the changes stored since.
    pub(crate) fn load(&self, kind: DocKind) -> Result<LoadedDoc> {
        let id = kind.id(&self.identity.keys);
        let dir = self.store.dir();
        let stored = self.store.load_doc(id)?;
        let mut doc = match &stored.saved {
            Some(bytes) => Automerge::load(bytes)
                .map_err(|e| CoreError::damaged(dir, format!("{} document: {e}", kind.name())))?,
            None => genesis(kind),
        };
        let changes = stored
            .changes
            .iter()
            .map(|(_, bytes)| Change::try_from(bytes.as_slice()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| CoreError::damaged(dir, format!("{} change: {e}", kind.name())))?;
        doc.apply_changes(changes)
            .map_err(|e| CoreError::damaged(dir, format!("{} changes: {e}", kind.name())))?;
        let change_keys: Vec<Vec<u8>> = stored.changes.into_iter().map(|(k, _)| k).collect();
        let loaded = if change_keys.len() > LOCAL_COMPACTION_AFTER {
            self.store
                .replace_doc(id, &doc.save(), &change_keys, None)?;
            LoadedDoc {
                doc,
                change_keys: Vec::new(),
            }
        } else {
            LoadedDoc { doc, change_keys }
        };
        let mut loaded = loaded;
        loaded
            .doc
            .set_actor(ActorId::from(*self.identity.device.as_bytes()));
        Ok(loaded)
    }

    /// Reads a document without changing it.
    pub(crate) fn read<T>(
        &self,
        kind: DocKind,
        f: impl FnOnce(&Automerge) -> Result<T>,
    ) -> Result<T> {
        let doc = {
            let _documents = self.lock_documents();
            self.load(kind)?.doc
        };
        f(&doc)
    }

    /// The documents lock; a panic elsewhere leaves the data consistent (sled transactions), so a
    /// poisoned lock is taken over rather than propagated.
    pub(crate) fn lock_documents(&self) -> std::sync::MutexGuard<'_, ()> {
        self.documents
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let _documents = self.lock_documents();
        let mut doc = self.load(kind)?.doc;
        let now = self.now();
        let options = |result: &T| {
            CommitOptions::default()
                .with_time(now)
                .with_message(describe(result))
        };
        let success = doc
            .transact_with(options, f)
            .map_err(|failure| failure.error)?;
        let Some(hash) = success.hash else {
            return Ok(success.result);
        };
        let change = doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| CoreError::Shape("the new change vanished".into()))?;
        let id = kind.id(&self.identity.keys);
        let key = kind.key(&self.identity.keys);
        let plaintext = change.raw_bytes();
        self.store
            .commit_local_change(id, plaintext, kind.audience() as i32, |client_seq| {
                let ctx = EnvelopeContext {
                    space: self.identity.space,
                    doc: id,
                    device: self.identity.device,
                    client_seq,
                    kind: EnvelopeKind::Change,
                };
                seal(&key, &ctx, plaintext)
            })?;
        self.changed.notify_one();
        Ok(success.result)
    }
}
