//! The same builder for this crate's handler tests: the services' `State` over the builder's
//! sled folder and config, on a manual clock, without a network; optionally over a store
//! whose durability the test holds back (`GatedStore`).
#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use kintsugi_proto::v1::{
    AcceptInviteRequest, CreateInviteRequest, CreateInviteResponse, CreateSpaceRequest,
};
use tokio::sync::{mpsc, watch};

use super::gated::GatedStore;
use super::server::TestServerBuilder;
use crate::auth::AuthedDevice;
use crate::clock::{ManualClock, UnixSeconds};
use crate::ids::{DeviceId, DeviceToken, MemberId, SpaceId};
use crate::service::{PairingApi, SpaceApi, State};
use crate::store::{SledStore, Store};
use crate::testing::TestServer;

/// Where a handler test's clock stands at first (November 2023).
const START: i64 = 1_700_000_000;

/// The services' state for handler tests, its clock, and the stop signal streams watch.
#[derive(Debug)]
pub(crate) struct Harness {
    pub(crate) state: Arc<State>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) stop: watch::Sender<bool>,
    _scratch: tempfile::TempDir,
}

impl TestServerBuilder {
    /// The services' state over this builder's folder and config, without a network. Handler
    /// tests move time themselves: the harness brings its own `ManualClock`.
    pub(crate) fn handlers(self) -> Harness {
        let store = SledStore::open(&self.config.data_dir).expect("the store opens");
        self.handlers_over(Arc::new(store))
    }

    /// As `handlers`, over a store whose writes become durable only while its gate is open,
    /// so a test can catch a handler that replies (or relays) before its data is on disk.
    pub(crate) fn gated(self) -> (Harness, Arc<GatedStore>) {
        let inner = SledStore::open(&self.config.data_dir).expect("the store opens");
        let store = Arc::new(GatedStore::new(inner));
        (self.handlers_over(store.clone()), store)
    }

    fn handlers_over(self, store: Arc<dyn Store>) -> Harness {
        assert!(
            self.clock.is_none(),
            "handler tests run on the harness's own ManualClock"
        );
        let clock = Arc::new(ManualClock::new(UnixSeconds::from_secs(START)));
        let (stop, stop_rx) = watch::channel(false);
        let (alive, _) = mpsc::channel(1);
        let state = State::new(store, self.config, clock.clone(), stop_rx, alive)
            .expect("the push pipeline's threads start");
        Harness {
            state: Arc::new(state),
            clock,
            stop,
            _scratch: self.scratch,
        }
    }
}

/// The builder handler tests start from: no heartbeats, so a stream carries only what the
/// test caused.
fn quiet() -> TestServerBuilder {
    TestServer::builder().config(|config| config.heartbeat = Duration::from_secs(3600))
}

/// The handler harness most tests use.
pub(crate) fn harness() -> Harness {
    quiet().handlers()
}

/// The handler harness over a `GatedStore`, and the store to open and close the gate on.
pub(crate) fn gated_harness() -> (Harness, Arc<GatedStore>) {
    quiet().gated()
}

/// Creates a space; returns its first device as the interceptor would describe it.
pub(crate) async fn founder(h: &Harness) -> AuthedDevice {
    let space = SpaceId::random();
    let created = PairingApi::new(h.state.clone())
        .create_space(CreateSpaceRequest {
            space_id: space.to_vec(),
            sealed_member_name: vec![],
            sealed_device_name: vec![],
            recovery_key: recovery_key_bytes(),
        })
        .await
        .expect("created");
    AuthedDevice {
        space_id: space,
        member_id: MemberId::from_slice(&created.member_id).expect("16 bytes"),
        device_id: DeviceId::from_slice(&created.device_id).expect("16 bytes"),
    }
}

/// The public key of a fresh recovery kit, as a request carries it.
pub(crate) fn recovery_key_bytes() -> Vec<u8> {
    let kit = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    kit.verifying_key().to_bytes().to_vec()
}

/// Redeems an invite of `kind` as a client does (a partner brings a recovery key); returns the
/// new device.
pub(crate) async fn join(
    h: &Harness,
    invite: &CreateInviteResponse,
    kind: kintsugi_proto::v1::InviteKind,
) -> Result<AuthedDevice, tonic::Status> {
    let recovery_key = match kind {
        kintsugi_proto::v1::InviteKind::Partner => recovery_key_bytes(),
        _ => Vec::new(),
    };
    let joined = PairingApi::new(h.state.clone())
        .accept_invite(AcceptInviteRequest {
            invite_id: invite.invite_id.clone(),
            secret: invite.secret.clone(),
            sealed_member_name: vec![],
            sealed_device_name: vec![],
            recovery_key,
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
    join(h, &invite, kind).await.expect("joined")
}
