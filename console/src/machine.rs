//! The sans-I/O heart of [`UBootShell`](crate::UBootShell): console bytes
//! and time in, bytes to send and outcomes out.
//!
//! Everything that decides *what* to send and *what the board said* lives
//! here, with no sockets, timers or threads, so every rule is testable
//! with byte strings and made-up instants:
//!
//! * **Attaching.** Watch for a banner, the autoboot text and a prompt;
//!   stop autoboot per the board's [`InterruptKey`](crate::InterruptKey); poke a silent line
//!   with Ctrl-C (never a bare newline). Once a prompt shows, clear the
//!   line with Ctrl-C and run a sync command whose end marker cannot
//!   match its own echo (`echo 'lmx''N.'$?` prints `lmxN.0`).
//! * **Typing.** A command line is sent in chunks; each chunk's echo is
//!   compared with what was sent before the next goes out. On a
//!   mismatch, or an echo that stops short, the line is cancelled with
//!   Ctrl-C (U-Boot prints `<INTERRUPT>` and a fresh prompt) and typed
//!   again with smaller chunks, up to [`Pacing::max_attempts`]. Enter is
//!   sent only after the whole line came back intact, so U-Boot never
//!   runs a line that differs from the one lmx meant.
//! * **Running.** Output is collected line by line until the marker;
//!   failure texts, a new banner (a reset) and the hush continuation
//!   prompt are recognised; the prompt is matched only at the start of
//!   a line, so `crc32 ... ==> 9a9dc62e` is output, not a prompt.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use lmx_boards::shell;

use crate::dialect::{Dialect, InterruptKey, MarkerMode};
use crate::error::{Refusal, ShellError, Tail};

const CTRL_C: u8 = 0x03;
/// Console lines kept for error messages.
const TAIL_LINES: usize = 16;
/// Longest partial line still checked against the prompt regex.
const MAX_PROMPT_LEN: usize = 80;
/// Bytes at the end of a partial line searched for an autoboot text
/// (the longest is well under 100 characters).
const AUTOBOOT_WINDOW: usize = 512;

/// The most the echo slack grows to after echoes that came late: an
/// emulator's CPU thread descheduled on a loaded host was seen to answer
/// more than 100 ms late, and a line then never got through 8 attempts.
pub const MAX_ECHO_SLACK: Duration = Duration::from_secs(2);

/// How lines are typed: chunk sizes, echo timeouts, retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    /// First chunk size in bytes.
    pub initial_chunk: usize,
    /// Smallest chunk (after repeated mismatches).
    pub min_chunk: usize,
    /// Largest chunk (after long clean runs).
    pub max_chunk: usize,
    /// Clean chunks in a row before the chunk size doubles.
    pub grow_after: u32,
    /// Extra time beyond the line time for an echo to arrive.
    pub echo_slack: Duration,
    /// Times one line is typed before giving up.
    pub max_attempts: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            initial_chunk: 16,
            min_chunk: 1,
            max_chunk: 64,
            grow_after: 8,
            echo_slack: Duration::from_millis(100),
            max_attempts: 8,
        }
    }
}

/// Counters of the typing layer, for `-v` output and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Lines sent with Enter.
    pub lines: u64,
    /// Bytes of command lines whose echo was verified.
    pub bytes: u64,
    /// Chunks sent.
    pub chunks: u64,
    /// Echo mismatches or short echoes (each cancels and retypes a line).
    pub mismatches: u64,
    /// Current chunk size.
    pub chunk: usize,
    /// Current pause between chunks.
    pub gap: Duration,
}

/// What a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Output lines joined with `\n` (no echo, no marker, no prompt).
    pub text: String,
    /// `$?` on hush builds; `None` when the build cannot report it.
    pub status: Option<i32>,
    /// The first failure text found in the output, if any.
    pub failure: Option<String>,
    /// The output's last line ran into lmx's end marker: it had no
    /// newline. U-Boot's `printf` formats into a buffer of
    /// `CONFIG_SYS_PBSIZE` bytes and cuts what does not fit, newline
    /// included, so a long `printenv NAME` answer shows this way.
    pub unterminated: bool,
}

impl CommandOutput {
    /// Whether the command succeeded: status 0 (or unknown) and no failure text.
    pub fn success(&self) -> bool {
        self.status.unwrap_or(0) == 0 && self.failure.is_none()
    }
}

/// The result of an operation started on the [`ShellMachine`].
#[derive(Debug)]
pub enum Outcome {
    /// Attached: at a clean prompt, in sync.
    Ready,
    /// A command finished (successfully or not; see [`CommandOutput::success`]).
    Output(CommandOutput),
    /// The operation failed.
    Failed(ShellError),
}

/// Per-command options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOptions {
    /// Do not treat a U-Boot banner in the output as a reset (`version`).
    pub banner_expected: bool,
}

/// Console text, split into lines, with a short history for errors.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
    history: VecDeque<String>,
    /// Number of line ends seen so far.
    count: u64,
}

impl Lines {
    /// Adds one byte; returns the completed line on `\n`.
    fn push(&mut self, b: u8) -> Option<String> {
        match b {
            b'\n' => {
                let line = printable(&self.partial);
                self.partial.clear();
                self.count += 1;
                if self.history.len() == TAIL_LINES {
                    self.history.pop_front();
                }
                self.history.push_back(line.clone());
                Some(line)
            }
            b'\r' => None,
            _ => {
                // A line of endless noise must not grow without bound.
                if self.partial.len() < 64 * 1024 {
                    self.partial.push(b);
                }
                None
            }
        }
    }

    fn partial(&self) -> String {
        printable(&self.partial)
    }

    /// The last `n` bytes of the partial line, as text: what a check made
    /// at every byte needs, in time independent of the line's length.
    fn partial_tail(&self, n: usize) -> String {
        printable(&self.partial[self.partial.len().saturating_sub(n)..])
    }

    fn tail(&self) -> Tail {
        let mut v: Vec<String> = self.history.iter().cloned().collect();
        if !self.partial.is_empty() {
            v.push(self.partial());
        }
        Tail(v)
    }
}

/// Bytes as text: UTF-8 where valid, control bytes as `\xNN` (backspaces
/// of countdowns dropped) so noise prints safely.
fn printable(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{8}' => {}
            c if (c as u32) < 0x20 && c != '\t' || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

fn is_banner(line: &str) -> bool {
    // `U-Boot 2023.01+dfsg-2 (...)`, `U-Boot SPL 2023.01`, `U-Boot 1.1.3 (...)`.
    let Some(rest) = line.trim_start().strip_prefix("U-Boot ") else {
        return false;
    };
    let rest = rest.strip_prefix("SPL ").unwrap_or(rest);
    rest.starts_with(|c: char| c.is_ascii_digit())
}

#[derive(Debug)]
enum Op {
    Idle,
    Attach(Attach),
    Command(Box<Command>),
}

#[derive(Debug)]
struct Attach {
    started: Instant,
    deadline: Instant,
    last_rx: Instant,
    last_poke: Option<Instant>,
    /// When the interrupt was last sent in this boot, and how often.
    interrupt_at: Option<Instant>,
    interrupts: u32,
    /// The autoboot text was seen since the last banner.
    autoboot_seen: bool,
    booting_since: Option<Instant>,
    /// Last key sent while hammering (bootdelay 0).
    hammered_at: Option<Instant>,
    /// The board was just powered on: no Ctrl-C poke before its first
    /// byte (see [`ShellMachine::attach_at_power_on`]).
    power_on: bool,
    /// The board has printed something since the attach began.
    heard: bool,
}

#[derive(Debug)]
enum Phase {
    /// Sending chunks and checking their echo.
    Typing {
        echoed: usize,
        sent: usize,
        echo_deadline: Option<Instant>,
        not_before: Instant,
    },
    /// Enter sent; waiting for the end of the echoed line.
    Entering { deadline: Instant },
    /// Collecting output until the marker.
    Output,
    /// Marker seen; waiting for the prompt.
    Prompt,
    /// Ctrl-C sent; waiting for a fresh prompt, then typing (again).
    Cancelling {
        deadline: Instant,
        tries: u32,
        after_line: u64,
    },
}

#[derive(Debug)]
struct Command {
    body: String,
    line: Vec<u8>,
    marker: String,
    opts: CommandOptions,
    is_sync: bool,
    started: Instant,
    deadline: Instant,
    phase: Phase,
    attempts: u32,
    output: Vec<String>,
    failure: Option<String>,
    status: Option<i32>,
    /// Output ran into the marker without a newline.
    unterminated: bool,
    /// Enter was sent in this attempt.
    entered: bool,
}

/// The sans-I/O U-Boot driver: feed it console bytes ([`receive`]) and
/// time ([`handle_timeout`]); send what [`poll_transmit`] returns; read
/// results from [`poll_outcome`]. One operation at a time.
///
/// [`receive`]: ShellMachine::receive
/// [`handle_timeout`]: ShellMachine::handle_timeout
/// [`poll_transmit`]: ShellMachine::poll_transmit
/// [`poll_outcome`]: ShellMachine::poll_outcome
#[derive(Debug)]
pub struct ShellMachine {
    dialect: Dialect,
    pacing: Pacing,
    chunk: usize,
    gap: Duration,
    /// The echo slack in use: [`Pacing::echo_slack`], doubled after each
    /// echo that did not come back in time (up to [`MAX_ECHO_SLACK`]) and
    /// eased back on clean runs. A host or an emulator too busy to echo
    /// within the slack is not dropping bytes; retyping faster than it
    /// echoes would never get a line through.
    slack: Duration,
    /// When the last chunk went out and up to which byte, to measure how
    /// long its echo took.
    chunk_sent: Option<(Instant, usize)>,
    clean_streak: u32,
    clean_bytes: usize,
    /// When a command last saw the board reset.
    last_reset: Option<Instant>,
    /// The instant of the latest input (bytes or a timeout).
    clock: Instant,
    /// Chunk size that last failed; growth stays below it.
    ceiling: Option<usize>,
    /// Clean growth opportunities spent at the ceiling.
    probe: u32,
    lines: Lines,
    tx: VecDeque<Vec<u8>>,
    op: Op,
    outcomes: VecDeque<Outcome>,
    ready: bool,
    nonce: u32,
    stats: SendStats,
}

impl ShellMachine {
    /// A machine for `dialect`, not yet attached.
    pub fn new(dialect: Dialect, pacing: Pacing) -> ShellMachine {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(16))
            .unwrap_or(0x5eed);
        let chunk = pacing
            .initial_chunk
            .clamp(pacing.min_chunk.max(1), pacing.max_chunk.max(1));
        let slack = pacing.echo_slack;
        ShellMachine {
            dialect,
            pacing,
            chunk,
            gap: Duration::ZERO,
            slack,
            chunk_sent: None,
            clean_streak: 0,
            clean_bytes: 0,
            last_reset: None,
            clock: Instant::now(),
            ceiling: None,
            probe: 0,
            lines: Lines::default(),
            tx: VecDeque::new(),
            op: Op::Idle,
            outcomes: VecDeque::new(),
            ready: false,
            nonce: seed & 0xff_ffff,
            stats: SendStats {
                chunk,
                ..SendStats::default()
            },
        }
    }

    /// The dialect in use.
    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// Whether the last operation left U-Boot at a known, clean prompt.
    pub fn is_ready(&self) -> bool {
        self.ready && matches!(self.op, Op::Idle)
    }

    /// Whether an operation is in progress.
    pub fn is_busy(&self) -> bool {
        !matches!(self.op, Op::Idle)
    }

    /// Typing counters.
    pub fn stats(&self) -> SendStats {
        SendStats {
            chunk: self.chunk,
            gap: self.gap,
            ..self.stats.clone()
        }
    }

    /// Drops the operation in progress (the transport failed); the next
    /// operation starts from an unknown state.
    pub fn abandon(&mut self) {
        self.op = Op::Idle;
        self.ready = false;
        self.tx.clear();
        self.outcomes.clear();
    }

    /// The last console lines.
    pub fn tail(&self) -> Tail {
        self.lines.tail()
    }

    /// Starts attaching: stop autoboot or find the prompt, then sync.
    pub fn attach(&mut self, now: Instant, timeout: Duration) -> Result<(), ShellError> {
        self.start_attach(now, timeout, false)
    }

    /// [`attach`](Self::attach) for a board that was powered on just now
    /// (a virtual board lmx started): stay silent until it prints its
    /// first byte, then go on as `attach` does. A Ctrl-C poke that reaches
    /// QEMU's UART before U-Boot has set it up was seen to make U-Boot
    /// ignore every key of the autoboot countdown that followed (the
    /// board then booted through), on a loaded host.
    pub fn attach_at_power_on(
        &mut self,
        now: Instant,
        timeout: Duration,
    ) -> Result<(), ShellError> {
        self.start_attach(now, timeout, true)
    }

    fn start_attach(
        &mut self,
        now: Instant,
        timeout: Duration,
        power_on: bool,
    ) -> Result<(), ShellError> {
        if self.is_busy() {
            return Err(ShellError::Refused {
                command: "(attach)".into(),
                reason: Refusal::Busy,
            });
        }
        self.ready = false;
        if power_on {
            // Whatever the console showed before the power-on (a prompt
            // the board sat at before its power was cycled) is gone with
            // it: taken for the current prompt, it would start the sync
            // into the reboot.
            self.lines.partial.clear();
        }
        // A reset seen during the last command means a boot is under way.
        let booting_since = self.last_reset.filter(|t| now < *t + HAMMER_FOR);
        let hammered_at = (self.dialect.hammer && booting_since.is_some()).then(|| {
            self.tx.push_back(self.dialect.interrupt.bytes().to_vec());
            now
        });
        self.op = Op::Attach(Attach {
            started: now,
            deadline: now + timeout,
            last_rx: now,
            last_poke: None,
            interrupt_at: None,
            interrupts: 0,
            autoboot_seen: false,
            booting_since,
            hammered_at,
            power_on,
            heard: false,
        });
        Ok(())
    }

    /// Checks a command without sending it: printable ASCII, not empty,
    /// no trap of this board in any of its `;`-separated commands, short
    /// enough for U-Boot's readline once lmx's end marker is added
    /// ([`Dialect::max_command_len`], the limit the planners use too), and
    /// no command longer than `CONFIG_SYS_MAXARGS` words (counted as
    /// typed; what `${NAME}` expands to is the planner's to count).
    pub fn check(&self, command: &str) -> Result<(), Refusal> {
        let body = trim_body(command);
        if body.is_empty() {
            return Err(Refusal::Empty);
        }
        if let Some((index, &byte)) = command
            .as_bytes()
            .iter()
            .enumerate()
            .find(|(_, &b)| !(0x20..0x7f).contains(&b))
        {
            return Err(Refusal::ControlByte { index, byte });
        }
        // The last line of defence: whatever built the line, a trap of
        // this board is never typed.
        if let Some((inv, trap)) = self.dialect.trap(body) {
            return Err(Refusal::Trap {
                command: inv.words.join(" "),
                reason: trap.reason.clone(),
            });
        }
        if self.dialect.quotes_special {
            hush_lex_check(body)?;
        }
        let limit = self.dialect.line_limit();
        let max = limit.body_max();
        match &self.dialect.wrapper {
            None if body.len() > max => {
                return Err(Refusal::TooLong {
                    len: body.len(),
                    max,
                    cbsize: self.dialect.cbsize,
                })
            }
            Some(w) => {
                // The wrapper runs `setenv NAME ${NAME}; BODY`: an operator
                // first would join BODY to the wrapper's own command.
                if body.starts_with([';', '&', '|']) {
                    return Err(Refusal::Unwrappable {
                        wrapper: w.command.clone(),
                        why: "it starts with `;`, `&` or `|`, which would join it to the wrapper's own setenv",
                    });
                }
                let len = limit.cost(body);
                if len > max {
                    return Err(Refusal::TooLongWrapped {
                        len,
                        max,
                        cbsize: self.dialect.cbsize,
                        wrapper: w.command.clone(),
                        buffer: w.buffer,
                    });
                }
            }
            None => {}
        }
        let maxargs = self.dialect.maxargs;
        if let Some(inv) = shell::invocations(body, self.dialect.quotes_special)
            .into_iter()
            .find(|inv| inv.words.len() > maxargs)
        {
            return Err(Refusal::TooManyArgs {
                command: inv.words.first().cloned().unwrap_or_default(),
                words: inv.words.len(),
                maxargs,
            });
        }
        Ok(())
    }

    /// Starts a command. It is refused (nothing sent) when [`check`]
    /// fails or when the machine is not at a prompt (attach first).
    ///
    /// [`check`]: ShellMachine::check
    pub fn command(
        &mut self,
        now: Instant,
        command: &str,
        timeout: Duration,
        opts: CommandOptions,
    ) -> Result<(), ShellError> {
        if let Err(reason) = self.check(command) {
            return Err(ShellError::Refused {
                command: command.to_string(),
                reason,
            });
        }
        if !self.is_ready() {
            return Err(ShellError::Refused {
                command: command.to_string(),
                reason: Refusal::Busy,
            });
        }
        let cmd = self.new_command(now, trim_body(command), timeout, opts, false);
        self.op = Op::Command(Box::new(cmd));
        self.ready = false;
        Ok(())
    }

    fn suffix(&self, nonce: &str) -> String {
        self.dialect.markers.suffix(nonce)
    }

    fn new_command(
        &mut self,
        now: Instant,
        body: &str,
        timeout: Duration,
        opts: CommandOptions,
        is_sync: bool,
    ) -> Command {
        // A nonce whose marker does not already occur in the command.
        let nonce = loop {
            self.nonce = (self.nonce + 1) & 0xff_ffff;
            let n = format!("{:0width$x}", self.nonce, width = shell::NONCE_DIGITS);
            if !body.contains(&format!("lmx{n}")) {
                break n;
            }
        };
        let suffix = self.suffix(&nonce);
        let line = if body.is_empty() {
            suffix
        } else {
            format!("{body}{}{suffix}", shell::MARKER_SEPARATOR)
        };
        // On a restricted prompt the whole line, marker included, goes
        // through the board's wrapper (the marker's `echo` is refused too).
        let line = self.dialect.wrap_line(&line);
        let marker = match self.dialect.markers {
            MarkerMode::EchoStatus | MarkerMode::Echo => format!("lmx{nonce}."),
            MarkerMode::UnknownCommand => format!("'lmx{nonce}'"),
        };
        let phase = if is_sync {
            // Clear whatever is in the line buffer (a stray interrupt key).
            self.tx.push_back(vec![CTRL_C]);
            Phase::Cancelling {
                deadline: now + self.cancel_timeout(),
                tries: 1,
                after_line: self.lines.count,
            }
        } else {
            Phase::Typing {
                echoed: 0,
                sent: 0,
                echo_deadline: None,
                not_before: now,
            }
        };
        Command {
            body: if is_sync {
                "(sync)".to_string()
            } else {
                body.to_string()
            },
            line: line.into_bytes(),
            marker,
            opts,
            is_sync,
            started: now,
            deadline: now + timeout,
            phase,
            attempts: if is_sync { 0 } else { 1 },
            output: Vec::new(),
            unterminated: false,
            failure: None,
            status: None,
            entered: false,
        }
    }

    fn cancel_timeout(&self) -> Duration {
        self.slack * 4 + self.dialect.char_time() * 64
    }

    fn echo_timeout(&self, bytes: usize) -> Duration {
        self.slack + self.dialect.char_time() * (bytes as u32 * 2 + 2)
    }

    /// Bytes to write to the console now, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.drive(now);
        self.tx.pop_front()
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_deadline(&self) -> Option<Instant> {
        match &self.op {
            Op::Idle => None,
            Op::Attach(a) => {
                let mut d = a.deadline;
                // A board just powered on is not poked before its first byte.
                if !(a.power_on && a.last_rx == a.started) {
                    d = d.min(a.last_rx.max(a.last_poke.unwrap_or(a.last_rx)) + self.poke_quiet(a));
                }
                if let Some(t) = a.interrupt_at {
                    d = d.min(t + INTERRUPT_REPEAT);
                }
                if let Some(t) = a.hammered_at {
                    d = d.min(t + HAMMER_EVERY);
                }
                Some(d)
            }
            Op::Command(c) => Some(match &c.phase {
                Phase::Typing {
                    echo_deadline,
                    not_before,
                    echoed,
                    sent,
                } => {
                    let mut d = c.deadline;
                    if let Some(e) = echo_deadline {
                        d = d.min(*e);
                    }
                    let free = self.chunk.saturating_sub(sent - echoed);
                    if free >= self.chunk.div_ceil(4) && *sent < c.line.len() {
                        d = d.min(*not_before);
                    }
                    d
                }
                Phase::Entering { deadline } | Phase::Cancelling { deadline, .. } => {
                    c.deadline.min(*deadline)
                }
                Phase::Output | Phase::Prompt => c.deadline,
            }),
        }
    }

    /// A finished operation's result, if any.
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.outcomes.pop_front()
    }

    /// Call when [`poll_deadline`](Self::poll_deadline) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = now;
        match std::mem::replace(&mut self.op, Op::Idle) {
            Op::Idle => {}
            Op::Attach(mut a) => {
                if now >= a.deadline {
                    self.finish(Outcome::Failed(ShellError::NoPrompt {
                        waited: now - a.started,
                        tail: self.lines.tail(),
                    }));
                    return;
                }
                if let Some(t) = a.interrupt_at {
                    // Autoboot still counting: the key may have been lost.
                    if now >= t + INTERRUPT_REPEAT && a.autoboot_seen && a.interrupts < 5 {
                        self.send_interrupt(now, &mut a);
                    }
                }
                if let (Some(t), Some(b)) = (a.hammered_at, a.booting_since) {
                    if now >= t + HAMMER_EVERY {
                        if now < b + HAMMER_FOR && !a.autoboot_seen {
                            self.tx.push_back(self.dialect.interrupt.bytes().to_vec());
                            a.hammered_at = Some(now);
                        } else {
                            a.hammered_at = None;
                        }
                    }
                }
                let quiet_since = a.last_rx.max(a.last_poke.unwrap_or(a.last_rx));
                let booting = a
                    .booting_since
                    .is_some_and(|b| now < b + Duration::from_secs(3) && !a.autoboot_seen);
                let silent_board = a.power_on && a.last_rx == a.started;
                if now >= quiet_since + self.poke_quiet(&a) && !booting && !silent_board {
                    // Never a bare newline: Ctrl-C cancels a half-typed
                    // line and makes U-Boot print a fresh prompt.
                    self.tx.push_back(vec![CTRL_C]);
                    a.last_poke = Some(now);
                }
                self.op = Op::Attach(a);
            }
            Op::Command(mut c) => {
                if now >= c.deadline {
                    let phase = match c.phase {
                        Phase::Typing { .. } | Phase::Entering { .. } => "typing the command",
                        Phase::Cancelling { .. } => "cancelling a garbled line",
                        Phase::Output => "waiting for the command to finish",
                        Phase::Prompt => "waiting for the prompt after the command",
                    };
                    // Stop whatever is still running; the next operation re-syncs.
                    self.tx.push_back(vec![CTRL_C]);
                    let err = if c.is_sync {
                        ShellError::NoPrompt {
                            waited: now - c.started,
                            tail: self.lines.tail(),
                        }
                    } else {
                        ShellError::Timeout {
                            command: c.body.clone(),
                            phase,
                            waited: now - c.started,
                            tail: self.lines.tail(),
                        }
                    };
                    self.finish(Outcome::Failed(err));
                    return;
                }
                match &mut c.phase {
                    Phase::Typing {
                        echo_deadline: Some(e),
                        ..
                    } if now >= *e => {
                        // The echo stopped short: a byte was dropped, or
                        // the far end is slower than the slack allows.
                        self.slack = (self.slack * 2).min(MAX_ECHO_SLACK);
                        self.mismatch(now, &mut c);
                    }
                    Phase::Entering { deadline } if now >= *deadline => {
                        // Enter was lost (the line is still in U-Boot's
                        // buffer). Cancel and retype rather than send a
                        // second Enter, which could repeat the command.
                        self.mismatch(now, &mut c);
                    }
                    Phase::Cancelling {
                        deadline, tries, ..
                    } if now >= *deadline => {
                        if *tries >= 4 {
                            let err = ShellError::NoPrompt {
                                waited: now - c.started,
                                tail: self.lines.tail(),
                            };
                            self.finish(Outcome::Failed(err));
                            return;
                        }
                        *tries += 1;
                        *deadline = now + self.cancel_timeout();
                        self.tx.push_back(vec![CTRL_C]);
                    }
                    _ => {}
                }
                self.op = Op::Command(c);
            }
        }
    }

    /// Feeds bytes received from the console.
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) {
        self.clock = now;
        for &b in bytes {
            let line = self.lines.push(b);
            match std::mem::replace(&mut self.op, Op::Idle) {
                Op::Idle => {}
                Op::Attach(mut a) => {
                    a.last_rx = now;
                    a.heard = true;
                    self.op = Op::Attach(a);
                    self.attach_byte(now, line);
                }
                Op::Command(mut c) => {
                    if self.command_byte(now, &mut c, b, line) {
                        self.op = Op::Command(c);
                    }
                }
            }
        }
        self.drive(now);
    }

    fn partial_is_prompt(&self) -> bool {
        self.lines.partial.len() <= MAX_PROMPT_LEN && self.dialect.is_prompt(&self.lines.partial())
    }

    fn attach_byte(&mut self, now: Instant, line: Option<String>) {
        let Op::Attach(mut a) = std::mem::replace(&mut self.op, Op::Idle) else {
            return;
        };
        if let Some(l) = &line {
            if is_banner(l) {
                a.booting_since = Some(now);
                a.autoboot_seen = false;
                a.interrupt_at = None;
                a.interrupts = 0;
                if self.dialect.hammer {
                    // No countdown to wait for: keep a key in the FIFO
                    // for the one moment U-Boot looks.
                    self.tx.push_back(self.dialect.interrupt.bytes().to_vec());
                    a.hammered_at = Some(now);
                }
            }
        }
        let autoboot = match &line {
            Some(l) => self.dialect.autoboot.iter().any(|t| l.contains(t.as_str())),
            // Checked at every byte, so an autoboot text first shows when
            // its last byte arrives, at the end of the partial line: look
            // only then, and only at the end. Converting the whole partial
            // line at every byte took quadratic time on a long line of
            // noise (16 KiB of control bytes without a newline kept lmx
            // busy for minutes; found while fuzzing, `fuzz/README.md`).
            None => {
                let last = self.lines.partial.last();
                self.dialect
                    .autoboot
                    .iter()
                    .any(|t| t.as_bytes().last() == last)
                    && {
                        let tail = self.lines.partial_tail(AUTOBOOT_WINDOW);
                        self.dialect
                            .autoboot
                            .iter()
                            .any(|t| tail.contains(t.as_str()))
                    }
            }
        };
        if autoboot && !a.autoboot_seen {
            a.autoboot_seen = true;
            self.send_interrupt(now, &mut a);
        }
        if line.is_none() && self.partial_is_prompt() {
            let timeout = a.deadline.saturating_duration_since(now);
            let cmd = self.new_command(now, "", timeout, CommandOptions::default(), true);
            self.op = Op::Command(Box::new(cmd));
            return;
        }
        self.op = Op::Attach(a);
    }

    /// How long the line must be quiet before a Ctrl-C poke. A board that
    /// is stopped with a menu key or a typed string reads any key as an
    /// answer (TP-Link's Ralink loader boots on a wrong first key, GL's
    /// AR750 ends a second of its countdown per stray key), so once the
    /// board has printed anything lmx waits longer for the autoboot text
    /// before it pokes: a pause in a boot log whose banner lmx does not
    /// recognise is not a silent prompt.
    fn poke_quiet(&self, a: &Attach) -> Duration {
        let careful = !matches!(self.dialect.interrupt, InterruptKey::AnyKey(_));
        if careful && a.heard && !a.autoboot_seen {
            CAREFUL_POKE_QUIET
        } else {
            POKE_QUIET
        }
    }

    fn send_interrupt(&mut self, now: Instant, a: &mut Attach) {
        self.tx.push_back(self.dialect.interrupt.bytes().to_vec());
        a.interrupt_at = Some(now);
        a.interrupts += 1;
    }

    /// Handles one byte for a running command; false when it finished.
    fn command_byte(&mut self, now: Instant, c: &mut Command, b: u8, line: Option<String>) -> bool {
        match &mut c.phase {
            Phase::Typing {
                echoed,
                sent,
                echo_deadline,
                ..
            } => {
                if *echoed < *sent && c.line[*echoed] == b {
                    *echoed += 1;
                    if let Some((at, upto)) = self.chunk_sent {
                        if *echoed == upto {
                            // The slack follows the echo delay measured:
                            // twice the latest, eased down slowly.
                            let want = ((now - at) * 2).max(self.pacing.echo_slack);
                            self.slack = if want > self.slack {
                                want.min(MAX_ECHO_SLACK)
                            } else {
                                (self.slack * 7 / 8).max(want)
                            };
                            self.chunk_sent = None;
                        }
                    }
                    self.clean_bytes += 1;
                    if self.clean_bytes >= self.chunk {
                        self.clean_bytes = 0;
                        self.clean_chunk();
                    }
                    // Progress: the oldest unechoed byte gets a fresh timeout.
                    *echo_deadline =
                        (*echoed < *sent).then(|| now + self.echo_timeout(*sent - *echoed));
                    if *echoed == c.line.len() {
                        // The whole line came back intact: only now Enter.
                        self.tx.push_back(b"\r".to_vec());
                        c.entered = true;
                        self.stats.lines += 1;
                        self.stats.bytes += c.line.len() as u64;
                        c.phase = Phase::Entering {
                            deadline: now + self.echo_timeout(2),
                        };
                    }
                    true
                } else {
                    self.mismatch(now, c);
                    true
                }
            }
            Phase::Entering { .. } => {
                match b {
                    b'\n' => c.phase = Phase::Output,
                    b'\r' => {}
                    _ => self.mismatch(now, c),
                }
                true
            }
            Phase::Output => {
                if let Some(l) = line {
                    if let Some(pos) = l.find(&c.marker) {
                        let mut before = &l[..pos];
                        // `Unknown command 'lmxN' - try 'help'` is all marker.
                        if self.dialect.markers == MarkerMode::UnknownCommand {
                            // What a build prints before the name it does
                            // not know, whatever its exact wording.
                            before = match before.rfind("nknown command") {
                                Some(i) => before[..i].trim_end_matches(['U', 'u']),
                                None => before,
                            };
                            let cut = before.trim_end_matches(['#', ' ']);
                            if cut.is_empty() {
                                before = cut;
                            }
                        }
                        if !before.is_empty() {
                            // Output that ran into the marker (its line
                            // end lost on the way) is judged like any
                            // other line: a failure text there fails the
                            // command (found by the console_session fuzz
                            // target).
                            if c.failure.is_none() {
                                c.failure = self
                                    .dialect
                                    .failure_in(before)
                                    .map(|_| before.trim().to_string());
                            }
                            c.output.push(before.to_string());
                            c.unterminated = true;
                        }
                        let after = &l[pos + c.marker.len()..];
                        if self.dialect.markers == MarkerMode::EchoStatus {
                            c.status = after.trim().parse().ok();
                        }
                        c.phase = Phase::Prompt;
                        return true;
                    }
                    if is_banner(&l) && !c.opts.banner_expected {
                        return self.fail(ShellError::Reset {
                            command: c.body.clone(),
                            tail: self.lines.tail(),
                        });
                    }
                    if c.failure.is_none() {
                        c.failure = self.dialect.failure_in(&l).map(|_| l.trim().to_string());
                    }
                    c.output.push(l);
                    return true;
                }
                if self.lines.partial.len() <= MAX_PROMPT_LEN && self.lines.partial() == "> " {
                    // Hush wants the rest of a quoted string or block.
                    self.tx.push_back(vec![CTRL_C]);
                    return self.fail(ShellError::Incomplete {
                        command: c.body.clone(),
                        tail: self.lines.tail(),
                    });
                }
                if self.partial_is_prompt() {
                    self.tx.push_back(vec![CTRL_C]);
                    return self.fail(ShellError::Lost {
                        command: c.body.clone(),
                        what: "the prompt came back without lmx's end marker",
                        tail: self.lines.tail(),
                    });
                }
                true
            }
            Phase::Prompt => {
                if let Some(l) = line {
                    if is_banner(&l) && !c.opts.banner_expected {
                        return self.fail(ShellError::Reset {
                            command: c.body.clone(),
                            tail: self.lines.tail(),
                        });
                    }
                    return true;
                }
                if self.partial_is_prompt() {
                    self.ready = true;
                    if c.is_sync {
                        self.finish(Outcome::Ready);
                    } else {
                        let out = CommandOutput {
                            text: std::mem::take(&mut c.output).join("\n"),
                            status: c.status,
                            failure: c.failure.take(),
                            unterminated: c.unterminated,
                        };
                        self.finish(Outcome::Output(out));
                    }
                    return false;
                }
                true
            }
            Phase::Cancelling { after_line, .. } => {
                if let Some(l) = &line {
                    if c.entered && l.contains(&c.marker) {
                        // The line ran after all (a garbled echo of Enter):
                        // typing it again could run it twice.
                        return self.fail(ShellError::Lost {
                            command: c.body.clone(),
                            what: "the command ran while lmx was cancelling it",
                            tail: self.lines.tail(),
                        });
                    }
                    if is_banner(l) {
                        return self.fail(ShellError::Reset {
                            command: c.body.clone(),
                            tail: self.lines.tail(),
                        });
                    }
                }
                if line.is_none() && self.lines.count > *after_line && self.partial_is_prompt() {
                    if c.attempts >= self.pacing.max_attempts {
                        return self.fail(ShellError::Unreliable {
                            command: c.body.clone(),
                            attempts: c.attempts,
                            tail: self.lines.tail(),
                        });
                    }
                    c.attempts += 1;
                    c.entered = false;
                    c.phase = Phase::Typing {
                        echoed: 0,
                        sent: 0,
                        echo_deadline: None,
                        not_before: now + self.gap,
                    };
                }
                true
            }
        }
    }

    fn fail(&mut self, err: ShellError) -> bool {
        self.ready = false;
        if matches!(err, ShellError::Reset { .. }) {
            self.last_reset = Some(self.clock);
            if self.dialect.hammer {
                // bootdelay 0: the key must already wait in the FIFO.
                self.tx.push_back(self.dialect.interrupt.bytes().to_vec());
            }
        }
        self.finish(Outcome::Failed(err));
        false
    }

    fn finish(&mut self, outcome: Outcome) {
        if matches!(outcome, Outcome::Failed(_)) {
            self.ready = false;
        }
        self.op = Op::Idle;
        self.outcomes.push_back(outcome);
    }

    /// A chunk came back intact. Growth is cautious once the line has
    /// shown where it breaks: below the chunk size that last failed
    /// (the ceiling) it grows by a quarter, at the ceiling it only probes
    /// one byte higher after a long clean run.
    fn clean_chunk(&mut self) {
        self.clean_streak += 1;
        if self.clean_streak < self.pacing.grow_after {
            return;
        }
        self.clean_streak = 0;
        if self.gap > Duration::ZERO {
            self.gap /= 2;
            if self.gap < Duration::from_micros(100) {
                self.gap = Duration::ZERO;
            }
            return;
        }
        let max = self.pacing.max_chunk.max(1);
        match self.ceiling {
            None => self.chunk = (self.chunk * 2).min(max),
            Some(ceiling) if self.chunk + 1 < ceiling => {
                self.chunk = (self.chunk + (self.chunk / 4).max(1))
                    .min(ceiling - 1)
                    .min(max);
            }
            Some(ceiling) => {
                self.probe += 1;
                if self.probe >= 32 {
                    self.probe = 0;
                    self.ceiling = Some((ceiling + 1).min(max + 1));
                }
            }
        }
    }

    /// An echo mismatch or short echo: shrink the chunks, cancel the line.
    fn mismatch(&mut self, now: Instant, c: &mut Command) {
        self.stats.mismatches += 1;
        self.clean_streak = 0;
        self.clean_bytes = 0;
        self.probe = 0;
        self.ceiling = Some(
            self.ceiling
                .map_or(self.chunk, |c| c.min(self.chunk))
                .max(2),
        );
        if self.chunk > self.pacing.min_chunk.max(1) {
            self.chunk = (self.chunk / 2).max(self.pacing.min_chunk.max(1));
        } else {
            let step = self.dialect.char_time() * 4;
            self.gap = (self.gap * 2).max(step).min(Duration::from_millis(50));
        }
        self.tx.push_back(vec![CTRL_C]);
        c.phase = Phase::Cancelling {
            deadline: now + self.cancel_timeout(),
            tries: 1,
            after_line: self.lines.count,
        };
    }

    /// Sends the next chunk when the previous one came back.
    fn drive(&mut self, now: Instant) {
        let chunk_size = self.chunk;
        let gap = self.gap;
        let slack = self.slack;
        let char_time = self.dialect.char_time();
        let Op::Command(c) = &mut self.op else {
            return;
        };
        if let Phase::Typing {
            echoed,
            sent,
            echo_deadline,
            not_before,
        } = &mut c.phase
        {
            // A window of `chunk` unechoed bytes at most: the target's
            // FIFO never holds more than that, even when it stops reading.
            let outstanding = *sent - *echoed;
            let free = chunk_size.saturating_sub(outstanding);
            if free >= chunk_size.div_ceil(4) && *sent < c.line.len() && now >= *not_before {
                let end = (*sent + chunk_size - outstanding).min(c.line.len());
                let chunk = c.line[*sent..end].to_vec();
                *echo_deadline = Some(now + slack + char_time * ((end - *echoed) as u32 * 2 + 2));
                *not_before = now + gap;
                *sent = end;
                self.chunk_sent = Some((now, end));
                self.tx.push_back(chunk);
                self.stats.chunks += 1;
            }
        }
    }
}

/// Finds what would keep hush from running lmx's marker after `body`:
/// an open quote, or an unquoted `#` at the start of a word. Follows
/// U-Boot's hush, where a backslash escapes even inside single quotes.
fn hush_lex_check(body: &str) -> Result<(), Refusal> {
    #[derive(PartialEq)]
    enum Q {
        None,
        Single,
        Double,
    }
    let b = body.as_bytes();
    let mut q = Q::None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match q {
            Q::None => match c {
                b'\\' => i += 1,
                b'\'' => q = Q::Single,
                b'"' => q = Q::Double,
                b'#' if i == 0 || matches!(b[i - 1], b' ' | b';' | b'&' | b'|') => {
                    return Err(Refusal::Comment(i))
                }
                _ => {}
            },
            Q::Single => match c {
                b'\\' if b.get(i + 1) == Some(&b'\'') => {
                    i += 1;
                    q = Q::None;
                }
                b'\\' => i += 1,
                b'\'' => q = Q::None,
                _ => {}
            },
            Q::Double => match c {
                b'\\' => i += 1,
                b'"' => q = Q::None,
                _ => {}
            },
        }
        i += 1;
    }
    if q == Q::None {
        Ok(())
    } else {
        Err(Refusal::Unbalanced)
    }
}

const POKE_QUIET: Duration = Duration::from_millis(1000);
const CAREFUL_POKE_QUIET: Duration = Duration::from_millis(3000);
const INTERRUPT_REPEAT: Duration = Duration::from_millis(400);
const HAMMER_EVERY: Duration = Duration::from_millis(50);
const HAMMER_FOR: Duration = Duration::from_secs(5);

fn trim_body(command: &str) -> &str {
    command.trim().trim_end_matches(';').trim_end()
}
