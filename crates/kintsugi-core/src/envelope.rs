//! Sealing and opening envelopes: XChaCha20-Poly1305 with a random 24-byte nonce.
//!
//! Plaintexts are padded before they are sealed (`padding.rs`: PADME for changes and
//! snapshots, 32-byte blocks for names), so the server learns a size bucket, not a length.
//!
//! The associated data binds the space, the document, the authoring device, its client
//! sequence number, the kind and the key epoch, so a server that moves a ciphertext to another document, space
//! or position, or replays it as another kind, produces an envelope that fails to open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use kintsugi_proto::v1::{Envelope, EnvelopeKind};

use ed25519_dalek::{Signature, VerifyingKey};

use crate::error::CoreError;
use crate::ids::{DeviceId, DocId, SpaceId};
use crate::key_store::DeviceSecrets;
use crate::keys::SecretKey;
use crate::padding::{name_blocks, pad, padme, unpad};

const ENVELOPE_AAD_PREFIX: &[u8] = b"kintsugi/envelope/v3";
const NAME_AAD_PREFIX: &[u8] = b"kintsugi/name/v2";
const SIGNATURE_PREFIX: &[u8] = b"kintsugi/envelope-signature/v1";
pub(crate) const NONCE_LEN: usize = 24;

/// Where a receiver finds the key that checks an author's signature: the roster.
pub trait Authors {
    /// The Ed25519 key of `device`, if the roster admits it as a writer under `epoch`.
    fn signing_key(&self, device: DeviceId, epoch: u64) -> Option<VerifyingKey>;
}

fn signing_input(aad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    [SIGNATURE_PREFIX, aad, nonce, ciphertext].concat()
}

/// Where an envelope belongs; all of it is bound into the associated data.
#[derive(Clone, Copy, Debug)]
pub struct EnvelopeContext {
    pub space: SpaceId,
    pub doc: DocId,
    pub device: DeviceId,
    pub client_seq: u64,
    pub kind: EnvelopeKind,
    /// The key epoch the envelope is sealed under.
    pub epoch: u64,
}

impl EnvelopeContext {
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(ENVELOPE_AAD_PREFIX.len() + 65);
        aad.extend_from_slice(ENVELOPE_AAD_PREFIX);
        aad.extend_from_slice(self.space.as_bytes());
        aad.extend_from_slice(self.doc.as_bytes());
        aad.extend_from_slice(self.device.as_bytes());
        aad.extend_from_slice(&self.client_seq.to_be_bytes());
        aad.push(self.kind as i32 as u8);
        aad.extend_from_slice(&self.epoch.to_be_bytes());
        aad
    }
}

/// What endorsements and rejections of a snapshot name: SHA-256 over the envelope's device id,
/// client_seq (big-endian), nonce and ciphertext, as the server computes it too.
pub fn snapshot_hash(envelope: &Envelope) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(&envelope.device_id);
    hash.update(envelope.client_seq.to_be_bytes());
    hash.update(&envelope.nonce);
    hash.update(&envelope.ciphertext);
    hash.finalize().into()
}

/// Encrypts `plaintext` into an envelope ready to push, signed by its author's `signer`.
pub fn seal(
    key: &SecretKey,
    signer: &DeviceSecrets,
    ctx: &EnvelopeContext,
    plaintext: &[u8],
) -> Envelope {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let aad = ctx.associated_data();
    let ciphertext = encrypt(key, &nonce, &aad, &pad(plaintext, padme));
    let signature = signer
        .sign(&signing_input(&aad, &nonce, &ciphertext))
        .to_vec();
    Envelope {
        signature,
        device_id: ctx.device.as_bytes().to_vec(),
        client_seq: ctx.client_seq,
        kind: ctx.kind as i32,
        nonce: nonce.to_vec(),
        ciphertext,
        server_seq: 0,
        key_epoch: ctx.epoch,
    }
}

/// Checks an envelope of document `doc` in `space` is signed by the device it names, as the
/// roster (`authors`) admits it under the envelope's epoch, then decrypts it with the
/// document's key of that epoch (`key_of_epoch`), checking everything it is bound to.
pub fn open(
    key_of_epoch: impl FnOnce(u64) -> Option<SecretKey>,
    authors: &impl Authors,
    space: SpaceId,
    doc: DocId,
    envelope: &Envelope,
) -> Result<(EnvelopeContext, Vec<u8>), CoreError> {
    let kind = EnvelopeKind::try_from(envelope.kind)
        .map_err(|_| CoreError::Tampered(format!("unknown envelope kind {}", envelope.kind)))?;
    let device = DeviceId::from_slice(&envelope.device_id)
        .map_err(|_| CoreError::Tampered("malformed device id".into()))?;
    let ctx = EnvelopeContext {
        space,
        doc,
        device,
        client_seq: envelope.client_seq,
        kind,
        epoch: envelope.key_epoch,
    };
    let aad = ctx.associated_data();
    let author = authors
        .signing_key(device, envelope.key_epoch)
        .ok_or_else(|| {
            CoreError::Tampered(format!(
                "envelope {} names device {device}, which the roster does not admit as a writer \
                 of key epoch {}",
                envelope.server_seq, envelope.key_epoch
            ))
        })?;
    let signed = Signature::from_slice(&envelope.signature).is_ok_and(|signature| {
        let input = signing_input(&aad, &envelope.nonce, &envelope.ciphertext);
        author.verify_strict(&input, &signature).is_ok()
    });
    if !signed {
        return Err(CoreError::Tampered(format!(
            "envelope {} is not signed by device {device}, which it names as its author",
            envelope.server_seq
        )));
    }
    let key = key_of_epoch(envelope.key_epoch).ok_or_else(|| {
        CoreError::Tampered(format!(
            "envelope {} is sealed under key epoch {}, which this device holds no key of",
            envelope.server_seq, envelope.key_epoch
        ))
    })?;
    let padded = decrypt(&key, &envelope.nonce, &aad, &envelope.ciphertext);
    let plaintext = padded.as_deref().and_then(unpad).map(<[u8]>::to_vec);
    let plaintext = plaintext.ok_or_else(|| {
        CoreError::Tampered(format!(
            "envelope {} of device {device} does not decrypt",
            envelope.server_seq
        ))
    })?;
    Ok((ctx, plaintext))
}

/// Seals a member or device name for the server to store without reading it.
pub fn seal_name(names_key: &SecretKey, space: SpaceId, name: &str) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let aad = [NAME_AAD_PREFIX, space.as_bytes()].concat();
    let mut out = nonce.to_vec();
    out.extend(encrypt(
        names_key,
        &nonce,
        &aad,
        &pad(name.as_bytes(), name_blocks),
    ));
    out
}

/// Opens a sealed name; `None` when it was not sealed with this space's key.
pub fn open_name(names_key: &SecretKey, space: SpaceId, sealed: &[u8]) -> Option<String> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let aad = [NAME_AAD_PREFIX, space.as_bytes()].concat();
    let padded = decrypt(names_key, nonce, &aad, ciphertext)?;
    String::from_utf8(unpad(&padded)?.to_vec()).ok()
}

pub(crate) fn encrypt(
    key: &SecretKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    // Encryption fails only for inputs beyond 256 GiB, which no envelope comes near.
    #[allow(clippy::expect_used)]
    cipher
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any realistic input")
}

pub(crate) fn decrypt(
    key: &SecretKey,
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    if nonce.len() != NONCE_LEN {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test author's keys, always the same.
    fn signer() -> DeviceSecrets {
        DeviceSecrets::from_seeds([5; 32], [6; 32])
    }

    /// A roster that knows the test author as device 3.
    struct OneAuthor;

    impl Authors for OneAuthor {
        fn signing_key(&self, device: DeviceId, epoch: u64) -> Option<VerifyingKey> {
            (device == DeviceId([3; 16]) && epoch == 4).then(|| signer().verifying_key())
        }
    }

    fn authors() -> OneAuthor {
        OneAuthor
    }

    #[test]
    fn an_envelope_not_signed_by_the_device_it_names_is_refused() {
        let key = SecretKey::random();
        let forged = seal(&key, &DeviceSecrets::generate(), &ctx(), b"hello");
        let error = open(
            |_| Some(key.clone()),
            &authors(),
            ctx().space,
            ctx().doc,
            &forged,
        )
        .expect_err("forged");
        assert!(
            error.to_string().contains("not signed by device"),
            "{error}"
        );
        let mut renamed = seal(&key, &signer(), &ctx(), b"hello");
        renamed.device_id = vec![4; 16];
        let error = open(
            |_| Some(key.clone()),
            &authors(),
            ctx().space,
            ctx().doc,
            &renamed,
        )
        .expect_err("renamed");
        assert!(error.to_string().contains("does not admit"), "{error}");
        let mut unsigned = seal(&key, &signer(), &ctx(), b"hello");
        unsigned.signature.clear();
        assert!(
            open(
                |_| Some(key.clone()),
                &authors(),
                ctx().space,
                ctx().doc,
                &unsigned
            )
            .is_err()
        );
    }

    fn ctx() -> EnvelopeContext {
        EnvelopeContext {
            space: SpaceId([1; 16]),
            doc: DocId([2; 16]),
            device: DeviceId([3; 16]),
            client_seq: 7,
            kind: EnvelopeKind::Change,
            epoch: 4,
        }
    }

    #[test]
    fn sealed_envelope_opens_with_the_same_context() {
        let key = SecretKey::random();
        let env = seal(&key, &signer(), &ctx(), b"hello");
        let (opened, plain) = open(
            |_| Some(key.clone()),
            &authors(),
            ctx().space,
            ctx().doc,
            &env,
        )
        .expect("opens");
        assert_eq!(plain, b"hello");
        assert_eq!(opened.client_seq, 7);
    }

    #[test]
    fn moved_or_altered_envelopes_fail_to_open() {
        let key = SecretKey::random();
        let env = seal(&key, &signer(), &ctx(), b"hello");
        assert!(
            open(
                |_| Some(key.clone()),
                &authors(),
                ctx().space,
                DocId([9; 16]),
                &env
            )
            .is_err(),
            "moved document"
        );
        assert!(
            open(
                |_| Some(key.clone()),
                &authors(),
                SpaceId([9; 16]),
                ctx().doc,
                &env
            )
            .is_err(),
            "moved space"
        );
        let mut replayed = env.clone();
        replayed.client_seq = 8;
        assert!(
            open(
                |_| Some(key.clone()),
                &authors(),
                ctx().space,
                ctx().doc,
                &replayed
            )
            .is_err(),
            "other position"
        );
        let mut flipped = env.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(
            open(
                |_| Some(key.clone()),
                &authors(),
                ctx().space,
                ctx().doc,
                &flipped
            )
            .is_err(),
            "tampered bytes"
        );
        let mut other_epoch = env.clone();
        other_epoch.key_epoch = 5;
        assert!(
            open(
                |_| Some(key.clone()),
                &authors(),
                ctx().space,
                ctx().doc,
                &other_epoch
            )
            .is_err(),
            "other epoch"
        );
        let mut snapshot = env;
        snapshot.kind = EnvelopeKind::Snapshot as i32;
        assert!(
            open(
                |_| Some(key.clone()),
                &authors(),
                ctx().space,
                ctx().doc,
                &snapshot
            )
            .is_err(),
            "other kind"
        );
        assert!(
            open(
                |_| Some(SecretKey::random()),
                &authors(),
                ctx().space,
                ctx().doc,
                &seal(&key, &signer(), &ctx(), b"x")
            )
            .is_err()
        );
    }

    #[test]
    fn names_round_trip_only_in_their_space() {
        let key = SecretKey::random().names_key();
        let sealed = seal_name(&key, SpaceId([1; 16]), "Alice");
        assert_eq!(
            open_name(&key, SpaceId([1; 16]), &sealed).as_deref(),
            Some("Alice")
        );
        assert_eq!(open_name(&key, SpaceId([2; 16]), &sealed), None);
        assert!(!sealed.windows(5).any(|w| w == b"Alice"));
        let long = seal_name(&key, SpaceId([1; 16]), "Alexandra");
        assert_eq!(
            long.len(),
            sealed.len(),
            "names of one block seal to one size"
        );
    }

    #[test]
    fn ciphertexts_come_in_padded_sizes() {
        let key = SecretKey::random();
        let sizes: std::collections::BTreeSet<usize> = (1000..1100)
            .map(|len| {
                seal(&key, &signer(), &ctx(), &vec![7; len])
                    .ciphertext
                    .len()
            })
            .collect();
        assert!(sizes.len() <= 3, "{sizes:?}");
    }
}
