//! Handler tests for `SyncService` on a scratch store with a manual clock.

use std::time::{Duration, Instant};

use kintsugi_proto::v1::InviteKind;
use kintsugi_proto::v1::subscribe_event::Event;
use tokio_stream::StreamExt;

use super::*;
use crate::fanout::SpaceEvent;
use crate::testing::handlers::{Harness, founder, gated_harness, harness, invite_and_join};

fn change(device: AuthedDevice, client_seq: u64, text: &str) -> proto::Envelope {
    proto::Envelope {
        device_id: device.device_id.to_vec(),
        client_seq,
        kind: proto::EnvelopeKind::Change as i32,
        nonce: vec![9; 24],
        ciphertext: text.as_bytes().to_vec(),
        server_seq: 0,
        signature: vec![5; 64],
        key_epoch: 3,
    }
}

fn push_request(
    doc: DocId,
    audience: proto::Audience,
    envelopes: Vec<proto::Envelope>,
) -> proto::PushRequest {
    proto::PushRequest {
        doc_id: doc.to_vec(),
        audience: audience as i32,
        envelopes,
    }
}

fn pull_request(doc: DocId, after_seq: u64, limit: u32) -> proto::PullRequest {
    proto::PullRequest {
        doc_id: doc.to_vec(),
        after_seq,
        limit,
        with_candidate: false,
    }
}

async fn push(
    api: &SyncApi,
    who: AuthedDevice,
    doc: DocId,
    range: std::ops::RangeInclusive<u64>,
) -> Vec<u64> {
    let envelopes = range
        .map(|i| change(who, i, &format!("change {i}")))
        .collect();
    let request = push_request(doc, proto::Audience::Shared, envelopes);
    api.push(who, request).await.expect("pushed").server_seqs
}

/// Endorses the document's current candidate snapshot as `who`'s member, as a device does
/// after its audit passes. Returns whether it was endorsed.
async fn endorse(api: &SyncApi, who: AuthedDevice, doc: DocId) -> bool {
    let request = proto::PullRequest {
        with_candidate: true,
        ..pull_request(doc, 0, 1)
    };
    let page = api.pull(who, request).await.expect("pulled");
    let Some(candidate) = page.candidate else {
        return false;
    };
    let request = proto::EndorseSnapshotRequest {
        doc_id: doc.to_vec(),
        covers_seq: candidate.covers_seq,
        content_hash: candidate.content_hash,
    };
    api.endorse_snapshot(who, request)
        .await
        .expect("endorsed")
        .endorsed
}

fn code(result: Result<impl std::fmt::Debug, ServiceError>) -> tonic::Code {
    Status::from(result.expect_err("refused")).code()
}

fn seqs(response: &proto::PullResponse) -> Vec<u64> {
    response.envelopes.iter().map(|e| e.server_seq).collect()
}

#[tokio::test]
async fn pushed_changes_come_back_in_order_and_paged() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let doc = DocId::random_of(Audience::Shared);
    assert_eq!(push(&api, me, doc, 1..=3).await, [1, 2, 3]);
    assert_eq!(push(&api, me, doc, 4..=5).await, [4, 5]);
    let page = api.pull(me, pull_request(doc, 0, 2)).await.expect("pulled");
    assert_eq!(
        (seqs(&page), page.more, page.head_seq),
        (vec![1, 2], true, 5)
    );
    let page = api.pull(me, pull_request(doc, 2, 0)).await.expect("pulled");
    assert_eq!((seqs(&page), page.more), (vec![3, 4, 5], false));
    assert_eq!(page.envelopes[0].ciphertext, b"change 3");
    assert_eq!(page.envelopes[0].kind, proto::EnvelopeKind::Change as i32);
    let relayed = &page.envelopes[0];
    assert_eq!(
        (relayed.signature.as_slice(), relayed.key_epoch),
        (&[5; 64][..], 3),
        "the signature and the key epoch come back as pushed"
    );
    let unknown = api
        .pull(me, pull_request(DocId::random_of(Audience::Shared), 0, 0))
        .await
        .expect("pulled");
    assert_eq!(unknown, proto::PullResponse::default());
}

#[tokio::test]
async fn retried_push_is_stored_once() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let doc = DocId::random_of(Audience::Shared);
    assert_eq!(push(&api, me, doc, 1..=2).await, [1, 2]);
    assert_eq!(push(&api, me, doc, 1..=3).await, [1, 2, 3]);
    let page = api.pull(me, pull_request(doc, 0, 0)).await.expect("pulled");
    assert_eq!(seqs(&page), [1, 2, 3]);
    let reused = push_request(
        doc,
        proto::Audience::Shared,
        vec![change(me, 2, "different")],
    );
    assert_eq!(code(api.push(me, reused).await), tonic::Code::AlreadyExists);
}

#[tokio::test]
async fn malformed_pushes_are_refused_with_the_problem_named() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let other = founder(&h).await;
    let doc = DocId::random_of(Audience::Shared);
    let refuse = |request: proto::PushRequest| {
        let api = api.clone();
        async move { Status::from(api.push(me, request).await.expect_err("refused")) }
    };
    let shared = proto::Audience::Shared;
    let foreign = refuse(push_request(doc, shared, vec![change(other, 1, "x")])).await;
    assert_eq!(foreign.code(), tonic::Code::PermissionDenied);
    let mut short_nonce = change(me, 1, "x");
    short_nonce.nonce.pop();
    let status = refuse(push_request(
        doc,
        shared,
        vec![change(me, 2, "x"), short_nonce],
    ))
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "envelope 1: nonce must be 24 bytes, got 23"
    );
    let status = refuse(push_request(doc, shared, vec![])).await;
    assert!(
        status
            .message()
            .starts_with("a push carries 1 to 1000 envelopes")
    );
    let status = refuse(push_request(
        doc,
        proto::Audience::Unspecified,
        vec![change(me, 1, "x")],
    ))
    .await;
    assert!(status.message().starts_with("audience must be"));
    let mut zero = change(me, 0, "x");
    let status = refuse(push_request(doc, shared, vec![zero.clone()])).await;
    assert!(status.message().contains("client_seq must be at least 1"));
    zero.client_seq = 1;
    zero.kind = proto::EnvelopeKind::Snapshot as i32;
    let status = refuse(push_request(doc, shared, vec![zero])).await;
    assert!(
        status
            .message()
            .contains("kind must be ENVELOPE_KIND_CHANGE")
    );
    let empty = change(me, 1, "");
    let status = refuse(push_request(doc, shared, vec![empty])).await;
    assert!(status.message().contains("ciphertext is empty"));
    let mut huge = change(me, 1, "");
    huge.ciphertext = vec![1; h.state.config.max_envelope_bytes + 1];
    let status = refuse(push_request(doc, shared, vec![huge])).await;
    assert!(status.message().contains("over the limit"));
    let page = api.pull(me, pull_request(doc, 0, 0)).await.expect("pulled");
    assert!(
        page.envelopes.is_empty(),
        "nothing of a refused push is stored"
    );
}

#[tokio::test]
async fn private_journal_never_reaches_partner() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let partner = invite_and_join(&h, me, InviteKind::Partner).await;
    let journal = DocId::random_of(Audience::Private);
    let request = push_request(
        journal,
        proto::Audience::Private,
        vec![change(me, 1, "dear diary")],
    );
    api.push(me, request).await.expect("pushed");
    assert_eq!(
        code(api.pull(partner, pull_request(journal, 0, 0)).await),
        tonic::Code::PermissionDenied
    );
    let theirs = push_request(
        journal,
        proto::Audience::Private,
        vec![change(partner, 1, "x")],
    );
    assert_eq!(
        code(api.push(partner, theirs).await),
        tonic::Code::PermissionDenied
    );
    let snapshot = proto::PutSnapshotRequest {
        doc_id: journal.to_vec(),
        covers_seq: 1,
        envelope: Some(proto::Envelope {
            kind: proto::EnvelopeKind::Snapshot as i32,
            ..change(partner, 2, "x")
        }),
    };
    assert_eq!(
        code(api.put_snapshot(partner, snapshot).await),
        tonic::Code::PermissionDenied
    );
    let mine = push_request(journal, proto::Audience::Shared, vec![change(me, 2, "x")]);
    let status = Status::from(api.push(me, mine).await.expect_err("audience is fixed"));
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().contains("is private: its id says so"),
        "{status}"
    );
    let laptop = invite_and_join(&h, me, InviteKind::Device).await;
    let page = api
        .pull(laptop, pull_request(journal, 0, 0))
        .await
        .expect("my other device reads it");
    assert_eq!(seqs(&page), [1]);
}

fn snapshot_request(
    who: AuthedDevice,
    doc: DocId,
    covers_seq: u64,
    client_seq: u64,
) -> proto::PutSnapshotRequest {
    let mut envelope = change(who, client_seq, "the whole document");
    envelope.kind = proto::EnvelopeKind::Snapshot as i32;
    envelope.key_epoch = 7;
    proto::PutSnapshotRequest {
        doc_id: doc.to_vec(),
        covers_seq,
        envelope: Some(envelope),
    }
}

#[tokio::test]
async fn pull_behind_pruned_entries_starts_with_the_snapshot() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let doc = DocId::random_of(Audience::Shared);
    push(&api, me, doc, 1..=5).await;
    api.put_snapshot(me, snapshot_request(me, doc, 3, 100))
        .await
        .expect("stored");
    assert!(endorse(&api, me, doc).await);
    let page = api.pull(me, pull_request(doc, 0, 0)).await.expect("pulled");
    assert!(page.snapshot.is_none(), "within retention the log is whole");
    assert_eq!(seqs(&page), [1, 2, 3, 4, 5]);

    h.clock.advance(Duration::from_secs(31 * 24 * 60 * 60));
    api.put_snapshot(me, snapshot_request(me, doc, 4, 101))
        .await
        .expect("stored");
    // The first snapshot (covers 3) stood its window: it serves now and 1..=3 are pruned. The
    // new one (covers 4) only waits as the candidate; a device behind the pruned part gets
    // the proven snapshot and every entry after it, 4 included.
    let page = api.pull(me, pull_request(doc, 2, 0)).await.expect("pulled");
    let snapshot = page.snapshot.as_ref().expect("the snapshot comes first");
    assert_eq!(snapshot.covers_seq, 3);
    let envelope = snapshot.envelope.as_ref().expect("an envelope");
    assert_eq!(envelope.kind, proto::EnvelopeKind::Snapshot as i32);
    assert_eq!(envelope.client_seq, 100);
    assert_eq!(
        (envelope.signature.as_slice(), envelope.key_epoch),
        (&[5; 64][..], 7)
    );
    assert_eq!((seqs(&page), page.head_seq), (vec![4, 5], 5));
    let page = api.pull(me, pull_request(doc, 4, 0)).await.expect("pulled");
    assert!(page.snapshot.is_none());
    assert_eq!(seqs(&page), [5]);
    let beyond = api
        .put_snapshot(me, snapshot_request(me, doc, 9, 102))
        .await;
    assert_eq!(code(beyond), tonic::Code::InvalidArgument);
    let unknown = api
        .put_snapshot(
            me,
            snapshot_request(me, DocId::random_of(Audience::Shared), 1, 103),
        )
        .await;
    assert_eq!(code(unknown), tonic::Code::NotFound);
}

/// What the hourly compaction task does.
async fn sweep(h: &Harness) {
    let now = h.state.clock.now();
    let retention = h.state.config.snapshot_retention;
    h.state
        .blocking(move |state| Ok(state.store.compact_all(now, retention)?))
        .await
        .expect("swept");
}

/// The regression: a snapshot that replaced the proven one at once was served to every new
/// device, although it had stood for no time at all. One that omits changes would have made
/// them unrecoverable once the entries it claimed were pruned.
#[tokio::test]
async fn a_new_snapshot_serves_only_after_standing_its_own_window() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let doc = DocId::random_of(Audience::Shared);
    push(&api, me, doc, 1..=6).await;
    api.put_snapshot(me, snapshot_request(me, doc, 2, 100))
        .await
        .expect("stored");
    assert!(endorse(&api, me, doc).await);
    h.clock.advance(Duration::from_secs(31 * 24 * 60 * 60));
    // A bad snapshot that claims to cover everything arrives after the first one's window.
    api.put_snapshot(me, snapshot_request(me, doc, 6, 101))
        .await
        .expect("accepted as the candidate");
    let page = api.pull(me, pull_request(doc, 0, 0)).await.expect("pulled");
    let served = page.snapshot.as_ref().expect("behind the pruned part");
    assert_eq!(
        (served.covers_seq, seqs(&page)),
        (2, vec![3, 4, 5, 6]),
        "the proven snapshot serves; what the candidate claims stays in the log"
    );
    // A third one while the candidate is young is not kept, and restarts nothing.
    h.clock.advance(Duration::from_secs(24 * 60 * 60));
    api.put_snapshot(me, snapshot_request(me, doc, 6, 102))
        .await
        .expect("answered, not kept");
    sweep(&h).await;
    let page = api.pull(me, pull_request(doc, 0, 0)).await.expect("pulled");
    assert_eq!(page.snapshot.as_ref().map(|s| s.covers_seq), Some(2));
    assert_eq!(
        seqs(&page),
        [3, 4, 5, 6],
        "nothing pruned for a young candidate"
    );

    // Once the candidate has stood its own window and the member's device endorsed it, the
    // sweep promotes it and prunes.
    assert!(endorse(&api, me, doc).await);
    h.clock.advance(Duration::from_secs(30 * 24 * 60 * 60));
    sweep(&h).await;
    let page = api.pull(me, pull_request(doc, 0, 0)).await.expect("pulled");
    let served = page.snapshot.as_ref().expect("a snapshot");
    let client_seq = served.envelope.as_ref().map(|e| e.client_seq);
    assert_eq!((served.covers_seq, client_seq), (6, Some(101)));
    assert!(seqs(&page).is_empty());
    assert_eq!(page.head_seq, 6);
}

async fn next_envelopes(stream: &mut super::super::subscribe::EventStream) -> proto::DocEnvelopes {
    loop {
        let event = stream
            .next()
            .await
            .expect("the stream is open")
            .expect("not an error");
        if let Some(Event::Envelopes(envelopes)) = event.event {
            return envelopes;
        }
    }
}

async fn subscribe(
    h: &Harness,
    who: AuthedDevice,
    cursors: Vec<proto::DocCursor>,
) -> super::super::subscribe::EventStream {
    super::super::subscribe::open(h.state.clone(), who, proto::SubscribeRequest { cursors })
        .await
        .expect("subscribed")
}

#[tokio::test]
async fn subscribe_catches_up_from_cursors_then_goes_live() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let partner = invite_and_join(&h, me, InviteKind::Partner).await;
    let agreement = DocId::random_of(Audience::Shared);
    push(&api, me, agreement, 1..=3).await;
    let journal = DocId::random_of(Audience::Private);
    let private = push_request(
        journal,
        proto::Audience::Private,
        vec![change(me, 4, "secret")],
    );
    api.push(me, private).await.expect("pushed");

    let cursor = proto::DocCursor {
        doc_id: agreement.to_vec(),
        after_seq: 1,
    };
    let mut stream = subscribe(&h, partner, vec![cursor]).await;
    let caught_up = next_envelopes(&mut stream).await;
    assert_eq!(caught_up.doc_id, agreement.to_vec());
    let got: Vec<u64> = caught_up.envelopes.iter().map(|e| e.server_seq).collect();
    assert_eq!(got, [2, 3], "catch-up starts after the cursor");

    let private = push_request(
        journal,
        proto::Audience::Private,
        vec![change(me, 5, "more secret")],
    );
    api.push(me, private).await.expect("pushed");
    push(&api, me, agreement, 6..=6).await;
    let live = next_envelopes(&mut stream).await;
    assert_eq!(
        live.doc_id,
        agreement.to_vec(),
        "the private journal is never delivered"
    );
    assert_eq!(
        live.envelopes
            .iter()
            .map(|e| e.server_seq)
            .collect::<Vec<_>>(),
        [4]
    );
}

#[tokio::test]
async fn subscribe_ends_on_shutdown_and_on_revocation() {
    let h = harness();
    let me = founder(&h).await;
    let laptop = invite_and_join(&h, me, InviteKind::Device).await;
    let mut stream = subscribe(&h, laptop, vec![]).await;
    let spaces = crate::service::SpaceApi::new(h.state.clone());
    let revoke = proto::RevokeDeviceRequest {
        device_id: laptop.device_id.to_vec(),
    };
    spaces.revoke_device(me, revoke).await.expect("revoked");
    let ended = stream
        .next()
        .await
        .expect("an event")
        .expect_err("an error");
    assert_eq!(ended.code(), tonic::Code::Unauthenticated);
    assert!(stream.next().await.is_none());

    let mut stream = subscribe(&h, me, vec![]).await;
    h.stop.send(true).expect("the stream task listens");
    let ended = stream
        .next()
        .await
        .expect("an event")
        .expect_err("an error");
    assert_eq!(ended.code(), tonic::Code::Unavailable);
    assert!(stream.next().await.is_none());
}

/// The envelope `change(who, client_seq, "change N")` as the store holds it.
fn stored_change(who: AuthedDevice, client_seq: u64) -> crate::store::Envelope {
    crate::store::Envelope {
        device_id: who.device_id,
        client_seq,
        nonce: vec![9; 24],
        ciphertext: format!("change {client_seq}").into_bytes(),
        signature: vec![5; 64],
        key_epoch: 3,
    }
}

/// Appends like a push in flight does, without making it durable or relaying it.
fn append_in_flight(
    h: &Harness,
    who: AuthedDevice,
    doc: DocId,
    client_seq: u64,
) -> crate::store::Appended {
    h.state
        .store
        .append_envelopes(AppendEnvelopes {
            space_id: who.space_id,
            doc_id: doc,
            audience: Audience::Shared,
            member_id: who.member_id,
            envelopes: vec![stored_change(who, client_seq)],
            now: h.state.clock.now(),
            quota_bytes: u64::MAX,
            expect_head: None,
        })
        .expect("appended")
}

const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

#[tokio::test]
async fn pull_waits_until_what_it_serves_is_durable() {
    let (h, gate) = gated_harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let doc = DocId::random_of(Audience::Shared);
    push(&api, me, doc, 1..=2).await;
    gate.close();
    append_in_flight(&h, me, doc, 3);
    let mut pulling = tokio::spawn({
        let api = api.clone();
        async move { api.pull(me, pull_request(doc, 2, 0)).await }
    });
    tokio::select! {
        early = &mut pulling => panic!("pull served seq 3 before it was durable: {early:?}"),
        () = gate.requested() => {}
    }
    gate.open().await;
    let page = pulling.await.expect("the task").expect("pulled");
    assert_eq!(seqs(&page), [3]);
}

#[tokio::test]
async fn subscribe_catch_up_waits_until_what_it_sends_is_durable() {
    let (h, gate) = gated_harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let doc = DocId::random_of(Audience::Shared);
    push(&api, me, doc, 1..=1).await;
    gate.close();
    append_in_flight(&h, me, doc, 2);
    let mut stream = subscribe(&h, me, vec![]).await;
    tokio::select! {
        event = stream.next() => panic!("catch-up sent seq 2 before it was durable: {event:?}"),
        () = gate.requested() => {}
    }
    gate.open().await;
    let caught_up = next_envelopes(&mut stream).await;
    let got: Vec<u64> = caught_up.envelopes.iter().map(|e| e.server_seq).collect();
    assert_eq!(got, [1, 2]);
}

#[tokio::test]
async fn subscribe_gap_fill_waits_until_what_it_sends_is_durable() {
    let (h, gate) = gated_harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let doc = DocId::random_of(Audience::Shared);
    push(&api, me, doc, 1..=1).await;
    let cursor = proto::DocCursor {
        doc_id: doc.to_vec(),
        after_seq: 1,
    };
    let mut stream = subscribe(&h, me, vec![cursor]).await;
    gate.close();
    append_in_flight(&h, me, doc, 2);
    let third = append_in_flight(&h, me, doc, 3);
    // Seq 3 is relayed alone (as if its push became durable first): the stream must fill the
    // gap at 2 from the store, and must not send the entries it read before they are durable.
    let event = SpaceEvent::Appended {
        doc_id: doc,
        meta: third.meta,
        envelopes: Arc::new(third.fresh),
        durable_at: Instant::now(),
    };
    h.state.fanout.publish(me.space_id, event);
    tokio::select! {
        event = stream.next() => panic!("the gap was filled before it was durable: {event:?}"),
        () = gate.requested() => {}
    }
    gate.open().await;
    let filled = next_envelopes(&mut stream).await;
    let got: Vec<u64> = filled.envelopes.iter().map(|e| e.server_seq).collect();
    assert_eq!(got, [2, 3]);
}

/// The regression: a client that dropped the connection after the append but before the
/// reply cancelled the handler, so the change was stored but never relayed; the retry was all
/// duplicates and relayed nothing either, and the partner's live stream never got it.
#[tokio::test]
async fn a_push_cancelled_before_it_was_durable_still_reaches_subscribers() {
    let (h, gate) = gated_harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let partner = invite_and_join(&h, me, InviteKind::Partner).await;
    let doc = DocId::random_of(Audience::Shared);
    push(&api, me, doc, 1..=1).await;
    let mut stream = subscribe(&h, partner, vec![]).await;
    next_envelopes(&mut stream).await;
    gate.close();
    let pushing = tokio::spawn({
        let api = api.clone();
        async move { push(&api, me, doc, 2..=2).await }
    });
    gate.requested().await;
    pushing.abort();
    assert!(pushing.await.is_err(), "the push was cancelled");
    gate.open().await;
    let live = tokio::time::timeout(PATIENCE, next_envelopes(&mut stream))
        .await
        .expect("the change is relayed although its push was cancelled");
    let got: Vec<u64> = live.envelopes.iter().map(|e| e.server_seq).collect();
    assert_eq!(got, [2]);
}

#[tokio::test]
async fn a_retried_push_relays_what_a_lost_reply_never_relayed() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let partner = invite_and_join(&h, me, InviteKind::Partner).await;
    let doc = DocId::random_of(Audience::Shared);
    push(&api, me, doc, 1..=1).await;
    let mut stream = subscribe(&h, partner, vec![]).await;
    next_envelopes(&mut stream).await;
    // Stored by a push whose handler died before it relayed anything.
    append_in_flight(&h, me, doc, 2);
    assert_eq!(
        push(&api, me, doc, 2..=2).await,
        [2],
        "the retry is a duplicate"
    );
    let live = tokio::time::timeout(PATIENCE, next_envelopes(&mut stream))
        .await
        .expect("the retry relays the change");
    let got: Vec<u64> = live.envelopes.iter().map(|e| e.server_seq).collect();
    assert_eq!(got, [2]);
    assert_eq!(live.envelopes[0].ciphertext, b"change 2");
}

/// The regression: Subscribe authenticates in the interceptor before the stream joins the
/// fan-out, and a revocation published in between never reached the stream.
#[tokio::test]
async fn a_device_revoked_before_its_stream_joined_the_fan_out_is_refused() {
    let h = harness();
    let me = founder(&h).await;
    let laptop = invite_and_join(&h, me, InviteKind::Device).await;
    // The interceptor let `laptop` through; then, before `open` joins the fan-out:
    let revoke = proto::RevokeDeviceRequest {
        device_id: laptop.device_id.to_vec(),
    };
    crate::service::SpaceApi::new(h.state.clone())
        .revoke_device(me, revoke)
        .await
        .expect("revoked");
    let opened = super::super::subscribe::open(
        h.state.clone(),
        laptop,
        proto::SubscribeRequest { cursors: vec![] },
    )
    .await;
    let refused = Status::from(opened.expect_err("a revoked device gets no stream"));
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(refused.message(), crate::auth::REVOKED_DEVICE);
}

/// The memory attack: one device opening stream after stream. A device holds at most
/// `MAX_STREAMS_PER_DEVICE`; the next one ends the oldest, which its client is told.
#[tokio::test]
async fn a_device_holds_a_bounded_number_of_streams() {
    use crate::service::streams::MAX_STREAMS_PER_DEVICE;
    let h = harness();
    let me = founder(&h).await;
    let mut streams = Vec::new();
    for _ in 0..=MAX_STREAMS_PER_DEVICE {
        streams.push(subscribe(&h, me, vec![]).await);
    }
    assert_eq!(h.state.streams.count(me.device_id), MAX_STREAMS_PER_DEVICE);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), streams[0].next())
        .await
        .expect("the oldest stream ends")
        .expect("with a status");
    let status = ended.expect_err("replaced");
    assert_eq!(status.code(), tonic::Code::Aborted, "{status}");
    drop(streams);
    for _ in 0..100 {
        if h.state.streams.count(me.device_id) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.state.streams.count(me.device_id),
        0,
        "ended streams are forgotten"
    );
}

/// A Subscribe naming far more cursors than the device could read is refused before any
/// stream holds them.
#[tokio::test]
async fn a_subscribe_with_more_cursors_than_documents_is_refused() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let doc = DocId::random_of(Audience::Shared);
    push(&api, me, doc, 1..=1).await;
    let cursor = |doc: DocId| proto::DocCursor {
        doc_id: doc.to_vec(),
        after_seq: 0,
    };
    let mut cursors: Vec<_> = (0..16).map(|_| cursor(DocId::random())).collect();
    cursors.push(cursor(doc));
    let _accepted = subscribe(&h, me, cursors.clone()).await;
    cursors.push(cursor(DocId::random()));
    let refused =
        super::super::subscribe::open(h.state.clone(), me, proto::SubscribeRequest { cursors })
            .await;
    let status = Status::from(refused.expect_err("too many cursors"));
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("may read 1 documents"),
        "{status}"
    );
}

/// A stream that named documents carries only those: documents a partner creates by the
/// thousand do not stand in front of the ones the device syncs.
#[tokio::test]
async fn a_subscribe_naming_documents_carries_only_those() {
    let h = harness();
    let api = SyncApi::new(h.state.clone());
    let me = founder(&h).await;
    let partner = invite_and_join(&h, me, InviteKind::Partner).await;
    let (named, junk) = (
        DocId::random_of(Audience::Shared),
        DocId::random_of(Audience::Shared),
    );
    push(&api, partner, junk, 1..=2).await;
    push(&api, me, named, 1..=1).await;
    let cursor = proto::DocCursor {
        doc_id: named.to_vec(),
        after_seq: 0,
    };
    let mut stream = subscribe(&h, me, vec![cursor]).await;
    assert_eq!(next_envelopes(&mut stream).await.doc_id, named.to_vec());
    push(&api, partner, junk, 3..=3).await;
    push(&api, me, named, 2..=2).await;
    let live = next_envelopes(&mut stream).await;
    assert_eq!(
        live.doc_id,
        named.to_vec(),
        "the unnamed document is not carried"
    );
}
