//! The recovery kit: what `init` (or a partner's join) makes so that a person who lost every
//! device can enrol a new one, and where a device keeps it until it is shown.
//!
//! A kit holds the space and member ids, the first bytes of the roster's genesis hash (so a
//! server cannot hand the kit a roster of its own making), a 32-byte seed from which the member's recovery keys
//! derive (an Ed25519 key the roster and the server accept as the member's, an X25519 key every
//! key epoch of the space and of the member is sealed to), and the key that seals device names.
//! Text form: `KSR1` and base32 with a 4-byte SHA-256 checksum, like invite codes. A device
//! keeps its kit in an owner-only file only until `recovery show` prints it once: a phone that
//! is later lost or stolen then holds no kit that could lock its owner out.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{CoreError, Result};
use crate::ids::{MemberId, SpaceId};
use crate::key_store::{DeviceSecrets, write_owner_only};
use crate::keys::SecretKey;

const PREFIX: &str = "KSR1";
const VERSION: u8 = 1;
const CHECKSUM_LEN: usize = 4;
/// The bytes of the roster's genesis hash a kit carries, as invite codes do.
pub const ROSTER_ROOT_LEN: usize = 16;
const BODY_LEN: usize = 1 + 16 + 16 + 32 + 32 + ROSTER_ROOT_LEN;
const FILE_NAME: &str = "recovery-kit";

/// A member's recovery kit.
#[derive(Clone)]
pub struct RecoveryKit {
    pub space: SpaceId,
    pub member: MemberId,
    seed: SecretKey,
    /// The key that seals member and device names.
    pub names_key: SecretKey,
    /// The first bytes of the roster's genesis hash; zeros until the genesis is known.
    pub roster_root: [u8; ROSTER_ROOT_LEN],
}

impl std::fmt::Debug for RecoveryKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryKit")
            .field("space", &self.space)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl RecoveryKit {
    /// A new kit with a fresh seed.
    pub fn generate(space: SpaceId, member: MemberId, names_key: SecretKey) -> Self {
        Self {
            space,
            member,
            seed: SecretKey::random(),
            names_key,
            roster_root: [0; ROSTER_ROOT_LEN],
        }
    }

    /// The same kit, naming `member` (a kit is made before the server assigns the member id).
    pub fn for_member(self, member: MemberId) -> Self {
        Self { member, ..self }
    }

    /// The member's recovery keys.
    pub fn secrets(&self) -> DeviceSecrets {
        let signing = self.seed.derive(&[b"kintsugi/recovery/signing/v1"]);
        let agreement = self.seed.derive(&[b"kintsugi/recovery/agreement/v1"]);
        DeviceSecrets::from_seeds(*signing.expose(), *agreement.expose())
    }

    /// The text form to print or write down.
    pub fn encode(&self) -> String {
        let mut bytes = Zeroizing::new(Vec::with_capacity(BODY_LEN + CHECKSUM_LEN));
        bytes.push(VERSION);
        bytes.extend_from_slice(self.space.as_bytes());
        bytes.extend_from_slice(self.member.as_bytes());
        bytes.extend_from_slice(self.seed.expose());
        bytes.extend_from_slice(self.names_key.expose());
        bytes.extend_from_slice(&self.roster_root);
        let checksum = Sha256::digest(&bytes[..]);
        bytes.extend_from_slice(&checksum[..CHECKSUM_LEN]);
        format!("{PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes))
    }

    /// Parses a kit as typed: case, spaces and dashes do not matter.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |what: &str| {
            CoreError::InvalidCode(format!(
                "{what}; copy the recovery kit again exactly as printed"
            ))
        };
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        let body = cleaned
            .strip_prefix(PREFIX)
            .ok_or_else(|| invalid("this is not a Kintsugi recovery kit (it starts with KSR1)"))?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| invalid("the recovery kit has characters a kit never holds"))?;
        if bytes.len() != BODY_LEN + CHECKSUM_LEN {
            return Err(invalid("the recovery kit is incomplete or too long"));
        }
        let (payload, checksum) = bytes.split_at(BODY_LEN);
        if Sha256::digest(payload)[..CHECKSUM_LEN] != *checksum {
            return Err(invalid(
                "the recovery kit has a typo (its checksum does not match)",
            ));
        }
        if payload[0] != VERSION {
            return Err(invalid("this recovery kit is of another Kintsugi version"));
        }
        let take = |at: usize, len: usize| &payload[at..at + len];
        let key = |at| SecretKey::from_slice(take(at, 32)).ok_or_else(|| invalid("a bad key"));
        Ok(Self {
            space: SpaceId::from_slice(take(1, 16)).map_err(|_| invalid("a bad space id"))?,
            member: MemberId::from_slice(take(17, 16)).map_err(|_| invalid("a bad member id"))?,
            seed: key(33)?,
            names_key: key(65)?,
            roster_root: take(97, ROSTER_ROOT_LEN)
                .try_into()
                .map_err(|_| invalid("a bad root"))?,
        })
    }
}

/// Where a device keeps its member's kit until it is shown.
#[derive(Debug, Clone)]
pub struct RecoveryKitFile {
    path: PathBuf,
}

impl RecoveryKitFile {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
        }
    }

    pub fn save(&self, kit: &RecoveryKit) -> Result<()> {
        write_owner_only(&self.path, kit.encode().as_bytes())
    }

    /// The kit, if this device still keeps one.
    pub fn load(&self) -> Result<Option<RecoveryKit>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => RecoveryKit::parse(&Zeroizing::new(text))
                .map(Some)
                .map_err(|_| CoreError::damaged(self.dir(), "the recovery kit file is damaged")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CoreError::io(self.dir(), e)),
        }
    }

    /// Removes the kit, if there is one, durably.
    pub fn erase(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CoreError::io(self.dir(), e)),
            _ => std::fs::File::open(self.dir())
                .and_then(|d| d.sync_all())
                .map_err(|e| CoreError::io(self.dir(), e)),
        }
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(&self.path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn a_kit_round_trips_and_typos_are_caught() {
        let kit = RecoveryKit::generate(SpaceId::random(), MemberId::random(), SecretKey::random());
        let text = kit.encode();
        let parsed = RecoveryKit::parse(&format!(" {} ", text.to_lowercase())).expect("parses");
        assert_eq!((parsed.space, parsed.member), (kit.space, kit.member));
        assert_eq!(
            parsed.secrets().verifying_key(),
            kit.secrets().verifying_key()
        );
        let mut typo: Vec<char> = text.chars().collect();
        typo[12] = if typo[12] == 'A' { 'B' } else { 'A' };
        let error = RecoveryKit::parse(&typo.into_iter().collect::<String>()).expect_err("typo");
        assert!(error.to_string().contains("typo"), "{error}");
        assert!(RecoveryKit::parse("KS1ABC").is_err());
    }

    #[test]
    fn the_file_keeps_the_kit_until_erased() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = RecoveryKitFile::in_dir(dir.path());
        assert!(file.load().expect("load").is_none());
        let kit = RecoveryKit::generate(SpaceId::random(), MemberId::random(), SecretKey::random());
        file.save(&kit).expect("save");
        assert_eq!(
            file.load().expect("load").map(|k| k.encode()),
            Some(kit.encode())
        );
        file.erase().expect("erase");
        assert!(file.load().expect("load").is_none());
    }
}
