//! Everyday use through the real binary: errors as JSON with stable codes, offline messages that
//! say whether anything was kept, dates in the future
//! refused, invite codes that name their server, and editing beside a running `sync --watch`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Server, assert_one_line_error, json, ks, serve};
use serde_json::Value;

/// Alice makes a space on `server` and Bob joins it with her code alone (no `--server`).
fn pair(dir: &Path, server: &Server) {
    json(&ks(
        &dir.join("alice"),
        &["init", "--server", &server.url, "--name", "Alice"],
    ));
    let code = json(&ks(&dir.join("alice"), &["invite", "--partner"]))["code"]
        .as_str()
        .expect("code")
        .to_string();
    let joined = Command::new(env!("CARGO_BIN_EXE_kintsugi"))
        .arg("--home")
        .arg(dir.join("bob"))
        .args(["--json", "join", "--name", "Bob", &code])
        .env_remove("KINTSUGI_SERVER")
        .output()
        .expect("run kintsugi");
    json(&joined);
}

/// `kintsugi --home HOME --json ARGS...` with `input` on stdin.
fn ks_stdin(home: &Path, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kintsugi"))
        .arg("--home")
        .arg(home)
        .arg("--json")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kintsugi");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait")
}

/// The texts of the journal entries in `home`.
fn journal_texts(home: &Path) -> Vec<String> {
    let list = json(&ks(home, &["journal", "list"]));
    let entries = list.as_array().expect("a list");
    entries
        .iter()
        .map(|e| e["text"].as_str().expect("text").to_string())
        .collect()
}

fn error_code(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected failure");
    let value: Value = serde_json::from_slice(&out.stdout).expect("one JSON value on stdout");
    value["error"]["code"].as_str().expect("code").to_string()
}

#[test]
fn errors_print_one_json_object_with_a_stable_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = serve(&dir.path().join("server"));
    pair(dir.path(), &server);
    let alice = dir.path().join("alice");
    let unknown = ks(&alice, &["boundary", "approve", "deadbeef0000"]);
    assert_eq!(error_code(&unknown), "not_found");
    assert_one_line_error(&unknown, "kintsugi boundary list");
    let garbage = ks(
        &dir.path().join("x"),
        &["join", "--name", "X", "KS1garbage"],
    );
    assert_eq!(error_code(&garbage), "invalid_code");
    server.kill();
    assert_eq!(error_code(&ks(&alice, &["sync"])), "server_unreachable");
}

#[test]
fn a_long_entry_comes_from_stdin_or_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("server"));
    pair(dir.path(), &server);
    let alice = dir.path().join("alice");
    // Near the longest entry the journal takes (20,000 characters), kept out of argv.
    let long = "We talked for hours. ".repeat(900);
    json(&ks_stdin(&alice, &["journal", "write", "-"], &long));
    let file = dir.path().join("entry.txt");
    std::fs::write(&file, "From a file").expect("write file");
    json(&ks(
        &alice,
        &["journal", "write", "--file", file.to_str().expect("path")],
    ));
    let texts = journal_texts(&alice);
    assert!(
        texts.contains(&long.trim().to_string()) || texts.contains(&long),
        "stdin entry stored"
    );
    assert!(texts.iter().any(|t| t == "From a file"), "{texts:?}");
    assert!(!texts.iter().any(|t| t == "-"), "a dash is not an entry");
}

#[test]
fn entries_dated_in_the_future_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("server"));
    pair(dir.path(), &server);
    let alice = dir.path().join("alice");
    let ahead = ks(
        &alice,
        &[
            "checkin",
            "--week",
            "2099-W10",
            "--trust",
            "5",
            "--conversations",
            "1",
        ],
    );
    assert_one_line_error(&ahead, "has not begun");
    let session = ks(&alice, &["therapy", "log", "--date", "2099-01-01"]);
    assert_one_line_error(&session, "is in the future");
    json(&ks(
        &alice,
        &["checkin", "--trust", "5", "--conversations", "1"],
    ));
    json(&ks(&alice, &["therapy", "log", "--date", "2020-01-01"]));
    let progress = json(&ks(&alice, &["progress"]));
    assert_eq!(progress["therapy_sessions"], 1);
}

/// `kintsugi --home HOME sync --watch --json`, its stdout lines sent to the returned channel.
fn watch(home: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kintsugi"))
        .arg("--home")
        .arg(home)
        .args(["--json", "sync", "--watch"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sync --watch");
    let stdout = child.stdout.take().expect("stdout");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    (child, lines)
}

/// Waits for a JSON line from a watcher that contains `needle`.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> Value {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no line naming {needle} from the watcher"));
        let value: Value = serde_json::from_str(&line).expect("each line is JSON");
        if line.contains(needle) {
            return value;
        }
    }
}

#[test]
fn commands_run_beside_a_watcher_and_their_edits_go_out_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("server"));
    pair(dir.path(), &server);
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    json(&ks(&alice, &["sync"]));
    json(&ks(&bob, &["sync"]));
    let (mut alice_watch, alice_lines) = watch(&alice);
    let (mut bob_watch, bob_lines) = watch(&bob);
    wait_for(&alice_lines, "\"live\"");
    wait_for(&bob_lines, "\"live\"");
    // Alice's store is held by her watcher; the command runs there and answers as usual.
    let added = json(&ks(
        &alice,
        &["boundary", "add", "We call when we are late"],
    ));
    let id = added["id"].as_str().expect("id").to_string();
    let event = wait_for(&bob_lines, &id);
    assert_eq!(event["event"], "received");
    assert!(
        event["what"][0]
            .as_str()
            .expect("what")
            .starts_with("Alice "),
        "{event}"
    );
    let listed = json(&ks(&bob, &["boundary", "list"]));
    assert!(listed.to_string().contains("We call when we are late"));
    // An error from the watcher's side comes back as this process's own.
    let unknown = ks(&alice, &["boundary", "approve", "deadbeef0000"]);
    assert_eq!(error_code(&unknown), "not_found");
    // A command that reads stdin gets the caller's, not the watcher's.
    json(&ks_stdin(
        &alice,
        &["journal", "write", "-"],
        "Written beside the watcher",
    ));
    assert!(
        journal_texts(&alice)
            .iter()
            .any(|t| t == "Written beside the watcher")
    );
    // Destructive commands wait for the watcher to stop.
    assert_eq!(error_code(&ks(&alice, &["leave", "--yes"])), "busy");
    for child in [&mut alice_watch, &mut bob_watch] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn the_wrong_server_is_named_as_such() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("server"));
    let https = server.url.replace("http://", "https://");
    let init = |home: &str, url: &str| {
        ks(
            &dir.path().join(home),
            &["init", "--server", url, "--name", "Alice"],
        )
    };
    assert_one_line_error(&init("a", &https), "does not speak TLS: use http://");
    // Something that answers HTTP/1.1 on the port: not a Kintsugi server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            use std::io::Write;
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            // Held open until the client hangs up: closed at once, the client could see only
            // a closed connection before it reads the reply.
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        }
    });
    // Which of the two the client sees first depends on timing: the protocol error itself, or
    // the call cut off by it; both name the likely cause.
    let message = common::error_message(&init("b", &url));
    assert!(
        message.contains("this is not a Kintsugi server")
            || message.contains("check that this is a Kintsugi server"),
        "{message}"
    );
}

#[test]
fn repeats_say_so_instead_of_storing_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(&dir.path().join("server"));
    pair(dir.path(), &server);
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let id = json(&ks(&alice, &["boundary", "add", "We share our calendars"]))["id"]
        .as_str()
        .expect("id")
        .to_string();
    json(&ks(&alice, &["sync"]));
    json(&ks(&bob, &["sync"]));
    let first = json(&ks(&bob, &["boundary", "approve", &id]));
    assert_eq!(first["already_approved"], false);
    let history = |home: &Path| {
        json(&ks(home, &["history", "agreement"]))
            .as_array()
            .map(Vec::len)
    };
    let before = history(&bob);
    let again = json(&ks(&bob, &["boundary", "approve", &id]));
    assert_eq!(
        (again["already_approved"].clone(), again["status"].clone()),
        (true.into(), "agreed".into())
    );
    assert_eq!(history(&bob), before, "a repeated approve stores no change");
    let week = ["checkin", "--trust", "5", "--conversations", "1"];
    assert_eq!(json(&ks(&alice, &week))["replaced"], false);
    assert_eq!(json(&ks(&alice, &week))["replaced"], true);
}
