//! Spaces, members, devices and invites in the sled backend.
//!
//! A member count lives in the space record because sled transactions cannot scan, and the
//! partner limit must be checked in the same transaction that adds the partner: otherwise two
//! partner invites redeemed at once could both succeed. Redeeming an invite is one
//! transaction that either uses the invite up and adds the device with its token, or only
//! records the failed attempt.
//!
//! An invite records the device that made it. Revoking that device deletes its open invites,
//! and redeeming checks it in the same transaction, so a code made on a phone that was then
//! lost and revoked adds nobody, even one stored in the moment between the phone's last
//! authenticated call and its revocation.

use prost::Message;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::records::{self, DeviceRecord, InviteRecord, MemberRecord, SpaceRecord};
use super::sled_store::{Opened, Tx, TxResult, abort, settled};
use super::{
    DeviceInfo, InviteKind, MAX_DEVICES_PER_MEMBER, NewInvite, NewSpace, RedeemInvite, Redeemed,
    Revocation, StoreError, enrolled_through,
};
use crate::clock::UnixSeconds;
use crate::ids::{DeviceId, MemberId, SecretHash, SpaceId};

pub(super) fn device_record(
    member: MemberId,
    name: &[u8],
    token: SecretHash,
    now: UnixSeconds,
    enrolled_by: Option<DeviceId>,
) -> Vec<u8> {
    DeviceRecord {
        member_id: member.to_vec(),
        sealed_name: name.to_vec(),
        token_hash: token.0.to_vec(),
        revoked: false,
        created_at: now.as_secs(),
        enrolled_by: enrolled_by.map(|d| d.to_vec()).unwrap_or_default(),
    }
    .encode_to_vec()
}

impl Opened {
    pub(super) fn device(
        &self,
        space: SpaceId,
        device: DeviceId,
    ) -> Result<Option<DeviceInfo>, StoreError> {
        let Some(bytes) = self
            .trees
            .devices
            .get(records::pair_key(space, device.as_bytes()))?
        else {
            return Ok(None);
        };
        let record: DeviceRecord = records::decode("devices", &bytes)?;
        self.to_device_info(space, device, record).map(Some)
    }

    fn to_device_info(
        &self,
        space: SpaceId,
        device: DeviceId,
        record: DeviceRecord,
    ) -> Result<DeviceInfo, StoreError> {
        let member = records::member_id("devices", &record.member_id)?;
        let member_name = match self
            .trees
            .members
            .get(records::pair_key(space, member.as_bytes()))?
        {
            Some(bytes) => records::decode::<MemberRecord>("members", &bytes)?.sealed_name,
            None => Vec::new(),
        };
        Ok(DeviceInfo {
            space_id: space,
            member_id: member,
            device_id: device,
            token_hash: SecretHash::from_slice(&record.token_hash)
                .ok_or_else(|| StoreError::Corrupt("a token hash is not 32 bytes".into()))?,
            sealed_device_name: record.sealed_name,
            sealed_member_name: member_name,
            revoked: record.revoked,
            created_at: UnixSeconds::from_secs(record.created_at),
            enrolled_by: match record.enrolled_by.as_slice() {
                [] => None,
                bytes => Some(records::id16("devices", bytes, DeviceId::from_slice)?),
            },
        })
    }

    pub(super) fn create_space(&self, space: NewSpace) -> Result<(), StoreError> {
        let t = &self.trees;
        let space_record = SpaceRecord {
            created_at: space.now.as_secs(),
            member_ids: vec![space.member_id.to_vec()],
        }
        .encode_to_vec();
        let member_record = MemberRecord {
            sealed_name: space.sealed_member_name.clone(),
            created_at: space.now.as_secs(),
            recovery_key: space.recovery_key.0.to_vec(),
            last_recovery_issued_at: None,
        }
        .encode_to_vec();
        let device = device_record(
            space.member_id,
            &space.sealed_device_name,
            space.token_hash,
            space.now,
            None,
        );
        let device_key = records::pair_key(space.space_id, space.device_id.as_bytes());
        settled((&t.spaces, &t.members, &t.devices, &t.tokens).transaction(
            |(spaces, members, devices, tokens)| {
                if spaces.get(space.space_id.as_bytes())?.is_some() {
                    return abort(StoreError::SpaceExists);
                }
                spaces.insert(&space.space_id.as_bytes()[..], space_record.clone())?;
                let member_key = records::pair_key(space.space_id, space.member_id.as_bytes());
                members.insert(&member_key[..], member_record.clone())?;
                devices.insert(&device_key[..], device.clone())?;
                tokens.insert(&space.token_hash.0[..], &device_key[..])?;
                Ok(())
            },
        ))
    }

    pub(super) fn device_by_token_hash(
        &self,
        token_hash: &SecretHash,
    ) -> Result<Option<DeviceInfo>, StoreError> {
        let Some(key) = self.trees.tokens.get(token_hash.0)? else {
            return Ok(None);
        };
        let (space, device) = records::split_pair_key("tokens", &key)?;
        self.device(space, DeviceId(device))
    }

    pub(super) fn member_count(&self, space_id: SpaceId) -> Result<usize, StoreError> {
        let bytes = self
            .trees
            .spaces
            .get(space_id.as_bytes())?
            .ok_or(StoreError::UnknownSpace)?;
        Ok(records::decode::<SpaceRecord>("spaces", &bytes)?
            .member_ids
            .len())
    }

    pub(super) fn create_invite(&self, invite: NewInvite) -> Result<(), StoreError> {
        let record = InviteRecord {
            space_id: invite.space_id.to_vec(),
            member_id: invite.member_id.to_vec(),
            kind: records::invite_kind_to_i32(invite.kind),
            secret_hash: invite.secret_hash.0.to_vec(),
            expires_at: invite.expires_at.as_secs(),
            failed_attempts: 0,
            created_at: invite.now.as_secs(),
            device_id: invite.device_id.to_vec(),
        };
        let member_key = records::pair_key(invite.space_id, invite.member_id.as_bytes());
        let record = record.encode_to_vec();
        let t = &self.trees;
        settled((&t.members, &t.invites).transaction(|(members, invites)| {
            // A member who left meanwhile must not leave an invite behind.
            if members.get(member_key)?.is_none() {
                return abort(StoreError::UnknownMember);
            }
            invites.insert(&invite.invite_id.as_bytes()[..], record.clone())?;
            Ok(())
        }))
    }

    pub(super) fn redeem_invite(&self, redeem: RedeemInvite) -> Result<Redeemed, StoreError> {
        if self.member_is_full(&redeem)? {
            return Ok(Redeemed::TooManyDevices);
        }
        let t = &self.trees;
        settled(
            (&t.invites, &t.spaces, &t.members, &t.devices, &t.tokens).transaction(
                |(invites, spaces, members, devices, tokens)| {
                    let invite_key = &redeem.invite_id.as_bytes()[..];
                    let invite = match checked_invite(invites, invite_key, &redeem)? {
                        Ok(invite) => invite,
                        Err(outcome) => return Ok(outcome),
                    };
                    let (space, inviter, kind) =
                        invite_fields(&invite).map_err(ConflictableTransactionError::Abort)?;
                    if let Some(outcome) = recovery_key_mismatch(kind, &redeem) {
                        return Ok(outcome);
                    }
                    invites.remove(invite_key)?;
                    let made_by = match live_inviting_device(devices, space, &invite)? {
                        Ok(made_by) => made_by,
                        Err(outcome) => return Ok(outcome),
                    };
                    let joining = Joining {
                        space,
                        inviter,
                        kind,
                        redeem: &redeem,
                    };
                    let member = match joining.member(spaces, members)? {
                        Ok(member) => member,
                        Err(outcome) => return Ok(outcome),
                    };
                    joining.add_device(devices, tokens, member, made_by)?;
                    Ok(Redeemed::Joined {
                        space_id: space,
                        member_id: member,
                        device_id: redeem.new_device_id,
                        kind,
                    })
                },
            ),
        )
    }

    /// Whether the invite links a device to a member who has the most live devices already.
    /// Counted before the transaction (sled cannot scan inside one): two links redeemed at the
    /// same moment may pass one over the cap, never more.
    fn member_is_full(&self, redeem: &RedeemInvite) -> Result<bool, StoreError> {
        let Some(bytes) = self.trees.invites.get(redeem.invite_id.as_bytes())? else {
            return Ok(false);
        };
        let invite: InviteRecord = records::decode("invites", &bytes)?;
        if records::invite_kind_from_i32(invite.kind)? != InviteKind::Device {
            return Ok(false);
        }
        let space = records::id16("invites", &invite.space_id, SpaceId::from_slice)?;
        let live = self
            .list_devices(space)?
            .into_iter()
            .filter(|d| !d.revoked && d.member_id.as_bytes().as_slice() == invite.member_id)
            .count();
        Ok(live >= MAX_DEVICES_PER_MEMBER)
    }

    pub(super) fn list_devices(&self, space_id: SpaceId) -> Result<Vec<DeviceInfo>, StoreError> {
        let mut devices = Vec::new();
        for item in self.trees.devices.scan_prefix(space_id.as_bytes()) {
            let (key, value) = item?;
            let (space, device) = records::split_pair_key("devices", &key)?;
            let record: DeviceRecord = records::decode("devices", &value)?;
            devices.push(self.to_device_info(space, DeviceId(device), record)?);
        }
        devices.sort_by_key(|d| (d.created_at, d.device_id));
        Ok(devices)
    }

    pub(super) fn revoke_device(
        &self,
        space_id: SpaceId,
        member_id: MemberId,
        by: DeviceId,
        device_id: DeviceId,
    ) -> Result<Revocation, StoreError> {
        let all = self.list_devices(space_id)?;
        let (Some(caller), Some(target)) = (
            all.iter().find(|d| d.device_id == by),
            all.iter().find(|d| d.device_id == device_id),
        ) else {
            return Ok(Revocation::NotFound);
        };
        if target.member_id != member_id {
            return Ok(Revocation::OtherMember);
        }
        if by == device_id {
            return Ok(Revocation::Itself);
        }
        if !caller.may_revoke(target, &all) {
            return Ok(Revocation::Older);
        }
        let newly = self.revoke_chain(space_id, device_id)?;
        if newly.is_empty() {
            return Ok(Revocation::AlreadyRevoked);
        }
        let cascade = newly.into_iter().filter(|d| *d != device_id).collect();
        Ok(Revocation::Revoked { cascade })
    }

    /// Revokes `root` and every device enrolled through it, deleting their invites. Repeats
    /// until a scan finds no live device of the chain: a device linked by a chain member while
    /// the first pass ran is caught by the next (redeeming checks the linking device is live in
    /// the same transaction that adds the new one). Returns the devices revoked by this call.
    fn revoke_chain(&self, space: SpaceId, root: DeviceId) -> Result<Vec<DeviceId>, StoreError> {
        let mut newly = Vec::new();
        loop {
            let all = self.list_devices(space)?;
            let chain: Vec<DeviceId> = all
                .iter()
                .filter(|d| d.device_id == root || enrolled_through(d, root, &all))
                .map(|d| d.device_id)
                .collect();
            let revoked = self.mark_revoked(space, &chain)?;
            for device in &chain {
                self.remove_invites_of(space, *device)?;
            }
            if revoked.is_empty() {
                return Ok(newly);
            }
            newly.extend(revoked);
        }
    }

    /// Marks the devices revoked in one transaction; returns those that were live.
    fn mark_revoked(
        &self,
        space: SpaceId,
        chain: &[DeviceId],
    ) -> Result<Vec<DeviceId>, StoreError> {
        settled(self.trees.devices.transaction(|devices| {
            let mut revoked = Vec::new();
            for device in chain {
                let key = records::pair_key(space, device.as_bytes());
                let Some(bytes) = devices.get(key)? else {
                    continue;
                };
                let mut record: DeviceRecord = records::decode("devices", &bytes)
                    .map_err(ConflictableTransactionError::Abort)?;
                if !record.revoked {
                    record.revoked = true;
                    devices.insert(&key[..], record.encode_to_vec())?;
                    revoked.push(*device);
                }
            }
            Ok(revoked)
        }))
    }

    /// Deletes every invite `device` made in `space`.
    fn remove_invites_of(&self, space: SpaceId, device: DeviceId) -> Result<(), StoreError> {
        let mut doomed = sled::Batch::default();
        for item in self.trees.invites.iter() {
            let (key, value) = item?;
            let invite: InviteRecord = records::decode("invites", &value)?;
            if invite.space_id == space.as_bytes() && invite.device_id == device.as_bytes() {
                doomed.remove(key);
            }
        }
        self.trees.invites.apply_batch(doomed)?;
        Ok(())
    }
}

/// A redeeming step's value, or the outcome redeeming ends with (what was written so far is kept).
type Step<T> = TxResult<Result<T, Redeemed>>;

/// The invite, if it exists, has not expired and its secret matches; a wrong secret counts as a
/// failed attempt, and the last allowed one deletes the invite.
fn checked_invite(invites: &Tx, invite_key: &[u8], redeem: &RedeemInvite) -> Step<InviteRecord> {
    let Some(bytes) = invites.get(invite_key)? else {
        return Ok(Err(Redeemed::Unknown));
    };
    let mut invite: InviteRecord =
        records::decode("invites", &bytes).map_err(ConflictableTransactionError::Abort)?;
    if redeem.now >= UnixSeconds::from_secs(invite.expires_at) {
        invites.remove(invite_key)?;
        return Ok(Err(Redeemed::Expired));
    }
    let Some(stored) = SecretHash::from_slice(&invite.secret_hash) else {
        return abort(StoreError::Corrupt(
            "an invite's secret hash is not 32 bytes".into(),
        ));
    };
    if !stored.matches(&redeem.secret_hash) {
        invite.failed_attempts = invite.failed_attempts.saturating_add(1);
        if invite.failed_attempts >= redeem.max_failed_attempts {
            invites.remove(invite_key)?;
        } else {
            invites.insert(invite_key, invite.encode_to_vec())?;
        }
        return Ok(Err(Redeemed::WrongSecret));
    }
    Ok(Ok(invite))
}

/// The refusal of a redemption whose recovery key does not fit the invite: a partner brings
/// one, a linked device none. Checked once the secret matched, before anything is written, so
/// the invite stays for a corrected request.
fn recovery_key_mismatch(kind: InviteKind, redeem: &RedeemInvite) -> Option<Redeemed> {
    match (kind, redeem.recovery_key) {
        (InviteKind::Partner, None) => Some(Redeemed::RecoveryKeyMissing),
        (InviteKind::Device, Some(_)) => Some(Redeemed::RecoveryKeyUnexpected),
        _ => None,
    }
}

/// The invite's space, inviting member and kind.
fn invite_fields(invite: &InviteRecord) -> Result<(SpaceId, MemberId, InviteKind), StoreError> {
    let space = records::id16("invites", &invite.space_id, SpaceId::from_slice)?;
    let inviter = records::member_id("invites", &invite.member_id)?;
    let kind = records::invite_kind_from_i32(invite.kind)?;
    Ok((space, inviter, kind))
}

/// The device that made the invite, which must not be revoked (invites stored before the
/// device was recorded carry none to check).
fn live_inviting_device(
    devices: &Tx,
    space: SpaceId,
    invite: &InviteRecord,
) -> Step<Option<DeviceId>> {
    if invite.device_id.is_empty() {
        return Ok(Ok(None));
    }
    let made_by = records::id16("invites", &invite.device_id, DeviceId::from_slice)
        .map_err(ConflictableTransactionError::Abort)?;
    let key = records::pair_key(space, made_by.as_bytes());
    let alive = match devices.get(key)? {
        Some(bytes) => {
            let device: DeviceRecord =
                records::decode("devices", &bytes).map_err(ConflictableTransactionError::Abort)?;
            !device.revoked
        }
        None => false,
    };
    if !alive {
        return Ok(Err(Redeemed::InviterRevoked));
    }
    Ok(Ok(Some(made_by)))
}

/// A checked invite being redeemed into its space.
struct Joining<'a> {
    space: SpaceId,
    inviter: MemberId,
    kind: InviteKind,
    redeem: &'a RedeemInvite,
}

impl Joining<'_> {
    /// The member the new device joins: a partner invite adds a new member (at most two in a
    /// space), a device invite links to the inviter, who must still be a member.
    fn member(&self, spaces: &Tx, members: &Tx) -> Step<MemberId> {
        let (space, redeem) = (self.space, self.redeem);
        let Some(bytes) = spaces.get(space.as_bytes())? else {
            return Ok(Err(Redeemed::Unknown));
        };
        let mut space_record: SpaceRecord =
            records::decode("spaces", &bytes).map_err(ConflictableTransactionError::Abort)?;
        match self.kind {
            InviteKind::Partner => {
                if space_record.member_ids.len() >= 2 {
                    return Ok(Err(Redeemed::SpaceFull));
                }
                space_record.member_ids.push(redeem.new_member_id.to_vec());
                spaces.insert(&space.as_bytes()[..], space_record.encode_to_vec())?;
                let member_record = MemberRecord {
                    sealed_name: redeem.sealed_member_name.clone(),
                    created_at: redeem.now.as_secs(),
                    recovery_key: redeem
                        .recovery_key
                        .map(|k| k.0.to_vec())
                        .unwrap_or_default(),
                    last_recovery_issued_at: None,
                };
                let key = records::pair_key(space, redeem.new_member_id.as_bytes());
                members.insert(&key[..], member_record.encode_to_vec())?;
                Ok(Ok(redeem.new_member_id))
            }
            InviteKind::Device => {
                let key = records::pair_key(space, self.inviter.as_bytes());
                if members.get(key)?.is_none() {
                    return Ok(Err(Redeemed::Unknown));
                }
                Ok(Ok(self.inviter))
            }
        }
    }

    /// Records the new device of `member` with its token.
    fn add_device(
        &self,
        devices: &Tx,
        tokens: &Tx,
        member: MemberId,
        made_by: Option<DeviceId>,
    ) -> TxResult<()> {
        let redeem = self.redeem;
        let device_key = records::pair_key(self.space, redeem.new_device_id.as_bytes());
        // A linked device belongs to the chain of the device that linked it, so revoking
        // that one revokes it too; a partner's first device starts a chain of its own.
        let enrolled_by = match self.kind {
            InviteKind::Device => made_by,
            InviteKind::Partner => None,
        };
        let device = device_record(
            member,
            &redeem.sealed_device_name,
            redeem.token_hash,
            redeem.now,
            enrolled_by,
        );
        devices.insert(&device_key[..], device)?;
        tokens.insert(&redeem.token_hash.0[..], &device_key[..])?;
        Ok(())
    }
}
