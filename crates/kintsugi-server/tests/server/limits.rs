//! Limits: oversize, over-rate and over-quota calls get the right code and a message naming
//! the limit, while other devices and spaces keep being served.

use kintsugi_proto::v1::{
    AcceptInviteRequest, Audience, CreateSpaceRequest, InviteKind, PullRequest, RevokeDeviceRequest,
};
use kintsugi_server::testing::TestServer;
use kintsugi_server::{PAIRING_MESSAGE_BYTES, RateLimit};
use tonic::Code;

use crate::support::{
    Clients, public_key, push_request, random16, recover_request, recovery_kit, unix_now,
};

fn pull(doc: &[u8]) -> PullRequest {
    PullRequest {
        doc_id: doc.to_vec(),
        after_seq: 0,
        limit: 0,
        with_candidate: false,
    }
}

#[tokio::test]
async fn oversize_envelopes_and_messages_name_their_limit() {
    let mut server = TestServer::builder()
        .config(|config| {
            config.max_envelope_bytes = 1024;
            config.max_message_bytes = 64 * 1024;
        })
        .start()
        .await;
    let mut alex = server.create_space().await;
    let mut sam = server.invite(&alex, InviteKind::Partner).await;
    let doc = random16();
    let big = alex.change(&[1; 2000]);
    let refused = alex
        .sync()
        .push(push_request(&doc, Audience::Shared, vec![big]))
        .await
        .expect_err("too big an envelope");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("2000 bytes, over the limit of 1024"),
        "{}",
        refused.message()
    );
    let many = (0..100).map(|_| alex.change(&[2; 1000])).collect();
    let refused = alex
        .sync()
        .push(push_request(&doc, Audience::Shared, many))
        .await
        .expect_err("too big a message");
    assert_eq!(refused.code(), Code::OutOfRange);
    assert!(refused.message().contains("65536"), "{}", refused.message());
    let fine = sam.change(&[3; 1000]);
    sam.sync()
        .push(push_request(&doc, Audience::Shared, vec![fine]))
        .await
        .expect("the partner is served meanwhile");
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_device_over_its_rate_is_refused_while_others_are_served() {
    let mut server = TestServer::builder()
        .config(|config| {
            config.device_rate = RateLimit {
                per_second: 0.01,
                burst: 5,
            };
        })
        .start()
        .await;
    let alex = server.create_space().await;
    let sam = server.invite(&alex, InviteKind::Partner).await;
    let doc = random16();
    let mut refused = None;
    for _ in 0..10 {
        if let Err(status) = alex.sync().pull(pull(&doc)).await {
            refused = Some(status);
            break;
        }
    }
    let refused = refused.expect("the bucket ran dry");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused
            .message()
            .starts_with("rate limit: this device made too many calls; slow down and retry in "),
        "{}",
        refused.message()
    );
    assert!(refused.message().ends_with(" s"), "{}", refused.message());
    sam.sync()
        .pull(pull(&doc))
        .await
        .expect("another device is served meanwhile");
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn pairing_calls_are_limited_per_address() {
    let mut server = TestServer::builder()
        .config(|config| {
            config.pairing_rate = RateLimit {
                per_second: 0.01,
                burst: 3,
            };
        })
        .start()
        .await;
    let alex = server.create_space().await;
    let mut pairing = server.pairing().await;
    let mut refused = None;
    for _ in 0..5 {
        let request = CreateSpaceRequest {
            space_id: random16(),
            sealed_member_name: vec![],
            sealed_device_name: vec![],
            recovery_key: public_key(&recovery_kit()),
        };
        if let Err(status) = pairing.create_space(request).await {
            refused = Some(status);
            break;
        }
    }
    let refused = refused.expect("the address ran out of pairing calls");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused
            .message()
            .starts_with("rate limit: too many pairing calls from your address; retry in "),
        "{}",
        refused.message()
    );
    let kit = alex.recovery.as_ref().expect("alex's kit");
    let recovery = recover_request(kit, &alex.space_id, &alex.member_id, unix_now());
    let limited = pairing.recover_member(recovery).await.expect_err("limited");
    assert_eq!(
        limited.code(),
        Code::ResourceExhausted,
        "recovery is a pairing call"
    );
    alex.sync()
        .pull(pull(&random16()))
        .await
        .expect("paired devices are not affected");
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_space_over_its_quota_is_refused_while_another_is_served() {
    let mut server = TestServer::builder()
        .config(|config| {
            config.space_quota_bytes = 4096;
        })
        .start()
        .await;
    let mut alex = server.create_space().await;
    let mut other = server.create_space().await;
    let doc = random16();
    let first = alex.change(&[1; 3000]);
    alex.sync()
        .push(push_request(&doc, Audience::Shared, vec![first]))
        .await
        .expect("fits");
    let second = alex.change(&[2; 2000]);
    let refused = alex
        .sync()
        .push(push_request(&doc, Audience::Shared, vec![second]))
        .await
        .expect_err("over quota");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().starts_with(
            "storage quota: this space holds 3024 of 4096 bytes and this change needs 2024 more"
        ),
        "{}",
        refused.message()
    );
    let pulled = alex
        .sync()
        .pull(pull(&doc))
        .await
        .expect("reads still work");
    assert_eq!(pulled.into_inner().envelopes.len(), 1);
    let theirs = other.change(&[3; 3000]);
    other
        .sync()
        .push(push_request(&random16(), Audience::Shared, vec![theirs]))
        .await
        .expect("another space has its own quota");
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn oversized_pairing_and_space_calls_are_refused_and_pairing_still_works() {
    let mut server = TestServer::start().await;
    assert!(
        kintsugi_server::Config::new("unused").max_message_bytes > 15 << 20,
        "the sync services would take this body: only the pairing limit refuses it"
    );
    let mut pairing = server.pairing().await;
    let huge = AcceptInviteRequest {
        invite_id: random16(),
        secret: vec![0; 32],
        sealed_member_name: vec![1; 15 << 20],
        sealed_device_name: vec![],
        recovery_key: vec![],
    };
    let refused = pairing
        .accept_invite(huge)
        .await
        .expect_err("a 15 MiB AcceptInvite");
    assert_eq!(refused.code(), Code::OutOfRange, "{}", refused.message());
    assert!(
        refused
            .message()
            .contains(&format!("the limit is: {PAIRING_MESSAGE_BYTES} bytes")),
        "{}",
        refused.message()
    );
    let alex = server.create_space().await;
    let revoke = RevokeDeviceRequest {
        device_id: vec![2; PAIRING_MESSAGE_BYTES],
    };
    let refused = alex
        .space()
        .revoke_device(revoke)
        .await
        .expect_err("a 64 KiB RevokeDevice");
    assert_eq!(refused.code(), Code::OutOfRange, "{}", refused.message());
    let sam = server.invite(&alex, InviteKind::Partner).await;
    assert_eq!(sam.space_id, alex.space_id, "normal pairing still works");
    server.stop().await.expect("a clean stop");
}
