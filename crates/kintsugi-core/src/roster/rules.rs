//! The rules of the roster: which entry may follow which, who may sign it, and what it does.
//!
//! - The chain: an entry's `seq` is its position and its `prev` the hash of the entry before.
//! - Authors: a device the roster admits (added, not revoked, its member still in the space),
//!   or a member's recovery key; an `AddDevice` is signed by the joining device itself and
//!   countersigned by the invite key only its code holds.
//! - A space has at most two members; an invite is used once, and voids with its issuer.
//! - Revoking: a member's first (or recovered) device may revoke any device of its member; any
//!   other device only the devices it enrolled, directly or not; no device itself. Revocation
//!   cascades to every device the revoked one enrolled. The recovery key may revoke any device
//!   of its member, and a recovery revokes every other device of its member.
//! - A new recovery key comes from the member's first (or recovered) device only.
//! - Key epochs: see `epochs.rs`.

use ed25519_dalek::VerifyingKey;
use kintsugi_proto::v1::roster_entry::Body;
use kintsugi_proto::v1::{
    AddDevice, DeviceKeys, Genesis, Invite, InviteKind, Recover, RecoveryKeys, RosterEntry,
    SetRecovery, SignedRosterEntry,
};
use prost::Message;

use super::entry::{Author, agreement_key, invite_signing_input, signed_by, verify, verifying_key};
use super::epochs;
use super::{InviteState, MemberState, RecoveryKey, Roster, RosterDevice};
use crate::ids::{DeviceId, MemberId, SpaceId};

type Checked<T = ()> = Result<T, String>;

/// The most members a space has: a couple.
const MAX_MEMBERS: usize = 2;

/// Whether an entry's new epochs are checked too, or only what it says (to learn, before
/// sealing them, who the epochs of an entry being written go to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Check {
    Whole,
    BodyOnly,
}

/// Checks `signed` against `before` and applies it to `roster`, a copy of `before`.
pub(super) fn apply(
    before: &Roster,
    roster: &mut Roster,
    signed: &SignedRosterEntry,
    check: Check,
) -> Checked {
    let entry = RosterEntry::decode(signed.entry.as_slice())
        .map_err(|_| "it is not a roster entry".to_string())?;
    check_position(roster, &entry)?;
    let author = Author::of(&entry)?;
    let seq = entry.seq;
    let body = entry.body.ok_or("it says nothing")?;
    let required = epochs::required(before, author, &body)?;
    let kind = epochs::BodyKind::of(&body);
    apply_body(roster, author, signed, body, seq)?;
    epochs::mark_owed(roster, before);
    if check == Check::BodyOnly {
        return Ok(());
    }
    epochs::apply_rotations(roster, author, kind, &entry.rotations, &required, seq)
}

fn apply_body(
    roster: &mut Roster,
    author: Author,
    signed: &SignedRosterEntry,
    body: Body,
    seq: u64,
) -> Checked {
    match body {
        Body::Genesis(genesis) => genesis_entry(roster, author, signed, genesis),
        body if !roster.started() => Err(format!("the log starts with {}", name(&body))),
        Body::AddDevice(add) => add_device(roster, author, signed, add, seq),
        body => {
            let key = author_key(roster, author)?;
            if !signed_by(signed, &key) {
                return Err("its signature is not its author's".into());
            }
            signed_body(roster, author, body, seq)
        }
    }
}

fn signed_body(roster: &mut Roster, author: Author, body: Body, seq: u64) -> Checked {
    match body {
        Body::Invite(invite) => issue_invite(roster, author, invite, seq),
        Body::Revoke(revoke) => {
            let target = device_id(&revoke.device_id)?;
            revoke_device(roster, author, target, seq)
        }
        Body::Leave(leave) => leave_space(roster, author, member_id(&leave.member_id)?, seq),
        Body::Recover(recover) => recover_member(roster, author, recover, seq),
        Body::SetRecovery(set) => set_recovery(roster, author, set),
        // What a rotation says is in its epochs, which `apply` checks next.
        Body::Rotate(_) => Ok(()),
        Body::Genesis(_) | Body::AddDevice(_) => Err("unreachable entry kind".into()),
    }
}

fn name(body: &Body) -> &'static str {
    match body {
        Body::Genesis(_) => "a genesis",
        Body::Invite(_) => "an invite",
        Body::AddDevice(_) => "a new device",
        Body::Revoke(_) => "a revocation",
        Body::Leave(_) => "a departure",
        Body::Recover(_) => "a recovery",
        Body::Rotate(_) => "a new epoch",
        Body::SetRecovery(_) => "a new recovery key",
    }
}

fn check_position(roster: &Roster, entry: &RosterEntry) -> Checked {
    if entry.seq != roster.len() {
        return Err(format!("it names position {}", entry.seq));
    }
    let expected: &[u8] = if roster.started() { &roster.head } else { &[] };
    if entry.prev != expected {
        return Err("it does not follow the entry before it (the log was changed)".into());
    }
    Ok(())
}

fn genesis_entry(
    roster: &mut Roster,
    author: Author,
    signed: &SignedRosterEntry,
    genesis: Genesis,
) -> Checked {
    if roster.started() {
        return Err("a second genesis".into());
    }
    if SpaceId::from_slice(&genesis.space_id).ok() != Some(roster.space) {
        return Err("its genesis is of another space".into());
    }
    let member = member_id(&genesis.member_id)?;
    let (id, device) = new_device(roster, genesis.device.as_ref(), member, None, 0)?;
    if author != Author::Device(id) || !signed_by(signed, &device.signing_key) {
        return Err("the genesis is not signed by its first device".into());
    }
    add_member(roster, member, genesis.recovery.as_ref())?;
    roster.devices.insert(id, device);
    Ok(())
}

/// A new member of the space, with the recovery key its entry carries.
fn add_member(roster: &mut Roster, member: MemberId, recovery: Option<&RecoveryKeys>) -> Checked {
    let state = MemberState {
        recovery: Some(recovery_key(recovery)?),
        left_at: None,
    };
    roster.members.insert(member, state);
    Ok(())
}

fn issue_invite(roster: &mut Roster, author: Author, invite: Invite, seq: u64) -> Checked {
    let Author::Device(issuer) = author else {
        return Err("a recovery key does not invite".into());
    };
    let kind = InviteKind::try_from(invite.kind).map_err(|_| "an unknown invite kind")?;
    if kind == InviteKind::Partner && roster.members().count() >= MAX_MEMBERS {
        return Err("a partner invite in a space of two".into());
    }
    if !matches!(kind, InviteKind::Partner | InviteKind::Device) {
        return Err("an invite of no kind".into());
    }
    if roster.invites.contains_key(&invite.invite_id) {
        return Err("an invite id used before".into());
    }
    let key = verifying_key(&invite.invite_key)?;
    roster.invites.insert(
        invite.invite_id,
        InviteState {
            kind,
            key,
            issuer,
            used: false,
            welcome: invite.welcome,
            issued_at: seq,
        },
    );
    Ok(())
}

fn add_device(
    roster: &mut Roster,
    author: Author,
    signed: &SignedRosterEntry,
    add: AddDevice,
    seq: u64,
) -> Checked {
    let invite = roster
        .invites
        .get(&add.invite_id)
        .cloned()
        .ok_or("an unknown invite")?;
    if invite.used || !roster.admits(invite.issuer) {
        return Err("an invite that was used, or whose device was revoked".into());
    }
    if roster.invite_superseded(&add.invite_id) {
        return Err("an invite issued before the keys changed (its welcome is stale)".into());
    }
    let keys = add.device.as_ref().ok_or("a new device without keys")?;
    if !verify(
        &invite.key,
        &invite_signing_input(&roster.head, seq, &add.invite_id, &add.member_id, keys),
        &add.invite_signature,
    ) {
        return Err("a new device the invite did not sign for".into());
    }
    let member = member_id(&add.member_id)?;
    let issuer_member = roster.devices[&invite.issuer].member;
    match invite.kind {
        InviteKind::Device if member != issuer_member => {
            return Err("a device link to another member".into());
        }
        InviteKind::Partner
            if roster.members.contains_key(&member) || roster.members().count() >= MAX_MEMBERS =>
        {
            return Err("a partner who is already a member, or a third member".into());
        }
        _ => {}
    }
    // A partner's first device is the root of a new member, not a device of the inviter's.
    let enrolled_by = (invite.kind == InviteKind::Device).then_some(invite.issuer);
    let (id, device) = new_device(roster, Some(keys), member, enrolled_by, seq)?;
    if author != Author::Device(id) || !signed_by(signed, &device.signing_key) {
        return Err("a new device's entry that it did not sign".into());
    }
    if invite.kind == InviteKind::Partner {
        add_member(roster, member, add.recovery.as_ref())?;
    }
    roster.devices.insert(id, device);
    if let Some(used) = roster.invites.get_mut(&add.invite_id) {
        used.used = true;
    }
    Ok(())
}

fn revoke_device(roster: &mut Roster, author: Author, target: DeviceId, seq: u64) -> Checked {
    let device = roster
        .devices
        .get(&target)
        .ok_or("the revocation of an unknown device")?;
    if device.revoked_at.is_some() {
        return Err("the revocation of a revoked device".into());
    }
    let allowed = match author {
        Author::Recovery(member) => device.member == member,
        Author::Device(revoker) if revoker == target => false,
        Author::Device(revoker) => {
            let by = &roster.devices[&revoker];
            (by.enrolled_by.is_none() && by.member == device.member)
                || enrolled_through(roster, target, revoker)
        }
    };
    if !allowed {
        return Err("a revocation its author may not make".into());
    }
    revoke_chain(roster, target, seq);
    Ok(())
}

/// Whether `ancestor` enrolled `device`, directly or through devices it enrolled.
fn enrolled_through(roster: &Roster, device: DeviceId, ancestor: DeviceId) -> bool {
    let mut current = roster.devices.get(&device).and_then(|d| d.enrolled_by);
    for _ in 0..roster.devices.len() {
        match current {
            Some(id) if id == ancestor => return true,
            Some(id) => current = roster.devices.get(&id).and_then(|d| d.enrolled_by),
            None => return false,
        }
    }
    false
}

fn revoke_chain(roster: &mut Roster, target: DeviceId, seq: u64) {
    let doomed: Vec<DeviceId> = roster
        .devices
        .keys()
        .copied()
        .filter(|id| *id == target || enrolled_through(roster, *id, target))
        .collect();
    for id in doomed {
        if let Some(device) = roster.devices.get_mut(&id) {
            device.revoked_at.get_or_insert(seq);
        }
    }
}

fn leave_space(roster: &mut Roster, author: Author, member: MemberId, seq: u64) -> Checked {
    let allowed = match author {
        Author::Recovery(of) => of == member,
        Author::Device(id) => {
            roster.devices[&id].member == member && roster.devices[&id].enrolled_by.is_none()
        }
    };
    if !allowed {
        return Err("a departure its author may not sign".into());
    }
    for device in roster.devices.values_mut().filter(|d| d.member == member) {
        device.revoked_at.get_or_insert(seq);
    }
    if let Some(state) = roster.members.get_mut(&member) {
        state.left_at = Some(seq);
    }
    Ok(())
}

fn recover_member(roster: &mut Roster, author: Author, recover: Recover, seq: u64) -> Checked {
    let member = member_id(&recover.member_id)?;
    if author != Author::Recovery(member) {
        return Err("a recovery not signed by the member's recovery key".into());
    }
    let (id, device) = new_device(roster, recover.device.as_ref(), member, None, seq)?;
    for old in roster.devices.values_mut().filter(|d| d.member == member) {
        old.revoked_at.get_or_insert(seq);
    }
    roster.devices.insert(id, device);
    Ok(())
}

/// A new recovery key for the author's member: only its first (or recovered) device may set
/// one, as only it may revoke every other device of the member, which the key can.
fn set_recovery(roster: &mut Roster, author: Author, set: SetRecovery) -> Checked {
    let Author::Device(id) = author else {
        return Err("a recovery key does not replace itself".into());
    };
    let device = &roster.devices[&id];
    if device.enrolled_by.is_some() {
        return Err("a new recovery key from a device other than the member's first".into());
    }
    let member = device.member;
    let key = recovery_key(set.recovery.as_ref())?;
    if let Some(state) = roster.members.get_mut(&member) {
        state.recovery = Some(key);
    }
    Ok(())
}

/// The key that must have signed an entry of `author`.
fn author_key(roster: &Roster, author: Author) -> Checked<VerifyingKey> {
    match author {
        Author::Device(id) if roster.admits(id) => Ok(roster.devices[&id].signing_key),
        Author::Device(_) => Err("its author is not a device the roster admits".into()),
        Author::Recovery(member) => roster
            .recovery_key(member)
            .map(|key| key.signing_key)
            .ok_or_else(|| "its author is not a recovery key of a member".into()),
    }
}

fn new_device(
    roster: &Roster,
    keys: Option<&DeviceKeys>,
    member: MemberId,
    enrolled_by: Option<DeviceId>,
    added_at: u64,
) -> Checked<(DeviceId, RosterDevice)> {
    let keys = keys.ok_or("a device without keys")?;
    let id = device_id(&keys.device_id)?;
    if roster.devices.contains_key(&id) {
        return Err("a device id the roster already has".into());
    }
    let device = RosterDevice {
        member,
        signing_key: verifying_key(&keys.signing_key)?,
        agreement_key: agreement_key(&keys.agreement_key)?,
        enrolled_by,
        added_at,
        revoked_at: None,
    };
    Ok((id, device))
}

fn recovery_key(keys: Option<&RecoveryKeys>) -> Checked<RecoveryKey> {
    let keys = keys.ok_or("a member without a recovery key")?;
    Ok(RecoveryKey {
        signing_key: verifying_key(&keys.signing_key)?,
        agreement_key: agreement_key(&keys.agreement_key)?,
    })
}

fn device_id(bytes: &[u8]) -> Checked<DeviceId> {
    DeviceId::from_slice(bytes).map_err(|_| "a device id is not 16 bytes".into())
}

fn member_id(bytes: &[u8]) -> Checked<MemberId> {
    MemberId::from_slice(bytes).map_err(|_| "a member id is not 16 bytes".into())
}
