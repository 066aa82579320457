//! A scripted fake U-Boot for fast matcher tests. Its boot logs and
//! canned outputs come from `tests/fixtures`; everything it fakes is
//! also exercised against the real U-Boot in `tests/qemu.rs`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

/// How the fake stops autoboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Any byte stops autoboot.
    AnyKey,
    /// Only this menu key does.
    Menu(u8),
    /// This exact string does.
    Keyed(String),
}

/// Sections of a fixture file.
pub fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A `@@ NAME` section of a written transcript, with CR LF line ends.
pub fn section(name: &str, section: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(name)).unwrap();
    let mut out = None;
    for part in text.split("@@ ").skip(1) {
        let (head, body) = part.split_once('\n').unwrap();
        if head.trim() == section {
            out = Some(body.to_string());
        }
    }
    let body = out.unwrap_or_else(|| panic!("no section {section} in {name}"));
    let body = if section == "prompt" {
        body.trim_end_matches('\n').to_string()
    } else {
        body
    };
    body.replace('\n', "\r\n").into_bytes()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Off,
    Booting { typed: Vec<u8> },
    Prompt,
    Continuation,
}

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

    /// An Atheros vendor build: `ath> `, no `echo` (written transcript).
    pub fn ath79() -> FakeUBoot {
        let f = "vendor-ath79.txt";
        FakeUBoot {
            prompt: String::from_utf8(section(f, "prompt")).unwrap(),
            hush: false,
            has_echo: false,
            boot: Boot::AnyKey,
            boot_log: section(f, "boot"),
            after_interrupt: b"\r\n".to_vec(),
            ..FakeUBoot::mainline()
        }
    }

    /// GL.iNet's U-Boot 1.1.4 for the AR750 (written from its sources):
    /// `ath> `, hush with `echo` and `$?`, keyed autoboot `gl`.
    pub fn gl_ar750() -> FakeUBoot {
        let f = "vendor-gl-ar750.txt";
        FakeUBoot {
            prompt: String::from_utf8(section(f, "prompt")).unwrap(),
            boot: Boot::Keyed("gl".into()),
            boot_log: section(f, "boot"),
            after_interrupt: b"\r\n".to_vec(),
            ..FakeUBoot::mainline()
        }
    }

    /// GL.iNet's U-Boot 1.1.3 for MT7620/MT7628 (written from its
    /// sources): `MT7628 # `, simple parser, no `echo`, keyed `gl`.
    pub fn gl_mt76xx() -> FakeUBoot {
        let f = "vendor-gl-mt76xx.txt";
        FakeUBoot {
            prompt: String::from_utf8(section(f, "prompt")).unwrap(),
            hush: false,
            has_echo: false,
            boot: Boot::Keyed("gl".into()),
            boot_log: section(f, "boot"),
            after_interrupt: b"\r\n".to_vec(),
            ..FakeUBoot::mainline()
        }
    }

    /// Power on: print the boot log and wait for the interrupt.
    pub fn power_on(&mut self) {
        self.out.extend_from_slice(&self.boot_log.clone());
        self.state = State::Booting { typed: Vec::new() };
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
            State::Off => {}
            State::Booting { typed } => {
                let stop = match &self.boot {
                    Boot::AnyKey => true,
                    Boot::Menu(k) => b == *k,
                    Boot::Keyed(s) => {
                        typed.push(b);
                        typed.ends_with(s.as_bytes())
                    }
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
            line.split(';')
                .map(|s| s.split_whitespace().map(String::from).collect())
                .collect()
        };
        for mut words in segments {
            if self.hush {
                for w in &mut words {
                    *w = w.replace("\u{1}?", &self.status.to_string());
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
            self.status = self.command(&words);
            if self.state != State::Prompt {
                return; // reset
            }
        }
        self.print_prompt();
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
            "printenv" if w.len() == 2 => match self.env.get(&w[1]).cloned() {
                Some(v) => {
                    say(&mut self.out, &format!("{}={v}", w[1]));
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

/// Hush-like splitting: `;` outside quotes, single quotes literal, `\x`
/// outside quotes, `$?` kept as a placeholder. `None` on an open quote.
fn hush_split(line: &str) -> Option<Vec<Vec<String>>> {
    let mut segs = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                // U-Boot's hush: a backslash escapes inside single quotes
                // too, except that `\'` still ends the quote.
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
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '$' if chars.peek() == Some(&'?') => {
                chars.next();
                in_word = true;
                word.push_str("\u{1}?");
            }
            ' ' | ';' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
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
    if in_word {
        words.push(word);
    }
    segs.push(words);
    Some(segs)
}
