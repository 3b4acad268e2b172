//! The rules of docs/domain.md §1, §3 and §4, through a real server and two phones: ids, each
//! document's audience, Text for free texts, journal privacy and shared copies, check-ins by
//! partner and week, therapy defaults, and refused input writing nothing. The table mapping
//! every rule of domain.md to its test is in docs/reliability.md.

use automerge::{Automerge, ObjType, ReadDoc, Value};
use kintsugi_core::{Answers, CodeKind, CoreError, Device, DocKind};
use kintsugi_tests::{TestClock, World, millis, sync_all};

fn answers(trust: i64, note: &str) -> Answers {
    Answers {
        trust,
        conversations: 2,
        closeness: None,
        forgiveness: None,
        note: note.to_string(),
    }
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[tokio::test]
async fn ids_are_lowercase_hex_of_the_documented_lengths() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    for device in [&alice, &bob] {
        assert!(is_hex(&device.identity().member.to_string(), 32));
        assert!(is_hex(&device.identity().device.to_string(), 32));
    }
    let boundary = alice.add_boundary("We are kind", "general").expect("add");
    let entry = alice.write_journal("a day", None, &[]).expect("write");
    let session = alice.log_therapy(None, &[], "").expect("therapy");
    for id in [boundary, entry, session] {
        assert!(is_hex(&id, 12), "{id}");
    }
}

#[tokio::test]
async fn each_document_reaches_exactly_its_audience() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let tablet = world
        .join(&alice, CodeKind::Device, "alice-tablet", "Alice")
        .await;
    alice.add_boundary("We are kind", "general").expect("add");
    alice
        .write_journal("only Alice's devices", None, &[])
        .expect("write");
    alice
        .check_in(Some("2026-W02"), answers(4, ""))
        .expect("check in");
    sync_all(&[&alice, &bob, &tablet]).await;
    for kind in [DocKind::Agreement, DocKind::Checkins, DocKind::Shared] {
        assert_eq!(alice.doc_id(kind), bob.doc_id(kind), "{kind:?} is shared");
    }
    assert_ne!(alice.doc_id(DocKind::Journal), bob.doc_id(DocKind::Journal));
    assert_eq!(
        alice.doc_id(DocKind::Journal),
        tablet.doc_id(DocKind::Journal)
    );
    assert_eq!(bob.boundaries().expect("list").len(), 1);
    assert_eq!(bob.checkins().expect("checkins").len(), 1);
    assert!(
        bob.journal().expect("journal").is_empty(),
        "private to Alice"
    );
    assert_eq!(
        tablet.journal().expect("journal")[0].text,
        "only Alice's devices"
    );
}

/// The value at `path` from the root, if there is one.
fn value_at<'a>(doc: &'a Automerge, path: &[&str]) -> Option<Value<'a>> {
    let (last, parents) = path.split_last()?;
    let mut obj = automerge::ROOT;
    for key in parents {
        match doc.get(&obj, *key).ok().flatten()? {
            (Value::Object(_), id) => obj = id,
            _ => return None,
        }
    }
    doc.get(&obj, *last).ok().flatten().map(|(value, _)| value)
}

/// The type of the object at `path`, if it is an object.
fn object_at(doc: &Automerge, path: &[&str]) -> Option<ObjType> {
    match value_at(doc, path)? {
        Value::Object(kind) => Some(kind),
        Value::Scalar(_) => None,
    }
}

fn saved(device: &Device, kind: DocKind) -> Automerge {
    Automerge::load(&device.export_automerge(kind).expect("export")).expect("load")
}

#[tokio::test]
async fn free_texts_are_automerge_text_and_lists_are_written_whole() {
    let world = World::new().await;
    let (alice, _bob) = world.couple().await;
    let me = alice.identity().member.to_string();
    let b = alice.add_boundary("We are kind", "general").expect("add");
    let tags = ["hope".to_string(), "work".to_string()];
    let e = alice.write_journal("a day", Some(3), &tags).expect("write");
    alice.share_journal(&e).expect("share");
    alice
        .check_in(Some("2026-W02"), answers(4, "a note"))
        .expect("check in");
    let t = alice
        .log_therapy(None, &["alice".into()], "a note")
        .expect("log");
    let week_key = format!("{me}/2026-W02");
    let texts = [
        (DocKind::Agreement, vec!["boundaries", &b, "text"]),
        (DocKind::Journal, vec!["entries", &e, "text"]),
        (DocKind::Shared, vec!["entries", &e, "text"]),
        (DocKind::Checkins, vec!["checkins", &week_key, "note"]),
        (DocKind::Checkins, vec!["therapy", &t, "note"]),
    ];
    for (kind, path) in texts {
        assert_eq!(
            object_at(&saved(&alice, kind), &path),
            Some(ObjType::Text),
            "{path:?}"
        );
    }
    let agreement = saved(&alice, DocKind::Agreement);
    for scalar in [
        vec!["boundaries", &b, "category"],
        vec!["boundaries", &b, "approvals", &me, "text"],
    ] {
        let value = value_at(&agreement, &scalar);
        assert!(
            matches!(value, Some(Value::Scalar(_))),
            "{scalar:?} is a plain scalar"
        );
    }
    let journal = alice.export_json(DocKind::Journal).expect("export");
    assert_eq!(journal["entries"][&e]["tags"], serde_json::json!(tags));
    let checkins = alice.export_json(DocKind::Checkins).expect("export");
    assert_eq!(
        checkins["therapy"][&t]["attended"],
        serde_json::json!([me]),
        "names are stored as member ids"
    );
}

#[tokio::test]
async fn sharing_copies_the_entry_and_sharing_again_updates_the_copy() {
    let world = World::new().await;
    let clock = TestClock::at("2026-04-01T20:00:00Z");
    let alice = world.init_with_clock("Alice", clock.clock()).await;
    let bob = world.join(&alice, CodeKind::Partner, "Bob", "Bob").await;
    let id = alice
        .write_journal("You listened tonight", Some(4), &["hope".into()])
        .expect("write");
    clock.set("2026-04-02T08:00:00Z");
    alice.share_journal(&id).expect("share");
    sync_all(&[&alice, &bob]).await;
    let copy = &bob.shared_entries().expect("shared")[0];
    assert_eq!(
        (
            copy.id.as_str(),
            copy.text.as_str(),
            copy.mood,
            copy.tags.as_slice()
        ),
        (
            id.as_str(),
            "You listened tonight",
            Some(4),
            ["hope".to_string()].as_slice()
        )
    );
    assert_eq!(
        copy.created_at,
        millis("2026-04-01T20:00:00Z"),
        "written then"
    );
    assert_eq!(copy.shared_at, millis("2026-04-02T08:00:00Z"));
    assert_eq!(copy.shared_by, "Alice");
    assert!(alice.journal().expect("journal")[0].shared);

    clock.set("2026-04-09T08:00:00Z");
    alice.share_journal(&id).expect("share again");
    sync_all(&[&alice, &bob]).await;
    let copies = bob.shared_entries().expect("shared");
    assert_eq!(copies.len(), 1, "one copy, updated");
    assert_eq!(copies[0].tags, ["hope"], "tags written whole, not appended");
    assert_eq!(copies[0].shared_at, millis("2026-04-09T08:00:00Z"));
}

#[tokio::test]
async fn both_partners_shared_entries_show_with_the_sharers_name() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let a = alice.write_journal("from Alice", None, &[]).expect("write");
    alice
        .write_journal("Alice keeps this", None, &[])
        .expect("write");
    let b = bob.write_journal("from Bob", None, &[]).expect("write");
    bob.write_journal("Bob keeps this", None, &[])
        .expect("write");
    alice.share_journal(&a).expect("share");
    bob.share_journal(&b).expect("share");
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        let mut seen: Vec<(String, String)> = device
            .shared_entries()
            .expect("shared")
            .into_iter()
            .map(|e| (e.shared_by, e.text))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("Alice".into(), "from Alice".into()),
                ("Bob".into(), "from Bob".into())
            ]
        );
        assert_eq!(
            device.journal().expect("journal").len(),
            2,
            "only its own journal"
        );
    }
}

#[tokio::test]
async fn the_partners_check_ins_for_one_week_never_collide() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice
        .check_in(Some("2026-W40"), answers(4, ""))
        .expect("alice");
    bob.check_in(Some("2026W40"), answers(6, "")).expect("bob");
    sync_all(&[&alice, &bob]).await;
    let mut seen: Vec<(String, String, i64)> = alice
        .checkins()
        .expect("checkins")
        .into_iter()
        .map(|c| (c.name, c.week, c.trust))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("Alice".into(), "2026-W40".into(), 4),
            ("Bob".into(), "2026-W40".into(), 6)
        ]
    );
    let stored = alice.export_json(DocKind::Checkins).expect("export");
    let mut keys: Vec<String> = stored["checkins"]
        .as_object()
        .expect("map")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    let mut want: Vec<String> = [&alice, &bob]
        .iter()
        .map(|d| format!("{}/2026-W40", d.identity().member))
        .collect();
    want.sort();
    assert_eq!(keys, want, "keyed by member/week");
}

#[tokio::test]
async fn a_check_in_without_a_week_goes_to_the_current_iso_week_in_utc() {
    let world = World::new().await;
    // Monday 00:30 at UTC+2 is still Sunday of the week before in UTC.
    let clock = TestClock::at("2026-01-05T00:30:00+02:00");
    let alice = world.init_with_clock("Alice", clock.clock()).await;
    let week = alice.check_in(None, answers(4, "")).expect("check in");
    assert_eq!(week.to_string(), "2026-W01");
    clock.set("2027-01-01T12:00:00Z");
    let week = alice.check_in(None, answers(4, "")).expect("check in");
    assert_eq!(week.to_string(), "2026-W53", "the ISO year");
}

#[tokio::test]
async fn a_session_without_date_or_names_is_today_in_utc_for_both_partners() {
    let world = World::new().await;
    let clock = TestClock::at("2026-02-10T23:30:00-05:00");
    let alice = world.init_with_clock("Alice", clock.clock()).await;
    let id = alice
        .log_therapy(None, &[], "before Bob joined")
        .expect("log");
    let bob = world.join(&alice, CodeKind::Partner, "Bob", "Bob").await;
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        let sessions = device.therapy_sessions().expect("sessions");
        assert_eq!(
            (sessions[0].id.as_str(), sessions[0].date.as_str()),
            (id.as_str(), "2026-02-11")
        );
        assert_eq!(sessions[0].attended, ["Alice", "Bob"], "both partners");
    }
    let stored = bob.export_json(DocKind::Checkins).expect("export");
    assert_eq!(
        stored["therapy"][&id]["attended"],
        serde_json::json!([]),
        "stored empty"
    );
}

#[tokio::test]
async fn attended_names_match_case_insensitively_and_unknown_names_are_refused() {
    let world = World::new().await;
    let elodie = world.init("Élodie").await;
    let bob = world.join(&elodie, CodeKind::Partner, "Bob", "Bob").await;
    sync_all(&[&elodie, &bob]).await;
    bob.log_therapy(Some("2026-01-08"), &[" élodie ".into()], "")
        .expect("log");
    assert_eq!(
        bob.therapy_sessions().expect("sessions")[0].attended,
        ["Élodie"]
    );
    let err = bob
        .log_therapy(None, &["Carol".into()], "")
        .expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "no partner called \"Carol\"; the partners are Bob and Élodie"
    );
}

/// Every document's heads and the outbox length, to show that nothing was written.
fn footprint(device: &Device) -> (Vec<Vec<String>>, usize) {
    let heads = DocKind::ALL
        .iter()
        .map(|k| device.heads(*k).expect("heads"))
        .collect();
    (heads, device.pending_changes())
}

/// Each result is a refusal a person can act on (bad input or an unknown id).
fn assert_refused(results: Vec<kintsugi_core::Result<()>>) {
    for (i, result) in results.into_iter().enumerate() {
        let err = result.expect_err("refused");
        let clear = matches!(
            err,
            CoreError::InvalidInput(_) | CoreError::UnknownId { .. }
        );
        assert!(clear, "input {i}: {err:?}");
    }
}

/// A couple whose first partner has one boundary (its id returned) and one journal entry.
async fn couple_with_a_boundary(world: &World) -> (Device, Device, String) {
    let (alice, bob) = world.couple().await;
    let b = alice.add_boundary("We are kind", "general").expect("add");
    alice.write_journal("a day", None, &[]).expect("write");
    sync_all(&[&alice, &bob]).await;
    (alice, bob, b)
}

#[tokio::test]
async fn refused_boundaries_and_journal_entries_write_nothing() {
    let world = World::new().await;
    let (alice, _bob, b) = couple_with_a_boundary(&world).await;
    let before = footprint(&alice);
    let long = "a".repeat(2001);
    assert_refused(vec![
        alice.add_boundary("   ", "general").map(drop),
        alice.add_boundary(&long, "general").map(drop),
        alice.edit_boundary(&b, " ").map(drop),
        alice.edit_boundary("nope", "x").map(drop),
        alice.approve_boundary("nope").map(drop),
        alice.retire_boundary("").map(drop),
        alice.write_journal(" ", None, &[]).map(drop),
        alice.write_journal("x", Some(6), &[]).map(drop),
        alice
            .write_journal(&"a".repeat(20_001), None, &[])
            .map(drop),
        alice.share_journal("nope").map(drop),
    ]);
    assert_eq!(footprint(&alice), before, "no change, no outbox entry");
    assert_eq!(
        alice.sync().await.expect("sync").pushed,
        0,
        "nothing to sync"
    );
}

#[tokio::test]
async fn refused_check_ins_and_sessions_write_nothing() {
    let world = World::new().await;
    let (alice, _bob, _) = couple_with_a_boundary(&world).await;
    let before = footprint(&alice);
    let long = "a".repeat(5001);
    let ok = answers(5, "");
    let trust_11 = Answers {
        trust: 11,
        ..ok.clone()
    };
    let talks_101 = Answers {
        conversations: 101,
        ..ok.clone()
    };
    assert_refused(vec![
        alice.check_in(Some("2025-W53"), ok).map(drop),
        alice.check_in(None, trust_11).map(drop),
        alice.check_in(None, talks_101).map(drop),
        alice.check_in(None, answers(5, &long)).map(drop),
        alice.log_therapy(Some("2026-02-30"), &[], "").map(drop),
        alice.log_therapy(None, &[], &long).map(drop),
        alice.log_therapy(None, &["Carol".into()], "").map(drop),
    ]);
    assert_eq!(footprint(&alice), before, "no change, no outbox entry");
    assert_eq!(
        alice.sync().await.expect("sync").pushed,
        0,
        "nothing to sync"
    );
}

#[tokio::test]
async fn an_ambiguous_prefix_is_refused_and_a_unique_one_resolves() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    // 17 ids over 16 hex digits: at least two share their first character.
    let ids: Vec<String> = (0..17)
        .map(|i| {
            alice
                .add_boundary(&format!("boundary {i}"), "general")
                .expect("add")
        })
        .collect();
    let shared = ids
        .iter()
        .map(|id| &id[..1])
        .find(|p| ids.iter().filter(|id| id.starts_with(p)).count() > 1)
        .expect("a shared first character");
    let before = footprint(&alice);
    let err = alice.approve_boundary(shared).expect_err("ambiguous");
    assert_eq!(
        err.to_string(),
        format!("{shared} matches several; type more of the id")
    );
    assert_eq!(footprint(&alice), before, "nothing written");
    let unique = (1..=12)
        .map(|n| &ids[0][..n])
        .find(|p| ids.iter().filter(|id| id.starts_with(p)).count() == 1)
        .expect("a unique prefix");
    assert_eq!(alice.retire_boundary(unique).expect("retire"), ids[0]);
}
