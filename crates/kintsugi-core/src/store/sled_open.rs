//! Opening the sled database so that a process killed at any moment leaves it openable.
//!
//! sled 0.34.7 writes a snapshot of its page table to `snap.<lsn>.generating`, syncs it and
//! renames it to `snap.<lsn>`; but when it opens, it reads the newest `snap.*` file, the
//! unfinished `.generating` one included (sled issues #1387 and #1527). A phone killed while
//! sled writes one (the OS kills apps at any time) then fails to open with "corrupt snapshot
//! file found". An unfinished snapshot holds nothing the log does not, so it is removed before
//! sled opens. That is only safe while no other process uses the folder, so the store first
//! takes its own lock on `store.lock`, which it holds as long as it is open.

use std::fs::{self, File, TryLockError};
use std::path::Path;

use crate::error::{CoreError, Result};

const LOCK_FILE: &str = "store.lock";
const UNFINISHED_SNAPSHOT: &str = ".generating";

/// Takes the folder's lock; `Busy` when another process holds it.
pub(super) fn lock(dir: &Path) -> Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| CoreError::io(dir, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(CoreError::Busy(dir.to_path_buf())),
        Err(TryLockError::Error(e)) => Err(CoreError::io(dir, e)),
    }
}

/// Erases the store in `dir` and its lock file; `Busy` while another process uses it.
pub(super) fn erase(dir: &Path) -> Result<()> {
    let lock = lock(dir)?;
    fs::remove_dir_all(dir.join("store")).map_err(|e| CoreError::io(dir, e))?;
    drop(lock);
    fs::remove_file(dir.join(LOCK_FILE)).map_err(|e| CoreError::io(dir, e))
}

/// Removes the snapshots sled began and never finished in `db_dir`.
pub(super) fn remove_unfinished_snapshots(dir: &Path, db_dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(db_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CoreError::io(dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| CoreError::io(dir, e))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("snap.") && name.ends_with(UNFINISHED_SNAPSHOT) {
            tracing::warn!(file = name, "removing a snapshot sled did not finish");
            fs::remove_file(&path).map_err(|e| CoreError::io(dir, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::LocalStore;
    use crate::ids::DocId;

    /// What a kill while sled writes its snapshot leaves: a `.generating` file newer than the
    /// finished one, cut short (here: junk without a valid checksum).
    #[test]
    fn an_unfinished_snapshot_from_a_killed_process_does_not_stop_the_store_opening() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let doc = DocId([4; 16]);
        {
            let store = LocalStore::open(dir.path()).expect("opens");
            store
                .set_mark(super::super::Mark::SnapshotSent, doc, 7)
                .expect("write");
        }
        let junk = dir
            .path()
            .join("store")
            .join("snap.7FFFFFFFFFFFFFFF.generating");
        std::fs::write(&junk, [1u8; 40]).expect("write the cut-short snapshot");
        let store = LocalStore::open(dir.path()).expect("opens after the crash");
        assert_eq!(
            store
                .mark(super::super::Mark::SnapshotSent, doc)
                .expect("read"),
            7
        );
        assert!(!junk.exists());
    }

    #[test]
    fn a_second_opener_is_told_the_store_is_busy() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let _first = LocalStore::open(dir.path()).expect("opens");
        let second = LocalStore::open(dir.path()).expect_err("busy");
        assert!(matches!(second, crate::CoreError::Busy(_)), "{second}");
    }
}
