//! Replays every input the fuzzers kept (fuzz/corpus/TARGET) and every crash saved as a
//! regression (fuzz/regressions/TARGET) through the same bodies, on stable, in every test run.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            body(&std::fs::read(&path).expect("input"));
            count += 1;
        }
    }
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
    replay("server_call", kintsugi_tests::fuzz::server_call);
}
