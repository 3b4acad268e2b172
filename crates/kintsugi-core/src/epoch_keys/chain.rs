//! The link from one epoch back to the one before: the earlier epoch's number and key,
//! encrypted (XChaCha20-Poly1305) with a subkey of the later epoch's key.

use crate::envelope::{NONCE_LEN, decrypt, encrypt};
use crate::ids::SpaceId;
use crate::keys::SecretKey;
use crate::roster::EpochAudience;

use super::hpke_seal::audience_bytes;

const LINK_KEY_INFO: &[u8] = b"kintsugi/epoch-chain/v1";

/// Which epoch a link is stored in.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    pub space: SpaceId,
    pub audience: EpochAudience,
    pub epoch: u64,
}

impl Link {
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = LINK_KEY_INFO.to_vec();
        aad.extend_from_slice(self.space.as_bytes());
        aad.extend(audience_bytes(self.audience));
        aad.extend_from_slice(&self.epoch.to_be_bytes());
        aad
    }
}

/// Seals epoch `before` and its key with `key`, the key of the epoch `link` names.
pub(super) fn seal_previous(
    link: &Link,
    key: &SecretKey,
    before: u64,
    before_key: &SecretKey,
) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let plain = [&before.to_be_bytes()[..], before_key.expose()].concat();
    let link_key = key.derive(&[LINK_KEY_INFO]);
    let mut out = nonce.to_vec();
    out.extend(encrypt(&link_key, &nonce, &link.associated_data(), &plain));
    out
}

/// The epoch before and its key, when `sealed` opens with `key`.
pub(super) fn open_previous(
    link: &Link,
    key: &SecretKey,
    sealed: &[u8],
) -> Option<(u64, SecretKey)> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let link_key = key.derive(&[LINK_KEY_INFO]);
    let plain = decrypt(&link_key, nonce, &link.associated_data(), ciphertext)?;
    let (epoch, before_key) = plain.split_at_checked(8)?;
    let epoch = u64::from_be_bytes(epoch.try_into().ok()?);
    Some((epoch, SecretKey::from_slice(before_key)?))
}
