//! Runs the fuzz targets' checks (`lmx_console::fuzzing`) over their seed
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
fn console_machine_corpus_and_truncations() {
    for input in corpus("console_machine") {
        for end in truncations(input.len()) {
            lmx_console::fuzzing::check_machine(&input[..end]);
        }
    }
}

#[test]
fn console_session_corpus_and_truncations() {
    for input in corpus("console_session") {
        for end in truncations(input.len()) {
            lmx_console::fuzzing::check_session(&input[..end]);
        }
    }
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
