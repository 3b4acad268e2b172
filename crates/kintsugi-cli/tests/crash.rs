//! Server crash durability: the real `kintsugi serve` binary is killed with SIGKILL at random
//! moments while several devices push concurrently, then restarted on the same data. Every push
//! the server acknowledged must be in the log exactly once, at the position it was given, and
//! each device's changes must keep their order.
//!
//! `KINTSUGI_CRASH_ROUNDS` sets the number of kills (default 20); `KINTSUGI_CRASH_SEED` the seed.

// Only the server helpers and `ks` of the shared CLI test helpers are used here.
#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{STARTUP, Server, ks, serve};

use kintsugi_proto::v1::pairing_service_client::PairingServiceClient;
use kintsugi_proto::v1::space_service_client::SpaceServiceClient;
use kintsugi_proto::v1::sync_service_client::SyncServiceClient;
use kintsugi_proto::v1::{
    AcceptInviteRequest, Audience, CreateInviteRequest, CreateSpaceRequest, Envelope, EnvelopeKind,
    InviteKind, PullRequest, PushRequest,
};
use kintsugi_server::testing::{connect_when_up, free_port};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::Request;
use tonic::transport::Channel;

/// A member's recovery key as the server takes it: any valid Ed25519 point (the base point).
const RECOVERY_KEY: [u8; 32] = {
    let mut key = [0x66; 32];
    key[0] = 0x58;
    key
};

const DEVICES: usize = 4;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {token}").parse().expect("token header");
    request.metadata_mut().insert("authorization", value);
    request
}

/// One pushing device: its token, id, and what the server acknowledged.
#[derive(Clone, Debug)]
struct Pusher {
    token: String,
    device_id: Vec<u8>,
    next_seq: u64,
    /// client_seq -> server_seq, for every acknowledged push.
    acked: BTreeMap<u64, u64>,
}

impl Pusher {
    fn envelope(&self, client_seq: u64) -> Envelope {
        Envelope {
            device_id: self.device_id.clone(),
            client_seq,
            kind: EnvelopeKind::Change as i32,
            nonce: vec![7; 24],
            ciphertext: format!("device {:02x?} change {client_seq}", &self.device_id[..2])
                .into_bytes(),
            server_seq: 0,
            signature: Vec::new(),
            key_epoch: 0,
        }
    }

    /// Pushes until the server dies. A push that got no answer is retried with the same bytes
    /// after the restart, as a phone's outbox would.
    async fn run(mut self, url: String, doc: Vec<u8>) -> Pusher {
        let Ok(endpoint) = Channel::from_shared(url) else {
            return self;
        };
        let Ok(channel) = endpoint.timeout(Duration::from_secs(5)).connect().await else {
            return self;
        };
        let mut client = SyncServiceClient::new(channel);
        loop {
            let push = PushRequest {
                doc_id: doc.clone(),
                audience: Audience::Shared as i32,
                envelopes: vec![self.envelope(self.next_seq)],
            };
            match client.push(authed(&self.token, push)).await {
                Ok(reply) => {
                    let seqs = reply.into_inner().server_seqs;
                    assert_eq!(seqs.len(), 1);
                    self.acked.insert(self.next_seq, seqs[0]);
                    self.next_seq += 1;
                }
                Err(_) => return self,
            }
        }
    }
}

async fn enrol(url: &str) -> Vec<Pusher> {
    let channel = connect_when_up(url, STARTUP).await;
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
    let mut pushers = vec![Pusher {
        token: founder.token.clone(),
        device_id: founder.device_id,
        next_seq: 1,
        acked: BTreeMap::new(),
    }];
    for _ in 1..DEVICES {
        let invite = SpaceServiceClient::new(channel.clone())
            .create_invite(authed(
                &founder.token,
                CreateInviteRequest {
                    kind: InviteKind::Device as i32,
                },
            ))
            .await
            .expect("invite")
            .into_inner();
        let joined = PairingServiceClient::new(channel.clone())
            .accept_invite(AcceptInviteRequest {
                invite_id: invite.invite_id,
                secret: invite.secret,
                sealed_member_name: vec![1; 40],
                sealed_device_name: vec![3; 40],
                recovery_key: Vec::new(),
            })
            .await
            .expect("accept")
            .into_inner();
        pushers.push(Pusher {
            token: joined.token,
            device_id: joined.device_id,
            next_seq: 1,
            acked: BTreeMap::new(),
        });
    }
    pushers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_pushes_survive_sigkill_exactly_once_and_in_order() {
    let rounds: usize = env_or("KINTSUGI_CRASH_ROUNDS", 20);
    let seed: u64 = env_or("KINTSUGI_CRASH_SEED", 0x6b696e74);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("server");
    let mut doc = rand::random::<[u8; 16]>().to_vec();
    doc[0] &= 0x7f; // a shared document's id: the top bit says private

    let mut server = Server::spawn(free_port(), &data);
    let url = server.url.clone();
    let mut pushers = enrol(&url).await;
    for _ in 0..rounds {
        let tasks: Vec<_> = pushers
            .drain(..)
            .map(|p| tokio::spawn(p.run(url.clone(), doc.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..250))).await;
        server.kill();
        for task in tasks {
            pushers.push(task.await.expect("pusher"));
        }
        server.start_again();
        connect_when_up(&url, STARTUP).await;
    }

    // Read the whole log back from the restarted server.
    let mut client = SyncServiceClient::new(connect_when_up(&url, STARTUP).await);
    let mut log = Vec::new();
    loop {
        let after = log.last().map_or(0, |e: &Envelope| e.server_seq);
        let page = client
            .pull(authed(
                &pushers[0].token,
                PullRequest {
                    doc_id: doc.clone(),
                    after_seq: after,
                    limit: 1000,
                    with_candidate: false,
                },
            ))
            .await
            .expect("pull")
            .into_inner();
        log.extend(page.envelopes);
        if !page.more {
            break;
        }
    }
    drop(server);

    let positions: Vec<u64> = log.iter().map(|e| e.server_seq).collect();
    assert_eq!(
        positions,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "the log has no gaps"
    );
    let mut acked_total = 0;
    for pusher in &pushers {
        let mine: Vec<&Envelope> = log
            .iter()
            .filter(|e| e.device_id == pusher.device_id)
            .collect();
        let seqs: Vec<u64> = mine.iter().map(|e| e.client_seq).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(seqs, sorted, "each change once, in the device's order");
        for (client_seq, server_seq) in &pusher.acked {
            let entry = log
                .iter()
                .find(|e| e.server_seq == *server_seq)
                .expect("acknowledged position exists");
            assert_eq!(
                (&entry.device_id, entry.client_seq),
                (&pusher.device_id, *client_seq),
                "acknowledged change lost or moved"
            );
            assert_eq!(entry.ciphertext, pusher.envelope(*client_seq).ciphertext);
        }
        acked_total += pusher.acked.len();
    }
    assert!(
        acked_total > rounds,
        "the pushers made progress ({acked_total} acknowledged)"
    );
    eprintln!(
        "{rounds} SIGKILLs, {acked_total} acknowledged pushes, {} entries in the log, 0 lost",
        log.len()
    );
}

/// Runs `kintsugi --home HOME --json ARGS` and kills it after `kill_after`, unless it ends first.
/// Returns whether it finished successfully on its own.
fn run_killed(home: &Path, args: &[&str], kill_after: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kintsugi"))
        .arg("--home")
        .arg(home)
        .arg("--json")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kintsugi");
    let deadline = std::time::Instant::now() + kill_after;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_client_killed_mid_edit_or_mid_sync_loses_nothing_and_sends_nothing_twice() {
    let rounds: usize = env_or("KINTSUGI_CLIENT_CRASH_ROUNDS", 30);
    let mut rng = StdRng::seed_from_u64(env_or("KINTSUGI_CRASH_SEED", 0x6b696e74));
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("server"));
    let url = server.url.clone();
    let home = dir.path().join("alice");
    assert!(run_killed(
        &home,
        &["init", "--server", &url, "--name", "Alice"],
        Duration::from_secs(30)
    ));

    let mut kept = Vec::new();
    let mut attempted = Vec::new();
    for round in 0..rounds {
        let text = format!("crash round {round}");
        attempted.push(text.clone());
        if run_killed(
            &home,
            &["boundary", "add", &text],
            Duration::from_millis(rng.gen_range(5..160)),
        ) {
            kept.push(text);
        }
        run_killed(
            &home,
            &["sync"],
            Duration::from_millis(rng.gen_range(5..200)),
        );
    }
    assert!(
        run_killed(&home, &["sync"], Duration::from_secs(30)),
        "the store still opens and syncs"
    );

    let list = ks(&home, &["boundary", "list"]);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let texts: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect();
    for text in &kept {
        assert_eq!(
            texts.iter().filter(|t| *t == text).count(),
            1,
            "{text} acknowledged locally, then lost or doubled"
        );
    }
    assert!(
        texts.iter().all(|t| attempted.iter().any(|a| a == t)),
        "nothing appears that was not written"
    );

    // A second device sees exactly the same: nothing was pushed twice or half.
    let tablet = dir.path().join("tablet");
    let code = ks(&home, &["invite", "--device"]);
    let code: serde_json::Value = serde_json::from_slice(&code.stdout).expect("json");
    let code = code["code"].as_str().expect("code");
    assert!(run_killed(
        &tablet,
        &["join", "--server", &url, "--name", "Alice", code],
        Duration::from_secs(30)
    ));
    assert!(run_killed(&tablet, &["sync"], Duration::from_secs(30)));
    let seen = ks(&tablet, &["boundary", "list"]);
    let seen: serde_json::Value = serde_json::from_slice(&seen.stdout).expect("json");
    assert_eq!(seen.as_array().map(Vec::len), Some(texts.len()));
    drop(server);
    eprintln!(
        "{rounds} client kills: {} of {} edits acknowledged, all kept once",
        kept.len(),
        attempted.len()
    );
}
