//! Runs the fuzz targets' checks (`lmx_session::fuzzing`) over their seed
//! corpora in the repository's `fuzz/corpus`, plus truncations of each
//! input, so the fuzzed invariants hold in every `cargo test` and every
//! crash the fuzzer found stays fixed (its input is in the corpus).

#[path = "../../fuzz/replay.rs"]
mod replay;

use replay::corpus_and_truncations;

#[test]
fn replies_corpus_and_truncations() {
    corpus_and_truncations("replies", lmx_session::fuzzing::check_replies);
}
