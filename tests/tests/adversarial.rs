//! Adversarial calls against a running server: missing, random and revoked tokens on every
//! call, another space's document, a moved envelope, and a flood of garbage requests, after
//! which the server still serves the partners.

use kintsugi_core::envelope::{EnvelopeContext, seal};
use kintsugi_core::store::LocalStore;
use kintsugi_core::{CodeKind, DocKind};
use kintsugi_proto::v1::space_service_client::SpaceServiceClient;
use kintsugi_proto::v1::sync_service_client::SyncServiceClient;
use kintsugi_proto::v1::{
    Audience, CreateInviteRequest, EnvelopeKind, LeaveSpaceRequest, ListDevicesRequest,
    PullRequest, PushRequest, PutSnapshotRequest, RevokeDeviceRequest, SubscribeRequest,
};
use kintsugi_tests::World;
use tonic::transport::Channel;
use tonic::{Code, Request};

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Calls every authenticated method with `token` and returns each status code.
async fn every_call(channel: Channel, token: Option<&str>) -> Vec<(&'static str, Code)> {
    let mut sync = SyncServiceClient::new(channel.clone());
    let mut space = SpaceServiceClient::new(channel);
    let doc = vec![1u8; 16];
    let code =
        |r: Result<tonic::Response<_>, tonic::Status>| r.map_or_else(|s| s.code(), |_| Code::Ok);
    vec![
        (
            "Push",
            code(
                sync.push(with_token(
                    PushRequest {
                        doc_id: doc.clone(),
                        audience: 1,
                        envelopes: vec![],
                    },
                    token,
                ))
                .await
                .map(|r| r.map(drop)),
            ),
        ),
        (
            "Pull",
            code(
                sync.pull(with_token(
                    PullRequest {
                        doc_id: doc.clone(),
                        after_seq: 0,
                        limit: 1,
                        with_candidate: false,
                    },
                    token,
                ))
                .await
                .map(|r| r.map(drop)),
            ),
        ),
        (
            "Subscribe",
            code(
                sync.subscribe(with_token(SubscribeRequest { cursors: vec![] }, token))
                    .await
                    .map(|r| r.map(drop)),
            ),
        ),
        (
            "PutSnapshot",
            code(
                sync.put_snapshot(with_token(
                    PutSnapshotRequest {
                        doc_id: doc.clone(),
                        covers_seq: 1,
                        envelope: None,
                    },
                    token,
                ))
                .await
                .map(|r| r.map(drop)),
            ),
        ),
        (
            "CreateInvite",
            code(
                space
                    .create_invite(with_token(CreateInviteRequest { kind: 1 }, token))
                    .await
                    .map(|r| r.map(drop)),
            ),
        ),
        (
            "ListDevices",
            code(
                space
                    .list_devices(with_token(ListDevicesRequest {}, token))
                    .await
                    .map(|r| r.map(drop)),
            ),
        ),
        (
            "RevokeDevice",
            code(
                space
                    .revoke_device(with_token(
                        RevokeDeviceRequest {
                            device_id: doc.clone(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| r.map(drop)),
            ),
        ),
        (
            "LeaveSpace",
            code(
                space
                    .leave_space(with_token(LeaveSpaceRequest {}, token))
                    .await
                    .map(|r| r.map(drop)),
            ),
        ),
    ]
}

async fn channel(world: &World) -> Channel {
    Channel::from_shared(world.server.url())
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

#[tokio::test]
async fn every_call_without_a_valid_token_is_unauthenticated() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let lost = world
        .join(&alice, CodeKind::Device, "lost-phone", "Alice")
        .await;
    let lost_device = lost.identity().device.to_string();
    drop(lost);
    // A thief with the phone reads the token out of its store; revocation must make it useless.
    let store = LocalStore::open(&world.home("lost-phone")).expect("the phone's store");
    let lost_token = store.identity().expect("identity").expect("enrolled").token;
    drop(store);
    alice.revoke(&lost_device).await.expect("revoke");
    let random = "ab".repeat(32);
    for (what, token) in [
        ("no token", None),
        ("a random token", Some(random.as_str())),
        ("a garbled header", Some("not hex")),
        ("a revoked device's token", Some(lost_token.as_str())),
    ] {
        for (call, code) in every_call(channel(&world).await, token).await {
            assert_eq!(code, Code::Unauthenticated, "{call} with {what}");
        }
    }
}

#[tokio::test]
async fn another_spaces_documents_are_out_of_reach() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice.add_boundary("ours only", "general").expect("add");
    alice.sync().await.expect("sync");
    let stranger = world.init("Mallory").await;
    let mut conn = stranger.connect().await.expect("connect");
    for doc in [
        alice.doc_id(DocKind::Agreement),
        alice.doc_id(DocKind::Journal),
        bob.doc_id(DocKind::Journal),
    ] {
        let page = conn
            .sync
            .pull(PullRequest {
                doc_id: doc.as_bytes().to_vec(),
                after_seq: 0,
                limit: 100,
                with_candidate: false,
            })
            .await
            .expect("a pull in one's own space")
            .into_inner();
        assert!(
            page.envelopes.is_empty() && page.snapshot.is_none(),
            "documents are keyed by space: nothing of another space is visible"
        );
    }
    let devices = stranger.devices().await.expect("devices");
    assert_eq!(devices.len(), 1, "only the stranger's own device is listed");
}

#[tokio::test]
async fn a_moved_envelope_is_refused_and_the_store_is_unchanged() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice
        .check_in(
            Some("2026-W05"),
            kintsugi_core::Answers {
                trust: 4,
                conversations: 1,
                closeness: None,
                forgiveness: None,
                note: String::new(),
            },
        )
        .expect("check in");
    alice.sync().await.expect("sync");
    bob.sync().await.expect("sync");
    let before = bob.heads(DocKind::Agreement).expect("heads");

    // Take Alice's genuine check-in envelope and append it to the agreement's log.
    let mut conn = alice.connect().await.expect("connect");
    let checkins = alice.doc_id(DocKind::Checkins).as_bytes().to_vec();
    let page = conn
        .sync
        .pull(PullRequest {
            doc_id: checkins,
            after_seq: 0,
            limit: 100,
            with_candidate: false,
        })
        .await
        .expect("pull")
        .into_inner();
    let mut moved = page.envelopes.last().expect("an envelope").clone();
    moved.client_seq = 9_999;
    moved.server_seq = 0;
    let agreement = alice.doc_id(DocKind::Agreement).as_bytes().to_vec();
    conn.sync
        .push(PushRequest {
            doc_id: agreement,
            audience: Audience::Shared as i32,
            envelopes: vec![moved],
        })
        .await
        .expect("the blind server cannot tell");
    let report = bob.sync().await.expect("the sync goes on");
    let aside: Vec<_> = report
        .set_aside
        .iter()
        .map(|a| (a.doc, a.device.clone()))
        .collect();
    assert_eq!(aside, [("agreement", alice.identity().device.to_string())]);
    assert!(
        report.set_aside[0].reason.contains("failed authentication"),
        "{:?}",
        report.set_aside
    );
    assert_eq!(bob.heads(DocKind::Agreement).expect("heads"), before);
    assert_eq!(
        bob.set_aside().expect("kept").len(),
        1,
        "kept for inspection"
    );
}

#[tokio::test]
async fn ten_thousand_garbage_requests_leave_the_server_serving_others() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    // The attacker is a device of the space (the hardest case: it holds a valid token).
    let attacker = world
        .join(&alice, CodeKind::Device, "attacker", "Alice")
        .await;
    let mut conn = attacker.connect().await.expect("connect");
    let ctx = |seq| EnvelopeContext {
        space: attacker.identity().space,
        doc: attacker.doc_id(DocKind::Agreement),
        device: attacker.identity().device,
        client_seq: seq,
        kind: EnvelopeKind::Change,
        epoch: 0,
    };
    let key = kintsugi_core::keys::SecretKey::random();
    let signer = kintsugi_core::key_store::DeviceSecrets::generate();
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..10_000u64 {
        let doc_id = match i % 4 {
            0 => vec![],
            1 => vec![7; 15],
            _ => vec![(i % 251) as u8; 16],
        };
        let mut envelope = seal(&key, &signer, &ctx(i + 1), b"garbage");
        match i % 5 {
            0 => envelope.nonce.truncate(3),
            1 => envelope.device_id = vec![0; 16],
            2 => envelope.kind = 42,
            3 => envelope.ciphertext.clear(),
            _ => envelope.client_seq = 0,
        }
        let push = PushRequest {
            doc_id,
            audience: (i % 4) as i32,
            envelopes: vec![envelope],
        };
        let code = conn
            .sync
            .push(push)
            .await
            .map_or_else(|s| s.code(), |_| Code::Ok);
        *codes.entry(format!("{code:?}")).or_insert(0) += 1;
    }
    assert!(
        !codes.contains_key("Ok"),
        "a malformed push was stored: {codes:?}"
    );
    assert!(
        !codes.contains_key("Internal") && !codes.contains_key("Unknown"),
        "{codes:?}"
    );
    eprintln!("10,000 garbage pushes: {codes:?}");
    alice
        .add_boundary("Still here after the garbage", "general")
        .expect("add");
    alice.sync().await.expect("alice still syncs");
    bob.sync().await.expect("bob still syncs");
    assert_eq!(bob.boundaries().expect("list").len(), 1);
}
