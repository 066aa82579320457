//! The per-transfer state machines, sans-I/O.
//!
//! A [`ReadTransfer`] serves a file to a client (RRQ); a [`WriteTransfer`]
//! receives one (WRQ). Both are fed datagrams and clock ticks and tell the
//! caller what to send, when to wake them up, and (for reads) how many more
//! file bytes they need buffered. They never touch a socket, a file or a
//! clock, so every protocol rule is tested with literal bytes and synthetic
//! time.
//!
//! Rules implemented here:
//! - RFC 1350 lock-step: a duplicate ACK never causes a send (the sorcerer's
//!   apprentice bug, RFC 1123 §4.2.3.1); only the timer retransmits.
//! - RFC 7440 windows: an ACK inside the window (the receiver's "I lost what
//!   came after this") restarts sending right after it, at once.
//! - A file whose length is a multiple of the block size ends with an empty
//!   block; block numbers wrap from 65535 to 0 (what U-Boot expects), so
//!   files of any size transfer.
//! - Retransmission is driven by the adaptive timer of [`crate::rto`]; a
//!   transfer that makes no progress for `give_up_after` (and at least
//!   `max_retries` retransmissions) ends with an error.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::options::Negotiated;
use crate::packet::{self, ErrorCode, Packet};
use crate::rto::{Rto, RtoConfig};

/// Timer and retry policy of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferConfig {
    /// Retransmission timer settings.
    pub rto: RtoConfig,
    /// Retransmissions without progress before giving up is allowed.
    pub max_retries: u32,
    /// Time without progress after which the transfer is abandoned (once
    /// `max_retries` retransmissions were made). Generous on purpose:
    /// clients such as U-Boot and atftp answer a repeated DATA block only
    /// once, so when that answer is lost too they recover only on their own
    /// timeout (5 s each, several times).
    pub give_up_after: Duration,
    /// How long a finished write transfer keeps answering a repeated final
    /// DATA with its ACK (RFC 1350 "dallying").
    pub dally: Duration,
    /// How many frames the client can hold unprocessed (its receive ring),
    /// or `None` for no limit. A read transfer then never has more DATA
    /// packets possibly waiting in that ring than it holds, with room for a
    /// stray frame (see [`TransferConfig::rx_budget`]). U-Boot's virtio-net driver
    /// keeps 32 receive buffers and, once QEMU finds them all full, never
    /// receives again (it re-adds buffers without notifying the device), so
    /// for boot loaders overflowing the ring is not a loss but a dead link.
    pub rx_frames: Option<u16>,
    /// How a transfer whose client has not answered anything yet (a
    /// *half-open* transfer) is treated, or `None` to treat it like any
    /// other (the machine's default, for hand-driven use). With
    /// `Some(limit)`, which servers use ([`DEFAULT_HALF_OPEN`]):
    /// - a read reads no file data ahead: nothing before the OACK is
    ///   acknowledged, only block 1 without options;
    /// - the first packet is repeated on a timer of its own, from
    ///   [`FIRST_PACKET_RTO`] doubling (within `rto.min`..`rto.max`),
    ///   since there is no round-trip sample yet;
    /// - the transfer is dropped ([`TransferError::HalfOpen`]) once
    ///   `limit`, and at least two such timer intervals, passed without an
    ///   answer, instead of after the give-up schedule meant for a transfer
    ///   that was making progress.
    pub half_open: Option<Duration>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            rto: RtoConfig::default(),
            max_retries: 5,
            give_up_after: Duration::from_secs(30),
            dally: Duration::from_secs(1),
            rx_frames: Some(DEFAULT_RX_FRAMES),
            half_open: None,
        }
    }
}

/// Default half-open limit of servers ([`TransferConfig::half_open`]).
/// Real clients, U-Boot included, answer the first packet within
/// milliseconds; two seconds cover four transmissions of it (at 0, 250,
/// 750 and 1750 ms), so on a link losing 5 % each way a live client is
/// dropped with a probability of about 1 in 10,000 (each exchange fails
/// with 1 − 0.95², about 10 %), and a client that lost them all
/// retransmits its request. A silent or spoofed request holds its slot
/// for 2 s instead of the 30 s give-up schedule.
pub const DEFAULT_HALF_OPEN: Duration = Duration::from_secs(2);

/// The first packet's retransmission timer while the client has not
/// answered (no round-trip sample exists yet), doubling per repeat; see
/// [`TransferConfig::half_open`]. A quarter second is far above any LAN
/// round trip and a boot loader's reaction, so a repeat is rarely
/// spurious, and short enough that a lost first packet costs little.
pub const FIRST_PACKET_RTO: Duration = Duration::from_millis(250);

/// Default receive ring assumed for clients: U-Boot's virtio-net holds 32
/// frames, and boot loaders' drivers rarely hold more.
pub const DEFAULT_RX_FRAMES: u16 = 32;

/// The longest time a sender waits, with its receive budget used up and
/// no answer, before it assumes the client's ring has drained.
const DRAIN_WAIT_MAX: Duration = Duration::from_secs(1);
/// The shortest such wait: far longer than a boot loader needs to process
/// a ring of frames, even under emulation on a busy host (20 ms was once
/// too short: QEMU's CPU thread, descheduled by parallel builds, fell
/// behind and the ring overflowed).
const DRAIN_WAIT_MIN: Duration = Duration::from_millis(100);

impl TransferConfig {
    /// DATA packets a read transfer may have sent after the one that made
    /// the client's latest ACK: two frames less than the ring, one for that
    /// packet itself (a boot loader sends its ACK before it returns the
    /// frame to the ring) and one for ARP and other stray traffic.
    pub fn rx_budget(&self) -> Option<u64> {
        self.rx_frames.map(|f| u64::from(f.max(3)) - 2)
    }

    /// The largest `windowsize` worth granting under the receive budget:
    /// half of it. After a loss the client still holds up to a window of
    /// stale blocks it will discard; with half the budget a whole
    /// recovery window (and its clock probe) fits behind them at once.
    /// Larger windows gain little on a clean link and, after each loss,
    /// wait for the ring to drain (the U-Boot model test prints the drain
    /// waits per run).
    pub fn max_window(&self) -> Option<u16> {
        self.rx_budget()
            .map(|b| (b / 2).clamp(1, u64::from(u16::MAX)) as u16)
    }
}

impl TransferConfig {
    /// The first packet's timer after `repeats` unanswered repeats, with
    /// the half-open treatment on.
    fn first_packet_timeout(&self, repeats: u32) -> Duration {
        let max = self.rto.max.max(self.rto.min);
        FIRST_PACKET_RTO
            .saturating_mul(1u32 << repeats.min(16))
            .clamp(self.rto.min, max)
    }

    /// How long a transfer may stay half-open: the configured limit, and
    /// never less than two intervals of the first packet's timer (so a
    /// slower configured timer stretches it: the first packet always goes
    /// out at least twice and the repeat gets a whole interval).
    pub fn half_open_limit(&self) -> Option<Duration> {
        self.half_open
            .map(|h| h.max(self.first_packet_timeout(0) * 2))
    }

    /// Applies a client's `timeout` option: RFC 2349 means it as the
    /// retransmission interval, so the timer never waits longer than that
    /// (it usually waits far less: it follows the measured round trip), and
    /// the give-up time grows to cover that many retries.
    pub fn with_client_timeout(mut self, timeout: Option<Duration>) -> Self {
        if let Some(t) = timeout {
            self.rto.max = self.rto.max.min(t).max(self.rto.min);
            self.rto.initial = self.rto.initial.min(self.rto.max);
            let needed = t * (self.max_retries + 1);
            self.give_up_after = self.give_up_after.max(needed);
        }
        self
    }
}

/// Why a transfer ended without success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The peer stopped answering.
    #[error("no answer from the client for {elapsed:.1?} while waiting for the ACK of block {block} ({retries} retransmissions)")]
    Timeout {
        /// The block (absolute, 1-based; 0 = the OACK) waiting for an ACK or DATA.
        block: u64,
        /// Time since the last progress.
        elapsed: Duration,
        /// Retransmissions made.
        retries: u32,
    },
    /// The peer sent an ERROR packet.
    #[error("client sent ERROR {code}: {message}")]
    Peer {
        /// Error code sent by the peer.
        code: u16,
        /// Message sent by the peer.
        message: String,
    },
    /// The client never answered the first packet (a half-open transfer,
    /// see [`TransferConfig::half_open`]).
    #[error("the client never answered ({sends} transmissions of the first packet in {elapsed:.1?}): dropped as half-open")]
    HalfOpen {
        /// Time since the transfer started.
        elapsed: Duration,
        /// Transmissions of the first packet.
        sends: u32,
    },
    /// The peer broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The local side aborted (I/O error, limit, shutdown).
    #[error("{message}")]
    Aborted {
        /// Code sent to the peer.
        code: ErrorCode,
        /// Reason.
        message: String,
    },
}

/// Counters of a transfer, for events and summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Bytes confirmed by the peer (read) or received in order (write).
    pub bytes: u64,
    /// Data blocks (or ACKs/OACKs) sent again.
    pub retransmits: u64,
    /// Blocks confirmed.
    pub blocks: u64,
    /// Smoothed round-trip time, when measured.
    pub srtt: Option<Duration>,
    /// Retransmission timer expiries.
    pub timeouts: u64,
    /// Times sending waited for the client's receive ring to drain with
    /// no answer (see [`TransferConfig::rx_frames`]).
    pub drain_waits: u64,
    /// Clock probes sent: a block the client already holds, sent as the
    /// last packet the receive budget allows so that the client answers.
    pub probes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// OACK sent, waiting for ACK 0.
    Oack,
    /// Moving data.
    Data,
    /// Finished successfully.
    Done,
    /// Ended with an error.
    Failed,
}

fn wire(block: u64) -> u16 {
    (block & 0xffff) as u16
}

/// Maps a 16-bit block number to the absolute block in `[base, base+65535]`.
fn unwrap_block(base: u64, w: u16) -> u64 {
    base + u64::from(w.wrapping_sub(wire(base)))
}

// ---------------------------------------------------------------------------
// Read transfer (server sends)
// ---------------------------------------------------------------------------

/// Serves one file: RRQ from the client, DATA from us.
#[derive(Debug)]
pub struct ReadTransfer {
    cfg: TransferConfig,
    blksize: usize,
    window: u64,
    oack: Option<Vec<u8>>,
    phase: Phase,
    /// File bytes from `buf_start` on (the start of block `acked + 1`).
    buf: VecDeque<u8>,
    buf_start: u64,
    eof: bool,
    /// Highest block confirmed by the peer.
    acked: u64,
    /// Next block to put on the wire.
    next: u64,
    /// Highest block put on the wire so far.
    sent_max: u64,
    /// Blocks sent per burst: the negotiated window on a clean link,
    /// halved after a loss and grown back by one per clean window (see
    /// [`ReadTransfer::on_loss`]).
    cwnd: u64,
    /// No further halving until the client confirmed this block: one loss
    /// episode (a burst and its repair) halves the burst once.
    cwnd_hold: u64,
    /// The burst (named by `acked` when it started) that already ended
    /// with its clock probe.
    burst_probed: Option<u64>,
    /// Highest block sent as part of a burst (not by the timer's single
    /// packets, which may add a block past everything sent): an ACK below
    /// it reports a loss.
    burst_max: u64,
    /// First-send time of blocks `acked+1 ..= sent_max`, and whether each
    /// was retransmitted (Karn: no RTT sample from those).
    sent_at: VecDeque<SentBlock>,
    /// When the current head of the window was last (re)sent.
    head_sent_at: Option<Instant>,
    /// When the OACK was first sent, and whether it was sent again (then
    /// its ACK gives no RTT sample: Karn's rule).
    oack_sent: Option<(Instant, bool)>,
    rto: Rto,
    deadline: Option<Instant>,
    timeouts: u32,
    /// Recovery round: send up to this block instead of the window's end
    /// (everything sent so far and one block more; see `handle_timeout`).
    limit: Option<u64>,
    /// Windowed recovery: send only these blocks next, in this order (see
    /// `handle_timeout`).
    single: Vec<u64>,
    /// DATA packets sent since the client last said anything. Without a
    /// receive budget it is capped at a window and a block, so sending is
    /// clocked by the client's ACKs (with one, the budget does that).
    sent_since_ack: u64,
    /// DATA packets sent so far (every transmission counts).
    seq: u64,
    /// Every DATA packet with a sequence number up to this one has left the
    /// client's receive ring (processed, discarded or lost on the way). An
    /// ACK for block `b` proves it for everything sent before the
    /// transmission of `b` the client accepted (the link delivers in
    /// order); see [`SentBlock::accepted_after`].
    consumed_seq: u64,
    /// The part of `consumed_seq` proven by ACKs (a drain wait only
    /// assumes): the only ground for telling which transmission of a block
    /// the client accepted.
    proven_seq: u64,
    /// Lower bound of the sequence number of the transmission of block
    /// `acked` that the client accepted.
    acked_seq: u64,
    /// When the last DATA packet was sent.
    last_send_at: Option<Instant>,
    /// Sending waits for the receive budget until this time, then assumes
    /// the ring drained.
    blocked_until: Option<Instant>,
    last_progress: Instant,
    /// When the transfer started (the half-open limit counts from here).
    started: Instant,
    /// Whether the client has said anything from its TID.
    answered: bool,
    pending_error: Option<Vec<u8>>,
    stats: TransferStats,
    error: Option<TransferError>,
    now: Instant,
}

/// Send bookkeeping of one unconfirmed block.
#[derive(Debug, Clone)]
struct SentBlock {
    /// First transmission.
    first: Instant,
    /// Sent more than once (no RTT sample from it: Karn's rule).
    retransmitted: bool,
    /// Send sequence number (see `ReadTransfer::seq`) of the first
    /// transmission.
    first_seq: u64,
    /// Sequence numbers of the later transmissions (empty for most blocks).
    retx: Vec<u64>,
}

impl SentBlock {
    /// Lower bound of the sequence number of the transmission the client
    /// accepted, given that every packet up to `consumed` had already left
    /// its ring when it last reported a lower block: a transmission it
    /// consumed before reaching this block was discarded, not accepted.
    fn accepted_after(&self, consumed: u64) -> u64 {
        if self.first_seq > consumed {
            return self.first_seq;
        }
        self.retx
            .iter()
            .copied()
            .find(|&s| s > consumed)
            .unwrap_or(consumed)
    }
}

/// The shortest retransmission timeout with windows (see
/// `ReadTransfer::timeout`). With a 2 ms floor, clean windowed loads into
/// the virtual board's U-Boot had a few spurious timer expiries each (the
/// lmx summaries `bench/loss.sh` prints count them).
const WINDOW_RTO_MIN: Duration = Duration::from_millis(4);

/// The smallest burst `cwnd` is cut to after losses.
const MIN_BURST: u64 = 2;

/// Read-ahead granularity: file reads are at least this large.
pub const READ_CHUNK: usize = 64 * 1024;

/// Most file bytes a read transfer with this block size and window ever
/// buffers: the window, the block after everything sent (a recovery
/// round's last), one more, since a recovery round may have sent one
/// block past the window, and the rounding of a read up to
/// [`READ_CHUNK`]. For the largest request a client can make under the
/// default caps (blksize 65464, window 64) that is 4.2 MiB; for U-Boot's
/// (1468, 15) 89 KiB.
pub fn window_buffer(blksize: u16, window: u16) -> usize {
    (usize::from(window.max(1)) + 2) * usize::from(blksize) + READ_CHUNK
}

impl ReadTransfer {
    /// Starts a read transfer after negotiation. The first packet (OACK or
    /// DATA 1) is ready to send once enough data is supplied.
    pub fn new(negotiated: &Negotiated, cfg: TransferConfig, now: Instant) -> Self {
        let cfg = cfg.with_client_timeout(negotiated.timeout);
        let oack = (!negotiated.oack.is_empty()).then(|| {
            Packet::Oack {
                options: negotiated.oack.clone(),
            }
            .to_bytes()
        });
        let phase = if oack.is_some() {
            Phase::Oack
        } else {
            Phase::Data
        };
        ReadTransfer {
            cfg,
            blksize: negotiated.blksize as usize,
            window: negotiated.windowsize.max(1) as u64,
            oack,
            phase,
            buf: VecDeque::new(),
            buf_start: 0,
            eof: false,
            acked: 0,
            next: 1,
            sent_max: 0,
            cwnd: negotiated.windowsize.max(1) as u64,
            cwnd_hold: 0,
            burst_probed: None,
            burst_max: 0,
            sent_at: VecDeque::new(),
            head_sent_at: None,
            oack_sent: None,
            rto: Rto::new(cfg.rto),
            deadline: None,
            timeouts: 0,
            limit: None,
            single: Vec::new(),
            sent_since_ack: 0,
            seq: 0,
            consumed_seq: 0,
            proven_seq: 0,
            acked_seq: 0,
            last_send_at: None,
            blocked_until: None,
            last_progress: now,
            started: now,
            answered: false,
            pending_error: None,
            stats: TransferStats::default(),
            error: None,
            now,
        }
    }

    /// Whether the client has answered anything yet (an ACK or an ERROR
    /// from its TID); until then the transfer is half-open.
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// Whether the half-open treatment applies now.
    fn half_open(&self) -> bool {
        !self.answered && self.cfg.half_open.is_some()
    }

    /// Most bytes the transfer ever buffers: see [`window_buffer`].
    pub fn buffer_limit(&self) -> usize {
        window_buffer(self.blksize as u16, self.window as u16)
    }

    /// Whether the receive budget allows one more DATA packet now. When it
    /// does not, arms `blocked_until`: after a generous multiple of the
    /// measured round trip without an answer, the ring is assumed drained
    /// (processed, or everything in it was lost on the way).
    fn budget_allows(&mut self) -> bool {
        let Some(budget) = self.cfg.rx_budget() else {
            return true;
        };
        if self.seq - self.consumed_seq < budget {
            return true;
        }
        let wait = self
            .rto
            .srtt()
            .map(|s| s * 8)
            .unwrap_or(DRAIN_WAIT_MAX)
            .clamp(DRAIN_WAIT_MIN, DRAIN_WAIT_MAX);
        let until = self.last_send_at.unwrap_or(self.now) + wait;
        if self.now >= until {
            self.consumed_seq = self.seq;
            self.blocked_until = None;
            self.stats.drain_waits += 1;
            return true;
        }
        self.blocked_until = Some(until);
        false
    }

    /// Whether the DATA packet about to carry block `b` is the last one
    /// the receive budget allows before the client answers, while the
    /// client will not answer `b` by itself (it ACKs only at its window's
    /// end, `acked + window`, or on a gap). Then that packet is better spent
    /// on a *clock probe*: block `acked + 1` again, which the client, having
    /// moved past it, answers with an ACK of the last block it holds (U-Boot
    /// does so for any block other than the one it expects next, once per
    /// position). The ACK frees the budget as soon as the client has worked
    /// through the burst, instead of a drain wait.
    fn is_probe_slot(&self, b: u64) -> bool {
        let Some(budget) = self.cfg.rx_budget() else {
            return false;
        };
        self.window > 1
            && self.seq + 1 - self.consumed_seq == budget
            && b >= self.acked + 2
            && b < self.acked + self.window
            && self.last_block().is_none_or(|l| b < l)
    }

    /// Whether a burst cut short by `cwnd`, or a recovery round, has gone
    /// out without its clock probe: the client ACKs only at its window's
    /// end (`acked + window`), so such a burst ends with block `acked + 1`
    /// again, which it answers with an ACK of the last block it holds.
    fn short_burst_ended(&self) -> bool {
        if self.window == 1 {
            return false;
        }
        let end = match self.limit {
            // A recovery round (see `set_probe`) ends with a probe too: the
            // receiver may have taken its last blocks silently.
            Some(l) => l,
            None if self.cwnd < self.window => self.acked + self.cwnd,
            None => return false,
        };
        self.next == end + 1
            && self.burst_probed != Some(self.acked)
            && self.last_block().is_none_or(|l| end < l)
    }

    /// A loss was seen (a gap ACK, a repeated ACK or a timeout with
    /// windows): halve the burst, once per loss episode. A window of blocks
    /// queued behind a loss is discarded by the client and sent again; on
    /// a link losing several packets per window, smaller bursts keep those
    /// repeats (and the receive budget they hold) small instead of waiting
    /// for a drained ring after each cascade of losses.
    fn on_loss(&mut self) {
        if self.window > 1 && self.acked >= self.cwnd_hold {
            self.cwnd = (self.cwnd / 2).max(MIN_BURST.min(self.window));
            self.cwnd_hold = self.sent_max.max(self.acked + 1);
        }
    }

    /// Whether the OACK is still to be sent first (before any data).
    fn oack_unsent(&self) -> bool {
        self.phase == Phase::Oack && self.deadline.is_none()
    }

    /// How many more file bytes the machine wants appended with
    /// [`ReadTransfer::supply`] before it can send everything the window
    /// allows; 0 when it has enough or the file ended.
    pub fn wants(&self) -> usize {
        if self.eof || matches!(self.phase, Phase::Done | Phase::Failed) {
            return 0;
        }
        if self.half_open() {
            // No read-ahead for a client that has not answered: nothing
            // behind the OACK, only the first block without one.
            return match self.phase {
                Phase::Data => self.blksize.saturating_sub(self.buf.len()),
                _ => 0,
            };
        }
        let buffered_end = self.buf_start + self.buf.len() as u64;
        // The window, and one block past everything sent (recovery probe).
        let last_wanted = (self.acked + self.window).max(self.sent_max) + 1;
        let window_end = last_wanted * self.blksize as u64;
        if buffered_end >= window_end {
            return 0;
        }
        ((window_end - buffered_end) as usize)
            .max(READ_CHUNK)
            .min(self.buffer_limit().saturating_sub(self.buf.len()))
    }

    /// Appends file bytes; `eof` marks the end of the file.
    pub fn supply(&mut self, data: &[u8], eof: bool) {
        let need = self.buf.len() + data.len();
        if need > self.buf.capacity() {
            // Grow once to the bound instead of doubling past it, so the
            // memory a transfer holds is what `buffer_limit` says. (Before
            // the client answered, only what was asked for.)
            let target = if self.half_open() {
                need
            } else {
                need.max(self.buffer_limit())
            };
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend(data);
        self.eof |= eof;
    }

    /// Total length of the file, once its end was read.
    fn total_len(&self) -> Option<u64> {
        self.eof.then(|| self.buf_start + self.buf.len() as u64)
    }

    /// The final block number, once the file's end is known.
    fn last_block(&self) -> Option<u64> {
        self.total_len().map(|t| t / self.blksize as u64 + 1)
    }

    /// Data range of block `b` inside `buf`, if available.
    fn block_range(&self, b: u64) -> Option<Range<usize>> {
        let start = (b - 1) * self.blksize as u64;
        let end = start + self.blksize as u64;
        let buffered_end = self.buf_start + self.buf.len() as u64;
        if let Some(last) = self.last_block() {
            if b > last {
                return None;
            }
        }
        if buffered_end < end && !self.eof {
            return None;
        }
        let s = (start - self.buf_start) as usize;
        let e = (end.min(buffered_end) - self.buf_start) as usize;
        Some(s..e)
    }

    /// Writes the next datagram to send into `out` (cleared first).
    /// Returns false when there is nothing to send now.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        if let Some(e) = self.pending_error.take() {
            out.extend_from_slice(&e);
            return true;
        }
        match self.phase {
            Phase::Oack => {
                if self.oack_unsent() {
                    out.extend_from_slice(self.oack.as_deref().unwrap_or_default());
                    self.oack_sent = match self.oack_sent {
                        None => Some((self.now, false)),
                        Some((t, _)) => Some((t, true)),
                    };
                    self.arm_timer();
                    return true;
                }
                false
            }
            Phase::Data => {
                // Without a receive budget, a round stays within a window
                // and a block (with one, the budget bounds what may wait in
                // the client's ring, rounds included).
                if self.cfg.rx_budget().is_none() && self.sent_since_ack > self.window {
                    return false;
                }
                let single = self.single.first().copied();
                let limit = self.limit.unwrap_or(self.acked + self.cwnd);
                let mut end_probe = false;
                let mut b = match single {
                    Some(b) => b,
                    None if self.next <= limit => self.next,
                    None if self.short_burst_ended() => {
                        end_probe = true;
                        self.acked + 1
                    }
                    None => return false,
                };
                if self.block_range(b).is_none() {
                    return false;
                }
                if !self.budget_allows() {
                    return false;
                }
                let probe = end_probe || (single.is_none() && self.is_probe_slot(b));
                if probe {
                    b = self.acked + 1;
                    self.stats.probes += 1;
                    self.burst_probed = Some(self.acked);
                }
                let Some(range) = self.block_range(b) else {
                    return false;
                };
                out.reserve(4 + range.len());
                out.extend_from_slice(&(packet::Opcode::Data as u16).to_be_bytes());
                out.extend_from_slice(&wire(b).to_be_bytes());
                let (a, c) = self.buf.as_slices();
                if range.end <= a.len() {
                    out.extend_from_slice(&a[range]);
                } else if range.start >= a.len() {
                    out.extend_from_slice(&c[range.start - a.len()..range.end - a.len()]);
                } else {
                    out.extend_from_slice(&a[range.start..]);
                    out.extend_from_slice(&c[..range.end - a.len()]);
                }
                let idx = (b - self.acked - 1) as usize;
                if b <= self.sent_max {
                    self.stats.retransmits += 1;
                    if let Some(slot) = self.sent_at.get_mut(idx) {
                        slot.retransmitted = true;
                        slot.retx.push(self.seq + 1);
                    }
                } else {
                    self.sent_max = b;
                    self.sent_at.push_back(SentBlock {
                        first: self.now,
                        retransmitted: false,
                        first_seq: self.seq + 1,
                        retx: Vec::new(),
                    });
                }
                self.seq += 1;
                self.last_send_at = Some(self.now);
                self.blocked_until = None;
                if b == self.acked + 1 {
                    self.head_sent_at = Some(self.now);
                }
                self.sent_since_ack += 1;
                if single.is_none() && !probe {
                    self.burst_max = self.burst_max.max(b);
                }
                if single.is_some() {
                    self.single.remove(0);
                    self.next = self.next.max(b + 1);
                } else if !probe {
                    self.next += 1;
                }
                if self.deadline.is_none() {
                    self.arm_timer();
                }
                true
            }
            Phase::Done | Phase::Failed => false,
        }
    }

    fn arm_timer(&mut self) {
        self.deadline = Some(self.now + self.timeout());
    }

    /// The retransmission timeout: the adaptive one, and with windows at
    /// least [`WINDOW_RTO_MIN`]. A window's ACK comes after the client has
    /// worked through the whole burst, which a boot loader under emulation
    /// (or a busy host) now and then stretches past the measured spread;
    /// a timeout that fires then resends and disturbs the client's window
    /// for nothing, where in lock-step it costs one repeated block.
    fn timeout(&self) -> Duration {
        if self.half_open() {
            return self.cfg.first_packet_timeout(self.timeouts);
        }
        let t = self.rto.timeout();
        if self.window > 1 {
            t.max(WINDOW_RTO_MIN.min(self.cfg.rto.max))
        } else {
            t
        }
    }

    /// When [`ReadTransfer::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Done | Phase::Failed => None,
            _ => [self.deadline, self.blocked_until, self.half_open_deadline()]
                .into_iter()
                .flatten()
                .min(),
        }
    }

    /// When a transfer still half-open is dropped.
    fn half_open_deadline(&self) -> Option<Instant> {
        if self.answered {
            return None;
        }
        self.cfg.half_open_limit().map(|l| self.started + l)
    }

    /// Advances the clock without an event (e.g. after a read completed).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// Handles the expiry of the retransmission timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.blocked_until.is_some_and(|b| now >= b) {
            // poll_transmit finds the wait over and sends again.
            self.blocked_until = None;
        }
        if matches!(self.phase, Phase::Done | Phase::Failed) {
            return;
        }
        if self.half_open_deadline().is_some_and(|d| now >= d) {
            self.fail(
                TransferError::HalfOpen {
                    elapsed: now.saturating_duration_since(self.started),
                    sends: self.timeouts + 1,
                },
                Some((ErrorCode::NotDefined, "no answer: transfer dropped")),
            );
            return;
        }
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return,
        }
        let idle = now.saturating_duration_since(self.last_progress);
        if self.timeouts >= self.cfg.max_retries && idle >= self.cfg.give_up_after {
            let block = if self.phase == Phase::Oack {
                0
            } else {
                self.acked + 1
            };
            self.fail(
                TransferError::Timeout {
                    block,
                    elapsed: idle,
                    retries: self.timeouts,
                },
                Some((ErrorCode::NotDefined, "timed out waiting for ACK")),
            );
            return;
        }
        self.timeouts += 1;
        self.stats.timeouts += 1;
        self.rto.on_timeout();
        match self.phase {
            Phase::Oack => {
                self.stats.retransmits += 1;
                self.deadline = None; // poll_transmit resends the OACK
            }
            Phase::Data => {
                self.deadline = None;
                // The timer clocks this round instead of an ACK.
                self.sent_since_ack = 0;
                // A new round, which may end with a probe of its own.
                self.burst_probed = None;
                self.limit = None;
                if self.window == 1 {
                    // Lock-step: resend the unconfirmed block. Clients such
                    // as U-Boot and atftp answer a repeated block with one
                    // extra ACK and then ignore further repeats; when that
                    // ACK is lost too they hold the block and wait for their
                    // own timer (5 s), which our repeats may even keep
                    // resetting. From the second timeout on, also send the
                    // next block: a client that has the unconfirmed one
                    // accepts it and answers.
                    self.next = self.acked + 1;
                    if self.timeouts >= 2 {
                        self.set_probe();
                    }
                } else if self.timeouts % 3 != 0 {
                    // Windows, first timeout (of three): only the first
                    // unconfirmed block. A receiver that lost the window's
                    // tail, or whose window-end ACK was lost, answers the
                    // repeat with the ACK of its last block, and a timeout
                    // that was merely spurious (a late ACK) adds one packet
                    // that the receiver discards, not a second window
                    // queued behind the first: boot loaders have small
                    // receive rings, and U-Boot's virtio-net on QEMU stops
                    // receiving for good once its ring overflows.
                    //
                    // Second timeout: the block after everything sent, then
                    // the first unconfirmed one again. U-Boot, once it has
                    // answered a repeat (a gap or a clock probe) and that
                    // answer was lost, stays silent until it gets exactly
                    // the block after its last, usually the one after
                    // everything sent; it takes that block and answers the
                    // repeat behind it. (Sent on the first timeout, that
                    // extra block would shift U-Boot's window whenever the
                    // timeout was spurious.)
                    self.single.clear();
                    if self.timeouts % 3 == 2
                        && self.sent_max <= self.acked + self.window
                        && self.last_block().is_none_or(|l| self.sent_max < l)
                    {
                        self.single.push(self.sent_max + 1);
                    }
                    self.single.push(self.acked + 1);
                } else {
                    // Third timeout (the earlier bursts have drained by now):
                    // the whole window again and one block past it, ended
                    // by a clock probe. A receiver that already answered a
                    // repeat with a gap ACK (lost too) stays silent until it
                    // gets exactly the block it waits for, which can be
                    // anywhere in the window or just past it.
                    self.next = self.acked + 1;
                    self.set_probe();
                }
            }
            _ => {}
        }
    }

    /// Starts a recovery round: resend from the first unconfirmed block
    /// through the window and one block past it (a receiver whose answers
    /// were lost may be waiting for any of them; U-Boot, once it has
    /// answered a repeat, stays silent until it gets exactly the block
    /// after its last), never past the end of the file; with windows the
    /// round ends with a clock probe. The receive budget paces the round.
    fn set_probe(&mut self) {
        // Never past a window and a block: what lies beyond was sent only
        // by earlier rounds' single packets (see `handle_timeout`).
        let mut lim = (self.sent_max + 1).min(self.acked + self.window + 1);
        if let Some(l) = self.last_block() {
            lim = lim.min(l);
        }
        self.limit = Some(lim.max(self.acked + self.window));
    }

    /// Handles a datagram from the client's TID.
    pub fn handle_packet(&mut self, datagram: &[u8], now: Instant) {
        self.now = now;
        if matches!(self.phase, Phase::Done | Phase::Failed) {
            return;
        }
        let pkt = match Packet::parse(datagram) {
            Ok(p) => p,
            Err(e) => {
                let code = e.error_code();
                self.fail(
                    TransferError::Protocol(format!("malformed packet: {e}")),
                    Some((code, &format!("malformed packet: {e}"))),
                );
                return;
            }
        };
        if matches!(pkt, Packet::Ack { .. } | Packet::Error { .. }) {
            self.answered = true;
        }
        match pkt {
            Packet::Ack { block } => self.on_ack(block),
            Packet::Error { code, message } => {
                self.error = Some(TransferError::Peer { code, message });
                self.phase = Phase::Failed;
            }
            // A retransmitted request reaching the transfer (single-port
            // mode): the timer already resends what it lost.
            Packet::Rrq(_) | Packet::Wrq(_) => {}
            Packet::Data { .. } | Packet::Oack { .. } => {
                self.fail(
                    TransferError::Protocol("client sent DATA/OACK during a read".into()),
                    Some((ErrorCode::IllegalOperation, "expected ACK")),
                );
            }
        }
    }

    fn on_ack(&mut self, w: u16) {
        if self.phase == Phase::Oack {
            if w == 0 {
                self.phase = Phase::Data;
                self.deadline = None;
                self.timeouts = 0;
                self.last_progress = self.now;
                // The OACK's round trip is the first RTT sample, so that a
                // lost first DATA block costs milliseconds, not the initial
                // timeout (1 s).
                match self.oack_sent {
                    Some((t, false)) => self.rto.sample(self.now.saturating_duration_since(t)),
                    _ => self.rto.on_progress(),
                }
                self.stats.srtt = self.rto.srtt();
            }
            return;
        }
        let b = unwrap_block(self.acked, w);
        if b <= self.sent_max {
            // The client spoke: it has drained its queue up to here.
            self.sent_since_ack = 0;
            let accepted = if b == self.acked {
                // A repeated ACK comes from a client that took something
                // other than the block it waits for (or from its own
                // timeout, with its ring long empty): it has also consumed
                // the packet sent right after the one it accepted.
                Some(self.acked_seq + 1)
            } else {
                self.sent_at
                    .get((b - self.acked - 1) as usize)
                    .map(|e| e.accepted_after(self.proven_seq))
            };
            if let Some(a) = accepted {
                self.proven_seq = self.proven_seq.max(a);
                self.consumed_seq = self.consumed_seq.max(a);
                if b > self.acked {
                    self.acked_seq = a;
                }
            }
        }
        if b > self.sent_max {
            tracing::trace!(block = w, "ACK for a block never sent, ignored");
            return;
        }
        if b == self.acked {
            // Duplicate ACK. In lock-step never answer it (sorcerer's
            // apprentice). With windows it is the receiver asking again for
            // what follows: restart at once, but at most once per RTT so
            // duplicated ACKs cannot multiply the traffic.
            if self.window > 1 && self.sent_max > self.acked {
                let rtt = self.rto.srtt().unwrap_or(self.rto.timeout());
                let fresh = self
                    .head_sent_at
                    .is_some_and(|t| self.now.saturating_duration_since(t) < rtt);
                if !fresh {
                    self.on_loss();
                    self.next = self.acked + 1;
                    self.deadline = None;
                }
            }
            return;
        }
        // Progress: blocks acked+1 ..= b are confirmed. An ACK short of
        // the burst sent means the client lost what followed b (RFC 7440);
        // one covering the whole burst means the burst was clean, and it
        // may grow.
        let lost = b < self.burst_max;
        let newly = b - self.acked;
        // Karn's rule: only a block sent once gives an RTT sample. Progress
        // confirmed by a retransmitted block still ends the backoff: with
        // windows most ACKs after a loss are for resent blocks, and keeping
        // the backoff would slow every later recovery to the ceiling. (The
        // first timeout of a window resends a single block, so a spurious
        // timeout costs one packet, not a flood.)
        if let Some(e) = self.sent_at.get((newly - 1) as usize) {
            if !e.retransmitted {
                self.rto.sample(self.now.saturating_duration_since(e.first));
            } else {
                self.rto.on_progress();
            }
        }
        for _ in 0..newly {
            self.sent_at.pop_front();
        }
        let new_start = b * self.blksize as u64;
        let drop =
            (new_start.min(self.buf_start + self.buf.len() as u64) - self.buf_start) as usize;
        self.buf.drain(..drop);
        self.buf_start += drop as u64;
        self.acked = b;
        if lost {
            self.on_loss();
        } else if b >= self.cwnd_hold && self.cwnd < self.window {
            self.cwnd += 1;
        }
        self.stats.blocks = b;
        self.stats.bytes = match self.total_len() {
            Some(t) => t.min(new_start),
            None => new_start,
        };
        self.stats.srtt = self.rto.srtt();
        self.timeouts = 0;
        self.limit = None;
        self.single.clear();
        self.last_progress = self.now;
        // Continue right after b. When b is inside what was sent, the
        // receiver lost what followed it (RFC 7440): resend from there now.
        self.next = b + 1;
        // Blocks still unconfirmed keep a timer running; otherwise
        // poll_transmit arms it with the next send.
        self.deadline = (self.sent_max > self.acked).then(|| self.now + self.timeout());
        if self.last_block() == Some(b) {
            self.phase = Phase::Done;
        }
    }

    /// Aborts the transfer, sending ERROR `code` to the client.
    pub fn abort(&mut self, code: ErrorCode, message: &str) {
        self.fail(
            TransferError::Aborted {
                code,
                message: message.to_string(),
            },
            Some((code, message)),
        );
    }

    fn fail(&mut self, err: TransferError, send: Option<(ErrorCode, &str)>) {
        if let Some((code, msg)) = send {
            self.pending_error = Some(packet::error_packet(code, msg));
        }
        self.error = Some(err);
        self.phase = Phase::Failed;
        self.deadline = None;
    }

    /// True once the transfer ended (success or failure) and nothing is
    /// left to send.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed) && self.pending_error.is_none()
    }

    /// The outcome once finished: `Ok` on success.
    pub fn outcome(&self) -> Option<Result<(), TransferError>> {
        match self.phase {
            Phase::Done => Some(Ok(())),
            Phase::Failed => Some(Err(self
                .error
                .clone()
                .unwrap_or(TransferError::Protocol("unknown failure".into())))),
            _ => None,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TransferStats {
        self.stats
    }

    /// Bytes currently buffered (at most [`ReadTransfer::buffer_limit`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory the file buffer holds (its capacity).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

// ---------------------------------------------------------------------------
// Write transfer (server receives)
// ---------------------------------------------------------------------------

/// Receives one file: WRQ from the client, DATA to us.
#[derive(Debug)]
pub struct WriteTransfer {
    cfg: TransferConfig,
    blksize: usize,
    window: u64,
    max_bytes: u64,
    oack: Option<Vec<u8>>,
    /// Highest block received in order.
    received: u64,
    /// Block number at which the next ACK is due (window end).
    next_ack_at: u64,
    /// Last block for which we sent a gap ACK (avoid ACK storms).
    last_nack: Option<u64>,
    complete: bool,
    phase: Phase,
    ack_pending: bool,
    last_ack_sent: Option<(u64, Instant, bool)>,
    rto: Rto,
    deadline: Option<Instant>,
    timeouts: u32,
    last_progress: Instant,
    /// When the transfer started (the half-open limit counts from here).
    started: Instant,
    /// Whether the client has said anything from its TID.
    answered: bool,
    dally_until: Option<Instant>,
    pending_error: Option<Vec<u8>>,
    stats: TransferStats,
    error: Option<TransferError>,
    now: Instant,
}

/// What the caller must do with a datagram handed to [`WriteTransfer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Nothing to store.
    Nothing,
    /// Store `datagram[range]` as the next bytes of the file.
    Store(Range<usize>),
}

impl WriteTransfer {
    /// Starts a write transfer after negotiation. The first packet (OACK or
    /// ACK 0) is ready to send.
    pub fn new(negotiated: &Negotiated, max_bytes: u64, cfg: TransferConfig, now: Instant) -> Self {
        let cfg = cfg.with_client_timeout(negotiated.timeout);
        let oack = (!negotiated.oack.is_empty()).then(|| {
            Packet::Oack {
                options: negotiated.oack.clone(),
            }
            .to_bytes()
        });
        let window = negotiated.windowsize.max(1) as u64;
        WriteTransfer {
            cfg,
            blksize: negotiated.blksize as usize,
            window,
            max_bytes,
            oack,
            received: 0,
            next_ack_at: window,
            last_nack: None,
            complete: false,
            phase: Phase::Data,
            ack_pending: true,
            last_ack_sent: None,
            rto: Rto::new(cfg.rto),
            deadline: None,
            timeouts: 0,
            last_progress: now,
            started: now,
            answered: false,
            dally_until: None,
            pending_error: None,
            stats: TransferStats::default(),
            error: None,
            now,
        }
    }

    /// Writes the next datagram to send into `out`; false if none.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        if let Some(e) = self.pending_error.take() {
            out.extend_from_slice(&e);
            return true;
        }
        if !self.ack_pending || self.phase == Phase::Failed {
            return false;
        }
        self.ack_pending = false;
        let retransmit = self
            .last_ack_sent
            .is_some_and(|(b, _, _)| b == self.received);
        if retransmit {
            self.stats.retransmits += 1;
        }
        match (&self.oack, self.received) {
            (Some(o), 0) => out.extend_from_slice(o),
            _ => out.extend_from_slice(&packet::ack_packet(wire(self.received))),
        }
        self.last_ack_sent = Some((self.received, self.now, retransmit));
        if !self.complete {
            self.deadline = Some(self.now + self.timeout());
        }
        true
    }

    /// Whether the client has sent anything yet (DATA or an ERROR from its
    /// TID); until then the transfer is half-open.
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// The retransmission timeout: the first packet's own timer while
    /// half-open (see [`TransferConfig::half_open`]), else the adaptive one.
    fn timeout(&self) -> Duration {
        if !self.answered && self.cfg.half_open.is_some() {
            self.cfg.first_packet_timeout(self.timeouts)
        } else {
            self.rto.timeout()
        }
    }

    /// When a transfer still half-open is dropped.
    fn half_open_deadline(&self) -> Option<Instant> {
        if self.answered {
            return None;
        }
        self.cfg.half_open_limit().map(|l| self.started + l)
    }

    /// When [`WriteTransfer::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Failed => None,
            Phase::Done => self.dally_until,
            _ => match (self.deadline, self.half_open_deadline()) {
                (Some(d), Some(h)) => Some(d.min(h)),
                (d, h) => d.or(h),
            },
        }
    }

    /// Handles the timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.phase == Phase::Done {
            if self.dally_until.is_some_and(|d| now >= d) {
                self.dally_until = None;
            }
            return;
        }
        if self.phase == Phase::Data && self.half_open_deadline().is_some_and(|d| now >= d) {
            self.fail(
                TransferError::HalfOpen {
                    elapsed: now.saturating_duration_since(self.started),
                    sends: self.timeouts + 1,
                },
                Some((ErrorCode::NotDefined, "no answer: transfer dropped")),
            );
            return;
        }
        match self.deadline {
            Some(d) if now >= d && self.phase == Phase::Data => {}
            _ => return,
        }
        let idle = now.saturating_duration_since(self.last_progress);
        if self.timeouts >= self.cfg.max_retries && idle >= self.cfg.give_up_after {
            let block = self.received + 1;
            self.fail(
                TransferError::Timeout {
                    block,
                    elapsed: idle,
                    retries: self.timeouts,
                },
                Some((ErrorCode::NotDefined, "timed out waiting for DATA")),
            );
            return;
        }
        self.timeouts += 1;
        self.stats.timeouts += 1;
        self.rto.on_timeout();
        self.deadline = None;
        self.ack_pending = true;
    }

    /// Handles a datagram from the client's TID; tells the caller what to
    /// store.
    pub fn handle_packet(&mut self, datagram: &[u8], now: Instant) -> Received {
        self.now = now;
        if self.phase == Phase::Failed {
            return Received::Nothing;
        }
        let pkt = match Packet::parse(datagram) {
            Ok(p) => p,
            Err(e) => {
                if self.phase != Phase::Done {
                    let code = e.error_code();
                    self.fail(
                        TransferError::Protocol(format!("malformed packet: {e}")),
                        Some((code, &format!("malformed packet: {e}"))),
                    );
                }
                return Received::Nothing;
            }
        };
        if matches!(pkt, Packet::Data { .. } | Packet::Error { .. }) {
            self.answered = true;
        }
        match pkt {
            Packet::Data { block, data } => self.on_data(block, data.len()),
            Packet::Error { code, message } => {
                if self.phase != Phase::Done {
                    self.error = Some(TransferError::Peer { code, message });
                    self.phase = Phase::Failed;
                }
                Received::Nothing
            }
            Packet::Rrq(_) | Packet::Wrq(_) => Received::Nothing,
            Packet::Ack { .. } | Packet::Oack { .. } => {
                if self.phase != Phase::Done {
                    self.fail(
                        TransferError::Protocol("client sent ACK/OACK during a write".into()),
                        Some((ErrorCode::IllegalOperation, "expected DATA")),
                    );
                }
                Received::Nothing
            }
        }
    }

    fn on_data(&mut self, w: u16, len: usize) -> Received {
        let b = unwrap_block(self.received, w);
        let expected = self.received + 1;
        if self.phase == Phase::Done {
            // Dallying: the client did not get our final ACK.
            if b == self.received {
                self.ack_pending = true;
            }
            return Received::Nothing;
        }
        if b == self.received {
            // Duplicate of the last block: our ACK was lost. Re-ACK (the
            // sender must ignore duplicate ACKs; RFC 1123).
            if self.window == 1 {
                self.ack_pending = true;
            }
            return Received::Nothing;
        }
        if b != expected {
            // A gap (windowed sender, lost block): ask once for a restart.
            if self.last_nack != Some(self.received) {
                self.last_nack = Some(self.received);
                self.next_ack_at = self.received + self.window;
                self.ack_pending = true;
            }
            return Received::Nothing;
        }
        if len > self.blksize {
            self.fail(
                TransferError::Protocol(format!(
                    "DATA block of {len} bytes exceeds the negotiated block size {}",
                    self.blksize
                )),
                Some((ErrorCode::IllegalOperation, "block larger than blksize")),
            );
            return Received::Nothing;
        }
        let new_total = self.stats.bytes + len as u64;
        if new_total > self.max_bytes {
            self.fail(
                TransferError::Aborted {
                    code: ErrorCode::DiskFull,
                    message: format!("upload exceeds the limit of {} bytes", self.max_bytes),
                },
                Some((
                    ErrorCode::DiskFull,
                    "upload exceeds the server's size limit",
                )),
            );
            return Received::Nothing;
        }
        if let Some((ab, at, retransmitted)) = self.last_ack_sent {
            if ab + 1 == b && !retransmitted {
                self.rto.sample(self.now.saturating_duration_since(at));
            }
        }
        self.received = b;
        self.stats.bytes = new_total;
        self.stats.blocks = b;
        self.stats.srtt = self.rto.srtt();
        self.timeouts = 0;
        self.last_progress = self.now;
        self.deadline = Some(self.now + self.rto.timeout());
        if len < self.blksize {
            self.complete = true;
            self.phase = Phase::Done;
            self.deadline = None;
            self.dally_until = Some(self.now + self.cfg.dally);
            self.ack_pending = true;
        } else if b >= self.next_ack_at {
            self.next_ack_at = b + self.window;
            self.ack_pending = true;
        }
        Received::Store(4..4 + len)
    }

    /// Aborts the transfer, sending ERROR `code` to the client.
    pub fn abort(&mut self, code: ErrorCode, message: &str) {
        self.fail(
            TransferError::Aborted {
                code,
                message: message.to_string(),
            },
            Some((code, message)),
        );
    }

    fn fail(&mut self, err: TransferError, send: Option<(ErrorCode, &str)>) {
        if let Some((code, msg)) = send {
            self.pending_error = Some(packet::error_packet(code, msg));
        }
        self.error = Some(err);
        self.phase = Phase::Failed;
        self.deadline = None;
        self.ack_pending = false;
    }

    /// True when every byte of the file arrived (the caller can commit it).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// True once nothing more will happen: failed, or complete and the
    /// dally period is over.
    pub fn is_finished(&self) -> bool {
        match self.phase {
            Phase::Failed => self.pending_error.is_none(),
            Phase::Done => self.dally_until.is_none() && !self.ack_pending,
            _ => false,
        }
    }

    /// The outcome once decided (complete counts as success).
    pub fn outcome(&self) -> Option<Result<(), TransferError>> {
        match self.phase {
            Phase::Done => Some(Ok(())),
            Phase::Failed => Some(Err(self
                .error
                .clone()
                .unwrap_or(TransferError::Protocol("unknown failure".into())))),
            _ => None,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TransferStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
