//! Invariant checks shared by the cargo-fuzz targets (`fuzz/`) and the
//! seed-corpus test, so the fuzzed properties are also exercised by
//! `cargo test`. Not part of the supported API.

use std::time::{Duration, Instant};

use crate::options::{negotiate, Direction, Limits, Negotiated};
use crate::packet::Packet;
use crate::transfer::{
    ReadTransfer, Received, TransferConfig, WriteTransfer, DEFAULT_HALF_OPEN, READ_CHUNK,
};

/// Parses `data`; whatever parses must re-emit to bytes that parse to the
/// same packet, and requests must negotiate without panicking.
pub fn check_packet(data: &[u8]) {
    let Ok(p) = Packet::parse(data) else {
        return;
    };
    let wire = p.to_bytes();
    let again = Packet::parse(&wire).expect("emitted packet must parse");
    assert_eq!(again, p, "round trip changed the packet");
    if let Packet::Rrq(r) | Packet::Wrq(r) = &p {
        let _ = negotiate(
            &r.options,
            r.mode,
            Direction::Read { size: Some(12345) },
            &Limits::default(),
        );
        let _ = negotiate(&r.options, r.mode, Direction::Write, &Limits::default());
        let _ = crate::policy::validate_name(&r.filename);
    }
}

/// Drives a read or write transfer with records from `data`: byte 0 picks
/// the setup (bit 5: the servers' half-open treatment), then records `[0, len, bytes…]` (a datagram) or `[1, ms]`
/// (time passes, the timer fires if due).
pub fn check_transfers(data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let blksize = 8u16 << (setup & 3);
    let window = 1 + u16::from((setup >> 2) & 7);
    let n = Negotiated {
        blksize,
        windowsize: window,
        timeout: None,
        tsize: None,
        oack: if setup & 0x40 != 0 {
            vec![("blksize".into(), blksize.to_string())]
        } else {
            Vec::new()
        },
    };
    let cfg = TransferConfig {
        half_open: (setup & 0x20 != 0).then_some(DEFAULT_HALF_OPEN),
        ..TransferConfig::default()
    };
    let t0 = Instant::now();
    let mut now = t0;
    let file: Vec<u8> = (0..(blksize as usize * 20 + 3)).map(|i| i as u8).collect();
    let mut out = Vec::new();
    if setup & 0x80 == 0 {
        let mut t = ReadTransfer::new(&n, cfg, now);
        let mut pos = 0usize;
        let step = |t: &mut ReadTransfer, pos: &mut usize, out: &mut Vec<u8>| {
            while t.wants() > 0 && *pos <= file.len() {
                let k = t.wants().min(file.len() - *pos);
                let eof = *pos + k == file.len();
                t.supply(&file[*pos..*pos + k], eof);
                *pos += k.max(1);
            }
            let mut sent = 0;
            while t.poll_transmit(out) {
                sent += 1;
                // A recovery round resends at most two windows and a block.
                assert!(
                    sent <= 2 * window as usize + 2,
                    "burst larger than two windows"
                );
            }
            assert!(t.buffered() <= (2 * window as usize + 2) * blksize as usize + READ_CHUNK);
            // What the server reserves from its memory budget holds.
            assert!(t.buffered() <= t.buffer_limit());
            assert!(t.buffer_capacity() <= t.buffer_limit());
            if cfg.half_open.is_some() && !t.answered() {
                assert!(
                    t.buffered() <= blksize as usize,
                    "read ahead for a silent client"
                );
            }
        };
        step(&mut t, &mut pos, &mut out);
        while let Some((&tag, r)) = rest.split_first() {
            rest = r;
            if tag & 1 == 0 {
                let Some((&len, r)) = rest.split_first() else {
                    break;
                };
                let len = (len as usize).min(r.len());
                let (pkt, r) = r.split_at(len);
                rest = r;
                t.handle_packet(pkt, now);
            } else {
                let Some((&ms, r)) = rest.split_first() else {
                    break;
                };
                rest = r;
                now += Duration::from_millis(u64::from(ms) * 20);
                t.handle_timeout(now);
            }
            step(&mut t, &mut pos, &mut out);
        }
    } else {
        let mut t = WriteTransfer::new(&n, 4096, cfg, now);
        let mut stored = 0usize;
        while let Some((&tag, r)) = rest.split_first() {
            rest = r;
            if tag & 1 == 0 {
                let Some((&len, r)) = rest.split_first() else {
                    break;
                };
                let len = (len as usize).min(r.len());
                let (pkt, r) = r.split_at(len);
                rest = r;
                if let Received::Store(range) = t.handle_packet(pkt, now) {
                    assert!(range.end <= pkt.len());
                    stored += range.len();
                    assert!(stored <= 4096, "stored past the upload cap");
                }
            } else {
                let Some((&ms, r)) = rest.split_first() else {
                    break;
                };
                rest = r;
                now += Duration::from_millis(u64::from(ms) * 20);
                t.handle_timeout(now);
            }
            let mut sent = 0;
            while t.poll_transmit(&mut out) {
                sent += 1;
                assert!(sent <= 2);
            }
        }
    }
}
