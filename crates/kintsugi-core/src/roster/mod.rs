//! The roster every device verifies: who belongs to the space, replayed from a signed,
//! hash-chained log.
//!
//! Each entry names the hash of the one before it and is signed by its author: an admitted
//! device, or a member's recovery key. `Roster::apply` checks an entry against the state the
//! entries before it made, so the server, which only stores and relays the log, can neither add
//! a device, nor drop, reorder or change an entry it relayed, without every device refusing the
//! log from that entry on. The rules of who may do what (`rules.rs`) are the same on every
//! device, so every device that holds the same log holds the same roster. Concurrent entries
//! cannot both stand: the server appends an entry only at the position it names, and the loser
//! rebuilds on the winner.

mod entry;
mod epochs;
mod rules;
mod safety;

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use kintsugi_proto::v1::{InviteKind, SignedRosterEntry};
use sha2::{Digest, Sha256};

use crate::envelope::Authors;
use crate::error::{CoreError, Result};
use crate::ids::{DeviceId, DocId, MemberId, SpaceId};

pub use entry::{Author, EntryBody, device_keys, invite_signing_input, sign_entry};
pub use epochs::{EpochAudience, EpochRecord, Recipient, recipient_of};
pub use safety::SafetyNumber;

/// The space's roster log: the document with this reserved id (shared by its first bit).
pub const ROSTER_DOC: DocId = DocId([0; 16]);

/// SHA-256 of a signed entry: what the next entry names as `prev`.
pub type EntryHash = [u8; 32];

const HASH_PREFIX: &[u8] = b"kintsugi/roster-entry-hash/v1";

/// A device as the roster admits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterDevice {
    pub member: MemberId,
    pub signing_key: VerifyingKey,
    pub agreement_key: [u8; 32],
    /// The device whose invite enrolled it; `None` for a member's first (or recovered) device.
    pub enrolled_by: Option<DeviceId>,
    /// The position of the entry that added it.
    pub added_at: u64,
    /// The position of the entry that revoked it.
    pub revoked_at: Option<u64>,
}

/// A member's recovery key, as the roster holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryKey {
    pub signing_key: VerifyingKey,
    pub agreement_key: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct MemberState {
    recovery: Option<RecoveryKey>,
    left_at: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct InviteState {
    kind: InviteKind,
    key: VerifyingKey,
    issuer: DeviceId,
    used: bool,
    welcome: Vec<u8>,
    /// The position of the entry that issued it.
    issued_at: u64,
}

/// The roster as the log up to `head` makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    space: SpaceId,
    len: u64,
    /// How many of the `len` entries did not hold and were passed over.
    passed_over: u64,
    head: EntryHash,
    /// The genesis entry's hash, which invite codes carry the start of.
    root: EntryHash,
    members: BTreeMap<MemberId, MemberState>,
    devices: BTreeMap<DeviceId, RosterDevice>,
    invites: BTreeMap<Vec<u8>, InviteState>,
    epochs: epochs::Epochs,
}

impl Roster {
    /// An empty roster of `space`: the first entry it accepts is the genesis.
    pub fn new(space: SpaceId) -> Self {
        Self {
            space,
            len: 0,
            passed_over: 0,
            head: [0; 32],
            root: [0; 32],
            members: BTreeMap::new(),
            devices: BTreeMap::new(),
            invites: BTreeMap::new(),
            epochs: epochs::Epochs::default(),
        }
    }

    /// The roster a whole log makes, from its first position.
    pub fn replay<'a>(
        space: SpaceId,
        log: impl IntoIterator<Item = &'a SignedRosterEntry>,
    ) -> Self {
        let mut roster = Self::new(space);
        for signed in log {
            roster.follow(signed);
        }
        roster
    }

    /// Checks `signed`, the entry at the next position, against this state and, when it
    /// holds, applies it. A refused entry leaves the roster as it was.
    pub fn apply(&mut self, signed: &SignedRosterEntry) -> Result<()> {
        *self = self.applied(signed, rules::Check::Whole)?;
        Ok(())
    }

    /// What the roster would be after `signed` with its epochs left out: who the new epochs of
    /// an entry being written are for.
    pub fn preview(&self, signed: &SignedRosterEntry) -> Result<Roster> {
        self.applied(signed, rules::Check::BodyOnly)
    }

    fn applied(&self, signed: &SignedRosterEntry, check: rules::Check) -> Result<Roster> {
        let mut next = self.clone();
        rules::apply(self, &mut next, signed, check).map_err(|why| {
            CoreError::RosterRefused(format!("entry {} was refused: {why}", self.len))
        })?;
        next.len += 1;
        next.head = entry_hash(signed);
        if !self.started() {
            next.root = next.head;
        }
        Ok(next)
    }

    /// Takes the entry at the next position of the server's log: applies it when it holds,
    /// and otherwise passes over it (the position is used, nothing else changes) and says why.
    /// Anyone in the space can append to the log, so an entry that breaks the rules (junk, a
    /// forgery, a replay) is skipped the same way on every device rather than stopping them:
    /// the entries after it chain to the last entry that held.
    pub fn follow(&mut self, signed: &SignedRosterEntry) -> Option<String> {
        match self.apply(signed) {
            Ok(()) => None,
            Err(refused) => {
                self.len += 1;
                self.passed_over += 1;
                Some(refused.to_string())
            }
        }
    }

    /// How many entries of the log did not hold and were passed over.
    pub fn passed_over(&self) -> u64 {
        self.passed_over
    }

    /// Whether the genesis was applied.
    pub fn started(&self) -> bool {
        self.root != [0; 32]
    }

    /// How many entries the roster was built from.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no entry was applied yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hash of the last entry (zeros before the genesis).
    pub fn head(&self) -> EntryHash {
        self.head
    }

    /// The hash of the genesis entry (zeros before it).
    pub fn root(&self) -> EntryHash {
        self.root
    }

    /// The sealed welcome of the invite `invite_id`, if the roster holds it.
    pub fn invite_welcome(&self, invite_id: &[u8]) -> Option<&[u8]> {
        self.invites
            .get(invite_id)
            .map(|invite| invite.welcome.as_slice())
    }

    /// Whether a key epoch the invite's welcome cannot hold began after the invite was issued
    /// (of the space, or for a device link of the issuer's member): then the joiner would miss
    /// that epoch's key, so the invite no longer admits anyone and a new code is needed.
    pub fn invite_superseded(&self, invite_id: &[u8]) -> bool {
        let Some(invite) = self.invites.get(invite_id) else {
            return false;
        };
        let after = |audience| {
            self.epochs(audience)
                .last()
                .is_some_and(|e| e.start > invite.issued_at)
        };
        let member = self.devices.get(&invite.issuer).map(|d| d.member);
        after(EpochAudience::Space)
            || (invite.kind == InviteKind::Device
                && member.is_some_and(|m| after(EpochAudience::Member(m))))
    }

    /// The kind of the invite `invite_id`, if the roster holds it.
    pub fn invite_kind(&self, invite_id: &[u8]) -> Option<InviteKind> {
        self.invites.get(invite_id).map(|invite| invite.kind)
    }

    pub fn space(&self) -> SpaceId {
        self.space
    }

    /// A device the roster knows, revoked or not.
    pub fn device(&self, id: DeviceId) -> Option<&RosterDevice> {
        self.devices.get(&id)
    }

    /// Every device the roster knows, by id.
    pub fn devices(&self) -> impl Iterator<Item = (DeviceId, &RosterDevice)> {
        self.devices.iter().map(|(id, device)| (*id, device))
    }

    /// Whether `id` is a device the roster admits now: added and not revoked.
    pub fn admits(&self, id: DeviceId) -> bool {
        self.devices
            .get(&id)
            .is_some_and(|d| d.revoked_at.is_none())
    }

    /// The members who have not left.
    pub fn members(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.members
            .iter()
            .filter(|(_, m)| m.left_at.is_none())
            .map(|(id, _)| *id)
    }

    /// The recovery key of `member`, if it set one and has not left.
    pub fn recovery_key(&self, member: MemberId) -> Option<&RecoveryKey> {
        let state = self.members.get(&member)?;
        state
            .left_at
            .is_none()
            .then_some(state.recovery.as_ref())
            .flatten()
    }

    /// The safety number both partners compare.
    pub fn safety_number(&self) -> SafetyNumber {
        SafetyNumber::of(self.space, &self.head)
    }
}

impl Roster {
    /// Who may have written the envelopes of `audience`'s documents, epoch by epoch.
    pub fn authors(&self, audience: EpochAudience) -> RosterAuthors<'_> {
        RosterAuthors {
            roster: self,
            audience,
        }
    }

    /// The audiences `body`, written by `author` now, must start a new epoch of.
    pub fn required_epochs(&self, author: Author, body: &EntryBody) -> Vec<EpochAudience> {
        epochs::required(self, author, body).unwrap_or_default()
    }

    /// Whether an entry like `body` by `author`, leaving the roster as `self`, may start
    /// epochs at all (an invite or a departure may not, nor a member who is gone).
    pub fn may_carry_epochs(&self, author: Author, body: &EntryBody) -> bool {
        epochs::may_carry_epochs(self, author, body)
    }
}

/// The roster as the judge of who wrote an envelope of one audience.
#[derive(Clone, Copy, Debug)]
pub struct RosterAuthors<'a> {
    roster: &'a Roster,
    audience: EpochAudience,
}

/// An envelope under epoch `epoch` is checked against the key of a device that was in the
/// roster when that epoch began and not revoked before (`Roster::may_author`): a revoked
/// device's history stays readable, and nothing it signs under a later epoch is taken.
impl Authors for RosterAuthors<'_> {
    fn signing_key(&self, device: DeviceId, epoch: u64) -> Option<VerifyingKey> {
        self.roster
            .may_author(device, self.audience, epoch)
            .then(|| self.roster.devices.get(&device).map(|d| d.signing_key))
            .flatten()
    }
}

/// The hash that chains `signed` to the entry after it.
pub fn entry_hash(signed: &SignedRosterEntry) -> EntryHash {
    let mut hash = Sha256::new();
    hash.update(HASH_PREFIX);
    hash.update((signed.entry.len() as u64).to_be_bytes());
    hash.update(&signed.entry);
    hash.update(&signed.signature);
    hash.finalize().into()
}

#[cfg(test)]
mod tests;
