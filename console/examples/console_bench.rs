//! Command throughput into the real U-Boot of the virtual board through
//! the UART simulator (115200 baud, 16-byte FIFO): lmx's verified,
//! windowed sending against fixed per-character delays (what LAVA-style
//! tools do; LAVA's default boot character delay is 10 ms) and a plain
//! paste. Every command is checked afterwards with `printenv`.
//!
//! Run through `bench/console.sh` (needs `scripts/deps.sh virtual`).
//! Usage: console_bench [COMMANDS]

use std::time::{Duration, Instant};

use lmx_console::sim::{SimConfig, UartSim};
use lmx_console::{quote, Dialect, UBootShell};
use lmx_testbed::{Arch, Console, Vm, VmConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const LINE_RATE: f64 = 11_520.0;

/// The virtual board's U-Boot alone (no network), its console on `sock`.
fn start_qemu(sock: &std::path::Path) -> Vm {
    Vm::start(&VmConfig::new(Arch::Aarch64, Console::Unix(sock.into())))
        .unwrap_or_else(|e| panic!("{e} (scripts/deps.sh virtual)"))
}

fn value(rng: &mut u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            // Letters, digits and punctuation hush leaves alone in quotes.
            let set = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:=+-_/@%";
            set[(*rng % set.len() as u64) as usize] as char
        })
        .collect()
}

struct Row {
    name: String,
    commands: usize,
    bytes: usize,
    elapsed: Duration,
    bad: usize,
    dropped: u64,
    retypes: Option<u64>,
}

/// Types `line` with a fixed delay after each byte, then Enter; waits
/// for the next prompt (or gives up and cancels after 3 s).
async fn type_fixed(s: &mut UnixStream, line: &str, delay: Duration) {
    let mut seen = Vec::new();
    // Deadlines from the start, so timer rounding does not add up.
    let t0 = tokio::time::Instant::now();
    for (i, &b) in line.as_bytes().iter().chain(b"\r").enumerate() {
        s.write_all(&[b]).await.unwrap();
        if !delay.is_zero() {
            tokio::time::sleep_until(t0 + delay * (i as u32 + 1)).await;
        }
    }
    let end = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\n=> ") {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => {
                s.write_all(b"\x03").await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
                return;
            }
        }
    }
}

async fn verify(sh: &mut UBootShell<UnixStream>, expected: &[(String, String)]) -> usize {
    let mut bad = 0;
    for (name, value) in expected {
        match sh.printenv(name).await {
            Ok(Some(v)) if &v == value => {}
            _ => bad += 1,
        }
    }
    bad
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let _qemu = start_qemu(&sock);
    let target = UnixStream::connect(&sock).await.unwrap();
    let (line, sim) = UartSim::in_front_of(SimConfig::uart_115200_fifo16(), target).unwrap();
    let dialect = Dialect::mainline();
    let mut sh = UBootShell::new(line, dialect.clone());
    sh.attach(Duration::from_secs(30)).await.unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut rows = Vec::new();

    let strategies: Vec<(&str, Option<Duration>, usize)> = vec![
        ("lmx: echo-verified, adaptive window", None, n),
        (
            "fixed 10 ms per character (LAVA default)",
            Some(Duration::from_millis(10)),
            n / 8,
        ),
        (
            "fixed 1 ms per character",
            Some(Duration::from_millis(1)),
            n / 2,
        ),
        (
            "paste at line rate (no delay, no check)",
            Some(Duration::ZERO),
            n / 2,
        ),
    ];
    for (si, (name, delay, count)) in strategies.into_iter().enumerate() {
        let count = count.max(4);
        let mut expected = Vec::new();
        let mut lines = Vec::new();
        for i in 0..count {
            let var = format!("lmxb{si}x{i}");
            let len = 150 + (rng % 150) as usize;
            let v = value(&mut rng, len);
            lines.push(quote::setenv_line(&dialect, &var, &v).unwrap());
            expected.push((var, v));
        }
        let bytes: usize = lines.iter().map(|l| l.len()).sum();
        let before = sim.stats().dropped;
        let retypes_before = sh.stats().mismatches;
        let started = Instant::now();
        match delay {
            None => {
                for l in &lines {
                    sh.run(l, Duration::from_secs(10)).await.unwrap();
                }
            }
            Some(d) => {
                let mut raw = sh.into_transport();
                for l in &lines {
                    type_fixed(&mut raw, l, d).await;
                }
                sh = UBootShell::new(raw, dialect.clone());
            }
        }
        let elapsed = started.elapsed();
        let dropped = sim.stats().dropped - before;
        let retypes = delay
            .is_none()
            .then(|| sh.stats().mismatches - retypes_before);
        sh.attach(Duration::from_secs(30)).await.unwrap();
        let bad = verify(&mut sh, &expected).await;
        rows.push(Row {
            name: name.to_string(),
            commands: count,
            bytes,
            elapsed,
            bad,
            dropped,
            retypes,
        });
        eprintln!("done: {name}");
    }

    println!("| strategy | commands | command bytes | time | bytes/s | of line rate | bytes dropped by the FIFO | lines retyped | commands wrong or lost |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        let rate = r.bytes as f64 / r.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {} | {:.1} s | {:.0} | {:.0} % | {} | {} | {} |",
            r.name,
            r.commands,
            r.bytes,
            r.elapsed.as_secs_f64(),
            rate,
            100.0 * rate / LINE_RATE,
            r.dropped,
            r.retypes.map_or("—".to_string(), |n| n.to_string()),
            r.bad
        );
    }
}
