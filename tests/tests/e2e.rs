//! End-to-end: a real server on 127.0.0.1 and several client cores in temporary folders.

use std::time::Duration;

use kintsugi_core::envelope::{EnvelopeContext, seal};
use kintsugi_core::keys::SecretKey;
use kintsugi_core::{CodeKind, CoreError, DocKind, Status};
use kintsugi_proto::v1::{Audience, EnvelopeKind, PullRequest, PushRequest};
use kintsugi_server::testing::{files_containing, files_under};
use kintsugi_tests::World;
use tonic::Code;

#[tokio::test]
async fn partners_merge_concurrent_offline_edits_of_one_boundary() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    let id = alice
        .add_boundary("No contact with X", "contact")
        .expect("add");
    alice.sync().await.expect("alice sync");
    bob.sync().await.expect("bob sync");

    world
        .server
        .stop()
        .await
        .expect("the server stopped cleanly");
    alice
        .edit_boundary(&id, "No contact with X, including social media")
        .expect("alice edit");
    bob.edit_boundary(&id, "Absolutely no contact with X")
        .expect("bob edit");
    world.server.start_again().await;

    for device in [&alice, &bob, &alice, &bob] {
        device.sync().await.expect("sync after reconnect");
    }
    let want = "Absolutely no contact with X, including social media";
    for device in [&alice, &bob] {
        let list = device.boundaries().expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].text, want);
        assert_eq!(
            list[0].status,
            Status::Proposed,
            "neither partner approved the merged text"
        );
        assert!(list[0].approved_by.is_empty(), "{:?}", list[0].approved_by);
    }
    assert_eq!(
        alice.heads(DocKind::Agreement).expect("heads"),
        bob.heads(DocKind::Agreement).expect("heads")
    );
}

#[tokio::test]
async fn boundary_becomes_agreed_when_both_approve_its_current_text() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let id = alice
        .add_boundary("We tell each other when we feel unsafe", "honesty")
        .expect("add");
    alice.sync().await.expect("sync");
    bob.sync().await.expect("sync");
    assert_eq!(bob.boundary(&id).expect("show").status, Status::Proposed);
    bob.approve_boundary(&id).expect("approve");
    bob.sync().await.expect("sync");
    alice.sync().await.expect("sync");
    let seen = alice.boundary(&id).expect("show");
    assert_eq!(seen.status, Status::Agreed);
    assert_eq!(
        seen.approved_by,
        vec!["Alice".to_string(), "Bob".to_string()]
    );
}

#[tokio::test]
async fn private_journal_never_reaches_partner() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice
        .write_journal("alice private marker", Some(3), &[])
        .expect("write");
    alice.sync().await.expect("sync");
    bob.sync().await.expect("sync");
    assert!(
        bob.journal().expect("journal").is_empty(),
        "bob reads only his own journal"
    );

    // Bob's device asks the server for Alice's journal directly: refused.
    let mut conn = bob.connect().await.expect("connect");
    let alice_journal = alice.doc_id(DocKind::Journal).as_bytes().to_vec();
    let status = conn
        .sync
        .pull(PullRequest {
            doc_id: alice_journal.clone(),
            after_seq: 0,
            limit: 10,
            with_candidate: false,
        })
        .await
        .expect_err("pull of the partner's private journal");
    assert_eq!(status.code(), Code::PermissionDenied);
    let push = PushRequest {
        doc_id: alice_journal,
        audience: Audience::Private as i32,
        envelopes: vec![],
    };
    let status = conn
        .sync
        .push(push)
        .await
        .expect_err("push to the partner's journal");
    assert!(
        matches!(
            status.code(),
            Code::PermissionDenied | Code::InvalidArgument
        ),
        "{status:?}"
    );

    assert_eq!(
        files_containing(&world.home("Bob"), b"alice private marker"),
        Vec::<std::path::PathBuf>::new(),
        "these files hold alice's journal"
    );
}

#[tokio::test]
async fn retried_push_is_stored_once() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let mut conn = alice.connect().await.expect("connect");
    let mut doc = kintsugi_core::ids::DocId::random();
    doc.0[0] &= 0x7f; // a shared document's id
    let ctx = EnvelopeContext {
        space: alice.identity().space,
        doc,
        device: alice.identity().device,
        client_seq: 41,
        kind: EnvelopeKind::Change,
        epoch: 0,
    };
    let envelope = seal(
        &SecretKey::random(),
        &kintsugi_core::key_store::DeviceSecrets::generate(),
        &ctx,
        b"opaque to the server",
    );
    let push = PushRequest {
        doc_id: doc.as_bytes().to_vec(),
        audience: Audience::Shared as i32,
        envelopes: vec![envelope],
    };
    let first = conn
        .sync
        .push(push.clone())
        .await
        .expect("push")
        .into_inner();
    let retry = conn
        .sync
        .push(push)
        .await
        .expect("retried push")
        .into_inner();
    assert_eq!(first.server_seqs, retry.server_seqs);
    let pulled = conn
        .sync
        .pull(PullRequest {
            doc_id: doc.as_bytes().to_vec(),
            after_seq: 0,
            limit: 100,
            with_candidate: false,
        })
        .await
        .expect("pull")
        .into_inner();
    assert_eq!(pulled.envelopes.len(), 1);
}

#[tokio::test]
async fn second_device_links_with_a_code_and_receives_everything() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice
        .add_boundary("Phones stay unlocked around each other", "transparency")
        .expect("add");
    alice
        .write_journal("only my devices may read this", None, &[])
        .expect("journal");
    bob.add_boundary("We check in every Sunday", "routine")
        .expect("add");
    alice.sync().await.expect("sync");
    bob.sync().await.expect("sync");

    let tablet = world
        .join(&alice, CodeKind::Device, "alice-tablet", "Alice")
        .await;
    assert_eq!(tablet.identity().member, alice.identity().member);
    tablet.sync().await.expect("tablet sync");
    assert_eq!(tablet.boundaries().expect("list").len(), 2);
    let journal = tablet.journal().expect("journal");
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].text, "only my devices may read this");
}

#[tokio::test]
async fn revoked_device_is_refused() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let lost = world
        .join(&alice, CodeKind::Device, "alice-lost-phone", "Alice")
        .await;
    lost.sync().await.expect("sync before revocation");
    alice
        .revoke(&lost.identity().device.to_string())
        .await
        .expect("revoke");
    let devices = alice.devices().await.expect("devices");
    assert!(
        devices
            .iter()
            .any(|d| d.id == lost.identity().device.to_string() && d.revoked)
    );
    let err = lost.sync().await.expect_err("revoked device syncs");
    assert!(matches!(err, CoreError::Unauthenticated(_)), "{err}");
    alice.sync().await.expect("the other devices keep syncing");
}

#[tokio::test]
async fn used_or_wrong_invite_codes_are_refused_clearly() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let code = alice
        .invite(CodeKind::Partner)
        .await
        .expect("invite")
        .encode();
    let url = world.server.url();
    let enrol = |dir| kintsugi_core::Enrolment {
        dir,
        server_url: &url,
        member_name: "Bob",
        device_name: "phone",
        ca_cert_pem: None,
        clock: kintsugi_core::system_clock(),
    };
    let (bob, carol) = (world.home("Bob"), world.home("Carol"));
    kintsugi_core::Device::join(enrol(&bob), &code)
        .await
        .expect("first use");
    let err = kintsugi_core::Device::join(enrol(&carol), &code)
        .await
        .expect_err("second use");
    assert!(matches!(err, CoreError::InviteRefused(_)), "{err}");
    let err = kintsugi_core::Device::join(enrol(&carol), "KS1NOTACODE")
        .await
        .expect_err("garbage");
    assert!(matches!(err, CoreError::InvalidCode(_)), "{err}");
}

#[tokio::test]
async fn nothing_the_server_writes_holds_plaintext_or_automerge_bytes() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice
        .add_boundary("boundary-marker-QZXV no dating apps", "apps")
        .expect("add");
    alice
        .write_journal(
            "journal-marker-JKWP felt hopeful",
            Some(4),
            &["hope".into()],
        )
        .expect("journal");
    bob.write_journal("journal-marker-HMRT ashamed", Some(1), &[])
        .expect("journal");
    for device in [&alice, &bob, &alice] {
        device.sync().await.expect("sync");
    }
    world
        .server
        .stop()
        .await
        .expect("the server stopped cleanly");
    assert!(!files_under(world.server.data()).is_empty());
    for needle in [&b"marker-"[..], b"Alice", b"Bob", &[0x85, 0x6f, 0x4a, 0x83]] {
        assert_eq!(
            files_containing(world.server.data(), needle),
            Vec::<std::path::PathBuf>::new(),
            "these files hold {:?}",
            String::from_utf8_lossy(needle)
        );
    }
}

#[tokio::test]
async fn sync_without_server_fails_clearly_and_loses_nothing() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice.sync().await.expect("sync");
    world
        .server
        .stop()
        .await
        .expect("the server stopped cleanly");
    alice
        .add_boundary("No secrets about money", "money")
        .expect("offline edit");
    let err = alice.sync().await.expect_err("server is down");
    assert!(matches!(err, CoreError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("kept on this device"), "{err}");
    assert_eq!(alice.pending_changes(), 1);
    world.server.start_again().await;
    let report = alice.sync().await.expect("sync");
    assert_eq!(report.pushed, 1);
    assert_eq!(alice.pending_changes(), 0);
    bob.sync().await.expect("bob sync");
    assert_eq!(
        bob.boundaries().expect("list")[0].text,
        "No secrets about money"
    );
}

#[tokio::test]
async fn a_forged_envelope_is_refused_and_changes_nothing() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice.add_boundary("Kept safe", "general").expect("add");
    alice.sync().await.expect("sync");
    bob.sync().await.expect("sync");
    let before = bob.heads(DocKind::Agreement).expect("heads");

    // Alice's device (or a malicious server) appends an envelope sealed with the wrong key.
    let mut conn = alice.connect().await.expect("connect");
    let doc = alice.doc_id(DocKind::Agreement);
    let ctx = EnvelopeContext {
        space: alice.identity().space,
        doc,
        device: alice.identity().device,
        client_seq: 1_000_000,
        kind: EnvelopeKind::Change,
        epoch: 0,
    };
    let forged = seal(
        &SecretKey::random(),
        &kintsugi_core::key_store::DeviceSecrets::generate(),
        &ctx,
        b"not a change",
    );
    conn.sync
        .push(PushRequest {
            doc_id: doc.as_bytes().to_vec(),
            audience: Audience::Shared as i32,
            envelopes: vec![forged],
        })
        .await
        .expect("the blind server accepts any ciphertext");

    alice
        .check_in(
            Some("2026-W10"),
            kintsugi_core::Answers {
                trust: 5,
                conversations: 2,
                closeness: None,
                forgiveness: None,
                note: String::new(),
            },
        )
        .expect("check in");
    let _ = alice.sync().await; // pushes the check-in; her own pull of the agreement fails too

    let report = bob
        .sync()
        .await
        .expect("a forged envelope is set aside, not fatal");
    assert_eq!(report.set_aside.len(), 1, "{report:?}");
    assert_eq!(report.set_aside[0].doc, "agreement");
    assert!(
        report.set_aside[0]
            .sender
            .as_deref()
            .is_some_and(|s| s.starts_with("your partner's device"))
    );
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(bob.heads(DocKind::Agreement).expect("heads"), before);
    assert_eq!(bob.boundaries().expect("list").len(), 1);
    assert_eq!(
        bob.checkins().expect("checkins").len(),
        1,
        "the other documents still sync"
    );
}

#[tokio::test]
async fn live_sync_delivers_a_partners_change_without_polling() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let bob = std::sync::Arc::new(bob);
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let bob = bob.clone();
        tokio::spawn(async move {
            bob.watch(
                async {
                    let _ = stopped.await;
                },
                |event| {
                    let _ = events.send(format!("{event:?}"));
                },
            )
            .await
        })
    };
    // Wait until Bob's stream is connected, then change something on Alice's phone.
    let first = tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .expect("connected");
    assert!(first.is_some_and(|e| e.starts_with("Synced")));
    alice
        .add_boundary("We answer each other's calls", "contact")
        .expect("add");
    alice.sync().await.expect("push");
    let delivered = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = received.recv().await {
            if event.starts_with("Received") {
                return true;
            }
        }
        false
    })
    .await
    .expect("a live delivery");
    assert!(delivered);
    assert_eq!(bob.boundaries().expect("list").len(), 1);
    let _ = stop.send(());
    watcher
        .await
        .expect("watch task")
        .expect("watch ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_on_one_device_never_collide() {
    let world = World::new().await;
    let alice = std::sync::Arc::new(world.init("Alice").await);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let alice = alice.clone();
            std::thread::spawn(move || {
                for i in 0..30 {
                    alice
                        .add_boundary(&format!("writer {w} boundary {i}"), "general")
                        .expect("add");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    assert_eq!(
        alice.boundaries().expect("the document still loads").len(),
        60
    );
    alice.sync().await.expect("sync");
    let tablet = world
        .join(&alice, CodeKind::Device, "alice-tablet", "Alice")
        .await;
    tablet
        .sync()
        .await
        .expect("the other device applies every change");
    assert_eq!(tablet.boundaries().expect("list").len(), 60);
}

#[tokio::test]
async fn leaving_erases_a_partners_private_data_and_the_last_leaver_everything() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice
        .add_boundary("shared-marker-LVQ", "general")
        .expect("add");
    alice
        .write_journal("alice-private-marker-LVQ", None, &[])
        .expect("journal");
    bob.write_journal("bob-private-marker-LVQ", None, &[])
        .expect("journal");
    for device in [&alice, &bob, &alice] {
        device.sync().await.expect("sync");
    }
    let left = alice.leave().await.expect("alice leaves");
    assert!(
        !left.space_erased && left.documents_removed == 1 && left.devices_removed == 1,
        "{left:?}"
    );
    let err = alice.sync().await.expect_err("alice's device is gone");
    assert!(matches!(err, CoreError::Unauthenticated(_)), "{err}");
    bob.sync().await.expect("bob keeps syncing");
    assert_eq!(
        bob.boundaries().expect("list").len(),
        1,
        "the shared agreement stays"
    );

    let left = bob.leave().await.expect("bob leaves");
    assert!(left.space_erased, "{left:?}");
    world
        .server
        .stop()
        .await
        .expect("the server stopped cleanly");
    let stats = kintsugi_server::offline_admin::stats(world.server.data()).expect("stats");
    assert_eq!(
        (
            stats.spaces,
            stats.devices,
            stats.documents,
            stats.envelopes,
            stats.bytes
        ),
        (0, 0, 0, 0, 0)
    );
}
