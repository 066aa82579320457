//! Runs the fuzz targets' checks over the seed corpora in `fuzz/corpus`,
//! plus every truncation of each seed, so the fuzzed invariants hold in
//! every `cargo test`.

use std::path::Path;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
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
fn packet_corpus_and_truncations() {
    for s in seeds("packet") {
        for end in 0..=s.len() {
            lmx_tftpd::fuzzing::check_packet(&s[..end]);
        }
    }
}

#[test]
fn transfer_corpus_and_truncations() {
    for s in seeds("transfer") {
        for end in 0..=s.len() {
            lmx_tftpd::fuzzing::check_transfers(&s[..end]);
        }
        // The same records under every setup byte.
        for setup in 0..=255u8 {
            let mut v = s.clone();
            v[0] = setup;
            lmx_tftpd::fuzzing::check_transfers(&v);
        }
    }
}
