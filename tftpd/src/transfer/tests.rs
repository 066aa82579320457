//! State-machine tests with literal packets and synthetic time.

use super::*;
use crate::options::{negotiate, Direction, Limits};
use crate::packet::Mode;

fn neg(opts: &[(&str, &str)], size: u64) -> Negotiated {
    let o: Vec<(String, String)> = opts
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    negotiate(
        &o,
        Mode::Octet,
        Direction::Read { size: Some(size) },
        &Limits::default(),
    )
    .unwrap()
}

fn drain(t: &mut ReadTransfer) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while t.poll_transmit(&mut buf) {
        out.push(buf.clone());
    }
    out
}

fn feed(t: &mut ReadTransfer, file: &[u8], pos: &mut usize) {
    while t.wants() > 0 {
        let n = t.wants().min(file.len() - *pos);
        let eof = *pos + n >= file.len();
        t.supply(&file[*pos..*pos + n], eof);
        *pos += n;
        if eof {
            break;
        }
    }
}

fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 3];
    v.extend_from_slice(&block.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// DATA packets of `list`'s blocks of `file` at blksize 8 (the windowed
/// tests' size), as `drain` returns them.
fn blocks8(file: &[u8], list: &[u16]) -> Vec<Vec<u8>> {
    list.iter()
        .map(|&b| data(b, &file[(b as usize - 1) * 8..b as usize * 8]))
        .collect()
}

fn ack(block: u16) -> Vec<u8> {
    let mut v = vec![0, 4];
    v.extend_from_slice(&block.to_be_bytes());
    v
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn lockstep_without_options_sends_data1_and_ends_on_short_block() {
    let t0 = Instant::now();
    let file = vec![7u8; 700];
    let mut t = ReadTransfer::new(&Negotiated::plain(), TransferConfig::default(), t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    assert_eq!(drain(&mut t), vec![data(1, &file[..512])]);
    t.handle_packet(&ack(1), t0 + ms(1));
    assert_eq!(drain(&mut t), vec![data(2, &file[512..])]);
    assert!(t.outcome().is_none());
    t.handle_packet(&ack(2), t0 + ms(2));
    assert_eq!(t.outcome(), Some(Ok(())));
    assert!(t.is_finished());
    assert_eq!(t.stats().bytes, 700);
}

#[test]
fn exact_multiple_of_blksize_ends_with_empty_block() {
    let t0 = Instant::now();
    let file = vec![1u8; 1024];
    let mut t = ReadTransfer::new(&Negotiated::plain(), TransferConfig::default(), t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    assert_eq!(drain(&mut t), vec![data(1, &file[..512])]);
    t.handle_packet(&ack(1), t0);
    assert_eq!(drain(&mut t), vec![data(2, &file[512..])]);
    t.handle_packet(&ack(2), t0);
    assert_eq!(drain(&mut t), vec![data(3, b"")]);
    t.handle_packet(&ack(3), t0);
    assert_eq!(t.outcome(), Some(Ok(())));
}

#[test]
fn empty_file_is_one_empty_block() {
    let t0 = Instant::now();
    let mut t = ReadTransfer::new(&Negotiated::plain(), TransferConfig::default(), t0);
    t.supply(&[], true);
    assert_eq!(drain(&mut t), vec![data(1, b"")]);
    t.handle_packet(&ack(1), t0);
    assert_eq!(t.outcome(), Some(Ok(())));
}

#[test]
fn oack_first_then_data_after_ack0() {
    let t0 = Instant::now();
    let n = neg(&[("blksize", "8"), ("tsize", "0")], 10);
    let mut t = ReadTransfer::new(&n, TransferConfig::default(), t0);
    t.supply(b"0123456789", true);
    assert_eq!(
        drain(&mut t),
        vec![b"\x00\x06blksize\x008\x00tsize\x0010\x00".to_vec()]
    );
    // An ACK other than 0 before the OACK is acknowledged changes nothing.
    t.handle_packet(&ack(1), t0);
    assert!(drain(&mut t).is_empty());
    t.handle_packet(&ack(0), t0);
    assert_eq!(drain(&mut t), vec![data(1, b"01234567")]);
    t.handle_packet(&ack(1), t0);
    assert_eq!(drain(&mut t), vec![data(2, b"89")]);
    t.handle_packet(&ack(2), t0);
    assert_eq!(t.outcome(), Some(Ok(())));
}

#[test]
fn duplicate_ack_in_lockstep_never_sends() {
    let t0 = Instant::now();
    let file = vec![3u8; 2000];
    let mut t = ReadTransfer::new(&Negotiated::plain(), TransferConfig::default(), t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    drain(&mut t);
    t.handle_packet(&ack(1), t0 + ms(1));
    assert_eq!(drain(&mut t).len(), 1, "block 2 sent once");
    // The ACK of block 1 arrives again (delayed duplicate): nothing is sent.
    t.handle_packet(&ack(1), t0 + ms(2));
    assert!(drain(&mut t).is_empty(), "sorcerer's apprentice");
    t.handle_packet(&ack(1), t0 + ms(3));
    assert!(drain(&mut t).is_empty());
    // Only the timer retransmits block 2.
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert_eq!(drain(&mut t), vec![data(2, &file[512..1024])]);
    assert_eq!(t.stats().retransmits, 1);
    assert_eq!(t.stats().timeouts, 1);
}

#[test]
fn windowed_sends_whole_window_and_restarts_after_gap_ack() {
    let t0 = Instant::now();
    let n = neg(&[("blksize", "8"), ("windowsize", "4")], 80);
    let file: Vec<u8> = (0..80u8).collect();
    let mut t = ReadTransfer::new(&n, TransferConfig::default(), t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    drain(&mut t); // OACK
    t.handle_packet(&ack(0), t0);
    let sent = drain(&mut t);
    assert_eq!(sent, blocks8(&file, &[1, 2, 3, 4]));
    // Block 2 was lost: the receiver re-ACKs 1. We restart at 2 at once,
    // with the burst halved (2 blocks) and ended by a clock probe (block 2
    // again), since the receiver ACKs by itself only at its window's end.
    t.handle_packet(&ack(1), t0 + ms(1));
    assert_eq!(drain(&mut t), blocks8(&file, &[2, 3, 2]));
    // The receiver answers the probe with the ACK of its last block. The
    // loss episode lasts until everything sent before it is confirmed
    // (block 4), so the burst stays at 2 once more.
    t.handle_packet(&ack(3), t0 + ms(2));
    assert_eq!(drain(&mut t), blocks8(&file, &[4, 5, 4]));
    // Then each clean burst grows by one block: 3, then the whole window.
    t.handle_packet(&ack(5), t0 + ms(3));
    assert_eq!(drain(&mut t), blocks8(&file, &[6, 7, 8, 6]));
    t.handle_packet(&ack(8), t0 + ms(4));
    assert_eq!(
        drain(&mut t),
        vec![
            data(9, &file[64..72]),
            data(10, &file[72..80]),
            data(11, b"")
        ],
        "the whole window again (up to the file's end), no probe"
    );
    t.handle_packet(&ack(11), t0 + ms(5));
    assert_eq!(t.outcome(), Some(Ok(())));
}

#[test]
fn windowed_duplicate_ack_restarts_at_most_once_per_rtt() {
    let t0 = Instant::now();
    let n = neg(&[("blksize", "8"), ("windowsize", "4")], 800);
    let file = vec![9u8; 800];
    let mut t = ReadTransfer::new(&n, TransferConfig::default(), t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    drain(&mut t);
    t.handle_packet(&ack(0), t0);
    drain(&mut t);
    // Establish an RTT of 10 ms.
    t.handle_packet(&ack(4), t0 + ms(10));
    assert_eq!(drain(&mut t).len(), 4); // 5..8 sent at t0+10
                                        // Receiver lost block 5 and says so: ACK 4 again, 1 ms later.
    t.handle_packet(&ack(4), t0 + ms(11));
    assert!(drain(&mut t).is_empty(), "too soon: 5 was sent 1 ms ago");
    // After an RTT it is a real request to resend: from block 5, in a
    // halved burst ended by a clock probe.
    t.handle_packet(&ack(4), t0 + ms(25));
    assert_eq!(drain(&mut t), blocks8(&file, &[5, 6, 5]));
    // A duplicate of that ACK right after does not double the traffic.
    t.handle_packet(&ack(4), t0 + ms(26));
    assert!(drain(&mut t).is_empty());
}

#[test]
fn block_numbers_wrap_to_zero() {
    let t0 = Instant::now();
    let n = neg(&[("blksize", "8")], 0);
    let blocks = 65536 + 10;
    let file = vec![5u8; blocks * 8 - 3];
    let mut t = ReadTransfer::new(&n, TransferConfig::default(), t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    drain(&mut t);
    t.handle_packet(&ack(0), t0);
    let mut buf = Vec::new();
    let mut count = 0u64;
    loop {
        feed(&mut t, &file, &mut pos);
        if !t.poll_transmit(&mut buf) {
            break;
        }
        count += 1;
        let w = u16::from_be_bytes([buf[2], buf[3]]);
        assert_eq!(w as u64, count & 0xffff);
        if count == 65536 {
            assert_eq!(w, 0, "block after 65535 is 0");
        }
        t.handle_packet(&ack(w), t0);
        assert!(t.buffered() <= READ_CHUNK + 8);
    }
    assert_eq!(count, blocks as u64);
    assert_eq!(t.outcome(), Some(Ok(())));
    assert_eq!(t.stats().bytes, file.len() as u64);
}

#[test]
fn gives_up_after_retries_and_time() {
    let t0 = Instant::now();
    let cfg = TransferConfig {
        max_retries: 3,
        give_up_after: Duration::from_secs(2),
        ..TransferConfig::default()
    };
    let mut t = ReadTransfer::new(&Negotiated::plain(), cfg, t0);
    t.supply(&[1; 100], true);
    drain(&mut t);
    let mut sends = 0;
    let mut now = t0;
    while let Some(d) = t.poll_timeout() {
        assert!(d >= now);
        now = d;
        t.handle_timeout(now);
        sends += drain(&mut t).len();
        assert!(sends < 50, "bounded");
    }
    match t.outcome() {
        Some(Err(TransferError::Timeout { block, retries, .. })) => {
            assert_eq!(block, 1);
            assert!(retries >= 3);
        }
        o => panic!("{o:?}"),
    }
    assert!(now - t0 >= Duration::from_secs(2));
    assert!(now - t0 <= Duration::from_secs(4));
}

#[test]
fn client_error_ends_transfer_silently() {
    let t0 = Instant::now();
    let mut t = ReadTransfer::new(&Negotiated::plain(), TransferConfig::default(), t0);
    t.supply(&[1; 100], true);
    drain(&mut t);
    t.handle_packet(b"\x00\x05\x00\x00cancelled\x00", t0);
    assert!(drain(&mut t).is_empty());
    assert!(matches!(
        t.outcome(),
        Some(Err(TransferError::Peer { code: 0, .. }))
    ));
}

#[test]
fn garbage_from_client_gets_error4() {
    let t0 = Instant::now();
    let mut t = ReadTransfer::new(&Negotiated::plain(), TransferConfig::default(), t0);
    t.supply(&[1; 100], true);
    drain(&mut t);
    t.handle_packet(b"\x00\x09zz", t0);
    let out = drain(&mut t);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..4], b"\x00\x05\x00\x04");
    assert!(t.is_finished());
}

#[test]
fn data_during_read_is_illegal() {
    let t0 = Instant::now();
    let mut t = ReadTransfer::new(&Negotiated::plain(), TransferConfig::default(), t0);
    t.supply(&[1; 100], true);
    drain(&mut t);
    t.handle_packet(&data(1, b"x"), t0);
    let out = drain(&mut t);
    assert_eq!(&out[0][..4], b"\x00\x05\x00\x04");
}

#[test]
fn oack_round_trip_is_the_first_rtt_sample() {
    // U-Boot answers the OACK in a fraction of a millisecond; when DATA 1
    // is then lost, the timer must not wait the initial second.
    let t0 = Instant::now();
    let n = neg(&[("blksize", "512")], 4096);
    let mut t = ReadTransfer::new(&n, TransferConfig::default(), t0);
    t.supply(&[7u8; 4096], true);
    assert_eq!(drain(&mut t).len(), 1, "the OACK");
    let now = t0 + Duration::from_micros(300);
    t.handle_packet(&ack(0), now);
    assert_eq!(drain(&mut t).len(), 1, "DATA 1 (lost)");
    let d = t.poll_timeout().unwrap();
    assert_eq!(
        d - now,
        ms(2),
        "the timer's floor, from the OACK's round trip"
    );
    // A resent OACK gives no sample (Karn): its ACK may answer either copy.
    let mut t = ReadTransfer::new(&n, TransferConfig::default(), t0);
    t.supply(&[7u8; 4096], true);
    drain(&mut t);
    let first = t.poll_timeout().unwrap();
    assert_eq!(first - t0, ms(1000), "initial timeout before any sample");
    t.handle_timeout(first);
    assert_eq!(drain(&mut t).len(), 1, "the OACK again");
    let now = first + Duration::from_micros(300);
    t.handle_packet(&ack(0), now);
    drain(&mut t);
    assert_eq!(t.poll_timeout().unwrap() - now, ms(1000));
}

#[test]
fn timeout_uses_measured_rtt() {
    let t0 = Instant::now();
    let mut t = ReadTransfer::new(&Negotiated::plain(), TransferConfig::default(), t0);
    t.supply(&vec![0u8; 512 * 20], true);
    let mut now = t0;
    for b in 1..=10u16 {
        drain(&mut t);
        now += ms(2);
        t.handle_packet(&ack(b), now);
    }
    drain(&mut t);
    let d = t.poll_timeout().unwrap();
    assert!(
        d - now < ms(20),
        "adaptive timer, not seconds: {:?}",
        d - now
    );
}

#[test]
fn client_timeout_option_caps_the_timer() {
    let t0 = Instant::now();
    let n = neg(&[("timeout", "1")], 100);
    let mut t = ReadTransfer::new(&n, TransferConfig::default(), t0);
    t.supply(&[0; 100], true);
    drain(&mut t);
    let d = t.poll_timeout().unwrap();
    assert!(d - t0 <= Duration::from_secs(1));
}

// --------------------------- write transfers ------------------------------

fn wdrain(t: &mut WriteTransfer) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while t.poll_transmit(&mut buf) {
        out.push(buf.clone());
    }
    out
}

fn wneg(opts: &[(&str, &str)]) -> Negotiated {
    let o: Vec<(String, String)> = opts
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    negotiate(&o, Mode::Octet, Direction::Write, &Limits::default()).unwrap()
}

#[test]
fn write_lockstep_acks_each_block_and_completes() {
    let t0 = Instant::now();
    let mut t = WriteTransfer::new(&Negotiated::plain(), 1 << 20, TransferConfig::default(), t0);
    assert_eq!(wdrain(&mut t), vec![ack(0)]);
    let d1 = data(1, &[1u8; 512]);
    assert_eq!(t.handle_packet(&d1, t0), Received::Store(4..516));
    assert_eq!(wdrain(&mut t), vec![ack(1)]);
    // Duplicate block 1 (our ACK was lost): re-ACK, store nothing.
    assert_eq!(t.handle_packet(&d1, t0), Received::Nothing);
    assert_eq!(wdrain(&mut t), vec![ack(1)]);
    let d2 = data(2, b"end");
    assert_eq!(t.handle_packet(&d2, t0), Received::Store(4..7));
    assert_eq!(wdrain(&mut t), vec![ack(2)]);
    assert!(t.is_complete());
    assert_eq!(t.outcome(), Some(Ok(())));
    assert!(!t.is_finished(), "dallying");
    // Final DATA repeated while dallying: ACK again.
    t.handle_packet(&d2, t0 + ms(5));
    assert_eq!(wdrain(&mut t), vec![ack(2)]);
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert!(t.is_finished());
    assert_eq!(t.stats().bytes, 515);
}

#[test]
fn write_with_oack_and_window() {
    let t0 = Instant::now();
    let n = wneg(&[("blksize", "8"), ("windowsize", "2"), ("tsize", "20")]);
    let mut t = WriteTransfer::new(&n, 100, TransferConfig::default(), t0);
    assert_eq!(
        wdrain(&mut t),
        vec![b"\x00\x06blksize\x008\x00windowsize\x002\x00tsize\x0020\x00".to_vec()]
    );
    assert!(matches!(
        t.handle_packet(&data(1, &[0; 8]), t0),
        Received::Store(_)
    ));
    assert!(wdrain(&mut t).is_empty(), "ACK only at window end");
    assert!(matches!(
        t.handle_packet(&data(2, &[0; 8]), t0),
        Received::Store(_)
    ));
    assert_eq!(wdrain(&mut t), vec![ack(2)]);
    // Block 3 lost, 4 arrives: one gap ACK for 2, not one per packet.
    assert_eq!(t.handle_packet(&data(4, &[0; 8]), t0), Received::Nothing);
    assert_eq!(wdrain(&mut t), vec![ack(2)]);
    assert_eq!(t.handle_packet(&data(5, &[0; 8]), t0), Received::Nothing);
    assert!(wdrain(&mut t).is_empty());
    assert!(matches!(
        t.handle_packet(&data(3, &[0; 8]), t0),
        Received::Store(_)
    ));
    assert!(matches!(
        t.handle_packet(&data(4, b"x"), t0),
        Received::Store(_)
    ));
    assert_eq!(wdrain(&mut t), vec![ack(4)]);
    assert!(t.is_complete());
}

#[test]
fn write_over_cap_is_refused_with_error3() {
    let t0 = Instant::now();
    let mut t = WriteTransfer::new(&Negotiated::plain(), 600, TransferConfig::default(), t0);
    wdrain(&mut t);
    assert!(matches!(
        t.handle_packet(&data(1, &[0; 512]), t0),
        Received::Store(_)
    ));
    wdrain(&mut t);
    assert_eq!(t.handle_packet(&data(2, &[0; 512]), t0), Received::Nothing);
    let out = wdrain(&mut t);
    assert_eq!(&out[0][..4], b"\x00\x05\x00\x03");
    assert!(t.outcome().unwrap().is_err());
    assert!(!t.is_complete());
}

#[test]
fn write_oversized_block_is_illegal() {
    let t0 = Instant::now();
    let n = wneg(&[("blksize", "8")]);
    let mut t = WriteTransfer::new(&n, 600, TransferConfig::default(), t0);
    wdrain(&mut t);
    assert_eq!(t.handle_packet(&data(1, &[0; 9]), t0), Received::Nothing);
    assert_eq!(&wdrain(&mut t)[0][..4], b"\x00\x05\x00\x04");
}

#[test]
fn write_retransmits_ack_on_timeout_then_gives_up() {
    let t0 = Instant::now();
    let cfg = TransferConfig {
        max_retries: 2,
        give_up_after: Duration::from_secs(1),
        ..TransferConfig::default()
    };
    let mut t = WriteTransfer::new(&Negotiated::plain(), 1000, cfg, t0);
    assert_eq!(wdrain(&mut t), vec![ack(0)]);
    let mut acks = 0;
    while let Some(d) = t.poll_timeout() {
        t.handle_timeout(d);
        acks += wdrain(&mut t).len();
        assert!(acks < 30);
    }
    assert!(acks >= 2);
    assert!(matches!(
        t.outcome(),
        Some(Err(TransferError::Timeout { block: 1, .. }))
    ));
}

#[test]
fn lockstep_probe_after_second_timeout_breaks_the_lost_ack_deadlock() {
    let t0 = Instant::now();
    let file = vec![4u8; 512 * 5];
    let mut t = ReadTransfer::new(&Negotiated::plain(), TransferConfig::default(), t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    drain(&mut t);
    t.handle_packet(&ack(1), t0 + ms(1));
    assert_eq!(drain(&mut t).len(), 1); // block 2
                                        // The client's ACK 2 and its one extra ACK are lost.
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert_eq!(
        drain(&mut t),
        vec![data(2, &file[512..1024])],
        "first timeout: block 2 only"
    );
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert_eq!(
        drain(&mut t),
        vec![data(2, &file[512..1024]), data(3, &file[1024..1536])],
        "second timeout: block 2 and the next one"
    );
    // The client had block 2; it takes 3 and ACKs it.
    t.handle_packet(&ack(3), d + ms(1));
    assert_eq!(
        drain(&mut t),
        vec![data(4, &file[1536..2048])],
        "back to lock-step"
    );
}

#[test]
fn windowed_timeouts_cycle_head_block_next_block_and_whole_round() {
    let t0 = Instant::now();
    let n = neg(&[("blksize", "8"), ("windowsize", "4")], 80);
    let file: Vec<u8> = (0..80u8).collect();
    let blk = |b: u16| data(b, &file[(b as usize - 1) * 8..b as usize * 8]);
    let mut t = ReadTransfer::new(&n, TransferConfig::default(), t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    drain(&mut t);
    t.handle_packet(&ack(0), t0);
    assert_eq!(drain(&mut t).len(), 4);
    // First timeout: only the head block (a spurious timeout must not queue
    // a second window behind the first in a small receive ring).
    let d = t.poll_timeout().unwrap();
    assert!(d - t0 >= ms(4), "windows wait at least 4 ms: {:?}", d - t0);
    t.handle_timeout(d);
    assert_eq!(drain(&mut t), vec![blk(1)]);
    // Second: the block after everything sent, then the head again.
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert_eq!(drain(&mut t), vec![blk(5), blk(1)]);
    // Third: everything from the head to one block past the window, ended
    // by a clock probe.
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert_eq!(
        drain(&mut t),
        vec![blk(1), blk(2), blk(3), blk(4), blk(5), blk(1)]
    );
    // Then the cycle starts again.
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert_eq!(drain(&mut t), vec![blk(1)]);
    // The receiver had 1..5 and says so: a whole window follows (timeouts
    // alone do not shrink the burst; they may be spurious).
    t.handle_packet(&ack(5), d + ms(1));
    assert_eq!(drain(&mut t), vec![blk(6), blk(7), blk(8), blk(9)]);
    assert_eq!(t.stats().timeouts, 4);
}

fn budgeted(frames: u16, w: u16, size: u8, t0: Instant) -> (ReadTransfer, Vec<u8>) {
    let n = neg(
        &[("blksize", "8"), ("windowsize", &w.to_string())],
        size as u64,
    );
    let file: Vec<u8> = (0..size).collect();
    let cfg = TransferConfig {
        rx_frames: Some(frames),
        ..TransferConfig::default()
    };
    let mut t = ReadTransfer::new(&n, cfg, t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    drain(&mut t);
    t.handle_packet(&ack(0), t0);
    (t, file)
}

#[test]
fn receive_budget_grants_windows_of_half_the_budget() {
    let cfg = |f| TransferConfig {
        rx_frames: Some(f),
        ..TransferConfig::default()
    };
    // U-Boot's virtio-net ring: 32 frames, 30 packets of budget, window 15.
    assert_eq!(cfg(32).rx_budget(), Some(30));
    assert_eq!(cfg(32).max_window(), Some(15));
    assert_eq!(cfg(3).max_window(), Some(1));
    let none = TransferConfig {
        rx_frames: None,
        ..TransferConfig::default()
    };
    assert_eq!(none.rx_budget(), None);
    assert_eq!(none.max_window(), None);
}

#[test]
fn silent_client_never_gets_more_than_the_budget_until_the_drain_wait() {
    let t0 = Instant::now();
    // 8 frames: a budget of 6 packets; window 5.
    let (mut t, _file) = budgeted(8, 5, 200, t0);
    assert_eq!(drain(&mut t).len(), 5);
    // One measured round trip of 1 ms, then the client goes silent.
    let start = t0 + ms(1);
    t.handle_packet(&ack(5), start);
    let mut sent = drain(&mut t).len();
    assert_eq!(sent, 5);
    // Timeouts come and go, each may resend, but never past the budget
    // while the ring may still be full.
    let mut now = start;
    while sent <= 6 {
        let d = t.poll_timeout().expect("the transfer went quiet for good");
        assert!(d < start + DRAIN_WAIT_MAX, "no drain wait ended");
        now = d;
        t.handle_timeout(now);
        sent += drain(&mut t).len();
        if now < start + DRAIN_WAIT_MIN {
            assert!(sent <= 6, "{sent} packets sent into a ring of 8 frames");
        }
    }
    assert!(now >= start + DRAIN_WAIT_MIN);
    assert_eq!(t.stats().drain_waits, 1);
}

#[test]
fn ack_frees_the_budget_for_what_was_sent_before_the_acked_block() {
    let t0 = Instant::now();
    let (mut t, file) = budgeted(8, 5, 200, t0);
    assert_eq!(drain(&mut t).len(), 5); // blocks 1..=5
                                        // Window end: everything sent before block 5 and block 5 itself are out
                                        // of the ring, so a whole window goes out at once.
    t.handle_packet(&ack(5), t0 + ms(1));
    let sent = drain(&mut t);
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[0], data(6, &file[40..48]));
}

#[test]
fn budget_cut_recovery_burst_ends_with_a_clock_probe() {
    let t0 = Instant::now();
    let (mut t, file) = budgeted(8, 5, 200, t0);
    assert_eq!(drain(&mut t).len(), 5); // blocks 1..=5, seq 1..=5
                                        // Block 3 was lost; the client reports 2 when it meets block 4. Only
                                        // blocks up to 2 are known to have left its ring, so blocks 4 and 5 may
                                        // still be there: 6 - 3 = 3 packets of budget left. The client will not
                                        // answer before block 2 + 5 = 7, so the last of them is spent on a
                                        // probe: block 3 again, which it will take as out of order once it has
                                        // 3 and 4 and answer at once.
    t.handle_packet(&ack(2), t0 + ms(1));
    let sent = drain(&mut t);
    assert_eq!(sent, blocks8(&file, &[3, 4, 3]));
    assert_eq!(t.stats().probes, 1);
    // The probe's answer: the client holds 4.
    t.handle_packet(&ack(4), t0 + ms(2));
    // Which copy of block 4 did it take? The first one (sequence 4) may
    // have come after everything known consumed (up to sequence 2), so
    // sequences 5..=8 may still be queued: room for two more, the second a
    // probe again.
    let sent = drain(&mut t);
    assert_eq!(sent, blocks8(&file, &[5, 5]));
    assert_eq!(t.stats().probes, 2);
    // A repeated ACK of 4 (the client met something other than 5 after
    // taking 4): the packet after the copy of 4 it took is out too.
    t.handle_packet(&ack(4), t0 + ms(3));
    assert_eq!(t.stats().drain_waits, 0);
}

// ------------------------- half-open transfers ----------------------------

fn half_open_cfg() -> TransferConfig {
    TransferConfig {
        half_open: Some(DEFAULT_HALF_OPEN),
        ..TransferConfig::default()
    }
}

#[test]
fn no_read_ahead_before_the_client_answers() {
    let t0 = Instant::now();
    // With options: nothing at all before the OACK is acknowledged.
    let n = neg(&[("blksize", "1024"), ("windowsize", "16")], 1 << 20);
    let mut t = ReadTransfer::new(&n, half_open_cfg(), t0);
    assert_eq!(t.wants(), 0, "no file data behind an OACK");
    assert_eq!(drain(&mut t).len(), 1, "the OACK needs none");
    t.handle_packet(&ack(0), t0 + ms(1));
    assert!(t.answered());
    assert!(
        t.wants() >= 16 * 1024,
        "the window once the client answered"
    );
    // Without options: block 1 only.
    let file = vec![5u8; 4000];
    let mut t = ReadTransfer::new(&Negotiated::plain(), half_open_cfg(), t0);
    assert_eq!(t.wants(), 512);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    assert_eq!(t.buffered(), 512);
    assert_eq!(t.buffer_capacity(), 512, "no spare capacity either");
    assert_eq!(drain(&mut t), vec![data(1, &file[..512])]);
    t.handle_packet(&ack(1), t0 + ms(1));
    feed(&mut t, &file, &mut pos);
    assert_eq!(drain(&mut t), vec![data(2, &file[512..1024])]);
    assert!(t.buffer_capacity() <= t.buffer_limit());
}

#[test]
fn silent_client_is_dropped_after_the_half_open_limit() {
    let t0 = Instant::now();
    let n = neg(&[("blksize", "1468"), ("windowsize", "8")], 100_000);
    let mut t = ReadTransfer::new(&n, half_open_cfg(), t0);
    let mut sends = vec![];
    let mut now = t0;
    sends.extend(drain(&mut t).into_iter().map(|_| now - t0));
    while let Some(d) = t.poll_timeout() {
        now = d;
        t.handle_timeout(now);
        sends.extend(drain(&mut t).iter().filter(|p| p[1] == 6).map(|_| now - t0));
    }
    // The OACK at 0, 250, 750 and 1750 ms (its own timer, doubling), then
    // dropped at 2 s with an ERROR, long before the 30 s give-up.
    assert_eq!(sends, vec![ms(0), ms(250), ms(750), ms(1750)]);
    assert_eq!(now - t0, DEFAULT_HALF_OPEN);
    match t.outcome() {
        Some(Err(TransferError::HalfOpen { sends, elapsed })) => {
            assert_eq!(sends, 4);
            assert_eq!(elapsed, DEFAULT_HALF_OPEN);
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(t.stats().bytes, 0);
}

#[test]
fn a_late_first_answer_keeps_the_transfer_and_the_normal_schedule() {
    let t0 = Instant::now();
    let file = vec![6u8; 2000];
    let mut t = ReadTransfer::new(&Negotiated::plain(), half_open_cfg(), t0);
    let mut pos = 0;
    feed(&mut t, &file, &mut pos);
    drain(&mut t);
    // DATA 1 and its first repeat are lost; the client answers the second.
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert_eq!(drain(&mut t).len(), 1);
    let d = t.poll_timeout().unwrap();
    assert_eq!(d - t0, ms(750));
    t.handle_timeout(d);
    assert_eq!(drain(&mut t).len(), 1);
    t.handle_packet(&ack(1), d + ms(1));
    feed(&mut t, &file, &mut pos);
    assert_eq!(drain(&mut t), vec![data(2, &file[512..1024])]);
    // No half-open deadline any more: silence now follows the give-up
    // schedule of a transfer that made progress (the limit was 2 s).
    let mut now = d;
    while let Some(next) = t.poll_timeout() {
        now = next;
        t.handle_timeout(now);
        drain(&mut t);
    }
    assert!(now - t0 >= Duration::from_secs(30), "{:?}", now - t0);
    assert!(matches!(
        t.outcome(),
        Some(Err(TransferError::Timeout { block: 2, .. }))
    ));
}

#[test]
fn half_open_limit_stretches_with_a_slower_timer() {
    // A 3 s timer floor (the raw-client tests' setting): the first packet
    // still goes out twice and its repeat gets a whole interval.
    let cfg = TransferConfig {
        rto: crate::rto::RtoConfig {
            initial: Duration::from_secs(3),
            min: Duration::from_secs(3),
            max: Duration::from_secs(3),
        },
        ..half_open_cfg()
    };
    assert_eq!(cfg.half_open_limit(), Some(Duration::from_secs(6)));
    assert_eq!(half_open_cfg().half_open_limit(), Some(DEFAULT_HALF_OPEN));
    assert_eq!(TransferConfig::default().half_open_limit(), None);
}

#[test]
fn silent_uploader_is_dropped_after_the_half_open_limit() {
    let t0 = Instant::now();
    let mut t = WriteTransfer::new(&Negotiated::plain(), 1 << 20, half_open_cfg(), t0);
    assert_eq!(wdrain(&mut t), vec![ack(0)]);
    let mut acks = 1;
    let mut now = t0;
    while let Some(d) = t.poll_timeout() {
        now = d;
        t.handle_timeout(now);
        acks += wdrain(&mut t).iter().filter(|p| p[1] == 4).count();
    }
    assert_eq!(acks, 4);
    assert_eq!(now - t0, DEFAULT_HALF_OPEN);
    assert!(matches!(
        t.outcome(),
        Some(Err(TransferError::HalfOpen { sends: 4, .. }))
    ));
    // One that sends its first block in time is kept.
    let mut t = WriteTransfer::new(&Negotiated::plain(), 1 << 20, half_open_cfg(), t0);
    wdrain(&mut t);
    t.handle_packet(&data(1, &[0; 512]), t0 + ms(1900));
    assert!(t.answered());
    let d = t.poll_timeout().unwrap();
    t.handle_timeout(d);
    assert!(t.outcome().is_none(), "still running after the limit");
}

#[test]
fn window_buffer_bounds_what_is_buffered_and_reserved() {
    let t0 = Instant::now();
    assert_eq!(window_buffer(65464, 64), 66 * 65464 + READ_CHUNK);
    assert_eq!(window_buffer(1468, 15), 17 * 1468 + READ_CHUNK);
    let n = neg(&[("blksize", "8"), ("windowsize", "4")], 4000);
    let file: Vec<u8> = (0..4000).map(|i| i as u8).collect();
    let mut t = ReadTransfer::new(&n, half_open_cfg(), t0);
    let mut pos = 0;
    drain(&mut t);
    t.handle_packet(&ack(0), t0);
    // A receiver that takes blocks in order, losing the second packet of
    // every third burst, and ACKs what it holds after each burst.
    let mut have = 0u16;
    for round in 0..2000u64 {
        feed(&mut t, &file, &mut pos);
        assert!(t.buffered() <= t.buffer_limit());
        assert_eq!(t.buffer_capacity(), t.buffer_limit(), "grown once, exactly");
        let sent = drain(&mut t);
        if sent.is_empty() {
            let d = t.poll_timeout().unwrap();
            t.handle_timeout(d);
            continue;
        }
        for (i, p) in sent.iter().enumerate() {
            let b = u16::from_be_bytes([p[2], p[3]]);
            if b == have + 1 && !(round % 3 == 0 && i == 1) {
                have = b;
            }
        }
        t.handle_packet(&ack(have), t0 + ms(round));
        if t.is_finished() {
            break;
        }
    }
    assert_eq!(t.outcome(), Some(Ok(())));
}
