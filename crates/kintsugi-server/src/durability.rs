//! Group commit: making acknowledged writes survive a power loss, many writes per sync.
//!
//! The server's core promise is that a push it acknowledged is on disk. sled 0.34.7 does not
//! keep that promise by itself: `Db::flush()` on Linux calls `sync_file_range`, which starts
//! and waits for writeback of the log's pages but neither flushes the drive's cache nor syncs
//! the file's metadata, and sled writes large values as separate files under `blobs/` without
//! any fsync. So after `flush()` this module calls `fdatasync` on sled's `db` file, `fsync`s
//! every blob file it has not synced before, and `fsync`s the folders whose entries changed.
//!
//! A sync costs a few milliseconds of disk time however much it covers, so the syncs run on
//! one dedicated thread that collects every request waiting at that moment and answers them
//! all after a single sync: with many concurrent pushes, one sync covers many of them. A
//! request is answered only by a sync that started after the request arrived, so every write
//! that returned before `request()` was called is covered. Async handlers await a oneshot and
//! never block the runtime.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::store::{Durable, StoreError};

type Waiter = oneshot::Sender<Result<(), String>>;

/// The handle of the sync thread. Dropping it lets the thread finish the waiting requests and
/// joins it, so the sled database is fully closed once the owning store is dropped.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    sender: Option<mpsc::Sender<Waiter>>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the sync thread for the sled database `db` stored in `dir`.
    pub(crate) fn start(db: sled::Db, dir: &Path) -> io::Result<Self> {
        let mut syncer = Syncer::new(db, dir)?;
        // Make the folder entries of a freshly created database durable before anything
        // is acknowledged.
        syncer.sync()?;
        let (sender, receiver) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("kintsugi-durability".into())
            .spawn(move || serve_requests(syncer, receiver))?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// A promise that settles once every write that returned before this call is on disk.
    pub(crate) fn request(&self) -> Durable {
        let (waiter, answer) = oneshot::channel();
        let sent = match &self.sender {
            Some(sender) => sender.send(waiter).is_ok(),
            None => false,
        };
        if sent {
            Durable::waiting(answer)
        } else {
            Durable::ready(Err(StoreError::Durability(
                "the durability thread stopped".into(),
            )))
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop after it answered what is queued.
        drop(self.sender.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the durability thread panicked");
        }
    }
}

fn serve_requests(mut syncer: Syncer, receiver: mpsc::Receiver<Waiter>) {
    while let Ok(first) = receiver.recv() {
        let mut waiters = vec![first];
        waiters.extend(receiver.try_iter());
        let result = syncer.sync().map_err(|error| {
            tracing::error!(%error, "syncing the store to disk failed");
            format!("syncing the store to disk failed: {error}")
        });
        for waiter in waiters {
            // A waiter whose request was cancelled has gone away; nothing to tell it.
            let _ = waiter.send(result.clone());
        }
    }
}

/// The files and folders a sync has to cover.
struct Syncer {
    db: sled::Db,
    dir: PathBuf,
    db_file: File,
    blobs_dir: PathBuf,
    /// Blob files already fsynced: sled never rewrites a blob, it writes a new one.
    synced_blobs: HashSet<OsString>,
    /// Names in the data folder at the last folder fsync.
    dir_entries: HashSet<OsString>,
}

impl Syncer {
    fn new(db: sled::Db, dir: &Path) -> io::Result<Self> {
        Ok(Self {
            db,
            dir: dir.to_path_buf(),
            db_file: File::open(dir.join("db"))?,
            blobs_dir: dir.join("blobs"),
            synced_blobs: HashSet::new(),
            dir_entries: HashSet::new(),
        })
    }

    fn sync(&mut self) -> io::Result<()> {
        // Blobs first: once the log entry that points at a blob is durable, the blob must be.
        let new_blobs = self.sync_new_blobs()?;
        self.db.flush().map_err(sled_to_io)?;
        self.db_file.sync_data()?;
        if new_blobs {
            File::open(&self.blobs_dir)?.sync_all()?;
        }
        self.sync_dir_if_changed()
    }

    /// Fsyncs blob files not synced before; returns whether there were any.
    fn sync_new_blobs(&mut self) -> io::Result<bool> {
        let entries = match fs::read_dir(&self.blobs_dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error),
        };
        let mut present = HashSet::new();
        let mut synced_any = false;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !self.synced_blobs.contains(&name) {
                match File::open(entry.path()) {
                    Ok(file) => file.sync_all()?,
                    // sled garbage-collected it meanwhile: nothing to keep.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                }
                synced_any = true;
            }
            present.insert(name);
        }
        // Forget blobs sled deleted, so the set does not grow forever.
        self.synced_blobs = present;
        Ok(synced_any)
    }

    /// Fsyncs the data folder when files appeared or vanished in it (the blobs folder, sled's
    /// snapshot files), so their directory entries survive a power loss too.
    fn sync_dir_if_changed(&mut self) -> io::Result<()> {
        let mut names = HashSet::new();
        for entry in fs::read_dir(&self.dir)? {
            names.insert(entry?.file_name());
        }
        if names != self.dir_entries {
            File::open(&self.dir)?.sync_all()?;
            self.dir_entries = names;
        }
        Ok(())
    }
}

fn sled_to_io(error: sled::Error) -> io::Error {
    match error {
        sled::Error::Io(error) => error,
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn many_requests_are_answered_and_big_values_are_covered() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = sled::open(dir.path()).expect("sled opens");
        let commit = GroupCommit::start(db.clone(), dir.path()).expect("the thread starts");
        // Large values go to sled's blobs/ folder, which sled itself never fsyncs.
        db.insert(b"big", vec![7u8; 2 * 1024 * 1024])
            .expect("insert");
        let promises: Vec<Durable> = (0..20).map(|_| commit.request()).collect();
        for promise in promises {
            promise.await.expect("durable");
        }
        let blobs = fs::read_dir(dir.path().join("blobs")).expect("sled made a blobs folder");
        assert!(blobs.count() > 0, "the big value is a separate blob file");
        drop(commit);
        drop(db);
        // The thread released its handle: the folder can be opened again at once.
        let reopened = sled::open(dir.path()).expect("sled reopens");
        assert_eq!(
            reopened.get(b"big").expect("read").map(|v| v.len()),
            Some(2 * 1024 * 1024)
        );
    }

    #[test]
    fn a_blocking_caller_can_wait_too() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = sled::open(dir.path()).expect("sled opens");
        let commit = GroupCommit::start(db.clone(), dir.path()).expect("the thread starts");
        db.insert(b"k", b"v".to_vec()).expect("insert");
        commit.request().wait_blocking().expect("durable");
    }
}
