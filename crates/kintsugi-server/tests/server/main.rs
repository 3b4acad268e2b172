//! End-to-end tests of the sync server: `run` on 127.0.0.1:0, real gRPC over loopback.
//!
//! One test binary with a module per concern (TLS, limits, admin, erasure, observability) and
//! shared helpers in `support`. Each test names the promise it checks. They assert behaviour,
//! never timings.

#![allow(clippy::expect_used)]

mod admin;
mod erasure;
mod limits;
mod observability;
mod recovery;
mod support;
mod tls;

use kintsugi_proto::v1::subscribe_event::Event;
use kintsugi_proto::v1::{
    AcceptInviteRequest, Audience, CreateInviteRequest, InviteKind, ListDevicesRequest,
    PullRequest, RevokeDeviceRequest, SubscribeRequest,
};
use kintsugi_server::ServerError;
use kintsugi_server::store::{AdminStore, SledStore};
use kintsugi_server::testing::TestServer;
use support::{Clients, private_doc, push_request, random16};
use tokio_stream::StreamExt;

fn pull(doc_id: &[u8], after_seq: u64) -> PullRequest {
    PullRequest {
        doc_id: doc_id.to_vec(),
        after_seq,
        limit: 0,
        with_candidate: false,
    }
}

#[tokio::test]
async fn partners_pair_and_exchange_a_shared_change() {
    let mut server = TestServer::start().await;
    let mut alex = server.create_space().await;
    let sam = server.invite(&alex, InviteKind::Partner).await;
    assert_eq!(sam.space_id, alex.space_id);
    assert_ne!(sam.member_id, alex.member_id, "a partner is a new member");

    let agreement = random16();
    let envelope = alex.change(b"sealed boundary");
    let pushed = alex
        .sync()
        .push(push_request(&agreement, Audience::Shared, vec![envelope]))
        .await
        .expect("pushed")
        .into_inner();
    assert_eq!(pushed.server_seqs, [1]);

    let pulled = sam
        .sync()
        .pull(pull(&agreement, 0))
        .await
        .expect("pulled")
        .into_inner();
    assert_eq!(pulled.head_seq, 1);
    assert_eq!(pulled.envelopes.len(), 1);
    assert_eq!(pulled.envelopes[0].ciphertext, b"sealed boundary");
    assert_eq!(pulled.envelopes[0].device_id, alex.device_id);

    let devices = sam
        .space()
        .list_devices(ListDevicesRequest {})
        .await
        .expect("listed");
    let devices = devices.into_inner().devices;
    assert_eq!(devices.len(), 2);
    let alex_phone = devices
        .iter()
        .find(|d| d.device_id == alex.device_id)
        .expect("listed");
    assert_eq!(
        alex_phone.sealed_member_name, b"sealed: Alex",
        "names are returned as sealed"
    );
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn retried_push_is_stored_once() {
    let mut server = TestServer::start().await;
    let mut alex = server.create_space().await;
    let doc = random16();
    let batch = vec![alex.change(b"one"), alex.change(b"two")];
    let request = push_request(&doc, Audience::Shared, batch);
    let first = alex
        .sync()
        .push(request.clone())
        .await
        .expect("pushed")
        .into_inner();
    let retry = alex
        .sync()
        .push(request)
        .await
        .expect("retried")
        .into_inner();
    assert_eq!(first.server_seqs, [1, 2]);
    assert_eq!(retry.server_seqs, [1, 2], "a retry gets the same seqs back");
    let pulled = alex
        .sync()
        .pull(pull(&doc, 0))
        .await
        .expect("pulled")
        .into_inner();
    assert_eq!(pulled.envelopes.len(), 2, "nothing is stored twice");
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn private_journal_is_permission_denied_for_the_partner() {
    let mut server = TestServer::start().await;
    let mut alex = server.create_space().await;
    let mut sam = server.invite(&alex, InviteKind::Partner).await;
    let journal = private_doc();
    let entry = alex.change(b"sealed journal entry");
    alex.sync()
        .push(push_request(&journal, Audience::Private, vec![entry]))
        .await
        .expect("pushed");
    let denied = sam
        .sync()
        .pull(pull(&journal, 0))
        .await
        .expect_err("denied");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let write = push_request(&journal, Audience::Private, vec![sam.change(b"x")]);
    let denied = sam.sync().push(write).await.expect_err("denied");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn revoked_device_is_unauthenticated() {
    let mut server = TestServer::start().await;
    let alex = server.create_space().await;
    let laptop = server.invite(&alex, InviteKind::Device).await;
    assert_eq!(
        laptop.member_id, alex.member_id,
        "a linked device belongs to the inviter"
    );
    let doc = random16();
    laptop
        .sync()
        .pull(pull(&doc, 0))
        .await
        .expect("the laptop works before");

    let revoke = RevokeDeviceRequest {
        device_id: laptop.device_id.clone(),
    };
    alex.space().revoke_device(revoke).await.expect("revoked");
    let refused = laptop
        .sync()
        .pull(pull(&doc, 0))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(
        refused.message().starts_with("this device was revoked"),
        "{}",
        refused.message()
    );

    let devices = alex
        .space()
        .list_devices(ListDevicesRequest {})
        .await
        .expect("listed");
    let laptop_entry = devices
        .into_inner()
        .devices
        .into_iter()
        .find(|d| d.device_id == laptop.device_id)
        .expect("a revoked device stays listed");
    assert!(laptop_entry.revoked);

    let anonymous = alex
        .anonymous_sync()
        .pull(pull(&doc, 0))
        .await
        .expect_err("refused");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    assert!(anonymous.message().starts_with("missing bearer token"));
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn invite_codes_are_single_use_and_checked() {
    let mut server = TestServer::start().await;
    let alex = server.create_space().await;
    let invite = alex
        .space()
        .create_invite(CreateInviteRequest {
            kind: InviteKind::Partner as i32,
        })
        .await
        .expect("invite")
        .into_inner();
    let kit = support::recovery_kit();
    let accept = |secret: Vec<u8>| AcceptInviteRequest {
        invite_id: invite.invite_id.clone(),
        secret,
        sealed_member_name: vec![],
        sealed_device_name: vec![],
        recovery_key: support::public_key(&kit),
    };
    let mut pairing = server.pairing().await;
    let wrong = pairing
        .accept_invite(accept(vec![0; 32]))
        .await
        .expect_err("wrong");
    assert_eq!(wrong.code(), tonic::Code::PermissionDenied);
    pairing
        .accept_invite(accept(invite.secret.clone()))
        .await
        .expect("accepted");
    let reused = pairing
        .accept_invite(accept(invite.secret.clone()))
        .await
        .expect_err("used");
    assert_eq!(reused.code(), tonic::Code::NotFound);
    let third = alex
        .space()
        .create_invite(CreateInviteRequest {
            kind: InviteKind::Partner as i32,
        })
        .await
        .expect_err("two partners already");
    assert_eq!(third.code(), tonic::Code::FailedPrecondition);
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn subscribe_delivers_a_live_push_to_the_other_device() {
    let mut server = TestServer::start().await;
    let mut alex = server.create_space().await;
    let sam = server.invite(&alex, InviteKind::Partner).await;
    // The stream is returned only after the server joined the space's fan-out.
    let mut stream = sam
        .sync()
        .subscribe(SubscribeRequest { cursors: vec![] })
        .await
        .expect("subscribed")
        .into_inner();
    let doc = random16();
    let envelope = alex.change(b"live change");
    alex.sync()
        .push(push_request(&doc, Audience::Shared, vec![envelope]))
        .await
        .expect("pushed");
    let delivered = loop {
        let event = stream
            .next()
            .await
            .expect("the stream is open")
            .expect("no error");
        if let Some(Event::Envelopes(envelopes)) = event.event {
            break envelopes;
        }
    };
    assert_eq!(delivered.doc_id, doc);
    assert_eq!(delivered.envelopes.len(), 1);
    assert_eq!(delivered.envelopes[0].ciphertext, b"live change");
    assert_eq!(delivered.envelopes[0].server_seq, 1);
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_leaves_the_data_on_disk() {
    let mut server = TestServer::start().await;
    let mut alex = server.create_space().await;
    let doc = random16();
    let envelope = alex.change(b"kept");
    alex.sync()
        .push(push_request(&doc, Audience::Shared, vec![envelope]))
        .await
        .expect("pushed");
    let mut stream = alex
        .sync()
        .subscribe(SubscribeRequest { cursors: vec![] })
        .await
        .expect("subscribed")
        .into_inner();
    stream.next().await.expect("catch-up").expect("no error");

    server
        .stop()
        .await
        .expect("run returns once the stream ended");
    while let Some(event) = stream.next().await {
        if let Err(status) = event {
            assert_eq!(status.code(), tonic::Code::Unavailable);
        }
    }
    let store = SledStore::open(server.data()).expect("the folder is released and opens");
    let stats = store.stats().expect("stats");
    assert_eq!(
        (
            stats.spaces,
            stats.devices,
            stats.documents,
            stats.envelopes
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn plaintext_off_loopback_is_refused() {
    let result = TestServer::builder()
        .listen("0.0.0.0:0".parse().expect("an address"))
        .start_and_stop()
        .await;
    assert!(
        matches!(result, Err(ServerError::PlaintextNotLoopback(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_folder_is_refused() {
    let mut server = TestServer::start().await;
    // The first server has the folder open once it answered a call.
    server.create_space().await;
    let result = TestServer::builder()
        .data(server.data())
        .start_and_stop()
        .await;
    let error = result.expect_err("refused");
    assert!(matches!(error, ServerError::DataDirInUse(_)), "{error:?}");
    assert!(error.to_string().starts_with("another server is using"));
    server.stop().await.expect("a clean stop");
}
