//! Runs the fuzz targets' checks (`lmx_boards::fuzzing`) over their seed
//! corpora in the repository's `fuzz/corpus`, plus each input cut in
//! half, so the fuzzed invariants hold in every `cargo test` and every
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

#[test]
fn boards_corpus_and_truncations() {
    // Resolving a board is slow in a debug build and a cut-off TOML file
    // mostly fails early: each input whole and cut in half.
    for input in corpus("boards") {
        lmx_boards::fuzzing::check_board_files(&input);
        lmx_boards::fuzzing::check_board_files(&input[..input.len() / 2]);
    }
}
