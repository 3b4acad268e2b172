//! The bodies of the fuzz targets in `fuzz/`, shared with the stable regression test that
//! replays every saved corpus input and crash (`tests/tests/fuzz_regressions.rs`), so a finding
//! stays fixed without a nightly toolchain.
//!
//! Each body takes arbitrary bytes and must neither panic nor accept what it should refuse.

use std::sync::OnceLock;

use kintsugi_core::InviteCode;
use kintsugi_core::docs::{DocKind, apply_remote_changes, genesis};
use kintsugi_core::envelope::open;
use kintsugi_core::ids::{DeviceId, DocId, SpaceId};
use kintsugi_core::keys::SecretKey;
use kintsugi_proto::v1::pairing_service_client::PairingServiceClient;
use kintsugi_proto::v1::space_service_client::SpaceServiceClient;
use kintsugi_proto::v1::sync_service_client::SyncServiceClient;
use kintsugi_proto::v1::{
    AcceptInviteRequest, CreateInviteRequest, CreateSpaceRequest, Envelope, PullRequest,
    PushRequest, PutSnapshotRequest, RevokeDeviceRequest, SubscribeRequest,
};
use kintsugi_server::testing::TestServer;
use prost::Message;
use tonic::Request;
use tonic::transport::Channel;

/// Envelope decoding and opening: arbitrary bytes as a wire envelope, opened with a fixed key.
pub fn envelope_open(data: &[u8]) {
    let Ok(envelope) = Envelope::decode(data) else {
        return;
    };
    let key = SecretKey::from_bytes([7; 32]);
    // Only a genuine seal opens; random bytes that forge a Poly1305 tag would be a bug.
    assert!(
        open(
            |_| Some(key.clone()),
            &AnyDevice,
            SpaceId([1; 16]),
            DocId([2; 16]),
            &envelope
        )
        .is_err(),
        "an envelope not sealed with the key opened"
    );
}

/// A roster that admits every device, with one fixed key: only a genuine seal by that key
/// (which the fuzzer cannot make) could open.
struct AnyDevice;

impl kintsugi_core::envelope::Authors for AnyDevice {
    fn signing_key(&self, _device: DeviceId, _epoch: u64) -> Option<ed25519_dalek::VerifyingKey> {
        Some(kintsugi_core::key_store::DeviceSecrets::from_seeds([8; 32], [9; 32]).verifying_key())
    }
}

/// Invite and device-link code parsing: never panics, and what parses re-encodes to itself.
pub fn invite_code(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = InviteCode::parse(text) {
        let again = InviteCode::parse(&code.encode()).expect("an encoded code parses");
        assert_eq!(again.encode(), code.encode());
        assert_eq!(again.kind, code.kind);
    }
}

/// The core's applying of decrypted bytes: arbitrary plaintext as a change from a device.
pub fn apply_changes(data: &[u8]) {
    for kind in [DocKind::Agreement, DocKind::Journal, DocKind::Checkins] {
        let mut doc = genesis(kind);
        let author = DeviceId([9; 16]);
        if apply_remote_changes(&mut doc, &[(author, data.to_vec())]).is_ok() {
            // Whatever was accepted must leave a document the typed readers can read or refuse.
            let _ = kintsugi_core::docs::agreement::list(&doc);
            let _ = kintsugi_core::docs::journal::list(&doc);
            let _ = kintsugi_core::docs::checkins::checkins(&doc);
        }
    }
}

/// A real server on loopback with one space, shared by every input of a fuzzing run.
struct Target {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    token: String,
    device_id: Vec<u8>,
    _server: TestServer,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (server, channel, token, device_id) = runtime.block_on(async {
            // Millions of calls from one device and one address: the rate limits would answer
            // them all after the first few hundred, and the fuzzer would learn nothing deeper.
            let unlimited = kintsugi_server::RateLimit {
                per_second: 1e9,
                burst: u32::MAX,
            };
            let server = TestServer::builder()
                .config(|config| (config.device_rate, config.pairing_rate) = (unlimited, unlimited))
                .start()
                .await;
            let channel = server.channel().await;
            let space = CreateSpaceRequest {
                space_id: vec![5; 16],
                sealed_member_name: vec![1; 40],
                sealed_device_name: vec![2; 40],
                recovery_key: kintsugi_core::key_store::DeviceSecrets::from_seeds([3; 32], [4; 32])
                    .verifying_key()
                    .to_bytes()
                    .to_vec(),
            };
            let founder = PairingServiceClient::new(channel.clone())
                .create_space(space)
                .await
                .expect("space")
                .into_inner();
            (server, channel, founder.token, founder.device_id)
        });
        Target {
            runtime,
            channel,
            token,
            device_id,
            _server: server,
        }
    })
}

fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Every server call with arbitrary protobuf bytes: the first byte picks the call, the rest is
/// decoded as its request. The server must answer (with any status) and keep serving.
pub fn server_call(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let t = target();
    let token = t.token.as_str();
    let channel = t.channel.clone();
    t.runtime.block_on(async move {
        let mut sync = SyncServiceClient::new(channel.clone());
        let mut space = SpaceServiceClient::new(channel.clone());
        let mut pairing = PairingServiceClient::new(channel);
        let _ = call(
            selector,
            body,
            &t.device_id,
            &mut sync,
            &mut space,
            &mut pairing,
            token,
        )
        .await;
        // Still serving: a well-formed call of the founder answers.
        let alive = sync
            .pull(authed(
                PullRequest {
                    doc_id: vec![3; 16],
                    after_seq: 0,
                    limit: 1,
                    with_candidate: false,
                },
                token,
            ))
            .await;
        assert!(alive.is_ok(), "the server stopped serving: {alive:?}");
    });
}

async fn call(
    selector: u8,
    body: &[u8],
    founder: &[u8],
    sync: &mut SyncServiceClient<Channel>,
    space: &mut SpaceServiceClient<Channel>,
    pairing: &mut PairingServiceClient<Channel>,
    token: &str,
) -> Result<(), tonic::Status> {
    let bad = |_| tonic::Status::invalid_argument("undecodable");
    match selector % 9 {
        0 => sync
            .push(authed(PushRequest::decode(body).map_err(bad)?, token))
            .await
            .map(drop),
        1 => sync
            .pull(authed(PullRequest::decode(body).map_err(bad)?, token))
            .await
            .map(drop),
        2 => sync
            .put_snapshot(authed(
                PutSnapshotRequest::decode(body).map_err(bad)?,
                token,
            ))
            .await
            .map(drop),
        3 => sync
            .subscribe(authed(SubscribeRequest::decode(body).map_err(bad)?, token))
            .await
            .map(drop),
        4 => space
            .create_invite(authed(
                CreateInviteRequest::decode(body).map_err(bad)?,
                token,
            ))
            .await
            .map(drop),
        5 => {
            let request = RevokeDeviceRequest::decode(body).map_err(bad)?;
            // Revoking the founder would end the run's own access; every other id is fair game.
            let token = if request.device_id == founder {
                "not-a-token"
            } else {
                token
            };
            space.revoke_device(authed(request, token)).await.map(drop)
        }
        6 => pairing
            .create_space(CreateSpaceRequest::decode(body).map_err(bad)?)
            .await
            .map(drop),
        7 => pairing
            .accept_invite(AcceptInviteRequest::decode(body).map_err(bad)?)
            .await
            .map(drop),
        _ => {
            let garbage_token = String::from_utf8_lossy(body).into_owned();
            sync.pull(authed(
                PullRequest::decode(body).map_err(bad)?,
                &garbage_token,
            ))
            .await
            .map(drop)
        }
    }
}
