//! The couple's documents end to end: approvals under concurrent offline edits, journal
//! sharing, check-ins, therapy, progress and history, through a real server.

use kintsugi_core::{Answers, CoreError, DocKind, Status, Verdict};
use kintsugi_tests::World;

fn answers(trust: i64, conversations: i64) -> Answers {
    Answers {
        trust,
        conversations,
        closeness: Some(5),
        forgiveness: Some(4),
        note: String::new(),
    }
}

async fn sync_all(devices: &[&kintsugi_core::Device]) {
    for _ in 0..2 {
        for device in devices {
            device.sync().await.expect("sync");
        }
    }
}

#[tokio::test]
async fn an_offline_edit_and_a_concurrent_approval_bring_it_back_to_proposed_on_both() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    let id = alice
        .add_boundary("No secret messaging apps", "phones")
        .expect("add");
    sync_all(&[&alice, &bob]).await;
    bob.approve_boundary(&id).expect("approve");
    sync_all(&[&alice, &bob]).await;
    assert_eq!(alice.boundary(&id).expect("show").status, Status::Agreed);

    world
        .server
        .stop()
        .await
        .expect("the server stopped cleanly");
    alice
        .edit_boundary(&id, "No secret messaging apps or burner phones")
        .expect("edit");
    bob.approve_boundary(&id)
        .expect("approve the old text again");
    world.server.start_again().await;
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        let b = device.boundary(&id).expect("show");
        assert_eq!(b.status, Status::Proposed);
        assert_eq!(b.text, "No secret messaging apps or burner phones");
        assert_eq!(
            b.approved_by,
            vec!["Alice".to_string()],
            "bob approved the old text only"
        );
    }
    bob.approve_boundary(&id).expect("approve the new text");
    sync_all(&[&alice, &bob]).await;
    assert_eq!(alice.boundary(&id).expect("show").status, Status::Agreed);
}

#[tokio::test]
async fn a_concurrent_retire_and_edit_keep_both() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    let id = alice
        .add_boundary("Home by 11 on weeknights", "routine")
        .expect("add");
    sync_all(&[&alice, &bob]).await;
    world
        .server
        .stop()
        .await
        .expect("the server stopped cleanly");
    alice.retire_boundary(&id).expect("retire");
    bob.edit_boundary(&id, "Home by midnight on weeknights")
        .expect("edit");
    world.server.start_again().await;
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        let b = device.boundary(&id).expect("show");
        assert_eq!(b.status, Status::Retired, "retirement is kept");
        assert_eq!(b.text, "Home by midnight on weeknights", "the edit is kept");
        assert_eq!(
            b.approved_by,
            vec!["Bob".to_string()],
            "alice approved the old text only"
        );
    }
}

#[tokio::test]
async fn partners_adding_boundaries_offline_keep_both() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    sync_all(&[&alice, &bob]).await;
    world
        .server
        .stop()
        .await
        .expect("the server stopped cleanly");
    let a = alice
        .add_boundary("No contact with X", "contact")
        .expect("add");
    let b = bob
        .add_boundary("We see a counsellor together", "therapy")
        .expect("add");
    world.server.start_again().await;
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        let ids: Vec<String> = device
            .boundaries()
            .expect("list")
            .into_iter()
            .map(|b| b.id)
            .collect();
        assert!(
            ids.contains(&a) && ids.contains(&b) && ids.len() == 2,
            "{ids:?}"
        );
    }
}

#[tokio::test]
async fn journal_sharing_exposes_exactly_the_shared_entry() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let kept = alice
        .write_journal("still private: I am angry", Some(2), &[])
        .expect("write");
    let shared = alice
        .write_journal("I noticed you tried today", Some(4), &["hope".into()])
        .expect("write");
    alice.share_journal(&shared[..6]).expect("share by prefix");
    sync_all(&[&alice, &bob]).await;

    let seen = bob.shared_entries().expect("shared list");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].id.as_str(), seen[0].text.as_str()),
        (shared.as_str(), "I noticed you tried today")
    );
    assert_eq!(seen[0].shared_by, "Alice");
    assert_eq!(seen[0].tags, vec!["hope".to_string()]);
    assert!(bob.journal().expect("journal").is_empty());
    let mine = alice.journal().expect("journal");
    assert!(mine.iter().any(|e| e.id == shared && e.shared));
    assert!(mine.iter().any(|e| e.id == kept && !e.shared));
    let err = alice.share_journal("nope").expect_err("unknown id");
    assert!(matches!(err, CoreError::UnknownId { .. }), "{err}");
}

#[tokio::test]
async fn a_second_checkin_for_a_week_replaces_the_first_and_bad_scores_write_nothing() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    alice
        .check_in(Some("2026-W40"), answers(3, 1))
        .expect("check in");
    alice
        .check_in(Some("2026-w40"), answers(4, 2))
        .expect("check in again");
    let err = alice
        .check_in(Some("2026-W41"), answers(11, 1))
        .expect_err("trust 11");
    assert!(err.to_string().contains("1 to 10"), "{err}");
    assert!(alice.check_in(Some("2026-W99"), answers(5, 1)).is_err());
    assert!(
        alice
            .check_in(
                None,
                Answers {
                    closeness: Some(0),
                    ..answers(5, 1)
                }
            )
            .is_err()
    );
    sync_all(&[&alice, &bob]).await;
    let seen = bob.checkins().expect("checkins");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (
            seen[0].name.as_str(),
            seen[0].week.as_str(),
            seen[0].trust,
            seen[0].conversations
        ),
        ("Alice", "2026-W40", 4, 2)
    );
}

#[tokio::test]
async fn progress_reports_each_partners_weeks_and_where_they_stand() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    for week in 1..=6 {
        let w = format!("2026-W{week:02}");
        alice
            .check_in(
                Some(&w),
                Answers {
                    closeness: Some(4 + week / 3),
                    ..answers(2 + week, week)
                },
            )
            .expect("alice");
        bob.check_in(Some(&w), answers(1 + week, week + 1))
            .expect("bob");
    }
    alice
        .log_therapy(Some("2026-01-08"), &[], "first session")
        .expect("therapy");
    bob.log_therapy(Some("2026-01-15"), &["bob".into()], "")
        .expect("therapy");
    assert!(
        bob.log_therapy(Some("2026-01-22"), &["Carol".into()], "")
            .is_err(),
        "unknown partner"
    );
    sync_all(&[&alice, &bob]).await;

    let progress = bob.progress().expect("progress");
    assert_eq!(progress.first_week.as_deref(), Some("2026-W01"));
    assert_eq!(progress.therapy_sessions, 2);
    let names: Vec<&str> = progress.partners.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Alice", "Bob"]);
    let alice_trust: Vec<i64> = progress.partners[0].weeks.iter().map(|w| w.trust).collect();
    assert_eq!(alice_trust, [3, 4, 5, 6, 7, 8]);
    let verdict = |p: usize, m: &str| {
        progress.partners[p]
            .standing
            .iter()
            .find(|s| s.measure == m)
            .map(|s| s.verdict)
    };
    // Five weeks in, the typical trust band is about 2.3 to 4.0: Alice (8) is ahead, Bob (7) too.
    assert_eq!(verdict(0, "trust"), Some(Verdict::AheadOfTypical));
    assert_eq!(
        verdict(0, "closeness"),
        Some(Verdict::AheadOfTypical),
        "4 -> 6 is +50%"
    );
    assert_eq!(
        verdict(1, "closeness"),
        Some(Verdict::BelowTypical),
        "no change yet"
    );
    let sessions = alice.therapy_sessions().expect("sessions");
    assert_eq!(
        sessions[0].attended,
        vec!["Alice".to_string(), "Bob".to_string()],
        "both by default"
    );
    assert_eq!(sessions[1].attended, vec!["Bob".to_string()]);
}

#[tokio::test]
async fn history_says_who_changed_what() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let id = alice
        .add_boundary("We answer each other's calls", "contact")
        .expect("add");
    sync_all(&[&alice, &bob]).await;
    bob.approve_boundary(&id).expect("approve");
    sync_all(&[&alice, &bob]).await;
    let history = alice.history(DocKind::Agreement).expect("history");
    let lines: Vec<(String, String)> = history.into_iter().map(|h| (h.who, h.what)).collect();
    assert!(
        lines.contains(&("Alice".into(), format!("proposed boundary {id}"))),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("Bob".into(), format!("approved boundary {id}"))),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("Bob".into(), "Bob joined".into())),
        "{lines:?}"
    );
}
