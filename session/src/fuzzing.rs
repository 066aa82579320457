//! Invariant checks shared by the cargo-fuzz target `replies` (`fuzz/`)
//! and the seed-corpus test (`tests/fuzz_corpus.rs`), so the fuzzed
//! properties are also exercised by `cargo test`. Not part of the
//! supported API.
//!
//! [`check_replies`] reads any bytes as the output of a U-Boot command
//! through every parser lmx applies to such output: `printenv` listings
//! and lookups, `saveenv`'s verdict, `crc32`'s `==>` line, `tftpboot`'s
//! `Bytes transferred`, `${filesize}`, `help` listings, NAND bad-block
//! reports, `md.b` dumps, the console after a boot or reset command
//! ([`BootWatch`], the bare prompt). Each must not panic, and where lmx
//! prints what it parsed (a listing, a lookup, a CRC line), printing it
//! U-Boot's way and parsing again gives the same value.

use lmx_builder::caps;
use lmx_console::printenv::{
    judge_readback, judge_saveenv, parse_listing, parse_lookup, Listing, Lookup, ReadBack,
};
use lmx_console::Dialect;
use lmx_flasher::output;

use crate::boot::bytes_transferred;
use crate::flash::at_bare_prompt;
use crate::watch::{failures, BootWatch, Phase};

/// Byte 0 picks a few knobs (the `md.b` length, the boot watch's chunk
/// size); the rest is the command output.
pub fn check_replies(data: &[u8]) {
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    check_printenv(&text);
    check_numbers(&text);
    let _ = judge_saveenv(&text, None);
    let _ = judge_saveenv(&text, Some(1));
    if let Ok(cmds) = caps::Commands::from_help(&text) {
        assert!(cmds.names().next().is_some());
        let _ = (cmds.lzma(), cmds.lzmadec());
    }
    let _ = caps::unknown_command(&text, "crc32");
    let _ = output::unknown_command(&text);
    let bad = output::bad_blocks(&text);
    let mut unique = bad.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), bad.len(), "a bad block reported twice");
    let len = u64::from(setup) * 3;
    if let Ok(bytes) = output::md_dump(&text, 0x40_0000, len) {
        assert_eq!(bytes.len() as u64, len);
    }
    check_console(setup, rest, &text);
}

/// A listing printed U-Boot's way: CR LF line ends, the trailer after an
/// empty line.
fn render(l: &Listing) -> String {
    let mut out = String::new();
    for o in &l.other {
        out.push_str(o);
        out.push_str("\r\n");
    }
    for (n, v) in &l.vars {
        out.push_str(&format!("{n}={}\r\n", v.replace('\n', "\r\n")));
    }
    if let Some((used, total)) = l.size {
        out.push_str(&format!("\r\nEnvironment size: {used}/{total} bytes"));
    }
    out
}

fn check_printenv(text: &str) {
    let listing = parse_listing(text);
    for (n, v) in &listing.vars {
        assert!(!n.is_empty() && !n.contains('='), "name {n:?}");
        // `printenv NAME` answered with this value reads back as it.
        if !v.contains('\r') {
            let answer = format!("{n}={}", v.replace('\n', "\r\n"));
            assert_eq!(parse_lookup(n, &answer, Some(0)), Lookup::Set(v.clone()));
            assert_eq!(judge_readback(n, v, &answer, None), ReadBack::Same);
        }
    }
    for &i in &listing.out_of_order {
        assert!(i > 0 && i < listing.vars.len());
    }
    let again = parse_listing(&render(&listing));
    assert_eq!(again, listing, "a listing printed again parses differently");
    // Merging every out-of-order entry, last first as printenv_all does,
    // folds each into the value before it.
    let mut merged = listing.clone();
    while let Some(&i) = merged.out_of_order.last() {
        let before = merged.vars.len();
        let (name, value) = merged.vars[i].clone();
        merged.merge_into_previous(i);
        assert_eq!(merged.vars.len(), before - 1);
        assert!(merged.vars[i - 1].1.ends_with(&format!("\n{name}={value}")));
    }
    assert_eq!(
        merged.vars.len(),
        listing.vars.len() - listing.out_of_order.len()
    );
    for name in ["filesize", "bootargs", ""] {
        match parse_lookup(name, text, Some(0)) {
            Lookup::Set(_) => assert!(text.contains(&format!("{name}="))),
            Lookup::NotSet | Lookup::Unexpected => {}
        }
        let _ = parse_lookup(name, text, None);
        let _ = judge_readback(name, "1", text, Some(1));
    }
}

fn check_numbers(text: &str) {
    if let Some(crc) = output::crc32(text) {
        // The last `==>` value wins, as U-Boot prints it last.
        let line = format!("{text}\r\ncrc32 for 40000000 ... 40000fff ==> {crc:08x}");
        assert_eq!(output::crc32(&line), Some(crc));
    }
    if let Some(n) = bytes_transferred(text) {
        let line = format!("{text}\nBytes transferred = {n} ({n:x} hex)");
        assert_eq!(bytes_transferred(&line), Some(n));
    }
    // `${filesize}` as the runners read it.
    if let Lookup::Set(v) = parse_lookup("filesize", text, Some(0)) {
        if let Ok(n) = u64::from_str_radix(v.trim(), 16) {
            assert_eq!(
                parse_lookup("filesize", &format!("filesize={n:x}"), Some(0)),
                Lookup::Set(format!("{n:x}"))
            );
        }
    }
}

fn check_console(setup: u8, bytes: &[u8], text: &str) {
    let chunk = usize::from(setup % 16) + 1;
    let mut w = BootWatch::new();
    for c in bytes.chunks(chunk) {
        w.feed(c);
    }
    assert!(w.tail().0.len() <= 12);
    let mainline = Dialect::mainline();
    let fail = failures(&mainline, Phase::Booting);
    let _ = failures(&mainline, Phase::AfterReset);
    for from in [0, 1, 3, text.len() / 2, text.len(), usize::MAX] {
        if let Some(crate::watch::Seen::Want(wt)) =
            w.check(&["Run /init", "lmx-userland-ready"], &fail, from)
        {
            assert!(w.seen(&wt));
        }
    }
    for t in ["U-Boot", "=> ", "\n", "Kernel panic"] {
        if let Some(line) = w.line_with(t) {
            assert!(!line.contains('\n'));
        }
    }
    let _ = w.partial();
    for need_banner in [false, true] {
        let _ = at_bare_prompt(&mainline, text, need_banner);
    }
}
