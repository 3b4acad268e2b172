//! Rules about the store's sources that the compiler cannot check, each as a test.
//!
//! **The store speaks no gRPC**: no file under `src/store` names tonic, the protocol crate or
//! the server's gRPC modules. The services translate between the wire and the store; a backend
//! that imported a gRPC type would tie every future backend (and its conformance suite) to the
//! transport. **One name from trait to implementation**: each method of the store traits is
//! implemented in the sled backend by a function of the same name in the file of its concern,
//! so grep leads from one to the other. The tests read the sources and name each file and line
//! that breaks a rule.

use std::path::{Path, PathBuf};

/// Crates and modules the store must not use: the gRPC crates (`tonic`, `tonic_health`, ...),
/// the generated protocol types, and the server's own modules that speak gRPC.
const FORBIDDEN: &[&str] = &[
    "tonic",
    "kintsugi_proto",
    "crate::service",
    "crate::server",
    "crate::auth",
];

/// Every `.rs` file under `dir`, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("the store's sources are readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Whether `code` uses `name` as a path: as a whole identifier path (not inside another word),
/// at the start of a path or after `::`/punctuation. `tonic` also catches `tonic_health` and
/// the other `tonic_*` crates.
fn uses(code: &str, name: &str) -> bool {
    let mut from = 0;
    while let Some(found) = code[from..].find(name) {
        let start = from + found;
        let end = start + name.len();
        let before = code[..start].chars().next_back();
        let after = code[end..].chars().next();
        let starts_word = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let ends_word = match after {
            None => true,
            Some(c) if name == "tonic" => !c.is_alphanumeric(),
            Some(c) => !(c.is_alphanumeric() || c == '_'),
        };
        if starts_word && ends_word {
            return true;
        }
        from = end;
    }
    false
}

/// The lines of `source` whose code (comments removed) uses a forbidden path, as
/// `(line number, line)`.
fn offending_lines(source: &str) -> Vec<(usize, String)> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or_default();
            FORBIDDEN.iter().any(|name| uses(code, name))
        })
        .map(|(index, line)| (index + 1, line.trim().to_string()))
        .collect()
}

#[test]
fn store_speaks_no_grpc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = rust_files(&root.join("src/store"));
    assert!(
        files.len() > 10,
        "expected the store's sources, found {files:?}"
    );
    let mut found = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("a source file");
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (line, text) in offending_lines(&source) {
            found.push(format!("{shown}:{line}: {text}"));
        }
    }
    assert!(
        found.is_empty(),
        "the store must not use gRPC types ({FORBIDDEN:?}); translate in the services:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_what_it_must_and_nothing_else() {
    let caught = [
        "use tonic::Status;",
        "use tonic_health::server::HealthReporter;",
        "    let code = tonic::Code::Internal;",
        "fn f() -> Result<(), ::tonic::Status> {",
        "use kintsugi_proto::v1 as proto;",
        "pub(crate) use kintsugi_proto::v1::Envelope;",
        "use crate::service::proto;",
        "use crate::auth::AuthedDevice; // who asks",
    ];
    for line in caught {
        assert_eq!(offending_lines(line).len(), 1, "not caught: {line}");
    }
    let passed = [
        "// tonic::Status is what the services answer with",
        "/// Maps to `kintsugi_proto::v1::Envelope` in the services.",
        "use prost::Message;",
        "let platonic = 1;",
        "use crate::store::records;",
        "use crate::serviced::X;",
    ];
    for line in passed {
        assert!(offending_lines(line).is_empty(), "wrongly caught: {line}");
    }
}

/// The methods the store traits declare (`    fn name(` lines in the trait files).
fn trait_methods(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for file in ["pairing.rs", "log.rs", "snapshots.rs", "admin.rs"] {
        let source =
            std::fs::read_to_string(root.join("src/store").join(file)).expect("a trait file");
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("    fn ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.push(name);
            }
        }
    }
    names
}

#[test]
fn the_sled_backend_keeps_the_trait_method_names() {
    // `durable` is answered in sled_store.rs by the commit thread itself; `flush` is the
    // trait's default method.
    const ANSWERED_IN_PLACE: &[&str] = &["durable", "flush"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = trait_methods(root);
    assert!(
        names.len() > 20,
        "expected the store traits' methods, found {names:?}"
    );
    let workers: Vec<(String, String)> = rust_files(&root.join("src/store"))
        .into_iter()
        .filter(|file| {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            name.starts_with("sled_") && name != "sled_store.rs" && !name.ends_with("_tests.rs")
        })
        .map(|file| {
            let source = std::fs::read_to_string(&file).expect("a source file");
            (file.display().to_string(), source)
        })
        .collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !ANSWERED_IN_PLACE.contains(&name.as_str()))
        .filter(|name| {
            let definition = format!("fn {name}(");
            !workers
                .iter()
                .any(|(_, source)| source.contains(&definition))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "no `fn NAME(` in src/store/sled_*.rs does the work of these trait methods; name the \
         function that does it after the method: {missing:?}"
    );
}
