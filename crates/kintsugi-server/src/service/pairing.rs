//! `PairingService`: the calls a device makes before it has a token.
//!
//! `CreateSpace` makes a space whose first member and device are the caller; `AcceptInvite`
//! redeems a single-use, expiring invite secret for a token, adding either the second partner
//! or another device of the inviting member; `RecoverMember` (in `recovery`) enrols a new first
//! device for a member who lost every device. All are unauthenticated by nature, so they hand
//! out nothing without proof: the space id must be new, an invite secret is compared by hash,
//! counted when wrong, and burnt after a few failures, and a recovery must be signed by the
//! member's recovery key. A new member (the first, or a partner) brings that key along. Tokens
//! are returned once and kept only as hashes. Every call is rate limited per client address
//! (`limits`), which bounds how fast anyone can fill the disk with spaces or guess at secrets.

use std::sync::Arc;

use kintsugi_proto::v1::pairing_service_server::PairingService;
use kintsugi_proto::v1::{
    AcceptInviteRequest, AcceptInviteResponse, CreateSpaceRequest, CreateSpaceResponse,
    RecoverMemberRequest, RecoverMemberResponse,
};
use tonic::{Request, Response, Status};

use super::recovery::{optional_recovery_key, recovery_key};
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
        let recovery_key = recovery_key(&request.recovery_key)?;
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
            recovery_key,
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
        let recovery_key = optional_recovery_key(&request.recovery_key)?;
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
            recovery_key,
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
        Redeemed::RecoveryKeyMissing => Err(ServiceError::invalid(
            "a partner joins with a recovery key: send the 32-byte public key of the new \
             member's recovery kit as recovery_key",
        )),
        Redeemed::RecoveryKeyUnexpected => Err(ServiceError::invalid(
            "a linked device joins a member who has a recovery kit already: send recovery_key \
             empty with a device-link code",
        )),
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

    async fn recover_member(
        &self,
        request: Request<RecoverMemberRequest>,
    ) -> Result<Response<RecoverMemberResponse>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        self.state.limits.pairing_call(peer)?;
        let recovered = super::recovery::recover_member(&self.state, request.into_inner()).await?;
        Ok(Response::new(recovered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::handlers::{harness, recovery_key_bytes};

    fn new_space(sealed_member_name: Vec<u8>) -> CreateSpaceRequest {
        CreateSpaceRequest {
            space_id: SpaceId::random().to_vec(),
            sealed_member_name,
            sealed_device_name: b"phone".to_vec(),
            recovery_key: recovery_key_bytes(),
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
            recovery_key: vec![],
        };
        let status = Status::from(api.accept_invite(request).await.expect_err("unknown"));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(status.message().contains("ask for a new one"));
    }

    #[tokio::test]
    async fn a_space_is_created_only_with_a_valid_recovery_key() {
        let h = harness();
        let api = PairingApi::new(h.state.clone());
        let mut identity = vec![0; 32];
        identity[0] = 1;
        for (key, says) in [
            (vec![], "recovery_key is missing"),
            (vec![9; 31], "recovery_key must be 32 bytes"),
            (identity, "recovery_key is not a valid Ed25519 public key"),
        ] {
            let request = CreateSpaceRequest {
                recovery_key: key,
                ..new_space(vec![])
            };
            let space_id = SpaceId::from_slice(&request.space_id).expect("16 bytes");
            let refused = Status::from(api.create_space(request).await.expect_err("refused"));
            assert_eq!(refused.code(), tonic::Code::InvalidArgument);
            assert!(refused.message().starts_with(says), "{}", refused.message());
            let members = h.state.store.member_count(space_id);
            assert!(members.is_err(), "no space was made");
        }
        let request = new_space(vec![]);
        let (space_id, key) = (request.space_id.clone(), request.recovery_key.clone());
        let created = api.create_space(request).await.expect("created");
        let space_id = SpaceId::from_slice(&space_id).expect("16 bytes");
        let member = MemberId::from_slice(&created.member_id).expect("16 bytes");
        let recorded = h.state.store.recovery_key(space_id, member).expect("read");
        assert_eq!(recorded.map(|r| r.key.0.to_vec()), Some(key));
    }

    #[tokio::test]
    async fn a_partner_brings_a_recovery_key_and_a_linked_device_none() {
        use crate::service::SpaceApi;
        use crate::testing::handlers::founder;
        use kintsugi_proto::v1::{CreateInviteRequest, InviteKind as Kind};
        let h = harness();
        let api = PairingApi::new(h.state.clone());
        let me = founder(&h).await;
        let spaces = SpaceApi::new(h.state.clone());
        for (kind, wrong, says) in [
            (Kind::Partner, vec![], "a partner joins with a recovery key"),
            (Kind::Device, recovery_key_bytes(), "a linked device joins"),
        ] {
            let request = CreateInviteRequest { kind: kind as i32 };
            let invite = spaces.create_invite(me, request).await.expect("invite");
            let accept = |recovery_key| AcceptInviteRequest {
                invite_id: invite.invite_id.clone(),
                secret: invite.secret.clone(),
                sealed_member_name: vec![],
                sealed_device_name: vec![],
                recovery_key,
            };
            let refused = api.accept_invite(accept(wrong)).await.expect_err("refused");
            let refused = Status::from(refused);
            assert_eq!(refused.code(), tonic::Code::InvalidArgument);
            assert!(refused.message().starts_with(says), "{}", refused.message());
            let right = match kind {
                Kind::Partner => recovery_key_bytes(),
                _ => vec![],
            };
            api.accept_invite(accept(right))
                .await
                .expect("the invite still works");
        }
    }
}
