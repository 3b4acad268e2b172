//! The full editing trace (259,778 keystrokes) typed into a boundary on phone A and synced
//! through a real server to phone B every 100 keystrokes, against Automerge applying the same
//! keystrokes alone; B's text must equal the trace's `endContent`. Prints the figures.
//!
//! `cargo bench -p kintsugi-tests --bench trace_replay` (the figures are in
//! docs/performance.md).

use std::process::ExitCode;

use kintsugi_tests::World;
use std::sync::Arc;

use kintsugi_tests::trace::{
    Batches, Trace, replay_in_automerge, replay_live, replay_through_server,
};

fn main() -> ExitCode {
    let trace = match Trace::load() {
        Ok(trace) => trace,
        Err(error) => {
            eprintln!("error: cannot read the trace in ../shared/data: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let mut all_equal = true;
    // (keystrokes per change, live sync or one sync round of A then B every 100 keystrokes)
    for (per_change, live) in [(1, true), (100, true), (100, false)] {
        let batches = Batches {
            per_change,
            per_sync: 100,
        };
        let (alone, alone_text) = replay_in_automerge(&trace.start, &trace.keystrokes, per_change);
        let replayed = runtime.block_on(async {
            let world = World::unthrottled().await;
            let (a, b) = world.couple().await;
            let keystrokes = &trace.keystrokes;
            if live {
                replay_live(Arc::new(a), Arc::new(b), &trace.start, keystrokes, batches).await
            } else {
                replay_through_server(&a, &b, &trace.start, keystrokes, batches).await
            }
        });
        let (took, text) = match replayed {
            Ok(replayed) => replayed,
            Err(error) => {
                eprintln!("error: the replay failed: {error}");
                return ExitCode::FAILURE;
            }
        };
        let equal = text == trace.end && alone_text == trace.end;
        all_equal &= equal;
        let how = if live {
            "both phones syncing live".to_string()
        } else {
            format!("a sync of A then B every {}", batches.per_sync)
        };
        println!(
            "{} keystrokes, {per_change} per change, {how}: A -> server -> B {:.2} s, \
             Automerge alone {:.2} s ({:.1}x); B's text equals endContent: {equal}",
            trace.keystrokes.len(),
            took.as_secs_f64(),
            alone.as_secs_f64(),
            took.as_secs_f64() / alone.as_secs_f64()
        );
    }
    if all_equal {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
