//! Test harness: an in-process server on loopback, a raw TFTP client for
//! precise protocol checks, and helpers to run the real Debian clients.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lmx_tftpd::policy::PolicySpec;
use lmx_tftpd::{Counters, Event, Policy, Server, ServerConfig, TransferSummary};
use sha2::{Digest, Sha256};

/// A running server; stops (and returns summaries) on [`TestServer::stop`].
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Vec<TransferSummary>>>,
    pub events: Arc<Mutex<Vec<Event>>>,
    /// The server's refusal counts and memory budget.
    pub counters: Arc<Counters>,
}

impl TestServer {
    pub fn start(spec: PolicySpec, config: ServerConfig) -> TestServer {
        let policy = Policy::new(spec).expect("policy");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let server = Server::bind(config, policy)
                    .await
                    .expect("bind")
                    .with_events(tx);
                addr_tx
                    .send((server.local_addrs()[0], server.counters()))
                    .unwrap();
                let collector = tokio::spawn(async move {
                    while let Some(e) = rx.recv().await {
                        ev.lock().unwrap().push(e);
                    }
                });
                let s = server
                    .run(async {
                        let _ = stop_rx.await;
                    })
                    .await;
                // The server (and with it the event sender) is gone once
                // `run` returns: let the collector drain what is still
                // queued. (Aborting it lost late events, such as the
                // `Failed` of a transfer that ended during shutdown.)
                if tokio::time::timeout(Duration::from_secs(10), collector)
                    .await
                    .is_err()
                {
                    panic!("the event channel stayed open after the server stopped");
                }
                s
            })
        });
        let (addr, counters) = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server start");
        TestServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            events,
            counters,
        }
    }

    /// A loopback server with the default config on a free port.
    pub fn loopback(spec: PolicySpec) -> TestServer {
        Self::start(spec, loopback_config())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn stop(mut self) -> Vec<TransferSummary> {
        self.stop.take().map(|s| s.send(()));
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn loopback_config() -> ServerConfig {
    ServerConfig {
        bind: vec!["127.0.0.1:0".parse().unwrap()],
        ..ServerConfig::default()
    }
}

/// Config for raw-client tests: a slow, fixed retransmission timer so
/// that no timer-driven packet interleaves with the hand-driven exchange.
pub fn raw_config() -> ServerConfig {
    let mut c = loopback_config();
    c.transfer.rto = lmx_tftpd::rto::RtoConfig {
        initial: Duration::from_secs(3),
        min: Duration::from_secs(3),
        max: Duration::from_secs(3),
    };
    c
}

/// A loopback server for raw-client tests.
pub fn raw_server(spec: PolicySpec) -> TestServer {
    TestServer::start(spec, raw_config())
}

pub fn roots(dirs: &[&Path]) -> PolicySpec {
    PolicySpec {
        roots: dirs.iter().map(|d| d.to_path_buf()).collect(),
        ..PolicySpec::default()
    }
}

pub fn sha256_file(p: &Path) -> String {
    let data = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    sha256(&data)
}

pub fn sha256(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random content.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Asserts a Debian client program exists; the test command installs them.
pub fn need(tool: &str, package: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !path.is_empty(),
        "{tool} is not installed: run the README test command (it installs Debian package {package}), or `apt-get install {package}`"
    );
    PathBuf::from(path)
}

/// Runs a command with a timeout (tests must never hang). Output goes to
/// temporary files, not pipes, so a chatty client can never block on a
/// full pipe while we wait for it to exit.
pub fn run(cmd: &mut Command, timeout: Duration) -> std::process::Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    let (stdout, stderr) = (read(out), read(err));
    match status {
        Some(status) => std::process::Output {
            status,
            stdout,
            stderr,
        },
        None => {
            let tail = |v: &[u8]| {
                let s = String::from_utf8_lossy(v);
                s.chars()
                    .rev()
                    .take(2000)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect::<String>()
            };
            panic!(
                "{cmd:?} did not finish within {timeout:?}\nstdout (tail): {}\nstderr (tail): {}",
                tail(&stdout),
                tail(&stderr)
            )
        }
    }
}

/// Runs a command feeding `input` on stdin.
pub fn run_with_input(cmd: &mut Command, input: &str, timeout: Duration) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A hand-driven TFTP client for exact protocol checks.
pub struct RawClient {
    pub sock: UdpSocket,
    pub server: SocketAddr,
}

impl RawClient {
    pub fn new(server: SocketAddr) -> RawClient {
        let bind = if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        RawClient { sock, server }
    }

    pub fn send_to(&self, data: &[u8], to: SocketAddr) {
        self.sock.send_to(data, to).unwrap();
    }

    /// Receives one datagram: (bytes, from).
    pub fn recv(&self) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 70000];
        let (n, from) = self
            .sock
            .recv_from(&mut buf)
            .expect("no answer from the server within 5 s");
        buf.truncate(n);
        (buf, from)
    }

    /// Receives with a short timeout; None if nothing came.
    pub fn try_recv(&self, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut buf = vec![0u8; 70000];
        let r = self.sock.recv_from(&mut buf).ok().map(|(n, from)| {
            buf.truncate(n);
            (buf, from)
        });
        self.sock
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        r
    }

    pub fn rrq(&self, name: &[u8], options: &[(&str, &str)]) {
        let mut p = vec![0, 1];
        p.extend_from_slice(name);
        p.push(0);
        p.extend_from_slice(b"octet\0");
        for (k, v) in options {
            p.extend_from_slice(k.as_bytes());
            p.push(0);
            p.extend_from_slice(v.as_bytes());
            p.push(0);
        }
        self.send_to(&p, self.server);
    }
}

pub fn ack(block: u16) -> Vec<u8> {
    let mut v = vec![0, 4];
    v.extend_from_slice(&block.to_be_bytes());
    v
}

/// Error code of an ERROR packet, or panics showing what came instead.
pub fn error_code(p: &[u8]) -> u16 {
    assert!(
        p.len() >= 4 && p[1] == 5,
        "expected an ERROR packet, got {:?}",
        &p[..p.len().min(20)]
    );
    u16::from_be_bytes([p[2], p[3]])
}

pub fn error_message(p: &[u8]) -> String {
    String::from_utf8_lossy(&p[4..p.len() - 1]).into_owned()
}

/// What [`raw_fetch`] got.
#[derive(Debug)]
pub struct Fetched {
    pub bytes: u64,
    pub sha256: String,
    /// The window the server granted (its OACK).
    pub window: u16,
}

/// A windowed fetch by a minimal RFC 7440 client bound to `bind` (e.g.
/// `127.0.0.2:0`, another loopback address than a flood's): ACKs at each
/// window's end, once per gap like U-Boot, and again after 200 ms of
/// silence. Hashes the data instead of keeping it. Fails with the
/// server's ERROR message, or when `limit` passes.
pub fn raw_fetch(
    bind: &str,
    server: SocketAddr,
    name: &[u8],
    blksize: u16,
    window: u16,
    limit: Duration,
) -> Result<Fetched, String> {
    let sock = UdpSocket::bind(bind).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(name);
    rrq.extend_from_slice(b"\0octet\0blksize\0");
    rrq.extend_from_slice(blksize.to_string().as_bytes());
    rrq.extend_from_slice(b"\0windowsize\0");
    rrq.extend_from_slice(window.to_string().as_bytes());
    rrq.push(0);
    let start = std::time::Instant::now();
    let mut buf = vec![0u8; 70000];
    let mut tid: Option<SocketAddr> = None;
    let (mut blksize, mut window) = (blksize as usize, window);
    let mut have: u16 = 0;
    let mut bytes = 0u64;
    let mut nacked: Option<u16> = None;
    let mut hasher = Sha256::new();
    let ack_of = |b: u16, sock: &UdpSocket, to: SocketAddr| {
        sock.send_to(&ack(b), to).unwrap();
    };
    sock.send_to(&rrq, server).unwrap();
    loop {
        if start.elapsed() > limit {
            return Err(format!("no complete file within {limit:?} ({bytes} bytes)"));
        }
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(v) => v,
            Err(_) => {
                match tid {
                    Some(t) => ack_of(have, &sock, t),
                    None => sock.send_to(&rrq, server).map(|_| ()).unwrap(),
                }
                continue;
            }
        };
        if tid.is_some_and(|t| t != from) {
            continue;
        }
        let p = &buf[..n];
        match u16::from_be_bytes([p[0], p[1]]) {
            5 => return Err(error_message(p)),
            6 if tid.is_none() => {
                tid = Some(from);
                let fields: Vec<&[u8]> = p[2..].split(|&c| c == 0).collect();
                for kv in fields.chunks(2) {
                    if let [k, v] = kv {
                        let v: usize = String::from_utf8_lossy(v).parse().unwrap_or(0);
                        match *k {
                            b"blksize" => blksize = v,
                            b"windowsize" => window = v as u16,
                            _ => {}
                        }
                    }
                }
                ack_of(0, &sock, from);
            }
            3 => {
                let t = *tid.get_or_insert(from);
                let b = u16::from_be_bytes([p[2], p[3]]);
                if b != have.wrapping_add(1) {
                    if nacked != Some(have) {
                        nacked = Some(have);
                        ack_of(have, &sock, t);
                    }
                    continue;
                }
                have = b;
                hasher.update(&p[4..]);
                bytes += (n - 4) as u64;
                if n - 4 < blksize {
                    ack_of(have, &sock, t);
                    let sha256 = hasher
                        .finalize()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    return Ok(Fetched {
                        bytes,
                        sha256,
                        window,
                    });
                }
                if have % window.max(1) == 0 {
                    ack_of(have, &sock, t);
                }
            }
            _ => {}
        }
    }
}
