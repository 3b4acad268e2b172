//! The memory attack of a hostile member: one device opens dozens of Subscribe streams that
//! never read, on a document whose log holds tens of MiB. The real `kintsugi serve` must hold
//! a bounded amount per device (a few streams, a few MiB each), not a copy of the log per
//! stream; the test prints the figure. A Subscribe naming far more cursors than the device
//! could read is refused.

// Only the server helper of the shared CLI test helpers is used here.
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use kintsugi_proto::v1::pairing_service_client::PairingServiceClient;
use kintsugi_proto::v1::sync_service_client::SyncServiceClient;
use kintsugi_proto::v1::{
    Audience, CreateSpaceRequest, DocCursor, Envelope, EnvelopeKind, PushRequest, SubscribeRequest,
};
use tonic::Request;
use tonic::transport::Channel;

/// Streams the attacker opens, and MiB in the log each would catch up on.
/// A member's recovery key as the server takes it: any valid Ed25519 point (the base point).
const RECOVERY_KEY: [u8; 32] = {
    let mut key = [0x66; 32];
    key[0] = 0x58;
    key
};

const STREAMS: usize = 48;
const LOG_MIB: usize = 32;
/// Before the fix 12 such streams grew the server by 1.2 GiB; bounded, 48 stay far below.
const MAX_GROWTH_MIB: u64 = 256;

fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {token}").parse().expect("token header");
    request.metadata_mut().insert("authorization", value);
    request
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Fills a shared document with `LOG_MIB` one-MiB envelopes; returns the sync client and token.
async fn space_with_a_big_log(url: &str) -> (SyncServiceClient<Channel>, String, Vec<u8>) {
    let channel = Channel::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let founder = PairingServiceClient::new(channel.clone())
        .create_space(CreateSpaceRequest {
            space_id: rand::random::<[u8; 16]>().to_vec(),
            sealed_member_name: vec![1; 40],
            sealed_device_name: vec![2; 40],
            recovery_key: RECOVERY_KEY.to_vec(),
        })
        .await
        .expect("create space")
        .into_inner();
    let mut sync = SyncServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let mut doc = rand::random::<[u8; 16]>().to_vec();
    doc[0] &= 0x7f; // a shared document
    for seq in 1..=LOG_MIB as u64 {
        let envelope = Envelope {
            device_id: founder.device_id.clone(),
            client_seq: seq,
            kind: EnvelopeKind::Change as i32,
            nonce: vec![7; 24],
            ciphertext: vec![seq as u8; 1 << 20],
            server_seq: 0,
            signature: Vec::new(),
            key_epoch: 0,
        };
        let push = PushRequest {
            doc_id: doc.clone(),
            audience: Audience::Shared as i32,
            envelopes: vec![envelope],
        };
        sync.push(authed(&founder.token, push)).await.expect("push");
    }
    (sync, founder.token, doc)
}

#[tokio::test]
async fn streams_that_never_read_hold_bounded_memory() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = common::serve(data.path());
    let (mut sync, token, doc) = space_with_a_big_log(&server.url).await;
    let before = rss_kib(server.pid());
    let mut held = Vec::new();
    for _ in 0..STREAMS {
        let request = authed(&token, SubscribeRequest { cursors: vec![] });
        held.push(
            sync.subscribe(request)
                .await
                .expect("subscribe")
                .into_inner(),
        );
    }
    let (mut peak, until) = (before, Instant::now() + Duration::from_secs(4));
    while Instant::now() < until {
        peak = peak.max(rss_kib(server.pid()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "{STREAMS} unread streams over a {LOG_MIB} MiB log: server RSS {} -> {} MiB (+{growth_mib} MiB)",
        before / 1024,
        peak / 1024
    );
    assert!(
        growth_mib < MAX_GROWTH_MIB,
        "the server grew by {growth_mib} MiB"
    );

    let cursors = (0..600_000)
        .map(|_| DocCursor {
            doc_id: rand::random::<[u8; 16]>().to_vec(),
            after_seq: 0,
        })
        .collect();
    let refused = sync
        .subscribe(authed(&token, SubscribeRequest { cursors }))
        .await;
    let status = refused.expect_err("too many cursors");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    drop(held);
    let _ = doc;
}
