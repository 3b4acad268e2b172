//! Owner-only files: the data folder and everything in it is for the server's user alone.
//!
//! The folder holds ciphertext, token hashes, invite hashes and the admin token, so it is mode
//! 0700 and nothing below it has a group or other bit. sled creates files (`db`, `conf`,
//! `snap.*`, `blobs/`) whenever it needs them during the life of a store and takes no mode for
//! them, so the one lever is the process umask: `restrict_umask` adds group and other to it,
//! which only ever takes permissions away, and opening a store calls it. A folder made by an
//! older version (0755 with 0644 files) is tightened when it is opened (`private_dir`). Files
//! the server writes itself (admin token, backups) are also created 0600 explicitly
//! (`create_private_file`), so they are private whatever the umask. On other platforms than
//! Unix these functions only create what is asked for.

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// The group and other permission bits.
const OPEN: u32 = 0o077;

/// Adds group and other to the process umask (keeping any bit it already had), so every file
/// and folder this process creates from now on is for its user only. The umask is process
/// wide: this affects every thread, and is meant to.
pub fn restrict_umask() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        let private = Mode::RWXG | Mode::RWXO;
        let old = rustix::process::umask(private);
        rustix::process::umask(old | private);
    }
}

/// Creates `dir` (and missing parents) with mode 0700, or makes an existing one 0700, and
/// takes group and other bits away from everything below it. Symbolic links are neither
/// followed nor changed. Returns how many entries were open to group or others.
pub fn private_dir(dir: &Path) -> io::Result<usize> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    let mut tightened = usize::from(set_mode(dir, |_| 0o700)? & OPEN != 0);
    tightened += tighten_below(dir)?;
    if tightened > 0 {
        tracing::warn!(
            dir = %dir.display(),
            entries = tightened,
            "the data folder was open to other users; made it owner-only"
        );
    }
    Ok(tightened)
}

/// Creates (or truncates) `path` for writing with mode 0600, also when it existed with a looser
/// mode.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    set_mode(path, |mode| mode & !OPEN)?;
    Ok(file)
}

/// Strips group and other bits from every entry below `dir`, depth first.
fn tighten_below(dir: &Path) -> io::Result<usize> {
    let mut tightened = 0;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let kind = fs::symlink_metadata(&path)?.file_type();
        if kind.is_symlink() {
            continue;
        }
        tightened += usize::from(set_mode(&path, |mode| mode & !OPEN)? & OPEN != 0);
        if kind.is_dir() {
            tightened += tighten_below(&path)?;
        }
    }
    Ok(tightened)
}

/// Sets the permission bits of `path` to `new(old)` where that differs; returns the old ones.
#[cfg(unix)]
fn set_mode(path: &Path, new: impl Fn(u32) -> u32) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let old = fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    let mode = new(old);
    if mode != old {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(old)
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: impl Fn(u32) -> u32) -> io::Result<u32> {
    Ok(0)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o7777
    }

    fn loosen(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn an_open_folder_of_an_older_version_is_made_owner_only() {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let data = scratch.path().join("data");
        fs::create_dir_all(data.join("blobs")).expect("folders");
        fs::write(data.join("db"), b"x").expect("a file");
        fs::write(data.join("blobs").join("1"), b"x").expect("a file");
        let outside = scratch.path().join("outside");
        fs::write(&outside, b"x").expect("a file");
        symlink(&outside, data.join("link")).expect("a link");
        for (path, m) in [
            (&data, 0o755),
            (&data.join("blobs"), 0o775),
            (&data.join("db"), 0o644),
            (&data.join("blobs").join("1"), 0o666),
            (&outside, 0o644),
        ] {
            loosen(path, m);
        }
        assert_eq!(private_dir(&data).expect("tightened"), 4);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("blobs")), 0o700);
        assert_eq!(mode(&data.join("db")), 0o600);
        assert_eq!(mode(&data.join("blobs").join("1")), 0o600);
        assert_eq!(mode(&outside), 0o644, "a link's target is left alone");
        assert_eq!(private_dir(&data).expect("again"), 0, "nothing left to do");
    }

    #[test]
    fn new_folders_and_files_are_owner_only() {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let data = scratch.path().join("a").join("data");
        private_dir(&data).expect("created");
        assert_eq!(mode(&data), 0o700);
        let file = data.join("backup.kbk");
        fs::write(&file, b"old").expect("a file");
        loosen(&file, 0o644);
        drop(create_private_file(&file).expect("created"));
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::read(&file).expect("read"), b"", "truncated");
    }
}
