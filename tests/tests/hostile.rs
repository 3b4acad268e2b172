//! A hostile partner, with a gRPC client and the keys and token from his own phone, attacks the
//! other partner's data, sync and devices. Each test performs one attack that worked against
//! the first round's server and asserts the defence (docs/security.md, "A hostile partner").

use std::sync::Arc;

use automerge::{ActorId, Automerge};
use kintsugi_core::docs::agreement;
use kintsugi_core::envelope::{EnvelopeContext, seal};
use kintsugi_core::{
    CodeKind, CoreError, Device, DocKind, RosterEvent, Status as Agreement, UnixMillis,
};
use kintsugi_proto::v1::{
    Audience, EndorseSnapshotRequest, Envelope, EnvelopeKind, PullRequest, PullResponse,
    PushRequest, PutSnapshotRequest,
};
use kintsugi_server::ManualClock;
use kintsugi_tests::World;
use kintsugi_tests::hostile::{Secrets, reopen, sealed_snapshot, secrets_of};

const MONTH: std::time::Duration = std::time::Duration::from_secs(31 * 24 * 60 * 60);

/// A couple on a server whose clock the test moves: Alice, and Bob who turns hostile.
async fn couple_on_a_clock() -> (World, Arc<ManualClock>, Device, Device) {
    let clock = Arc::new(ManualClock::new(kintsugi_server::UnixSeconds::from_secs(
        1_800_000_000,
    )));
    let world = World::with_clock(clock.clone()).await;
    let (alice, bob) = world.couple().await;
    (world, clock, alice, bob)
}

/// Bob's keys and ids, read out of his phone's folder as an attacker would.
fn steal_own_secrets(world: &World, bob: Device) -> (Device, Secrets) {
    drop(bob);
    let dir = world.home("Bob");
    let secrets = secrets_of(&dir);
    (reopen(&dir), secrets)
}

async fn pull_all(device: &Device, kind: DocKind) -> PullResponse {
    let mut conn = device.connect().await.expect("connect");
    let request = PullRequest {
        doc_id: device.doc_id(kind).as_bytes().to_vec(),
        after_seq: 0,
        limit: 1000,
        with_candidate: true,
    };
    conn.sync.pull(request).await.expect("pull").into_inner()
}

/// Stores `envelope` as a candidate snapshot of `kind` with Bob's token, and endorses it as
/// Bob: the hostile partner vouches for his own forgery.
async fn put_and_endorse(bob: &Device, kind: DocKind, covers_seq: u64, envelope: Envelope) {
    let mut conn = bob.connect().await.expect("connect");
    let doc_id = bob.doc_id(kind).as_bytes().to_vec();
    let content_hash = kintsugi_core::envelope::snapshot_hash(&envelope).to_vec();
    let put = PutSnapshotRequest {
        doc_id: doc_id.clone(),
        covers_seq,
        envelope: Some(envelope),
    };
    conn.sync
        .put_snapshot(put)
        .await
        .expect("the server takes it");
    let endorse = EndorseSnapshotRequest {
        doc_id,
        covers_seq,
        content_hash,
    };
    conn.sync.endorse_snapshot(endorse).await.expect("endorsed");
}

/// A month on, the server restarted (its sweep promotes and prunes what may be): the log must
/// still start at 1 with no snapshot, and a new device of Alice's must get every boundary.
async fn month_later_the_log_is_whole(
    world: &mut World,
    clock: &ManualClock,
    alice: &Device,
) -> Device {
    clock.advance(MONTH);
    world.server.start_again().await;
    alice.sync().await.expect("alice syncs a month later");
    let page = pull_all(alice, DocKind::Agreement).await;
    assert!(
        page.snapshot.is_none(),
        "nothing was pruned behind a snapshot"
    );
    assert_eq!(page.envelopes.first().map(|e| e.server_seq), Some(1));
    let tablet = world
        .join(alice, CodeKind::Device, "alice-tablet", "Alice")
        .await;
    tablet.sync().await.expect("a new device catches up");
    let texts = |d: &Device| -> Vec<String> {
        d.boundaries()
            .expect("list")
            .into_iter()
            .map(|b| b.text)
            .collect()
    };
    assert_eq!(texts(&tablet), texts(alice));
    tablet
}

#[tokio::test]
async fn a_snapshot_forging_the_partners_approval_is_rejected_and_never_serves() {
    let (mut world, clock, alice, bob) = couple_on_a_clock().await;
    let id = bob
        .add_boundary("I keep my phone locked", "privacy")
        .expect("add");
    bob.sync().await.expect("sync");
    alice.sync().await.expect("sync");
    let (bob, secrets) = steal_own_secrets(&world, bob);

    // Bob writes Alice's approval of his boundary under her actor id, into a snapshot.
    let mut forged =
        Automerge::load(&bob.export_automerge(DocKind::Agreement).expect("export")).expect("load");
    forged.set_actor(ActorId::from(*alice.identity().device.as_bytes()));
    let alice_member = alice.identity().member.to_string();
    forged
        .transact(|tx| {
            agreement::approve(tx, &id, &alice_member, UnixMillis::from_millis(1)).map(|_| ())
        })
        .map_err(|f| f.error)
        .expect("forge the approval");
    let head = pull_all(&bob, DocKind::Agreement).await.head_seq;
    let envelope = sealed_snapshot(&secrets, DocKind::Agreement, &forged, head, 900_000);
    put_and_endorse(&bob, DocKind::Agreement, head, envelope).await;

    let report = alice.sync().await.expect("alice syncs");
    assert_eq!(
        report.rejected_snapshots, 1,
        "her device finds the change no envelope carries"
    );
    assert!(
        pull_all(&alice, DocKind::Agreement)
            .await
            .candidate
            .is_none(),
        "dropped"
    );
    let tablet = month_later_the_log_is_whole(&mut world, &clock, &alice).await;
    let boundary = tablet
        .boundaries()
        .expect("list")
        .into_iter()
        .find(|b| b.id == id);
    let boundary = boundary.expect("the boundary is there");
    assert_eq!(
        boundary.status,
        Agreement::Proposed,
        "the forged approval never counts"
    );
    assert_eq!(boundary.approved_by, ["Bob"]);
    let history = tablet.history(DocKind::Agreement).expect("history");
    assert!(
        history
            .iter()
            .all(|h| h.who != "Alice" || !h.what.contains("approved"))
    );
}

#[tokio::test]
async fn a_rejected_snapshot_stored_again_cannot_skip_the_audit_and_prune_the_log() {
    let (mut world, clock, alice, bob) = couple_on_a_clock().await;
    for text in ["No contact with X", "Phones stay unlocked"] {
        alice.add_boundary(text, "contact").expect("add");
    }
    alice.sync().await.expect("sync");
    let (bob, secrets) = steal_own_secrets(&world, bob);
    let bogus = Automerge::new();
    let head = pull_all(&bob, DocKind::Agreement).await.head_seq;
    let envelope = sealed_snapshot(&secrets, DocKind::Agreement, &bogus, head, 900_000);
    put_and_endorse(&bob, DocKind::Agreement, head, envelope.clone()).await;
    let report = alice.sync().await.expect("sync");
    assert_eq!(
        report.rejected_snapshots, 1,
        "the bogus candidate is rejected"
    );

    // The same snapshot at the same position again: the server refuses it.
    let mut conn = bob.connect().await.expect("connect");
    let again = PutSnapshotRequest {
        doc_id: bob.doc_id(DocKind::Agreement).as_bytes().to_vec(),
        covers_seq: head,
        envelope: Some(envelope),
    };
    let refused = conn.sync.put_snapshot(again).await.expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");

    // A new bogus one further on is audited again (by its content hash) and rejected too.
    bob.add_boundary("A change so the log grows", "general")
        .expect("add");
    bob.sync().await.expect("sync");
    let head = pull_all(&bob, DocKind::Agreement).await.head_seq;
    let envelope = sealed_snapshot(&secrets, DocKind::Agreement, &bogus, head, 900_001);
    put_and_endorse(&bob, DocKind::Agreement, head, envelope).await;
    let report = alice.sync().await.expect("sync");
    assert_eq!(report.rejected_snapshots, 1);
    let tablet = month_later_the_log_is_whole(&mut world, &clock, &alice).await;
    assert_eq!(tablet.boundaries().expect("list").len(), 3);
}

#[tokio::test]
async fn a_partner_cannot_squat_a_shared_document_and_one_refusal_stops_no_other_document() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    // Bob pushes first to the check-ins, claiming them as his private document.
    let (bob, secrets) = steal_own_secrets(&world, bob);
    let doc = secrets.keys.doc_id(DocKind::Checkins);
    let (epoch, checkins_key) = secrets.doc_key(DocKind::Checkins);
    let ctx = EnvelopeContext {
        space: secrets.space,
        doc,
        device: secrets.device,
        client_seq: 900_000,
        kind: EnvelopeKind::Change,
        epoch,
    };
    let mut conn = bob.connect().await.expect("connect");
    let squat = PushRequest {
        doc_id: doc.as_bytes().to_vec(),
        audience: Audience::Private as i32,
        envelopes: vec![seal(&checkins_key, &secrets.signer, &ctx, b"mine")],
    };
    let refused = conn.sync.push(squat).await.expect_err("the id says shared");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");

    let answers = kintsugi_core::Answers {
        trust: 5,
        conversations: 2,
        closeness: None,
        forgiveness: None,
        note: String::new(),
    };
    alice.check_in(Some("2026-W10"), answers).expect("check in");
    alice
        .add_boundary("Honest answers", "general")
        .expect("add");
    let report = alice.sync().await.expect("her sync");
    assert!(report.failed.is_empty(), "{report:?}");
    bob.sync().await.expect("his sync");
    assert_eq!(
        bob.checkins().expect("check-ins").len(),
        1,
        "her check-ins still sync"
    );
    assert_eq!(bob.boundaries().expect("boundaries").len(), 1);
}

#[tokio::test]
async fn a_poisoned_envelope_is_set_aside_once_and_later_changes_still_apply() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice.sync().await.expect("sync");
    let (bob, secrets) = steal_own_secrets(&world, bob);
    let doc = bob.doc_id(DocKind::Agreement);
    let random = Envelope {
        device_id: secrets.device.as_bytes().to_vec(),
        client_seq: 900_000,
        kind: EnvelopeKind::Change as i32,
        nonce: vec![9; 24],
        ciphertext: (0..200).map(|_| rand::random::<u8>()).collect(),
        server_seq: 0,
        signature: Vec::new(),
        key_epoch: 0,
    };
    // And a genuine change of Alice's, resealed by Bob as if he had written it.
    let alice_change = alice_change_bytes(&alice);
    let (epoch, agreement_key) = secrets.doc_key(DocKind::Agreement);
    let ctx = EnvelopeContext {
        space: secrets.space,
        doc,
        device: secrets.device,
        client_seq: 900_001,
        kind: EnvelopeKind::Change,
        epoch,
    };
    let impersonation = seal(&agreement_key, &secrets.signer, &ctx, &alice_change);
    let mut conn = bob.connect().await.expect("connect");
    let push = PushRequest {
        doc_id: doc.as_bytes().to_vec(),
        audience: Audience::Shared as i32,
        envelopes: vec![random, impersonation],
    };
    conn.sync
        .push(push)
        .await
        .expect("the blind server cannot tell");

    let report = alice.sync().await.expect("her sync goes on");
    let senders: Vec<&str> = report.set_aside.iter().map(|a| a.device.as_str()).collect();
    let bobs = bob.identity().device.to_string();
    assert_eq!(senders, [bobs.as_str(), bobs.as_str()], "{report:?}");
    let named = |a: &kintsugi_core::SetAside| {
        a.sender
            .as_deref()
            .is_some_and(|s| s.starts_with("your partner's device"))
    };
    assert!(report.set_aside.iter().all(named), "{report:?}");
    assert!(
        report.set_aside[1]
            .reason
            .contains("written by another device")
    );
    bob.add_boundary("Written after the poison", "general")
        .expect("add");
    bob.sync().await.expect("sync");
    let report = alice.sync().await.expect("sync");
    assert!(report.set_aside.is_empty(), "reported once");
    assert!(report.pulled >= 1, "{report:?}");
    assert!(
        alice
            .boundaries()
            .expect("list")
            .iter()
            .any(|b| b.text == "Written after the poison")
    );
    assert_eq!(
        alice.set_aside().expect("kept").len(),
        2,
        "kept for inspection"
    );
}

/// The bytes of the change behind Alice's first boundary.
fn alice_change_bytes(alice: &Device) -> Vec<u8> {
    alice
        .add_boundary("Alice's own words", "general")
        .expect("add");
    let doc = Automerge::load(&alice.export_automerge(DocKind::Agreement).expect("export"))
        .expect("load");
    let actor = alice.identity().device;
    let change = doc
        .get_changes(&[])
        .into_iter()
        .rev()
        .find(|c| c.actor_id().to_bytes() == actor.as_bytes())
        .expect("her change");
    change.raw_bytes().to_vec()
}

#[tokio::test]
async fn a_stolen_phone_cannot_lock_out_the_first_and_goes_with_what_it_linked() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    bob.sync().await.expect("bob's first look at the devices");
    let stolen = world
        .join(&alice, CodeKind::Device, "stolen", "Alice")
        .await;
    let thiefs = world
        .join(&stolen, CodeKind::Device, "thiefs", "Alice")
        .await;
    let first = alice.identity().device.to_string();
    let err = thiefs.revoke(&first).await.expect_err("older");
    assert!(matches!(err, CoreError::PermissionDenied(_)), "{err}");
    let err = stolen.revoke(&first).await.expect_err("older");
    assert!(matches!(err, CoreError::PermissionDenied(_)), "{err}");
    let err = alice.revoke(&first).await.expect_err("itself");
    assert!(matches!(err, CoreError::InvalidInput(_)), "{err}");

    let report = bob.sync().await.expect("bob syncs");
    let added: Vec<(&str, RosterEvent)> = report
        .roster
        .iter()
        .map(|c| (c.device.as_str(), c.change))
        .collect();
    let (stolen_id, thiefs_id) = (
        stolen.identity().device.to_string(),
        thiefs.identity().device.to_string(),
    );
    assert_eq!(
        added.len(),
        2,
        "Bob is told of both new devices: {report:?}"
    );
    assert!(added.contains(&(stolen_id.as_str(), RosterEvent::Added)));

    let revoked = alice
        .revoke(&stolen_id)
        .await
        .expect("the first phone revokes the stolen one");
    let ids: Vec<&str> = revoked.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, [stolen_id.as_str(), thiefs_id.as_str()]);
    for gone in [&stolen, &thiefs] {
        let err = gone.sync().await.expect_err("revoked");
        assert!(matches!(err, CoreError::Unauthenticated(_)), "{err}");
    }
    alice.sync().await.expect("the first phone still syncs");
    let report = bob.sync().await.expect("bob syncs");
    let revocations = report
        .roster
        .iter()
        .filter(|c| c.change == RosterEvent::Revoked)
        .count();
    assert_eq!(
        revocations, 2,
        "Bob is told of both revocations: {report:?}"
    );
}

#[tokio::test]
async fn a_stolen_phone_cannot_leave_the_space_for_its_owner() {
    let world = World::new().await;
    let (alice, _bob) = world.couple().await;
    alice
        .write_journal("only mine", None, &[])
        .expect("journal");
    alice.sync().await.expect("sync");
    let stolen = world
        .join(&alice, CodeKind::Device, "stolen", "Alice")
        .await;
    let err = stolen
        .leave()
        .await
        .expect_err("only the first device leaves");
    assert!(matches!(err, CoreError::PermissionDenied(_)), "{err}");
    alice.sync().await.expect("the owner still syncs");
    let tablet = world
        .join(&alice, CodeKind::Device, "tablet", "Alice")
        .await;
    tablet.sync().await.expect("sync");
    assert_eq!(
        tablet.journal().expect("journal").len(),
        1,
        "her journal is still there"
    );
}

/// Two changes of the partner's own actor and sequence number, or a change pushed before the
/// one it depends on: every device applies the same ones and sets aside the same others, so
/// the document neither blocks nor forks.
#[tokio::test]
async fn forked_and_out_of_order_changes_are_set_aside_alike_on_every_device() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    bob.add_boundary("Before the forgery", "general")
        .expect("add");
    sync_both(&alice, &bob).await;
    let (bob, secrets) = steal_own_secrets(&world, bob);
    let base = bob.export_automerge(DocKind::Agreement).expect("export");
    let change = |doc: &mut Automerge, value: &str| {
        let boundaries = kintsugi_core::docs::root_map(doc, "boundaries").expect("root");
        doc.transact(|tx| {
            use automerge::transaction::Transactable;
            tx.put(&boundaries, "forged", value)
        })
        .map_err(|f| f.error)
        .expect("edit");
        doc.get_last_local_change()
            .expect("change")
            .raw_bytes()
            .to_vec()
    };
    let own = |bytes: &[u8]| {
        let mut doc = Automerge::load(bytes).expect("load");
        doc.set_actor(ActorId::from(*secrets.device.as_bytes()));
        doc
    };
    let (mut one, mut other) = (own(&base), own(&base));
    let first = change(&mut one, "x");
    let twin = change(&mut other, "y");
    let child = change(&mut one, "z");
    let envelopes = [twin.as_slice(), child.as_slice(), first.as_slice()]
        .iter()
        .enumerate()
        .map(|(i, bytes)| resealed(&secrets, DocKind::Agreement, 900_000 + i as u64, bytes))
        .collect();
    let mut conn = bob.connect().await.expect("connect");
    let push = PushRequest {
        doc_id: bob.doc_id(DocKind::Agreement).as_bytes().to_vec(),
        audience: Audience::Shared as i32,
        envelopes,
    };
    conn.sync.push(push).await.expect("stored");
    let report = alice.sync().await.expect("her sync goes on");
    assert!(report.failed.is_empty(), "{report:?}");
    // The twin came first and applies; the child came before its parent, and the parent
    // repeats the twin's sequence number: both are set aside.
    let reasons: Vec<&str> = report.set_aside.iter().map(|a| a.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{report:?}");
    assert!(
        reasons[0].contains("did not accept before it"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("duplicate seq"), "{reasons:?}");
    alice
        .add_boundary("After the forgery", "general")
        .expect("add");
    alice.sync().await.expect("sync");
    let tablet = world
        .join(&alice, CodeKind::Device, "tablet", "Alice")
        .await;
    tablet
        .sync()
        .await
        .expect("a new device reads the same log");
    // The tablet wrote its own entry in the devices map; once that is synced, both agree.
    sync_both(&alice, &tablet).await;
    assert_eq!(
        tablet.heads(DocKind::Agreement).expect("heads"),
        alice.heads(DocKind::Agreement).expect("heads")
    );
    assert!(
        alice
            .boundaries()
            .expect("list")
            .iter()
            .any(|b| b.text == "After the forgery")
    );
}

async fn sync_both(alice: &Device, bob: &Device) {
    for device in [alice, bob, alice] {
        device.sync().await.expect("sync");
    }
}

/// Change bytes sealed as an envelope of `kind` by the device of `secrets`.
fn resealed(secrets: &Secrets, kind: DocKind, client_seq: u64, bytes: &[u8]) -> Envelope {
    let (epoch, key) = secrets.doc_key(kind);
    let ctx = EnvelopeContext {
        space: secrets.space,
        doc: secrets.keys.doc_id(kind),
        device: secrets.device,
        client_seq,
        kind: EnvelopeKind::Change,
        epoch,
    };
    seal(&key, &secrets.signer, &ctx, bytes)
}
