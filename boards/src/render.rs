//! Board files for people: TOML with addresses and sizes in hex.
//!
//! `toml` writes every integer in decimal, which nobody can compare
//! with a boot log. [`to_toml_hex`] rewrites the address and size keys
//! in hex; the result is still valid TOML and parses back to the same
//! board, so `lmx boards show NAME > boards/NAME.toml` is a way to start
//! a local variant.

use std::sync::OnceLock;

use regex::Regex;

use crate::schema::Board;

/// Keys whose integer values are addresses, offsets or sizes.
const HEX_KEYS: &[&str] = &[
    "base",
    "size",
    "uboot",
    "phys",
    "load",
    "entry",
    "rootfs",
    "offset",
    "erase_block",
    "uboot_sector",
    "page_size",
    "mapped_base",
    "redundant_offset",
    "pflash_bank_size",
];

/// The board as TOML, addresses and sizes in hex.
pub fn to_toml_hex(board: &Board) -> String {
    static LINE: OnceLock<Regex> = OnceLock::new();
    let line = LINE.get_or_init(|| Regex::new(r"^(\w+) = (\d+)$").expect("static regex"));
    let mut out = String::new();
    for l in board.to_toml_string().lines() {
        match line.captures(l) {
            Some(c) if HEX_KEYS.contains(&&c[1]) => {
                let v: u64 = c[2].parse().unwrap_or(0);
                out.push_str(&format!("{} = {v:#x}\n", &c[1]));
            }
            _ => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

/// One row of the board list (`lmx boards list`): name, architecture,
/// flash and the file that wins, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    /// Board name.
    pub name: String,
    /// `ARCH-be`/`ARCH-le`, `(virtual)` for a virtual board; `INVALID`
    /// when the board does not resolve.
    pub arch: String,
    /// Flash type and size (`nor 16 MiB`); `-` when the board does not resolve.
    pub flash: String,
    /// The file (or `built-in`), with the files it shadows.
    pub source: String,
}

impl ListRow {
    /// The row of `entry`, resolved to `board` (or not).
    pub fn of(entry: &crate::catalog::Entry, board: Option<&Board>) -> ListRow {
        let mut source = source_label(&entry.source);
        if !entry.shadowed.is_empty() {
            let shadowed: Vec<String> = entry.shadowed.iter().map(source_label).collect();
            source.push_str(&format!(" (shadows {})", shadowed.join(", ")));
        }
        let (arch, flash) = match board {
            Some(b) => {
                let endian = match b.cpu.endian {
                    crate::Endian::Big => "be",
                    crate::Endian::Little => "le",
                };
                let mut arch = format!("{}-{endian}", b.cpu.arch.as_str());
                if b.is_virtual {
                    arch.push_str(" (virtual)");
                }
                let mut flash = b.flash.kind.as_str().to_string();
                if let Some(size) = b.flash.size {
                    flash.push(' ');
                    flash.push_str(&size_label(size));
                }
                (arch, flash)
            }
            None => ("INVALID".into(), "-".into()),
        };
        ListRow {
            name: entry.name.clone(),
            arch,
            flash,
            source,
        }
    }
}

/// A board file's origin in a list: its path, or `built-in`.
pub fn source_label(s: &crate::catalog::Source) -> String {
    match s {
        crate::catalog::Source::File(p) => p.display().to_string(),
        crate::catalog::Source::BuiltIn(_) => "built-in".to_string(),
    }
}

/// A size as a person reads it: whole GiB or MiB, else hex bytes.
pub fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes % (1 << 30) == 0 {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes:#x} B")
    }
}

#[cfg(test)]
mod list_tests {
    use super::*;
    use crate::catalog::{Catalog, Entry, Source};

    #[test]
    fn sizes_read_as_whole_units_or_hex() {
        assert_eq!(size_label(16 << 20), "16 MiB");
        assert_eq!(size_label(2 << 30), "2 GiB");
        assert_eq!(size_label(0x18000), "0x18000 B");
        assert_eq!(size_label(3 << 19), "0x180000 B");
    }

    #[test]
    fn a_row_names_arch_flash_and_the_winning_file() {
        let board = Catalog::builtin().resolve("qemu-mips").unwrap().board;
        let entry = Entry {
            name: "qemu-mips".into(),
            source: Source::File("/b/qemu-mips.toml".into()),
            shadowed: vec![Source::BuiltIn("qemu-mips.toml")],
        };
        let row = ListRow::of(&entry, Some(&board));
        assert_eq!(row.name, "qemu-mips");
        assert_eq!(row.arch, "mips-be (virtual)");
        assert!(row.flash.starts_with(board.flash.kind.as_str()), "{row:?}");
        assert_eq!(row.source, "/b/qemu-mips.toml (shadows built-in)");
        let bad = ListRow::of(&entry, None);
        assert_eq!((bad.arch.as_str(), bad.flash.as_str()), ("INVALID", "-"));
    }
}
