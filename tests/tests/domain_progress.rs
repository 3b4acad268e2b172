//! The rules of docs/domain.md §5 and §7 that need devices, through a real server: who progress
//! lists and what it leaves out, therapy read at this week, and history naming who changed
//! what, ordered by the author's clock. The table mapping every rule of domain.md to its test is
//! in docs/reliability.md.

use automerge::ReadDoc;
use automerge::transaction::Transactable;
use kintsugi_core::docs::{checkins, root_map};
use kintsugi_core::{Answers, CodeKind, CoreError, Device, DocKind, IsoWeek, UnixMillis, Verdict};
use kintsugi_tests::hostile::{reopen, write_unchecked};
use kintsugi_tests::{TestClock, World, millis, sync_all};

fn answers(trust: i64, closeness: Option<i64>) -> Answers {
    Answers {
        trust,
        conversations: 2,
        closeness,
        forgiveness: Some(6),
        note: String::new(),
    }
}

fn week(text: &str) -> IsoWeek {
    IsoWeek::parse(text).expect("week")
}

fn shape(e: impl ToString) -> CoreError {
    CoreError::Shape(e.to_string())
}

#[tokio::test]
async fn progress_lists_every_partner_by_name_with_weeks_sorted_as_entered() {
    let world = World::new().await;
    let zoe = world.init("Zoe").await;
    let adam = world.join(&zoe, CodeKind::Partner, "Adam", "Adam").await;
    zoe.check_in(Some("2026-W03"), answers(5, None))
        .expect("W03");
    zoe.check_in(Some("2026-W01"), answers(3, Some(4)))
        .expect("W01");
    sync_all(&[&zoe, &adam]).await;
    let progress = adam.progress().expect("progress");
    let names: Vec<&str> = progress.partners.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Adam", "Zoe"], "every partner, by name");
    assert!(
        progress.partners[0].weeks.is_empty(),
        "Adam has not checked in"
    );
    let weeks: Vec<(&str, i64, Option<i64>, Option<i64>)> = progress.partners[1]
        .weeks
        .iter()
        .map(|w| (w.week.as_str(), w.trust, w.closeness, w.forgiveness))
        .collect();
    assert_eq!(
        weeks,
        [
            ("2026-W01", 3, Some(4), Some(6)),
            ("2026-W03", 5, None, Some(6))
        ]
    );
}

#[tokio::test]
async fn check_ins_by_a_member_not_yet_known_appear_under_the_member_id() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    drop(bob);
    let stranger = "0123456789abcdef0123456789abcdef";
    write_unchecked(&world.home("Bob"), DocKind::Checkins, |tx, _| {
        checkins::record(
            tx,
            stranger,
            week("2026-W02"),
            &answers(4, None),
            UnixMillis::from_millis(1),
        )
        .map(drop)
    });
    let bob = reopen(&world.home("Bob"));
    sync_all(&[&bob, &alice]).await;
    let progress = alice.progress().expect("progress");
    let listed = progress.partners.iter().find(|p| p.name == stranger);
    let weeks = listed.map(|p| p.weeks.len());
    assert_eq!(weeks, Some(1), "{:?}", progress.partners);
}

#[tokio::test]
async fn check_ins_with_values_out_of_range_are_left_out_of_progress() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    bob.check_in(Some("2026-W01"), answers(3, None))
        .expect("check in");
    drop(bob);
    write_unchecked(&world.home("Bob"), DocKind::Checkins, |tx, bob| {
        checkins::record(
            tx,
            &bob.member,
            week("2026-W02"),
            &answers(42, None),
            UnixMillis::from_millis(1),
        )?;
        let key = checkins::record(
            tx,
            &bob.member,
            week("2026-W03"),
            &answers(5, None),
            UnixMillis::from_millis(1),
        )?;
        let map = root_map(tx, "checkins")?;
        let (_, entry) = tx
            .get(&map, key.as_str())
            .map_err(shape)?
            .ok_or_else(|| shape(&key))?;
        tx.put(&entry, "week", "2026-W99").map_err(shape)
    });
    let bob = reopen(&world.home("Bob"));
    sync_all(&[&bob, &alice]).await;
    assert_eq!(
        alice.checkins().expect("checkins").len(),
        3,
        "all three arrived"
    );
    let progress = alice.progress().expect("progress still works");
    let bobs = progress
        .partners
        .iter()
        .find(|p| p.name == "Bob")
        .expect("Bob");
    let weeks: Vec<(&str, i64)> = bobs
        .weeks
        .iter()
        .map(|w| (w.week.as_str(), w.trust))
        .collect();
    assert_eq!(
        weeks,
        [("2026-W01", 3)],
        "trust 42 and week 99 are left out"
    );
}

#[tokio::test]
async fn therapy_is_read_at_the_weeks_from_the_first_check_in_to_this_week() {
    let world = World::new().await;
    let clock = TestClock::at("2026-04-01T12:00:00Z");
    let alice = world.init_with_clock("Alice", clock.clock()).await;
    alice
        .check_in(Some("2026-W01"), answers(3, None))
        .expect("check in");
    for date in ["2026-01-08", "2026-02-05", "2026-03-05"] {
        alice.log_therapy(Some(date), &[], "").expect("log");
    }
    let progress = alice.progress().expect("progress");
    assert_eq!(progress.therapy_sessions, 3);
    let therapy = progress.therapy_standing.expect("therapy");
    assert_eq!(
        (therapy.weeks_in, therapy.typical_low, therapy.typical_high),
        (13, 2.0, 12.0)
    );
    assert_eq!(therapy.verdict, Verdict::WithinTypical);
    // Back in the first week (a clock set back): the sessions dated after it are left out,
    // and one session in week 0 is ahead of the typical pace.
    clock.set("2026-01-01T12:00:00Z");
    alice.log_therapy(Some("2026-01-01"), &[], "").expect("log");
    let early = alice.progress().expect("progress");
    assert_eq!(
        early.therapy_sessions, 1,
        "sessions after today are left out"
    );
    let early = early.therapy_standing.expect("therapy");
    assert_eq!(
        (early.weeks_in, early.verdict),
        (0, Verdict::AheadOfTypical)
    );
}

fn what_and_who(device: &Device, kind: DocKind) -> Vec<(String, String)> {
    let history = device.history(kind).expect("history");
    history.into_iter().map(|h| (h.what, h.who)).collect()
}

#[tokio::test]
async fn history_lists_who_did_what_oldest_first_by_the_authors_clock() {
    let world = World::new().await;
    let (a, b) = (
        TestClock::at("2026-05-01T10:00:00Z"),
        TestClock::at("2026-05-01T10:05:00Z"),
    );
    let alice = world.init_with_clock("Alice", a.clock()).await;
    let bob = world
        .join_with_clock(&alice, CodeKind::Partner, "Bob", "Bob", b.clock())
        .await;
    a.set("2026-05-01T10:10:00Z");
    let id = alice.add_boundary("We are kind", "general").expect("add");
    sync_all(&[&alice, &bob]).await;
    b.set("2026-05-01T09:00:00Z"); // Bob's phone runs an hour and more behind
    bob.approve_boundary(&id).expect("approve");
    a.set("2026-05-01T10:20:00Z");
    alice
        .edit_boundary(&id, "We are kind, always")
        .expect("edit");
    a.set("2026-05-01T10:30:00Z");
    alice.retire_boundary(&id).expect("retire");
    a.set("2026-05-01T10:40:00Z");
    let tablet = world
        .join_with_clock(&alice, CodeKind::Device, "tablet", "Alice", a.clock())
        .await;
    sync_all(&[&alice, &bob, &tablet]).await;
    let by = |who: &str, what: String| (what, who.to_string());
    let want = [
        by("Bob", format!("approved boundary {id}")),
        by("Alice", "Alice joined".into()),
        by("Bob", "Bob joined".into()),
        by("Alice", format!("proposed boundary {id}")),
        by("Alice", format!("edited boundary {id}")),
        by("Alice", format!("retired boundary {id}")),
        by("Alice", "Alice linked a device".into()),
    ];
    let seen = what_and_who(&bob, DocKind::Agreement);
    assert_eq!(seen, want, "by the time each device recorded; no genesis");
    let history = bob.history(DocKind::Agreement).expect("history");
    assert_eq!(history[0].at, millis("2026-05-01T09:00:00Z"));
    assert_eq!(history[0].device, bob.identity().device.to_string());
    assert_eq!(history[6].device, tablet.identity().device.to_string());
}

#[tokio::test]
async fn every_kind_of_change_has_its_history_message() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let entry = alice.write_journal("a day", None, &[]).expect("write");
    alice.share_journal(&entry).expect("share");
    alice
        .check_in(Some("2026-W40"), answers(4, None))
        .expect("check in");
    let session = alice.log_therapy(None, &[], "").expect("log");
    let alice_did = |what: String| (what, "Alice".to_string());
    assert_eq!(
        what_and_who(&alice, DocKind::Journal),
        [
            alice_did(format!("wrote entry {entry}")),
            alice_did(format!("marked entry {entry} shared"))
        ]
    );
    assert_eq!(
        what_and_who(&alice, DocKind::Shared),
        [alice_did(format!("shared entry {entry}"))]
    );
    assert_eq!(
        what_and_who(&alice, DocKind::Checkins),
        [
            alice_did("checked in for 2026-W40".into()),
            alice_did(format!("logged therapy session {session}"))
        ]
    );
}

#[tokio::test]
async fn a_device_missing_from_the_devices_map_is_an_unknown_device() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let bob_device = bob.identity().device.to_string();
    drop(bob);
    write_unchecked(&world.home("Bob"), DocKind::Agreement, |tx, bob| {
        let devices = root_map(tx, "devices")?;
        tx.delete(&devices, bob.device.as_str()).map_err(shape)
    });
    let bob = reopen(&world.home("Bob"));
    sync_all(&[&bob, &alice]).await;
    let history = alice.history(DocKind::Agreement).expect("history");
    let joined = history
        .iter()
        .find(|h| h.what == "Bob joined")
        .expect("Bob joined");
    assert_eq!(
        (joined.who.as_str(), joined.device.as_str()),
        ("unknown device", bob_device.as_str())
    );
}
