//! Bearer-token authentication, as a tonic interceptor in front of the authenticated services.
//!
//! A device sends `authorization: Bearer <64 hex characters>`. The interceptor hashes the
//! token, finds the device by hash, compares the stored hash in constant time, refuses
//! revoked devices, and hands the handlers an `AuthedDevice` in the request extensions, so no
//! handler repeats any of this. The server never stores the token itself: a copy of the data
//! folder does not let anyone act as a device.
//!
//! tonic interceptors are synchronous, so the lookup is a direct sled read rather than a
//! `spawn_blocking` hop. That is deliberate: it is one point read of a small, hot key that
//! sled serves from its page cache, far cheaper than moving the request to another thread.
//! Reads never wait for the store's write pause, so a backup does not stall this.
//!
//! Once the device is known, the interceptor records it on the call's span (`observe`) and
//! takes a token from the device's rate-limit bucket. The operator's `AdminService` has its
//! own interceptor, `AdminAuthenticator`, which compares the SHA-256 of the presented admin
//! token with the one the server computed at start (see `admin_token`).

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::ids::{DeviceId, DeviceToken, MemberId, SecretHash, SpaceId};
use crate::observe::CallTag;
use crate::service::State;
use crate::store::StoreError;

/// Who is calling: set by the interceptor, read by every authenticated handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthedDevice {
    pub space_id: SpaceId,
    pub member_id: MemberId,
    pub device_id: DeviceId,
}

pub(crate) const MISSING_TOKEN: &str =
    "missing bearer token; send `authorization: Bearer <token>` from your device's state";
pub(crate) const MALFORMED_TOKEN: &str =
    "malformed bearer token; expected `authorization: Bearer <64 hex characters>`";
pub(crate) const UNKNOWN_TOKEN: &str = "unknown device token; join the space again";
pub(crate) const REVOKED_DEVICE: &str =
    "this device was revoked; ask your partner for a new invite, or link it again";

pub(crate) const ADMIN_TOKEN: &str =
    "wrong admin token; send the token from the server's DATA/admin-token file";

/// The interceptor. Cheap to clone: it shares the state.
#[derive(Debug, Clone)]
pub(crate) struct Authenticator {
    state: Arc<State>,
}

impl Authenticator {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    fn authenticate(&self, metadata: &MetadataMap) -> Result<AuthedDevice, Status> {
        let token = bearer_token(metadata)?;
        let presented = token.hash();
        let device = match self.state.store.device_by_token_hash(&presented) {
            Ok(Some(device)) => device,
            Ok(None) => return Err(Status::unauthenticated(UNKNOWN_TOKEN)),
            Err(StoreError::Unavailable(message)) => {
                return Err(Status::unavailable(message));
            }
            Err(error) => {
                tracing::error!(%error, "looking up a device token failed");
                return Err(Status::internal("internal server error; try again later"));
            }
        };
        // The lookup already matched by hash; comparing again in constant time keeps the
        // check independent of how a backend implements its index.
        if !device.token_hash.matches(&presented) {
            return Err(Status::unauthenticated(UNKNOWN_TOKEN));
        }
        if device.revoked {
            return Err(Status::unauthenticated(REVOKED_DEVICE));
        }
        Ok(AuthedDevice {
            space_id: device.space_id,
            member_id: device.member_id,
            device_id: device.device_id,
        })
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let device = self.authenticate(request.metadata())?;
        if let Some(tag) = request.extensions().get::<CallTag>() {
            tag.caller(&device);
        }
        self.state.limits.device_call(device.device_id)?;
        request.extensions_mut().insert(device);
        Ok(request)
    }
}

/// The admin interceptor: the admin token's hash, computed once at start.
#[derive(Debug, Clone)]
pub(crate) struct AdminAuthenticator {
    token_hash: SecretHash,
}

impl AdminAuthenticator {
    pub(crate) fn new(token_hash: SecretHash) -> Self {
        Self { token_hash }
    }
}

impl Interceptor for AdminAuthenticator {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let token = bearer_token(request.metadata())?;
        if !self.token_hash.matches(&token.hash()) {
            return Err(Status::unauthenticated(ADMIN_TOKEN));
        }
        Ok(request)
    }
}

/// Reads the token from `authorization: Bearer <hex>`.
fn bearer_token(metadata: &MetadataMap) -> Result<DeviceToken, Status> {
    let Some(value) = metadata.get(kintsugi_proto::AUTHORIZATION) else {
        return Err(Status::unauthenticated(MISSING_TOKEN));
    };
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated(MALFORMED_TOKEN))?
        .trim();
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| Status::unauthenticated(MALFORMED_TOKEN))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Status::unauthenticated(MALFORMED_TOKEN));
    }
    DeviceToken::from_hex(token.trim()).ok_or_else(|| Status::unauthenticated(MALFORMED_TOKEN))
}

/// The caller of an authenticated handler.
pub(crate) fn authed<T>(request: &Request<T>) -> Result<AuthedDevice, Status> {
    request
        .extensions()
        .get::<AuthedDevice>()
        .copied()
        // Only reachable if a service was mounted without the interceptor: a server bug.
        .ok_or_else(|| Status::internal("internal server error: request was not authenticated"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UnixSeconds;
    use crate::store::NewSpace;
    use crate::testing::handlers::harness;

    /// Links `device`, holding `token`, to `member` through an invite made on `founder`.
    fn link_device(
        store: &dyn crate::store::Store,
        (space, member, founder): (SpaceId, MemberId, DeviceId),
        device: DeviceId,
        token: &DeviceToken,
    ) {
        use crate::store::{InviteKind, NewInvite, RedeemInvite, Redeemed};
        let secret = crate::ids::random_secret();
        let invite_id = crate::ids::InviteId::random();
        let invite = NewInvite {
            invite_id,
            space_id: space,
            member_id: member,
            device_id: founder,
            kind: InviteKind::Device,
            secret_hash: SecretHash::of(&secret),
            expires_at: UnixSeconds::from_secs(60),
            now: UnixSeconds::from_secs(0),
        };
        store.create_invite(invite).expect("invite");
        let joined = store
            .redeem_invite(RedeemInvite {
                invite_id,
                secret_hash: SecretHash::of(&secret),
                now: UnixSeconds::from_secs(1),
                max_failed_attempts: 5,
                new_member_id: MemberId::random(),
                new_device_id: device,
                token_hash: token.hash(),
                sealed_member_name: vec![],
                sealed_device_name: vec![],
                recovery_key: None,
            })
            .expect("redeem");
        assert!(matches!(joined, Redeemed::Joined { .. }), "{joined:?}");
    }

    fn request_with(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(header) = header {
            request.metadata_mut().insert(
                "authorization",
                header.parse().expect("a valid header value"),
            );
        }
        request
    }

    #[test]
    fn tokens_are_parsed_strictly() {
        let missing = bearer_token(&MetadataMap::new())
            .err()
            .map(|s| s.message().to_owned());
        assert_eq!(missing.as_deref(), Some(MISSING_TOKEN));
        for bad in [
            "Bearer",
            "Bearer xyz",
            "Basic abc",
            &format!("Token {}", "a".repeat(64)),
        ] {
            let status = bearer_token(request_with(Some(bad)).metadata()).err();
            assert_eq!(
                status.map(|s| s.code()),
                Some(tonic::Code::Unauthenticated),
                "{bad}"
            );
        }
        let good = format!("bearer {}", "ab".repeat(32));
        assert!(bearer_token(request_with(Some(&good)).metadata()).is_ok());
    }

    #[test]
    fn known_devices_pass_and_strangers_do_not() {
        let h = harness();
        let store = h.state.store.clone();
        let token = DeviceToken::generate();
        let space = SpaceId::random();
        let member = MemberId::random();
        let (founder, device) = (DeviceId::random(), DeviceId::random());
        store
            .create_space(NewSpace {
                space_id: space,
                member_id: member,
                device_id: founder,
                token_hash: DeviceToken::generate().hash(),
                sealed_member_name: vec![],
                sealed_device_name: vec![],
                recovery_key: crate::store::RecoveryKey([7; 32]),
                now: UnixSeconds::from_secs(0),
            })
            .expect("the space is created");
        link_device(store.as_ref(), (space, member, founder), device, &token);
        let mut auth = Authenticator::new(h.state.clone());
        let header = format!("Bearer {}", token.to_hex());
        let passed = auth
            .call(request_with(Some(&header)))
            .expect("a known token passes");
        assert_eq!(
            authed(&passed).expect("the device is attached"),
            AuthedDevice {
                space_id: space,
                member_id: member,
                device_id: device
            }
        );
        let stranger = format!("Bearer {}", DeviceToken::generate().to_hex());
        let refused = auth
            .call(request_with(Some(&stranger)))
            .expect_err("refused");
        assert_eq!(refused.message(), UNKNOWN_TOKEN);
        store
            .revoke_device(space, member, founder, device)
            .expect("revoked");
        let refused = auth.call(request_with(Some(&header))).expect_err("refused");
        assert_eq!(
            (refused.code(), refused.message()),
            (tonic::Code::Unauthenticated, REVOKED_DEVICE)
        );
    }
}
