//! The server's logs never contain a secret: a whole pairing, push, pull, subscribe, recovery
//! and leave session is logged at every level into a buffer, which must not contain any token,
//! invite secret, recovery signature, sealed name or ciphertext, whatever the encoding (raw,
//! hex, base64, a debug list).
//!
//! A separate test binary, because it installs the process-wide subscriber: the server logs
//! from tokio's worker and blocking threads, which a thread-local subscriber would miss.

#![allow(clippy::expect_used)]

#[path = "server/support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD, HEXLOWER, HEXUPPER};
use kintsugi_proto::admin::v1::StatsRequest;
use kintsugi_proto::v1::{
    AcceptInviteRequest, Audience, CreateInviteRequest, InviteKind, LeaveSpaceRequest, PullRequest,
    SetRecoveryKeyRequest, SubscribeRequest,
};
use kintsugi_server::LogFormat;
use kintsugi_server::testing::TestServer;
use support::{
    Clients, TestDevice, distinctive_bytes, private_doc, public_key, push_request, random16,
    recover_request, recovery_kit, unix_now,
};
use tokio_stream::StreamExt;
use tracing_subscriber::EnvFilter;

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("a lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every way a byte string could be spelled in a log line.
fn spellings(bytes: &[u8]) -> Vec<String> {
    let mut all = vec![
        HEXLOWER.encode(bytes),
        HEXUPPER.encode(bytes),
        BASE64.encode(bytes),
        BASE64_NOPAD.encode(bytes),
        BASE64URL.encode(bytes),
        BASE64URL_NOPAD.encode(bytes),
        String::from_utf8_lossy(bytes).into_owned(),
    ];
    let list: Vec<String> = bytes.iter().take(8).map(u8::to_string).collect();
    all.push(format!("[{}", list.join(", ")));
    all.push(format!("[{}", list.join(",")));
    all
}

async fn join_with_secret(server: &TestServer, inviter: &TestDevice) -> (TestDevice, Vec<u8>) {
    let invite = inviter
        .space()
        .create_invite(CreateInviteRequest {
            kind: InviteKind::Partner as i32,
        })
        .await
        .expect("invite")
        .into_inner();
    let secret = invite.secret.clone();
    let mut wrong = invite.secret.clone();
    wrong[0] ^= 1;
    let mut pairing = server.pairing().await;
    let kit = recovery_kit();
    let attempt = |secret: Vec<u8>| AcceptInviteRequest {
        invite_id: invite.invite_id.clone(),
        secret,
        sealed_member_name: b"sealed: Sam".to_vec(),
        sealed_device_name: b"sealed: tablet".to_vec(),
        recovery_key: public_key(&kit),
    };
    pairing
        .accept_invite(attempt(wrong))
        .await
        .expect_err("a wrong secret");
    let joined = pairing
        .accept_invite(attempt(secret.clone()))
        .await
        .expect("joined")
        .into_inner();
    let device = TestDevice {
        space_id: joined.space_id,
        member_id: joined.member_id,
        device_id: joined.device_id,
        token: joined.token,
        channel: server.channel().await,
        next_client_seq: 1,
        recovery: Some(kit),
    };
    (device, secret)
}

/// Alex's member recovers with the kit, and the new device makes a new kit. Returns the new
/// device's token and the recovery request.
async fn recover_alex(
    server: &TestServer,
    alex: &TestDevice,
) -> (String, kintsugi_proto::v1::RecoverMemberRequest) {
    let kit = alex.recovery.as_ref().expect("alex's kit");
    let request = recover_request(kit, &alex.space_id, &alex.member_id, unix_now());
    let recovered = server
        .pairing()
        .await
        .recover_member(request.clone())
        .await
        .expect("recovered")
        .into_inner();
    let device = TestDevice {
        token: recovered.token.clone(),
        ..server.reconnect(alex).await
    };
    let new_kit = SetRecoveryKeyRequest {
        recovery_key: public_key(&recovery_kit()),
    };
    device
        .space()
        .set_recovery_key(new_kit)
        .await
        .expect("a new kit");
    (recovered.token, request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_session_logs_no_token_secret_name_or_ciphertext() {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Capture(buffer.clone());
    let subscriber =
        kintsugi_server::logging::subscriber(LogFormat::Json, EnvFilter::new("trace"), move || {
            writer.clone()
        });
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let mut server = TestServer::start().await;
    let mut alex = server.create_space().await;
    let (mut sam, secret) = join_with_secret(&server, &alex).await;
    let mut stream = sam
        .sync()
        .subscribe(SubscribeRequest { cursors: vec![] })
        .await
        .expect("subscribed")
        .into_inner();
    let (doc, journal) = (random16(), private_doc());
    let shared = distinctive_bytes();
    let private = distinctive_bytes();
    let envelope = alex.change(&shared);
    alex.sync()
        .push(push_request(&doc, Audience::Shared, vec![envelope]))
        .await
        .expect("pushed");
    let envelope = sam.change(&private);
    sam.sync()
        .push(push_request(&journal, Audience::Private, vec![envelope]))
        .await
        .expect("pushed");
    stream.next().await.expect("delivered").expect("no error");
    let pulled = sam
        .sync()
        .pull(PullRequest {
            doc_id: doc.clone(),
            after_seq: 0,
            limit: 0,
            with_candidate: false,
        })
        .await
        .expect("pulled");
    assert_eq!(pulled.into_inner().envelopes[0].ciphertext, shared);
    alex.sync()
        .pull(PullRequest {
            doc_id: journal,
            after_seq: 0,
            limit: 0,
            with_candidate: false,
        })
        .await
        .expect_err("private to sam");
    server
        .admin()
        .await
        .stats(StatsRequest {})
        .await
        .expect("stats");
    let admin_token =
        kintsugi_server::offline_admin::read_admin_token(server.data()).expect("an admin token");
    let (recovered, recovery) = recover_alex(&server, &alex).await;
    drop(stream);
    sam.space()
        .leave_space(LeaveSpaceRequest {})
        .await
        .expect("left");
    server.stop().await.expect("a clean stop");

    let logs = String::from_utf8_lossy(&buffer.lock().expect("a lock")).into_owned();
    assert!(logs.contains("call finished"), "the capture works");
    assert!(logs.contains("kintsugi.sync.v1.SyncService/Push"));
    assert!(
        logs.contains(&HEXLOWER.encode(&alex.device_id)),
        "device ids are logged"
    );
    let tokens = [&alex.token, &sam.token, &admin_token, &recovered];
    let token_bytes: Vec<Vec<u8>> = tokens
        .iter()
        .map(|t| HEXLOWER.decode(t.as_bytes()).expect("hex"))
        .collect();
    let mut forbidden: Vec<(&str, Vec<u8>)> = vec![
        ("invite secret", secret),
        ("shared ciphertext", shared),
        ("private ciphertext", private),
        ("sealed name", b"sealed: Alex".to_vec()),
        ("sealed device name", b"sealed: tablet".to_vec()),
        ("recovered device's name", recovery.sealed_device_name),
        ("recovery signature", recovery.signature),
    ];
    forbidden.extend(token_bytes.into_iter().map(|bytes| ("token", bytes)));
    for (what, bytes) in forbidden {
        for spelling in spellings(&bytes) {
            assert!(
                !logs.contains(&spelling),
                "the logs contain a {what}: {spelling}"
            );
        }
    }
    let first_line = logs
        .lines()
        .find(|l| l.contains("call finished"))
        .expect("a line");
    let parsed: serde_json::Value = serde_json::from_str(first_line).expect("JSON lines");
    assert!(parsed["span"]["method"].is_string(), "{first_line}");
    assert!(parsed["span"]["code"].is_string(), "{first_line}");
}
