//! Runs the fuzz targets' checks (`lmx_env::fuzzing`) over their seed
//! corpora in the repository's `fuzz/corpus`, plus truncations of each
//! input, so the fuzzed invariants hold in every `cargo test` and every
//! crash the fuzzer found stays fixed (its input is in the corpus).

#[path = "../../fuzz/replay.rs"]
mod replay;

use replay::corpus_and_truncations;

#[test]
fn env_corpus_and_truncations() {
    corpus_and_truncations("env", lmx_env::fuzzing::check_env);
}
