//! Writes `store_conformance_tests!` from the conformance tests themselves.
//!
//! Every `pub fn` at the start of a line in `src/store/conformance/*.rs` is one conformance
//! test (`fn name(open: Open<'_>)`); helpers there are private. The macro this script writes
//! expands to one `#[test]` per such function, so a test is written in one place, as a normal
//! function, and every backend that runs the suite runs it. `src/store/conformance.rs`
//! includes the result (only for tests and with the `testing` feature).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const SUITE: &str = "src/store/conformance";

fn main() {
    println!("cargo::rerun-if-changed={SUITE}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(SUITE)
        .expect("the conformance suite's folder")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let mut tests = String::new();
    for file in &files {
        for name in test_names(file) {
            write!(
                tests,
                "
            #[test]
            fn {name}() {{
                $crate::store::conformance::{name}(&open_store);
            }}
"
            )
            .expect("writing to a string");
        }
    }
    let out = Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("store_conformance_tests.rs");
    std::fs::write(out, MACRO.replace("TESTS", &tests)).expect("the generated macro is written");
}

/// The names of the `pub fn`s of one file of the suite, in order.
fn test_names(file: &Path) -> Vec<String> {
    let source = std::fs::read_to_string(file).expect("a conformance source file");
    source
        .lines()
        .filter_map(|line| line.strip_prefix("pub fn "))
        .map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                !name.is_empty(),
                "{}: a `pub fn` without a name",
                file.display()
            );
            name
        })
        .collect()
}

const MACRO: &str = r#"/// Expands to the conformance tests for the backend that `$open` (a closure taking the data
/// folder) opens: one `#[test]` per function of `kintsugi_server::store::conformance`, each on
/// a fresh scratch folder. Written by `build.rs` from the suite's sources.
#[macro_export]
macro_rules! store_conformance_tests {
    ($open:expr) => {
        mod store_conformance {
            #[allow(unused_imports)]
            use super::*;

            fn open_store(dir: &::std::path::Path) -> ::std::boxed::Box<dyn $crate::store::Store> {
                let open = $crate::store::conformance::opener($open);
                ::std::boxed::Box::new(open(dir))
            }
TESTS        }
    };
}
"#;
