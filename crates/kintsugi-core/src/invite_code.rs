//! Invite and device-link codes: what one phone shows and the other scans or types.
//!
//! A code carries the server's invite id and single-use secret, the space id, the key that
//! seals device names, the one-time seed of the invite (made on the inviting phone; the server
//! never sees it), and the first bytes of the roster's genesis hash (so a server cannot hand
//! the joiner a roster of its own making), and the server's address (so `join CODE` needs no
//! `--server`; not a secret, and covered by the checksum like the rest). No key that reads a document: the seed opens the
//! welcome the inviter sealed into the roster, and the join starts new key epochs, so a code
//! read after it was used opens nothing written after the join. It is base32 (no lookalike lowercase, easy to read aloud)
//! with a `KS1` prefix and a 4-byte SHA-256 checksum, so a typo is caught before any network
//! call and reported as such.

use sha2::{Digest, Sha256};

use crate::error::CoreError;
use crate::ids::SpaceId;
use crate::keys::SecretKey;

const PREFIX: &str = "KS1";
const VERSION: u8 = 4;
const CHECKSUM_LEN: usize = 4;
/// The bytes of the genesis hash a code carries.
pub const ROSTER_ROOT_LEN: usize = 16;
const BASE_LEN: usize = 1 + 1 + 16 + 32 + 16 + 32 + 32 + ROSTER_ROOT_LEN;
/// The longest server address a code carries (its length is one byte).
pub const MAX_SERVER_URL_LEN: usize = 255;

/// Who the code lets in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// The second partner of the space.
    Partner,
    /// Another device of the inviting partner.
    Device,
}

/// Everything a joining device needs.
#[derive(Clone, Debug)]
pub struct InviteCode {
    pub kind: CodeKind,
    pub invite_id: [u8; 16],
    pub secret: [u8; 32],
    pub space: SpaceId,
    /// The key that seals member and device names (`SecretKey::names_key`).
    pub names_key: SecretKey,
    /// The invite's one-time seed: its Ed25519 key and the key of its welcome derive from it.
    pub invite_seed: [u8; 32],
    /// The first bytes of the roster's genesis hash.
    pub roster_root: [u8; ROSTER_ROOT_LEN],
    /// The sync server the space lives on, so `join CODE` needs no `--server`. At most
    /// [`MAX_SERVER_URL_LEN`] bytes; a longer one is left out and the joiner gives it.
    pub server_url: String,
}

impl InviteCode {
    /// The text form, e.g. `KS1ABCD...`.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(BASE_LEN + 32 + CHECKSUM_LEN);
        bytes.push(VERSION);
        bytes.push(match self.kind {
            CodeKind::Partner => 1,
            CodeKind::Device => 2,
        });
        bytes.extend_from_slice(&self.invite_id);
        bytes.extend_from_slice(&self.secret);
        bytes.extend_from_slice(self.space.as_bytes());
        bytes.extend_from_slice(self.names_key.expose());
        bytes.extend_from_slice(&self.invite_seed);
        bytes.extend_from_slice(&self.roster_root);
        let url = match self.server_url.len() {
            len if len <= MAX_SERVER_URL_LEN => self.server_url.as_bytes(),
            _ => &[],
        };
        bytes.push(url.len() as u8);
        bytes.extend_from_slice(url);
        let checksum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&checksum[..CHECKSUM_LEN]);
        format!("{PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes))
    }

    /// Parses a code as typed or scanned: case, spaces and dashes do not matter.
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        let not_a_code = || {
            CoreError::InvalidCode(
                "this is not a Kintsugi invite code; copy it again exactly as shown".into(),
            )
        };
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        let body = cleaned.strip_prefix(PREFIX).ok_or_else(not_a_code)?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| not_a_code())?;
        if bytes.len() < BASE_LEN + 1 + CHECKSUM_LEN {
            return Err(CoreError::InvalidCode(
                "the invite code is incomplete; copy all of it".into(),
            ));
        }
        let (payload, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if Sha256::digest(payload)[..CHECKSUM_LEN] != *checksum {
            return Err(CoreError::InvalidCode(
                "the invite code has a typo (its checksum does not match); check it or ask for a new one"
                    .into(),
            ));
        }
        if payload[0] > VERSION {
            return Err(CoreError::InvalidCode(
                "this invite code was made by a newer Kintsugi; update this app".into(),
            ));
        }
        if payload[0] < VERSION {
            return Err(CoreError::InvalidCode(
                "this invite code was made by an older Kintsugi; ask for a new code".into(),
            ));
        }
        let kind = match payload[1] {
            1 => CodeKind::Partner,
            2 => CodeKind::Device,
            _ => return Err(not_a_code()),
        };
        let url_len = usize::from(*payload.get(BASE_LEN).ok_or_else(not_a_code)?);
        let url = payload
            .get(BASE_LEN + 1..)
            .filter(|url| url.len() == url_len);
        let server_url = url
            .and_then(|url| String::from_utf8(url.to_vec()).ok())
            .ok_or_else(not_a_code)?;
        let take16 = |at: usize| -> [u8; 16] {
            let mut out = [0u8; 16];
            out.copy_from_slice(&payload[at..at + 16]);
            out
        };
        let take32 = |at: usize| -> [u8; 32] {
            let mut out = [0u8; 32];
            out.copy_from_slice(&payload[at..at + 32]);
            out
        };
        Ok(InviteCode {
            kind,
            invite_id: take16(2),
            secret: take32(18),
            space: SpaceId(take16(50)),
            names_key: SecretKey::from_bytes(take32(66)),
            invite_seed: take32(98),
            roster_root: take16(130),
            server_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: CodeKind) -> InviteCode {
        InviteCode {
            kind,
            invite_id: [1; 16],
            secret: [2; 32],
            space: SpaceId([3; 16]),
            names_key: SecretKey::from_bytes([4; 32]),
            invite_seed: [6; 32],
            roster_root: [7; 16],
            server_url: "https://kintsugi.example:7878".into(),
        }
    }

    #[test]
    fn codes_round_trip_in_any_case_and_spacing() {
        for kind in [CodeKind::Partner, CodeKind::Device] {
            let text = sample(kind).encode();
            let messy = format!(" {} ", text.to_lowercase().replace("A", "-a"));
            let parsed = InviteCode::parse(&messy).expect("parses");
            assert_eq!(parsed.kind, kind);
            assert_eq!(parsed.secret, [2; 32]);
            assert_eq!(parsed.space, SpaceId([3; 16]));
            assert_eq!(parsed.names_key, SecretKey::from_bytes([4; 32]));
            assert_eq!((parsed.invite_seed, parsed.roster_root), ([6; 32], [7; 16]));
            assert_eq!(parsed.server_url, "https://kintsugi.example:7878");
        }
    }

    #[test]
    fn typos_and_garbage_are_refused_clearly() {
        let text = sample(CodeKind::Partner).encode();
        let mut chars: Vec<char> = text.chars().collect();
        chars[10] = if chars[10] == 'B' { 'C' } else { 'B' };
        let typo: String = chars.into_iter().collect();
        let err = InviteCode::parse(&typo).expect_err("typo").to_string();
        assert!(
            err.contains("typo") || err.contains("not a Kintsugi"),
            "{err}"
        );
        assert!(InviteCode::parse("hello").is_err());
        assert!(InviteCode::parse("KS1").is_err());
        assert!(InviteCode::parse(&text[..40]).is_err());
    }

    #[test]
    fn an_address_too_long_for_a_code_is_left_out() {
        let mut code = sample(CodeKind::Device);
        code.server_url = format!("https://{}.example", "a".repeat(300));
        let parsed = InviteCode::parse(&code.encode()).expect("parses");
        assert_eq!(parsed.server_url, "", "the joiner gives --server then");
    }
}
