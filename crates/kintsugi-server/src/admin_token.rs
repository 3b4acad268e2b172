//! The admin token: how `kintsugi admin` proves it may ask a running server for its data.
//!
//! At its first start the server makes 32 random bytes, writes them as 64 hex characters to
//! `DATA/admin-token` (mode 0600, written to a temporary file, synced and renamed, so a crash
//! never leaves half a token) and keeps only their SHA-256 in memory. The operator's tools
//! read the file, which needs access to the data folder: whoever can read that folder holds
//! the same ciphertext a backup would give them anyway. Later starts reuse the token; delete
//! the file and restart to rotate it. The token is never logged.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::ServerError;
use crate::ids::{DeviceToken, SecretHash};

/// The token file's name inside the data folder.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Where the admin token of the server using `data_dir` is.
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_TOKEN_FILE)
}

/// The token in the file, if the file holds a well-formed one.
fn read_token(path: &Path) -> std::io::Result<Option<DeviceToken>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            Ok(DeviceToken::from_hex(text.trim()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reads the admin token (64 hex characters) of the server using `data_dir`.
pub fn read_admin_token(data_dir: &Path) -> Result<String, crate::offline_admin::AdminError> {
    let path = admin_token_path(data_dir);
    match read_token(&path) {
        Ok(Some(token)) => Ok(token.to_hex()),
        Ok(None) => Err(crate::offline_admin::AdminError::NoAdminToken(path)),
        Err(source) => Err(crate::offline_admin::AdminError::Io { file: path, source }),
    }
}

/// Makes sure `data_dir` holds an admin token; returns its hash.
pub(crate) fn ensure(data_dir: &Path) -> Result<SecretHash, ServerError> {
    let path = admin_token_path(data_dir);
    let failed = |source| ServerError::AdminToken {
        file: path.clone(),
        source,
    };
    if let Some(token) = read_token(&path).map_err(failed)? {
        restrict(&path).map_err(failed)?;
        return Ok(token.hash());
    }
    let token = DeviceToken::generate();
    let temporary = data_dir.join(format!("{ADMIN_TOKEN_FILE}.tmp"));
    write_private(&temporary, &Zeroizing::new(format!("{}\n", token.to_hex()))).map_err(failed)?;
    fs::rename(&temporary, &path).map_err(failed)?;
    fs::File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed)?;
    tracing::info!(file = %path.display(), "wrote a new admin token");
    Ok(token.hash())
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = crate::owner_only::create_private_file(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Takes away group and other access, in case the file was copied in with looser rights.
fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "admin token was readable by others; fixing");
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let first = ensure(dir.path()).expect("made");
        let second = ensure(dir.path()).expect("kept");
        assert_eq!(first.0, second.0);
        let text = read_admin_token(dir.path()).expect("readable");
        assert_eq!(
            SecretHash::of(
                &data_encoding::HEXLOWER
                    .decode(text.as_bytes())
                    .expect("hex")
            )
            .0,
            first.0
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(admin_token_path(dir.path()))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
