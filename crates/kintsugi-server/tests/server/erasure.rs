//! Leaving a space: a member's private data and devices go at once, and with the last member
//! the whole space, down to its ciphertext in the data folder's files.

use kintsugi_proto::v1::{Audience, InviteKind, LeaveSpaceRequest, PullRequest, SubscribeRequest};
use kintsugi_server::store::{AdminStore, SledStore, StoreStats};
use kintsugi_server::testing::{TestServer, files_containing};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::{Clients, distinctive_bytes, private_doc, push_request, random16};

fn pull(doc: &[u8]) -> PullRequest {
    PullRequest {
        doc_id: doc.to_vec(),
        after_seq: 0,
        limit: 0,
        with_candidate: false,
    }
}

#[tokio::test]
async fn leaving_erases_the_member_then_the_space_and_its_ciphertext_on_disk() {
    let mut server = TestServer::start().await;
    let mut alex = server.create_space().await;
    let mut sam = server.invite(&alex, InviteKind::Partner).await;
    let laptop = server.invite(&alex, InviteKind::Device).await;
    let (agreement, journal, sams_journal) = (random16(), private_doc(), private_doc());
    let (shared, private, sams) = (
        distinctive_bytes(),
        distinctive_bytes(),
        distinctive_bytes(),
    );
    let pushes = [
        (&mut alex, &agreement, Audience::Shared, &shared),
        (&mut sam, &sams_journal, Audience::Private, &sams),
    ];
    for (device, doc, audience, bytes) in pushes {
        let envelope = device.change(bytes);
        device
            .sync()
            .push(push_request(doc, audience, vec![envelope]))
            .await
            .expect("pushed");
    }
    let envelope = alex.change(&private);
    alex.sync()
        .push(push_request(&journal, Audience::Private, vec![envelope]))
        .await
        .expect("pushed");
    let mut laptop_stream = laptop
        .sync()
        .subscribe(SubscribeRequest { cursors: vec![] })
        .await
        .expect("subscribed")
        .into_inner();
    assert!(
        !files_containing(server.data(), &private).is_empty(),
        "the scan sees stored bytes"
    );

    let left = alex
        .space()
        .leave_space(LeaveSpaceRequest {})
        .await
        .expect("alex leaves")
        .into_inner();
    assert_eq!(
        (
            left.devices_removed,
            left.documents_removed,
            left.space_erased
        ),
        (2, 1, false)
    );
    let refused = alex.sync().pull(pull(&agreement)).await.expect_err("gone");
    assert_eq!(refused.code(), Code::Unauthenticated);
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
    let kept = sam
        .sync()
        .pull(pull(&agreement))
        .await
        .expect("shared stays");
    assert_eq!(kept.into_inner().envelopes[0].ciphertext, shared);
    assert_eq!(
        files_containing(server.data(), &private),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(!files_containing(server.data(), &shared).is_empty());

    let last = sam
        .space()
        .leave_space(LeaveSpaceRequest {})
        .await
        .expect("sam leaves")
        .into_inner();
    assert_eq!(
        (
            last.devices_removed,
            last.documents_removed,
            last.space_erased
        ),
        (1, 2, true)
    );
    server.stop().await.expect("a clean stop");
    let data = server.data();
    for bytes in [&shared, &private, &sams] {
        assert_eq!(
            files_containing(data, bytes),
            Vec::<std::path::PathBuf>::new()
        );
    }
    let store = SledStore::open(data).expect("opens");
    assert_eq!(store.stats().expect("stats"), StoreStats::default());
}
