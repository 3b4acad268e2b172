//! The welcome an invite carries in the roster: the keys a joiner needs to read what came
//! before, encrypted with a key derived from the one-time seed only the invite code holds.
//!
//! The join starts new epochs sealed to the joining device's own X25519 key, so a code read
//! after it was used (a screenshot, shell history, with the server's data beside it) opens the
//! epochs up to the join and nothing written after.

use kintsugi_proto::v1::Welcome;
use prost::Message;

use super::{EpochKeys, KnownKey};
use crate::envelope::{NONCE_LEN, decrypt, encrypt};
use crate::ids::{MemberId, SpaceId};
use crate::keys::SecretKey;
use crate::roster::EpochAudience;

const WELCOME_KEY_INFO: &[u8] = b"kintsugi/invite-welcome/v1";

fn welcome_key(seed: &[u8; 32]) -> SecretKey {
    SecretKey::from_bytes(*seed).derive(&[WELCOME_KEY_INFO])
}

fn associated_data(space: SpaceId, invite_id: &[u8]) -> Vec<u8> {
    [WELCOME_KEY_INFO, space.as_bytes(), invite_id].concat()
}

/// The welcome for an invite: the space's first and newest epoch keys and, for a device link
/// (`member` set), the member's too.
pub(crate) fn seal_welcome(
    seed: &[u8; 32],
    space: SpaceId,
    invite_id: &[u8],
    keys: &EpochKeys,
    member: Option<MemberId>,
) -> Option<Vec<u8>> {
    let first_and_latest = |audience| -> Option<(Vec<u8>, u64, Vec<u8>)> {
        let first = keys.key(audience, 0)?.expose().to_vec();
        let (epoch, latest) = keys.latest(audience)?;
        Some((first, epoch, latest.expose().to_vec()))
    };
    let (space_key, space_epoch, space_epoch_key) = first_and_latest(EpochAudience::Space)?;
    let mut welcome = Welcome {
        space_key,
        space_epoch,
        space_epoch_key,
        ..Welcome::default()
    };
    if let Some(member) = member {
        let (first, epoch, latest) = first_and_latest(EpochAudience::Member(member))?;
        (
            welcome.member_key,
            welcome.member_epoch,
            welcome.member_epoch_key,
        ) = (first, epoch, latest);
    }
    let nonce: [u8; NONCE_LEN] = rand::random();
    let aad = associated_data(space, invite_id);
    let mut out = nonce.to_vec();
    out.extend(encrypt(
        &welcome_key(seed),
        &nonce,
        &aad,
        &welcome.encode_to_vec(),
    ));
    Some(out)
}

/// The keys a welcome holds, for a joiner of `member`; `None` when it does not open.
pub fn open_welcome(
    seed: &[u8; 32],
    space: SpaceId,
    invite_id: &[u8],
    sealed: &[u8],
    member: MemberId,
) -> Option<Vec<KnownKey>> {
    let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
    let plain = decrypt(
        &welcome_key(seed),
        nonce,
        &associated_data(space, invite_id),
        ciphertext,
    )?;
    let welcome = Welcome::decode(plain.as_slice()).ok()?;
    let mut keys = vec![
        known(EpochAudience::Space, 0, &welcome.space_key)?,
        known(
            EpochAudience::Space,
            welcome.space_epoch,
            &welcome.space_epoch_key,
        )?,
    ];
    if !welcome.member_key.is_empty() {
        let audience = EpochAudience::Member(member);
        keys.push(known(audience, 0, &welcome.member_key)?);
        keys.push(known(
            audience,
            welcome.member_epoch,
            &welcome.member_epoch_key,
        )?);
    }
    Some(keys)
}

fn known(audience: EpochAudience, epoch: u64, bytes: &[u8]) -> Option<KnownKey> {
    Some(KnownKey {
        audience,
        epoch,
        key: SecretKey::from_slice(bytes)?,
    })
}
