//! Replays every input the fuzzers kept (fuzz/corpus/TARGET) and every crash saved as a
//! regression (fuzz/regressions/TARGET) through the same bodies, on stable, in every test run.
//! A target's corpus folder must exist and hold inputs, so a moved or emptied corpus fails the
//! run instead of passing with nothing replayed; the regressions folder exists only for targets
//! whose fuzzing found something.

use std::path::{Path, PathBuf};

/// Replays every file in `dir`; `None` when the folder does not exist.
fn replay_folder(dir: &Path, body: fn(&[u8])) -> Option<usize> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("entry").path();
        body(&std::fs::read(&path).expect("input"));
        count += 1;
    }
    Some(count)
}

/// Replays the corpus and the regressions of `target`; fails unless at least one input ran.
fn replay(target: &str, body: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let corpus: PathBuf = root.join("corpus").join(target);
    let Some(from_corpus) = replay_folder(&corpus, body) else {
        panic!(
            "the fuzz corpus folder {} is missing: nothing of {target} was replayed",
            corpus.display()
        );
    };
    let from_regressions = replay_folder(&root.join("regressions").join(target), body);
    let count = from_corpus + from_regressions.unwrap_or(0);
    assert!(
        count > 0,
        "no input of {target} was replayed: {} is empty",
        corpus.display()
    );
    count
}

#[test]
fn envelope_inputs_stay_refused() {
    replay("envelope_open", kintsugi_tests::fuzz::envelope_open);
}

#[test]
fn invite_code_inputs_stay_handled() {
    replay("invite_code", kintsugi_tests::fuzz::invite_code);
}

#[test]
fn change_inputs_stay_handled() {
    replay("apply_changes", kintsugi_tests::fuzz::apply_changes);
}

#[test]
fn server_call_inputs_leave_the_server_serving() {
    let replayed = replay("server_call", kintsugi_tests::fuzz::server_call);
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/server_call");
    let saved = std::fs::read_dir(&regressions).map_or(0, Iterator::count);
    assert!(
        saved > 0 && replayed > saved,
        "the saved server_call crash in {} must be replayed with the corpus",
        regressions.display()
    );
}
