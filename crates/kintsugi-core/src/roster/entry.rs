//! Writing and reading one roster entry: who signed it, what it says, and the bytes each
//! signature covers.

use ed25519_dalek::{Signature, VerifyingKey};
use kintsugi_proto::v1::roster_entry::Body;
use kintsugi_proto::v1::{DeviceKeys, RosterEntry, Rotation, SignedRosterEntry};
use prost::Message;

use super::EntryHash;
use crate::ids::{DeviceId, MemberId};
use crate::key_store::DeviceSecrets;

/// What an entry says; the proto's `oneof`.
pub type EntryBody = Body;

const ENTRY_SIGNATURE_PREFIX: &[u8] = b"kintsugi/roster-entry/v1";
const INVITE_SIGNATURE_PREFIX: &[u8] = b"kintsugi/roster-invite/v1";

/// Who signed an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Author {
    Device(DeviceId),
    /// The member's recovery key.
    Recovery(MemberId),
}

impl Author {
    pub(super) fn of(entry: &RosterEntry) -> Result<Self, String> {
        match (
            entry.author_device.is_empty(),
            entry.recovery_member.is_empty(),
        ) {
            (false, true) => DeviceId::from_slice(&entry.author_device)
                .map(Author::Device)
                .map_err(|_| "its author is not a device id".into()),
            (true, false) => MemberId::from_slice(&entry.recovery_member)
                .map(Author::Recovery)
                .map_err(|_| "its recovery author is not a member id".into()),
            _ => Err("it names no single author".into()),
        }
    }
}

/// Signs an entry at position `seq` after `prev`, starting the key epochs `rotations`.
pub fn sign_entry(
    seq: u64,
    prev: &EntryHash,
    author: Author,
    body: EntryBody,
    rotations: Vec<Rotation>,
    signer: &DeviceSecrets,
) -> SignedRosterEntry {
    let (author_device, recovery_member) = match author {
        Author::Device(id) => (id.as_bytes().to_vec(), Vec::new()),
        Author::Recovery(member) => (Vec::new(), member.as_bytes().to_vec()),
    };
    let entry = RosterEntry {
        seq,
        prev: if seq == 0 { Vec::new() } else { prev.to_vec() },
        author_device,
        recovery_member,
        rotations,
        body: Some(body),
    }
    .encode_to_vec();
    let signature = signer
        .sign(&[ENTRY_SIGNATURE_PREFIX, &entry].concat())
        .to_vec();
    SignedRosterEntry { entry, signature }
}

/// Whether `signed`'s signature is `key`'s.
pub(super) fn signed_by(signed: &SignedRosterEntry, key: &VerifyingKey) -> bool {
    verify(
        key,
        &[ENTRY_SIGNATURE_PREFIX, &signed.entry].concat(),
        &signed.signature,
    )
}

/// What an invite key signs to let `device` join `member` through invite `invite_id`, in the
/// entry at position `seq` after `prev`: all of it, so the countersignature fits one entry only.
pub fn invite_signing_input(
    prev: &EntryHash,
    seq: u64,
    invite_id: &[u8],
    member: &[u8],
    device: &DeviceKeys,
) -> Vec<u8> {
    [
        INVITE_SIGNATURE_PREFIX,
        prev.as_slice(),
        &seq.to_be_bytes(),
        invite_id,
        member,
        &device.device_id,
        &device.signing_key,
        &device.agreement_key,
    ]
    .concat()
}

pub(super) fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    Signature::from_slice(signature).is_ok_and(|s| key.verify_strict(message, &s).is_ok())
}

/// An Ed25519 key from the 32 bytes an entry holds.
pub(super) fn verifying_key(bytes: &[u8]) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "a key is not 32 bytes")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "a key is not an Ed25519 key".into())
}

/// An X25519 public key from the 32 bytes an entry holds.
pub(super) fn agreement_key(bytes: &[u8]) -> Result<[u8; 32], String> {
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an agreement key is not 32 bytes")?;
    if !crate::epoch_keys::is_usable_public_key(&key) {
        return Err("an agreement key no epoch can be sealed to".into());
    }
    Ok(key)
}

/// The public keys of `secrets` for device `id`, as an entry carries them.
pub fn device_keys(id: DeviceId, secrets: &DeviceSecrets) -> DeviceKeys {
    DeviceKeys {
        device_id: id.as_bytes().to_vec(),
        signing_key: secrets.verifying_key().to_bytes().to_vec(),
        agreement_key: secrets.agreement_public().to_vec(),
    }
}
