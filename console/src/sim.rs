//! A UART simulator: a relay that behaves like a slow, lossy serial line.
//!
//! QEMU's emulated UART never loses a byte (the chardev waits until the
//! guest's FIFO has room), so a driver tested only against QEMU never
//! meets the failure that matters on real routers: characters dropped
//! when they arrive faster than U-Boot reads them. [`UartSim`] sits
//! between the driver and the real U-Boot's socket and puts that back:
//!
//! * both directions are limited to the baud rate (10 bits per byte);
//! * bytes towards the target land in a small receive FIFO (16 bytes on
//!   a 16550) that the target drains at [`SimConfig::target_cps`]
//!   characters per second, pausing for [`SimConfig::stall`] now and
//!   then (an interrupt handler, a flash poll); a byte that finds the
//!   FIFO full is dropped, as the hardware does;
//! * optional noise flips one bit of a byte with a given probability.
//!
//! It is a discrete-event model: every byte gets an arrival time on the
//! wire, so the result does not depend on how tokio schedules the task.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

/// Line conditions to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Baud rate; a byte takes 10 bit times in each direction.
    pub baud: u32,
    /// Receive FIFO of the target UART, in bytes.
    pub fifo: usize,
    /// Characters per second the target takes out of its FIFO while reading.
    pub target_cps: u32,
    /// The target stops reading for `.0` every `.1` (`None`: never).
    pub stall: Option<(Duration, Duration)>,
    /// Probability that a byte towards the host has one bit flipped.
    pub noise_to_host: f64,
    /// Probability that a byte towards the target has one bit flipped.
    pub noise_to_target: f64,
    /// Seed of the noise generator (runs are repeatable).
    pub seed: u64,
}

impl SimConfig {
    /// A 115200-baud line into a 16-byte FIFO whose target reads at 90 %
    /// of the line rate and stalls 4 ms every 50 ms: a full-speed paste
    /// loses characters, paced sending does not have to.
    pub fn uart_115200_fifo16() -> SimConfig {
        SimConfig {
            baud: 115_200,
            fifo: 16,
            target_cps: 10_368,
            stall: Some((Duration::from_millis(4), Duration::from_millis(50))),
            noise_to_host: 0.0,
            noise_to_target: 0.0,
            seed: 0x1a2b_3c4d,
        }
    }

    fn char_time(&self) -> Duration {
        Duration::from_nanos(10_000_000_000 / u64::from(self.baud.max(1)))
    }
}

/// What happened on the simulated line so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Bytes the host sent.
    pub from_host: u64,
    /// Bytes delivered to the target.
    pub to_target: u64,
    /// Bytes lost to FIFO overflow.
    pub dropped: u64,
    /// Bytes delivered to the host.
    pub to_host: u64,
    /// Bytes with a flipped bit (either direction).
    pub corrupted: u64,
}

/// A running simulator; the relay stops when either side closes or on drop.
#[derive(Debug)]
pub struct UartSim {
    stats: Arc<Mutex<SimStats>>,
    noise: Arc<Mutex<(f64, f64)>>,
    task: JoinHandle<io::Result<()>>,
}

impl Drop for UartSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: plenty for noise.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

impl UartSim {
    /// Relays between `host` (the driver's side) and `target` (e.g. QEMU's
    /// console socket) under `cfg`.
    pub fn spawn(cfg: SimConfig, host: UnixStream, target: UnixStream) -> UartSim {
        let stats = Arc::new(Mutex::new(SimStats::default()));
        let noise = Arc::new(Mutex::new((cfg.noise_to_host, cfg.noise_to_target)));
        let task = tokio::spawn(relay(cfg, host, target, stats.clone(), noise.clone()));
        UartSim { stats, noise, task }
    }

    /// A simulator in front of `target`; returns the stream the driver uses.
    pub fn in_front_of(cfg: SimConfig, target: UnixStream) -> io::Result<(UnixStream, UartSim)> {
        let (driver, host) = UnixStream::pair()?;
        Ok((driver, UartSim::spawn(cfg, host, target)))
    }

    /// Changes the noise probabilities (towards the host, towards the
    /// target) while the relay runs.
    pub fn set_noise(&self, to_host: f64, to_target: f64) {
        if let Ok(mut n) = self.noise.lock() {
            *n = (to_host, to_target);
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether the relay ended (a side closed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

async fn relay(
    cfg: SimConfig,
    mut host: UnixStream,
    mut target: UnixStream,
    stats: Arc<Mutex<SimStats>>,
    noise: Arc<Mutex<(f64, f64)>>,
) -> io::Result<()> {
    let char_time = cfg.char_time();
    let drain = Duration::from_nanos(1_000_000_000 / u64::from(cfg.target_cps.max(1)));
    let start = Instant::now();
    let mut rng = Rng(cfg.seed | 1);
    // Host -> target: bytes on the wire with their arrival time at the FIFO.
    let mut wire: VecDeque<(Instant, u8)> = VecDeque::new();
    let mut wire_free = start;
    let mut fifo: VecDeque<(Instant, u8)> = VecDeque::new();
    let mut last_drain = start;
    // Target -> host: bytes with their delivery time.
    let mut back: VecDeque<(Instant, u8)> = VecDeque::new();
    let mut back_free = start;
    let mut hbuf = vec![0u8; 4096];
    let mut tbuf = vec![0u8; 4096];
    let mut to_target: Vec<u8> = Vec::new();
    let mut to_host: Vec<u8> = Vec::new();

    // When may the target read at or after `t` (outside a stall)?
    let readable_at = |t: Instant| -> Instant {
        match cfg.stall {
            Some((len, every)) if every > len => {
                let since = t.duration_since(start).as_nanos() % every.as_nanos();
                let phase = Duration::from_nanos(since as u64);
                if phase < len {
                    t + (len - phase)
                } else {
                    t
                }
            }
            _ => t,
        }
    };

    loop {
        let now = Instant::now();
        // Run the model up to `now`, events in time order.
        loop {
            let arrival = wire.front().map(|(t, _)| *t);
            let take = fifo
                .front()
                .map(|(t, _)| readable_at((*t).max(last_drain + drain)));
            let next = match (arrival, take) {
                (Some(a), Some(d)) => {
                    if a <= d {
                        (a, true)
                    } else {
                        (d, false)
                    }
                }
                (Some(a), None) => (a, true),
                (None, Some(d)) => (d, false),
                (None, None) => break,
            };
            if next.0 > now {
                break;
            }
            if next.1 {
                let (t, b) = wire.pop_front().expect("front exists");
                if fifo.len() < cfg.fifo {
                    fifo.push_back((t, b));
                } else {
                    stats.lock().expect("stats").dropped += 1;
                }
            } else {
                let (_, b) = fifo.pop_front().expect("front exists");
                last_drain = next.0;
                to_target.push(b);
            }
        }
        while back.front().is_some_and(|(t, _)| *t <= now) {
            to_host.push(back.pop_front().expect("front exists").1);
        }
        if !to_target.is_empty() {
            target.write_all(&to_target).await?;
            stats.lock().expect("stats").to_target += to_target.len() as u64;
            to_target.clear();
        }
        if !to_host.is_empty() {
            host.write_all(&to_host).await?;
            stats.lock().expect("stats").to_host += to_host.len() as u64;
            to_host.clear();
        }

        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if let Some((t, _)) = wire.front() {
            consider(*t);
        }
        if let Some((t, _)) = fifo.front() {
            consider(readable_at((*t).max(last_drain + drain)));
        }
        if let Some((t, _)) = back.front() {
            consider(*t);
        }
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = host.read(&mut hbuf) => {
                let n = r?;
                if n == 0 { return Ok(()); }
                let now = Instant::now();
                let p = noise.lock().map(|n| n.1).unwrap_or(0.0);
                let mut s = stats.lock().expect("stats");
                s.from_host += n as u64;
                for &b in &hbuf[..n] {
                    let mut b = b;
                    if rng.chance(p) {
                        b ^= 1 << (rng.next() % 8);
                        s.corrupted += 1;
                    }
                    wire_free = wire_free.max(now) + char_time;
                    wire.push_back((wire_free, b));
                }
            }
            r = target.read(&mut tbuf) => {
                let n = r?;
                if n == 0 { return Ok(()); }
                let now = Instant::now();
                let p = noise.lock().map(|n| n.0).unwrap_or(0.0);
                let mut s = stats.lock().expect("stats");
                for &b in &tbuf[..n] {
                    let mut b = b;
                    if rng.chance(p) {
                        b ^= 1 << (rng.next() % 8);
                        s.corrupted += 1;
                    }
                    back_free = back_free.max(now) + char_time;
                    back.push_back((back_free, b));
                }
            }
            _ = sleep => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst longer than the FIFO into a slow target loses bytes; the
    /// same bytes sent with pauses do not.
    #[tokio::test]
    async fn overflow_drops_and_pacing_does_not() {
        let cfg = SimConfig {
            target_cps: 2_000,
            stall: None,
            ..SimConfig::uart_115200_fifo16()
        };
        let (mut target_end, target) = UnixStream::pair().unwrap();
        let (mut driver, sim) = UartSim::in_front_of(cfg, target).unwrap();
        driver.write_all(&[b'x'; 100]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let s = sim.stats();
        assert_eq!(s.from_host, 100);
        assert!(s.dropped > 50, "{s:?}");
        // 8 bytes every 8 ms: the target keeps up.
        for _ in 0..10 {
            driver.write_all(&[b'y'; 8]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(8)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(sim.stats().dropped, s.dropped);
        let mut got = vec![0u8; 1024];
        let n = target_end.read(&mut got).await.unwrap();
        assert!(n > 0);
    }
}
