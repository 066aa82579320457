//! Transfer events: what the server tells its embedder (the `lmx serve`
//! progress bars, `lmx tftpboot`'s step display, tests) about each transfer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::packet::ErrorCode;

/// Direction of a transfer, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The client reads (RRQ): we send.
    Read,
    /// The client writes (WRQ): we receive.
    Write,
}

/// What is known about a transfer when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferInfo {
    /// Server-unique transfer number.
    pub id: u64,
    /// Client address (IPv4-mapped addresses shown as IPv4).
    pub client: SocketAddr,
    /// File name as requested.
    pub file: String,
    /// Resolved local path (read: the served file; write: the destination).
    pub path: Option<PathBuf>,
    /// Read or write.
    pub direction: Direction,
    /// Expected size in bytes, when known.
    pub size: Option<u64>,
    /// Negotiated block size.
    pub blksize: u16,
    /// Negotiated window size.
    pub windowsize: u16,
    /// The client's `timeout` option, when acknowledged.
    pub timeout: Option<u8>,
    /// Options sent in the OACK (empty: none).
    pub options: Vec<(String, String)>,
}

/// Final numbers of a transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferSummary {
    /// The transfer.
    pub info: TransferInfo,
    /// Bytes confirmed (read) or stored (write).
    pub bytes: u64,
    /// Duration from request to end.
    pub elapsed: Duration,
    /// Blocks or ACKs sent more than once.
    pub retransmits: u64,
    /// Smoothed round-trip time, when measured.
    pub srtt: Option<Duration>,
    /// Retransmission timer expiries (reads: each starts a recovery round).
    pub timeouts: u64,
    /// Reads: times sending waited for the client's receive ring to drain
    /// (see [`crate::TransferConfig::rx_frames`]).
    pub drain_waits: u64,
    /// Reads: clock probes sent (a block the client already holds, sent so that it answers).
    pub probes: u64,
    /// `None` on success, else why it failed.
    pub error: Option<String>,
}

impl TransferSummary {
    /// Average rate in bytes per second.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.bytes as f64 / s
        } else {
            0.0
        }
    }
}

/// Something that happened on the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A transfer began (after negotiation).
    Started(TransferInfo),
    /// Periodic progress (at most about ten per second per transfer).
    Progress {
        /// Transfer number.
        id: u64,
        /// Bytes so far.
        bytes: u64,
        /// Expected total, when known.
        size: Option<u64>,
        /// Time since the request.
        elapsed: Duration,
        /// Retransmissions so far.
        retransmits: u64,
    },
    /// A transfer completed.
    Finished(TransferSummary),
    /// A transfer failed; `summary.error` says why.
    Failed(TransferSummary),
    /// A request was refused before any transfer started.
    Refused {
        /// Client address.
        client: SocketAddr,
        /// Requested name (lossy).
        file: String,
        /// Error sent.
        code: ErrorCode,
        /// Which rule refused it.
        kind: RefusalKind,
        /// Why.
        reason: String,
    },
}

/// Why a request was refused, for counting (see
/// [`crate::admission::Counters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// The client is not in the allowlist.
    NotAllowed,
    /// The client's address already runs as many transfers as
    /// [`crate::ServerConfig::per_client`] allows.
    PerClient,
    /// Every transfer slot ([`crate::ServerConfig::max_transfers`]) is
    /// taken by a transfer whose client answers.
    Busy,
    /// The memory budget ([`crate::ServerConfig::memory_budget`]) cannot
    /// hold even the smallest buffers of the transfer.
    Memory,
    /// The request cannot be honoured: bad options, mail mode.
    BadRequest,
    /// The file is not served: missing, refused by the policy, uploads
    /// disabled, or the upload target exists.
    File,
    /// A local failure (no socket for the transfer).
    Internal,
}

impl RefusalKind {
    /// Every kind, in counting order.
    pub const ALL: [RefusalKind; 7] = [
        RefusalKind::NotAllowed,
        RefusalKind::PerClient,
        RefusalKind::Busy,
        RefusalKind::Memory,
        RefusalKind::BadRequest,
        RefusalKind::File,
        RefusalKind::Internal,
    ];
}

impl std::fmt::Display for RefusalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefusalKind::NotAllowed => "not allowed",
            RefusalKind::PerClient => "per-client limit",
            RefusalKind::Busy => "server busy",
            RefusalKind::Memory => "memory budget",
            RefusalKind::BadRequest => "bad request",
            RefusalKind::File => "file not served",
            RefusalKind::Internal => "internal error",
        })
    }
}

/// Refusals for a log a person reads: one a line, at most
/// [`RefusalDigest::PER_SECOND`] a second; the others are counted by
/// reason and summed up when the second is over ([`RefusalDigest::second_over`]),
/// so a flood of requests does not flood the log.
#[derive(Debug, Default)]
pub struct RefusalDigest {
    shown: u32,
    hidden: std::collections::HashMap<RefusalKind, u64>,
}

impl RefusalDigest {
    /// Refusals shown on their own line per second.
    pub const PER_SECOND: u32 = 5;

    /// Whether to show this refusal on its own line (else it is counted).
    pub fn show(&mut self, kind: RefusalKind) -> bool {
        if self.shown < Self::PER_SECOND {
            self.shown += 1;
            return true;
        }
        *self.hidden.entry(kind).or_insert(0) += 1;
        false
    }

    /// A second is over: the line summing up what was not shown, if any.
    pub fn second_over(&mut self) -> Option<String> {
        self.shown = 0;
        if self.hidden.is_empty() {
            return None;
        }
        let total: u64 = self.hidden.values().sum();
        let by: Vec<String> = RefusalKind::ALL
            .iter()
            .filter_map(|k| self.hidden.get(k).map(|n| format!("{n} {k}")))
            .collect();
        self.hidden.clear();
        Some(format!(
            "refused {total} more requests in the last second ({})",
            by.join(", ")
        ))
    }
}

/// The totals of a server's transfers, as one line: `N transfers (N ok,
/// N failed), SIZE in total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Transfers.
    pub transfers: usize,
    /// Transfers that ended without an error.
    pub ok: usize,
    /// Bytes moved, in either direction.
    pub bytes: u64,
}

impl Totals {
    /// The totals of `summaries`.
    pub fn of(summaries: &[TransferSummary]) -> Totals {
        Totals {
            transfers: summaries.len(),
            ok: summaries.iter().filter(|s| s.error.is_none()).count(),
            bytes: summaries.iter().map(|s| s.bytes).sum(),
        }
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} transfers ({} ok, {} failed), {} in total",
            self.transfers,
            self.ok,
            self.transfers - self.ok,
            human_bytes(self.bytes)
        )
    }
}

/// Formats a byte count for humans (KiB/MiB/GiB).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl std::fmt::Display for TransferSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dir = match self.info.direction {
            Direction::Read => "sent",
            Direction::Write => "received",
        };
        write!(
            f,
            "{} {} {} {} in {:.2} s ({}/s, blksize {}, window {}, {} retransmits)",
            self.info.client,
            dir,
            self.info.file,
            human_bytes(self.bytes),
            self.elapsed.as_secs_f64(),
            human_bytes(self.rate() as u64),
            self.info.blksize,
            self.info.windowsize,
            self.retransmits
        )?;
        // Loss-recovery details, only when something happened.
        if self.timeouts > 0 {
            write!(f, ", {} timeouts", self.timeouts)?;
        }
        if self.drain_waits > 0 {
            write!(f, ", {} drain waits", self.drain_waits)?;
        }
        if self.probes > 0 {
            write!(f, ", {} probes", self.probes)?;
        }
        if let Some(e) = &self.error {
            write!(f, ": FAILED: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_is_summed_up_once_a_second() {
        let mut r = RefusalDigest::default();
        let shown = (0..2000).filter(|_| r.show(RefusalKind::PerClient)).count();
        assert_eq!(shown, RefusalDigest::PER_SECOND as usize);
        r.show(RefusalKind::Busy);
        assert_eq!(
            r.second_over().as_deref(),
            Some("refused 1996 more requests in the last second (1995 per-client limit, 1 server busy)")
        );
        assert_eq!(r.second_over(), None, "a quiet second says nothing");
        assert!(r.show(RefusalKind::File), "a new second shows lines again");
    }

    #[test]
    fn totals_count_failures_and_bytes() {
        let ok = summary();
        let mut failed = summary();
        failed.error = Some("timed out".into());
        failed.bytes = 1024;
        let t = Totals::of(&[ok, failed]);
        assert_eq!(
            t.to_string(),
            "2 transfers (1 ok, 1 failed), 3.0 MiB in total"
        );
        assert_eq!(
            Totals::of(&[]).to_string(),
            "0 transfers (0 ok, 0 failed), 0 B in total"
        );
    }

    fn summary() -> TransferSummary {
        TransferSummary {
            info: TransferInfo {
                id: 1,
                client: "192.168.8.251:2701".parse().unwrap(),
                file: "uImage".into(),
                path: None,
                direction: Direction::Read,
                size: Some(3 << 20),
                blksize: 1468,
                windowsize: 15,
                timeout: None,
                options: vec![],
            },
            bytes: 3 << 20,
            elapsed: Duration::from_millis(100),
            retransmits: 0,
            srtt: None,
            timeouts: 0,
            drain_waits: 0,
            probes: 0,
            error: None,
        }
    }

    #[test]
    fn clean_summary_names_no_recovery() {
        assert_eq!(
            summary().to_string(),
            "192.168.8.251:2701 sent uImage 3.0 MiB in 0.10 s (30.0 MiB/s, blksize 1468, window 15, 0 retransmits)"
        );
    }

    #[test]
    fn lossy_summary_counts_each_kind_of_repair() {
        let s = TransferSummary {
            retransmits: 40,
            timeouts: 3,
            drain_waits: 1,
            probes: 2,
            error: Some("client sent ERROR 0: stop".into()),
            ..summary()
        };
        assert_eq!(
            s.to_string(),
            "192.168.8.251:2701 sent uImage 3.0 MiB in 0.10 s (30.0 MiB/s, blksize 1468, window 15, 40 retransmits), \
             3 timeouts, 1 drain waits, 2 probes: FAILED: client sent ERROR 0: stop"
        );
    }
}
