//! Identifiers of spaces, members, devices and documents.
//!
//! Each is a newtype over 16 bytes so a space id is never passed where a device id belongs.
//! They print as lowercase hex, which is what the CLI shows and accepts.

use std::fmt;

use crate::error::CoreError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                Self(rand::random())
            }

            /// Reads an id from the 16 bytes the server or a record holds.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, CoreError> {
                bytes
                    .try_into()
                    .map(Self)
                    .map_err(|_| CoreError::Protocol(format!("{} is not 16 bytes", stringify!($name))))
            }

            /// Parses the hex form printed by [`fmt::Display`].
            pub fn parse_hex(text: &str) -> Option<Self> {
                let bytes = data_encoding::HEXLOWER_PERMISSIVE.decode(text.trim().as_bytes()).ok()?;
                bytes.try_into().ok().map(Self)
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
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

id_type!(
    /// One relationship: the two partners and their devices.
    SpaceId
);
id_type!(
    /// One person in a space.
    MemberId
);
id_type!(
    /// One install of the core; also its Automerge actor id.
    DeviceId
);
id_type!(
    /// A document, derived from a key and a well-known name so the server learns nothing from it.
    DocId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let id = DeviceId::random();
        assert_eq!(DeviceId::parse_hex(&id.to_string()), Some(id));
        assert_eq!(DeviceId::parse_hex("abc"), None);
    }
}
