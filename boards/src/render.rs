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
