//! A service state on a scratch store with a manual clock, for handler tests.
#![allow(clippy::expect_used)]

use kintsugi_proto::v1::{
    AcceptInviteRequest, CreateInviteRequest, CreateInviteResponse, CreateSpaceRequest,
};

use super::*;
use crate::auth::AuthedDevice;
use crate::clock::ManualClock;
use crate::ids::{DeviceId, DeviceToken, MemberId, SpaceId};
use crate::store::SledStore;

mod gated;

pub(crate) use gated::GatedStore;

#[derive(Debug)]
pub(crate) struct Harness {
    pub(crate) state: Arc<State>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// Creates a space; returns its first device as the interceptor would describe it.
pub(crate) async fn founder(h: &Harness) -> AuthedDevice {
    let space = SpaceId::random();
    let created = PairingApi::new(h.state.clone())
        .create_space(CreateSpaceRequest {
            space_id: space.to_vec(),
            sealed_member_name: vec![],
            sealed_device_name: vec![],
        })
        .await
        .expect("created");
    AuthedDevice {
        space_id: space,
        member_id: MemberId::from_slice(&created.member_id).expect("16 bytes"),
        device_id: DeviceId::from_slice(&created.device_id).expect("16 bytes"),
    }
}

/// Redeems an invite; returns the new device.
pub(crate) async fn join(
    h: &Harness,
    invite: &CreateInviteResponse,
) -> Result<AuthedDevice, tonic::Status> {
    let joined = PairingApi::new(h.state.clone())
        .accept_invite(AcceptInviteRequest {
            invite_id: invite.invite_id.clone(),
            secret: invite.secret.clone(),
            sealed_member_name: vec![],
            sealed_device_name: vec![],
        })
        .await?;
    let token = DeviceToken::from_hex(&joined.token).expect("hex token");
    let device = h
        .state
        .store
        .device_by_token_hash(&token.hash())
        .expect("read")
        .expect("found");
    Ok(AuthedDevice {
        space_id: device.space_id,
        member_id: device.member_id,
        device_id: device.device_id,
    })
}

/// Invites and joins a device of `kind` for `inviter`.
pub(crate) async fn invite_and_join(
    h: &Harness,
    inviter: AuthedDevice,
    kind: kintsugi_proto::v1::InviteKind,
) -> AuthedDevice {
    let request = CreateInviteRequest { kind: kind as i32 };
    let invite = SpaceApi::new(h.state.clone())
        .create_invite(inviter, request)
        .await
        .expect("invite");
    join(h, &invite).await.expect("joined")
}

pub(crate) fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Arc::new(SledStore::open(dir.path()).expect("the store opens"));
    harness_on(dir, store)
}

/// A harness whose store makes writes durable only while its gate is open, so a test can
/// catch a handler that replies (or relays) before what it read or wrote is on disk.
pub(crate) fn gated_harness() -> (Harness, Arc<GatedStore>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let inner = SledStore::open(dir.path()).expect("the store opens");
    let store = Arc::new(GatedStore::new(inner));
    (harness_on(dir, store.clone()), store)
}

fn harness_on(dir: tempfile::TempDir, store: Arc<dyn Store>) -> Harness {
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let (stop, stop_rx) = watch::channel(false);
    let (alive, _) = mpsc::channel(1);
    let mut config = Config::new(dir.path());
    config.heartbeat = Duration::from_secs(3600);
    let state = State::new(store, config, clock.clone(), stop_rx, alive);
    Harness {
        state: Arc::new(state),
        clock,
        stop,
        _dir: dir,
    }
}
