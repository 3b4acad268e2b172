//! Sealing one 32-byte epoch key to one recipient's X25519 key, with HPKE (RFC 9180) in base
//! mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
//!
//! The associated data names the space, the audience, the epoch and the recipient, so a sealed
//! key cannot be passed off as another epoch's or another recipient's.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use kintsugi_proto::v1::SealedEpochKey;

use crate::ids::SpaceId;
use crate::keys::SecretKey;
use crate::roster::{EpochAudience, Recipient};

type Kem = X25519HkdfSha256;

const INFO: &[u8] = b"kintsugi/epoch-key/v1";

/// Where a sealed epoch key belongs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SealContext {
    pub space: SpaceId,
    pub audience: EpochAudience,
    pub epoch: u64,
}

impl SealContext {
    fn associated_data(&self, recipient: Recipient) -> Vec<u8> {
        let mut aad = self.space.as_bytes().to_vec();
        aad.extend(audience_bytes(self.audience));
        aad.extend_from_slice(&self.epoch.to_be_bytes());
        match recipient {
            Recipient::Device(id) => aad.extend([&[1u8][..], id.as_bytes()].concat()),
            Recipient::Recovery(member) => aad.extend([&[2u8][..], member.as_bytes()].concat()),
        }
        aad
    }
}

/// The audience as bytes: `0` for the space, `1` and the member id for a member's documents.
pub(crate) fn audience_bytes(audience: EpochAudience) -> Vec<u8> {
    match audience {
        EpochAudience::Space => vec![0],
        EpochAudience::Member(member) => [&[1u8][..], member.as_bytes()].concat(),
    }
}

/// Seals `key` to `recipient`, whose X25519 public key is `public`; `None` when `public` is
/// not a usable X25519 key (the roster only checks its length).
pub(crate) fn seal_to(
    ctx: &SealContext,
    recipient: Recipient,
    public: &[u8; 32],
    key: &SecretKey,
) -> Option<SealedEpochKey> {
    let public = <Kem as hpke::Kem>::PublicKey::from_bytes(public).ok()?;
    let (encapsulated, ciphertext) =
        hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
            &OpModeS::Base,
            &public,
            INFO,
            key.expose(),
            &ctx.associated_data(recipient),
            &mut rand::rngs::OsRng,
        )
        .ok()?;
    let (device_id, recovery_member) = match recipient {
        Recipient::Device(id) => (id.as_bytes().to_vec(), Vec::new()),
        Recipient::Recovery(member) => (Vec::new(), member.as_bytes().to_vec()),
    };
    Some(SealedEpochKey {
        device_id,
        recovery_member,
        encapsulated_key: encapsulated.to_bytes().to_vec(),
        ciphertext,
    })
}

/// Whether epoch keys can be sealed to `public`: not a low-order point, for which the key
/// exchange gives nothing secret (a hostile device could otherwise register one and make every
/// new epoch fail to seal).
pub(crate) fn is_usable_public_key(public: &[u8; 32]) -> bool {
    let ctx = SealContext {
        space: SpaceId([0; 16]),
        audience: EpochAudience::Space,
        epoch: 0,
    };
    let probe = Recipient::Recovery(crate::ids::MemberId([0; 16]));
    seal_to(&ctx, probe, public, &SecretKey::from_bytes([0; 32])).is_some()
}

/// Opens a key sealed to `recipient` with its X25519 secret; `None` when it does not open.
pub(crate) fn open_as(
    ctx: &SealContext,
    recipient: Recipient,
    secret: &[u8; 32],
    sealed: &SealedEpochKey,
) -> Option<SecretKey> {
    let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret).ok()?;
    let encapsulated =
        <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.encapsulated_key).ok()?;
    let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &secret,
        &encapsulated,
        INFO,
        &sealed.ciphertext,
        &ctx.associated_data(recipient),
    )
    .ok()?;
    SecretKey::from_slice(&plain)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use crate::ids::DeviceId;
    use crate::key_store::DeviceSecrets;

    fn ctx(epoch: u64) -> SealContext {
        SealContext {
            space: SpaceId([1; 16]),
            audience: EpochAudience::Space,
            epoch,
        }
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_recipient_and_epoch() {
        let (alice, bob) = (DeviceSecrets::generate(), DeviceSecrets::generate());
        let me = Recipient::Device(DeviceId([2; 16]));
        let key = SecretKey::random();
        let sealed = seal_to(&ctx(3), me, &alice.agreement_public(), &key).expect("seals");
        assert_eq!(
            open_as(&ctx(3), me, alice.agreement_secret(), &sealed),
            Some(key)
        );
        assert_eq!(open_as(&ctx(3), me, bob.agreement_secret(), &sealed), None);
        assert_eq!(
            open_as(&ctx(4), me, alice.agreement_secret(), &sealed),
            None
        );
        let other = Recipient::Device(DeviceId([3; 16]));
        assert_eq!(
            open_as(&ctx(3), other, alice.agreement_secret(), &sealed),
            None
        );
    }

    #[test]
    fn low_order_points_are_not_usable_keys() {
        assert!(is_usable_public_key(
            &DeviceSecrets::generate().agreement_public()
        ));
        assert!(!is_usable_public_key(&[0; 32]));
        let mut one = [0; 32];
        one[0] = 1;
        assert!(!is_usable_public_key(&one));
    }
}
