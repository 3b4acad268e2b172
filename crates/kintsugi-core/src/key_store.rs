//! A device's own key pairs, made on the device, and where they are kept.
//!
//! Each device has an Ed25519 signing key (its envelopes and roster entries carry its
//! signature) and an X25519 key (key epochs are sealed to it). `KeyStore` is where they live:
//! `FileKeyStore` keeps them in one owner-only file beside the local store; a phone app can
//! implement the trait over the Android Keystore or the iOS Keychain instead.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::{CoreError, Result};

const FILE_NAME: &str = "device-keys";
const FORMAT: &[u8; 8] = b"KSKEYS01";
const SECRET_LEN: usize = 32;

/// The secret halves of a device's (or a recovery kit's) keys.
pub struct DeviceSecrets {
    signing: SigningKey,
    agreement: Zeroizing<[u8; SECRET_LEN]>,
}

impl fmt::Debug for DeviceSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSecrets")
            .field("signing_key", &self.verifying_key())
            .finish_non_exhaustive()
    }
}

impl DeviceSecrets {
    /// Fresh random keys.
    pub fn generate() -> Self {
        Self::from_seeds(rand::random(), rand::random())
    }

    /// Keys from their two 32-byte seeds (a recovery kit derives them from its code).
    pub fn from_seeds(signing: [u8; SECRET_LEN], agreement: [u8; SECRET_LEN]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&signing),
            agreement: Zeroizing::new(agreement),
        }
    }

    /// The Ed25519 key that checks this device's signatures.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Signs `message` with the device's Ed25519 key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The X25519 secret that opens what was sealed to this device.
    pub fn agreement_secret(&self) -> &[u8; SECRET_LEN] {
        &self.agreement
    }

    /// The X25519 public key things are sealed to for this device.
    pub fn agreement_public(&self) -> [u8; SECRET_LEN] {
        use hpke::{Deserializable, Kem as _, Serializable};
        type Kem = hpke::kem::X25519HkdfSha256;
        // Every 32-byte string is an X25519 secret (it is clamped when used).
        #[allow(clippy::expect_used)]
        let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(self.agreement.as_ref())
            .expect("32 bytes are an X25519 secret");
        Kem::sk_to_pk(&secret).to_bytes().into()
    }

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut bytes = Zeroizing::new(FORMAT.to_vec());
        bytes.extend_from_slice(self.signing.as_bytes());
        bytes.extend_from_slice(self.agreement.as_ref());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(FORMAT.as_slice())?;
        if rest.len() != 2 * SECRET_LEN {
            return None;
        }
        let (signing, agreement) = rest.split_at(SECRET_LEN);
        Some(Self::from_seeds(
            signing.try_into().ok()?,
            agreement.try_into().ok()?,
        ))
    }
}

/// Where a device keeps its secret keys.
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// The stored keys, `None` when none were stored yet.
    fn load(&self) -> Result<Option<DeviceSecrets>>;
    /// Stores `secrets`, replacing what was there; durable when it returns.
    fn save(&self, secrets: &DeviceSecrets) -> Result<()>;
}

/// Keys in one file, readable by this user only, written whole or not at all.
#[derive(Debug, Clone)]
pub struct FileKeyStore {
    path: PathBuf,
}

impl FileKeyStore {
    /// The key file of the device whose state is in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
        }
    }

    /// Removes the key file, if there is one.
    pub fn erase(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io(e)),
            _ => Ok(()),
        }
    }

    fn damaged(&self, reason: &str) -> CoreError {
        let dir = self.path.parent().unwrap_or(&self.path);
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        CoreError::damaged(dir, format!("{name}: {reason}"))
    }

    fn io(&self, error: std::io::Error) -> CoreError {
        CoreError::io(self.path.parent().unwrap_or(&self.path), error)
    }
}

impl KeyStore for FileKeyStore {
    fn load(&self) -> Result<Option<DeviceSecrets>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                DeviceSecrets::from_bytes(&bytes)
                    .map(Some)
                    .ok_or_else(|| self.damaged("not a key file of this version"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    fn save(&self, secrets: &DeviceSecrets) -> Result<()> {
        write_owner_only(&self.path, &secrets.to_bytes())
    }
}

/// Writes `bytes` to `path` whole or not at all, readable by this user only (a new temporary
/// file is), and durable when it returns.
pub(crate) fn write_owner_only(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |e| CoreError::io(dir, e);
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_round_trip_through_the_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = FileKeyStore::in_dir(dir.path());
        assert!(store.load().expect("load").is_none());
        let secrets = DeviceSecrets::generate();
        store.save(&secrets).expect("save");
        let loaded = store.load().expect("load").expect("stored");
        assert_eq!(loaded.verifying_key(), secrets.verifying_key());
        assert_eq!(loaded.agreement_secret(), secrets.agreement_secret());
    }

    #[test]
    fn a_damaged_key_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join(FILE_NAME), b"garbage").expect("write");
        let error = FileKeyStore::in_dir(dir.path())
            .load()
            .expect_err("damaged");
        assert!(
            matches!(error, CoreError::LocalStoreDamaged { .. }),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = FileKeyStore::in_dir(dir.path());
        store.save(&DeviceSecrets::generate()).expect("save");
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }
}
