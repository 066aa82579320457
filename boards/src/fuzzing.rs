//! Invariant checks shared by the cargo-fuzz target `boards` (`fuzz/`)
//! and the seed-corpus test (`tests/fuzz_corpus.rs`), so the fuzzed
//! properties are also exercised by `cargo test`. Not part of the
//! supported API.
//!
//! [`check_board_files`] resolves any text as a board file found in a
//! `--boards-dir` (with an optional family file next to it, and the
//! built-in families behind), as `lmx boards check` and every command
//! do. A board that resolves must render (`lmx boards show`) to TOML that
//! parses back to the same board, and every error must print.

use crate::catalog::{Doc, DocKind, Layer, LayerKind};
use crate::render::to_toml_hex;
use crate::schema::Board;
use crate::shell::{self, Inventory, LineLimit, MarkerMode};
use crate::Catalog;

/// Separates the board file from the family file in the input.
pub const FAMILY_SEPARATOR: &str = "\n%%family\n";

/// `data` (UTF-8, lossily) is `fuzz.toml`, optionally followed by
/// [`FAMILY_SEPARATOR`] and `families/fuzzfam.toml`.
pub fn check_board_files(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (board, family) = match text.split_once(FAMILY_SEPARATOR) {
        Some((b, f)) => (b, Some(f)),
        None => (&*text, None),
    };
    let mut docs = vec![Doc::from_text(
        "fuzz",
        DocKind::Board,
        "boards/fuzz.toml",
        board,
    )];
    if let Some(f) = family {
        docs.push(Doc::from_text(
            "fuzzfam",
            DocKind::Family,
            "boards/families/fuzzfam.toml",
            f,
        ));
    }
    let mut cat = Catalog::builtin();
    cat.layers.insert(
        0,
        Layer {
            kind: LayerKind::BoardsDir,
            dir: None,
            docs,
        },
    );
    match cat.resolve("fuzz") {
        Ok(r) => {
            let _ = r.to_json_pretty();
            check_board(&r.board);
        }
        Err(errors) => {
            assert!(!errors.errors.is_empty(), "a failure without an error");
            for e in &errors.errors {
                let _ = e.to_string();
            }
        }
    }
    // The same text as a self-contained file.
    if let Ok(b) = Board::from_toml_str("fuzz.toml", board) {
        check_board(&b);
    }
}

fn check_board(b: &Board) {
    let shown = to_toml_hex(b);
    let again = Board::from_toml_str("shown.toml", &shown)
        .unwrap_or_else(|e| panic!("`lmx boards show` output does not parse: {e}\n{shown}"));
    assert_eq!(&again, b, "board changed through `lmx boards show`");
    let u = &b.uboot;
    let limit = LineLimit::of(u);
    let _ = (limit.typed_max(), limit.body_max(), limit.expanded_max());
    let _ = MarkerMode::of(u);
    let _ = shell::maxargs(u);
    let _ = shell::wrap_of(u);
    let inv = Inventory::of(u);
    for line in ["crc32 0x40000000 0x1000", "setenv x 'a b'; run y", "bootm"] {
        let _ = inv.trap(line, true);
        let _ = inv.check(line, false);
        let _ = limit.cost(line);
    }
}
