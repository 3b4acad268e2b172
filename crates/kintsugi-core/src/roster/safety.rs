//! Safety numbers: the roster's head as digits two people can read to each other.
//!
//! Sixty digits in twelve groups of five, as Signal shows them: each group is five bytes of a
//! SHA-512 over the space id and the roster's head, taken modulo 100000. Two devices show the
//! same number exactly when they hold the same roster, entry for entry.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha512};

use super::EntryHash;
use crate::ids::SpaceId;

const PREFIX: &[u8] = b"kintsugi/safety-number/v1";
const GROUPS: usize = 12;

/// A roster's safety number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SafetyNumber(String);

impl SafetyNumber {
    pub(super) fn of(space: SpaceId, head: &EntryHash) -> Self {
        let digest = Sha512::new()
            .chain_update(PREFIX)
            .chain_update(space.as_bytes())
            .chain_update(head)
            .finalize();
        let groups: Vec<String> = digest
            .chunks(5)
            .take(GROUPS)
            .map(|chunk| {
                let value = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                format!("{:05}", value % 100_000)
            })
            .collect();
        Self(groups.join(" "))
    }

    /// The digits as people read them: twelve groups of five, separated by spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
