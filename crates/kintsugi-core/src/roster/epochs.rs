//! The roster's key epochs: which entries start a new epoch, for whom it must be sealed, and
//! which devices may write under an epoch.
//!
//! Every change of who may read a set of documents starts a new epoch in the same entry: a new
//! device (`AddDevice`, `Recover`), a revocation, a new recovery key; so does a `Rotate`, which
//! a device writes when an epoch is owed or its user asks for fresh keys. Only a departure cannot,
//! as the member who leaves signs it: it leaves the space's epoch owed, and the next entry of
//! a remaining device starts it. The roster checks the recipients of every rotation (each
//! device it admits for that audience after the entry, and the audience's recovery keys) but
//! not the sealed keys themselves, which only their recipients can open.

use std::collections::{BTreeMap, BTreeSet};

use kintsugi_proto::v1::roster_entry::Body;
use kintsugi_proto::v1::{Rotation, SealedEpochKey};

use super::entry::Author;
use super::{Roster, RosterDevice};
use crate::ids::{DeviceId, MemberId};

type Checked<T = ()> = Result<T, String>;

/// Whose documents an epoch key reads: the space's shared ones, or one member's private ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EpochAudience {
    Space,
    Member(MemberId),
}

/// Who an epoch key is sealed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Recipient {
    Device(DeviceId),
    /// The member's recovery key.
    Recovery(MemberId),
}

/// One epoch as the roster holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochRecord {
    /// The position of the entry that started it.
    pub start: u64,
    pub sealed: Vec<SealedEpochKey>,
    /// The key of the epoch before, sealed with this one's.
    pub previous: Vec<u8>,
}

/// The epochs of every audience, in order; an epoch's number is its index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Epochs {
    pub(super) chains: BTreeMap<EpochAudience, Vec<EpochRecord>>,
    /// Audiences whose readers changed without a new epoch (a departure).
    pub(super) owed: BTreeSet<EpochAudience>,
}

const ENCAPSULATED_KEY_LEN: usize = 32;
/// A 32-byte key and the AEAD's 16-byte tag.
const SEALED_KEY_LEN: usize = 48;

/// The audiences whose epoch `body` must renew, as the roster was before it.
pub(super) fn required(
    before: &Roster,
    author: Author,
    body: &Body,
) -> Checked<Vec<EpochAudience>> {
    let member_of = |id: &[u8]| MemberId::from_slice(id).map_err(|_| "a bad member id".to_string());
    let author_member = |roster: &Roster| match author {
        Author::Device(id) => roster.devices.get(&id).map(|d| d.member),
        Author::Recovery(member) => Some(member),
    };
    Ok(match body {
        Body::Genesis(genesis) => vec![
            EpochAudience::Space,
            EpochAudience::Member(member_of(&genesis.member_id)?),
        ],
        Body::AddDevice(add) => vec![
            EpochAudience::Space,
            EpochAudience::Member(member_of(&add.member_id)?),
        ],
        Body::Recover(recover) => vec![
            EpochAudience::Space,
            EpochAudience::Member(member_of(&recover.member_id)?),
        ],
        // A rotation on its own renews the space's epoch and its author's member's.
        Body::Revoke(_) | Body::SetRecovery(_) | Body::Rotate(_) => match author_member(before) {
            Some(member) => vec![EpochAudience::Space, EpochAudience::Member(member)],
            None => Vec::new(),
        },
        Body::Invite(_) | Body::Leave(_) => Vec::new(),
    })
}

impl Roster {
    /// Who a new epoch of `audience` is sealed to now, with their X25519 keys.
    pub fn recipients(&self, audience: EpochAudience) -> Vec<(Recipient, [u8; 32])> {
        let in_audience = |device: &RosterDevice| match audience {
            EpochAudience::Space => true,
            EpochAudience::Member(member) => device.member == member,
        };
        let devices = self
            .devices
            .iter()
            .filter(|(_, d)| d.revoked_at.is_none() && in_audience(d))
            .map(|(id, d)| (Recipient::Device(*id), d.agreement_key));
        let recovery = self
            .members()
            .filter(|m| audience == EpochAudience::Space || audience == EpochAudience::Member(*m))
            .filter_map(|m| Some((Recipient::Recovery(m), self.recovery_key(m)?.agreement_key)));
        devices.chain(recovery).collect()
    }

    /// The epochs of `audience`, oldest first.
    pub fn epochs(&self, audience: EpochAudience) -> &[EpochRecord] {
        self.epochs.chains.get(&audience).map_or(&[], Vec::as_slice)
    }

    /// The number of `audience`'s current epoch, if it has one.
    pub fn current_epoch(&self, audience: EpochAudience) -> Option<u64> {
        (self.epochs(audience).len() as u64).checked_sub(1)
    }

    /// The newest epoch of `audience` sealed to `recipient`, if any.
    pub fn newest_epoch_sealed_to(
        &self,
        recipient: Recipient,
        audience: EpochAudience,
    ) -> Option<u64> {
        let records = self.epochs(audience);
        (0..records.len() as u64).rev().find(|epoch| {
            records[*epoch as usize]
                .sealed
                .iter()
                .any(|s| recipient_of(s).ok() == Some(recipient))
        })
    }

    /// Whether `audience`'s readers changed since its current epoch began.
    pub fn epoch_owed(&self, audience: EpochAudience) -> bool {
        self.epochs.owed.contains(&audience)
    }

    /// Whether `author` may start an epoch of `audience`: any member for the space, only the
    /// member itself for its private documents.
    pub fn may_rotate(&self, author: Author, audience: EpochAudience) -> bool {
        match (audience, author) {
            (EpochAudience::Space, _) => true,
            (EpochAudience::Member(m), Author::Recovery(of)) => m == of,
            (EpochAudience::Member(m), Author::Device(id)) => {
                self.devices.get(&id).is_some_and(|d| d.member == m)
            }
        }
    }

    /// Whether `device` may write under epoch `epoch` of `audience`: it was in the roster when
    /// the epoch began, and not revoked before. So a revoked device cannot write under any epoch
    /// started after its revocation, nor a new device under one from before it joined.
    pub fn may_author(&self, device: DeviceId, audience: EpochAudience, epoch: u64) -> bool {
        let Some(d) = self.devices.get(&device) else {
            return false;
        };
        let Some(record) = self.epochs(audience).get(epoch as usize) else {
            return false;
        };
        let member_ok = match audience {
            EpochAudience::Space => true,
            EpochAudience::Member(m) => d.member == m,
        };
        member_ok && d.added_at <= record.start && d.revoked_at.is_none_or(|r| record.start < r)
    }
}

/// Marks the audiences whose readers `body` changed as owing a new epoch.
pub(super) fn mark_owed(roster: &mut Roster, before: &Roster) {
    let readers = |r: &Roster, audience| {
        let mut set: Vec<Recipient> = r.recipients(audience).into_iter().map(|(r, _)| r).collect();
        set.sort();
        set
    };
    let audiences: BTreeSet<EpochAudience> = before
        .members()
        .chain(roster.members())
        .map(EpochAudience::Member)
        .chain([EpochAudience::Space])
        .collect();
    for audience in audiences {
        if readers(before, audience) != readers(roster, audience) {
            roster.epochs.owed.insert(audience);
        }
    }
    let gone: Vec<EpochAudience> = roster
        .epochs
        .owed
        .iter()
        .copied()
        .filter(|a| matches!(a, EpochAudience::Member(m) if !roster.members().any(|x| x == *m)))
        .collect();
    for audience in gone {
        roster.epochs.owed.remove(&audience);
    }
}

/// Checks and applies the rotations of the entry at `seq`, after its body was applied.
pub(super) fn apply_rotations(
    roster: &mut Roster,
    author: Author,
    body_kind: BodyKind,
    rotations: &[Rotation],
    required: &[EpochAudience],
    seq: u64,
) -> Checked {
    let mut started = BTreeSet::new();
    if !rotations.is_empty() && !may_start_epochs(roster, author, body_kind) {
        return Err("new epochs in an entry that may not start any".into());
    }
    for rotation in rotations {
        let audience = audience_of(roster, rotation)?;
        if !started.insert(audience) {
            return Err("two new epochs for the same documents".into());
        }
        if !roster.may_rotate(author, audience) {
            return Err("a new epoch for another member's documents".into());
        }
        check_recipients(roster, audience, &rotation.sealed)?;
        let first = roster.epochs(audience).is_empty();
        if first != rotation.previous.is_empty() {
            return Err("a new epoch that does not link to the one before".into());
        }
        let record = EpochRecord {
            start: seq,
            sealed: rotation.sealed.clone(),
            previous: rotation.previous.clone(),
        };
        roster
            .epochs
            .chains
            .entry(audience)
            .or_default()
            .push(record);
        roster.epochs.owed.remove(&audience);
    }
    match required.iter().find(|a| !started.contains(a)) {
        Some(_) => Err(
            "a change of readers, or a rotation, without a new epoch of every set of \
             documents it touches"
                .into(),
        ),
        None => Ok(()),
    }
}

/// What an entry is, as far as its epochs go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyKind {
    /// An invite: its welcome holds the keys before the entry, so it starts none.
    Invite,
    /// A departure: the member who leaves must not make the key that shuts it out.
    Leave,
    Other,
}

impl BodyKind {
    pub(super) fn of(body: &Body) -> Self {
        match body {
            Body::Invite(_) => Self::Invite,
            Body::Leave(_) => Self::Leave,
            _ => Self::Other,
        }
    }
}

/// Whether an entry of `kind` by `author` may carry new epochs: not an invite or a departure,
/// and only from a member still in the space after the entry.
fn may_start_epochs(roster: &Roster, author: Author, kind: BodyKind) -> bool {
    let member = match author {
        Author::Device(id) => roster.devices.get(&id).map(|d| d.member),
        Author::Recovery(member) => Some(member),
    };
    kind == BodyKind::Other && member.is_some_and(|m| roster.members().any(|x| x == m))
}

/// Whether `author` may carry new epochs in an entry like `body` (drafting asks before).
pub(super) fn may_carry_epochs(after: &Roster, author: Author, body: &Body) -> bool {
    may_start_epochs(after, author, BodyKind::of(body))
}

fn audience_of(roster: &Roster, rotation: &Rotation) -> Checked<EpochAudience> {
    if rotation.member_id.is_empty() {
        return Ok(EpochAudience::Space);
    }
    let member =
        MemberId::from_slice(&rotation.member_id).map_err(|_| "a bad member id".to_string())?;
    if !roster.members().any(|m| m == member) {
        return Err("a new epoch for someone who is not a member".into());
    }
    Ok(EpochAudience::Member(member))
}

fn check_recipients(
    roster: &Roster,
    audience: EpochAudience,
    sealed: &[SealedEpochKey],
) -> Checked {
    let mut named = Vec::with_capacity(sealed.len());
    for key in sealed {
        if key.encapsulated_key.len() != ENCAPSULATED_KEY_LEN
            || key.ciphertext.len() != SEALED_KEY_LEN
        {
            return Err("a sealed epoch key of the wrong size".into());
        }
        named.push(recipient_of(key)?);
    }
    named.sort();
    let mut expected: Vec<Recipient> = roster
        .recipients(audience)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    expected.sort();
    if named != expected {
        return Err("a new epoch not sealed to exactly the devices that read it".into());
    }
    Ok(())
}

/// The recipient a sealed key names.
pub fn recipient_of(key: &SealedEpochKey) -> Checked<Recipient> {
    match (key.device_id.is_empty(), key.recovery_member.is_empty()) {
        (false, true) => DeviceId::from_slice(&key.device_id)
            .map(Recipient::Device)
            .map_err(|_| "a bad recipient device id".into()),
        (true, false) => MemberId::from_slice(&key.recovery_member)
            .map(Recipient::Recovery)
            .map_err(|_| "a bad recipient member id".into()),
        _ => Err("a sealed epoch key for no single recipient".into()),
    }
}
