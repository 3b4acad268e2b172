//! Snapshots end to end: a new device catches up from a snapshot after the log is pruned, and
//! a snapshot that omits changes is caught by the devices' audit before it can prune anything.

use kintsugi_core::{CodeKind, DocKind};
use kintsugi_proto::v1::PullRequest;
use kintsugi_tests::World;

#[tokio::test]
async fn a_new_device_catches_up_from_a_snapshot_after_the_log_is_pruned() {
    let clock = std::sync::Arc::new(kintsugi_server::ManualClock::new(
        kintsugi_server::UnixSeconds::from_secs(1_800_000_000),
    ));
    let mut world = World::with_clock(clock.clone()).await;
    let alice = world.init("Alice").await.with_snapshot_every(20);
    for i in 0..30 {
        alice
            .add_boundary(&format!("boundary {i}"), "general")
            .expect("add");
    }
    alice
        .write_journal("private, and still there after compaction", None, &[])
        .expect("journal");
    alice.sync().await.expect("sync offers a snapshot");
    let audit = alice
        .sync()
        .await
        .expect("the next sync audits the candidate");
    assert_eq!(
        audit.rejected_snapshots, 0,
        "a good snapshot passes its audit"
    );

    // A month later the server restarts, sweeps, and prunes what the snapshot covers.
    clock.advance(std::time::Duration::from_secs(31 * 24 * 60 * 60));
    world.server.start_again().await;
    let mut conn = alice.connect().await.expect("connect");
    let doc = alice.doc_id(DocKind::Agreement).as_bytes().to_vec();
    // The sweep runs in the background once the server is up; wait for it (bounded).
    let mut page = Default::default();
    for _ in 0..200 {
        let request = PullRequest {
            doc_id: doc.clone(),
            after_seq: 0,
            limit: 1000,
            with_candidate: false,
        };
        page = conn.sync.pull(request).await.expect("pull").into_inner();
        if page.snapshot.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let page: kintsugi_proto::v1::PullResponse = page;
    let snapshot = page
        .snapshot
        .expect("a pruned log starts with the snapshot");
    assert!(snapshot.covers_seq >= 20);
    assert!(
        page.envelopes.iter().all(|e| e.server_seq > 1),
        "covered entries are gone"
    );

    alice
        .add_boundary("after the snapshot", "general")
        .expect("add");
    alice.sync().await.expect("sync");
    let tablet = world
        .join(&alice, CodeKind::Device, "alice-tablet", "Alice")
        .await;
    tablet.sync().await.expect("tablet catches up");
    assert_eq!(tablet.boundaries().expect("list").len(), 31);
    assert_eq!(tablet.journal().expect("journal").len(), 1);
    alice
        .sync()
        .await
        .expect("alice receives the tablet's own change");
    assert_eq!(
        tablet.heads(DocKind::Agreement).expect("heads"),
        alice.heads(DocKind::Agreement).expect("heads")
    );
}

#[tokio::test]
async fn a_snapshot_that_omits_changes_is_detected_rejected_and_loses_nothing() {
    let clock = std::sync::Arc::new(kintsugi_server::ManualClock::new(
        kintsugi_server::UnixSeconds::from_secs(1_800_000_000),
    ));
    let mut world = World::with_clock(clock.clone()).await;
    let (alice, bob) = world.couple().await;
    for i in 0..6 {
        alice
            .add_boundary(&format!("kept {i}"), "general")
            .expect("add");
    }
    alice.sync().await.expect("sync");
    bob.sync().await.expect("sync");

    // A member's device (or a buggy app) offers a snapshot that claims to cover the whole log
    // but holds only the empty document. It is sealed properly: only its content is wrong.
    let dir = alice.dir().to_path_buf();
    drop(alice);
    let secrets = kintsugi_tests::hostile::secrets_of(&dir);
    let alice = kintsugi_tests::hostile::reopen(&dir);
    let doc = alice.doc_id(DocKind::Agreement);
    let mut conn = alice.connect().await.expect("connect");
    let head = conn
        .sync
        .pull(PullRequest {
            doc_id: doc.as_bytes().to_vec(),
            after_seq: 0,
            limit: 1,
            with_candidate: false,
        })
        .await
        .expect("pull")
        .into_inner()
        .head_seq;
    let empty = kintsugi_core::docs::genesis(DocKind::Agreement);
    let sealed = kintsugi_tests::hostile::sealed_snapshot(
        &secrets,
        DocKind::Agreement,
        &empty,
        head,
        500_000,
    );
    conn.sync
        .put_snapshot(kintsugi_proto::v1::PutSnapshotRequest {
            doc_id: doc.as_bytes().to_vec(),
            covers_seq: head,
            envelope: Some(sealed),
        })
        .await
        .expect("the blind server takes it as a candidate");

    // Bob's next sync audits the candidate against the log it claims to cover, and rejects it.
    let report = bob.sync().await.expect("sync");
    assert_eq!(report.rejected_snapshots, 1, "the omission is detected");
    let report = alice.sync().await.expect("sync");
    assert_eq!(report.rejected_snapshots, 0, "nothing left to reject");

    // A month later nothing was pruned against it, and a new device receives everything.
    clock.advance(std::time::Duration::from_secs(31 * 24 * 60 * 60));
    world.server.start_again().await;
    let tablet = world
        .join(&alice, CodeKind::Device, "alice-tablet", "Alice")
        .await;
    tablet.sync().await.expect("tablet sync");
    assert_eq!(tablet.boundaries().expect("list").len(), 6, "nothing lost");
}
