//! The synced documents: their kinds, deterministic genesis, and safe application of changes.
//!
//! Every document starts from one deterministic genesis change (a fixed actor, time 0) that
//! creates its root maps. Two devices that create the same document offline therefore share the
//! same root objects, and keys either of them adds later survive the merge; with random actors
//! the two roots would conflict and one side's entries would be hidden.
//!
//! The genesis of each kind is part of the protocol: changing `roots()` would fork every
//! existing document (a test pins the heads). A new root map created later by a device's own
//! actor would bring back exactly the conflict genesis prevents, so new roots need a new
//! document kind, with a genesis of its own.

pub mod agreement;
pub mod checkins;
pub mod journal;
pub mod shared;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, Change, ObjType, ROOT, ReadDoc};
use kintsugi_proto::v1::Audience;

use crate::error::{CoreError, Result};
use crate::ids::DeviceId;

/// The well-known documents of a space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocKind {
    /// The boundaries and expectations both partners agree to (shared).
    Agreement,
    /// Weekly check-ins and therapy sessions (shared).
    Checkins,
    /// Journal entries a partner chose to share (shared).
    Shared,
    /// One partner's private journal (private to that partner's devices).
    Journal,
}

impl DocKind {
    pub const ALL: [DocKind; 4] = [
        DocKind::Agreement,
        DocKind::Checkins,
        DocKind::Shared,
        DocKind::Journal,
    ];

    /// The name the document id is derived from; also what the CLI accepts.
    pub fn name(self) -> &'static str {
        match self {
            DocKind::Agreement => "agreement",
            DocKind::Checkins => "checkins",
            DocKind::Shared => "shared",
            DocKind::Journal => "journal",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        DocKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                CoreError::InvalidInput(format!(
                    "unknown document {name:?}; use one of: agreement, journal, checkins, shared"
                ))
            })
    }

    pub fn audience(self) -> Audience {
        match self {
            DocKind::Journal => Audience::Private,
            _ => Audience::Shared,
        }
    }

    /// The root maps the genesis change creates. Fixed forever: see the module docs.
    fn roots(self) -> &'static [&'static str] {
        match self {
            DocKind::Agreement => &["boundaries", "members", "devices"],
            DocKind::Checkins => &["checkins", "therapy"],
            DocKind::Shared => &["entries"],
            DocKind::Journal => &["entries"],
        }
    }
}

/// The same first change on every device: actor of 16 zero bytes, time 0, the root maps.
pub fn genesis(kind: DocKind) -> Automerge {
    let mut doc = Automerge::new().with_actor(ActorId::from([0u8; 16]));
    let created: std::result::Result<
        _,
        automerge::transaction::Failure<automerge::AutomergeError>,
    > = doc.transact_with(
        |_| CommitOptions::default().with_time(0),
        |tx| {
            for root in kind.roots() {
                tx.put_object(ROOT, *root, ObjType::Map)?;
            }
            Ok(())
        },
    );
    // Creating maps in an empty document cannot fail; the tests below pin the resulting heads.
    #[allow(clippy::expect_used)]
    created
        .map_err(|f| f.error)
        .expect("genesis of an empty document");
    doc
}

/// The object id of a root map created by genesis.
pub fn root_map(doc: &impl autosurgeon::ReadDoc, key: &str) -> Result<automerge::ObjId> {
    match doc.get(&ROOT, key) {
        Ok(Some((automerge::Value::Object(ObjType::Map), id))) => Ok(id),
        _ => Err(CoreError::Shape(format!("the document has no {key} map"))),
    }
}

/// The entries of the root map `root` that have the shape `T`, by key. An entry of another shape
/// (which no honest device writes, but a partner's hand-made change can) is left out rather
/// than failing the whole list, so one bad entry cannot hide every other from a partner.
pub fn hydrate_entries<T: autosurgeon::Hydrate>(
    doc: &impl autosurgeon::ReadDoc,
    root: &str,
) -> Result<std::collections::HashMap<String, T>> {
    let map = root_map(doc, root)?;
    let mut entries = std::collections::HashMap::new();
    for item in doc.map_range(&map, ..) {
        let key = item.key.to_string();
        match autosurgeon::hydrate_prop::<_, T, _, _>(doc, &map, key.as_str()) {
            Ok(value) => {
                entries.insert(key, value);
            }
            Err(error) => tracing::debug!(root, %key, %error, "left out an entry of another shape"),
        }
    }
    Ok(entries)
}

/// Resolves a full key of the root map `root`, or a unique prefix of one, as people type ids.
/// `what` and `list` name the thing and the command that lists them, for the error.
pub fn resolve_key(
    doc: &impl autosurgeon::ReadDoc,
    root: &str,
    typed: &str,
    what: &'static str,
    list: &'static str,
) -> Result<String> {
    let map = root_map(doc, root)?;
    let typed = typed.trim();
    let unknown = || CoreError::UnknownId {
        what,
        id: typed.to_string(),
        list,
    };
    if typed.is_empty() {
        return Err(unknown());
    }
    let matches: Vec<String> = doc
        .map_range(&map, ..)
        .map(|item| item.key.to_string())
        .filter(|k| k.starts_with(typed))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(unknown()),
        _ if matches.iter().any(|m| m == typed) => Ok(typed.to_string()),
        _ => Err(CoreError::InvalidInput(format!(
            "{typed} matches several; type more of the id"
        ))),
    }
}

/// Parses decrypted bytes as exactly one Automerge change written by `device` (its actor).
///
/// `load_incremental` would silently accept garbage (it returns Ok(0)), so the bytes are parsed
/// as a change chunk, whose checksum must verify, with nothing after it.
pub fn parse_change(device: DeviceId, bytes: &[u8]) -> Result<Change> {
    let change = Change::try_from(bytes).map_err(|e| CoreError::InvalidChange(e.to_string()))?;
    if change.raw_bytes().len() != bytes.len() {
        return Err(CoreError::InvalidChange(
            "extra bytes after the change".into(),
        ));
    }
    // Every device writes as its own actor, so history can say who changed what; a change
    // under another actor would let one device speak for another.
    if change.actor_id().to_bytes() != device.as_bytes() {
        return Err(CoreError::InvalidChange(format!(
            "a change carried by device {device} was written by another device"
        )));
    }
    Ok(change)
}

/// A change that was not applied, and why.
pub type Refused = (automerge::ChangeHash, String);

/// Merges a snapshot into `doc`. When `doc` holds no change the snapshot lacks (a new device
/// catching up), the snapshot is taken as it is: the same document as the merge would make,
/// without replaying every one of its changes.
pub fn merge_snapshot(doc: &mut Automerge, mut snapshot: Automerge) -> Result<()> {
    if snapshot.get_missing_deps(&doc.get_heads()).is_empty() {
        snapshot.set_actor(doc.get_actor().clone());
        *doc = snapshot;
        return Ok(());
    }
    doc.merge(&mut snapshot)
        .map(drop)
        .map_err(|e| CoreError::InvalidChange(format!("snapshot: {e}")))
}

/// Applies parsed changes that `doc` lacks, in log order, by one rule every device follows
/// whatever the paging: a change is applied only if each of its dependencies is in `doc`
/// already or earlier in `changes`; one that is not is refused. Returns the bytes of the
/// changes applied, to be stored, and those refused. Fails only if Automerge refuses the batch
/// (two different changes with one actor and sequence number, say); `doc` must then be
/// discarded and `apply_one_by_one` used on a fresh copy.
pub fn apply_in_log_order(
    doc: &mut Automerge,
    changes: Vec<Change>,
) -> Result<(Vec<Vec<u8>>, Vec<Refused>)> {
    let (batch, refused) = in_log_order(doc, changes);
    let stored: Vec<Vec<u8>> = batch.iter().map(|c| c.raw_bytes().to_vec()).collect();
    doc.apply_changes(batch)
        .map_err(|e| CoreError::InvalidChange(e.to_string()))?;
    Ok((stored, refused))
}

/// `apply_in_log_order` one change at a time, each on a copy, keeping every change Automerge
/// accepts and refusing the others: slow, for a batch that failed as a whole.
pub fn apply_one_by_one(doc: &mut Automerge, changes: Vec<Change>) -> (Vec<Vec<u8>>, Vec<Refused>) {
    let (batch, mut refused) = in_log_order(doc, changes);
    let mut stored = Vec::new();
    for change in batch {
        let hash = change.hash();
        if change
            .deps()
            .iter()
            .any(|d| doc.get_change_by_hash(d).is_none())
        {
            refused.push((hash, "it depends on a change that was refused".into()));
            continue;
        }
        let mut trial = doc.clone();
        let bytes = change.raw_bytes().to_vec();
        match trial.apply_changes([change]) {
            Ok(()) => {
                *doc = trial;
                stored.push(bytes);
            }
            Err(e) => refused.push((hash, format!("Automerge refused it ({e})"))),
        }
    }
    (stored, refused)
}

/// Splits `changes` into those to apply (new to `doc`, each dependency in `doc` or earlier in
/// the batch) and those refused for a missing dependency.
fn in_log_order(doc: &Automerge, changes: Vec<Change>) -> (Vec<Change>, Vec<Refused>) {
    let mut batch: Vec<Change> = Vec::new();
    let mut taken = std::collections::HashSet::new();
    let mut refused = Vec::new();
    for change in changes {
        let hash = change.hash();
        if doc.get_change_by_hash(&hash).is_some() || taken.contains(&hash) {
            continue;
        }
        let known =
            |d: &automerge::ChangeHash| taken.contains(d) || doc.get_change_by_hash(d).is_some();
        if change.deps().iter().all(known) {
            taken.insert(hash);
            batch.push(change);
        } else {
            let reason = "it depends on a change this device did not accept before it".into();
            refused.push((hash, reason));
        }
    }
    (batch, refused)
}

/// Applies decrypted change bytes, each with the device whose envelope carried it, refusing
/// the whole set if any is not a valid change by that device or cannot be applied in full.
/// Returns the bytes of the changes that were new to `doc`. On error `doc` must be discarded.
pub fn apply_remote_changes(
    doc: &mut Automerge,
    plaintexts: &[(DeviceId, Vec<u8>)],
) -> Result<Vec<Vec<u8>>> {
    let changes = plaintexts
        .iter()
        .map(|(device, bytes)| parse_change(*device, bytes))
        .collect::<Result<Vec<_>>>()?;
    let (stored, refused) = apply_in_log_order(doc, changes)?;
    if let Some((hash, _)) = refused.first() {
        return Err(CoreError::InvalidChange(format!(
            "change {hash} depends on changes this device has not received"
        )));
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The genesis heads of agreement, checkins, shared and journal, as shipped.
    const PINNED_GENESIS_HEADS: [&str; 4] = [
        "8aa5755e5178d416f863311e176b4920f85e3abfc05aba2e7bb825b754f68951",
        "23b17d09e7ac63a6cef2b2c71b94f0d6c1ab7d046c4dae7db165d0d6cb48012b",
        "deebea1dff6e54b784a969c23a5def8df3b8baf9bbac7d1657caeb705b7e0739",
        "deebea1dff6e54b784a969c23a5def8df3b8baf9bbac7d1657caeb705b7e0739",
    ];

    /// A document of `kind` with one key written by `actor`.
    fn edited(kind: DocKind, actor: u8, key: &str) -> Automerge {
        let mut doc = genesis(kind);
        doc.set_actor(ActorId::from([actor; 16]));
        let mut tx = doc.transaction();
        tx.put(ROOT, key, "value").expect("put");
        tx.commit();
        doc
    }

    #[test]
    fn a_snapshot_is_taken_as_it_is_only_when_it_holds_everything_the_device_has() {
        let snapshot = edited(DocKind::Journal, 1, "from the snapshot");
        let mut fresh = genesis(DocKind::Journal);
        fresh.set_actor(ActorId::from([9; 16]));
        merge_snapshot(&mut fresh, snapshot.clone()).expect("merge");
        assert_eq!(fresh.get_heads(), snapshot.get_heads());
        assert_eq!(
            fresh.get_actor(),
            &ActorId::from([9; 16]),
            "the device keeps its actor"
        );

        let mut ahead = edited(DocKind::Journal, 2, "only on this device");
        merge_snapshot(&mut ahead, snapshot.clone()).expect("merge");
        assert_eq!(ahead.get_heads().len(), 2, "both sides' changes are kept");
        assert!(
            ahead
                .get(ROOT, "only on this device")
                .expect("get")
                .is_some()
        );
        assert!(ahead.get(ROOT, "from the snapshot").expect("get").is_some());
    }

    #[test]
    fn genesis_is_identical_on_every_device() {
        for kind in DocKind::ALL {
            let a = genesis(kind);
            let b = genesis(kind);
            assert_eq!(a.get_heads(), b.get_heads());
            assert_eq!(a.save(), b.save());
        }
    }

    #[test]
    fn genesis_heads_never_change() {
        let heads: Vec<String> = DocKind::ALL
            .into_iter()
            .map(|k| genesis(k).get_heads()[0].to_string())
            .collect();
        assert_eq!(
            heads, PINNED_GENESIS_HEADS,
            "changing a genesis forks every existing document"
        );
    }

    #[test]
    fn garbage_is_refused_and_valid_changes_apply() {
        let mut source = genesis(DocKind::Journal);
        source.set_actor(ActorId::from([7u8; 16]));
        let entries = root_map(&source, "entries").expect("root");
        source
            .transact(|tx| tx.put(&entries, "k", "v"))
            .map_err(|f| f.error)
            .expect("edit");
        let change = source
            .get_last_local_change()
            .expect("change")
            .raw_bytes()
            .to_vec();

        let author = DeviceId([7; 16]);
        let mut target = genesis(DocKind::Journal);
        for garbage in [
            b"not automerge".to_vec(),
            vec![],
            [change.clone(), b"x".to_vec()].concat(),
        ] {
            let mut copy = target.clone();
            assert!(apply_remote_changes(&mut copy, &[(author, garbage)]).is_err());
        }
        let mut copy = target.clone();
        let impostor = (DeviceId([8; 16]), change.clone());
        assert!(
            apply_remote_changes(&mut copy, &[impostor]).is_err(),
            "another device's actor"
        );
        let stored = apply_remote_changes(&mut target, &[(author, change.clone())]).expect("apply");
        assert_eq!(stored.len(), 1);
        assert_eq!(target.get_heads(), source.get_heads());
        let again = apply_remote_changes(&mut target, &[(author, change)]).expect("again");
        assert!(again.is_empty());
    }

    #[test]
    fn a_change_with_missing_dependencies_is_refused() {
        let mut source = genesis(DocKind::Journal);
        source.set_actor(ActorId::from([7u8; 16]));
        let entries = root_map(&source, "entries").expect("root");
        let mut changes = Vec::new();
        for i in 0..2 {
            source
                .transact(|tx| tx.put(&entries, "k", i))
                .map_err(|f| f.error)
                .expect("edit");
            changes.push(
                source
                    .get_last_local_change()
                    .expect("change")
                    .raw_bytes()
                    .to_vec(),
            );
        }
        let mut target = genesis(DocKind::Journal);
        assert!(
            apply_remote_changes(&mut target, &[(DeviceId([7; 16]), changes[1].clone())]).is_err()
        );
    }
}
