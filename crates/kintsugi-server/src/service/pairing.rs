//! `PairingService`: the two calls a device makes before it has a token.
//!
//! `CreateSpace` makes a space whose first member and device are the caller; `AcceptInvite`
//! redeems a single-use, expiring invite secret for a token, adding either the second partner
//! or another device of the inviting member. Both are unauthenticated by nature, so they hand
//! out nothing without proof: the space id must be new, and an invite secret is compared by
//! hash, counted when wrong, and burnt after a few failures. Tokens are returned once and
//! kept only as hashes. Both calls are rate limited per client address (`limits`), which
//! bounds how fast anyone can fill the disk with spaces or guess at invite secrets.

use std::sync::Arc;

use kintsugi_proto::v1::pairing_service_server::PairingService;
use kintsugi_proto::v1::{
    AcceptInviteRequest, AcceptInviteResponse, CreateSpaceRequest, CreateSpaceResponse,
};
use tonic::{Request, Response, Status};

use super::{State, check_sealed_name, parse_id};
use crate::error::ServiceError;
use crate::ids::{DeviceId, DeviceToken, InviteId, MemberId, SecretHash, SpaceId};
use crate::store::{InviteKind, NewSpace, RedeemInvite, Redeemed};

/// The pairing handlers.
#[derive(Debug, Clone)]
pub(crate) struct PairingApi {
    state: Arc<State>,
}

impl PairingApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    pub(crate) async fn create_space(
        &self,
        request: CreateSpaceRequest,
    ) -> Result<CreateSpaceResponse, ServiceError> {
        let space_id = parse_id(&request.space_id, "space_id", SpaceId::from_slice)?;
        check_sealed_name(&request.sealed_member_name, "sealed_member_name")?;
        check_sealed_name(&request.sealed_device_name, "sealed_device_name")?;
        let member_id = MemberId::random();
        let device_id = DeviceId::random();
        let token = DeviceToken::generate();
        let space = NewSpace {
            space_id,
            member_id,
            device_id,
            token_hash: token.hash(),
            sealed_member_name: request.sealed_member_name,
            sealed_device_name: request.sealed_device_name,
            now: self.state.clock.now(),
        };
        self.state
            .blocking(move |state| Ok(state.store.create_space(space)?))
            .await?;
        self.state.durable().await?;
        tracing::info!(space = %space_id, member = %member_id, device = %device_id, "space created");
        Ok(CreateSpaceResponse {
            member_id: member_id.to_vec(),
            device_id: device_id.to_vec(),
            token: token.to_hex(),
        })
    }

    pub(crate) async fn accept_invite(
        &self,
        request: AcceptInviteRequest,
    ) -> Result<AcceptInviteResponse, ServiceError> {
        let invite_id = check_accept_request(&request)?;
        let token = DeviceToken::generate();
        let redeem = RedeemInvite {
            invite_id,
            secret_hash: SecretHash::of(&request.secret),
            now: self.state.clock.now(),
            max_failed_attempts: self.state.config.max_invite_attempts.max(1),
            new_member_id: MemberId::random(),
            new_device_id: DeviceId::random(),
            token_hash: token.hash(),
            sealed_member_name: request.sealed_member_name,
            sealed_device_name: request.sealed_device_name,
        };
        let outcome = self
            .state
            .blocking(move |state| Ok(state.store.redeem_invite(redeem)?))
            .await?;
        // Refusals change the store too (attempt counters, deleted invites): sync them as well.
        self.state.durable().await?;
        answer(outcome, invite_id, &token)
    }
}

/// The invite id of a well-formed request; refuses a bad id, secret or sealed name.
fn check_accept_request(request: &AcceptInviteRequest) -> Result<InviteId, ServiceError> {
    let invite_id = InviteId::from_slice(&request.invite_id).ok_or_else(|| {
        ServiceError::invalid(
            "invite_id must be 16 bytes; check that the invite code was copied whole",
        )
    })?;
    if request.secret.len() != 32 {
        return Err(ServiceError::invalid(
            "invite secret must be 32 bytes; check that the invite code was copied whole",
        ));
    }
    check_sealed_name(&request.sealed_member_name, "sealed_member_name")?;
    check_sealed_name(&request.sealed_device_name, "sealed_device_name")?;
    Ok(invite_id)
}

/// The response to a device that joined, with its token (logged without it).
fn joined(
    space_id: SpaceId,
    member_id: MemberId,
    device_id: DeviceId,
    kind: InviteKind,
    token: &DeviceToken,
) -> AcceptInviteResponse {
    let kind_name = match kind {
        InviteKind::Partner => "partner",
        InviteKind::Device => "device",
    };
    tracing::info!(
        space = %space_id, member = %member_id, device = %device_id,
        kind = kind_name, "device joined"
    );
    AcceptInviteResponse {
        space_id: space_id.to_vec(),
        member_id: member_id.to_vec(),
        device_id: device_id.to_vec(),
        token: token.to_hex(),
        kind: proto_invite_kind(kind) as i32,
    }
}

/// The answer to a redemption: the joined device's response, or the refusal's error.
fn answer(
    outcome: Redeemed,
    invite_id: InviteId,
    token: &DeviceToken,
) -> Result<AcceptInviteResponse, ServiceError> {
    match outcome {
        Redeemed::Joined {
            space_id,
            member_id,
            device_id,
            kind,
        } => Ok(joined(space_id, member_id, device_id, kind, token)),
        Redeemed::Unknown => Err(ServiceError::NotFound(
            "invite code is unknown or was already used; ask for a new one".into(),
        )),
        Redeemed::Expired => Err(ServiceError::FailedPrecondition(
            "invite code expired; ask for a new one".into(),
        )),
        Redeemed::WrongSecret => {
            tracing::info!(invite = %invite_id, "invite redeemed with a wrong secret");
            Err(ServiceError::PermissionDenied(
                "invite code is wrong".into(),
            ))
        }
        Redeemed::SpaceFull => Err(ServiceError::FailedPrecondition(
            "this space already has two partners; ask for a device invite instead".into(),
        )),
        Redeemed::TooManyDevices => Err(ServiceError::FailedPrecondition(format!(
            "this partner has {} devices linked, the most there may be; revoke one that is no \
             longer used (`kintsugi devices`, `kintsugi revoke`) and use the code again",
            crate::store::MAX_DEVICES_PER_MEMBER
        ))),
        Redeemed::InviterRevoked => {
            tracing::info!(invite = %invite_id, "invite of a revoked device refused");
            Err(ServiceError::FailedPrecondition(
                "the device that made this invite was revoked; ask for a new one".into(),
            ))
        }
    }
}

/// The protocol's name for an invite kind.
pub(crate) fn proto_invite_kind(kind: InviteKind) -> kintsugi_proto::v1::InviteKind {
    match kind {
        InviteKind::Partner => kintsugi_proto::v1::InviteKind::Partner,
        InviteKind::Device => kintsugi_proto::v1::InviteKind::Device,
    }
}

#[tonic::async_trait]
impl PairingService for PairingApi {
    async fn create_space(
        &self,
        request: Request<CreateSpaceRequest>,
    ) -> Result<Response<CreateSpaceResponse>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        self.state.limits.pairing_call(peer)?;
        Ok(Response::new(
            self.create_space(request.into_inner()).await?,
        ))
    }

    async fn accept_invite(
        &self,
        request: Request<AcceptInviteRequest>,
    ) -> Result<Response<AcceptInviteResponse>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        self.state.limits.pairing_call(peer)?;
        Ok(Response::new(
            self.accept_invite(request.into_inner()).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::handlers::harness;

    fn new_space(sealed_member_name: Vec<u8>) -> CreateSpaceRequest {
        CreateSpaceRequest {
            space_id: SpaceId::random().to_vec(),
            sealed_member_name,
            sealed_device_name: b"phone".to_vec(),
        }
    }

    #[tokio::test]
    async fn a_new_space_hands_out_a_hex_token_kept_only_as_a_hash() {
        let h = harness();
        let api = PairingApi::new(h.state.clone());
        let created = api
            .create_space(new_space(b"me".to_vec()))
            .await
            .expect("created");
        assert_eq!(created.token.len(), 64);
        let token = DeviceToken::from_hex(&created.token).expect("hex");
        let device = h
            .state
            .store
            .device_by_token_hash(&token.hash())
            .expect("read")
            .expect("found");
        assert_eq!(device.device_id.to_vec(), created.device_id);
    }

    #[tokio::test]
    async fn a_taken_space_id_and_oversized_names_are_refused() {
        let h = harness();
        let api = PairingApi::new(h.state.clone());
        let request = new_space(b"me".to_vec());
        api.create_space(request.clone()).await.expect("created");
        let again = Status::from(api.create_space(request).await.expect_err("taken"));
        assert_eq!(again.code(), tonic::Code::AlreadyExists);
        let big = Status::from(
            api.create_space(new_space(vec![0; 2048]))
                .await
                .expect_err("big"),
        );
        assert_eq!(big.code(), tonic::Code::InvalidArgument);
        let short = CreateSpaceRequest {
            space_id: vec![1; 8],
            ..new_space(vec![])
        };
        let short = Status::from(api.create_space(short).await.expect_err("short id"));
        assert_eq!(short.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn an_unknown_invite_is_not_found() {
        let h = harness();
        let api = PairingApi::new(h.state.clone());
        let request = AcceptInviteRequest {
            invite_id: vec![7; 16],
            secret: vec![1; 32],
            sealed_member_name: vec![],
            sealed_device_name: vec![],
        };
        let status = Status::from(api.accept_invite(request).await.expect_err("unknown"));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(status.message().contains("ask for a new one"));
    }
}
