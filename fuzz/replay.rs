//! The corpus replay every crate's `tests/fuzz_corpus.rs` shares
//! (included with `#[path]`, so no crate depends on another for it): each
//! input of `fuzz/corpus/TARGET` and its truncations go through the
//! target's check, so the fuzzed invariants hold in every `cargo test`
//! and every input that once crashed stays fixed.

use std::path::Path;

/// The inputs of `fuzz/corpus/TARGET`, sorted; an empty corpus fails.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus {}", dir.display());
    v
}

/// Every truncation of a short input; of a long one, 32 spread over it
/// and the last 8 (what a cut-off read leaves).
pub fn truncations(len: usize) -> Vec<usize> {
    if len <= 64 {
        return (0..=len).collect();
    }
    let mut v: Vec<usize> = (0..32).map(|i| i * len / 32).collect();
    v.extend(len - 8..=len);
    v
}

/// `check` over every input of `target` and each of its truncations.
pub fn corpus_and_truncations(target: &str, check: impl Fn(&[u8])) {
    for input in corpus(target) {
        for end in truncations(input.len()) {
            check(&input[..end]);
        }
    }
}
