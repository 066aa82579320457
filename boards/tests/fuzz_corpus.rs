//! Runs the fuzz targets' checks (`lmx_boards::fuzzing`) over their seed
//! corpora in the repository's `fuzz/corpus`, plus truncations of each
//! input, so the fuzzed invariants hold in every `cargo test` and every
//! crash the fuzzer found stays fixed (its input is in the corpus).

use std::path::Path;

fn corpus(target: &str) -> Vec<Vec<u8>> {
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
fn truncations(len: usize) -> Vec<usize> {
    if len <= 64 {
        return (0..=len).collect();
    }
    let mut v: Vec<usize> = (0..32).map(|i| i * len / 32).collect();
    v.extend(len - 8..=len);
    v
}

#[test]
fn boards_corpus_and_truncations() {
    for input in corpus("boards") {
        for end in truncations(input.len()) {
            lmx_boards::fuzzing::check_board_files(&input[..end]);
        }
    }
}
