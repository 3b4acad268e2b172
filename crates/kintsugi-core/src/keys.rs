//! Keys and the values derived from them.
//!
//! A space key (shared by both partners) and a member key (one partner's own devices) are 32
//! random bytes that leave a device only inside an invite or device-link code. Everything else
//! is derived: document ids with HMAC-SHA256, so every device finds the same document without a
//! directory and the server learns nothing from an id; per-document keys with HKDF-SHA256.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use kintsugi_proto::v1::Audience;

use crate::docs::DocKind;
use crate::ids::DocId;

/// 32 secret bytes; wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn random() -> Self {
        Self(rand::random())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A subkey for one purpose, so no two uses ever share a key.
    pub fn derive(&self, info: &[&[u8]]) -> SecretKey {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        #[allow(clippy::expect_used)]
        hk.expand_multi_info(info, &mut out)
            .expect("32 bytes is a valid HKDF length");
        SecretKey(out)
    }

    /// The id of the well-known document `name` under this key.
    pub fn doc_id(&self, name: &str) -> DocId {
        // HMAC accepts keys of any length, so new_from_slice cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"kintsugi/doc/");
        mac.update(name.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut id = [0u8; 16];
        id.copy_from_slice(&tag[..16]);
        DocId(id)
    }

    /// The key that seals the envelopes of one document.
    pub fn doc_key(&self, doc: DocId) -> SecretKey {
        self.derive(&[b"kintsugi/doc/v1", doc.as_bytes()])
    }

    /// The key that seals member and device names stored on the server.
    pub fn names_key(&self) -> SecretKey {
        self.derive(&[b"kintsugi/names/v1"])
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// The keys one device holds.
#[derive(Clone, Debug)]
pub struct Keyring {
    /// Shared by both partners: the agreement, check-ins, shared journal entries.
    pub space: SecretKey,
    /// This partner's own: the private journal.
    pub member: SecretKey,
}

impl Keyring {
    /// The id of a well-known document: derived from the space key, or the member key for
    /// private ones, with its audience in the top bit of the first byte (set for private). The
    /// server refuses a push whose audience contradicts the id, so a partner, who can derive
    /// every shared id, cannot take a shared document by pushing to it first as private.
    pub fn doc_id(&self, kind: DocKind) -> DocId {
        let private = kind.audience() == Audience::Private;
        let key = if private { &self.member } else { &self.space };
        let DocId(mut id) = key.doc_id(kind.name());
        id[0] &= 0x7f;
        if private {
            id[0] |= 0x80;
        }
        DocId(id)
    }

    /// The well-known document whose id is `doc_id`, if any.
    pub fn kind_of(&self, doc_id: &[u8]) -> Option<DocKind> {
        DocKind::ALL
            .into_iter()
            .find(|kind| self.doc_id(*kind).as_bytes().as_slice() == doc_id)
    }

    /// The key a well-known document's envelopes are sealed with.
    pub fn doc_key(&self, kind: DocKind) -> SecretKey {
        let id = self.doc_id(kind);
        match kind.audience() {
            Audience::Private => self.member.doc_key(id),
            _ => self.space.doc_key(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_ids_are_deterministic_and_key_bound() {
        let a = SecretKey::from_bytes([1; 32]);
        let b = SecretKey::from_bytes([2; 32]);
        assert_eq!(a.doc_id("agreement"), a.doc_id("agreement"));
        assert_ne!(a.doc_id("agreement"), a.doc_id("journal"));
        assert_ne!(a.doc_id("agreement"), b.doc_id("agreement"));
    }

    #[test]
    fn doc_keys_differ_per_document() {
        let k = SecretKey::from_bytes([7; 32]);
        let d1 = k.doc_id("agreement");
        let d2 = k.doc_id("checkins");
        assert_ne!(k.doc_key(d1), k.doc_key(d2));
        assert_ne!(k.doc_key(d1).expose(), k.expose());
    }
}
