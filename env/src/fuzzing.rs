//! Invariant checks shared by the cargo-fuzz target `env` (`fuzz/`) and
//! the seed-corpus test (`tests/fuzz_corpus.rs`), so the fuzzed
//! properties are also exercised by `cargo test`. Not part of the
//! supported API.
//!
//! [`check_env`] reads any bytes as a flash dump under every layout the
//! first byte picks (single or redundant, boolean or counter flags, either
//! byte order, offsets up to `u64::MAX`), and as `mkenvimage` text:
//! whatever parses is written back the way U-Boot saves and must read
//! back to the same variables, from the copy just written.

use crate::image::EnvCopy;
use crate::{
    diff, parse_text, probe_at, scan, to_text, Endian, EnvImage, EnvLayout, Environment, FlagStyle,
};

const SIZES: [usize; 8] = [5, 6, 16, 64, 256, 0x400, 0x800, 0x1000];

/// Byte 0: bit 0 redundant, bit 1 boolean flags, bit 2 big-endian,
/// bits 3-5 the size, bit 6 offsets from the next 16 bytes (any `u64`),
/// bit 7 fix up each copy's CRC before parsing (so the decoder sees the
/// data). Without bit 6, byte 1 is the first offset and byte 2 the gap
/// to the second copy. The rest is the dump, and also the text.
pub fn check_env(data: &[u8]) {
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let size = SIZES[usize::from(setup >> 3 & 7)];
    let flags = if setup & 2 != 0 {
        FlagStyle::Boolean
    } else {
        FlagStyle::Counter
    };
    let endian = if setup & 4 != 0 {
        Endian::Big
    } else {
        Endian::Little
    };
    let (offset, offset2, dump) = if setup & 0x40 != 0 {
        let Some(head) = rest.get(..16) else {
            return;
        };
        let a = u64::from_le_bytes(head[..8].try_into().expect("8"));
        let b = u64::from_le_bytes(head[8..].try_into().expect("8"));
        (a, b, &rest[16..])
    } else {
        let Some((&a, r)) = rest.split_first() else {
            return;
        };
        let Some((&gap, r)) = r.split_first() else {
            return;
        };
        let a = u64::from(a);
        (a, a + size as u64 + u64::from(gap), r)
    };
    let layout = if setup & 1 != 0 {
        EnvLayout::redundant(offset, size, offset2, flags)
    } else {
        EnvLayout::single(offset, size)
    }
    .with_endian(endian);
    let _ = layout.to_string();
    let _ = layout.required_len();
    let mut dump = dump.to_vec();
    if setup & 0x80 != 0
        && layout.validate().is_ok()
        && layout.check_fits(dump.len() as u64).is_ok()
    {
        for o in layout.copy_offsets() {
            let o = o as usize;
            let mut copy = EnvCopy::new_checked(&mut dump[o..o + size], layout.is_redundant())
                .expect("a valid layout holds a header");
            copy.fill_crc(endian);
        }
    }
    check_dump(layout, &dump);
    check_text(&dump);
    let decoded = Environment::decode(&dump);
    let again = Environment::decode(&decoded.env.encode());
    assert_eq!(again.env, decoded.env, "decode, encode, decode changed it");
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    for c in probe_at(&dump, 0).into_iter().chain(scan(&dump, 16)) {
        let start = c.offset as usize;
        let copy = EnvCopy::new_checked(&dump[start..start + c.size], c.flagged)
            .expect("a candidate holds a header");
        assert_eq!(copy.stored_crc(c.endian), copy.computed_crc(), "{c}");
    }
}

fn check_dump(layout: EnvLayout, dump: &[u8]) {
    let Ok(image) = EnvImage::from_dump(layout, dump) else {
        return;
    };
    let sel = image.selection().expect("a parsed image has a copy in use");
    assert!(
        image.copies()[sel.copy].crc_ok(),
        "a copy with a bad CRC in use"
    );
    let env = image.environment().clone();
    // Save what was read, as U-Boot would: it reads back the same, from
    // the copy just written.
    let Ok(write) = image.plan_write(&env) else {
        return;
    };
    for p in &write.patches {
        let _ = p.to_string();
    }
    let mut after = dump.to_vec();
    write
        .apply(&mut after)
        .expect("the patches lie inside the dump");
    let again = EnvImage::from_dump(layout, &after).expect("a written image reads back");
    assert_eq!(again.environment(), &env);
    assert_eq!(
        again.selection().map(|s| s.copy),
        Some(write.target),
        "U-Boot would not use the copy just written"
    );
    assert!(diff(&env, again.environment()).is_empty());
    // And a change goes through the same way.
    let mut changed = env.clone();
    if changed.set("lmxfuzz", "x=1 y").is_ok() {
        if let Ok(w) = again.plan_write(&changed) {
            let mut twice = after.clone();
            w.apply(&mut twice)
                .expect("the patches lie inside the dump");
            let read = EnvImage::from_dump(layout, &twice).expect("a written image reads back");
            assert_eq!(read.environment(), &changed);
            assert_eq!(diff(&env, read.environment()).len(), 1);
        }
    }
}

fn check_text(text: &[u8]) {
    let Ok((env, _)) = parse_text(text) else {
        return;
    };
    // What to_text writes reads back to the same variables, except the
    // values the text form cannot hold (see `to_text`).
    if env
        .iter()
        .any(|(_, v)| v.ends_with(b"\\") || v.ends_with(b"\r"))
    {
        return;
    }
    let written = to_text(&env);
    let (again, warnings) = parse_text(&written).expect("to_text output parses");
    assert_eq!(
        again,
        env,
        "text round trip of {:?}",
        String::from_utf8_lossy(&written)
    );
    assert!(warnings.is_empty(), "{warnings:?}");
}
