//! Typed identifiers, so a space id is never passed where a device id belongs.
//!
//! Every id on the wire is 16 opaque bytes; the server makes member, device and invite ids
//! from the operating system's random source, and the client picks space and document ids
//! (document ids are HMACs, so the server learns nothing from them). `ServerSeq` is a position
//! in one document's log. Ids print as lowercase hex: they are not secrets and may be logged,
//! unlike tokens and invite secrets, which never get a `Display` at all. A member's
//! `RecoveryKey` (a public key, 32 bytes) is typed here too, and not printed either.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

macro_rules! id16 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// A fresh id from the operating system's random source.
            pub fn random() -> Self {
                let mut bytes = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                Self(bytes)
            }

            /// The id in `bytes`, or `None` unless it is exactly 16 bytes long.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 16]>::try_from(bytes).ok().map(Self)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// The raw bytes as an owned vector, as protobuf `bytes` fields want them.
            pub fn to_vec(self) -> Vec<u8> {
                self.0.to_vec()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }
    };
}

id16!(
    /// One relationship: two partners and their devices.
    SpaceId
);
id16!(
    /// A person in a space.
    MemberId
);
id16!(
    /// One install of the client core, holding one bearer token.
    DeviceId
);
id16!(
    /// An encrypted Automerge document in a space.
    DocId
);
id16!(
    /// A pending invite; its secret is kept apart and only as a hash.
    InviteId
);

impl DocId {
    /// The space's roster log (docs/protocol.md §9): a shared log whose entries the devices
    /// chain and sign; the server appends an entry only at the position it names.
    pub const ROSTER: DocId = DocId([0; 16]);

    /// The audience the id carries: the top bit of its first byte is set for private
    /// documents. Shared and private documents live in separate halves of the id space, so a
    /// member cannot take a shared document (whose id the partner can derive too) by pushing
    /// to it first as private; the server refuses a push whose audience contradicts its id.
    pub fn audience(&self) -> crate::store::Audience {
        if self.0[0] & 0x80 == 0 {
            crate::store::Audience::Shared
        } else {
            crate::store::Audience::Private
        }
    }

    /// A random id of a document of `audience`.
    pub fn random_of(audience: crate::store::Audience) -> Self {
        let mut id = Self::random();
        id.0[0] &= 0x7f;
        if audience == crate::store::Audience::Private {
            id.0[0] |= 0x80;
        }
        id
    }
}

/// A position in one document's log: 1, 2, 3, ... in the order the server accepted changes.
/// 0 means "before the first entry".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct ServerSeq(pub u64);

impl ServerSeq {
    /// The position after this one.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for ServerSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// SHA-256 of a bearer token or an invite secret: the only form in which the server keeps
/// them, so a stolen data folder does not let anyone act as a device or redeem an invite.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// Hashes a secret (the raw token or invite secret bytes).
    pub fn of(secret: &[u8]) -> Self {
        Self(Sha256::digest(secret).into())
    }

    /// Compares in constant time, so response timing tells an attacker nothing about how
    /// many leading bytes of a guess were right.
    pub fn matches(&self, other: &SecretHash) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }

    /// The hash in `bytes`, or `None` unless it is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Debug for SecretHash {
    // Even a hash is not printed: it would help an attacker correlate logs with a stolen store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// A member's recovery key: the Ed25519 verifying key (32 bytes) of the member's recovery kit.
/// The store keeps the bytes as they are; the services check that they are a key and verify
/// signatures with it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecoveryKey(pub [u8; 32]);

impl RecoveryKey {
    /// The key in `bytes`, or `None` unless it is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Debug for RecoveryKey {
    // Public, but nothing a log needs: logs name members by id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(..)")
    }
}

/// A device's bearer token: 32 random bytes, sent to the client once as lowercase hex.
/// Deliberately neither `Debug`-printable in full nor `Display`, so it cannot end up in a log.
pub struct DeviceToken([u8; 32]);

impl DeviceToken {
    /// A fresh token from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses the hex form a client sends; `None` unless it is 64 hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .ok()?;
        <[u8; 32]>::try_from(bytes.as_slice()).ok().map(Self)
    }

    /// The hex form handed to the client (64 lowercase characters).
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    /// What the server stores and looks the device up by.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceToken(..)")
    }
}

/// 32 random bytes for an invite secret.
pub fn random_secret() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_only_sixteen_bytes() {
        assert!(SpaceId::from_slice(&[1; 16]).is_some());
        assert!(SpaceId::from_slice(&[1; 15]).is_none());
        assert!(DocId::from_slice(&[]).is_none());
    }

    #[test]
    fn token_round_trips_through_hex_and_hides_in_debug() {
        let token = DeviceToken::generate();
        let hex = token.to_hex();
        assert_eq!(hex.len(), 64);
        let parsed = DeviceToken::from_hex(&hex.to_uppercase()).expect("upper-case hex parses");
        assert!(parsed.hash().matches(&token.hash()));
        assert!(!format!("{token:?}").contains(&hex));
        assert!(DeviceToken::from_hex("abc").is_none());
    }

    #[test]
    fn hashes_compare_by_value() {
        assert!(SecretHash::of(b"a").matches(&SecretHash::of(b"a")));
        assert!(!SecretHash::of(b"a").matches(&SecretHash::of(b"b")));
    }
}
