//! Authorship that does not rest on the server: signed envelopes checked against the roster,
//! a roster log the server cannot rewrite, and safety numbers.

use kintsugi_core::ids::{DeviceId as CoreDeviceId, SpaceId as CoreSpaceId};
use kintsugi_core::{CodeKind, CoreError, Device, DocKind};
use kintsugi_server::store::{
    AppendEnvelopes, Audience, DeviceId, DocId, LogStore, MemberId, ServerSeq, SledStore, SpaceId,
    UnixSeconds,
};
use kintsugi_tests::World;

fn server_ids(device: &Device, kind: DocKind) -> (SpaceId, DocId, MemberId) {
    let CoreSpaceId(space) = device.identity().space;
    (
        SpaceId(space),
        DocId(*device.doc_id(kind).as_bytes()),
        MemberId(*device.identity().member.as_bytes()),
    )
}

fn server_device(id: CoreDeviceId) -> DeviceId {
    DeviceId(*id.as_bytes())
}

/// What a server that rewrites its own log does: Alice's last agreement envelope appended
/// again under each claimed device, its signature cleared where asked.
async fn rewrite_last_envelope(world: &mut World, alice: &Device, forgeries: &[(DeviceId, bool)]) {
    world.server.stop().await.expect("the server stops");
    {
        let store = SledStore::open(world.server.data()).expect("the server's store opens");
        let (space, doc, member) = server_ids(alice, DocKind::Agreement);
        let page = store
            .read_envelopes(space, doc, ServerSeq(0), 10_000, usize::MAX)
            .expect("read the log");
        let original = page
            .envelopes
            .last()
            .expect("alice's envelope")
            .envelope
            .clone();
        let envelopes = (1..)
            .zip(forgeries)
            .map(|(n, (claimed, clear))| {
                let mut envelope = original.clone();
                envelope.device_id = *claimed;
                envelope.client_seq += 1_000_000 * n;
                if *clear {
                    envelope.signature.clear();
                }
                envelope
            })
            .collect();
        let append = AppendEnvelopes {
            space_id: space,
            doc_id: doc,
            audience: Audience::Shared,
            member_id: member,
            envelopes,
            now: UnixSeconds::from_secs(1_900_000_000),
            quota_bytes: u64::MAX,
            expect_head: None,
        };
        store
            .append_envelopes(append)
            .expect("the forged entries are stored");
    }
    world.server.start_again().await;
}

#[tokio::test]
async fn an_envelope_the_server_moved_to_another_device_is_refused_and_nothing_applies() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    let tablet = world
        .join(&alice, CodeKind::Device, "tablet", "Alice")
        .await;
    for device in [&alice, &bob, &tablet] {
        device.sync().await.expect("sync");
    }
    alice
        .add_boundary("Only Alice wrote this", "general")
        .expect("add");
    alice.sync().await.expect("alice pushes");
    let before = bob.heads(DocKind::Agreement).expect("heads");
    // The server replays Alice's change as the tablet's, and once more without a signature.
    let tablet_id = server_device(tablet.identity().device);
    let unsigned = server_device(alice.identity().device);
    rewrite_last_envelope(&mut world, &alice, &[(tablet_id, false), (unsigned, true)]).await;
    let report = bob.sync().await.expect("bob syncs");
    let reasons: Vec<&str> = report.set_aside.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().all(|r| r.contains("not signed by device")),
        "{reasons:?}"
    );
    let boundaries = bob.boundaries().expect("boundaries");
    assert_eq!(boundaries.len(), 1, "alice's real change applies once");
    assert_ne!(bob.heads(DocKind::Agreement).expect("heads"), before);
    let bob_again = bob.heads(DocKind::Agreement).expect("heads");
    bob.sync().await.expect("a second sync");
    assert_eq!(
        bob.heads(DocKind::Agreement).expect("heads"),
        bob_again,
        "nothing more applied"
    );
}

#[tokio::test]
async fn a_replayed_or_junk_roster_entry_is_passed_over_and_stops_no_one() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    bob.sync().await.expect("bob verifies the roster");
    let before = bob.verification().await.expect("bob's roster");
    world.server.stop().await.expect("the server stops");
    {
        let store = SledStore::open(world.server.data()).expect("the server's store opens");
        let (space, _, member) = server_ids(&alice, DocKind::Agreement);
        let page = store
            .read_envelopes(space, DocId::ROSTER, ServerSeq(0), 100, usize::MAX)
            .expect("read the roster log");
        assert!(page.envelopes.len() >= 3, "genesis, invite and bob's entry");
        // The genesis replayed at the end, and bytes that are no entry at all.
        let mut replayed = page.envelopes[0].envelope.clone();
        replayed.client_seq += 1_000_000;
        let mut junk = replayed.clone();
        junk.client_seq += 1;
        junk.ciphertext = b"not a roster entry".to_vec();
        let append = AppendEnvelopes {
            space_id: space,
            doc_id: DocId::ROSTER,
            audience: Audience::Shared,
            member_id: member,
            envelopes: vec![replayed, junk],
            now: UnixSeconds::from_secs(1_900_000_000),
            quota_bytes: u64::MAX,
            expect_head: None,
        };
        store.append_envelopes(append).expect("stored");
    }
    world.server.start_again().await;
    bob.sync().await.expect("bob still syncs");
    let after = bob.verification().await.expect("bob's roster");
    assert_eq!(after.entries, before.entries + 2, "both positions are used");
    assert_eq!(
        after.passed_over,
        before.passed_over + 2,
        "and both were passed over"
    );
    assert_eq!(
        after.fingerprint, before.fingerprint,
        "nothing that counts changed"
    );
    let devices = bob.devices().await.expect("devices");
    assert_eq!(
        devices.iter().filter(|d| d.in_roster).count(),
        2,
        "{devices:?}"
    );
    // The entries after them chain to the last one that held.
    let tablet = world
        .join(&alice, CodeKind::Device, "tablet", "Alice")
        .await;
    let devices = bob.devices().await.expect("devices");
    let tablet_id = tablet.identity().device.to_string();
    assert!(
        devices.iter().any(|d| d.id == tablet_id && d.in_roster),
        "{devices:?}"
    );
}

#[tokio::test]
async fn partners_see_one_safety_number_and_a_new_device_is_unverified_until_compared() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let (a, b) = (alice.verification().await, bob.verification().await);
    let (a, b) = (a.expect("alice's"), b.expect("bob's"));
    assert_eq!(a.fingerprint, b.fingerprint);
    assert!(!a.verified && !b.verified, "nothing was compared yet");
    bob.confirm_verification(&b.fingerprint)
        .await
        .expect("bob confirms");
    assert!(bob.verification().await.expect("again").verified);

    let tablet = world
        .join(&alice, CodeKind::Device, "tablet", "Alice")
        .await;
    let now = bob.verification().await.expect("after the tablet");
    assert_ne!(now.fingerprint, b.fingerprint);
    assert!(!now.verified, "the roster changed since bob compared");
    let devices = bob.devices().await.expect("devices");
    let row = |id: CoreDeviceId| devices.iter().find(|d| d.id == id.to_string()).cloned();
    let tablet_row = row(tablet.identity().device).expect("the tablet is listed");
    assert!(
        tablet_row.in_roster && !tablet_row.verified,
        "{tablet_row:?}"
    );
    assert!(row(alice.identity().device).expect("alice").verified);
    let stale = bob.confirm_verification(&b.fingerprint).await;
    assert!(
        matches!(stale, Err(CoreError::InvalidInput(_))),
        "an old number is not confirmed"
    );
    bob.confirm_verification(&now.fingerprint)
        .await
        .expect("confirm the new one");
    let devices = bob.devices().await.expect("devices");
    assert!(devices.iter().all(|d| d.verified), "{devices:?}");
}
