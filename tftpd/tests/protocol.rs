//! Protocol and policy behaviour over real sockets, driven by a raw client
//! so every packet is checked exactly.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::time::Duration;

use common::*;
use lmx_tftpd::policy::{parse_allow, PolicySpec};
use lmx_tftpd::ServerConfig;

#[test]
fn traversal_and_symlink_escapes_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"XYZZY-CONTENT").unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    std::fs::write(root.path().join("sub/ok"), b"ok").unwrap();
    symlink(outside.path().join("secret"), root.path().join("link-out")).unwrap();
    symlink(outside.path(), root.path().join("dir-out")).unwrap();
    symlink("../../../../../../etc/passwd", root.path().join("rel-out")).unwrap();
    symlink("/etc/passwd", root.path().join("sub/abs-out")).unwrap();
    let srv = raw_server(roots(&[root.path()]));
    let c = RawClient::new(srv.addr);
    let corpus: &[&[u8]] = &[
        b"../etc/passwd",
        b"/etc/passwd",
        b"sub/../../etc/passwd",
        b"sub/../../../../../../../../etc/shadow",
        b"..",
        b"./../secret",
        b"sub/..",
        b"link-out",
        b"dir-out/secret",
        b"rel-out",
        b"sub/abs-out",
        b"//etc/passwd",
        b"sub/./../../x",
    ];
    for name in corpus {
        c.rrq(name, &[]);
        let (p, _) = c.recv();
        let code = error_code(&p);
        assert!(
            code == 2 || code == 1,
            "{}: expected ERROR 1/2, got {code}",
            String::from_utf8_lossy(name)
        );
        assert!(
            !p.windows(5).any(|w| w == b"XYZZY"),
            "content leaked for {}",
            String::from_utf8_lossy(name)
        );
    }
    // A name that stays inside is served.
    c.rrq(b"sub/ok", &[]);
    let (p, from) = c.recv();
    assert_eq!(&p[..], b"\x00\x03\x00\x01ok");
    c.send_to(&ack(1), from);
}

#[test]
fn symlinks_into_allowed_prefix_are_followed() {
    let root = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(store.path().join("uImage"), b"kernel").unwrap();
    symlink(store.path().join("uImage"), root.path().join("uImage")).unwrap();
    let srv = raw_server(PolicySpec {
        roots: vec![root.path().into()],
        follow_symlinks_into: vec![store.path().into()],
        ..PolicySpec::default()
    });
    let c = RawClient::new(srv.addr);
    c.rrq(b"uImage", &[]);
    let (p, from) = c.recv();
    assert_eq!(&p[..], b"\x00\x03\x00\x01kernel");
    c.send_to(&ack(1), from);
}

#[test]
fn allowlist_is_enforced() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("f"), b"x").unwrap();
    let mut spec = roots(&[root.path()]);
    spec.allow = vec![parse_allow("192.168.8.251").unwrap()];
    let srv = raw_server(spec);
    let c = RawClient::new(srv.addr);
    c.rrq(b"f", &[]);
    let (p, _) = c.recv();
    assert_eq!(error_code(&p), 2);
    assert!(
        error_message(&p).contains("127.0.0.1"),
        "{}",
        error_message(&p)
    );
    drop(srv);

    let mut spec = roots(&[root.path()]);
    spec.allow = vec![parse_allow("127.0.0.0/8").unwrap()];
    let srv = raw_server(spec);
    let c = RawClient::new(srv.addr);
    c.rrq(b"f", &[]);
    let (p, _) = c.recv();
    assert_eq!(&p[..], b"\x00\x03\x00\x01x");
}

#[test]
fn oack_echoes_uboot_options_and_new_tid_is_used() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("k"), pattern(3000, 1)).unwrap();
    let srv = raw_server(roots(&[root.path()]));
    let c = RawClient::new(srv.addr);
    // Exactly what U-Boot sends.
    c.rrq(
        b"k",
        &[("timeout", "5"), ("tsize", "0"), ("blksize", "1468")],
    );
    let (p, from) = c.recv();
    assert_ne!(from.port(), srv.port(), "reply must come from a new TID");
    assert_eq!(
        &p[..],
        b"\x00\x06timeout\x005\x00tsize\x003000\x00blksize\x001468\x00"
    );
    c.send_to(&ack(0), from);
    let (p, _) = c.recv();
    assert_eq!(&p[..4], b"\x00\x03\x00\x01");
    assert_eq!(p.len(), 4 + 1468);
}

#[test]
fn bad_option_values_get_error_8_and_server_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("k"), b"abc").unwrap();
    let srv = raw_server(roots(&[root.path()]));
    let c = RawClient::new(srv.addr);
    for (k, v) in [
        ("blksize", "7"),
        ("blksize", "65465"),
        ("blksize", "x"),
        ("timeout", "0"),
        ("timeout", "256"),
        ("windowsize", "0"),
        ("tsize", "-1"),
    ] {
        c.rrq(b"k", &[(k, v)]);
        let (p, _) = c.recv();
        assert_eq!(error_code(&p), 8, "{k}={v}");
    }
    // Unknown options alone: no OACK, plain DATA 1.
    c.rrq(b"k", &[("rollover", "0"), ("multicast", "")]);
    let (p, _) = c.recv();
    assert_eq!(&p[..], b"\x00\x03\x00\x01abc");
}

#[test]
fn malformed_requests_get_errors_and_server_survives() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("k"), b"abc").unwrap();
    let srv = raw_server(roots(&[root.path()]));
    let c = RawClient::new(srv.addr);
    let garbage: &[(&[u8], Option<u16>)] = &[
        (b"", Some(4)),
        (b"\x00", Some(4)),
        (b"\x00\x07hello", Some(4)),
        (b"\xff\xff", Some(4)),
        (b"\x00\x01k", Some(4)),
        (b"\x00\x01k\x00octet", Some(4)),
        (b"\x00\x01k\x00binary\x00", Some(4)),
        (b"\x00\x01\x00octet\x00", Some(4)),
        (b"\x00\x01k\x00octet\x00blksize\x00", Some(8)),
        (b"\x00\x01k\x00mail\x00", Some(4)),
        (b"\x00\x03\x00\x01data", Some(5)),
        (b"\x00\x04\x00\x01", Some(5)),
        (b"\x00\x05\x00\x01oops\x00", None),
    ];
    for (g, expect) in garbage {
        c.send_to(g, srv.addr);
        match expect {
            Some(code) => {
                let (p, _) = c.recv();
                assert_eq!(error_code(&p), *code, "{g:?}");
            }
            None => assert!(
                c.try_recv(Duration::from_millis(200)).is_none(),
                "no reply to ERROR"
            ),
        }
    }
    c.rrq(b"k", &[]);
    let (p, _) = c.recv();
    assert_eq!(&p[..], b"\x00\x03\x00\x01abc");
}

#[test]
fn foreign_tid_gets_error_5_and_transfer_continues() {
    let root = tempfile::tempdir().unwrap();
    let data = pattern(2000, 9);
    std::fs::write(root.path().join("k"), &data).unwrap();
    let srv = raw_server(roots(&[root.path()]));
    let c = RawClient::new(srv.addr);
    let intruder = RawClient::new(srv.addr);
    c.rrq(b"k", &[]);
    let (p, tid) = c.recv();
    assert_eq!(&p[4..], &data[..512]);
    intruder.send_to(&ack(1), tid);
    let (p, _) = intruder.recv();
    assert_eq!(error_code(&p), 5);
    let mut got = p[..0].to_vec();
    got.extend_from_slice(&data[..512]);
    let mut block = 1u16;
    loop {
        c.send_to(&ack(block), tid);
        let (p, _) = c.recv();
        block += 1;
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), block);
        got.extend_from_slice(&p[4..]);
        if p.len() < 4 + 512 {
            c.send_to(&ack(block), tid);
            break;
        }
    }
    assert_eq!(got, data);
}

#[test]
fn duplicate_ack_in_lockstep_gets_no_extra_data() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("k"), pattern(5000, 2)).unwrap();
    let srv = raw_server(roots(&[root.path()]));
    let c = RawClient::new(srv.addr);
    c.rrq(b"k", &[]);
    let (_, tid) = c.recv();
    c.send_to(&ack(1), tid);
    let (p, _) = c.recv();
    assert_eq!(&p[..4], b"\x00\x03\x00\x02");
    // The old ACK again, twice: nothing may come back (the timer of this
    // server is set to 3 s, so any packet now would be a reply to them).
    c.send_to(&ack(1), tid);
    c.send_to(&ack(1), tid);
    let next = c.try_recv(Duration::from_millis(1000));
    assert!(next.is_none(), "duplicate ACK answered with DATA: {next:?}");
    // The timer still retransmits block 2.
    let (p, _) = c.recv();
    assert_eq!(&p[..4], b"\x00\x03\x00\x02");
}

#[test]
fn concurrency_bound_refuses_with_busy() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("k"), pattern(5000, 2)).unwrap();
    let srv = TestServer::start(
        roots(&[root.path()]),
        ServerConfig {
            max_transfers: 1,
            ..raw_config()
        },
    );
    let a = RawClient::new(srv.addr);
    a.rrq(b"k", &[]);
    let (p, _) = a.recv();
    assert_eq!(&p[..4], b"\x00\x03\x00\x01");
    let b = RawClient::new(srv.addr);
    b.rrq(b"k", &[]);
    let (p, _) = b.recv();
    assert_eq!(error_code(&p), 0);
    assert!(error_message(&p).contains("busy"));
}

#[test]
fn single_port_mode_answers_from_the_server_port() {
    let curl = need("curl", "curl");
    let root = tempfile::tempdir().unwrap();
    let data = pattern(100_000, 4);
    std::fs::write(root.path().join("k"), &data).unwrap();
    let srv = TestServer::start(
        roots(&[root.path()]),
        ServerConfig {
            single_port: true,
            ..raw_config()
        },
    );
    let c = RawClient::new(srv.addr);
    c.rrq(b"k", &[("blksize", "1024")]);
    let (p, from) = c.recv();
    assert_eq!(
        from, srv.addr,
        "single-port replies come from the server port"
    );
    assert_eq!(&p[..2], b"\x00\x06");
    c.send_to(&ack(0), from);
    let (p, from) = c.recv();
    assert_eq!(from, srv.addr);
    assert_eq!(&p[..4], b"\x00\x03\x00\x01");
    // Two clients at once through the one port, with a real client too.
    let out = root.path().join("out");
    let o = run(
        std::process::Command::new(&curl)
            .args(["-sS", "--tftp-blksize", "1468", "-o"])
            .arg(&out)
            .arg(format!("tftp://127.0.0.1:{}/k", srv.port())),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn ipv6_loopback() {
    let curl = need("curl", "curl");
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        panic!("IPv6 loopback is not available on this machine; the server test needs ::1");
    }
    let root = tempfile::tempdir().unwrap();
    let data = pattern(50_000, 6);
    std::fs::write(root.path().join("k"), &data).unwrap();
    let srv = TestServer::start(
        roots(&[root.path()]),
        ServerConfig {
            bind: vec!["[::1]:0".parse().unwrap()],
            ..raw_config()
        },
    );
    let out = root.path().join("out");
    let o = run(
        std::process::Command::new(&curl)
            .args(["-sS", "-o"])
            .arg(&out)
            .arg(format!("tftp://[::1]:{}/k", srv.port())),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn dual_stack_socket_serves_ipv4_clients() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("k"), b"v4").unwrap();
    let srv = TestServer::start(
        roots(&[root.path()]),
        ServerConfig {
            bind: vec!["[::]:0".parse().unwrap()],
            ..raw_config()
        },
    );
    let addr: SocketAddr = format!("127.0.0.1:{}", srv.port()).parse().unwrap();
    let c = RawClient::new(addr);
    c.rrq(b"k", &[]);
    let (p, _) = c.recv();
    assert_eq!(&p[..], b"\x00\x03\x00\x01v4");
}

#[test]
fn file_shrinking_or_growing_during_transfer() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("k");
    std::fs::write(&path, pattern(512 * 300, 8)).unwrap();
    let srv = raw_server(roots(&[root.path()]));
    // Shrink to 1000 bytes after the first block went out.
    let c = RawClient::new(srv.addr);
    c.rrq(b"k", &[]);
    let (_, tid) = c.recv();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let mut block = 1u16;
    let mut total = 512usize;
    loop {
        c.send_to(&ack(block), tid);
        let Some((p, _)) = c.try_recv(Duration::from_secs(3)) else {
            break;
        };
        if p[1] == 5 {
            break;
        }
        block = u16::from_be_bytes([p[2], p[3]]);
        total += p.len() - 4;
        if p.len() < 516 {
            c.send_to(&ack(block), tid);
            break;
        }
        assert!(block < 400, "transfer must end");
    }
    // Whatever was read ahead may still be sent; the transfer ends.
    assert!(total <= 512 * 300);
    // Grow: append while serving; the transfer still ends cleanly.
    std::fs::write(&path, pattern(512 * 4, 1)).unwrap();
    let c = RawClient::new(srv.addr);
    c.rrq(b"k", &[]);
    let (_, tid) = c.recv();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&pattern(512 * 400, 2)).unwrap();
    }
    let mut block = 1u16;
    loop {
        c.send_to(&ack(block), tid);
        let (p, _) = c.recv();
        assert_eq!(p[1], 3);
        block = u16::from_be_bytes([p[2], p[3]]);
        if p.len() < 516 {
            c.send_to(&ack(block), tid);
            break;
        }
    }
    // The server still serves new requests.
    std::fs::write(root.path().join("small"), b"still here").unwrap();
    let c = RawClient::new(srv.addr);
    c.rrq(b"small", &[]);
    let (p, _) = c.recv();
    assert_eq!(&p[4..], b"still here");
    let s = srv.stop();
    assert!(s.len() >= 3);
}

#[test]
fn aborted_upload_leaves_nothing() {
    let up = tempfile::tempdir().unwrap();
    let srv = raw_server(PolicySpec {
        upload_dir: Some(up.path().into()),
        ..PolicySpec::default()
    });
    let c = RawClient::new(srv.addr);
    let mut wrq = b"\x00\x02half.bin\x00octet\x00".to_vec();
    wrq.extend_from_slice(b"tsize\x00100000\x00");
    c.send_to(&wrq, srv.addr);
    let (p, tid) = c.recv();
    assert_eq!(&p[..2], b"\x00\x06");
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(&[7u8; 512]);
    c.send_to(&d, tid);
    let (p, _) = c.recv();
    assert_eq!(&p[..], &ack(1)[..]);
    // The client gives up.
    c.send_to(b"\x00\x05\x00\x00cancelled\x00", tid);
    std::thread::sleep(Duration::from_millis(300));
    let s = srv.stop();
    assert_eq!(s.len(), 1);
    assert!(s[0].error.is_some());
    assert_eq!(
        std::fs::read_dir(up.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}

#[test]
fn upload_over_size_cap_refused_early() {
    let up = tempfile::tempdir().unwrap();
    let mut cfg = raw_config();
    cfg.limits.max_upload = 1000;
    let srv = TestServer::start(
        PolicySpec {
            upload_dir: Some(up.path().into()),
            ..PolicySpec::default()
        },
        cfg,
    );
    let c = RawClient::new(srv.addr);
    c.send_to(b"\x00\x02big\x00octet\x00tsize\x002000\x00", srv.addr);
    let (p, _) = c.recv();
    assert_eq!(error_code(&p), 3);
    // Without tsize: refused when the data passes the cap.
    c.send_to(b"\x00\x02big\x00octet\x00", srv.addr);
    let (p, tid) = c.recv();
    assert_eq!(&p[..], &ack(0)[..]);
    for b in 1..=2u16 {
        let mut d = vec![0, 3];
        d.extend_from_slice(&b.to_be_bytes());
        d.extend_from_slice(&[1u8; 512]);
        c.send_to(&d, tid);
        let (p, _) = c.recv();
        if b == 2 {
            assert_eq!(error_code(&p), 3);
        }
    }
    drop(srv);
    assert_eq!(std::fs::read_dir(up.path()).unwrap().count(), 0);
}

#[test]
fn writes_refused_without_upload_dir() {
    let root = tempfile::tempdir().unwrap();
    let srv = raw_server(roots(&[root.path()]));
    let c = RawClient::new(srv.addr);
    c.send_to(b"\x00\x02x\x00octet\x00", srv.addr);
    let (p, _) = c.recv();
    assert_eq!(error_code(&p), 2);
    assert!(error_message(&p).contains("--upload-dir"));
}

#[test]
fn shutdown_ends_transfers_with_error_and_summary() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("k"), pattern(100_000, 1)).unwrap();
    let srv = raw_server(roots(&[root.path()]));
    let c = RawClient::new(srv.addr);
    c.rrq(b"k", &[]);
    let (_, tid) = c.recv();
    let s = srv.stop();
    assert_eq!(s.len(), 1);
    assert!(s[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("shutting down"));
    let mut saw_error = false;
    while let Some((p, from)) = c.try_recv(Duration::from_millis(500)) {
        if from == tid && p[1] == 5 {
            saw_error = true;
            break;
        }
    }
    assert!(saw_error, "client told about the shutdown");
}

#[test]
fn windowed_restart_after_gap_is_immediate() {
    let root = tempfile::tempdir().unwrap();
    let data = pattern(512 * 40, 3);
    std::fs::write(root.path().join("k"), &data).unwrap();
    let srv = raw_server(roots(&[root.path()]));
    let c = RawClient::new(srv.addr);
    c.rrq(b"k", &[("windowsize", "8")]);
    let (p, tid) = c.recv();
    assert_eq!(&p[..], b"\x00\x06windowsize\x008\x00");
    c.send_to(&ack(0), tid);
    for b in 1..=8u16 {
        let (p, _) = c.recv();
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), b);
    }
    // Pretend block 4 was lost: ACK 3, as U-Boot does. Blocks 4..7 follow
    // at once (the burst halved after a loss), then block 4 again as a
    // clock probe; the server's timer is 3 s, and the 1 s wait shows these
    // are not timer-driven.
    c.send_to(&ack(3), tid);
    for b in [4u16, 5, 6, 7, 4] {
        let (p, _) = c
            .try_recv(Duration::from_millis(1000))
            .expect("restart after the gap ACK");
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), b);
    }
}
