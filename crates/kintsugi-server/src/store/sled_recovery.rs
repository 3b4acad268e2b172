//! Recovery keys, and recovering a member with one, in the sled backend.
//!
//! A member's recovery key lives in its member record, beside the `issued_at` of the member's
//! last recovery. Recovering must revoke every device of the member, and sled cannot scan inside
//! a transaction; so `SledStore::recover_member` pauses every other write, the member's live
//! devices and invites are found by a scan, and they are still all of them when one transaction
//! checks the member, revokes the devices, deletes the invites, adds the new root device with
//! its token and records `issued_at`.

use prost::Message;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::records::{self, DeviceRecord, InviteRecord, MemberRecord, SpaceRecord};
use super::sled_pairing::device_record;
use super::sled_store::{Opened, Tx, TxResult, abort, settled};
use super::{MemberRecovery, Recovered, Recovery, RecoveryKey, RecoveryKeyChange, StoreError};
use crate::clock::UnixSeconds;
use crate::ids::{DeviceId, MemberId, SpaceId};

impl Opened {
    pub(super) fn recovery_key(
        &self,
        space: SpaceId,
        member: MemberId,
    ) -> Result<Option<MemberRecovery>, StoreError> {
        let key = records::pair_key(space, member.as_bytes());
        let Some(bytes) = self.trees.members.get(key)? else {
            return Ok(None);
        };
        let record: MemberRecord = records::decode("members", &bytes)?;
        member_recovery(&record)
    }

    pub(super) fn set_recovery_key(
        &self,
        space: SpaceId,
        member: MemberId,
        by: DeviceId,
        key: RecoveryKey,
    ) -> Result<RecoveryKeyChange, StoreError> {
        let member_key = records::pair_key(space, member.as_bytes());
        let device_key = records::pair_key(space, by.as_bytes());
        let t = &self.trees;
        settled((&t.members, &t.devices).transaction(|(members, devices)| {
            let Some(bytes) = members.get(member_key)? else {
                return abort(StoreError::UnknownMember);
            };
            if !is_live_root(devices, &device_key, member)? {
                return Ok(RecoveryKeyChange::NotRootDevice);
            }
            let mut record: MemberRecord =
                records::decode("members", &bytes).map_err(ConflictableTransactionError::Abort)?;
            record.recovery_key = key.0.to_vec();
            members.insert(&member_key[..], record.encode_to_vec())?;
            Ok(RecoveryKeyChange::Replaced)
        }))
    }

    /// Runs while every other write waits (see the module docs).
    pub(super) fn recover_member(&self, recovery: Recovery) -> Result<Recovered, StoreError> {
        let (space, member) = (recovery.space_id, recovery.member_id);
        let live: Vec<DeviceId> = self
            .list_devices(space)?
            .into_iter()
            .filter(|d| d.member_id == member && !d.revoked)
            .map(|d| d.device_id)
            .collect();
        let invite_keys = self.invites_of_member(space, member)?;
        let member_key = records::pair_key(space, member.as_bytes());
        let t = &self.trees;
        settled(
            (&t.spaces, &t.members, &t.devices, &t.tokens, &t.invites).transaction(
                |(spaces, members, devices, tokens, invites)| {
                    let mut record = match checked_member(spaces, members, &recovery)? {
                        Ok(record) => record,
                        Err(refused) => return Ok(refused),
                    };
                    let revoked = revoke_all(devices, space, &live)?;
                    for key in &invite_keys {
                        invites.remove(key.clone())?;
                    }
                    let device_key = records::pair_key(space, recovery.new_device_id.as_bytes());
                    let device = device_record(
                        member,
                        &recovery.sealed_device_name,
                        recovery.token_hash,
                        recovery.now,
                        None,
                    );
                    devices.insert(&device_key[..], device)?;
                    tokens.insert(&recovery.token_hash.0[..], &device_key[..])?;
                    record.last_recovery_issued_at = Some(recovery.issued_at.as_secs());
                    members.insert(&member_key[..], record.encode_to_vec())?;
                    Ok(Recovered::Enrolled { revoked })
                },
            ),
        )
    }

    /// The keys of every invite a device of `member` made in `space`.
    fn invites_of_member(
        &self,
        space: SpaceId,
        member: MemberId,
    ) -> Result<Vec<sled::IVec>, StoreError> {
        let mut keys = Vec::new();
        for item in self.trees.invites.iter() {
            let (key, value) = item?;
            let invite: InviteRecord = records::decode("invites", &value)?;
            if invite.space_id == space.as_bytes() && invite.member_id == member.as_bytes() {
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

/// The member's recovery key and last recovery, if it has a key.
fn member_recovery(record: &MemberRecord) -> Result<Option<MemberRecovery>, StoreError> {
    if record.recovery_key.is_empty() {
        return Ok(None);
    }
    let key = RecoveryKey::from_slice(&record.recovery_key)
        .ok_or_else(|| StoreError::Corrupt("a recovery key is not 32 bytes".into()))?;
    Ok(Some(MemberRecovery {
        key,
        last_issued_at: record.last_recovery_issued_at.map(UnixSeconds::from_secs),
    }))
}

/// Whether the device at `device_key` is a live device of `member` that no device linked.
fn is_live_root(devices: &Tx, device_key: &[u8], member: MemberId) -> TxResult<bool> {
    let Some(bytes) = devices.get(device_key)? else {
        return Ok(false);
    };
    let device: DeviceRecord =
        records::decode("devices", &bytes).map_err(ConflictableTransactionError::Abort)?;
    Ok(device.member_id == member.as_bytes() && !device.revoked && device.enrolled_by.is_empty())
}

/// The member's record, if the member is in the space with the request's recovery key and the
/// request is later than the last recovery; otherwise the refusal.
fn checked_member(
    spaces: &Tx,
    members: &Tx,
    recovery: &Recovery,
) -> TxResult<Result<MemberRecord, Recovered>> {
    let (space, member) = (recovery.space_id, recovery.member_id);
    let in_space = match spaces.get(space.as_bytes())? {
        Some(bytes) => records::decode::<SpaceRecord>("spaces", &bytes)
            .map_err(ConflictableTransactionError::Abort)?
            .member_ids
            .iter()
            .any(|m| m == member.as_bytes()),
        None => false,
    };
    let Some(bytes) = members.get(records::pair_key(space, member.as_bytes()))? else {
        return Ok(Err(Recovered::NotValid));
    };
    let record: MemberRecord =
        records::decode("members", &bytes).map_err(ConflictableTransactionError::Abort)?;
    let recorded = member_recovery(&record).map_err(ConflictableTransactionError::Abort)?;
    let Some(recorded) = recorded.filter(|r| in_space && r.key == recovery.key) else {
        return Ok(Err(Recovered::NotValid));
    };
    if recorded
        .last_issued_at
        .is_some_and(|last| recovery.issued_at <= last)
    {
        return Ok(Err(Recovered::Replayed));
    }
    Ok(Ok(record))
}

/// Marks `live` revoked; returns those that were not revoked yet.
fn revoke_all(devices: &Tx, space: SpaceId, live: &[DeviceId]) -> TxResult<Vec<DeviceId>> {
    let mut revoked = Vec::new();
    for device in live {
        let key = records::pair_key(space, device.as_bytes());
        let Some(bytes) = devices.get(key)? else {
            continue;
        };
        let mut record: DeviceRecord =
            records::decode("devices", &bytes).map_err(ConflictableTransactionError::Abort)?;
        if !record.revoked {
            record.revoked = true;
            devices.insert(&key[..], record.encode_to_vec())?;
            revoked.push(*device);
        }
    }
    Ok(revoked)
}
