//! Drafting a roster entry: the body, and the key epochs it has to start, sealed to the readers
//! the roster will have after it.
//!
//! An entry starts an epoch for every audience its rules require (a new device, a revocation,
//! a recovery, a new recovery key), for every audience whose epoch is owed (a departure) that
//! its author may renew, and for every audience whose newest epoch its author cannot open (so
//! a partner who sealed garbage to this device cannot keep it writing under an older epoch).

use std::sync::Arc;

use kintsugi_proto::v1::SignedRosterEntry;

use crate::epoch_keys::{EpochKeys, new_rotation};
use crate::error::{CoreError, Result};
use crate::key_store::DeviceSecrets;
use crate::keys::SecretKey;
use crate::replica::Replica;
use crate::roster::{Author, EntryBody, EpochAudience, Recipient, Roster, sign_entry};

/// Who writes an entry: this device, or its member's recovery kit.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Writer<'a> {
    Device,
    Recovery(&'a DeviceSecrets),
}

impl Replica {
    fn author(&self, writer: Writer<'_>) -> Author {
        match writer {
            Writer::Device => Author::Device(self.identity.device),
            Writer::Recovery(_) => Author::Recovery(self.identity.member),
        }
    }

    fn signer<'a>(&'a self, writer: Writer<'a>) -> &'a DeviceSecrets {
        match writer {
            Writer::Device => &self.identity.secrets,
            Writer::Recovery(secrets) => secrets,
        }
    }

    /// The epoch keys `writer` holds under `roster`.
    fn writer_keys(&self, writer: Writer<'_>, roster: &Roster) -> Result<Arc<EpochKeys>> {
        match writer {
            Writer::Device => self.epoch_keys(),
            Writer::Recovery(secrets) => {
                let me = Recipient::Recovery(self.identity.member);
                let known = self.store.known_keys()?;
                Ok(Arc::new(EpochKeys::unlock(
                    roster,
                    me,
                    secrets.agreement_secret(),
                    known,
                )))
            }
        }
    }

    /// Signs `body` as `writer` at the end of `roster`, with the key epochs it starts.
    pub(crate) fn draft_entry(
        &self,
        roster: &Roster,
        writer: Writer<'_>,
        body: EntryBody,
    ) -> Result<SignedRosterEntry> {
        let (author, signer) = (self.author(writer), self.signer(writer));
        let at = (roster.len(), roster.head());
        let plain = sign_entry(at.0, &at.1, author, body.clone(), Vec::new(), signer);
        let after = roster.preview(&plain).map_err(refused_here)?;
        let keys = self.writer_keys(writer, roster)?;
        let mut rotations = Vec::new();
        for audience in to_rotate(roster, &after, author, &body, &keys) {
            let (key, previous) = if after.epochs(audience).is_empty() {
                let first = keys.key(audience, 0).cloned().ok_or_else(|| {
                    CoreError::damaged(self.store.dir(), "the first epoch key is missing")
                })?;
                (first, None)
            } else {
                (SecretKey::random(), keys.latest(audience))
            };
            rotations.push(new_rotation(&after, audience, &key, previous)?);
        }
        Ok(sign_entry(at.0, &at.1, author, body, rotations, signer))
    }

    /// Whether this device owes the roster a new epoch it may start: one a departure left
    /// owed, or one whose newest key it cannot open.
    pub(crate) fn owes_rotation(&self, roster: &Roster) -> Result<bool> {
        if !roster.admits(self.identity.device) {
            return Ok(false);
        }
        let keys = self.epoch_keys()?;
        let author = Author::Device(self.identity.device);
        Ok(!owed(roster, author, &keys).is_empty())
    }
}

/// The audiences an entry of `author` that makes `after` of `before` renews the epoch of.
fn to_rotate(
    before: &Roster,
    after: &Roster,
    author: Author,
    body: &EntryBody,
    keys: &EpochKeys,
) -> Vec<EpochAudience> {
    let mut audiences = before.required_epochs(author, body);
    if !after.may_carry_epochs(author, body) {
        return audiences;
    }
    for audience in owed(after, author, keys) {
        if !audiences.contains(&audience) {
            audiences.push(audience);
        }
    }
    audiences
}

/// The audiences whose epoch `author` may renew and should: owed, or not readable by it.
fn owed(after: &Roster, author: Author, keys: &EpochKeys) -> Vec<EpochAudience> {
    let member = match author {
        Author::Device(id) => after.device(id).map(|d| d.member),
        Author::Recovery(member) => Some(member),
    };
    [EpochAudience::Space]
        .into_iter()
        .chain(member.map(EpochAudience::Member))
        .filter(|audience| {
            let unreadable = after
                .current_epoch(*audience)
                .is_some_and(|current| keys.key(*audience, current).is_none());
            (after.epoch_owed(*audience) || unreadable) && after.may_rotate(author, *audience)
        })
        .collect()
}

/// An entry this device's own check refuses: what the roster does not allow it to do.
pub(crate) fn refused_here(error: CoreError) -> CoreError {
    match error {
        CoreError::RosterRefused(why) => {
            CoreError::PermissionDenied(format!("the roster does not allow this ({why})"))
        }
        other => other,
    }
}
