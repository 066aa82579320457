//! Runs the fuzz targets' checks (`lmx_console::fuzzing`) over their seed
//! corpora in the repository's `fuzz/corpus`, plus truncations of each
//! input, so the fuzzed invariants hold in every `cargo test` and every
//! crash the fuzzer found stays fixed (its input is in the corpus).

#[path = "../../fuzz/replay.rs"]
mod replay;

use replay::corpus_and_truncations;

#[test]
fn console_machine_corpus_and_truncations() {
    corpus_and_truncations("console_machine", lmx_console::fuzzing::check_machine);
}

#[test]
fn console_session_corpus_and_truncations() {
    corpus_and_truncations("console_session", lmx_console::fuzzing::check_session);
}

#[test]
fn a_long_line_of_noise_while_attaching_takes_linear_time() {
    // 64 KiB of control bytes without a newline (a board at the wrong
    // baud rate) used to cost minutes: the whole partial line was
    // converted at every byte. Any board's dialect, attach then bytes.
    let mut input = vec![0u8];
    for _ in 0..256 {
        input.extend([0, 255]);
        input.extend([1u8; 255]);
    }
    let t = std::time::Instant::now();
    lmx_console::fuzzing::check_machine(&input);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
}
