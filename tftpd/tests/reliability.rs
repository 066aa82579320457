//! Loss, delay and dead clients, through an in-process UDP relay that drops
//! or delays packets (deterministically seeded) between real clients and
//! the server.

mod common;

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use lmx_tftpd::{Event, ServerConfig};

/// A relay between one client and the server. Every packet from the
/// server is sent to the client from the relay's client-facing port, so
/// clients see a single server port (like single-port mode).
struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub dropped: Arc<AtomicU64>,
    pub forwarded: Arc<AtomicU64>,
}

#[derive(Clone, Copy)]
struct LinkSpec {
    /// Drop probability in percent, per direction.
    loss_pct: u32,
    /// One-way delay.
    delay: Duration,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
}

impl Relay {
    fn start(server: SocketAddr, spec: LinkSpec, seed: u64) -> Relay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        front
            .set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        back.set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        let addr = front.local_addr().unwrap();
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let server_tid: Arc<Mutex<SocketAddr>> = Arc::new(Mutex::new(server));
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for dir in 0..2 {
            let (from, to) = if dir == 0 {
                (front.clone(), back.clone())
            } else {
                (back.clone(), front.clone())
            };
            let client = client.clone();
            let server_tid = server_tid.clone();
            let stop = stop.clone();
            let dropped = dropped.clone();
            let forwarded = forwarded.clone();
            threads.push(std::thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(dir as u64 + 1));
                let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
                let mut buf = vec![0u8; 70000];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, src)) = from.recv_from(&mut buf) {
                        if dir == 0 {
                            *client.lock().unwrap() = Some(src);
                        } else {
                            *server_tid.lock().unwrap() = src;
                        }
                        if rng.next() % 100 < spec.loss_pct {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        } else {
                            queue.push_back((Instant::now() + spec.delay, buf[..n].to_vec()));
                        }
                    }
                    while queue.front().is_some_and(|(t, _)| *t <= Instant::now()) {
                        let (_, p) = queue.pop_front().unwrap();
                        let dest = if dir == 0 {
                            Some(*server_tid.lock().unwrap())
                        } else {
                            *client.lock().unwrap()
                        };
                        if let Some(d) = dest {
                            let _ = to.send_to(&p, d);
                            forwarded.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        Relay {
            addr,
            stop,
            threads,
            dropped,
            forwarded,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

const T: Duration = Duration::from_secs(300);

#[test]
fn five_percent_loss_each_way_real_clients_complete_intact() {
    let curl = need("curl", "curl");
    let atftp = need("atftp", "atftp");
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(1_500_000, 21);
    std::fs::write(dir.path().join("k"), &data).unwrap();
    let srv = TestServer::loopback(roots(&[dir.path()]));
    for (i, client) in ["curl", "atftp-lockstep", "atftp-window8"]
        .iter()
        .enumerate()
    {
        let relay = Relay::start(
            srv.addr,
            LinkSpec {
                loss_pct: 5,
                delay: Duration::ZERO,
            },
            i as u64 + 1,
        );
        let port = relay.addr.port().to_string();
        let out = dir.path().join(format!("out-{client}"));
        let o = match *client {
            "curl" => run(
                Command::new(&curl)
                    .args(["-sS", "--tftp-blksize", "1468", "-o"])
                    .arg(&out)
                    .arg(format!("tftp://127.0.0.1:{port}/k")),
                T,
            ),
            "atftp-lockstep" => run(
                Command::new(&atftp)
                    .args(["--option", "blksize 1468", "-g", "-r", "k", "-l"])
                    .arg(&out)
                    .args(["127.0.0.1", &port]),
                T,
            ),
            _ => run(
                Command::new(&atftp)
                    .args([
                        "--option",
                        "blksize 1468",
                        "--option",
                        "windowsize 8",
                        "-g",
                        "-r",
                        "k",
                        "-l",
                    ])
                    .arg(&out)
                    .args(["127.0.0.1", &port]),
                T,
            ),
        };
        assert!(o.status.success(), "{client}: {o:?}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            data,
            "{client}: content differs"
        );
        assert!(
            relay.dropped.load(Ordering::Relaxed) > 0,
            "{client}: the relay dropped nothing"
        );
    }
    let s = srv.stop();
    assert_eq!(s.iter().filter(|s| s.error.is_none()).count(), 3, "{s:?}");
    assert!(
        s.iter().all(|s| s.retransmits > 0),
        "losses were recovered by retransmission"
    );
}

#[test]
fn slow_link_does_not_cause_runaway_retransmissions() {
    let curl = need("curl", "curl");
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(400_000, 2);
    std::fs::write(dir.path().join("k"), &data).unwrap();
    let srv = TestServer::loopback(roots(&[dir.path()]));
    let relay = Relay::start(
        srv.addr,
        LinkSpec {
            loss_pct: 0,
            delay: Duration::from_millis(25),
        },
        9,
    );
    let out = dir.path().join("out");
    let o = run(
        Command::new(&curl)
            .args(["-sS", "--tftp-blksize", "1468", "-o"])
            .arg(&out)
            .arg(format!("tftp://127.0.0.1:{}/k", relay.addr.port())),
        T,
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert!(
        relay.forwarded.load(Ordering::Relaxed) > 0,
        "went through the relay"
    );
    drop(relay);
    let s = srv.stop();
    let blocks = data.len() / 1468 + 1;
    // Each block waits 50 ms for its ACK; the timer learns that instead of
    // firing every 5 ms. A few early retransmissions are tolerable; a
    // number growing with the transfer is not.
    assert!(
        (s[0].retransmits as usize) < blocks / 20,
        "{} retransmits for {blocks} blocks on a lossless slow link",
        s[0].retransmits
    );
    let srtt = s[0].srtt.expect("RTT measured");
    assert!(srtt >= Duration::from_millis(40), "srtt {srtt:?}");
}

#[test]
fn client_that_stops_acking_fails_with_block_and_elapsed_time() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k"), pattern(100_000, 3)).unwrap();
    let mut cfg: ServerConfig = loopback_config();
    cfg.transfer.max_retries = 3;
    cfg.transfer.give_up_after = Duration::from_secs(1);
    let srv = TestServer::start(roots(&[dir.path()]), cfg);
    let c = RawClient::new(srv.addr);
    c.rrq(b"k", &[]);
    let (_, tid) = c.recv();
    c.send_to(&ack(1), tid);
    // Block 2 arrives; the client then falls silent.
    let mut received = 0;
    while let Some((p, _)) = c.try_recv(Duration::from_millis(3000)) {
        received += 1;
        if p[1] == 5 {
            break;
        }
        assert!(received < 40, "retransmissions must be bounded");
    }
    let events = srv.events.clone();
    let s = srv.stop();
    let err = s[0].error.clone().expect("transfer failed");
    assert!(err.contains("block 2"), "{err}");
    assert!(err.contains("retransmissions"), "{err}");
    let ev = events.lock().unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Failed(f) if f.error.as_deref() == Some(err.as_str()))),
        "a Failed event carries the reason"
    );
}
