//! Invariant checks shared by the cargo-fuzz targets (`fuzz/`, targets
//! `console_machine` and `console_session`) and the seed-corpus test
//! (`tests/fuzz_corpus.rs`), so the fuzzed properties are also exercised
//! by `cargo test`. Not part of the supported API.
//!
//! * [`check_machine`]: any board output, any timing, any operation order
//!   fed to a [`ShellMachine`] of any built-in board's dialect: no panic,
//!   a deadline exactly while busy, bounded output, never a bare newline.
//! * [`check_session`]: the machine against a model U-Boot (echo, Ctrl-C,
//!   autoboot, commands answered with real U-Boot replies) whose output
//!   towards the host is garbled, cut and padded with noise by the input.
//!   Checks what the README promises: U-Boot only ever runs the exact line
//!   lmx meant, never twice without a cancel between (its line buffer
//!   always holds a prefix of that line), Enter only right after the whole
//!   line's echo came back intact, and no command reported successful
//!   whose output (up to lmx's end marker) carried a failure text.

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lmx_boards::shell::MARKER_SEPARATOR;
use lmx_boards::Catalog;

use crate::dialect::{Dialect, InterruptKey, MarkerMode};
use crate::machine::{CommandOptions, Outcome, Pacing, ShellMachine};

const CTRL_C: u8 = 0x03;

/// Mainline's dialect, then every built-in board's, by board name.
fn dialects() -> &'static [(String, Dialect)] {
    static D: OnceLock<Vec<(String, Dialect)>> = OnceLock::new();
    D.get_or_init(|| {
        let mut v = vec![("mainline".to_string(), Dialect::mainline())];
        for (entry, r) in Catalog::builtin().resolve_all() {
            let board = r.expect("built-in boards resolve").board;
            v.push((
                entry.name,
                Dialect::from_board(&board).expect("built-in dialects compile"),
            ));
        }
        v
    })
}

/// Commands the fuzzed operations run (refused ones are skipped).
const COMMANDS: &[&str] = &[
    "setenv lmxa 1",
    "crc32 0x40000000 0x1000",
    "printenv lmxa",
    "tftpboot 0x40400000 Image",
    "version",
];

/// Every `\r` or `\n` the machine sent follows a printable byte: a bare
/// newline would repeat U-Boot's last command.
fn assert_no_bare_newline(sent: &[u8]) {
    for (i, &b) in sent.iter().enumerate() {
        if b == b'\r' || b == b'\n' {
            assert!(
                i > 0 && (0x20..0x7f).contains(&sent[i - 1]),
                "bare newline at {i} of {:?}",
                String::from_utf8_lossy(sent)
            );
        }
    }
}

/// Feeds `data` to a [`ShellMachine`]: byte 0 picks the dialect (bits
/// 0-4) and a power-on attach (bit 5); then records `[0, len, bytes…]`
/// (console bytes), `[1, n]` (n × 10 ms pass), `[2]` (time jumps to the
/// machine's deadline) and `[3, k]` (start command `k`, or attach again
/// when not at a prompt).
pub fn check_machine(data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let ds = dialects();
    let (_, dialect) = &ds[usize::from(setup & 0x1f) % ds.len()];
    let mut m = ShellMachine::new(dialect.clone(), Pacing::default());
    let t0 = Instant::now();
    let mut now = t0;
    if setup & 0x20 != 0 {
        m.attach_at_power_on(now, Duration::from_secs(30))
    } else {
        m.attach(now, Duration::from_secs(30))
    }
    .expect("an idle machine attaches");
    let mut sent: Vec<u8> = Vec::new();
    let mut steps = 0usize;
    while let Some((&tag, r)) = rest.split_first() {
        rest = r;
        steps += 1;
        match tag % 4 {
            0 => {
                let Some((&len, r)) = rest.split_first() else {
                    break;
                };
                let len = usize::from(len).min(r.len());
                let (bytes, r) = r.split_at(len);
                rest = r;
                m.receive(now, bytes);
            }
            1 => {
                let Some((&n, r)) = rest.split_first() else {
                    break;
                };
                rest = r;
                now += Duration::from_millis(u64::from(n) * 10);
                if m.poll_deadline().is_some_and(|d| now >= d) {
                    m.handle_timeout(now);
                }
            }
            2 => {
                if let Some(d) = m.poll_deadline() {
                    now = now.max(d);
                    m.handle_timeout(now);
                }
            }
            _ => {
                let Some((&k, r)) = rest.split_first() else {
                    break;
                };
                rest = r;
                if !m.is_busy() {
                    if m.is_ready() {
                        let cmd = COMMANDS[usize::from(k) % COMMANDS.len()];
                        let opts = CommandOptions {
                            banner_expected: cmd == "version",
                        };
                        // A command the board refuses is fine; nothing is sent.
                        let _ = m.command(now, cmd, Duration::from_secs(10), opts);
                    } else {
                        m.attach(now, Duration::from_secs(30))
                            .expect("an idle machine attaches");
                    }
                }
            }
        }
        while let Some(tx) = m.poll_transmit(now) {
            assert!(!tx.is_empty(), "empty transmission");
            sent.extend_from_slice(&tx);
        }
        // Each step sends a chunk, a key or a Ctrl-C at most, a few times.
        assert!(
            sent.len() <= 4096 + steps * 256,
            "{} bytes sent in {steps} steps",
            sent.len()
        );
        while let Some(o) = m.poll_outcome() {
            if let Outcome::Output(out) = &o {
                if out.success() {
                    assert!(out.failure.is_none() && out.status.unwrap_or(0) == 0);
                }
            }
        }
        match m.poll_deadline() {
            Some(d) => {
                assert!(m.is_busy(), "a deadline without an operation");
                // Never further out than the longest timeout given.
                assert!(d <= now + Duration::from_secs(31), "deadline runs away");
            }
            None => assert!(!m.is_busy(), "an operation without a deadline"),
        }
    }
    // Once: the tail converts the partial line, which may be long.
    let tail = m.tail();
    assert!(tail.0.len() <= 17, "tail of {} lines", tail.0.len());
    assert_no_bare_newline(&sent);
}

/// Board replies a command can get: text (CR LF line ends, as U-Boot
/// prints) and `$?`; `None` means the reply resets the board.
const REPLIES: &[(&str, Option<i32>)] = &[
    ("", Some(0)),
    (
        "crc32 for 40000000 ... 40000fff ==> 5a750c9b\r\n",
        Some(0),
    ),
    ("## Error: \"lmxa\" not defined\r\n", Some(1)),
    ("Unknown command 'x' - try 'help'\r\n", Some(1)),
    ("Usage:\r\ncrc32 - checksum calculation\r\n", Some(1)),
    ("abc", Some(0)),
    (
        "ARP Retry count exceeded; starting again\r\nBytes transferred = 823296 (c9000 hex)\r\n",
        Some(0),
    ),
    ("Bad Data CRC\r\n", Some(1)),
    ("TFTP error: 'File not found' (1)\r\nStarting again\r\n", Some(1)),
    ("lmxa=1\r\n", Some(0)),
    ("resetting ...\r\n\r\nU-Boot 2023.01 (Jan 01 2024 - 00:00:00 +0000)\r\n\r\nDRAM:  512 MiB\r\n", None),
    ("U-Boot 2023.01 (Jan 01 2024 - 00:00:00 +0000)\r\n\r\ngcc 12.2.0\r\n", Some(0)),
];

/// Noise the line may add towards the host.
const NOISE: &[&str] = &[
    "\r\n",
    "<INTERRUPT>\r\n",
    "U-Boot 2023.01 (Jan 01 2024 - 00:00:00 +0000)\r\n",
    "Hit any key to stop autoboot:  2 ",
    "## Error: \"x\" not defined\r\n",
    "> ",
    "Unknown command",
    "\x08\x08\x08 0 ",
];

/// Boards the session model plays (no wrapper: the model runs lines
/// directly), with a prompt literal their dialect's regex matches.
const SESSION_BOARDS: &[(&str, &str)] = &[
    ("mainline", "=> "),
    ("gl-ar750", "ath> "),
    ("gl-mt300n-v2", "MT7628 # "),
    ("gl-mt300a", "MT7620 # "),
    ("qemu-mips", "malta # "),
    ("turris-omnia", "=> "),
    ("belkin-rt3200", "MT7622> "),
    ("tp-archer-ax23", "MT7621 # "),
];

#[derive(Debug, PartialEq)]
enum BoardState {
    /// Counting down: keys received so far, and when autoboot runs.
    Autoboot { keys: Vec<u8>, until: Instant },
    /// At the prompt (or running a line, which the model does at once).
    Prompt,
}

/// A U-Boot as the host sees it over a line that garbles what the board
/// says but delivers what lmx types.
struct ModelBoard {
    dialect: Dialect,
    prompt: &'static str,
    state: BoardState,
    /// What readline holds: every byte typed since the last Enter or Ctrl-C.
    line: Vec<u8>,
    /// Bytes on their way to the host.
    out: VecDeque<u8>,
    /// The reply the next command gets.
    reply: usize,
}

impl ModelBoard {
    fn boot(&mut self, now: Instant) {
        self.say("\r\nU-Boot 2023.01 (Jan 01 2024 - 00:00:00 +0000)\r\n\r\nDRAM:  512 MiB\r\n");
        let text = self.dialect.autoboot[0].clone();
        self.say(&format!("{text}  2 "));
        self.state = BoardState::Autoboot {
            keys: Vec::new(),
            until: now + Duration::from_secs(2),
        };
    }

    fn say(&mut self, s: &str) {
        self.out.extend(s.bytes());
    }

    fn show_prompt(&mut self) {
        self.line.clear();
        let p = self.prompt;
        self.say(p);
    }

    fn tick(&mut self, now: Instant) {
        if let BoardState::Autoboot { until, .. } = &self.state {
            if now >= *until {
                // The boot command fails and U-Boot returns to its prompt.
                self.say("\x08\x08\x08 0 \r\n## Booting kernel from Legacy Image at 40400000 ...\r\nWrong Image Format for bootm command\r\n");
                self.state = BoardState::Prompt;
                self.show_prompt();
            }
        }
    }

    /// One byte from the host. Returns the line run on Enter.
    fn input(&mut self, now: Instant, b: u8) -> Option<Vec<u8>> {
        if let BoardState::Autoboot { keys, .. } = &mut self.state {
            keys.push(b);
            let stop = match &self.dialect.interrupt {
                InterruptKey::AnyKey(_) => true,
                InterruptKey::Menu(k) | InterruptKey::String(k) => keys.ends_with(k),
            };
            if stop {
                self.state = BoardState::Prompt;
                self.say("\x08\x08\x08 0 \r\n");
                self.show_prompt();
            }
            return None;
        }
        match b {
            CTRL_C => {
                self.say("<INTERRUPT>\r\n");
                self.show_prompt();
                None
            }
            b'\r' | b'\n' => {
                let line = std::mem::take(&mut self.line);
                self.say("\r\n");
                self.run(now, &line);
                Some(line)
            }
            0x20..=0x7e => {
                // readline keeps CBSIZE - 1 characters and rings the bell.
                if self.line.len() + 1 < self.dialect.cbsize {
                    self.line.push(b);
                    self.out.push_back(b);
                } else {
                    self.out.push_back(0x07);
                }
                None
            }
            _ => None,
        }
    }

    fn run(&mut self, now: Instant, line: &[u8]) {
        let line = String::from_utf8_lossy(line).into_owned();
        let Some((body, nonce)) = split_marker(self.dialect.markers, &line) else {
            // Not a line of lmx's: the model only echoes a prompt.
            self.say("Unknown command\r\n");
            self.show_prompt();
            return;
        };
        let (text, status) = if body.is_empty() {
            ("", Some(0))
        } else {
            REPLIES[self.reply % REPLIES.len()]
        };
        self.say(text);
        let Some(status) = status else {
            self.boot(now);
            return;
        };
        let marker = match self.dialect.markers {
            MarkerMode::EchoStatus => format!("lmx{nonce}.{status}\r\n"),
            MarkerMode::Echo => format!("lmx{nonce}.\r\n"),
            MarkerMode::UnknownCommand => {
                format!("Unknown command 'lmx{nonce}' - try 'help'\r\n")
            }
        };
        self.say(&marker);
        self.show_prompt();
    }
}

/// Splits a typed line into the command and the nonce of lmx's end marker.
fn split_marker(mode: MarkerMode, line: &str) -> Option<(String, String)> {
    let (head, nonce) = match mode {
        MarkerMode::EchoStatus | MarkerMode::Echo => {
            let at = line.rfind("echo 'lmx''")?;
            let rest = &line[at + "echo 'lmx''".len()..];
            (&line[..at], rest.split('.').next()?.to_string())
        }
        MarkerMode::UnknownCommand => {
            let at = line.rfind("lmx")?;
            (&line[..at], line[at + 3..].to_string())
        }
    };
    let body = head.strip_suffix(MARKER_SEPARATOR).unwrap_or(head);
    Some((body.to_string(), nonce))
}

/// The line lmx types for `body`, with `#` for each nonce digit.
fn template(dialect: &Dialect, body: &str) -> Vec<u8> {
    let suffix = dialect
        .markers
        .suffix(&"#".repeat(lmx_boards::shell::NONCE_DIGITS));
    let line = if body.is_empty() {
        suffix
    } else {
        format!("{body}{MARKER_SEPARATOR}{suffix}")
    };
    dialect.wrap_line(&line).into_bytes()
}

fn matches_template(line: &[u8], template: &[u8], whole: bool) -> bool {
    if line.len() > template.len() || (whole && line.len() != template.len()) {
        return false;
    }
    line.iter()
        .zip(template)
        .all(|(&b, &t)| b == t || (t == b'#' && b.is_ascii_hexdigit()))
}

/// The operation the harness started, and what it has seen of it.
struct OpTrack {
    /// The command; `None` for an attach (whose line is the sync marker).
    body: Option<String>,
    template: Vec<u8>,
    /// Lines U-Boot ran for this operation.
    runs: u32,
    /// Bytes delivered to the machine since Enter.
    since_enter: Vec<u8>,
    /// The nonce of the line that ran.
    nonce: Option<String>,
    /// A Ctrl-C was sent since the line last ran.
    cancelled: bool,
}

struct Session {
    m: ShellMachine,
    board: ModelBoard,
    now: Instant,
    op: Option<OpTrack>,
    /// Bytes delivered to the machine, newest last (the last 4 KiB).
    delivered: VecDeque<u8>,
    next_command: usize,
    outcomes: usize,
    /// The last bytes the machine sent, for messages.
    sent: Vec<u8>,
}

impl Session {
    /// Hands one byte to the machine and sends whatever it answers.
    fn deliver(&mut self, b: u8) {
        self.m.receive(self.now, &[b]);
        if self.delivered.len() == 4096 {
            self.delivered.pop_front();
        }
        self.delivered.push_back(b);
        if let Some(op) = &mut self.op {
            if op.runs > 0 && op.since_enter.len() < 1 << 16 {
                op.since_enter.push(b);
            }
        }
        self.pump();
    }

    fn pump(&mut self) {
        // An operation's outcome first: what the machine sends with it (a
        // Ctrl-C, the interrupt key after a reset) is no longer typing.
        while let Some(o) = self.m.poll_outcome() {
            self.outcome(o);
        }
        while let Some(tx) = self.m.poll_transmit(self.now) {
            for b in tx {
                self.host_byte(b);
            }
            while let Some(o) = self.m.poll_outcome() {
                self.outcome(o);
            }
        }
    }

    fn host_byte(&mut self, b: u8) {
        if self.sent.len() == 512 {
            self.sent.drain(..256);
        }
        self.sent.push(b);
        let at_prompt = self.board.state == BoardState::Prompt;
        if b == b'\r' || b == b'\n' {
            let op = self.op.as_mut().expect("Enter sent outside an operation");
            // Enter only right after the line's whole echo came back intact.
            let line = &self.board.line;
            let n = self.delivered.len();
            assert!(
                at_prompt
                    && n >= line.len()
                    && self.delivered.iter().skip(n - line.len()).eq(line.iter()),
                "Enter on a line whose echo did not match: U-Boot {:?} holds {:?}, sent {:?}, last bytes delivered {:?}",
                self.board.state,
                String::from_utf8_lossy(line),
                String::from_utf8_lossy(&self.sent),
                String::from_utf8_lossy(&self.delivered.iter().copied().collect::<Vec<_>>()),
            );
            // Exactly the line meant, once.
            assert!(
                matches_template(line, &op.template, true),
                "U-Boot runs {:?}, lmx meant {:?}",
                String::from_utf8_lossy(line),
                String::from_utf8_lossy(&op.template)
            );
            // A line that ran is typed again only after a cancel: when
            // noise took both the echo of Enter and the end marker, lmx
            // cannot tell that it ran, cancels and retypes (a limit the
            // console's README states).
            assert!(
                op.runs == 0 || op.cancelled,
                "the command ran twice without a cancel between: {:?} again; console: {:?}",
                String::from_utf8_lossy(line),
                String::from_utf8_lossy(&self.delivered.iter().copied().collect::<Vec<_>>())
            );
            op.runs += 1;
            op.cancelled = false;
            op.since_enter.clear();
            op.nonce = split_marker(self.board.dialect.markers, &String::from_utf8_lossy(line))
                .map(|(_, n)| n);
        }
        if b == CTRL_C {
            if let Some(op) = &mut self.op {
                op.cancelled = true;
            }
        }
        let ran = self.board.input(self.now, b);
        if ran.is_none() && at_prompt && (0x20..0x7f).contains(&b) {
            if let Some(op) = &self.op {
                // A command's typing never runs into a stale line: the
                // buffer is always a prefix of the line meant.
                if op.body.is_some() {
                    assert!(
                        matches_template(&self.board.line, &op.template, false),
                        "U-Boot's line {:?} is not a prefix of {:?}: typed twice without a cancel?",
                        String::from_utf8_lossy(&self.board.line),
                        String::from_utf8_lossy(&op.template)
                    );
                }
            }
        }
    }

    fn outcome(&mut self, o: Outcome) {
        self.outcomes += 1;
        let op = self.op.take().expect("an outcome without an operation");
        match o {
            Outcome::Ready => assert!(op.body.is_none(), "a command ended in Ready"),
            Outcome::Output(out) => {
                assert!(op.body.is_some(), "an attach ended in Output");
                assert!(op.runs >= 1, "output of a command that never ran");
                if out.success() {
                    let nonce = op.nonce.clone().expect("the line that ran has a nonce");
                    let text = String::from_utf8_lossy(&op.since_enter).into_owned();
                    for l in text.split('\n') {
                        let l = l.trim_end_matches('\r');
                        let (part, last) = match l.find(&format!("lmx{nonce}")) {
                            // Without `echo`, the marker is U-Boot's own
                            // complaint about the command `lmxN`, which
                            // noise may garble after its first words.
                            Some(at) => (
                                match l[..at].rfind("nknown command") {
                                    Some(i)
                                        if self.board.dialect.markers
                                            == MarkerMode::UnknownCommand =>
                                    {
                                        l[..i].trim_end_matches(['U', 'u'])
                                    }
                                    _ => &l[..at],
                                },
                                true,
                            ),
                            None => (l, false),
                        };
                        assert!(
                            self.board.dialect.failure_in(part).is_none(),
                            "success reported for output {text:?} with the failure line {part:?}"
                        );
                        if last {
                            break;
                        }
                    }
                }
            }
            Outcome::Failed(_) => {}
        }
    }

    fn start_op(&mut self) {
        if self.m.is_busy() {
            return;
        }
        let dialect = self.board.dialect.clone();
        if self.m.is_ready() {
            let cmd = COMMANDS[self.next_command % COMMANDS.len()];
            self.next_command += 1;
            let opts = CommandOptions {
                banner_expected: cmd == "version",
            };
            if self
                .m
                .command(self.now, cmd, Duration::from_secs(10), opts)
                .is_ok()
            {
                self.op = Some(OpTrack {
                    body: Some(cmd.to_string()),
                    template: template(&dialect, cmd),
                    runs: 0,
                    since_enter: Vec::new(),
                    nonce: None,
                    cancelled: false,
                });
            }
        } else {
            self.m
                .attach(self.now, Duration::from_secs(30))
                .expect("an idle machine attaches");
            self.op = Some(OpTrack {
                body: None,
                template: template(&dialect, ""),
                runs: 0,
                since_enter: Vec::new(),
                nonce: None,
                cancelled: false,
            });
        }
        self.pump();
    }

    fn advance(&mut self, to: Instant) {
        // The line's latency stays below lmx's echo timeout: what the
        // board printed arrives before time passes (noise may still have
        // dropped or garbled it). With more latency, the echo of an
        // earlier attempt still on its way can pass for the echo of the
        // line retyped after a cancel (docs/reliability.md).
        for _ in 0..1 << 16 {
            let Some(b) = self.board.out.pop_front() else {
                break;
            };
            self.deliver(b);
        }
        self.now = self.now.max(to);
        self.board.tick(self.now);
        if self.m.poll_deadline().is_some_and(|d| self.now >= d) {
            self.m.handle_timeout(self.now);
        }
        self.pump();
    }
}

/// Runs the machine against a model U-Boot while `data` garbles the
/// line: byte 0 picks the board (bits 0-6) and whether it is booting or
/// already at a silent prompt (bit 7); then records `[0, n]` (deliver
/// `n` of the board's bytes), `[1]` (drop one), `[2, x]` (replace one by
/// `x`), `[3, k]` (insert noise `k`: a canned text, or the byte itself),
/// `[4, n]` (n × 10 ms pass), `[5]` (time jumps to the machine's deadline),
/// `[6, r]` (the next command gets reply `r`), `[7]` (start the next
/// operation). Then the line turns clean and the session runs out.
pub fn check_session(data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let ds = dialects();
    let (name, prompt) = SESSION_BOARDS[usize::from(setup & 0x7f) % SESSION_BOARDS.len()];
    let dialect = ds
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d.clone())
        .expect("session boards are built in");
    assert!(dialect.is_prompt(prompt), "{name}: {prompt:?}");
    let now = Instant::now();
    let mut board = ModelBoard {
        dialect: dialect.clone(),
        prompt,
        state: BoardState::Prompt,
        line: Vec::new(),
        out: VecDeque::new(),
        reply: 0,
    };
    if setup & 0x80 != 0 {
        board.boot(now);
    }
    let mut s = Session {
        m: ShellMachine::new(dialect, Pacing::default()),
        board,
        now,
        op: None,
        delivered: VecDeque::new(),
        next_command: 0,
        outcomes: 0,
        sent: Vec::new(),
    };
    s.start_op();
    while let Some((&tag, r)) = rest.split_first() {
        rest = r;
        let mut arg = || {
            let (&a, r) = rest.split_first()?;
            rest = r;
            Some(a)
        };
        match tag % 8 {
            0 => {
                let Some(n) = arg() else { break };
                for _ in 0..n {
                    let Some(b) = s.board.out.pop_front() else {
                        break;
                    };
                    s.deliver(b);
                }
            }
            1 => {
                s.board.out.pop_front();
            }
            2 => {
                let Some(x) = arg() else { break };
                if s.board.out.pop_front().is_some() {
                    s.deliver(x);
                }
            }
            3 => {
                let Some(k) = arg() else { break };
                match NOISE.get(usize::from(k)) {
                    Some(text) => {
                        for b in text.bytes() {
                            s.deliver(b);
                        }
                    }
                    None => s.deliver(k),
                }
            }
            4 => {
                let Some(n) = arg() else { break };
                let to = s.now + Duration::from_millis(u64::from(n) * 10);
                s.advance(to);
            }
            5 => {
                if let Some(d) = s.m.poll_deadline() {
                    s.advance(d);
                }
            }
            6 => {
                let Some(r) = arg() else { break };
                s.board.reply = usize::from(r);
            }
            _ => s.start_op(),
        }
    }
    // A clean line from here on: every operation ends, and the next ones
    // are started until one more has run to its end.
    let target = s.outcomes + 2;
    for _ in 0..20_000 {
        if s.outcomes >= target {
            break;
        }
        if let Some(b) = s.board.out.pop_front() {
            s.deliver(b);
        } else if s.m.is_busy() {
            let d = s.m.poll_deadline().expect("busy machines have a deadline");
            let to = match &s.board.state {
                BoardState::Autoboot { until, .. } => d.min(*until),
                BoardState::Prompt => d,
            };
            s.advance(to.max(s.now + Duration::from_millis(1)));
        } else {
            s.start_op();
        }
    }
    assert!(
        s.outcomes >= target,
        "the session did not finish on a clean line"
    );
}
