//! The `kintsugi` binary as users drive it: bad inputs get one clear line and lose nothing.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_one_line_error, everyday_umask, json, ks, serve};

#[test]
fn commands_on_an_empty_home_say_to_init_first() {
    let home = tempfile::tempdir().expect("tempdir");
    assert_one_line_error(&ks(home.path(), &["boundary", "list"]), "kintsugi init");
}

#[test]
fn unreachable_server_is_one_line_and_the_edit_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("alice");
    let server = serve(&dir.path().join("server"));
    json(&ks(
        &home,
        &["init", "--server", &server.url, "--name", "Alice"],
    ));
    drop(server);
    json(&ks(&home, &["boundary", "add", "No lies about where I am"]));
    assert_one_line_error(&ks(&home, &["sync"]), "cannot reach the sync server");
    let list = json(&ks(&home, &["boundary", "list"]));
    assert_eq!(list[0]["text"], "No lies about where I am");
}

#[test]
fn bad_inputs_get_clear_errors_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("alice");
    let server = serve(&dir.path().join("server"));
    json(&ks(
        &home,
        &["init", "--server", &server.url, "--name", "Alice"],
    ));
    assert_one_line_error(
        &ks(&home, &["boundary", "edit", "ffffffff", "x"]),
        "boundary list",
    );
    assert_one_line_error(&ks(&home, &["boundary", "add", "   "]), "needs some text");
    assert_one_line_error(
        &ks(&home, &["journal", "write", "x", "--mood", "9"]),
        "mood",
    );
    assert_one_line_error(
        &ks(
            &dir.path().join("bob"),
            &["join", "--server", &server.url, "--name", "Bob", "KS1AAAA"],
        ),
        "invite code",
    );
    assert_one_line_error(
        &ks(&home, &["init", "--server", &server.url, "--name", "Alice"]),
        "already holds",
    );
    assert_eq!(
        json(&ks(&home, &["boundary", "list"]))
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        json(&ks(&home, &["journal", "list"]))
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

#[test]
fn a_used_invite_code_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("server"));
    let alice = dir.path().join("alice");
    json(&ks(
        &alice,
        &["init", "--server", &server.url, "--name", "Alice"],
    ));
    let code = json(&ks(&alice, &["invite", "--partner"]))["code"]
        .as_str()
        .expect("code")
        .to_string();
    json(&ks(
        &dir.path().join("bob"),
        &["join", "--server", &server.url, "--name", "Bob", &code],
    ));
    let again = ks(
        &dir.path().join("eve"),
        &["join", "--server", &server.url, "--name", "Eve", &code],
    );
    assert_one_line_error(&again, "ask for a new one");
}

#[test]
fn a_corrupt_home_is_reported_and_left_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("alice");
    let server = serve(&dir.path().join("server"));
    json(&ks(
        &home,
        &["init", "--server", &server.url, "--name", "Alice"],
    ));
    json(&ks(&home, &["boundary", "add", "Keep this"]));
    let db = home.join("store").join("db");
    let mut bytes = std::fs::read(&db).expect("read db");
    for b in bytes.iter_mut() {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &bytes).expect("corrupt db");
    assert_one_line_error(&ks(&home, &["boundary", "list"]), "damaged");
    assert_eq!(
        std::fs::read(&db).expect("read db"),
        bytes,
        "the damaged folder is left for recovery"
    );
}

#[test]
fn wipe_asks_for_confirmation_then_erases_the_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("alice");
    let server = serve(&dir.path().join("server"));
    json(&ks(
        &home,
        &["init", "--server", &server.url, "--name", "Alice"],
    ));
    json(&ks(
        &home,
        &["journal", "write", "wipe-marker-XQ private words"],
    ));
    assert_one_line_error(&ks(&home, &["wipe"]), "never synced");
    assert_eq!(
        json(&ks(&home, &["journal", "list"]))
            .as_array()
            .map(Vec::len),
        Some(1),
        "nothing erased without --yes"
    );
    let wiped = json(&ks(&home, &["wipe", "--yes"]));
    assert_eq!(
        wiped["unsynced_changes_lost"], 2,
        "the journal entry and the device's join"
    );
    assert_one_line_error(&ks(&home, &["journal", "list"]), "kintsugi init");
    let leftovers: Vec<_> = std::fs::read_dir(&home).expect("home kept").collect();
    assert!(
        leftovers.is_empty(),
        "nothing of the device is left: {leftovers:?}"
    );
}

#[test]
fn join_reads_the_code_from_stdin_and_keeps_it_off_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("server"));
    let alice = dir.path().join("alice");
    let space = json(&ks(
        &alice,
        &["init", "--server", &server.url, "--name", "Alice"],
    ))["space"]
        .clone();
    let code = json(&ks(&alice, &["invite", "--partner"]))["code"]
        .as_str()
        .expect("code")
        .to_string();
    let mut bob = Command::new(env!("CARGO_BIN_EXE_kintsugi"))
        .arg("--home")
        .arg(dir.path().join("bob"))
        .args(["--json", "join", "--server", &server.url, "--name", "Bob"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kintsugi join");
    #[cfg(target_os = "linux")]
    {
        // Right after the spawn the child may not have exec'd yet: wait for its own argv.
        let mut argv = String::new();
        for _ in 0..100 {
            let bytes = std::fs::read(format!("/proc/{}/cmdline", bob.id())).expect("its argv");
            argv = String::from_utf8_lossy(&bytes).into_owned();
            if argv.contains("join") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(argv.contains("join") && !argv.contains(&code), "{argv}");
    }
    let mut stdin = bob.stdin.take().expect("a pipe");
    writeln!(stdin, "  {code}  ").expect("the code written");
    drop(stdin);
    let joined = json(&bob.wait_with_output().expect("join finished"));
    assert_eq!(joined["space"], space);
    let devices = json(&ks(&alice, &["devices"]));
    assert_eq!(devices.as_array().map(Vec::len), Some(2), "{devices}");
    let nothing = ks(
        &dir.path().join("eve"),
        &["join", "--server", &server.url, "--name", "Eve"],
    );
    assert_one_line_error(
        &nothing,
        "no invite code given: paste it when asked, or pipe it in",
    );
}

#[cfg(unix)]
#[test]
fn the_home_the_data_folder_and_backups_are_owner_only_under_an_everyday_umask() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("server");
    let server = serve(&data);
    let home = dir.path().join("alice");
    let run = |args: &[&str]| {
        let out = everyday_umask()
            .arg("--home")
            .arg(&home)
            .arg("--json")
            .args(args)
            .output()
            .expect("run kintsugi");
        json(&out)
    };
    run(&["init", "--server", &server.url, "--name", "Alice"]);
    run(&["journal", "write", "only mine"]);
    run(&["sync"]);
    drop(server);
    let backup = dir.path().join("backup.kbk");
    let out = everyday_umask()
        .args(["--json", "admin", "backup", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&backup)
        .output()
        .expect("run kintsugi admin backup");
    json(&out);
    for folder in [&home, &data] {
        assert_eq!(mode(folder), 0o700, "{}", folder.display());
        let open: Vec<_> = walk(folder)
            .into_iter()
            .filter(|path| mode(path) & 0o077 != 0)
            .collect();
        assert!(open.is_empty(), "open to others: {open:?}");
    }
    assert_eq!(mode(&backup), 0o600);
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o7777
}

/// Everything below `dir`, links excepted.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a readable folder") {
        let path = entry.expect("an entry").path();
        let kind = std::fs::symlink_metadata(&path)
            .expect("exists")
            .file_type();
        if kind.is_dir() {
            found.extend(walk(&path));
        }
        if !kind.is_symlink() {
            found.push(path);
        }
    }
    found
}
