//! `SpaceService`: invites, the device list and revocation, for an authenticated device.
//! (`SetRecoveryKey` is answered in `recovery`, with the rest of recovery kits.)
//!
//! An invite is an id plus a 32-byte secret that the inviting device shows its partner (or
//! its owner's other device) as a code; the server keeps the secret's hash, an expiry, a
//! counter of wrong attempts and the device that made it. Revoking that device voids its
//! invites: they are deleted, and one that slipped past is refused when redeemed. A member may revoke only their own devices: revoking the
//! partner's phone would be a way to shut them out of the shared agreement. Among them, a
//! device revokes only younger devices or those it linked, never itself, and revoking a device
//! revokes every device it linked, transitively (`DeviceInfo::may_revoke`): a stolen phone
//! cannot lock out the owner's first phone, and what a thief linked goes with the phone. A
//! revoked device stays listed, so both partners can see that it happened.
//!
//! `LeaveSpace` is the exception: it erases the caller's member entirely (private documents,
//! devices, token hashes, invites), and the whole space with its last member. Erasure is
//! real: after the store has deleted the records and made that durable, the handler vacuums
//! the store so the ciphertext is gone from its files too (see `store::sled_vacuum`).

use std::sync::Arc;

use kintsugi_proto::v1::space_service_server::SpaceService;
use kintsugi_proto::v1::{
    CreateInviteRequest, CreateInviteResponse, Device, LeaveSpaceRequest, LeaveSpaceResponse,
    ListDevicesRequest, ListDevicesResponse, RevokeDeviceRequest, RevokeDeviceResponse,
    SetRecoveryKeyRequest, SetRecoveryKeyResponse,
};
use tonic::{Request, Response, Status};

use super::{State, parse_id};
use crate::auth::{AuthedDevice, authed};
use crate::error::ServiceError;
use crate::fanout::SpaceEvent;
use crate::ids::{DeviceId, InviteId, SecretHash, random_secret};
use crate::store::{InviteKind, NewInvite, Revocation};

/// The space handlers.
#[derive(Debug, Clone)]
pub(crate) struct SpaceApi {
    state: Arc<State>,
}

impl SpaceApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    pub(crate) async fn create_invite(
        &self,
        who: AuthedDevice,
        request: CreateInviteRequest,
    ) -> Result<CreateInviteResponse, ServiceError> {
        let kind = match kintsugi_proto::v1::InviteKind::try_from(request.kind) {
            Ok(kintsugi_proto::v1::InviteKind::Partner) => InviteKind::Partner,
            Ok(kintsugi_proto::v1::InviteKind::Device) => InviteKind::Device,
            _ => {
                return Err(ServiceError::invalid(
                    "invite kind must be INVITE_KIND_PARTNER or INVITE_KIND_DEVICE",
                ));
            }
        };
        let now = self.state.clock.now();
        let secret = random_secret();
        let invite = NewInvite {
            invite_id: InviteId::random(),
            space_id: who.space_id,
            member_id: who.member_id,
            device_id: who.device_id,
            kind,
            secret_hash: SecretHash::of(&secret),
            expires_at: now.plus(self.state.config.invite_ttl),
            now,
        };
        let (invite_id, expires_at) = (invite.invite_id, invite.expires_at);
        self.state
            .blocking(move |state| {
                if kind == InviteKind::Partner && state.store.member_count(who.space_id)? >= 2 {
                    return Err(ServiceError::FailedPrecondition(
                        "this space already has two partners; invite a device instead".into(),
                    ));
                }
                Ok(state.store.create_invite(invite)?)
            })
            .await?;
        self.state.durable().await?;
        tracing::info!(space = %who.space_id, invite = %invite_id, ?kind, "invite created");
        Ok(CreateInviteResponse {
            invite_id: invite_id.to_vec(),
            secret: secret.to_vec(),
            expires_at: expires_at.as_secs(),
        })
    }

    pub(crate) async fn list_devices(
        &self,
        who: AuthedDevice,
    ) -> Result<ListDevicesResponse, ServiceError> {
        let devices = self
            .state
            .blocking(move |state| Ok(state.store.list_devices(who.space_id)?))
            .await?;
        Ok(ListDevicesResponse {
            devices: devices
                .into_iter()
                .map(|device| Device {
                    device_id: device.device_id.to_vec(),
                    member_id: device.member_id.to_vec(),
                    sealed_device_name: device.sealed_device_name,
                    sealed_member_name: device.sealed_member_name,
                    revoked: device.revoked,
                    created_at: device.created_at.as_secs(),
                    enrolled_by: device.enrolled_by.map(DeviceId::to_vec).unwrap_or_default(),
                })
                .collect(),
        })
    }

    pub(crate) async fn revoke_device(
        &self,
        who: AuthedDevice,
        request: RevokeDeviceRequest,
    ) -> Result<RevokeDeviceResponse, ServiceError> {
        let target = parse_id(&request.device_id, "device_id", DeviceId::from_slice)?;
        let outcome = self
            .state
            .blocking(move |state| {
                Ok(state
                    .store
                    .revoke_device(who.space_id, who.member_id, who.device_id, target)?)
            })
            .await?;
        let cascade = match outcome {
            Revocation::Revoked { cascade } => cascade,
            Revocation::AlreadyRevoked => Vec::new(),
            refused => return Err(refusal(refused)),
        };
        self.state.durable().await?;
        tracing::info!(space = %who.space_id, device = %target, by = %who.device_id, cascade = cascade.len(), "device revoked");
        // Ends the open Subscribe streams of the device and of every device it enrolled.
        for device_id in std::iter::once(target).chain(cascade) {
            self.state
                .fanout
                .publish(who.space_id, SpaceEvent::Revoked { device_id });
        }
        Ok(RevokeDeviceResponse {})
    }
}

/// The error for a revocation the rules refuse.
fn refusal(outcome: Revocation) -> ServiceError {
    match outcome {
        Revocation::OtherMember => ServiceError::PermissionDenied(
            "you can revoke only your own devices; your partner revokes theirs".into(),
        ),
        Revocation::Itself => ServiceError::PermissionDenied(
            "a device cannot revoke itself; to stop using this one, run `kintsugi wipe` on it, \
             or `kintsugi leave` to leave the space"
                .into(),
        ),
        Revocation::Older => ServiceError::PermissionDenied(
            "this device can revoke only the devices it linked; revoke that one from your \
             first device (the one that linked the others)"
                .into(),
        ),
        _ => ServiceError::NotFound(
            "no such device in your space; list the devices to see their ids".into(),
        ),
    }
}

impl SpaceApi {
    pub(crate) async fn leave_space(
        &self,
        who: AuthedDevice,
    ) -> Result<LeaveSpaceResponse, ServiceError> {
        let departure = self
            .state
            .blocking(move |state| {
                // Leaving erases the member's devices and private documents: only a device
                // that could revoke all the others may do it, or a stolen phone could.
                let devices = state.store.list_devices(who.space_id)?;
                let caller = devices.iter().find(|d| d.device_id == who.device_id);
                if !caller.is_some_and(|c| c.speaks_for_member(&devices)) {
                    return Err(ServiceError::PermissionDenied(
                        "only your first device (the one that linked the others) can leave the \
                         space; to stop using this one, run `kintsugi wipe` on it"
                            .into(),
                    ));
                }
                Ok(state.store.leave_space(who.space_id, who.member_id)?)
            })
            .await?;
        self.state.durable().await?;
        for device_id in &departure.devices {
            // Ends the open Subscribe streams of every device of the member.
            let event = SpaceEvent::Revoked {
                device_id: *device_id,
            };
            self.state.fanout.publish(who.space_id, event);
        }
        // Deleted values linger in sled's files until they are rewritten; rewrite them now.
        let vacuumed = self.state.blocking(|state| Ok(state.store.vacuum()?)).await;
        if let Err(error) = vacuumed {
            tracing::error!(%error, "vacuum after a leave failed; run `kintsugi admin vacuum`");
        }
        crate::metrics::refresh_store_gauge(&self.state).await;
        tracing::info!(
            space = %who.space_id, member = %who.member_id,
            devices = departure.devices.len(), documents = departure.documents,
            space_erased = departure.space_erased, "member left the space"
        );
        Ok(LeaveSpaceResponse {
            devices_removed: u32::try_from(departure.devices.len()).unwrap_or(u32::MAX),
            documents_removed: u32::try_from(departure.documents).unwrap_or(u32::MAX),
            space_erased: departure.space_erased,
        })
    }
}

#[tonic::async_trait]
impl SpaceService for SpaceApi {
    async fn leave_space(
        &self,
        request: Request<LeaveSpaceRequest>,
    ) -> Result<Response<LeaveSpaceResponse>, Status> {
        let who = authed(&request)?;
        Ok(Response::new(self.leave_space(who).await?))
    }

    async fn create_invite(
        &self,
        request: Request<CreateInviteRequest>,
    ) -> Result<Response<CreateInviteResponse>, Status> {
        let who = authed(&request)?;
        Ok(Response::new(
            self.create_invite(who, request.into_inner()).await?,
        ))
    }

    async fn list_devices(
        &self,
        request: Request<ListDevicesRequest>,
    ) -> Result<Response<ListDevicesResponse>, Status> {
        let who = authed(&request)?;
        Ok(Response::new(self.list_devices(who).await?))
    }

    async fn revoke_device(
        &self,
        request: Request<RevokeDeviceRequest>,
    ) -> Result<Response<RevokeDeviceResponse>, Status> {
        let who = authed(&request)?;
        Ok(Response::new(
            self.revoke_device(who, request.into_inner()).await?,
        ))
    }

    async fn set_recovery_key(
        &self,
        request: Request<SetRecoveryKeyRequest>,
    ) -> Result<Response<SetRecoveryKeyResponse>, Status> {
        let who = authed(&request)?;
        let set = super::recovery::set_recovery_key(&self.state, who, request.into_inner()).await?;
        Ok(Response::new(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::handlers::{Harness, founder, harness, invite_and_join, join};

    fn kind(kind: kintsugi_proto::v1::InviteKind) -> CreateInviteRequest {
        CreateInviteRequest { kind: kind as i32 }
    }

    #[tokio::test]
    async fn an_invite_expires_after_its_time_to_live() {
        let h = harness();
        let api = SpaceApi::new(h.state.clone());
        let me = founder(&h).await;
        let invite = api
            .create_invite(me, kind(kintsugi_proto::v1::InviteKind::Device))
            .await
            .expect("invite");
        assert_eq!(invite.expires_at, h.clock_now() + 86_400);
        h.clock.advance(std::time::Duration::from_secs(86_400));
        let device = kintsugi_proto::v1::InviteKind::Device;
        let status = join(&h, &invite, device).await.expect_err("expired");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(status.message(), "invite code expired; ask for a new one");
    }

    #[tokio::test]
    async fn a_third_partner_is_refused_and_partners_cannot_revoke_each_other() {
        let h = harness();
        let api = SpaceApi::new(h.state.clone());
        let me = founder(&h).await;
        let invite = api
            .create_invite(me, kind(kintsugi_proto::v1::InviteKind::Partner))
            .await
            .expect("invite");
        let partner = join(&h, &invite, kintsugi_proto::v1::InviteKind::Partner)
            .await
            .expect("partner joins");
        assert_ne!(partner.member_id, me.member_id);
        let third = api
            .create_invite(me, kind(kintsugi_proto::v1::InviteKind::Partner))
            .await;
        assert_eq!(
            Status::from(third.expect_err("full")).code(),
            tonic::Code::FailedPrecondition
        );
        let revoke = RevokeDeviceRequest {
            device_id: partner.device_id.to_vec(),
        };
        let refused = api
            .revoke_device(me, revoke.clone())
            .await
            .expect_err("not mine");
        assert_eq!(Status::from(refused).code(), tonic::Code::PermissionDenied);
        let itself = api.revoke_device(partner, revoke).await;
        assert_eq!(
            Status::from(itself.expect_err("itself")).code(),
            tonic::Code::PermissionDenied,
            "a device cannot revoke itself"
        );
        let tablet = invite_and_join(&h, partner, kintsugi_proto::v1::InviteKind::Device).await;
        let revoke = RevokeDeviceRequest {
            device_id: tablet.device_id.to_vec(),
        };
        api.revoke_device(partner, revoke)
            .await
            .expect("a member revokes a device they linked");
        let listed = api.list_devices(me).await.expect("list").devices;
        assert_eq!(listed.len(), 3);
        let revoked: Vec<&[u8]> = listed
            .iter()
            .filter(|d| d.revoked)
            .map(|d| d.device_id.as_slice())
            .collect();
        assert_eq!(revoked, [tablet.device_id.as_bytes().as_slice()]);
    }

    /// The stolen-phone attack: a thief links a device from the stolen phone and tries to
    /// revoke the owner's first phone. The younger phone cannot revoke the older one, and the
    /// owner's first phone revokes the stolen one with everything linked through it.
    #[tokio::test]
    async fn revocation_cascades_and_a_younger_device_cannot_lock_out_the_first() {
        use kintsugi_proto::v1::InviteKind::Device;
        let h = harness();
        let api = SpaceApi::new(h.state.clone());
        let first = founder(&h).await;
        let stolen = invite_and_join(&h, first, Device).await;
        let thiefs = invite_and_join(&h, stolen, Device).await;
        let revoke = |d: AuthedDevice| RevokeDeviceRequest {
            device_id: d.device_id.to_vec(),
        };
        for attacker in [stolen, thiefs] {
            let refused = api.revoke_device(attacker, revoke(first)).await;
            assert_eq!(
                Status::from(refused.expect_err("older")).code(),
                tonic::Code::PermissionDenied
            );
        }
        api.revoke_device(first, revoke(stolen))
            .await
            .expect("the first phone revokes the stolen one");
        let listed = api.list_devices(first).await.expect("list").devices;
        let revoked = |d: AuthedDevice| {
            listed
                .iter()
                .find(|x| x.device_id == d.device_id.to_vec())
                .map(|x| x.revoked)
        };
        assert_eq!(revoked(stolen), Some(true));
        assert_eq!(
            revoked(thiefs),
            Some(true),
            "the cascade reaches what it linked"
        );
        assert_eq!(revoked(first), Some(false));
        let linked_by = listed
            .iter()
            .find(|x| x.device_id == thiefs.device_id.to_vec())
            .map(|x| x.enrolled_by.clone());
        assert_eq!(linked_by, Some(stolen.device_id.to_vec()));
    }

    /// The regression: an invite recorded only its member, so a link code made on a phone
    /// that was then revoked (lost, stolen) could still add a device for 24 hours.
    #[tokio::test]
    async fn a_code_made_on_a_revoked_device_cannot_be_redeemed() {
        use kintsugi_proto::v1::InviteKind::{Device, Partner};
        let h = harness();
        let api = SpaceApi::new(h.state.clone());
        let me = founder(&h).await;
        let phone = invite_and_join(&h, me, Device).await;
        let link = api
            .create_invite(phone, kind(Device))
            .await
            .expect("invite");
        let partner = api
            .create_invite(phone, kind(Partner))
            .await
            .expect("invite");
        let mine = api.create_invite(me, kind(Device)).await.expect("invite");
        let revoke = RevokeDeviceRequest {
            device_id: phone.device_id.to_vec(),
        };
        api.revoke_device(me, revoke).await.expect("revoked");
        for (code, kind) in [(&link, Device), (&partner, Partner)] {
            let refused = join(&h, code, kind)
                .await
                .expect_err("the phone's codes went with it");
            assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
        }
        join(&h, &mine, Device)
            .await
            .expect("codes of the member's other devices still work");

        // A code stored in the moment between the phone's last authenticated call and its
        // revocation is refused when it is redeemed.
        let late = api
            .create_invite(phone, kind(Device))
            .await
            .expect("the handler trusts its caller");
        let refused = join(&h, &late, Device).await.expect_err("refused");
        assert_eq!(
            (refused.code(), refused.message()),
            (
                tonic::Code::FailedPrecondition,
                "the device that made this invite was revoked; ask for a new one"
            )
        );
        let again = join(&h, &late, Device).await.expect_err("used up");
        assert_eq!(
            again.code(),
            tonic::Code::NotFound,
            "the refusal deleted it"
        );
    }

    impl Harness {
        fn clock_now(&self) -> i64 {
            use crate::clock::Clock;
            self.clock.now().as_secs()
        }
    }
}
