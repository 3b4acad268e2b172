//! Tests of the sled backend: the conformance suite, plus what only sled can get wrong.

use std::path::PathBuf;

use super::*;
use crate::testing::files_containing;

// By its plain name: within this crate the macro (written by `build.rs`) is in scope through
// `#[macro_use]` on `store::conformance`; other crates call `kintsugi_server::store_conformance_tests!`.
store_conformance_tests!(|dir: &Path| SledStore::open(dir).expect("the store opens"));

#[test]
fn a_second_open_of_the_same_folder_is_refused_as_locked() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let _first = SledStore::open(dir.path()).expect("the first open works");
    let second = SledStore::open(dir.path());
    assert!(matches!(second, Err(StoreError::Locked(_))), "{second:?}");
}

/// What a kill while sled writes its snapshot leaves: a `.generating` file newer than the
/// finished one, cut short (here: junk without a valid checksum).
#[test]
fn an_unfinished_snapshot_from_a_killed_server_does_not_stop_the_store_opening() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let stats = {
        let store = SledStore::open(dir.path()).expect("opens");
        let space = NewSpace {
            space_id: SpaceId::random(),
            member_id: MemberId::random(),
            device_id: DeviceId::random(),
            token_hash: crate::ids::DeviceToken::generate().hash(),
            sealed_member_name: vec![1],
            sealed_device_name: vec![2],
            recovery_key: crate::store::RecoveryKey([7; 32]),
            now: UnixSeconds::from_secs(1),
        };
        store.create_space(space).expect("a space");
        store.flush().expect("flush");
        store.stats().expect("stats")
    };
    let junk = dir.path().join("snap.7FFFFFFFFFFFFFFF.generating");
    std::fs::write(&junk, [1u8; 40]).expect("write the cut-short snapshot");
    let reopened = SledStore::open(dir.path()).expect("opens after the crash");
    assert_eq!(reopened.stats().expect("stats"), stats);
    assert!(!junk.exists());
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

fn distinctive_bytes() -> Vec<u8> {
    (0..4).flat_map(|_| DocId::random().0).collect()
}

#[test]
fn erased_ciphertext_is_gone_from_the_files() {
    use crate::ids::DeviceToken;
    use crate::store::{AppendEnvelopes, Audience, Envelope, NewSpace};
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = SledStore::open(dir.path()).expect("the store opens");
    let (space, member, device) = (SpaceId::random(), MemberId::random(), DeviceId::random());
    store
        .create_space(NewSpace {
            space_id: space,
            member_id: member,
            device_id: device,
            token_hash: DeviceToken::generate().hash(),
            sealed_member_name: vec![],
            sealed_device_name: vec![],
            recovery_key: crate::store::RecoveryKey([7; 32]),
            now: UnixSeconds::from_secs(1),
        })
        .expect("created");
    let secret = distinctive_bytes();
    // A small one stays in sled's log; a big one becomes a blob file.
    let big: Vec<u8> = secret.iter().cycle().take(200_000).copied().collect();
    for (seq, ciphertext) in [(1, secret.clone()), (2, big)] {
        store
            .append_envelopes(AppendEnvelopes {
                space_id: space,
                doc_id: DocId([7; 16]),
                audience: Audience::Private,
                member_id: member,
                envelopes: vec![Envelope {
                    device_id: device,
                    client_seq: seq,
                    nonce: vec![0; 24],
                    ciphertext,
                    signature: Vec::new(),
                    key_epoch: 0,
                }],
                now: UnixSeconds::from_secs(1),
                quota_bytes: u64::MAX,
                expect_head: None,
            })
            .expect("appended");
    }
    store.flush().expect("flushed");
    assert!(
        !files_containing(dir.path(), &secret).is_empty(),
        "the scan finds stored ciphertext"
    );
    let departure = store.leave_space(space, member).expect("left");
    assert!(departure.space_erased);
    store.flush().expect("flushed");
    assert_eq!(store.stats().expect("stats"), StoreStats::default());
    // This is why `vacuum` exists: sled 0.34 keeps deleted values in its files.
    let lingering = files_containing(dir.path(), &secret);
    assert!(
        !lingering.is_empty(),
        "sled erased the values by itself: {lingering:?}"
    );
    let report = store.vacuum().expect("vacuumed");
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
    assert_eq!(files_containing(dir.path(), &secret), Vec::<PathBuf>::new());
    drop(store);
    let reopened = SledStore::open(dir.path()).expect("reopens after a vacuum");
    assert_eq!(reopened.stats().expect("stats"), StoreStats::default());
    assert_eq!(files_containing(dir.path(), &secret), Vec::<PathBuf>::new());
}

#[test]
fn a_backup_restores_into_an_empty_folder_and_an_interrupted_vacuum_finishes() {
    use crate::store::conformance::ScratchDir;
    let source = tempfile::tempdir().expect("a temporary folder");
    let store = SledStore::open(source.path()).expect("the store opens");
    let token = crate::ids::DeviceToken::generate();
    store
        .create_space(crate::store::NewSpace {
            space_id: SpaceId::random(),
            member_id: MemberId::random(),
            device_id: DeviceId::random(),
            token_hash: token.hash(),
            sealed_member_name: b"sealed".to_vec(),
            sealed_device_name: vec![],
            recovery_key: crate::store::RecoveryKey([7; 32]),
            now: UnixSeconds::from_secs(5),
        })
        .expect("created");
    let target = ScratchDir::new();
    let backup = target.path().join("backup.kbk");
    super::super::dump::write_file(&backup, |out| store.export(out)).expect("exported");
    let restored_into = target.path().join("restored");
    SledStore::restore(&backup, &restored_into).expect("restored");
    let restored = SledStore::open(&restored_into).expect("opens");
    assert_eq!(
        restored.stats().expect("stats"),
        store.stats().expect("stats")
    );
    assert!(
        restored
            .device_by_token_hash(&token.hash())
            .expect("read")
            .is_some()
    );
    drop(restored);
    // A crash after the vacuum copy was committed: the next open rebuilds from it.
    std::fs::copy(&backup, restored_into.join("vacuum.kbk")).expect("copied");
    std::fs::write(restored_into.join("db"), b"half rewritten").expect("clobbered");
    let recovered = SledStore::open(&restored_into).expect("recovers");
    assert!(
        recovered
            .device_by_token_hash(&token.hash())
            .expect("read")
            .is_some()
    );
    assert!(!restored_into.join("vacuum.kbk").exists());
}

#[test]
fn vacuum_while_a_device_writes_and_reads_loses_nothing() {
    use crate::ids::DeviceToken;
    use crate::store::{AppendEnvelopes, Audience, Envelope, NewSpace, ServerSeq};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Arc::new(SledStore::open(dir.path()).expect("the store opens"));
    let (space, member, device) = (SpaceId::random(), MemberId::random(), DeviceId::random());
    let doc = DocId::random();
    store
        .create_space(NewSpace {
            space_id: space,
            member_id: member,
            device_id: device,
            token_hash: DeviceToken::generate().hash(),
            sealed_member_name: vec![],
            sealed_device_name: vec![],
            recovery_key: crate::store::RecoveryKey([7; 32]),
            now: UnixSeconds::from_secs(1),
        })
        .expect("created");
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for client_seq in 1..=150 {
                let append = AppendEnvelopes {
                    space_id: space,
                    doc_id: doc,
                    audience: Audience::Shared,
                    member_id: member,
                    envelopes: vec![Envelope {
                        device_id: device,
                        client_seq,
                        nonce: vec![1; 24],
                        ciphertext: vec![2; 100],
                        signature: Vec::new(),
                        key_epoch: 0,
                    }],
                    now: UnixSeconds::from_secs(1),
                    quota_bytes: u64::MAX,
                    expect_head: None,
                };
                store
                    .append_envelopes(append)
                    .expect("writes wait for a vacuum");
                store.durable().wait_blocking().expect("durable");
            }
        })
    };
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            for _ in 0..300 {
                match store.read_envelopes(space, doc, ServerSeq(0), 1000, usize::MAX) {
                    Ok(_) | Err(StoreError::Unavailable(_)) => {}
                    Err(error) => panic!("a read failed: {error}"),
                }
            }
        })
    };
    for _ in 0..3 {
        store.vacuum().expect("vacuumed");
    }
    writer.join().expect("the writer finishes");
    reader.join().expect("the reader finishes");
    let page = store
        .read_envelopes(space, doc, ServerSeq(0), 1000, usize::MAX)
        .expect("read");
    let seqs: Vec<u64> = page.envelopes.iter().map(|e| e.server_seq.0).collect();
    assert_eq!(seqs, (1..=150).collect::<Vec<u64>>());
}

/// A space with one device and a shared document of `entries` changes, on a scratch store.
fn store_with_doc(dir: &Path, entries: u64) -> (SledStore, SpaceId, MemberId, DeviceId, DocId) {
    use crate::ids::DeviceToken;
    use crate::store::{AppendEnvelopes, Audience, Envelope, NewSpace};
    let store = SledStore::open(dir).expect("the store opens");
    let (space, member, device) = (SpaceId::random(), MemberId::random(), DeviceId::random());
    let doc = DocId::random();
    store
        .create_space(NewSpace {
            space_id: space,
            member_id: member,
            device_id: device,
            token_hash: DeviceToken::generate().hash(),
            sealed_member_name: vec![],
            sealed_device_name: vec![],
            recovery_key: crate::store::RecoveryKey([7; 32]),
            now: UnixSeconds::from_secs(1),
        })
        .expect("created");
    let envelopes = (1..=entries)
        .map(|client_seq| Envelope {
            device_id: device,
            client_seq,
            nonce: vec![1; 24],
            ciphertext: vec![2; 10],
            signature: Vec::new(),
            key_epoch: 0,
        })
        .collect();
    store
        .append_envelopes(AppendEnvelopes {
            space_id: space,
            doc_id: doc,
            audience: Audience::Shared,
            member_id: member,
            envelopes,
            now: UnixSeconds::from_secs(1),
            quota_bytes: u64::MAX,
            expect_head: None,
        })
        .expect("appended");
    (store, space, member, device, doc)
}

/// An older server put every new snapshot straight into the one slot it had, which is the
/// serving slot now. Such a snapshot still stands its whole window before anything it covers
/// goes.
#[test]
fn a_snapshot_an_older_server_served_at_once_still_stands_its_window() {
    use prost::Message;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (store, space, _, device, doc) = store_with_doc(dir.path(), 4);
    let record = records::SnapshotRecord {
        covers_seq: 3,
        device_id: device.to_vec(),
        client_seq: 9,
        nonce: vec![3; 24],
        ciphertext: b"legacy".to_vec(),
        stored_at: 1_000,
        endorsed_by: Vec::new(),
        endorsing_devices: Vec::new(),
        signature: Vec::new(),
        key_epoch: 0,
    };
    store
        .reading()
        .expect("open")
        .trees
        .snapshots
        .insert(records::doc_key(space, doc), record.encode_to_vec())
        .expect("written as an older server did");
    let young = store
        .compact(
            space,
            doc,
            UnixSeconds::from_secs(1_010),
            Duration::from_secs(10),
        )
        .expect("compacted");
    assert_eq!(young, ServerSeq(0), "it has not stood its window yet");
    let stood = store
        .compact(
            space,
            doc,
            UnixSeconds::from_secs(1_011),
            Duration::from_secs(10),
        )
        .expect("compacted");
    assert_eq!(stood, ServerSeq(3));
    let left = store
        .read_envelopes(space, doc, ServerSeq(0), 100, usize::MAX)
        .expect("read");
    assert_eq!(left.envelopes.len(), 1);
}

/// Invites stored before the inviting device was recorded still work.
#[test]
fn an_invite_stored_without_its_device_can_still_be_redeemed() {
    use crate::ids::{DeviceToken, InviteId, random_secret};
    use crate::store::{RedeemInvite, Redeemed};
    use prost::Message;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (store, space, member, _, _) = store_with_doc(dir.path(), 1);
    let (id, secret) = (InviteId::random(), random_secret());
    let record = records::InviteRecord {
        space_id: space.to_vec(),
        member_id: member.to_vec(),
        kind: 2,
        secret_hash: crate::ids::SecretHash::of(&secret).0.to_vec(),
        expires_at: 100,
        failed_attempts: 0,
        created_at: 1,
        device_id: Vec::new(),
    };
    store
        .reading()
        .expect("open")
        .trees
        .invites
        .insert(id.as_bytes(), record.encode_to_vec())
        .expect("written as an older server did");
    let redeemed = store
        .redeem_invite(RedeemInvite {
            invite_id: id,
            secret_hash: crate::ids::SecretHash::of(&secret),
            now: UnixSeconds::from_secs(2),
            max_failed_attempts: 3,
            new_member_id: MemberId::random(),
            new_device_id: DeviceId::random(),
            token_hash: DeviceToken::generate().hash(),
            sealed_member_name: vec![],
            sealed_device_name: vec![],
            recovery_key: None,
        })
        .expect("redeemed");
    assert!(
        matches!(redeemed, Redeemed::Joined { member_id, .. } if member_id == member),
        "{redeemed:?}"
    );
}
