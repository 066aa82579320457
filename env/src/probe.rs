//! Finding an environment when the given layout is wrong.
//!
//! The most common failure is not a corrupt environment but a wrong guess
//! of `CONFIG_ENV_SIZE`, the offset, the byte order or redundancy: the
//! CRC then fails on every copy and the user is left guessing again. A
//! CRC match is strong evidence, so after a failure the caller can ask
//! [`probe_at`] which common sizes, byte orders and header forms match at
//! the given offset, and [`scan`] for offsets inside a dump where an
//! environment with a matching CRC starts. Both only suggest; nothing is
//! chosen automatically.

use crate::layout::Endian;
use std::fmt;

/// Environment sizes tried: powers of two from 1 KiB to 1 MiB, which
/// covers the `CONFIG_ENV_SIZE` of the boards lmx knows.
pub const COMMON_SIZES: [usize; 11] = [
    0x400, 0x800, 0x1000, 0x2000, 0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000,
];

/// A layout whose CRC matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Offset of the copy inside the image.
    pub offset: u64,
    /// Environment size.
    pub size: usize,
    /// Byte order of the matching CRC.
    pub endian: Endian,
    /// The copy has a flag byte, so it belongs to a redundant pair.
    pub flagged: bool,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--offset {:#x} --size {:#x}", self.offset, self.size)?;
        if self.endian == Endian::Big {
            write!(f, " --big-endian")?;
        }
        if self.flagged {
            // Where the second copy is and which flag style it uses cannot
            // be seen from one copy.
            write!(f, " --redundant[=OFFSET2] --flags boolean|counter")?;
        }
        Ok(())
    }
}

/// Layouts with a matching CRC for a copy starting at `bytes[0]`
/// (`offset` is where `bytes` starts in the image, for reporting).
pub fn probe_at(bytes: &[u8], offset: u64) -> Vec<Candidate> {
    let mut found = Vec::new();
    if bytes.len() < 6 {
        return found;
    }
    let stored = [bytes[0], bytes[1], bytes[2], bytes[3]];
    // One running CRC per header form; snapshot at each size boundary, so
    // probing every size costs one pass over the largest one.
    for flagged in [false, true] {
        let start = if flagged { 5 } else { 4 };
        let mut hasher = crc32fast::Hasher::new();
        let mut done = start;
        for size in COMMON_SIZES {
            if size > bytes.len() {
                break;
            }
            hasher.update(&bytes[done..size]);
            done = size;
            let crc = hasher.clone().finalize();
            for endian in [Endian::Little, Endian::Big] {
                if endian.read_u32(stored) == crc && !all_same(&bytes[start..size]) {
                    found.push(Candidate {
                        offset,
                        size,
                        endian,
                        flagged,
                    });
                }
            }
        }
    }
    found
}

fn all_same(bytes: &[u8]) -> bool {
    bytes.windows(2).all(|w| w[0] == w[1])
}

/// Offsets (multiples of `step`) inside `dump` where a copy with a
/// matching CRC starts. Only places whose data begins like `name=` are
/// checked, so scanning a large dump stays cheap.
pub fn scan(dump: &[u8], step: usize) -> Vec<Candidate> {
    let step = step.max(1);
    let mut found = Vec::new();
    let mut pos = 0;
    while pos + 6 <= dump.len() {
        let here = &dump[pos..];
        if looks_like_entry(&here[4..]) || looks_like_entry(&here[5..]) {
            let end = dump.len().min(pos + COMMON_SIZES[COMMON_SIZES.len() - 1]);
            found.extend(probe_at(&dump[pos..end], pos as u64));
        }
        pos += step;
    }
    found
}

fn looks_like_entry(data: &[u8]) -> bool {
    let name_len = data
        .iter()
        .take(65)
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        .count();
    (1..=64).contains(&name_len) && data.get(name_len) == Some(&b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_copy, EnvLayout, Environment};

    #[test]
    fn finds_size_endian_and_flag() {
        let env = Environment::from_pairs([("bootcmd", "run x")]).unwrap();
        let layout = EnvLayout::single(0, 0x2000).with_endian(Endian::Big);
        let mut dump = vec![0xffu8; 0x10000];
        let copy = encode_copy(&layout, &env, 0, 0).unwrap();
        dump[0x3000..0x5000].copy_from_slice(&copy);
        let at = probe_at(&dump[0x3000..], 0x3000);
        assert_eq!(
            at,
            vec![Candidate {
                offset: 0x3000,
                size: 0x2000,
                endian: Endian::Big,
                flagged: false
            }]
        );
        assert_eq!(
            at[0].to_string(),
            "--offset 0x3000 --size 0x2000 --big-endian"
        );
        assert_eq!(scan(&dump, 0x400), at);
        assert!(probe_at(&dump[0x2000..], 0x2000).is_empty());
    }

    #[test]
    fn finds_a_redundant_copy() {
        let env = Environment::from_pairs([("a", "1")]).unwrap();
        let layout = EnvLayout::redundant(0, 0x400, 0x400, crate::FlagStyle::Counter);
        let copy = encode_copy(&layout, &env, 3, 0xff).unwrap();
        let found = probe_at(&copy, 0);
        assert_eq!(found.len(), 1);
        assert!(found[0].flagged);
    }
}
