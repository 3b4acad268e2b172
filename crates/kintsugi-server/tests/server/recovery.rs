//! Recovery kits: a member who lost every device enrols a new one with the kit's signature,
//! the old devices are shut out at once, and everything that is not a fresh signature of the
//! member's current kit is refused without changing anything. Also the key epoch, relayed like
//! the signature.

use kintsugi_proto::v1::subscribe_event::Event;
use kintsugi_proto::v1::{
    Audience, EnvelopeKind, InviteKind, ListDevicesRequest, PullRequest, PutSnapshotRequest,
    RecoverMemberRequest, SetRecoveryKeyRequest, SubscribeRequest,
};
use kintsugi_server::testing::TestServer;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::{
    Clients, TestDevice, public_key, push_request, random16, recover_request, recovery_kit,
    unix_now,
};

fn pull(doc: &[u8]) -> PullRequest {
    PullRequest {
        doc_id: doc.to_vec(),
        after_seq: 0,
        limit: 0,
        with_candidate: true,
    }
}

const NOT_VALID: &str = "this recovery kit is not valid for this space";

/// `device`'s member's recovery request, signed by its kit, issued `age` seconds ago.
fn kit_request(device: &TestDevice, age: i64) -> RecoverMemberRequest {
    let kit = device.recovery.as_ref().expect("the member's kit");
    recover_request(kit, &device.space_id, &device.member_id, unix_now() - age)
}

/// `device` with another token, on a new connection.
async fn with_token(server: &TestServer, device: &TestDevice, token: &str) -> TestDevice {
    TestDevice {
        token: token.to_owned(),
        ..server.reconnect(device).await
    }
}

/// The devices of the space as `device` lists them: (device id, revoked, enrolled_by).
async fn devices(device: &TestDevice) -> Vec<(Vec<u8>, bool, Vec<u8>)> {
    let listed = device
        .space()
        .list_devices(ListDevicesRequest {})
        .await
        .expect("listed")
        .into_inner();
    listed
        .devices
        .into_iter()
        .map(|d| (d.device_id, d.revoked, d.enrolled_by))
        .collect()
}

/// Whether `device`'s token is still taken.
async fn works(device: &TestDevice) -> Result<(), Code> {
    let pulled = device.sync().pull(pull(&random16())).await;
    pulled.map(|_| ()).map_err(|status| status.code())
}

#[tokio::test]
async fn a_recovery_kit_enrols_a_new_first_device_and_shuts_out_the_old_ones() {
    let mut server = TestServer::start().await;
    let alex = server.create_space().await;
    let laptop = server.invite(&alex, InviteKind::Device).await;
    let sam = server.invite(&alex, InviteKind::Partner).await;
    let mut laptop_stream = laptop
        .sync()
        .subscribe(SubscribeRequest { cursors: vec![] })
        .await
        .expect("subscribed")
        .into_inner();
    let recovered = server
        .pairing()
        .await
        .recover_member(kit_request(&alex, 0))
        .await
        .expect("recovered")
        .into_inner();
    assert_eq!(recovered.devices_revoked, 2);
    assert_eq!(recovered.token.len(), 64);
    let phone = TestDevice {
        device_id: recovered.device_id.clone(),
        ..with_token(&server, &alex, &recovered.token).await
    };
    assert_eq!(works(&phone).await, Ok(()), "the new token works");
    for old in [&alex, &laptop] {
        let refused = old
            .sync()
            .pull(pull(&random16()))
            .await
            .expect_err("revoked");
        assert_eq!(refused.code(), Code::Unauthenticated);
        assert!(refused.message().starts_with("this device was revoked"));
    }
    let ended = loop {
        match laptop_stream.next().await {
            Some(Ok(_)) => continue,
            Some(Err(status)) => break Some(status.code()),
            None => break None,
        }
    };
    assert_eq!(
        ended,
        Some(Code::Unauthenticated),
        "the laptop's stream ends"
    );
    assert_eq!(works(&sam).await, Ok(()), "the partner is not touched");
    let listed = devices(&sam).await;
    let new = listed.iter().find(|d| d.0 == recovered.device_id);
    assert_eq!(new.map(|d| (d.1, d.2.is_empty())), Some((false, true)));
    let mut revoked: Vec<&Vec<u8>> = listed.iter().filter(|d| d.1).map(|d| &d.0).collect();
    let mut old = vec![&alex.device_id, &laptop.device_id];
    revoked.sort();
    old.sort();
    assert_eq!(revoked, old);
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_request_not_signed_now_by_the_members_kit_is_refused_and_changes_nothing() {
    let mut server = TestServer::start().await;
    let alex = server.create_space().await;
    let laptop = server.invite(&alex, InviteKind::Device).await;
    let sam = server.invite(&alex, InviteKind::Partner).await;
    let before = devices(&alex).await;
    let forged = recover_request(&recovery_kit(), &alex.space_id, &alex.member_id, unix_now());
    let tampered = RecoverMemberRequest {
        sealed_device_name: b"sealed: another name".to_vec(),
        ..kit_request(&alex, 0)
    };
    let kit = alex.recovery.as_ref().expect("alex's kit");
    let partners = recover_request(kit, &sam.space_id, &sam.member_id, unix_now());
    let stranger = recover_request(kit, &alex.space_id, &random16(), unix_now());
    let elsewhere = recover_request(kit, &random16(), &alex.member_id, unix_now());
    let mut pairing = server.pairing().await;
    for request in [forged, tampered, partners, stranger, elsewhere] {
        let refused = pairing.recover_member(request).await.expect_err("refused");
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(
            refused.message().starts_with(NOT_VALID),
            "{}",
            refused.message()
        );
    }
    for age in [301, -301, 3600] {
        let refused = pairing
            .recover_member(kit_request(&alex, age))
            .await
            .expect_err("outside the window");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert!(refused.message().contains("check this phone's clock"));
    }
    let short = RecoverMemberRequest {
        signature: vec![1; 10],
        ..kit_request(&alex, 0)
    };
    let refused = pairing.recover_member(short).await.expect_err("malformed");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(devices(&alex).await, before, "nothing changed");
    for device in [&alex, &laptop, &sam] {
        assert_eq!(works(device).await, Ok(()));
    }
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_replayed_or_earlier_recovery_is_refused_and_changes_nothing() {
    let mut server = TestServer::start().await;
    let alex = server.create_space().await;
    let mut pairing = server.pairing().await;
    let request = kit_request(&alex, 0);
    let recovered = pairing
        .recover_member(request.clone())
        .await
        .expect("recovered");
    let phone = with_token(&server, &alex, &recovered.into_inner().token).await;
    let after = devices(&phone).await;
    let replayed = pairing.recover_member(request).await.expect_err("a replay");
    assert_eq!(replayed.code(), Code::PermissionDenied);
    assert!(
        replayed.message().contains("used already"),
        "{}",
        replayed.message()
    );
    let earlier = pairing
        .recover_member(kit_request(&alex, 5))
        .await
        .expect_err("earlier than the last recovery");
    assert_eq!(earlier.code(), Code::PermissionDenied);
    assert_eq!(devices(&phone).await, after, "a replay changes nothing");
    assert_eq!(works(&phone).await, Ok(()));
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn only_a_first_device_makes_a_new_kit_and_the_old_kit_stops_working() {
    let mut server = TestServer::start().await;
    let alex = server.create_space().await;
    let laptop = server.invite(&alex, InviteKind::Device).await;
    let new_kit = recovery_kit();
    let set = |key: Vec<u8>| SetRecoveryKeyRequest { recovery_key: key };
    let refused = laptop
        .space()
        .set_recovery_key(set(public_key(&new_kit)))
        .await
        .expect_err("a linked device");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("run it on that device"),
        "{}",
        refused.message()
    );
    for bad in [vec![], vec![7; 32], vec![1; 5]] {
        let refused = alex
            .space()
            .set_recovery_key(set(bad))
            .await
            .expect_err("bad");
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{}",
            refused.message()
        );
    }
    alex.space()
        .set_recovery_key(set(public_key(&new_kit)))
        .await
        .expect("the first device makes a new kit");
    let mut pairing = server.pairing().await;
    let old = pairing
        .recover_member(kit_request(&alex, 0))
        .await
        .expect_err("the old kit");
    assert_eq!(old.code(), Code::PermissionDenied);
    assert!(old.message().starts_with(NOT_VALID));
    let request = recover_request(&new_kit, &alex.space_id, &alex.member_id, unix_now());
    let recovered = pairing
        .recover_member(request)
        .await
        .expect("the new kit works")
        .into_inner();
    assert_eq!(recovered.devices_revoked, 2);
    let phone = with_token(&server, &alex, &recovered.token).await;
    phone
        .space()
        .set_recovery_key(set(public_key(&recovery_kit())))
        .await
        .expect("a recovered device is a first device");
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn key_epochs_and_signatures_are_relayed_as_pushed() {
    let mut server = TestServer::start().await;
    let mut alex = server.create_space().await;
    let sam = server.invite(&alex, InviteKind::Partner).await;
    let mut stream = sam
        .sync()
        .subscribe(SubscribeRequest { cursors: vec![] })
        .await
        .expect("subscribed")
        .into_inner();
    let doc = random16();
    let mut change = alex.change(b"sealed under epoch 5");
    (change.key_epoch, change.signature) = (5, vec![3; 64]);
    alex.sync()
        .push(push_request(&doc, Audience::Shared, vec![change]))
        .await
        .expect("pushed");
    let live = loop {
        let event = stream.next().await.expect("open").expect("no error");
        if let Some(Event::Envelopes(envelopes)) = event.event {
            break envelopes.envelopes;
        }
    };
    assert_eq!(
        (live[0].key_epoch, live[0].signature.clone()),
        (5, vec![3; 64])
    );
    let mut snapshot = alex.change(b"whole document, epoch 9");
    (snapshot.kind, snapshot.key_epoch) = (EnvelopeKind::Snapshot as i32, 9);
    let put = PutSnapshotRequest {
        doc_id: doc.clone(),
        covers_seq: 1,
        envelope: Some(snapshot),
    };
    alex.sync().put_snapshot(put).await.expect("stored");
    let pulled = sam
        .sync()
        .pull(pull(&doc))
        .await
        .expect("pulled")
        .into_inner();
    let epochs: Vec<(u64, Vec<u8>)> = pulled
        .envelopes
        .iter()
        .map(|e| (e.key_epoch, e.signature.clone()))
        .collect();
    assert_eq!(epochs, [(5, vec![3; 64])]);
    let candidate = pulled
        .candidate
        .and_then(|c| c.envelope)
        .expect("the candidate");
    assert_eq!(candidate.key_epoch, 9);
    server.stop().await.expect("a clean stop");
}
