//! One device's replica of its documents: the local store, who the device is, and the open
//! documents, kept in memory under the lock that keeps two writers from starting at the same
//! heads. The sync engine works on a replica; the `Device` facade owns one and adds the clock
//! and the edits apps make.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::{ActorId, Automerge, Change, ChangeHash};

use kintsugi_proto::v1::EnvelopeKind;

use crate::docs::{DocKind, genesis};
use crate::envelope::{EnvelopeContext, seal};
use crate::epoch_keys::EpochKeys;
use crate::error::{CoreError, Result};
use crate::identity::Identity;
use crate::ids::DocId;
use crate::keys::SecretKey;
use crate::roster::{EpochAudience, Recipient, Roster};
use crate::store::LocalStore;
use kintsugi_proto::v1::SignedRosterEntry;

/// After this many stored changes, a document is saved whole and its changes dropped.
const LOCAL_COMPACTION_AFTER: usize = 500;

/// A document as loaded, with the keys of the stored changes it includes.
pub(crate) struct LoadedDoc {
    pub doc: Automerge,
    pub change_keys: Vec<Vec<u8>>,
}

/// The documents held open in memory, each exactly as the store holds it: one is put back only
/// after what changed in it was stored, so one that failed half-way is loaded again next time.
#[derive(Default)]
pub(crate) struct OpenDocs {
    docs: HashMap<DocKind, LoadedDoc>,
    /// The newest change this device made to each document since it was opened.
    last_edits: HashMap<DocKind, ChangeHash>,
}

impl OpenDocs {
    pub(crate) fn record_edit(&mut self, kind: DocKind, hash: ChangeHash) {
        self.last_edits.insert(kind, hash);
    }

    pub(crate) fn last_edit(&self, kind: DocKind) -> Option<ChangeHash> {
        self.last_edits.get(&kind).copied()
    }
}

/// The local state one device syncs.
pub(crate) struct Replica {
    pub(crate) store: LocalStore,
    pub(crate) identity: Identity,
    /// Woken on every local edit, so a live sync pushes at once.
    pub(crate) changed: Arc<tokio::sync::Notify>,
    /// Offer the server a snapshot once a document's log grew this much past the last one.
    pub(crate) snapshot_every: AtomicU64,
    /// Held from loading a document to storing what changed, so two edits (or an edit and a
    /// pulled page) never start from the same heads: both would write change `n + 1` of this
    /// device's actor, and compaction could save over a change it did not include.
    documents: Mutex<OpenDocs>,
    /// The roster as the verified log in the store makes it, replayed on first use.
    roster: Mutex<Option<Roster>>,
    /// The epoch keys the roster of that length (and the keys learned outside it) give.
    keys: Mutex<Option<(u64, Arc<EpochKeys>)>>,
}

impl Replica {
    pub(crate) fn new(store: LocalStore, identity: Identity) -> Self {
        Self {
            store,
            identity,
            changed: Arc::default(),
            snapshot_every: AtomicU64::new(crate::sync::SNAPSHOT_EVERY),
            documents: Mutex::default(),
            roster: Mutex::new(None),
            keys: Mutex::new(None),
        }
    }

    /// Runs blocking work (sled, a flush, Automerge) on tokio's blocking pool, so a live sync
    /// never stalls the runtime's threads that the app's other tasks share.
    pub(crate) async fn off_runtime<T, F>(self: &Arc<Self>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Replica) -> Result<T> + Send + 'static,
    {
        let replica = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&replica))
            .await
            .map_err(|error| {
                let stopped = std::io::Error::other(format!("a sync step stopped early: {error}"));
                CoreError::io(self.store.dir(), stopped)
            })?
    }

    /// The epoch keys this device holds: opened from its verified roster with its own X25519
    /// key, plus those it learned outside the roster.
    pub(crate) fn epoch_keys(&self) -> Result<Arc<EpochKeys>> {
        let roster = self.roster()?;
        let mut cached = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((len, keys)) = cached.as_ref()
            && *len == roster.len()
        {
            return Ok(keys.clone());
        }
        let me = Recipient::Device(self.identity.device);
        let secret = self.identity.secrets.agreement_secret();
        let keys = EpochKeys::unlock(&roster, me, secret, self.store.known_keys()?);
        let keys = Arc::new(keys);
        *cached = Some((roster.len(), keys.clone()));
        Ok(keys)
    }

    /// Whose epoch keys seal a document of `kind`.
    pub(crate) fn audience_of(&self, kind: DocKind) -> EpochAudience {
        match kind.audience() {
            kintsugi_proto::v1::Audience::Private => EpochAudience::Member(self.identity.member),
            _ => EpochAudience::Space,
        }
    }

    /// The newest epoch this device holds and may write under for documents of `kind`, and
    /// that document's key in it. A device the roster does not admit yet (its joining entry
    /// was not written) has none: what it sealed would be refused by every other device.
    pub(crate) fn sealing_key(&self, kind: DocKind, doc: DocId) -> Result<(u64, SecretKey)> {
        let (keys, roster) = (self.epoch_keys()?, self.roster()?);
        let audience = self.audience_of(kind);
        let me = self.identity.device;
        let (epoch, key) = keys
            .newest_first(audience)
            .find(|(epoch, _)| roster.may_author(me, audience, *epoch))
            .ok_or_else(|| {
                CoreError::InvalidInput(
                    "this device has not finished joining the space: run `kintsugi sync` (online), \
                     then try again"
                        .into(),
                )
            })?;
        Ok((epoch, key.doc_key(doc)))
    }

    /// The key of document `doc` (of `kind`) under each epoch this device holds.
    pub(crate) fn opening_keys(
        &self,
        kind: DocKind,
        doc: DocId,
    ) -> Result<impl Fn(u64) -> Option<SecretKey>> {
        let (keys, audience) = (self.epoch_keys()?, self.audience_of(kind));
        Ok(move |epoch| keys.doc_key(audience, epoch, doc))
    }

    /// The roster this device verified, from its stored log.
    pub(crate) fn roster(&self) -> Result<Roster> {
        let mut cached = self.roster.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(roster) = cached.as_ref() {
            return Ok(roster.clone());
        }
        let log = self.store.roster_log()?;
        let roster = Roster::replay(self.identity.space, &log);
        *cached = Some(roster.clone());
        Ok(roster)
    }

    /// Takes the server's roster entries from position `first` on, stores them and returns the
    /// roster they make, all under the roster lock: a sync and a live stream that bring the
    /// same entries store them once. An entry already stored at a position must be the same.
    pub(crate) fn extend_roster(
        &self,
        first: u64,
        entries: &[SignedRosterEntry],
    ) -> Result<Roster> {
        let mut cached = self.roster.lock().unwrap_or_else(|p| p.into_inner());
        let mut roster = match cached.take() {
            Some(roster) => roster,
            None => Roster::replay(self.identity.space, &self.store.roster_log()?),
        };
        let known = roster.len();
        let stored = if first < known {
            self.store.roster_log()?
        } else {
            Vec::new()
        };
        for (position, entry) in (first..).zip(entries) {
            if position < known {
                if stored.get(position as usize) != Some(entry) {
                    *cached = Some(roster);
                    return Err(CoreError::RosterRefused(format!(
                        "the server shows entry {position} otherwise than it did before"
                    )));
                }
                continue;
            }
            if position > roster.len() {
                *cached = Some(roster);
                return Err(CoreError::RosterRefused(format!(
                    "the log skips to position {position}"
                )));
            }
            if let Some(why) = roster.follow(entry) {
                tracing::warn!(position, %why, "a roster entry was refused and passed over");
            }
            self.store
                .append_roster_log(position, std::slice::from_ref(entry))?;
        }
        *cached = Some(roster.clone());
        Ok(roster)
    }

    /// Stores one local change with its sealed envelope and outbox entry, and wakes a live
    /// sync. The envelope is sealed inside the store's transaction, with the client sequence
    /// number that transaction takes, so a retry after a crash sends the very same bytes.
    /// Returns the key the change is stored under.
    pub(crate) fn commit_local_change(&self, kind: DocKind, change: &[u8]) -> Result<Vec<u8>> {
        let doc = self.identity.keys.doc_id(kind);
        let (epoch, key) = self.sealing_key(kind, doc)?;
        let seal_with = |client_seq| {
            let context = EnvelopeContext {
                space: self.identity.space,
                doc,
                device: self.identity.device,
                client_seq,
                kind: EnvelopeKind::Change,
                epoch,
            };
            seal(&key, &self.identity.secrets, &context, change)
        };
        let key = self
            .store
            .commit_local_change(doc, change, kind.audience(), seal_with)?;
        self.changed.notify_one();
        Ok(key)
    }

    /// The documents lock; a panic elsewhere leaves the stored data consistent (sled
    /// transactions), so a poisoned lock is taken over, dropping the open documents: one may
    /// hold a change that was never stored.
    pub(crate) fn lock_documents(&self) -> MutexGuard<'_, OpenDocs> {
        self.documents.lock().unwrap_or_else(|poisoned| {
            let mut docs = poisoned.into_inner();
            docs.docs.clear();
            docs
        })
    }

    /// Takes a document out of `open` (loading it when it is not open) to change it; the caller
    /// puts it back with [`Replica::put_back`] once the change is stored.
    pub(crate) fn take_doc(&self, open: &mut OpenDocs, kind: DocKind) -> Result<LoadedDoc> {
        match open.docs.remove(&kind) {
            Some(loaded) => Ok(loaded),
            None => self.load(kind),
        }
    }

    /// Keeps a document open after its changes were stored, saving it whole first once enough
    /// stored changes piled up behind its saved bytes.
    pub(crate) fn put_back(
        &self,
        open: &mut OpenDocs,
        kind: DocKind,
        mut loaded: LoadedDoc,
    ) -> Result<()> {
        if loaded.change_keys.len() > LOCAL_COMPACTION_AFTER {
            let id = self.identity.keys.doc_id(kind);
            self.store
                .replace_doc(id, &loaded.doc.save(), &loaded.change_keys, None)?;
            loaded.change_keys.clear();
        }
        open.docs.insert(kind, loaded);
        Ok(())
    }

    /// Loads a document from the store: its saved bytes (or genesis) plus the changes stored
    /// since.
    fn load(&self, kind: DocKind) -> Result<LoadedDoc> {
        let id = self.identity.keys.doc_id(kind);
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
        doc.set_actor(ActorId::from(*self.identity.device.as_bytes()));
        Ok(LoadedDoc { doc, change_keys })
    }

    /// Reads a document without changing it, from memory once it is open.
    pub(crate) fn read<T>(
        &self,
        kind: DocKind,
        f: impl FnOnce(&Automerge) -> Result<T>,
    ) -> Result<T> {
        self.read_open(&mut self.lock_documents(), kind, f)
    }

    /// `read`, for a caller that holds the documents lock.
    pub(crate) fn read_open<T>(
        &self,
        open: &mut OpenDocs,
        kind: DocKind,
        f: impl FnOnce(&Automerge) -> Result<T>,
    ) -> Result<T> {
        let loaded = self.take_doc(open, kind)?;
        let result = f(&loaded.doc);
        self.put_back(open, kind, loaded)?;
        result
    }
}
