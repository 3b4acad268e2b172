//! Backups and real erasure in the sled backend: export, import, and rewriting the folder.
//!
//! **Why a rewrite.** sled 0.34 is a log-structured store: removing a key appends a tombstone
//! and leaves the old value in its segment of the `db` file until sled's segment cleaner
//! happens to rewrite that segment, which depends on fill levels and may be never. We checked
//! it: after a space was deleted and flushed, its ciphertext was still in `db`. An erasure
//! that only hides data is not an erasure, so `vacuum` copies every live record into a fresh
//! database and removes the old files; the test `erased_ciphertext_is_gone_from_the_files`
//! scans the folder's files for a known ciphertext to prove it. The service vacuums after
//! every `LeaveSpace` (rare, and a couple's store is small); operators can also run it.
//!
//! **Crash safety.** With writes paused, the live records are exported (the backup format of
//! `dump`) to `vacuum.kbk.tmp`, synced, and renamed to `vacuum.kbk`: that rename is the
//! commit point. Then sled is closed, its files (`db`, `conf`, `snap.*`, `blobs/`) removed, a
//! fresh database imported from the copy and synced, and the copy deleted. A store opened
//! after a crash finds a complete `vacuum.kbk` and redoes the import; a `.tmp` leftover means
//! the old files were never touched and is just removed. What this cannot reach: blocks the
//! file system freed but the disk still holds, and copies made outside the server (file-system
//! snapshots, backups); use an encrypted disk for those.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::dump::{self, DumpError, DumpSummary, DumpWriter};
use super::sled_store::{
    Opened, SledStore, TREE_NAMES, Trees, check_format, lock_folder, open_db, open_db_at_start,
};
use super::{StoreError, VacuumReport};
use crate::durability::GroupCommit;

/// The committed copy of a vacuum in progress.
const VACUUM_FILE: &str = "vacuum.kbk";
/// The copy while it is being written.
const VACUUM_TMP: &str = "vacuum.kbk.tmp";
/// Prefix of the temporary files of online backups (`crate::service::admin`).
pub(crate) const BACKUP_TMP_PREFIX: &str = ".backup-";
/// The backup table that holds the default tree's entries (format version and markers).
const META_TABLE: &str = "meta";
/// How long a vacuum waits for readers of the old database to finish.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the database in `dir` (locked by the caller), finishing an interrupted vacuum first.
pub(super) fn open_recovering(dir: &Path) -> Result<Opened, StoreError> {
    remove_file_if_exists(&dir.join(VACUUM_TMP))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // sled 0.34.7 reads an unfinished `snap.<lsn>.generating` as its newest snapshot
        // and then refuses to open (sled issues #1387, #1527); it holds nothing the log does
        // not, and the folder lock says no other process is writing it.
        let unfinished_snapshot = name.starts_with("snap.") && name.ends_with(".generating");
        if name.starts_with(BACKUP_TMP_PREFIX) || unfinished_snapshot {
            remove_file_if_exists(&entry.path())?;
        }
    }
    let copy = dir.join(VACUUM_FILE);
    if copy.exists() {
        tracing::warn!(dir = %dir.display(), "finishing a vacuum a crash interrupted");
        dump::verify(&copy).map_err(|error| {
            StoreError::Corrupt(format!(
                "an interrupted vacuum left {} unreadable ({error}); restore from a backup",
                copy.display()
            ))
        })?;
        remove_sled_files(dir)?;
        let opened = import(dir, &copy)?;
        remove_file_if_exists(&copy)?;
        sync_dir(dir)?;
        return Ok(opened);
    }
    let db = open_db_at_start(dir)?;
    check_format(&db, dir)?;
    finish_open(db, dir)
}

fn finish_open(db: sled::Db, dir: &Path) -> Result<Opened, StoreError> {
    let trees = Trees::open(&db)?;
    let commit = GroupCommit::start(db.clone(), dir)?;
    let opened = Opened { trees, db, commit };
    opened.ensure_usage_counted()?;
    Ok(opened)
}

/// Opens a fresh database in `dir` and fills it from the backup at `copy`, synced to disk.
fn import(dir: &Path, copy: &Path) -> Result<Opened, StoreError> {
    let db = open_db(dir)?;
    if !db.is_empty() || db.tree_names().len() > 1 {
        return Err(StoreError::Corrupt(
            "a restore found a database where it expected none".into(),
        ));
    }
    let trees = Trees::open(&db)?;
    dump::read(copy, |table, key, value| {
        let tree: &sled::Tree = if table == META_TABLE {
            &db
        } else {
            trees
                .by_name(table)
                .ok_or_else(|| DumpError::Damaged(format!("unknown table {table:?}")))?
        };
        tree.insert(key, value)
            .map(|_| ())
            .map_err(|error| DumpError::Io(std::io::Error::other(error.to_string())))
    })?;
    db.flush()?;
    check_format(&db, dir)?;
    drop(trees);
    finish_open(db, dir)
}

impl Opened {
    /// Writes every record in the `dump` format. The caller pauses writes.
    pub(super) fn export(&self, out: &mut dyn Write) -> Result<DumpSummary, StoreError> {
        let mut writer = DumpWriter::new(out)?;
        writer.table(META_TABLE)?;
        for item in self.db.iter() {
            let (key, value) = item?;
            writer.entry(&key, &value)?;
        }
        for name in TREE_NAMES {
            let tree = self
                .trees
                .by_name(name)
                .ok_or_else(|| StoreError::Backend(format!("no tree {name}")))?;
            writer.table(name)?;
            for item in tree.iter() {
                let (key, value) = item?;
                writer.entry(&key, &value)?;
            }
        }
        Ok(writer.finish()?)
    }
}

impl SledStore {
    /// Restores the backup at `backup` into `dir`, which must hold no store. Verifies the whole
    /// file before it writes anything.
    pub fn restore(backup: &Path, dir: &Path) -> Result<DumpSummary, StoreError> {
        let summary = dump::verify(backup)?;
        let _lock = lock_folder(dir)?;
        let opened = import(dir, backup)?;
        drop(opened);
        Ok(summary)
    }
}

/// Rewrites the folder with the live records only. The caller pauses writes.
pub(super) fn vacuum(store: &SledStore) -> Result<VacuumReport, StoreError> {
    let dir = store.dir.clone();
    let bytes_before = sled_files_size(&dir);
    let tmp = dir.join(VACUUM_TMP);
    let copy = dir.join(VACUUM_FILE);
    let opened = store.reading()?;
    let written = dump::write_file(&tmp, |out| opened.export(out));
    if let Err(error) = written {
        let _ = fs::remove_file(&tmp);
        return Err(error);
    }
    fs::rename(&tmp, &copy)?;
    sync_dir(&dir)?;
    // Close the old database: take it out of reach, then wait for readers to let go.
    let taken = store.open.write().unwrap_or_else(|p| p.into_inner()).take();
    drop(opened);
    if let Some(taken) = taken
        && let Err(back) = close(taken)
    {
        *store.open.write().unwrap_or_else(|p| p.into_inner()) = Some(back);
        let _ = fs::remove_file(&copy);
        return Err(StoreError::Unavailable(
            "a reader kept the store busy; vacuum again later".into(),
        ));
    }
    let reopened = remove_sled_files(&dir).and_then(|()| import(&dir, &copy));
    let opened = match reopened {
        Ok(opened) => opened,
        Err(error) => {
            // The copy stays; the next start finishes the job from it.
            tracing::error!(%error, "vacuum could not rebuild the store; restart the server");
            return Err(error);
        }
    };
    *store.open.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(opened));
    remove_file_if_exists(&copy)?;
    sync_dir(&dir)?;
    Ok(VacuumReport {
        bytes_before,
        bytes_after: sled_files_size(&dir),
    })
}

/// Drops the database once no reader holds it; hands it back if one holds on too long.
fn close(mut opened: Arc<Opened>) -> Result<(), Arc<Opened>> {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    loop {
        match Arc::try_unwrap(opened) {
            Ok(last) => {
                drop(last);
                return Ok(());
            }
            Err(shared) if Instant::now() >= deadline => return Err(shared),
            Err(shared) => {
                opened = shared;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Whether `name` in a data folder belongs to sled.
fn is_sled_file(name: &str) -> bool {
    matches!(name, "db" | "conf" | "blobs") || name.starts_with("snap.")
}

fn remove_sled_files(dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !is_sled_file(&entry.file_name().to_string_lossy()) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    sync_dir(dir)
}

/// The size of sled's files in `dir`, blobs included.
pub(super) fn sled_files_size(dir: &Path) -> u64 {
    fn size(path: &Path) -> u64 {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => fs::read_dir(path)
                .map(|entries| entries.flatten().map(|e| size(&e.path())).sum())
                .unwrap_or(0),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        }
    }
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| is_sled_file(&e.file_name().to_string_lossy()))
                .map(|e| size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

fn remove_file_if_exists(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}
