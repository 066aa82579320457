//! Reading what U-Boot printed: CRC32 lines, bad-block reports, missing
//! commands and `md.b` hex dumps. Pure functions over text, so every
//! U-Boot wording lmx relies on is pinned by a test with a literal line.

/// The value of `crc32 for 40400000 ... 405fffff ==> 1b6a2c3d`.
pub fn crc32(text: &str) -> Option<u32> {
    text.lines()
        .filter_map(|l| l.split("==>").nth(1))
        .filter_map(|v| u32::from_str_radix(v.trim(), 16).ok())
        .next_back()
}

/// Offsets of the bad blocks a NAND command reported (`Skipping bad block
/// at  0x00100000`, `Skip bad block 0x00100000`, `bad block at 0x...`).
pub fn bad_blocks(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.to_ascii_lowercase();
        if !l.contains("bad block") {
            continue;
        }
        if let Some(v) = l
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("0x"))
            .filter_map(|h| u64::from_str_radix(h.trim_end_matches([',', '.', ':']), 16).ok())
            .next()
        {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// Whether `help NAME` (or running a command) said the command does not
/// exist in this build: `Unknown command 'sf' - try 'help'`.
pub fn unknown_command(text: &str) -> bool {
    text.contains("Unknown command")
}

/// Parses the hex dump `md.b ADDR LEN` prints
/// (`00400000: 27 05 19 56 ...    '..V`), checking that the lines are
/// contiguous from `addr`. Returns the bytes, or what went wrong.
pub fn md_dump(text: &str, addr: u64, len: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(len as usize);
    for line in text.lines() {
        let Some((a, rest)) = line.split_once(':') else {
            continue;
        };
        let Ok(at) = u64::from_str_radix(a.trim(), 16) else {
            continue;
        };
        let expect = addr + out.len() as u64;
        if at != expect {
            return Err(format!(
                "dump line at {at:#x}, expected {expect:#x}: console bytes were lost"
            ));
        }
        // At most 16 two-digit fields (md.b's line), and never more than
        // the bytes still expected: the ASCII column that follows may hold
        // words like `ab` that look like hex.
        let take = (len - out.len() as u64).min(16) as usize;
        for w in rest.split_whitespace().take(take) {
            if w.len() != 2 {
                break;
            }
            match u8::from_str_radix(w, 16) {
                Ok(b) => out.push(b),
                Err(_) => break,
            }
        }
    }
    if out.len() as u64 != len {
        return Err(format!(
            "the dump holds {:#x} bytes, {len:#x} expected",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_line() {
        assert_eq!(
            crc32("crc32 for 00400000 ... 013fffff ==> 8bd6a5f2"),
            Some(0x8bd6_a5f2)
        );
        assert_eq!(crc32("Unknown command 'crc32' - try 'help'"), None);
    }

    #[test]
    fn bad_block_lines() {
        let t = "NAND erase: device 0 offset 0x200000, size 0x400000\n\
                 Skipping bad block at  0x00300000\n\
                 Erasing at 0x5e0000 -- 100% complete.\nOK";
        assert_eq!(bad_blocks(t), vec![0x30_0000]);
        assert_eq!(
            bad_blocks("Skip bad block 0x00400000\nSkip bad block 0x00400000"),
            vec![0x40_0000]
        );
        assert!(bad_blocks("NAND write: 4194304 bytes written: OK").is_empty());
    }

    #[test]
    fn unknown_commands() {
        assert!(unknown_command("Unknown command 'sf' - try 'help'"));
        assert!(!unknown_command("sf - SPI flash sub-system"));
    }

    #[test]
    fn md_dump_roundtrip() {
        let t = "00400000: 27 05 19 56 ff ff ff ff 00 01 02 03 04 05 06 07  '..V............\n\
                 00400010: 41 42                                            ab";
        let b = md_dump(t, 0x40_0000, 18).unwrap();
        assert_eq!(&b[..4], &[0x27, 0x05, 0x19, 0x56]);
        assert_eq!(&b[16..], b"AB");
        // A dump shorter than asked for is an error, whatever the ASCII column holds.
        assert!(md_dump(t, 0x40_0000, 20)
            .unwrap_err()
            .contains("0x14 expected"));
        let gap = "00400000: 00 01\n00400020: 02";
        assert!(md_dump(gap, 0x40_0000, 3).unwrap_err().contains("lost"));
    }
}
