//! The layers point one way (docs/architecture.md): the client's sync engine never names the
//! `Device` facade, its typed documents never name the sync engine or the keys, and the
//! server's store never names a gRPC type. Checked on the sources, so a new `use` that breaks
//! the direction fails CI.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every `file:line` under `dir` (relative to the workspace) that mentions one of `banned`.
fn mentions(dir: &str, banned: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = rust_files(&root.join(dir));
    assert!(!files.is_empty(), "no sources under {dir}");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (n, line) in text.lines().enumerate() {
            if banned.iter().any(|b| line.contains(b)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_sync_engine_never_names_the_device_facade() {
    let found = mentions(
        "crates/kintsugi-core/src/sync",
        &["crate::device", "super::super::device"],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn typed_documents_name_neither_the_sync_engine_nor_the_keys() {
    let found = mentions(
        "crates/kintsugi-core/src/docs",
        &["crate::sync", "crate::keys"],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_servers_store_names_no_grpc_type() {
    let found = mentions(
        "crates/kintsugi-server/src/store",
        &["tonic::", "use tonic"],
    );
    assert!(found.is_empty(), "{found:#?}");
}
