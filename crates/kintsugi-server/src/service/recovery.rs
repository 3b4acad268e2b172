//! Recovery kits: the recovery key each member records, `PairingService.RecoverMember` and
//! `SpaceService.SetRecoveryKey`.
//!
//! A member's recovery kit holds an Ed25519 signing key; the server records its verifying key
//! (the recovery key) when the member joins, and nothing else of it. A member who lost every
//! device proves the kit with a signature over `RECOVER_CONTEXT`, the space and member ids,
//! `issued_at` (8 bytes, big-endian) and the new device's sealed name. The server checks it
//! with `verify_strict`, takes only a request issued within `MAX_CLOCK_SKEW_SECS` of its clock
//! and later than the member's last recovery (so a recorded request cannot be replayed), and
//! then, in one store transaction, revokes every device of the member and enrols a new root
//! device. An unknown space or member, a member without a key and a wrong signature get the
//! same refusal, and take about as long, so the call tells nobody who is in a space.
//! `SetRecoveryKey` replaces the key (a new kit), from a root device of the member only: the
//! kit can revoke every device, so a device that could not must not choose it. Tokens,
//! signatures and names are never logged.

use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};
use kintsugi_proto::v1::{
    RecoverMemberRequest, RecoverMemberResponse, SetRecoveryKeyRequest, SetRecoveryKeyResponse,
};

use super::{State, check_sealed_name, parse_id};
use crate::auth::AuthedDevice;
use crate::error::ServiceError;
use crate::fanout::SpaceEvent;
use crate::ids::{DeviceId, DeviceToken, MemberId, SecretHash, SpaceId};
use crate::store::{Recovered, Recovery, RecoveryKey, RecoveryKeyChange};

/// What a recovery kit's signature covers first (docs/protocol.md, RecoverMember).
pub(crate) const RECOVER_CONTEXT: &[u8] = b"kintsugi/recover-member/v1";
/// How far a recovery's `issued_at` may be from the server's clock, either way.
pub(crate) const MAX_CLOCK_SKEW_SECS: u64 = 300;

const NOT_VALID: &str = "this recovery kit is not valid for this space; check that it is the kit \
                         of this space and member, as the app shows it";
const REPLAYED: &str = "this recovery request was used already; start the recovery again from the \
                        recovery kit";
const CLOCK: &str =
    "the recovery request is too old or from the future: check this phone's clock and try again";

/// A recovery key from a request: 32 bytes that are a valid Ed25519 public key, and not one of
/// the weak (small-order) points, which `verify_strict` would refuse forever after.
pub(crate) fn recovery_key(bytes: &[u8]) -> Result<RecoveryKey, ServiceError> {
    if bytes.is_empty() {
        return Err(ServiceError::invalid(
            "recovery_key is missing: send the 32-byte public key of the member's recovery kit",
        ));
    }
    let key = RecoveryKey::from_slice(bytes).ok_or_else(|| {
        ServiceError::invalid(format!(
            "recovery_key must be 32 bytes, got {}; send the public key of the recovery kit",
            bytes.len()
        ))
    })?;
    match VerifyingKey::from_bytes(&key.0) {
        Ok(point) if !point.is_weak() => Ok(key),
        _ => Err(ServiceError::invalid(
            "recovery_key is not a valid Ed25519 public key; make a new recovery kit and send \
             its public key",
        )),
    }
}

/// The recovery key of an `AcceptInvite`: none when empty (a device link), else checked.
pub(crate) fn optional_recovery_key(bytes: &[u8]) -> Result<Option<RecoveryKey>, ServiceError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    recovery_key(bytes).map(Some)
}

/// The bytes a recovery kit signs for a `RecoverMember` request.
pub(crate) fn signed_bytes(
    space: SpaceId,
    member: MemberId,
    issued_at: i64,
    sealed_device_name: &[u8],
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(RECOVER_CONTEXT.len() + 40 + sealed_device_name.len());
    bytes.extend_from_slice(RECOVER_CONTEXT);
    bytes.extend_from_slice(space.as_bytes());
    bytes.extend_from_slice(member.as_bytes());
    bytes.extend_from_slice(&issued_at.to_be_bytes());
    bytes.extend_from_slice(sealed_device_name);
    bytes
}

/// `recorded` if `signature` over `message` verifies (strictly) under it. Without a recorded
/// key a stand-in (the Ed25519 base point) is checked all the same, so that how long a refusal
/// takes does not tell whether the member exists.
fn verified(
    recorded: Option<RecoveryKey>,
    message: &[u8],
    signature: &Signature,
) -> Option<RecoveryKey> {
    let mut stand_in = [0x66; 32];
    stand_in[0] = 0x58;
    let bytes = recorded.map_or(stand_in, |key| key.0);
    let holds = VerifyingKey::from_bytes(&bytes)
        .is_ok_and(|key| key.verify_strict(message, signature).is_ok());
    recorded.filter(|_| holds)
}

/// A `RecoverMember` request with well-formed fields.
#[derive(Debug)]
struct RecoverRequest {
    space: SpaceId,
    member: MemberId,
    issued_at: i64,
    signature: Signature,
    sealed_device_name: Vec<u8>,
}

impl RecoverRequest {
    fn parse(request: RecoverMemberRequest) -> Result<Self, ServiceError> {
        let space = parse_id(&request.space_id, "space_id", SpaceId::from_slice)?;
        let member = parse_id(&request.member_id, "member_id", MemberId::from_slice)?;
        check_sealed_name(&request.sealed_device_name, "sealed_device_name")?;
        let signature = Signature::from_slice(&request.signature).map_err(|_| {
            ServiceError::invalid(format!(
                "signature must be 64 bytes, got {}; sign the request with the recovery kit",
                request.signature.len()
            ))
        })?;
        Ok(Self {
            space,
            member,
            issued_at: request.issued_at,
            signature,
            sealed_device_name: request.sealed_device_name,
        })
    }
}

/// `RecoverMember`: a new root device for the member, every other device of it revoked.
pub(crate) async fn recover_member(
    state: &Arc<State>,
    request: RecoverMemberRequest,
) -> Result<RecoverMemberResponse, ServiceError> {
    let request = RecoverRequest::parse(request)?;
    let (space, member) = (request.space, request.member);
    let device_id = DeviceId::random();
    let token = DeviceToken::generate();
    let token_hash = token.hash();
    let revoked = state
        .blocking(move |state| recover(state, request, device_id, token_hash))
        .await?;
    state.durable().await?;
    // Ends the open Subscribe streams of every device the recovery revoked.
    for revoked_id in &revoked {
        let event = SpaceEvent::Revoked {
            device_id: *revoked_id,
        };
        state.fanout.publish(space, event);
    }
    tracing::info!(
        space = %space, member = %member, device = %device_id,
        revoked = revoked.len(), "member recovered"
    );
    Ok(RecoverMemberResponse {
        device_id: device_id.to_vec(),
        token: token.to_hex(),
        devices_revoked: u32::try_from(revoked.len()).unwrap_or(u32::MAX),
    })
}

/// Checks the request against the member's recovery key and the clock, then recovers in the
/// store. Returns the devices it revoked.
fn recover(
    state: &State,
    request: RecoverRequest,
    new_device_id: DeviceId,
    token_hash: SecretHash,
) -> Result<Vec<DeviceId>, ServiceError> {
    let (space, member) = (request.space, request.member);
    let recorded = state.store.recovery_key(space, member)?.map(|r| r.key);
    let message = signed_bytes(
        space,
        member,
        request.issued_at,
        &request.sealed_device_name,
    );
    let Some(key) = verified(recorded, &message, &request.signature) else {
        tracing::info!(space = %space, member = %member, "recovery refused: not the member's kit");
        return Err(ServiceError::PermissionDenied(NOT_VALID.into()));
    };
    let now = state.clock.now();
    if request.issued_at.abs_diff(now.as_secs()) > MAX_CLOCK_SKEW_SECS {
        return Err(ServiceError::FailedPrecondition(CLOCK.into()));
    }
    let recovery = Recovery {
        space_id: space,
        member_id: member,
        key,
        issued_at: crate::clock::UnixSeconds::from_secs(request.issued_at),
        new_device_id,
        token_hash,
        sealed_device_name: request.sealed_device_name,
        now,
    };
    match state.store.recover_member(recovery)? {
        Recovered::Enrolled { revoked } => Ok(revoked),
        Recovered::NotValid => Err(ServiceError::PermissionDenied(NOT_VALID.into())),
        Recovered::Replayed => {
            tracing::info!(space = %space, member = %member, "recovery refused: a replay");
            Err(ServiceError::PermissionDenied(REPLAYED.into()))
        }
    }
}

/// `SetRecoveryKey`: the caller's member gets a new recovery key, from a root device only.
pub(crate) async fn set_recovery_key(
    state: &Arc<State>,
    who: AuthedDevice,
    request: SetRecoveryKeyRequest,
) -> Result<SetRecoveryKeyResponse, ServiceError> {
    let key = recovery_key(&request.recovery_key)?;
    let change = state
        .blocking(move |state| {
            Ok(state
                .store
                .set_recovery_key(who.space_id, who.member_id, who.device_id, key)?)
        })
        .await?;
    if change == RecoveryKeyChange::NotRootDevice {
        return Err(ServiceError::PermissionDenied(
            "only your first device (the one that linked the others, or the one a recovery \
             made) can make a new recovery kit; run it on that device"
                .into(),
        ));
    }
    state.durable().await?;
    tracing::info!(
        space = %who.space_id, member = %who.member_id, device = %who.device_id,
        "recovery key replaced"
    );
    Ok(SetRecoveryKeyResponse {})
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ed25519_dalek::{Signer, SigningKey};
    use kintsugi_proto::v1::CreateSpaceRequest;

    use super::*;
    use crate::service::PairingApi;
    use crate::testing::handlers::harness;

    #[test]
    fn a_recovery_key_is_a_strong_ed25519_point() {
        let mut identity = [0; 32];
        identity[0] = 1;
        let refusals: [(&[u8], &str); 5] = [
            (&[], "recovery_key is missing"),
            (&[9; 31], "recovery_key must be 32 bytes, got 31"),
            (&[2; 32], "recovery_key is not a valid Ed25519 public key"),
            (&[0; 32], "recovery_key is not a valid Ed25519 public key"),
            (&identity, "recovery_key is not a valid Ed25519 public key"),
        ];
        for (bytes, says) in refusals {
            let refused = recovery_key(bytes).expect_err("refused").to_string();
            assert!(refused.starts_with(says), "{refused}");
        }
        let kit = SigningKey::from_bytes(&[4; 32]);
        let key = recovery_key(kit.verifying_key().as_bytes()).expect("a real key");
        assert_eq!(&key.0, kit.verifying_key().as_bytes());
        assert_eq!(optional_recovery_key(&[]).expect("none"), None);
    }

    #[test]
    fn only_the_recorded_key_s_signature_over_the_documented_bytes_verifies() {
        let (space, member) = (SpaceId([1; 16]), MemberId([2; 16]));
        let message = signed_bytes(space, member, 0x0102_0304_0506_0708, b"name");
        let mut expected = b"kintsugi/recover-member/v1".to_vec();
        expected.extend([1; 16]);
        expected.extend([2; 16]);
        expected.extend([1, 2, 3, 4, 5, 6, 7, 8]);
        expected.extend(b"name");
        assert_eq!(message, expected);
        let kit = SigningKey::from_bytes(&[4; 32]);
        let key = RecoveryKey(kit.verifying_key().to_bytes());
        let signature = kit.sign(&message);
        assert_eq!(verified(Some(key), &message, &signature), Some(key));
        assert_eq!(verified(None, &message, &signature), None);
        let other = RecoveryKey(SigningKey::from_bytes(&[5; 32]).verifying_key().to_bytes());
        assert_eq!(verified(Some(other), &message, &signature), None);
        let tampered = signed_bytes(space, member, 0x0102_0304_0506_0709, b"name");
        assert_eq!(verified(Some(key), &tampered, &signature), None);
    }

    /// `issued_at` may be up to `MAX_CLOCK_SKEW_SECS` away from the server's clock, no more.
    #[tokio::test]
    async fn a_request_within_five_minutes_of_the_clock_is_taken() {
        let h = harness();
        let kit = SigningKey::from_bytes(&rand::random());
        let space = SpaceId::random();
        let created = PairingApi::new(h.state.clone())
            .create_space(CreateSpaceRequest {
                space_id: space.to_vec(),
                sealed_member_name: vec![],
                sealed_device_name: vec![],
                recovery_key: kit.verifying_key().to_bytes().to_vec(),
            })
            .await
            .expect("created");
        let member = MemberId::from_slice(&created.member_id).expect("16 bytes");
        let request = |issued_at: i64| RecoverMemberRequest {
            space_id: space.to_vec(),
            member_id: member.to_vec(),
            sealed_device_name: vec![],
            issued_at,
            signature: kit
                .sign(&signed_bytes(space, member, issued_at, &[]))
                .to_vec(),
        };
        let now = h.state.clock.now().as_secs();
        for issued_at in [now - 301, now + 301] {
            let refused = recover_member(&h.state, request(issued_at)).await;
            let refused = tonic::Status::from(refused.expect_err("outside the window"));
            assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
            assert_eq!(refused.message(), CLOCK);
        }
        let first = recover_member(&h.state, request(now - 300)).await;
        assert_eq!(first.expect("at the edge").devices_revoked, 1);
        h.clock.advance(Duration::from_secs(600));
        let later = recover_member(&h.state, request(now + 900)).await;
        assert_eq!(later.expect("at the other edge").devices_revoked, 1);
    }
}
