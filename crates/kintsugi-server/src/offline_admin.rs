//! Operator tasks on a data folder while no server uses it: statistics, backup, restore and
//! vacuum; and the admin token, for the same tasks on a running server.
//!
//! `kintsugi admin stats|backup|restore|vacuum --data DIR` calls these functions. Each opens
//! the folder the way the server does, so they refuse a folder a running server holds (ask
//! the server instead: `--server URL`, which calls the `AdminService` with the token from
//! `admin_token_path(DIR)`), and a folder that is not a Kintsugi store at all, rather than
//! creating an empty store there by accident. Backups are files in the format of
//! `store::dump`: versioned, checksummed, and verified in full before a restore writes
//! anything. A restore goes into a new or empty folder only, so it never mixes with or
//! overwrites live data; on failure it removes what it wrote.

use std::fs;
use std::path::{Path, PathBuf};

use crate::store::{
    AdminStore, DumpError, DumpSummary, MARKER_FILE, SledStore, StoreError, StoreStats,
    VacuumReport, dump,
};

pub use crate::admin_token::{ADMIN_TOKEN_FILE, admin_token_path, read_admin_token};

/// Why an operator task failed. Messages name the folder or file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A server holds the folder.
    #[error("a server is running on {}; ask it with --server, or stop it", .0.display())]
    ServerRunning(PathBuf),
    /// The folder is missing or holds no Kintsugi store.
    #[error(
        "{} is not a Kintsugi data folder (no {MARKER_FILE} file in it); check the --data path",
        .0.display()
    )]
    NotADataFolder(PathBuf),
    /// A restore target that already holds something.
    #[error("{} is not empty; restore into a new or empty folder", .0.display())]
    NotEmpty(PathBuf),
    /// A backup file that cannot be used.
    #[error("backup file {}: {source}", .file.display())]
    Backup { file: PathBuf, source: DumpError },
    /// The store failed.
    #[error("data folder {}: {source}", .dir.display())]
    Store { dir: PathBuf, source: StoreError },
    /// A file could not be read or written.
    #[error("{}: {source}", .file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The server never started on this folder, or the token file was removed.
    #[error(
        "{} does not exist or holds no admin token; start the server on this data folder once",
        .0.display()
    )]
    NoAdminToken(PathBuf),
}

/// Counts what the store in `data_dir` holds (the server must not be running on it).
pub fn stats(data_dir: &Path) -> Result<StoreStats, AdminError> {
    let store = open_existing(data_dir)?;
    store
        .stats()
        .map_err(|source| store_error(data_dir, source))
}

/// Writes a backup of the store in `data_dir` to `out_file` (the server must not be running
/// on it). The file appears only once it is complete and synced.
pub fn backup(data_dir: &Path, out_file: &Path) -> Result<DumpSummary, AdminError> {
    let store = open_existing(data_dir)?;
    let partial = partial_path(out_file);
    let written = dump::write_file(&partial, |out| store.export(out));
    let summary = match written {
        Ok(summary) => summary,
        Err(source) => {
            let _ = fs::remove_file(&partial);
            return Err(match source {
                StoreError::Io(source) => AdminError::Io {
                    file: out_file.to_path_buf(),
                    source,
                },
                other => store_error(data_dir, other),
            });
        }
    };
    fs::rename(&partial, out_file).map_err(|source| AdminError::Io {
        file: out_file.to_path_buf(),
        source,
    })?;
    Ok(summary)
}

/// Checks a backup file completely (magic, version, checksum, records) without restoring it.
pub fn verify_backup(backup_file: &Path) -> Result<DumpSummary, AdminError> {
    dump::verify(backup_file).map_err(|source| AdminError::Backup {
        file: backup_file.to_path_buf(),
        source,
    })
}

/// Restores `backup_file` into `data_dir`, which must not exist or be empty.
pub fn restore(backup_file: &Path, data_dir: &Path) -> Result<DumpSummary, AdminError> {
    verify_backup(backup_file)?;
    let existed = data_dir.exists();
    if existed {
        let mut entries = fs::read_dir(data_dir).map_err(|source| AdminError::Io {
            file: data_dir.to_path_buf(),
            source,
        })?;
        if entries.next().is_some() {
            if data_dir.join(MARKER_FILE).exists() {
                // A store is there: say whether a server holds it.
                open_existing(data_dir)?;
            }
            return Err(AdminError::NotEmpty(data_dir.to_path_buf()));
        }
    }
    match SledStore::restore(backup_file, data_dir) {
        Ok(summary) => Ok(summary),
        Err(source) => {
            // Leave the folder as it was: absent, or empty.
            if existed {
                if let Ok(entries) = fs::read_dir(data_dir) {
                    for entry in entries.flatten() {
                        let path = entry.path();
                        let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
                    }
                }
            } else {
                let _ = fs::remove_dir_all(data_dir);
            }
            Err(match source {
                StoreError::Dump(source) => AdminError::Backup {
                    file: backup_file.to_path_buf(),
                    source,
                },
                other => store_error(data_dir, other),
            })
        }
    }
}

/// Rewrites the store in `data_dir` so that deleted data leaves its files (the server must
/// not be running on it; a running server is asked with the `Vacuum` call).
pub fn vacuum(data_dir: &Path) -> Result<VacuumReport, AdminError> {
    let store = open_existing(data_dir)?;
    store
        .vacuum()
        .map_err(|source| store_error(data_dir, source))
}

/// Opens the store in `data_dir` if one is there and no server holds it.
fn open_existing(data_dir: &Path) -> Result<SledStore, AdminError> {
    if !data_dir.join(MARKER_FILE).is_file() {
        return Err(AdminError::NotADataFolder(data_dir.to_path_buf()));
    }
    SledStore::open(data_dir).map_err(|source| store_error(data_dir, source))
}

fn store_error(dir: &Path, source: StoreError) -> AdminError {
    match source {
        StoreError::Locked(_) => AdminError::ServerRunning(dir.to_path_buf()),
        source => AdminError::Store {
            dir: dir.to_path_buf(),
            source,
        },
    }
}

/// `FILE.partial` beside `FILE`.
fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    file.with_file_name(name)
}
