//! Searching bytes and files for bytes: what the privacy tests use to show that no plaintext,
//! token or erased ciphertext is left on disk.

use std::path::{Path, PathBuf};

/// Whether `needle` occurs anywhere in `haystack` (an empty needle occurs everywhere).
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Every file at or below `dir` (links are followed), in no particular order.
///
/// # Panics
///
/// If a folder or an entry cannot be read: a test has nothing to check then.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("a readable folder") {
                pending.push(entry.expect("a readable entry").path());
            }
        } else {
            files.push(path);
        }
    }
    files
}

/// Every file at or below `dir` whose bytes contain `needle`.
///
/// # Panics
///
/// If a folder or a file cannot be read.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|file| contains_bytes(&std::fs::read(file).expect("a readable file"), needle))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_found_wherever_they_are_and_only_there() {
        assert!(contains_bytes(b"a secret here", b"secret"));
        assert!(contains_bytes(b"secret", b"secret"));
        assert!(!contains_bytes(b"secre", b"secret"));
        assert!(contains_bytes(b"anything", b""));

        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("folders");
        std::fs::write(dir.path().join("top"), b"nothing to see").expect("written");
        std::fs::write(dir.path().join("a/b/deep"), b"xx secret xx").expect("written");
        assert_eq!(files_under(dir.path()).len(), 2);
        assert_eq!(
            files_containing(dir.path(), b"secret"),
            [dir.path().join("a/b/deep")]
        );
        assert!(files_containing(dir.path(), b"absent").is_empty());
    }
}
