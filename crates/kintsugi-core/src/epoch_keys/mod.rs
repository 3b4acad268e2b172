//! The key epochs a device holds, and the new epochs it starts.
//!
//! Every key epoch of the space (and of each member's private documents) begins with a
//! `Rotation` in a roster entry: a fresh 32-byte key sealed with HPKE to each device that reads
//! it and to the audience's recovery keys (`hpke_seal.rs`), plus the epoch before it sealed with
//! the new key (`chain.rs`). A device opens what was sealed to it and walks back from there, so
//! it reads the whole history from its first epoch on, and a device the roster no longer admits
//! gets no key of any epoch started after it left. Document keys derive from the epoch key
//! (`SecretKey::doc_key`); document ids and the names key from the audience's first epoch key.

mod chain;
mod hpke_seal;
mod rotation;
pub mod welcome;

use std::collections::BTreeMap;

use crate::ids::DocId;
use crate::keys::SecretKey;
use crate::roster::{EpochAudience, Recipient, Roster};

pub(crate) use hpke_seal::{SealContext, is_usable_public_key};
pub(crate) use rotation::new_rotation;

/// One epoch key as a device learned it outside the roster (its own first keys, a welcome).
#[derive(Clone, Debug)]
pub struct KnownKey {
    pub audience: EpochAudience,
    pub epoch: u64,
    pub key: SecretKey,
}

/// Every epoch key a device holds, by audience and epoch number.
#[derive(Clone, Debug, Default)]
pub struct EpochKeys {
    chains: BTreeMap<EpochAudience, BTreeMap<u64, SecretKey>>,
}

impl EpochKeys {
    /// The keys `me` holds: those it already knew, those the roster sealed to it (opened with
    /// its X25519 `secret`), and every earlier epoch they lead back to.
    pub fn unlock(
        roster: &Roster,
        me: Recipient,
        secret: &[u8; 32],
        known: impl IntoIterator<Item = KnownKey>,
    ) -> Self {
        let mut keys = Self::default();
        for k in known {
            keys.insert(k.audience, k.epoch, k.key);
        }
        let audiences: Vec<EpochAudience> = roster
            .members()
            .map(EpochAudience::Member)
            .chain([EpochAudience::Space])
            .chain(keys.chains.keys().copied())
            .collect();
        for audience in audiences {
            keys.open_sealed(roster, audience, me, secret);
            keys.walk_back(roster, audience);
        }
        keys
    }

    fn open_sealed(
        &mut self,
        roster: &Roster,
        audience: EpochAudience,
        me: Recipient,
        secret: &[u8; 32],
    ) {
        for (epoch, record) in (0u64..).zip(roster.epochs(audience)) {
            let ctx = SealContext {
                space: roster.space(),
                audience,
                epoch,
            };
            let mine = record
                .sealed
                .iter()
                .filter(|s| crate::roster::recipient_of(s).ok() == Some(me));
            for sealed in mine {
                if let Some(key) = hpke_seal::open_as(&ctx, me, secret, sealed) {
                    self.insert(audience, epoch, key);
                }
            }
        }
    }

    /// Opens, from the newest epoch held down, the epoch each one names as the one before.
    fn walk_back(&mut self, roster: &Roster, audience: EpochAudience) {
        let records = roster.epochs(audience);
        for epoch in (0..records.len() as u64).rev() {
            let Some(key) = self.key(audience, epoch).cloned() else {
                continue;
            };
            let link = chain::Link {
                space: roster.space(),
                audience,
                epoch,
            };
            let previous = chain::open_previous(&link, &key, &records[epoch as usize].previous);
            if let Some((before, key)) = previous
                && before < epoch
            {
                let chain = self.chains.entry(audience).or_default();
                chain.entry(before).or_insert(key);
            }
        }
    }

    pub fn insert(&mut self, audience: EpochAudience, epoch: u64, key: SecretKey) {
        self.chains.entry(audience).or_default().insert(epoch, key);
    }

    /// The key of epoch `epoch` of `audience`, if this device holds it.
    pub fn key(&self, audience: EpochAudience, epoch: u64) -> Option<&SecretKey> {
        self.chains.get(&audience)?.get(&epoch)
    }

    /// The newest epoch of `audience` this device holds, and its key.
    pub fn latest(&self, audience: EpochAudience) -> Option<(u64, &SecretKey)> {
        let (epoch, key) = self.chains.get(&audience)?.last_key_value()?;
        Some((*epoch, key))
    }

    /// The epochs of `audience` this device holds, newest first.
    pub fn newest_first(&self, audience: EpochAudience) -> impl Iterator<Item = (u64, &SecretKey)> {
        self.chains
            .get(&audience)
            .into_iter()
            .flat_map(|chain| chain.iter().rev().map(|(epoch, key)| (*epoch, key)))
    }

    /// The key that seals document `doc`'s envelopes under epoch `epoch` of `audience`.
    pub fn doc_key(&self, audience: EpochAudience, epoch: u64, doc: DocId) -> Option<SecretKey> {
        self.key(audience, epoch).map(|key| key.doc_key(doc))
    }

    /// Every key held, as `KnownKey`s.
    pub fn all(&self) -> impl Iterator<Item = KnownKey> + '_ {
        self.chains.iter().flat_map(|(audience, chain)| {
            chain.iter().map(|(epoch, key)| KnownKey {
                audience: *audience,
                epoch: *epoch,
                key: key.clone(),
            })
        })
    }
}

#[cfg(test)]
mod tests;
