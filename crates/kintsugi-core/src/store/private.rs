//! The device's folder is for its user alone: 0700, and nothing below it open to others.
//!
//! It holds the keys and the bearer token. `make_private` creates it 0700 or tightens it,
//! and takes group and other bits away from what an older version left below it; symbolic
//! links are neither followed nor changed. Files sled creates later follow the process umask,
//! which the `kintsugi` binary restricts at start (phone apps live in the OS's sandbox).

use std::fs;
use std::io;
use std::path::Path;

/// Creates `dir` 0700 (or makes it 0700) and strips group and other bits below it.
pub(super) fn make_private(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    #[cfg(unix)]
    {
        set_mode(dir, |_| 0o700)?;
        tighten_below(dir)?;
    }
    Ok(())
}

#[cfg(unix)]
fn tighten_below(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let kind = fs::symlink_metadata(&path)?.file_type();
        if kind.is_symlink() {
            continue;
        }
        set_mode(&path, |mode| mode & !0o077)?;
        if kind.is_dir() {
            tighten_below(&path)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, new: impl Fn(u32) -> u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let old = fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    if new(old) != old {
        fs::set_permissions(path, fs::Permissions::from_mode(new(old)))?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    #[test]
    fn an_open_home_is_made_owner_only() {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let home = scratch.path().join("home");
        make_private(&home).expect("created");
        assert_eq!(mode(&home), 0o700);
        let store = home.join("store");
        fs::create_dir(&store).expect("a folder");
        fs::write(store.join("db"), b"keys").expect("a file");
        for (path, m) in [(&home, 0o755), (&store, 0o755), (&store.join("db"), 0o644)] {
            fs::set_permissions(path, fs::Permissions::from_mode(m)).expect("chmod");
        }
        make_private(&home).expect("tightened");
        assert_eq!(
            [mode(&home), mode(&store), mode(&store.join("db"))],
            [0o700, 0o700, 0o600]
        );
    }
}
