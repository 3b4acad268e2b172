//! The agreement's rules from docs/domain.md §2, through a real server and two phones:
//! approvals, agreed only while every partner's approval matches the current text, an edit
//! after approval asking both again, and retired boundaries frozen and kept. The table mapping
//! every rule of domain.md to its test is in docs/reliability.md.

use kintsugi_core::{CodeKind, CoreError, Device, DocKind, Status};
use kintsugi_tests::{TestClock, World, millis, sync_all};
use serde_json::Value;

/// Whether `key` appears anywhere in `value`.
fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k == key || has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

fn stored_boundary(device: &Device, id: &str) -> Value {
    device.export_json(DocKind::Agreement).expect("export")["boundaries"][id].clone()
}

fn history(device: &Device) -> Vec<(String, String)> {
    let entries = device.history(DocKind::Agreement).expect("history");
    entries.into_iter().map(|h| (h.who, h.what)).collect()
}

#[tokio::test]
async fn agreed_needs_two_partners_each_approving_the_current_text() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let id = alice
        .add_boundary("  We are honest about money  ", "  ")
        .expect("add");
    let alone = alice.boundary(&id).expect("show");
    assert_eq!(
        (alone.text.as_str(), alone.category.as_str(), alone.status),
        ("We are honest about money", "general", Status::Proposed),
        "trimmed, default category, and one partner is no agreement"
    );
    assert_eq!(alone.approved_by, ["Alice"], "the proposer's approval");
    let bob = world.join(&alice, CodeKind::Partner, "Bob", "Bob").await;
    sync_all(&[&alice, &bob]).await;
    assert_eq!(bob.boundary(&id).expect("show").status, Status::Proposed);
    bob.approve_boundary(&id[..4]).expect("approve by prefix");
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        let b = device.boundary(&id).expect("show");
        assert_eq!(
            (b.status, b.approved_by),
            (Status::Agreed, vec!["Alice".into(), "Bob".into()])
        );
    }
    let stored = alice.export_json(DocKind::Agreement).expect("export");
    assert!(
        !has_key(&stored, "status"),
        "status is derived, never stored"
    );
    let approvals = stored["boundaries"][&id]["approvals"].as_object().cloned();
    let approvals = approvals.expect("approvals by member");
    for member in [alice.identity().member, bob.identity().member] {
        let approval = approvals[&member.to_string()]
            .as_object()
            .expect("an approval");
        let fields: Vec<&str> = approval.keys().map(String::as_str).collect();
        assert_eq!(fields, ["at", "text"], "an approval is {{text, at}}");
        assert_eq!(approval["text"], "We are honest about money");
    }
    assert!(history(&alice).contains(&("Alice".into(), format!("proposed boundary {id}"))));
}

#[tokio::test]
async fn a_new_approval_replaces_the_partners_old_one() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let clock = TestClock::at("2026-03-01T10:00:00Z");
    let bob = world
        .join_with_clock(&alice, CodeKind::Partner, "Bob", "Bob", clock.clock())
        .await;
    let id = alice
        .add_boundary("Phones stay unlocked", "phones")
        .expect("add");
    sync_all(&[&alice, &bob]).await;
    bob.approve_boundary(&id).expect("approve");
    clock.set("2026-03-05T10:00:00Z");
    let (_, stored) = bob
        .approve_boundary_once(&id)
        .expect("approve the same text");
    assert!(!stored, "approving the same text again stores nothing");
    alice
        .edit_boundary(&id, "Phones stay unlocked at home")
        .expect("edit");
    sync_all(&[&alice, &bob]).await;
    clock.set("2026-03-08T10:00:00Z");
    bob.approve_boundary(&id).expect("approve the new text");
    sync_all(&[&alice, &bob]).await;
    let approvals = stored_boundary(&alice, &id)["approvals"].clone();
    assert_eq!(
        approvals.as_object().map(|a| a.len()),
        Some(2),
        "one per partner"
    );
    let bobs = &approvals[bob.identity().member.to_string()];
    assert_eq!(
        bobs["at"],
        millis("2026-03-08T10:00:00Z").as_millis(),
        "the later one, of the new text"
    );
    assert_eq!(bobs["text"], "Phones stay unlocked at home");
}

#[tokio::test]
async fn an_edit_after_agreement_asks_both_to_approve_again() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let id = alice
        .add_boundary("We talk before we sleep", "talk")
        .expect("add");
    sync_all(&[&alice, &bob]).await;
    bob.approve_boundary(&id).expect("approve");
    sync_all(&[&alice, &bob]).await;
    assert_eq!(alice.boundary(&id).expect("show").status, Status::Agreed);

    bob.edit_boundary(&id, "We talk before we sleep, phones away")
        .expect("edit");
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        let b = device.boundary(&id).expect("show");
        assert_eq!(b.text, "We talk before we sleep, phones away");
        assert_eq!(
            (b.status, b.approved_by),
            (Status::Proposed, vec!["Bob".into()])
        );
    }
    assert!(history(&alice).contains(&("Bob".into(), format!("edited boundary {id}"))));
    alice.approve_boundary(&id).expect("approve the new text");
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        assert_eq!(device.boundary(&id).expect("show").status, Status::Agreed);
    }
}

#[tokio::test]
async fn a_retired_boundary_is_kept_with_its_text_and_approvals() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let id = alice
        .add_boundary("No travel without telling", "travel")
        .expect("add");
    sync_all(&[&alice, &bob]).await;
    bob.approve_boundary(&id).expect("approve");
    sync_all(&[&alice, &bob]).await;
    alice.retire_boundary(&id).expect("retire");
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        let listed = device.boundaries().expect("list");
        let b = listed
            .iter()
            .find(|b| b.id == id)
            .expect("kept in the list");
        assert_eq!(
            (b.status, b.text.as_str()),
            (Status::Retired, "No travel without telling")
        );
        assert_eq!(b.approved_by, ["Alice", "Bob"], "approvals kept");
        assert_eq!(device.boundary(&id).expect("show").status, Status::Retired);
        assert!(
            stored_boundary(device, &id)["retired_at"].is_i64(),
            "retired_at set"
        );
    }
    assert!(history(&bob).contains(&("Alice".into(), format!("retired boundary {id}"))));
}

/// Edit, approve and retire of `id` on `device` are refused, and nothing is written.
fn assert_frozen(device: &Device, id: &str) {
    let heads = device.heads(DocKind::Agreement).expect("heads");
    let pending = device.pending_changes();
    let want = format!(
        "boundary {id} is retired; it is kept as it was, so propose a new one with `kintsugi boundary add`"
    );
    let attempts = [
        device.edit_boundary(id, "Rewritten after retirement"),
        device.approve_boundary(id),
        device.retire_boundary(&id[..6]),
    ];
    for attempt in attempts {
        let err = attempt.expect_err("a retired boundary is frozen");
        assert!(matches!(err, CoreError::InvalidInput(_)), "{err:?}");
        assert_eq!(err.to_string(), want);
    }
    assert_eq!(
        device.heads(DocKind::Agreement).expect("heads"),
        heads,
        "no change"
    );
    assert_eq!(device.pending_changes(), pending, "nothing to sync");
}

#[tokio::test]
async fn a_retired_boundary_refuses_edits_approvals_and_retirement_on_both_phones() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let id = alice.add_boundary("Home by 11", "routine").expect("add");
    sync_all(&[&alice, &bob]).await;
    alice.retire_boundary(&id).expect("retire");
    sync_all(&[&alice, &bob]).await;
    for device in [&alice, &bob] {
        assert_frozen(device, &id);
        assert_eq!(device.sync().await.expect("sync").pushed, 0);
        let b = device.boundary(&id).expect("show");
        assert_eq!((b.status, b.text.as_str()), (Status::Retired, "Home by 11"));
    }
    let live = alice
        .add_boundary("A live boundary", "general")
        .expect("add");
    alice
        .edit_boundary(&live, "A live boundary, edited")
        .expect("edit");
    sync_all(&[&alice, &bob]).await;
    bob.approve_boundary(&live).expect("approve");
    sync_all(&[&alice, &bob]).await;
    assert_eq!(alice.boundary(&live).expect("show").status, Status::Agreed);
}
