//! The rules of docs/domain.md that show in what the `kintsugi` binary prints: times in
//! RFC 3339, the fields of `journal list` and `history`, a retired boundary refused in one line,
//! no command to un-share, and the progress table and JSON. The table mapping every rule of
//! domain.md to its test is in docs/reliability.md.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{assert_one_line_error, json, ks, serve};
use serde_json::Value;

/// Runs `kintsugi --home HOME ARGS...` for people (no `--json`).
fn ks_text(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kintsugi"))
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("run kintsugi")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

fn is_rfc3339(value: &Value) -> bool {
    let format = time::format_description::well_known::Rfc3339;
    value
        .as_str()
        .is_some_and(|text| time::OffsetDateTime::parse(text, &format).is_ok())
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[test]
fn times_print_as_rfc3339_and_lists_show_their_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, server) = (dir.path().join("alice"), serve(&dir.path().join("server")));
    json(&ks(
        &home,
        &["init", "--server", &server.url, "--name", "Alice"],
    ));
    json(&ks(&home, &["boundary", "add", "We are kind"]));
    let entry = json(&ks(
        &home,
        &["journal", "write", "a day", "--mood", "4", "--tag", "hope"],
    ));
    json(&ks(
        &home,
        &["journal", "share", entry["id"].as_str().expect("id")],
    ));

    let boundary = &json(&ks(&home, &["boundary", "list"]))[0];
    assert!(is_rfc3339(&boundary["created_at"]), "{boundary}");
    let listed = &json(&ks(&home, &["journal", "list"]))[0];
    assert_eq!(
        keys(listed),
        ["created_at", "id", "mood", "shared", "tags", "text"]
    );
    assert!(is_rfc3339(&listed["created_at"]));
    assert_eq!(
        (&listed["mood"], &listed["shared"]),
        (&Value::from(4), &Value::from(true))
    );
    let copy = &json(&ks(&home, &["shared", "list"]))[0];
    assert!(
        is_rfc3339(&copy["created_at"]) && is_rfc3339(&copy["shared_at"]),
        "{copy}"
    );

    let history = json(&ks(&home, &["history"]));
    assert_eq!(
        history,
        json(&ks(&home, &["history", "agreement"])),
        "agreement by default"
    );
    for change in history.as_array().expect("a list") {
        assert_eq!(keys(change), ["at", "device", "what", "who"]);
        assert!(is_rfc3339(&change["at"]), "{change}");
    }
    assert_eq!(history[0]["what"], "Alice joined");
}

#[test]
fn a_retired_boundary_is_refused_in_one_line_that_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, server) = (dir.path().join("alice"), serve(&dir.path().join("server")));
    json(&ks(
        &home,
        &["init", "--server", &server.url, "--name", "Alice"],
    ));
    let id = json(&ks(&home, &["boundary", "add", "Home by 11"]))["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        json(&ks(&home, &["boundary", "retire", &id]))["status"],
        "retired"
    );
    for attempt in [
        vec!["boundary", "edit", &id, "Home by midnight"],
        vec!["boundary", "approve", &id],
        vec!["boundary", "retire", &id],
    ] {
        assert_one_line_error(&ks(&home, &attempt), "is retired");
        assert_one_line_error(&ks(&home, &attempt), "kintsugi boundary add");
    }
    let shown = json(&ks(&home, &["boundary", "show", &id]));
    assert_eq!(
        (&shown["status"], &shown["text"]),
        (&Value::from("retired"), &Value::from("Home by 11"))
    );
}

#[test]
fn there_is_no_command_to_unshare_or_unretire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, server) = (dir.path().join("alice"), serve(&dir.path().join("server")));
    json(&ks(
        &home,
        &["init", "--server", &server.url, "--name", "Alice"],
    ));
    let entry = json(&ks(&home, &["journal", "write", "a day"]));
    let id = entry["id"].as_str().expect("id");
    json(&ks(&home, &["journal", "share", id]));
    let attempts = [
        ["journal", "unshare", id],
        ["shared", "remove", id],
        ["boundary", "unretire", id],
    ];
    for attempt in attempts {
        let out = ks(&home, &attempt);
        assert!(!out.status.success(), "{attempt:?} is no command");
    }
    assert_eq!(json(&ks(&home, &["journal", "list"]))[0]["shared"], true);
    assert_eq!(
        json(&ks(&home, &["shared", "list"]))
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// Alice with two check-ins (the second without forgiveness) and one therapy session.
fn alice_with_check_ins(home: &Path, url: &str) {
    json(&ks(home, &["init", "--server", url, "--name", "Alice"]));
    let week1 = ["--week", "2026-W01", "--trust", "3", "--conversations", "1"];
    json(&ks(
        home,
        &[
            &["checkin"][..],
            &week1,
            &["--closeness", "4", "--forgiveness", "5"],
        ]
        .concat(),
    ));
    let week2 = ["--week", "2026-W02", "--trust", "5", "--conversations", "2"];
    json(&ks(
        home,
        &[&["checkin"][..], &week2, &["--closeness", "5"]].concat(),
    ));
    json(&ks(home, &["therapy", "log", "--date", "2026-01-08"]));
}

#[test]
fn the_progress_table_reads_each_measure_against_the_ranges_in_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, server) = (dir.path().join("alice"), serve(&dir.path().join("server")));
    let newcomer = dir.path().join("newcomer");
    json(&ks(
        &newcomer,
        &["init", "--server", &server.url, "--name", "Sam"],
    ));
    assert_eq!(
        stdout(&ks_text(&newcomer, &["progress"])).trim(),
        "no check-ins yet; each of you can check in with `kintsugi checkin --trust N --conversations N`"
    );
    alice_with_check_ins(&home, &server.url);
    let table = stdout(&ks_text(&home, &["progress"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "Since 2026-W01, set against typical recovery ranges:"
    );
    assert_eq!(lines[1], "Alice (2 week(s), latest 2026-W02)");
    for (line, measure) in lines[2..5]
        .iter()
        .zip(["trust", "conversations", "closeness"])
    {
        assert!(line.trim_start().starts_with(measure), "{line}");
        assert!(line.contains("typical now"), "{line}");
        let words = ["below typical", "within typical", "ahead of typical"];
        assert!(
            words.iter().any(|w| line.ends_with(w)),
            "only these words: {line}"
        );
    }
    assert_eq!(lines[5], "  trust by week  ▂▄  (3 5)");
    assert!(
        lines[6].starts_with("Therapy: 1 session(s); typical by now "),
        "{}",
        lines[6]
    );
    let typical: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("  typical: "))
        .copied()
        .collect();
    assert_eq!(typical.len(), 4, "the four ranges in words: {table}");
    assert!(
        typical[0].contains("trust from 2-3 to 7-8"),
        "{}",
        typical[0]
    );
}

#[test]
fn progress_json_is_one_value_with_nulls_for_what_was_not_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, server) = (dir.path().join("alice"), serve(&dir.path().join("server")));
    let newcomer = dir.path().join("newcomer");
    json(&ks(
        &newcomer,
        &["init", "--server", &server.url, "--name", "Sam"],
    ));
    let empty = json(&ks(&newcomer, &["progress"]));
    assert!(
        empty["first_week"].is_null() && empty["therapy_standing"].is_null(),
        "{empty}"
    );
    alice_with_check_ins(&home, &server.url);
    let progress = json(&ks(&home, &["progress"]));
    assert_eq!(progress["first_week"], "2026-W01");
    assert_eq!(progress["therapy_sessions"], 1);
    let weeks = &progress["partners"][0]["weeks"];
    assert_eq!(
        keys(&weeks[0]),
        ["closeness", "conversations", "forgiveness", "trust", "week"]
    );
    assert!(
        weeks[1]["forgiveness"].is_null() && weeks[1]["closeness"] == 5,
        "{weeks}"
    );
    let standing = &progress["partners"][0]["standing"][0];
    assert_eq!(
        keys(standing),
        [
            "measure",
            "typical_high",
            "typical_low",
            "value",
            "verdict",
            "weeks_in"
        ]
    );
    let ranges = progress["ranges"].as_array().expect("ranges");
    assert_eq!(ranges.len(), 4);
    assert_eq!(
        keys(&ranges[0]),
        [
            "description",
            "end",
            "fast_weeks",
            "measure",
            "slow_weeks",
            "start"
        ]
    );
}

#[test]
fn the_chart_note_goes_to_stderr_only_without_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, server) = (dir.path().join("alice"), serve(&dir.path().join("server")));
    alice_with_check_ins(&home, &server.url);
    let chart = dir.path().join("progress.svg");
    let chart = chart.to_str().expect("path");
    let out = ks(&home, &["progress", "--chart", chart]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(&out)["first_week"],
        "2026-W01",
        "stdout holds the one JSON value"
    );
    let note = ks_text(&home, &["progress", "--chart", chart]);
    let stderr = String::from_utf8_lossy(&note.stderr);
    assert_eq!(stderr.trim(), format!("wrote the chart to {chart}"));
}

/// Draws Alice's progress to a PNG in `dir`, with `KINTSUGI_FONT` set to `font` when given.
fn png_with_font(home: &Path, dir: &Path, name: &str, font: Option<&str>) -> Vec<u8> {
    let file = dir.join(name);
    let mut command = Command::new(env!("CARGO_BIN_EXE_kintsugi"));
    command
        .arg("--home")
        .arg(home)
        .args(["--json", "progress", "--chart"])
        .arg(&file);
    match font {
        Some(font) => command.env("KINTSUGI_FONT", font),
        None => command.env_remove("KINTSUGI_FONT"),
    };
    json(&command.output().expect("run kintsugi"));
    std::fs::read(&file).expect("the chart")
}

#[test]
fn the_chart_font_is_kintsugi_font_when_set_else_dejavu_sans() {
    let dejavu = "/usr/share/fonts/truetype/dejavu";
    let (sans, serif) = (
        format!("{dejavu}/DejaVuSans.ttf"),
        format!("{dejavu}/DejaVuSerif.ttf"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, server) = (dir.path().join("alice"), serve(&dir.path().join("server")));
    alice_with_check_ins(&home, &server.url);
    let default = png_with_font(&home, dir.path(), "default.png", None);
    let as_sans = png_with_font(&home, dir.path(), "sans.png", Some(&sans));
    let as_serif = png_with_font(&home, dir.path(), "serif.png", Some(&serif));
    assert_eq!(default, as_sans, "DejaVu Sans is the default");
    assert_ne!(default, as_serif, "KINTSUGI_FONT is used when set");
}
