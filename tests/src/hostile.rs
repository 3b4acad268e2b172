//! A broken or hostile app on a partner's phone: it writes changes through the device's own
//! store and keys, as its own device, but skips every check the core makes, so tests can show
//! what the other phone does with values no honest device writes.

use std::path::Path;
use std::time::{Duration, Instant};

use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge, Change};
use kintsugi_core::docs::{DocKind, genesis};
use kintsugi_core::envelope::{EnvelopeContext, seal};
use kintsugi_core::epoch_keys::EpochKeys;
use kintsugi_core::ids::{DeviceId, DocId, MemberId, SpaceId};
use kintsugi_core::key_store::{DeviceSecrets, FileKeyStore, KeyStore};
use kintsugi_core::keys::{Keyring, SecretKey};
use kintsugi_core::roster::{EpochAudience, Recipient, Roster};
use kintsugi_core::store::LocalStore;
use kintsugi_core::{CoreError, Device};
use kintsugi_proto::v1::EnvelopeKind;

/// Who the unchecked writer is, as its documents name it.
#[derive(Clone, Debug)]
pub struct Writer {
    /// Member id, hex, as documents hold it.
    pub member: String,
    /// Device id, hex: the Automerge actor of its changes.
    pub device: String,
}

/// Writes one change made by `f` into the device folder `dir` (which no `Device` may hold
/// open), sealed and queued in the outbox like any local edit, so the next sync pushes it.
pub fn write_unchecked(
    dir: &Path,
    kind: DocKind,
    f: impl FnOnce(&mut Transaction<'_>, &Writer) -> kintsugi_core::Result<()>,
) {
    let store = when_free(dir, || LocalStore::open(dir));
    let record = store
        .identity()
        .expect("identity")
        .expect("an enrolled device");
    let key = |bytes: &[u8]| SecretKey::from_slice(bytes).expect("a stored key");
    let keys = Keyring {
        space: key(&record.space_key),
        member: key(&record.member_key),
    };
    let device = DeviceId::from_slice(&record.device_id).expect("device id");
    let writer = Writer {
        member: MemberId::from_slice(&record.member_id)
            .expect("member id")
            .to_string(),
        device: device.to_string(),
    };
    let doc_id = keys.doc_id(kind);
    let mut doc = stored_doc(&store, kind, doc_id);
    doc.set_actor(ActorId::from(*device.as_bytes()));
    doc.transact_with(
        |_| CommitOptions::default().with_message("unchecked change".to_string()),
        |tx| f(tx, &writer),
    )
    .map_err(|failure| failure.error)
    .expect("the unchecked change");
    let change = doc
        .get_last_local_change()
        .expect("a change")
        .raw_bytes()
        .to_vec();
    let context = |client_seq| EnvelopeContext {
        space: SpaceId::from_slice(&record.space_id).expect("space id"),
        doc: doc_id,
        device,
        client_seq,
        kind: EnvelopeKind::Change,
        epoch: 0,
    };
    let signer = FileKeyStore::in_dir(dir)
        .load()
        .expect("the key file reads")
        .expect("the device has keys");
    let epochs = epochs_of(&store, device, &signer);
    let (epoch, doc_key) = newest_doc_key(
        &epochs,
        &keys,
        kind,
        MemberId::from_slice(&record.member_id).expect("member id"),
    );
    store
        .commit_local_change(doc_id, &change, kind.audience(), |seq| {
            let context = EnvelopeContext {
                epoch,
                ..context(seq)
            };
            seal(&doc_key, &signer, &context, &change)
        })
        .expect("queue the change");
}

/// The epoch keys the device of `store` holds, as the core opens them.
fn epochs_of(store: &LocalStore, device: DeviceId, signer: &DeviceSecrets) -> EpochKeys {
    let record = store.identity().expect("identity").expect("enrolled");
    let space = SpaceId::from_slice(&record.space_id).expect("space id");
    let roster = Roster::replay(space, &store.roster_log().expect("the roster log"));
    let me = Recipient::Device(device);
    EpochKeys::unlock(
        &roster,
        me,
        signer.agreement_secret(),
        store.known_keys().expect("keys"),
    )
}

/// The newest epoch of `kind`'s documents and the document's key in it.
fn newest_doc_key(
    epochs: &EpochKeys,
    keys: &Keyring,
    kind: DocKind,
    member: MemberId,
) -> (u64, SecretKey) {
    let audience = match kind.audience() {
        kintsugi_proto::v1::Audience::Private => EpochAudience::Member(member),
        _ => EpochAudience::Space,
    };
    let (epoch, key) = epochs.latest(audience).expect("an epoch key");
    (epoch, key.doc_key(keys.doc_id(kind)))
}

/// The document as the store holds it: saved bytes (or genesis) and the changes since.
fn stored_doc(store: &LocalStore, kind: DocKind, id: DocId) -> Automerge {
    let stored = store.load_doc(id).expect("load");
    let mut doc = match stored.saved {
        Some(bytes) => Automerge::load(&bytes).expect("saved document"),
        None => genesis(kind),
    };
    let changes = stored
        .changes
        .iter()
        .map(|(_, bytes)| Change::try_from(bytes.as_slice()).expect("stored change"));
    doc.apply_changes(changes).expect("stored changes");
    doc
}

/// Opens the device in `dir` again after a test dropped it (or wrote to it unchecked).
pub fn reopen(dir: &Path) -> Device {
    when_free(dir, || Device::open(dir))
}

/// Runs `open` until the folder is free: a store just dropped can hold sled's lock for a moment
/// while sled's background writer lets go of its files. Fails on any other error, or when the
/// folder is still busy after ten seconds.
fn when_free<T>(dir: &Path, open: impl Fn() -> kintsugi_core::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match open() {
            Err(CoreError::Busy(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.unwrap_or_else(|e| panic!("open {}: {e}", dir.display())),
        }
    }
}

/// What a hostile partner reads out of his own phone's folder: his keys and ids.
#[derive(Clone)]
pub struct Secrets {
    pub keys: Keyring,
    pub space: SpaceId,
    pub member: MemberId,
    pub device: DeviceId,
    /// The device's own signing keys: what the attacker signs his forgeries with.
    pub signer: std::sync::Arc<DeviceSecrets>,
    /// The key epochs the device holds.
    pub epochs: EpochKeys,
}

impl Secrets {
    /// The newest epoch of `kind`'s documents this device holds, and the document's key in it.
    pub fn doc_key(&self, kind: DocKind) -> (u64, SecretKey) {
        newest_doc_key(&self.epochs, &self.keys, kind, self.member)
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The keys and ids of the device in `dir` (which no `Device` may hold open).
pub fn secrets_of(dir: &Path) -> Secrets {
    let store = when_free(dir, || LocalStore::open(dir));
    let record = store.identity().expect("identity").expect("enrolled");
    let key = |bytes: &[u8]| SecretKey::from_slice(bytes).expect("a stored key");
    let device = DeviceId::from_slice(&record.device_id).expect("device id");
    let signer = FileKeyStore::in_dir(dir)
        .load()
        .expect("the key file reads")
        .expect("the device has keys");
    Secrets {
        keys: Keyring {
            space: key(&record.space_key),
            member: key(&record.member_key),
        },
        space: SpaceId::from_slice(&record.space_id).expect("space id"),
        member: MemberId::from_slice(&record.member_id).expect("member id"),
        device,
        epochs: epochs_of(&store, device, &signer),
        signer: std::sync::Arc::new(signer),
    }
}

/// `document` sealed as a snapshot of `kind` covering the log to `covers_seq`, by the device
/// of `secrets`, as a hand-built PutSnapshot would carry it.
pub fn sealed_snapshot(
    secrets: &Secrets,
    kind: DocKind,
    document: &Automerge,
    covers_seq: u64,
    client_seq: u64,
) -> kintsugi_proto::v1::Envelope {
    use prost::Message;
    let payload = kintsugi_core::SnapshotPayload {
        heads: document.get_heads().iter().map(|h| h.0.to_vec()).collect(),
        document: document.save(),
        covers_seq,
    };
    let (epoch, key) = secrets.doc_key(kind);
    let ctx = EnvelopeContext {
        space: secrets.space,
        doc: secrets.keys.doc_id(kind),
        device: secrets.device,
        client_seq,
        kind: EnvelopeKind::Snapshot,
        epoch,
    };
    seal(&key, &secrets.signer, &ctx, &payload.encode_to_vec())
}
