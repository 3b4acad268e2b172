//! The data folder is for the server's user only: mode 0700 and nothing below it open to group
//! or others, whatever the umask the server started with, while serving and after stopping;
//! an older server's open folder is tightened at start, and backups are 0600. A test binary of
//! its own, because it sets the process umask, which every thread shares.

#![cfg(unix)]
#![allow(clippy::expect_used)]

#[path = "server/support.rs"]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kintsugi_proto::v1::{Audience, InviteKind};
use kintsugi_server::testing::TestServer;
use rustix::fs::Mode;
use support::{Clients, push_request, random16};

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o7777
}

/// Every entry at or below `root`, links excepted.
fn entries(root: &Path) -> Vec<PathBuf> {
    let mut found = vec![root.to_path_buf()];
    let mut index = 0;
    while let Some(path) = found.get(index).cloned() {
        index += 1;
        if fs::symlink_metadata(&path).expect("exists").is_dir() {
            for entry in fs::read_dir(&path).expect("a readable folder") {
                let path = entry.expect("an entry").path();
                if !fs::symlink_metadata(&path).expect("exists").is_symlink() {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// The folder is 0700 and nothing below it has a group or other bit.
fn assert_private(root: &Path, when: &str) {
    assert_eq!(mode(root), 0o700, "the data folder's mode {when}");
    let all = entries(root);
    let open: Vec<_> = all
        .iter()
        .filter(|path| mode(path) & 0o077 != 0)
        .map(|path| format!("{} {:o}", path.display(), mode(path)))
        .collect();
    assert!(open.is_empty(), "open to others {when}: {open:?}");
    assert!(all.len() > 3, "sled's files are there {when}: {all:?}");
}

/// What an older version left: a folder 0755 with files 0644.
fn loosen(root: &Path) {
    for path in entries(root) {
        let loose = if path.is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(&path, fs::Permissions::from_mode(loose)).expect("chmod");
    }
}

#[tokio::test]
async fn the_data_folder_and_backups_are_owner_only_whatever_the_umask() {
    // An everyday umask: the server must set its own modes, not lean on the caller's.
    rustix::process::umask(Mode::from_raw_mode(0o022));
    let scratch = tempfile::tempdir().expect("a temporary folder");
    let data = scratch.path().join("data");
    let mut first = TestServer::builder().data(&data).start().await;
    first.create_space().await;
    first.stop().await.expect("a clean stop");
    loosen(&data);
    rustix::process::umask(Mode::from_raw_mode(0o022));

    let mut server = TestServer::builder().data(&data).start().await;
    let mut alex = server.create_space().await;
    let sam = server.invite(&alex, InviteKind::Partner).await;
    let doc = random16();
    let envelope = alex.change(&[7; 5000]);
    alex.sync()
        .push(push_request(&doc, Audience::Shared, vec![envelope]))
        .await
        .expect("pushed");
    drop(sam);
    assert_private(&data, "while serving");
    server.stop().await.expect("a clean stop");
    assert_private(&data, "after stopping");

    let backup = scratch.path().join("backup.kbk");
    kintsugi_server::offline_admin::backup(&data, &backup).expect("offline backup");
    assert_eq!(mode(&backup), 0o600, "a backup holds all the ciphertext");
    let restored = scratch.path().join("restored");
    kintsugi_server::offline_admin::restore(&backup, &restored).expect("restored");
    assert_private(&restored, "after a restore");
}
