//! Key epochs against someone who holds old keys and the server's whole data folder: a revoked
//! device, and whoever reads an invite code after it was used. Each opens what came before and
//! nothing written after.

use kintsugi_core::envelope::{Authors, open};
use kintsugi_core::epoch_keys::{EpochKeys, KnownKey};
use kintsugi_core::ids::{DeviceId as CoreDeviceId, DocId as CoreDocId, SpaceId as CoreSpaceId};
use kintsugi_core::roster::{EpochAudience, Recipient, Roster};
use kintsugi_core::{CodeKind, DocKind, InviteCode};
use kintsugi_proto::v1::Envelope;
use kintsugi_tests::World;
use kintsugi_tests::hostile::{reopen, secrets_of};
use kintsugi_tests::server_data::{copy_server_data, envelopes_in, roster_in};

/// Accepts any signature of a device the roster knows: the attacker only wants to decrypt.
struct AnyKnownDevice<'a>(&'a Roster);

impl Authors for AnyKnownDevice<'_> {
    fn signing_key(
        &self,
        device: CoreDeviceId,
        _epoch: u64,
    ) -> Option<ed25519_dalek::VerifyingKey> {
        self.0.device(device).map(|d| d.signing_key)
    }
}

/// How many of `envelopes` (of `doc`) open with some key in `keys`.
fn opened(
    keys: &EpochKeys,
    roster: &Roster,
    space: CoreSpaceId,
    doc: CoreDocId,
    envelopes: &[Envelope],
) -> usize {
    let authors = AnyKnownDevice(roster);
    envelopes
        .iter()
        .filter(|envelope| {
            keys.all().any(|k: KnownKey| {
                let key = k.key.doc_key(doc);
                open(|_| Some(key.clone()), &authors, space, doc, envelope).is_ok()
            })
        })
        .count()
}

#[tokio::test]
async fn a_revoked_device_with_the_servers_data_reads_nothing_written_after_its_revocation() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    let tablet = world
        .join(&alice, CodeKind::Device, "tablet", "Alice")
        .await;
    alice
        .add_boundary("Before the tablet was lost", "general")
        .expect("add");
    alice
        .write_journal("before: only alice", None, &[])
        .expect("journal");
    kintsugi_tests::sync_all(&[&alice, &bob, &tablet]).await;
    let space = alice.identity().space;
    let docs = [DocKind::Agreement, DocKind::Journal].map(|kind| alice.doc_id(kind));
    let earlier = tempfile::tempdir().expect("a temp dir");
    copy_server_data(&mut world, earlier.path()).await;
    let before = docs.map(|doc| envelopes_in(earlier.path(), space, doc).len());

    // The tablet is lost: whoever has it keeps its keys. Alice revokes it, both write on.
    let tablet_dir = tablet.dir().to_path_buf();
    let tablet_id = tablet.identity().device;
    drop(tablet);
    let stolen = secrets_of(&tablet_dir);
    alice.revoke(&tablet_id.to_string()).await.expect("revoke");
    alice
        .add_boundary("After: the tablet must not read this", "general")
        .expect("add");
    alice
        .write_journal("after: the tablet must not read this", None, &[])
        .expect("journal");
    bob.add_boundary("After, from bob", "general").expect("add");
    kintsugi_tests::sync_all(&[&alice, &bob]).await;

    let copy = tempfile::tempdir().expect("a temp dir");
    copy_server_data(&mut world, copy.path()).await;
    let roster = roster_in(copy.path(), space);
    let keys = EpochKeys::unlock(
        &roster,
        Recipient::Device(stolen.device),
        stolen.signer.agreement_secret(),
        stolen.epochs.all(),
    );
    for (doc, before) in docs.iter().zip(&before) {
        let all = envelopes_in(copy.path(), space, *doc);
        assert!(all.len() > *before, "new edits were written");
        let (old, new) = all.split_at(*before);
        assert!(
            opened(&keys, &roster, space, *doc, old) > 0,
            "the stolen keys read the history"
        );
        assert_eq!(
            opened(&keys, &roster, space, *doc, new),
            0,
            "an edit after the revocation opened"
        );
    }
    drop(reopen(&tablet_dir));
}

#[tokio::test]
async fn a_used_invite_code_with_the_servers_data_opens_nothing_written_after_the_join() {
    let mut world = World::new().await;
    let alice = world.init("Alice").await;
    alice
        .add_boundary("Before the join", "general")
        .expect("add");
    alice
        .write_journal("before the join", None, &[])
        .expect("journal");
    alice.sync().await.expect("sync");
    let (tablet, code) = world
        .join_keeping_code(&alice, CodeKind::Device, "tablet", "Alice")
        .await;
    tablet.sync().await.expect("sync");
    tablet
        .add_boundary("After the join, from the tablet", "general")
        .expect("add");
    alice
        .add_boundary("After the join, from alice", "general")
        .expect("add");
    alice
        .write_journal("after the join", None, &[])
        .expect("journal");
    kintsugi_tests::sync_all(&[&alice, &tablet]).await;

    let copy = tempfile::tempdir().expect("a temp dir");
    copy_server_data(&mut world, copy.path()).await;
    let space = alice.identity().space;
    let roster = roster_in(copy.path(), space);
    let code = InviteCode::parse(&code).expect("the code still parses");
    let welcome = roster
        .invite_welcome(&code.invite_id)
        .expect("the invite is in the roster");
    let from_code = kintsugi_core::epoch_keys::welcome::open_welcome(
        &code.invite_seed,
        space,
        &code.invite_id,
        welcome,
        alice.identity().member,
    )
    .expect("the code opens its welcome");
    let keys = EpochKeys::unlock(
        &roster,
        Recipient::Device(CoreDeviceId([0; 16])),
        &[0; 32],
        from_code,
    );
    let joined_at = roster
        .device(tablet.identity().device)
        .expect("in the roster")
        .added_at;
    let member = alice.identity().member;
    for (kind, audience) in [
        (DocKind::Agreement, EpochAudience::Space),
        (DocKind::Journal, EpochAudience::Member(member)),
    ] {
        let doc = alice.doc_id(kind);
        let all = envelopes_in(copy.path(), space, doc);
        let epochs = roster.epochs(audience);
        let (old, new): (Vec<Envelope>, Vec<Envelope>) = all
            .into_iter()
            .partition(|e| epochs[e.key_epoch as usize].start < joined_at);
        assert!(
            opened(&keys, &roster, space, doc, &old) > 0,
            "the code reads what came before"
        );
        assert!(!new.is_empty(), "edits were written after the join");
        assert_eq!(
            opened(&keys, &roster, space, doc, &new),
            0,
            "an edit after the join opened"
        );
    }
}

#[tokio::test]
async fn a_code_made_before_the_keys_changed_is_refused_with_what_to_do() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let old_tablet = world.join(&alice, CodeKind::Device, "old", "Alice").await;
    let code = alice
        .invite(CodeKind::Device)
        .await
        .expect("invite")
        .encode();
    alice
        .revoke(&old_tablet.identity().device.to_string())
        .await
        .expect("revoke");
    let home = world.home("new");
    let enrolment = kintsugi_core::Enrolment {
        dir: &home,
        server_url: &world.server.url(),
        member_name: "Alice",
        device_name: "new tablet",
        ca_cert_pem: None,
        clock: kintsugi_core::system_clock(),
    };
    let refused = kintsugi_core::Device::join(enrolment, &code)
        .await
        .expect_err("the code's welcome predates the revocation's new keys");
    assert!(
        matches!(refused, kintsugi_core::CoreError::InviteRefused(_))
            && refused.to_string().contains("ask for a new code"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_partner_who_left_reads_nothing_the_other_writes_after() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice
        .add_boundary("Before bob left", "general")
        .expect("add");
    kintsugi_tests::sync_all(&[&alice, &bob]).await;
    let bob_dir = bob.dir().to_path_buf();
    bob.leave().await.expect("bob leaves");
    drop(bob);
    let left = secrets_of(&bob_dir);
    alice
        .add_boundary("After bob left", "general")
        .expect("add");
    alice
        .sync()
        .await
        .expect("alice syncs: the owed epoch first");

    let copy = tempfile::tempdir().expect("a temp dir");
    copy_server_data(&mut world, copy.path()).await;
    let space = alice.identity().space;
    let roster = roster_in(copy.path(), space);
    let me = Recipient::Device(left.device);
    let keys = EpochKeys::unlock(
        &roster,
        me,
        left.signer.agreement_secret(),
        left.epochs.all(),
    );
    let doc = alice.doc_id(DocKind::Agreement);
    let all = envelopes_in(copy.path(), space, doc);
    let left_at = roster
        .device(left.device)
        .and_then(|d| d.revoked_at)
        .expect("revoked");
    let epochs = roster.epochs(EpochAudience::Space);
    let (old, new): (Vec<Envelope>, Vec<Envelope>) = all
        .into_iter()
        .partition(|e| epochs[e.key_epoch as usize].start < left_at);
    assert!(
        opened(&keys, &roster, space, doc, &old) > 0,
        "bob kept the history"
    );
    assert!(!new.is_empty(), "alice wrote under a new epoch");
    assert_eq!(
        opened(&keys, &roster, space, doc, &new),
        0,
        "bob read what came after"
    );
}
