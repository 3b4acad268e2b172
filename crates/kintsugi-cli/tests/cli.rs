//! The `kintsugi` binary as users drive it: bad inputs get one clear line and lose nothing.

mod common;

use common::{assert_one_line_error, json, ks, serve};

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
