//! The conformance suite every `Store` backend runs: one promise per test.
//!
//! A backend proves itself with one line in its test module:
//! `store_conformance_tests!(|dir: &Path| MyStore::open(dir).expect("opens"));`
//! The macro expands to one `#[test]` per conformance test, each on a fresh scratch folder, so
//! sled today and a networked database later are held to exactly the same behaviour. A backend
//! in another crate enables this crate's `testing` feature in its dev-dependencies and calls
//! `kintsugi_server::store_conformance_tests!`; without the feature (and outside tests) none of
//! this is compiled.
//!
//! **Adding a test** means writing one `pub fn name(open: Open<'_>)` in a file of
//! `conformance/`: the build script (`build.rs`) writes the macro from those files, so every
//! `pub fn` there is a test and nothing else lists them. Helpers are private, here or beside
//! the tests that use them. These are test helpers: they panic on failure by design.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::*;
use crate::ids::DeviceToken;

mod documents;
mod erasure;
mod lifecycle;
mod pairing;
mod recovery;

pub use documents::*;
pub use erasure::*;
pub use lifecycle::*;
pub use pairing::*;
pub use recovery::*;

// `store_conformance_tests!`, one `#[test]` per `pub fn` of the files in `conformance/`.
include!(concat!(env!("OUT_DIR"), "/store_conformance_tests.rs"));

/// Pins the closure's argument type, so `|dir| Store::open(dir)` needs no annotation.
pub fn opener<S: Store, F: Fn(&Path) -> S>(open: F) -> F {
    open
}

/// How the suite opens a backend.
pub type Open<'a> = &'a dyn Fn(&Path) -> Box<dyn Store>;

/// A folder under the system's temporary directory, removed on drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "kintsugi-conformance-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            SpaceId::random()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("a scratch folder");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for ScratchDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The suite's "now" in Unix seconds. Tests count their timelines from it in plain seconds
/// and hand the store `at(...)` and `secs(...)`.
const NOW: i64 = 1_700_000_000;

/// `unix_secs` as the store takes a point in time.
fn at(unix_secs: i64) -> UnixSeconds {
    UnixSeconds::from_secs(unix_secs)
}

/// `count` seconds as the store takes a span of time.
fn secs(count: i64) -> Duration {
    Duration::from_secs(u64::try_from(count).expect("a span of time is not negative"))
}

/// Endorses the document's current candidate as a member's device (`by`), as a device does once its audit
/// passes. Returns whether a candidate was endorsed.
fn endorse_as(store: &dyn Store, space: SpaceId, doc: DocId, by: (MemberId, DeviceId)) -> bool {
    let Some(candidate) = store.candidate_snapshot(space, doc).unwrap() else {
        return false;
    };
    store
        .endorse_candidate(CandidateVerdict {
            space_id: space,
            doc_id: doc,
            member_id: by.0,
            device_id: by.1,
            covers_seq: candidate.covers_seq,
            content_hash: candidate.envelope.snapshot_hash(),
        })
        .unwrap()
}

/// `endorse_as` the founding member.
fn endorse(store: &dyn Store, f: &Founded, doc: DocId) -> bool {
    endorse_as(store, f.space, doc, (f.member, f.device))
}

struct Founded {
    space: SpaceId,
    member: MemberId,
    device: DeviceId,
    token: DeviceToken,
    recovery_key: RecoveryKey,
}

/// 32 random bytes as a recovery key: the store keeps the bytes, the services check them.
fn some_recovery_key() -> RecoveryKey {
    RecoveryKey(crate::ids::random_secret())
}

fn found_space(store: &dyn Store) -> Founded {
    let founded = Founded {
        space: SpaceId::random(),
        member: MemberId::random(),
        device: DeviceId::random(),
        token: DeviceToken::generate(),
        recovery_key: some_recovery_key(),
    };
    store
        .create_space(NewSpace {
            space_id: founded.space,
            member_id: founded.member,
            device_id: founded.device,
            token_hash: founded.token.hash(),
            sealed_member_name: b"sealed member".to_vec(),
            sealed_device_name: b"sealed device".to_vec(),
            recovery_key: founded.recovery_key,
            now: at(NOW),
        })
        .expect("the space is created");
    founded
}

/// The second partner of `f`'s space: (member, device, token).
fn add_partner(store: &dyn Store, f: &Founded) -> (MemberId, DeviceId, DeviceToken) {
    let partner = invite(store, f, InviteKind::Partner, NOW + 60);
    let token = DeviceToken::generate();
    match redeem(store, &partner, &partner.secret, NOW, &token) {
        Redeemed::Joined {
            member_id,
            device_id,
            ..
        } => (member_id, device_id, token),
        other => panic!("the partner could not join: {other:?}"),
    }
}

fn envelope(device: DeviceId, client_seq: u64, text: &str) -> Envelope {
    Envelope {
        device_id: device,
        client_seq,
        nonce: vec![client_seq as u8; 24],
        ciphertext: text.as_bytes().to_vec(),
        signature: vec![client_seq as u8; 64],
        key_epoch: client_seq + 40,
    }
}

fn append(
    store: &dyn Store,
    f: &Founded,
    doc: DocId,
    audience: Audience,
    member: MemberId,
    envelopes: Vec<Envelope>,
    now: i64,
) -> Result<Appended, StoreError> {
    store.append_envelopes(AppendEnvelopes {
        space_id: f.space,
        doc_id: doc,
        audience,
        member_id: member,
        envelopes,
        now: at(now),
        quota_bytes: u64::MAX,
        expect_head: None,
    })
}

fn seqs(appended: &Appended) -> Vec<u64> {
    appended.server_seqs.iter().map(|s| s.0).collect()
}

fn read_all(store: &dyn Store, f: &Founded, doc: DocId, after: u64) -> Vec<SequencedEnvelope> {
    store
        .read_envelopes(f.space, doc, ServerSeq(after), usize::MAX, usize::MAX)
        .expect("read")
        .envelopes
}

struct Invite {
    id: InviteId,
    secret: [u8; 32],
    kind: InviteKind,
}

fn invite(store: &dyn Store, f: &Founded, kind: InviteKind, expires_at: i64) -> Invite {
    invite_from(store, f, f.device, kind, expires_at)
}

/// An invite made on `device`, a device of `f`'s founding member.
fn invite_from(
    store: &dyn Store,
    f: &Founded,
    device: DeviceId,
    kind: InviteKind,
    expires_at: i64,
) -> Invite {
    let invite = Invite {
        id: InviteId::random(),
        secret: crate::ids::random_secret(),
        kind,
    };
    store
        .create_invite(NewInvite {
            invite_id: invite.id,
            space_id: f.space,
            member_id: f.member,
            device_id: device,
            kind,
            secret_hash: SecretHash::of(&invite.secret),
            expires_at: at(expires_at),
            now: at(NOW),
        })
        .expect("the invite is stored");
    invite
}

/// Redeems `invite` as a client does: a partner brings a recovery key, a linked device none.
fn redeem(
    store: &dyn Store,
    invite: &Invite,
    secret: &[u8],
    now: i64,
    token: &DeviceToken,
) -> Redeemed {
    let recovery_key = (invite.kind == InviteKind::Partner).then(some_recovery_key);
    redeem_with(store, invite, secret, now, token, recovery_key)
}

fn redeem_with(
    store: &dyn Store,
    invite: &Invite,
    secret: &[u8],
    now: i64,
    token: &DeviceToken,
    recovery_key: Option<RecoveryKey>,
) -> Redeemed {
    store
        .redeem_invite(RedeemInvite {
            invite_id: invite.id,
            secret_hash: SecretHash::of(secret),
            now: at(now),
            max_failed_attempts: 3,
            new_member_id: MemberId::random(),
            new_device_id: DeviceId::random(),
            token_hash: token.hash(),
            sealed_member_name: b"partner".to_vec(),
            sealed_device_name: b"phone".to_vec(),
            recovery_key,
        })
        .expect("redeem runs")
}
