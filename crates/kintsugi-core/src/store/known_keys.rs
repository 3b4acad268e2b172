//! What a new device learned or owes outside the roster: the epoch keys it was given (its own
//! first keys, an invite's welcome, a recovery kit's), and the agreement entry announcing it.

use super::LocalStore;
use super::records::{KnownKeyRecord, KnownKeysRecord};
use crate::epoch_keys::KnownKey;
use crate::error::Result;
use crate::ids::MemberId;
use crate::keys::SecretKey;
use crate::roster::EpochAudience;

/// The meta key of the agreement entry a new device still owes: `1` for a new member, `0` for
/// another device of a member.
const OWED_ANNOUNCEMENT_KEY: &[u8] = b"owed-announcement";
/// The meta key of the epoch keys learned outside the roster (`KnownKeysRecord`).
const KNOWN_KEYS_KEY: &[u8] = b"known-epoch-keys";

impl LocalStore {
    /// The epoch keys this device learned outside the roster.
    pub fn known_keys(&self) -> Result<Vec<KnownKey>> {
        let record: KnownKeysRecord = self.read_meta(KNOWN_KEYS_KEY)?.unwrap_or_default();
        record
            .keys
            .iter()
            .map(|k| {
                let audience = match k.member_id.as_slice() {
                    [] => EpochAudience::Space,
                    id => EpochAudience::Member(
                        MemberId::from_slice(id)
                            .map_err(|_| self.damaged("a known key's member"))?,
                    ),
                };
                let key =
                    SecretKey::from_slice(&k.key).ok_or_else(|| self.damaged("a known key"))?;
                Ok(KnownKey {
                    audience,
                    epoch: k.epoch,
                    key,
                })
            })
            .collect()
    }

    /// Adds `keys` to the epoch keys this device learned outside the roster, and flushes.
    pub fn add_known_keys(&self, keys: &[KnownKey]) -> Result<()> {
        let mut record: KnownKeysRecord = self.read_meta(KNOWN_KEYS_KEY)?.unwrap_or_default();
        for k in keys {
            let member_id = match k.audience {
                EpochAudience::Space => Vec::new(),
                EpochAudience::Member(member) => member.as_bytes().to_vec(),
            };
            let known = |r: &KnownKeyRecord| r.member_id == member_id && r.epoch == k.epoch;
            if !record.keys.iter().any(known) {
                record.keys.push(KnownKeyRecord {
                    member_id,
                    epoch: k.epoch,
                    key: k.key.expose().to_vec(),
                });
            }
        }
        self.write_meta(KNOWN_KEYS_KEY, &record)
    }
}

impl LocalStore {
    /// Whether this device still owes the agreement its arrival: `Some(true)` as a new
    /// member, `Some(false)` as another device of one.
    pub fn owed_announcement(&self) -> Result<Option<bool>> {
        let stored = self.meta.get(OWED_ANNOUNCEMENT_KEY);
        Ok(stored
            .map_err(|e| self.unreadable(e))?
            .map(|v| v.first() == Some(&1)))
    }

    /// Remembers (or, with `None`, forgets) the arrival this device owes the agreement.
    pub fn set_owed_announcement(&self, owed: Option<bool>) -> Result<()> {
        let written = match owed {
            Some(new_member) => self
                .meta
                .insert(OWED_ANNOUNCEMENT_KEY, &[u8::from(new_member)])
                .map(drop),
            None => self.meta.remove(OWED_ANNOUNCEMENT_KEY).map(drop),
        };
        written.map_err(|e| self.unreadable(e))?;
        self.flush()
    }
}
