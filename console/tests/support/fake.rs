//! A scripted fake U-Boot for fast matcher tests. Its boot logs and
//! canned outputs come from `tests/fixtures`; what it fakes of mainline
//! is also exercised against the real U-Boot in `tests/qemu.rs`, and
//! what it fakes of the vendor builds (the timed autoboot loops, the
//! restricted prompt and its `at*` wrappers) follows the vendor code
//! cited on each item, as `tests/fixtures/README.md` lists.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How the fake stops autoboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Any byte stops autoboot (untimed).
    AnyKey,
    /// Only this menu key does (untimed).
    Menu(u8),
    /// This exact string does (untimed).
    Keyed(String),
    /// A countdown in (virtual) time, as the vendor code runs it; the
    /// fake then needs [`FakeUBoot::advance`].
    Timed(Countdown),
}

/// The autoboot loops of the eight real boards' U-Boots, each modelled on
/// its source. Keys that arrive before the loop wait in a 16-byte FIFO
/// (a 16550's), so a key sent early counts at the first check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Countdown {
    /// Mainline's `abortboot` without a key string (`common/autoboot.c`,
    /// l.211-255 of `RaitoBezarius/uboot-nwa50ax`; the same loop in
    /// mainline since): print the text, check once for a key already
    /// waiting, then poll `delay` seconds; any key stops it. With
    /// `delay = 0` only the first check happens.
    AnyKey { delay: u32 },
    /// GL's AR750 loop (`gl-inet/uboot-for-qca95xx: src/common/main.c`
    /// l.266-400): seconds `delay`..0, each ended early by any key; `g`
    /// arms a flag that is never cleared, `l` with the flag armed stops
    /// autoboot.
    GlAr750 { delay: u32 },
    /// `CONFIG_AUTOBOOT_KEYED` (`gl-inet/uboot-source-for_mtk:
    /// common/main.c` l.96-226): for `delay` seconds keep the last
    /// `stop.len()` keys; stop when they spell `stop`. Wrong keys do no
    /// harm.
    Keyed { stop: String, delay: u32 },
    /// TP-Link's Ralink loop (a TP-Link `lib_mips/board.c` in the code
    /// index, repository not named): `delay` seconds of 100 polls; any
    /// key ends the countdown at the end of its second, the last key of
    /// that second decides, `t` (made `4`) decides at once; `4` enters
    /// the command line, anything else boots from flash. `strict` is the
    /// audit's reading instead: the first key decides at once.
    TpLink { delay: u32, strict: bool },
}

/// Commands Zyxel's restricted prompt runs (`U_BOOT_USER_CMD` in
/// `RaitoBezarius/uboot-nwa50ax: board/ralink/common/cmd_at.c`).
pub const ZYXEL_USER_COMMANDS: &[&str] = &[
    "at", "athe", "atsr", "atna", "atns", "atnf", "atnz", "atsh", "atgo", "atds",
];

/// Sections of a fixture file.
pub fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A `@@ NAME` section of a written transcript, with CR LF line ends.
/// A section runs from the line after its `@@ NAME` line to the line
/// before the next `@@` line (or the end of the file); the newline that
/// ends its last line is not part of it, so a boot log ends exactly
/// where U-Boot stops printing (an autoboot text waits after its digit),
/// and an empty line there stands for a newline U-Boot does print.
pub fn section(name: &str, section: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(name)).unwrap();
    let mut out = None;
    let mut current: Option<(String, Vec<&str>)> = None;
    let mut done = |c: Option<(String, Vec<&str>)>| {
        if let Some((head, lines)) = c {
            if head == section {
                out = Some(lines.join("\n"));
            }
        }
    };
    for line in text.split('\n') {
        if let Some(head) = line.strip_prefix("@@ ") {
            done(current.take());
            current = Some((head.trim().to_string(), Vec::new()));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    // The file's own final newline is not part of the last section.
    if let Some((_, lines)) = current.as_mut() {
        if lines.last() == Some(&"") {
            lines.pop();
        }
    }
    done(current);
    let body = out.unwrap_or_else(|| panic!("no section {section} in {name}"));
    body.replace('\n', "\r\n").into_bytes()
}

/// The section if the transcript has it.
pub fn maybe_section(name: &str, section: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8(fixture(name)).unwrap();
    text.lines()
        .any(|l| l.strip_prefix("@@ ").map(str::trim) == Some(section))
        .then(|| self::section(name, section))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Off,
    Booting {
        typed: Vec<u8>,
    },
    /// Printing `script` (timed boots).
    Script {
        t0: Option<Instant>,
        next: usize,
    },
    /// In a timed autoboot loop.
    Counting(Count),
    /// Autoboot went through: the OS is booting, the console is not ours.
    Booted,
    Prompt,
    Continuation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Count {
    kind: Countdown,
    /// End of the current second (or of the whole delay, keyed).
    until: Instant,
    /// The loop's `bootdelay` / `timer1`.
    remaining: i64,
    /// GL: `g` seen.
    flag: bool,
    /// Keyed: the last keys.
    window: Vec<u8>,
    /// TP-Link: `BootType`.
    boot_type: u8,
}

/// A 16550's receive FIFO.
const FIFO: usize = 16;

/// The fake.
#[derive(Debug)]
pub struct FakeUBoot {
    pub prompt: String,
    pub hush: bool,
    pub has_echo: bool,
    pub boot: Boot,
    /// Printed at power-on / reset, up to the autoboot text.
    pub boot_log: Vec<u8>,
    /// Printed after the interrupt (before the prompt).
    pub after_interrupt: Vec<u8>,
    state: State,
    line: Vec<u8>,
    pub env: BTreeMap<String, String>,
    status: i32,
    out: Vec<u8>,
    /// Lines run with Enter, exactly as U-Boot's buffer held them.
    pub executed: Vec<String>,
    /// `CONFIG_SYS_MAXARGS`, when the fake enforces one: the simple parser
    /// prints `** Too many args` and runs the command cut short, hush
    /// prints `Usage:` and runs nothing.
    pub maxargs: Option<usize>,
    /// Timed boots: the boot log in chunks, each printed at its offset
    /// from power-on (its last chunk ends with the autoboot text).
    pub script: Vec<(Duration, Vec<u8>)>,
    /// Printed when autoboot goes through.
    pub boot_through: Vec<u8>,
    /// Autoboot went through (the board booted its OS).
    pub booted: bool,
    /// Every byte the autoboot loop read, in order.
    pub consumed: Vec<u8>,
    /// Zyxel's restricted prompt: only [`ZYXEL_USER_COMMANDS`] run,
    /// every other command answers `Unknown command` unless run by one of
    /// them (`common/command.c` l.524-530).
    pub restricted: bool,
    /// The command lines the `at*` wrappers built and ran, as the vendor
    /// code formats them.
    pub wrapped: Vec<String>,
    /// Canned replies: a command line (after quote removal) and its
    /// output.
    pub canned: BTreeMap<String, Vec<u8>>,
    /// `CONFIG_SYS_PBSIZE`: mainline prints one variable with `printf`,
    /// which cuts `NAME=VALUE\n` to `pbsize - 1` bytes (`cmd/nvedit.c`
    /// env_print); `None` prints it whole.
    pub pbsize: Option<usize>,
    fifo: VecDeque<u8>,
    clock: Option<Instant>,
}

impl FakeUBoot {
    /// Debian's qemu_arm64 U-Boot, from the recorded session.
    pub fn mainline() -> FakeUBoot {
        let raw = fixture("qemu-aarch64-session.raw");
        let hit = find(&raw, b"Hit any key to stop autoboot:  2 ").unwrap();
        let boot_log = raw[..hit + b"Hit any key to stop autoboot:  2 ".len()].to_vec();
        FakeUBoot {
            prompt: "=> ".into(),
            hush: true,
            has_echo: true,
            boot: Boot::AnyKey,
            boot_log,
            after_interrupt: b"\x08\x08\x08 0 \r\n".to_vec(),
            state: State::Off,
            line: Vec::new(),
            env: BTreeMap::new(),
            status: 0,
            out: Vec::new(),
            executed: Vec::new(),
            maxargs: None,
            script: Vec::new(),
            boot_through: b"\r\nStarting kernel ...\r\n".to_vec(),
            booted: false,
            consumed: Vec::new(),
            restricted: false,
            wrapped: Vec::new(),
            canned: BTreeMap::new(),
            pbsize: None,
            fifo: VecDeque::new(),
            clock: None,
        }
    }

    /// The Ralink 1.1.3 build with its menu (written transcript).
    pub fn ralink() -> FakeUBoot {
        let f = "vendor-ralink-menu.txt";
        let mut after = section(f, "after-choice");
        after.extend_from_slice(b"\r\n");
        FakeUBoot {
            prompt: String::from_utf8(section(f, "prompt")).unwrap(),
            hush: false,
            has_echo: false,
            boot: Boot::Menu(b'4'),
            boot_log: section(f, "boot"),
            after_interrupt: after,
            ..FakeUBoot::mainline()
        }
    }

    /// A build written as transcript `f` (its `boot` and `prompt`
    /// sections), stopped by `boot`; `hush`: the hush shell with `echo`
    /// and `$?`, else the simple parser without `echo`.
    fn from_transcript(f: &str, boot: Boot, hush: bool) -> FakeUBoot {
        FakeUBoot {
            prompt: String::from_utf8(section(f, "prompt")).unwrap(),
            hush,
            has_echo: hush,
            boot,
            boot_log: section(f, "boot"),
            after_interrupt: b"\r\n".to_vec(),
            ..FakeUBoot::mainline()
        }
    }

    /// An Atheros vendor build: `ath> `, no `echo` (written transcript).
    pub fn ath79() -> FakeUBoot {
        FakeUBoot::from_transcript("vendor-ath79.txt", Boot::AnyKey, false)
    }

    /// GL.iNet's U-Boot 1.1.4 for the AR750 (written from its sources):
    /// `ath> `, hush with `echo` and `$?`, keyed autoboot `gl`.
    pub fn gl_ar750() -> FakeUBoot {
        FakeUBoot::from_transcript("vendor-gl-ar750.txt", Boot::Keyed("gl".into()), true)
    }

    /// GL.iNet's U-Boot 1.1.3 for MT7620/MT7628 (written from its
    /// sources): `MT7628 # `, simple parser, no `echo`, keyed `gl`.
    pub fn gl_mt76xx() -> FakeUBoot {
        FakeUBoot::from_transcript("vendor-gl-mt76xx.txt", Boot::Keyed("gl".into()), false)
    }

    /// The fake behind an in-memory pipe, for the async shell: what the
    /// host writes is its input, its output comes back.
    pub fn piped(mut self) -> tokio::io::DuplexStream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (host, mut board) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let mut buf = [0u8; 256];
            loop {
                let out = self.take_output();
                if !out.is_empty() && board.write_all(&out).await.is_err() {
                    return;
                }
                match board.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => self.input(&buf[..n]),
                }
            }
        });
        host
    }

    /// Power on: print the boot log and wait for the interrupt. A timed
    /// boot prints its `script` (or the whole boot log at once) as
    /// [`FakeUBoot::advance`] moves time on, then runs its countdown.
    pub fn power_on(&mut self) {
        self.booted = false;
        self.fifo.clear();
        if let Boot::Timed(_) = self.boot {
            if self.script.is_empty() {
                self.script = vec![(Duration::ZERO, self.boot_log.clone())];
            }
            self.state = State::Script {
                t0: self.clock,
                next: 0,
            };
            self.step();
            return;
        }
        self.out.extend_from_slice(&self.boot_log.clone());
        self.state = State::Booting { typed: Vec::new() };
    }

    /// Moves the fake's clock to `now` and runs what is due.
    pub fn advance(&mut self, now: Instant) {
        self.clock = Some(self.clock.map_or(now, |c| c.max(now)));
        self.step();
    }

    /// When the fake next does something by itself (prints a chunk of
    /// its boot log, ends a second of its countdown).
    pub fn next_event(&self) -> Option<Instant> {
        match &self.state {
            State::Script { t0: Some(t0), next } => self.script.get(*next).map(|(d, _)| *t0 + *d),
            State::Script { t0: None, .. } => self.clock,
            State::Counting(c) => Some(c.until),
            _ => None,
        }
    }

    /// Whether the fake sits at its prompt.
    pub fn at_prompt(&self) -> bool {
        self.state == State::Prompt
    }

    fn now(&self) -> Instant {
        self.clock
            .expect("a timed fake needs advance() before it runs")
    }

    /// Runs the timed boot up to the fake's clock.
    fn step(&mut self) {
        loop {
            match self.state.clone() {
                State::Script { t0: None, next } => {
                    let Some(now) = self.clock else { return };
                    self.state = State::Script {
                        t0: Some(now),
                        next,
                    };
                }
                State::Script { t0: Some(t0), next } => {
                    let now = self.now();
                    let Some((at, chunk)) = self.script.get(next).cloned() else {
                        self.start_count(now);
                        continue;
                    };
                    if t0 + at > now {
                        return;
                    }
                    self.out.extend_from_slice(&chunk);
                    self.state = State::Script {
                        t0: Some(t0),
                        next: next + 1,
                    };
                }
                State::Counting(c) => {
                    if !self.count_step(c) {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// The autoboot text has just been printed: the loop starts.
    fn start_count(&mut self, now: Instant) {
        let Boot::Timed(kind) = self.boot.clone() else {
            unreachable!("only timed boots run a countdown")
        };
        let second = now + Duration::from_secs(1);
        let mut c = Count {
            kind: kind.clone(),
            until: second,
            remaining: 0,
            flag: false,
            window: Vec::new(),
            boot_type: b'b',
        };
        match kind {
            Countdown::AnyKey { delay } => {
                // "Check if key already pressed": only a waiting key.
                if let Some(k) = self.fifo.pop_front() {
                    self.consumed.push(k);
                    self.out.extend_from_slice(b"\x08\x08\x08 0\r\n");
                    return self.finish(true);
                }
                if delay == 0 {
                    self.out.extend_from_slice(b"\r\n");
                    return self.finish(false);
                }
                c.remaining = i64::from(delay) - 1;
            }
            Countdown::GlAr750 { delay } => c.remaining = i64::from(delay),
            Countdown::Keyed { delay, .. } => c.until = now + Duration::from_secs(delay.into()),
            Countdown::TpLink { delay, .. } => {
                if delay == 0 {
                    self.out.extend_from_slice(b"\r\n");
                    return self.finish(false);
                }
                c.remaining = i64::from(delay) - 1;
            }
        }
        self.state = State::Counting(c);
    }

    /// One step of the loop at the fake's clock; false when it waits.
    fn count_step(&mut self, mut c: Count) -> bool {
        let now = self.now();
        match c.kind.clone() {
            Countdown::AnyKey { .. } => {
                if now < c.until {
                    let Some(k) = self.fifo.pop_front() else {
                        self.state = State::Counting(c);
                        return false;
                    };
                    self.consumed.push(k);
                    self.out.extend_from_slice(b"\x08\x08\x08 0 \r\n");
                    self.finish(true);
                    return true;
                }
                self.out
                    .extend_from_slice(format!("\x08\x08\x08{:2} ", c.remaining).as_bytes());
                if c.remaining > 0 {
                    c.remaining -= 1;
                    c.until += Duration::from_secs(1);
                    self.state = State::Counting(c);
                } else {
                    self.out.extend_from_slice(b"\r\n");
                    self.finish(false);
                }
                true
            }
            Countdown::GlAr750 { .. } => {
                let mut abort = false;
                let ended = if now < c.until {
                    match self.fifo.pop_front() {
                        None => false,
                        Some(k) => {
                            // Every key ends the second; `g` arms, `l` stops.
                            self.consumed.push(k);
                            if k == b'g' {
                                c.flag = true;
                            } else if c.flag && k == b'l' {
                                abort = true;
                                c.remaining = 1;
                            }
                            true
                        }
                    }
                } else {
                    true
                };
                if !ended {
                    self.state = State::Counting(c);
                    return false;
                }
                c.remaining -= 1;
                self.out
                    .extend_from_slice(format!("\x08\x08\x08{:2} ", c.remaining).as_bytes());
                if abort || c.remaining < 0 {
                    self.out.extend_from_slice(b"\r\n");
                    self.finish(abort);
                } else {
                    c.until = now + Duration::from_secs(1);
                    self.state = State::Counting(c);
                }
                true
            }
            Countdown::Keyed { stop, .. } => {
                loop {
                    if c.window.ends_with(stop.as_bytes()) {
                        self.finish(true);
                        return true;
                    }
                    if now > c.until {
                        self.finish(false);
                        return true;
                    }
                    let Some(k) = self.fifo.pop_front() else {
                        break;
                    };
                    self.consumed.push(k);
                    c.window.push(k);
                    if c.window.len() > stop.len() {
                        c.window.remove(0);
                    }
                }
                self.state = State::Counting(c);
                false
            }
            Countdown::TpLink { strict, .. } => {
                if now < c.until {
                    if let Some(k) = self.fifo.pop_front() {
                        self.consumed.push(k);
                        c.remaining = 0;
                        c.boot_type = if k == b't' { b'4' } else { k };
                        if strict || k == b't' {
                            c.until = now;
                        }
                        self.state = State::Counting(c);
                        return true;
                    }
                    self.state = State::Counting(c);
                    return false;
                }
                self.out
                    .extend_from_slice(format!("\x08\x08\x08{:2} ", c.remaining).as_bytes());
                if c.remaining > 0 {
                    c.remaining -= 1;
                    c.until += Duration::from_secs(1);
                    self.state = State::Counting(c);
                    return true;
                }
                self.out.extend_from_slice(b"\r\n");
                if c.boot_type == b'4' {
                    self.finish(true);
                } else {
                    self.out
                        .extend_from_slice(b"   \r\n3: System Boot system code via Flash.\r\n");
                    self.finish(false);
                }
                true
            }
        }
    }

    /// The loop is over: the prompt (stopped) or the OS (not stopped).
    fn finish(&mut self, stopped: bool) {
        if stopped {
            let after = self.after_interrupt.clone();
            self.out.extend_from_slice(&after);
            self.print_prompt();
        } else {
            let through = self.boot_through.clone();
            self.out.extend_from_slice(&through);
            self.booted = true;
            self.state = State::Booted;
        }
    }

    /// Already sitting at a prompt that was printed before anyone listened.
    pub fn at_prompt_unseen(&mut self) {
        self.state = State::Prompt;
    }

    /// Bytes U-Boot printed since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Bytes typed by the host.
    pub fn input(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    fn print_prompt(&mut self) {
        let p = self.prompt.clone();
        self.out.extend_from_slice(p.as_bytes());
        self.state = State::Prompt;
    }

    fn byte(&mut self, b: u8) {
        match &mut self.state {
            State::Off | State::Booted => {}
            State::Script { .. } | State::Counting(_) => {
                if self.fifo.len() < FIFO {
                    self.fifo.push_back(b);
                }
                self.step();
            }
            State::Booting { typed } => {
                let stop = match &self.boot {
                    Boot::AnyKey => true,
                    Boot::Menu(k) => b == *k,
                    Boot::Keyed(s) => {
                        typed.push(b);
                        typed.ends_with(s.as_bytes())
                    }
                    Boot::Timed(_) => unreachable!("timed boots are never in Booting"),
                };
                if stop {
                    let after = self.after_interrupt.clone();
                    self.out.extend_from_slice(&after);
                    self.print_prompt();
                }
            }
            State::Prompt | State::Continuation => match b {
                0x03 => {
                    self.line.clear();
                    self.out.extend_from_slice(b"<INTERRUPT>\r\n");
                    self.print_prompt();
                }
                b'\r' | b'\n' => {
                    self.out.extend_from_slice(b"\r\n");
                    let line =
                        String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                    if self.state == State::Continuation {
                        self.out.extend_from_slice(b"> ");
                        return;
                    }
                    self.executed.push(line.clone());
                    self.execute(&line);
                }
                _ => {
                    self.line.push(b);
                    self.out.push(b);
                }
            },
        }
    }

    fn execute(&mut self, line: &str) {
        let open_if = line.trim_start().starts_with("if ") && !line.contains("fi");
        let segments = if self.hush {
            match hush_split(line).filter(|_| !open_if) {
                Some(s) => s,
                None => {
                    self.out.extend_from_slice(b"> ");
                    self.state = State::Continuation;
                    return;
                }
            }
        } else {
            simple_split(line)
        };
        // At the prompt commands run unprivileged when it is restricted.
        let privileged = !self.restricted;
        self.run_segments(segments, privileged);
        if self.state == State::Prompt {
            self.print_prompt();
        }
    }

    /// Runs a command line the way `run_command` does (the wrappers' path):
    /// parsed again, with the given privilege; the status of its last
    /// command.
    fn run_line(&mut self, line: &str, privileged: bool) -> i32 {
        let segments = if self.hush {
            match hush_split(line) {
                Some(s) => s,
                None => {
                    self.say("syntax error");
                    return 1;
                }
            }
        } else {
            simple_split(line)
        };
        self.run_segments(segments, privileged)
    }

    fn run_segments(&mut self, segments: Vec<Vec<Word>>, privileged: bool) -> i32 {
        for segment in segments {
            let mut words: Vec<String> = Vec::new();
            for (w, quoted) in segment {
                let w = if self.hush { self.expand(&w) } else { w };
                // An unquoted word that expands to nothing is no word.
                if !w.is_empty() || quoted {
                    words.push(w);
                }
            }
            if words.is_empty() {
                continue;
            }
            if let Some(max) = self.maxargs.filter(|m| words.len() > *m) {
                if self.hush {
                    self.out.extend_from_slice(
                        format!("Usage:\r\n{} - command\r\n", words[0]).as_bytes(),
                    );
                    self.status = 1;
                    continue;
                }
                self.out
                    .extend_from_slice(format!("** Too many args (max. {max}) **\r\n").as_bytes());
                words.truncate(max);
            }
            self.status = self.dispatch(&words, privileged);
            if self.state != State::Prompt {
                return self.status; // reset
            }
        }
        self.status
    }

    /// `$?`, `$name` and `${name}` as hush expands them when the command
    /// runs.
    fn expand(&self, word: &str) -> String {
        let mut out = String::new();
        let mut parts = word.split(VAR);
        out.push_str(parts.next().unwrap_or(""));
        while let (Some(name), Some(rest)) = (parts.next(), parts.next()) {
            if name == "?" {
                out.push_str(&self.status.to_string());
            } else if let Some(v) = self.env.get(name) {
                out.push_str(v);
            }
            out.push_str(rest);
        }
        out
    }

    fn say(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// `cmd_process`: a restricted prompt answers a privileged command as
    /// unknown (`common/command.c` l.524-530); its user commands run.
    fn dispatch(&mut self, w: &[String], privileged: bool) -> i32 {
        if let Some(out) = self.canned.get(&w.join(" ")).cloned() {
            self.out.extend_from_slice(&out);
            return 0;
        }
        if self.restricted {
            match w[0].as_str() {
                // do_atna/do_atns/do_atnf (cmd_at.c l.50-96): exactly one
                // argument, formatted into a fixed buffer by snprintf
                // (so cut at its size less one) and run by run_command,
                // which parses it with hush, privileged (common/cli.c
                // l.40-46).
                name @ ("atna" | "atns" | "atnf") => {
                    let (var, buffer, usage) = match name {
                        "atna" => ("ipaddr", 256, "ip-addr"),
                        "atns" => ("serverip", 256, "ip-addr"),
                        _ => ("bootfile", 1280, "filename"),
                    };
                    if w.len() != 2 {
                        self.say(&format!("{name} - wrapper\r\n\r\nUsage:\r\n{name} {usage}"));
                        return 1;
                    }
                    let mut runcmd = format!("setenv {var} {}", w[1]);
                    runcmd.truncate(buffer - 1);
                    self.wrapped.push(runcmd.clone());
                    return self.run_line(&runcmd, true);
                }
                "at" => return 0,
                // `run VAR` runs the variable's text with the caller's
                // privilege (cmd_process passes the flag on).
                "run" if privileged => {
                    let mut status = 0;
                    for var in &w[1..] {
                        let Some(text) = self.env.get(var).cloned() else {
                            self.say(&format!("## Error: \"{var}\" not defined"));
                            return 1;
                        };
                        status = self.run_line(&text, privileged);
                    }
                    return status;
                }
                n if ZYXEL_USER_COMMANDS.contains(&n) => {
                    self.say(&format!("{n}: not modelled"));
                    return 0;
                }
                n if !privileged => {
                    self.say(&format!("Unknown command '{n}' - try 'help'"));
                    return 1;
                }
                _ => {}
            }
        }
        self.command(w)
    }

    fn command(&mut self, w: &[String]) -> i32 {
        let say = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        match w[0].as_str() {
            "echo" if self.has_echo => {
                if w.get(1).map(String::as_str) == Some("-n") {
                    self.out.extend_from_slice(w[2..].join(" ").as_bytes());
                } else {
                    say(&mut self.out, &w[1..].join(" "));
                }
                0
            }
            "setenv" if w.len() >= 2 => {
                if w.len() == 2 {
                    self.env.remove(&w[1]);
                } else {
                    self.env.insert(w[1].clone(), w[2..].join(" "));
                }
                0
            }
            "printenv" if w.len() == 1 => {
                let vars: Vec<(String, String)> = self
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut size = 0;
                for (k, v) in vars {
                    size += k.len() + v.len() + 2;
                    say(&mut self.out, &format!("{k}={v}"));
                }
                say(&mut self.out, "");
                say(
                    &mut self.out,
                    &format!("Environment size: {size}/4092 bytes"),
                );
                0
            }
            "printenv" if w.len() == 2 => match self.env.get(&w[1]).cloned() {
                Some(v) => {
                    let line = format!("{}={v}\n", w[1]);
                    match self.pbsize {
                        Some(p) if line.len() > p - 1 => {
                            self.out.extend_from_slice(&line.as_bytes()[..p - 1]);
                        }
                        _ => say(&mut self.out, &format!("{}={v}", w[1])),
                    }
                    0
                }
                None => {
                    say(
                        &mut self.out,
                        &format!("## Error: \"{}\" not defined", w[1]),
                    );
                    1
                }
            },
            "crc32" => {
                say(
                    &mut self.out,
                    "crc32 for 40000000 ... 40000fff ==> 5a750c9b",
                );
                0
            }
            "true" => 0,
            "false" => 1,
            "version" => {
                let banner = self
                    .boot_log
                    .split(|&b| b == b'\n')
                    .find(|l| l.starts_with(b"U-Boot"))
                    .unwrap_or(b"U-Boot")
                    .to_vec();
                self.out.extend_from_slice(&banner);
                self.out.extend_from_slice(
                    b"\n\r\naarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0\r\n",
                );
                0
            }
            "reset" => {
                say(&mut self.out, "resetting ...");
                self.power_on();
                0
            }
            "hang" => {
                // A command that never returns (a kernel that took over).
                self.state = State::Off;
                0
            }
            "tftpboot" => {
                say(&mut self.out, "TFTP error: 'File not found' (1)");
                0
            }
            // A load whose ARP round timed out once and was restarted by
            // U-Boot itself (net/arp.c), then went through.
            "tftp-arp-retry" => {
                say(&mut self.out, "ARP Retry count exceeded; starting again");
                say(&mut self.out, "Bytes transferred = 4096 (1000 hex)");
                0
            }
            // TFTP itself gave up (net/tftp.c).
            "tftp-retry" => {
                say(&mut self.out, "Retry count exceeded; starting again");
                1
            }
            other => {
                say(
                    &mut self.out,
                    &format!("Unknown command '{other}' - try 'help'"),
                );
                1
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Delimits a variable name inside a split word: `VAR name VAR`.
const VAR: char = '\u{1}';

/// A word and whether it was quoted (an empty quoted word is a word).
type Word = (String, bool);

/// The simple parser: `;` and blanks, quotes kept as text.
fn simple_split(line: &str) -> Vec<Vec<Word>> {
    line.split(';')
        .map(|s| {
            s.split_whitespace()
                .map(|w| (w.to_string(), false))
                .collect()
        })
        .collect()
}

/// Hush-like splitting as U-Boot's hush lexes (`common/cli_hush.c`):
/// `;` outside quotes separates commands; single quotes are literal up
/// to the next quote; inside double quotes a single quote still starts a
/// literal; `$?`, `$name` and `${name}` become placeholders expanded when
/// the command runs; a backslash keeps the next character and is dropped
/// (also inside single quotes, where `\'` still ends the quote, as
/// `done_word` does). `None` on an open quote.
fn hush_split(line: &str) -> Option<Vec<Vec<Word>>> {
    let mut segs = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut dq = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some('\\') => match chars.next() {
                            Some('\'') => break,
                            Some(n) => word.push(n),
                            None => return None,
                        },
                        Some(c) => word.push(c),
                        None => return None,
                    }
                }
            }
            '"' => {
                in_word = true;
                quoted = true;
                dq = !dq;
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '$' => {
                in_word = true;
                let name: String = match chars.peek() {
                    Some('?') => {
                        chars.next();
                        "?".into()
                    }
                    Some('{') => {
                        chars.next();
                        let mut n = String::new();
                        loop {
                            match chars.next() {
                                Some('}') => break,
                                Some(c) => n.push(c),
                                None => return None,
                            }
                        }
                        n
                    }
                    Some(c) if c.is_ascii_alphabetic() => {
                        let mut n = String::new();
                        while let Some(&c) = chars.peek() {
                            if c.is_ascii_alphanumeric() || c == '_' {
                                n.push(c);
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        n
                    }
                    _ => {
                        word.push('$');
                        continue;
                    }
                };
                word.push(VAR);
                word.push_str(&name);
                word.push(VAR);
            }
            ' ' | ';' if !dq => {
                if in_word {
                    words.push((std::mem::take(&mut word), quoted));
                    in_word = false;
                    quoted = false;
                }
                if c == ';' {
                    segs.push(std::mem::take(&mut words));
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if dq {
        return None;
    }
    if in_word {
        words.push((word, quoted));
    }
    segs.push(words);
    Some(segs)
}
