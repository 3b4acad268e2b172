//! Pairing: spaces, members, devices, invites and leaving, with the `PairingStore` trait.
//!
//! Everything about who belongs to a space and with which devices: a space is created with
//! its first member and device, grows by invites (a partner, or another device of a member),
//! loses devices by revocation and members by `leave_space`. Tokens and invite secrets reach
//! the store only as SHA-256 hashes; names only sealed by the clients. Each member has a
//! recovery key (the public half of their recovery kit), with which `recover_member` replaces
//! every device of the member by a new first one; the services check keys and signatures, the
//! store only keeps the bytes.

use super::StoreError;
use crate::clock::UnixSeconds;
use crate::ids::{DeviceId, InviteId, MemberId, RecoveryKey, SecretHash, SpaceId};

/// What an invite adds when it is redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteKind {
    /// The second partner (a new member with a first device).
    Partner,
    /// Another device of the inviting member.
    Device,
}

/// A new space with its first member and device.
#[derive(Debug, Clone)]
pub struct NewSpace {
    pub space_id: SpaceId,
    pub member_id: MemberId,
    pub device_id: DeviceId,
    pub token_hash: SecretHash,
    pub sealed_member_name: Vec<u8>,
    pub sealed_device_name: Vec<u8>,
    /// The first member's recovery key.
    pub recovery_key: RecoveryKey,
    pub now: UnixSeconds,
}

/// A device as the store knows it. Names are sealed by clients; the server cannot read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub space_id: SpaceId,
    pub member_id: MemberId,
    pub device_id: DeviceId,
    pub token_hash: SecretHash,
    pub sealed_device_name: Vec<u8>,
    pub sealed_member_name: Vec<u8>,
    pub revoked: bool,
    pub created_at: UnixSeconds,
    /// The device whose device-link code enrolled this one; `None` for a member's first device.
    pub enrolled_by: Option<DeviceId>,
}

impl DeviceInfo {
    /// Whether `self` may revoke `other`, among one member's devices: a member's first device
    /// (the root, which no device linked) may revoke any other; any other device only those
    /// linked through it. Never itself, so no device a thief holds can revoke an older one it
    /// did not link, and the member's first phone always wins.
    pub fn may_revoke(&self, other: &DeviceInfo, all: &[DeviceInfo]) -> bool {
        self.device_id != other.device_id
            && self.member_id == other.member_id
            && !self.revoked
            && (self.enrolled_by.is_none() || enrolled_through(other, self.device_id, all))
    }

    /// Whether `self` may act for its whole member (leave the space): it may revoke every other
    /// live device of the member.
    pub fn speaks_for_member(&self, all: &[DeviceInfo]) -> bool {
        !self.revoked
            && all
                .iter()
                .filter(|d| d.member_id == self.member_id && d.device_id != self.device_id)
                .filter(|d| !d.revoked)
                .all(|d| self.may_revoke(d, all))
    }
}

/// Whether `device` was enrolled by `ancestor`, directly or through a chain of devices.
pub fn enrolled_through(device: &DeviceInfo, ancestor: DeviceId, all: &[DeviceInfo]) -> bool {
    let mut next = device.enrolled_by;
    // A chain is at most as long as the list; the bound also stops a corrupt cycle.
    for _ in 0..=all.len() {
        match next {
            None => return false,
            Some(id) if id == ancestor => return true,
            Some(id) => {
                next = all
                    .iter()
                    .find(|d| d.device_id == id)
                    .and_then(|d| d.enrolled_by)
            }
        }
    }
    false
}

/// A new invite. The secret itself never reaches the store.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub invite_id: InviteId,
    pub space_id: SpaceId,
    /// The inviting member: a device invite links a device of this member.
    pub member_id: MemberId,
    /// The device that made the invite: once it is revoked, the invite is void.
    pub device_id: DeviceId,
    pub kind: InviteKind,
    pub secret_hash: SecretHash,
    pub expires_at: UnixSeconds,
    pub now: UnixSeconds,
}

/// A request to redeem an invite; the ids and token hash are made by the caller beforehand so
/// the store stays free of randomness.
#[derive(Debug, Clone)]
pub struct RedeemInvite {
    pub invite_id: InviteId,
    pub secret_hash: SecretHash,
    pub now: UnixSeconds,
    /// Failed attempts after which the invite is deleted.
    pub max_failed_attempts: u32,
    /// Used only by a partner invite.
    pub new_member_id: MemberId,
    pub new_device_id: DeviceId,
    pub token_hash: SecretHash,
    pub sealed_member_name: Vec<u8>,
    pub sealed_device_name: Vec<u8>,
    /// The new member's recovery key: required by a partner invite, refused by a device link.
    pub recovery_key: Option<RecoveryKey>,
}

/// Live devices one member may have: each may hold streams and push, so a member who linked
/// devices without end could make the server hold without end.
pub const MAX_DEVICES_PER_MEMBER: usize = 10;

/// The outcome of redeeming an invite. Refusals are outcomes, not errors, because some of them
/// (a counted wrong attempt, a deleted expired invite) still change the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The invite was used up and a device (and for a partner, a member) was added.
    Joined {
        space_id: SpaceId,
        member_id: MemberId,
        device_id: DeviceId,
        kind: InviteKind,
    },
    /// No such invite, or it was used already.
    Unknown,
    /// The invite had expired; it is deleted now.
    Expired,
    /// The secret was wrong; the attempt was counted (and the invite deleted at the limit).
    WrongSecret,
    /// A partner invite, but the space already has two members.
    SpaceFull,
    /// The device that made the invite was revoked (or is gone); the invite is deleted now.
    InviterRevoked,
    /// A device invite, but its member has `MAX_DEVICES_PER_MEMBER` live devices already; the
    /// invite stays, for after a device is revoked.
    TooManyDevices,
    /// A partner invite redeemed without a recovery key; the invite stays.
    RecoveryKeyMissing,
    /// A device link redeemed with a recovery key (a linked device joins a member who has
    /// one); the invite stays.
    RecoveryKeyUnexpected,
}

/// What the store knows of a member's recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecovery {
    pub key: RecoveryKey,
    /// The `issued_at` of the last recovery the member made; a new one must be later.
    pub last_issued_at: Option<UnixSeconds>,
}

/// A member recovering with their recovery kit. The device id and token hash are made by the
/// caller beforehand, and the signature is checked by the caller against `key`.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub space_id: SpaceId,
    pub member_id: MemberId,
    /// The key the request was checked against: if it is no longer the member's, nothing happens.
    pub key: RecoveryKey,
    /// When the recovery kit signed the request; must be later than `last_issued_at`.
    pub issued_at: UnixSeconds,
    pub new_device_id: DeviceId,
    pub token_hash: SecretHash,
    pub sealed_device_name: Vec<u8>,
    pub now: UnixSeconds,
}

/// The outcome of a recovery. Refusals change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The new device is the member's root device, and `revoked` are the member's devices that
    /// were live until now (revoked with their invites).
    Enrolled { revoked: Vec<DeviceId> },
    /// No such member in the space, or its recovery key is not the one the request names.
    NotValid,
    /// A recovery issued at the same time or later was taken already: a replay.
    Replayed,
}

/// The outcome of replacing a member's recovery key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryKeyChange {
    /// The member's recovery key is the new one now.
    Replaced,
    /// The device is not a live root device (one no device linked) of the member; nothing
    /// changed.
    NotRootDevice,
}

/// The outcome of revoking a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The device is revoked now, and with it `cascade`: every device it enrolled, transitively,
    /// that was not revoked yet.
    Revoked { cascade: Vec<DeviceId> },
    /// The calling device named itself: a device leaves with `leave` or `wipe`, not `revoke`.
    Itself,
    /// The device is older than the caller, which did not enroll it.
    Older,
    /// It was revoked before; nothing changed.
    AlreadyRevoked,
    /// No such device in the caller's space.
    NotFound,
    /// The device belongs to another member.
    OtherMember,
}

/// What `leave_space` erased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Departure {
    /// The member's devices, revoked and deleted with their token hashes.
    pub devices: Vec<DeviceId>,
    /// How many documents were deleted: the member's private ones, or every one of the space.
    pub documents: u64,
    /// True when the member was the last one and the whole space was deleted.
    pub space_erased: bool,
}

/// Who is in a space, with which devices. Every method is atomic (see `crate::store`).
pub trait PairingStore {
    /// Creates a space with its first member and device. `SpaceExists` if the id is taken.
    fn create_space(&self, space: NewSpace) -> Result<(), StoreError>;
    /// The device holding the token with this hash, revoked or not.
    fn device_by_token_hash(
        &self,
        token_hash: &SecretHash,
    ) -> Result<Option<DeviceInfo>, StoreError>;
    /// How many members the space has.
    fn member_count(&self, space_id: SpaceId) -> Result<usize, StoreError>;
    /// Stores a new invite.
    fn create_invite(&self, invite: NewInvite) -> Result<(), StoreError>;
    /// Redeems an invite in one transaction: checks (the inviting device must not be
    /// revoked), uses it up, adds the device.
    fn redeem_invite(&self, redeem: RedeemInvite) -> Result<Redeemed, StoreError>;
    /// One device of the space, revoked or not.
    fn device(
        &self,
        space_id: SpaceId,
        device_id: DeviceId,
    ) -> Result<Option<DeviceInfo>, StoreError>;
    /// Every device of the space, revoked ones included, oldest first.
    fn list_devices(&self, space_id: SpaceId) -> Result<Vec<DeviceInfo>, StoreError>;
    /// `by` (a device of `member_id` in `space_id`) revokes `device_id` if
    /// `DeviceInfo::may_revoke` allows it, with every device it enrolled, transitively, and
    /// deletes the invites they made (also when it was revoked already, to finish a revocation
    /// a crash interrupted).
    fn revoke_device(
        &self,
        space_id: SpaceId,
        member_id: MemberId,
        by: DeviceId,
        device_id: DeviceId,
    ) -> Result<Revocation, StoreError>;
    /// Erases `member_id` from the space: their private documents, their devices and token
    /// hashes, their invites and the member. If they were the last member, erases everything
    /// of the space. Deleted data may linger in a backend's files until `vacuum`.
    fn leave_space(&self, space_id: SpaceId, member_id: MemberId) -> Result<Departure, StoreError>;
    /// The member's recovery key, if the member is in the space and has one (members made by
    /// an older server have none).
    fn recovery_key(
        &self,
        space_id: SpaceId,
        member_id: MemberId,
    ) -> Result<Option<MemberRecovery>, StoreError>;
    /// Replaces the recovery key of `member_id`, if `by` is a live root device of that member
    /// (`enrolled_by` is `None`). `UnknownMember` if the member is gone.
    fn set_recovery_key(
        &self,
        space_id: SpaceId,
        member_id: MemberId,
        by: DeviceId,
        key: RecoveryKey,
    ) -> Result<RecoveryKeyChange, StoreError>;
    /// In one transaction: checks that the member is in the space with `recovery.key` and that
    /// `issued_at` is later than the last recovery's, revokes every live device of the member
    /// and deletes the member's invites, adds the new device as a root device with its token,
    /// and records `issued_at`. No device of the member may be linked meanwhile.
    fn recover_member(&self, recovery: Recovery) -> Result<Recovered, StoreError>;
}
