//! The real editing trace typed on one phone arrives on the partner's phone exactly: its first
//! 1,500 keystrokes (the full trace runs in `cargo bench --bench trace_replay`), a change per
//! keystroke and per ten, synced through the server every 100, and per ten with both phones
//! syncing live.

use kintsugi_tests::World;
use std::sync::Arc;

use kintsugi_tests::trace::{
    Batches, Trace, replay_in_automerge, replay_live, replay_through_server,
};

const KEYSTROKES: usize = 1_500;

#[tokio::test]
async fn the_partner_ends_with_the_text_typed_keystroke_by_keystroke() {
    let trace = Trace::load().expect("the trace in ../shared/data");
    assert_eq!(trace.keystrokes.len(), 259_778, "the whole trace was read");
    assert_eq!(
        trace.text_after(trace.keystrokes.len()),
        trace.end,
        "the trace replays as text"
    );
    let expected = trace.text_after(KEYSTROKES);
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    for per_change in [1, 10] {
        let batches = Batches {
            per_change,
            per_sync: 100,
        };
        let keystrokes = &trace.keystrokes[..KEYSTROKES];
        let (_, text) = replay_through_server(&alice, &bob, &trace.start, keystrokes, batches)
            .await
            .expect("replay");
        assert_eq!(text, expected, "{per_change} keystroke(s) a change");
        let (_, alone) = replay_in_automerge(&trace.start, keystrokes, per_change);
        assert_eq!(alone, expected, "Automerge alone agrees");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_ends_with_the_text_typed_while_both_phones_sync_live() {
    let trace = Trace::load().expect("the trace in ../shared/data");
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let batches = Batches {
        per_change: 10,
        per_sync: 100,
    };
    let keystrokes = &trace.keystrokes[..KEYSTROKES];
    let (alice, bob) = (Arc::new(alice), Arc::new(bob));
    let (_, text) = replay_live(alice, bob, &trace.start, keystrokes, batches)
        .await
        .expect("replay");
    assert_eq!(text, trace.text_after(KEYSTROKES));
}

#[tokio::test]
async fn typing_past_the_end_of_the_text_is_refused_and_writes_nothing() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let id = alice
        .add_boundary("Phones stay open", "trust")
        .expect("add");
    let pending = alice.pending_changes();
    let past = kintsugi_core::TextSplice {
        at: 10,
        delete: 20,
        insert: "x".into(),
    };
    let error = alice.type_into_boundary(&id, &[past]).expect_err("refused");
    assert!(error.to_string().contains("past the end"), "{error}");
    assert_eq!(alice.pending_changes(), pending, "nothing written");
    assert_eq!(alice.boundary(&id).expect("read").text, "Phones stay open");
}
