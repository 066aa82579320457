//! The pieces of `lmx console` that are not I/O: keys, mapping, logs.
//!
//! An interactive console has to decide, for every key, whether it goes
//! to the board or to lmx (exit, BREAK, toggles), and for every byte from
//! the board, what the screen and the log file get. Keeping those rules
//! here, as plain functions and small state machines, lets them be
//! tested without a terminal; [`RawMode`] is the one piece that touches
//! the tty, and it puts the terminal back however the program ends.

use std::io::Write;
use std::os::fd::RawFd;
use std::sync::Mutex;

/// Ctrl-]: leaves `lmx console` (as telnet and picocom users expect).
pub const DEFAULT_EXIT_KEY: u8 = 0x1d;
/// Ctrl-T: the prefix for console commands (BREAK, toggles).
pub const DEFAULT_PREFIX_KEY: u8 = 0x14;

/// What a key (or key sequence) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// Send these bytes to the board.
    Send(Vec<u8>),
    /// Leave.
    Exit,
    /// Send a BREAK.
    Break,
    /// Toggle local echo.
    ToggleEcho,
    /// Toggle timestamps on screen.
    ToggleTimestamps,
    /// Toggle the log file.
    ToggleLog,
    /// Show the key help.
    Help,
}

/// What the Enter key sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnterMap {
    /// CR (what U-Boot and most consoles want).
    #[default]
    Cr,
    /// LF.
    Lf,
    /// CR LF.
    CrLf,
}

/// How board output line ends are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMap {
    /// As received.
    #[default]
    AsIs,
    /// A lone LF becomes CR LF (for targets that send bare LF).
    LfToCrLf,
}

/// Turns keystrokes into [`KeyAction`]s: exit key, prefix commands, Enter mapping.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The exit key byte.
    pub exit: u8,
    /// The prefix key byte.
    pub prefix: u8,
    /// What Enter sends.
    pub enter: EnterMap,
    armed: bool,
}

impl Keys {
    /// Keys with the given exit and prefix bytes.
    pub fn new(exit: u8, prefix: u8, enter: EnterMap) -> Keys {
        Keys {
            exit,
            prefix,
            enter,
            armed: false,
        }
    }

    /// The help text for the prefix commands.
    pub fn help(&self) -> String {
        format!(
            "{} then: b BREAK, e local echo, t timestamps, l logging, q quit, ? help, {} again sends it; {} quits",
            key_name(self.prefix),
            key_name(self.prefix),
            key_name(self.exit)
        )
    }

    /// Feeds typed bytes; returns what to do, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<KeyAction> {
        let mut out: Vec<KeyAction> = Vec::new();
        let mut send: Vec<u8> = Vec::new();
        let flush = |send: &mut Vec<u8>, out: &mut Vec<KeyAction>| {
            if !send.is_empty() {
                out.push(KeyAction::Send(std::mem::take(send)));
            }
        };
        for &b in bytes {
            if self.armed {
                self.armed = false;
                let action = match b {
                    b'b' | b'B' => Some(KeyAction::Break),
                    b'e' | b'E' => Some(KeyAction::ToggleEcho),
                    b't' | b'T' => Some(KeyAction::ToggleTimestamps),
                    b'l' | b'L' => Some(KeyAction::ToggleLog),
                    b'q' | b'Q' => Some(KeyAction::Exit),
                    b'?' | b'h' | b'H' => Some(KeyAction::Help),
                    x if x == self.prefix => {
                        send.push(x);
                        None
                    }
                    _ => Some(KeyAction::Help),
                };
                if let Some(a) = action {
                    flush(&mut send, &mut out);
                    out.push(a);
                }
                continue;
            }
            if b == self.exit {
                flush(&mut send, &mut out);
                out.push(KeyAction::Exit);
                return out;
            }
            if b == self.prefix {
                self.armed = true;
                continue;
            }
            match (b, self.enter) {
                (b'\r', EnterMap::Lf) => send.push(b'\n'),
                (b'\r', EnterMap::CrLf) => send.extend_from_slice(b"\r\n"),
                _ => send.push(b),
            }
        }
        flush(&mut send, &mut out);
        out
    }
}

/// `Ctrl-]`-style name of a control key.
pub fn key_name(b: u8) -> String {
    if b < 0x20 {
        format!("Ctrl-{}", (b + 0x40) as char)
    } else {
        format!("{}", b as char)
    }
}

/// Parses `ctrl-]`, `^]`, `ctrl-t` or a single character into a key byte.
pub fn parse_key(s: &str) -> Option<u8> {
    let lower = s.to_ascii_lowercase();
    let c = lower
        .strip_prefix("ctrl-")
        .or_else(|| lower.strip_prefix('^'))
        .map(|r| (true, r))
        .unwrap_or((false, lower.as_str()));
    let bytes = c.1.as_bytes();
    if bytes.len() != 1 {
        return None;
    }
    if c.0 {
        let up = bytes[0].to_ascii_uppercase();
        (0x40..=0x5f).contains(&up).then_some(up - 0x40)
    } else {
        Some(s.as_bytes()[0])
    }
}

/// Maps board output for the screen.
pub fn map_output(map: OutputMap, prev: &mut u8, bytes: &[u8]) -> Vec<u8> {
    match map {
        OutputMap::AsIs => bytes.to_vec(),
        OutputMap::LfToCrLf => {
            let mut out = Vec::with_capacity(bytes.len() + 8);
            for &b in bytes {
                if b == b'\n' && *prev != b'\r' {
                    out.push(b'\r');
                }
                out.push(b);
                *prev = b;
            }
            out
        }
    }
}

/// Removes ANSI escape sequences (CSI, OSC, two-byte escapes) from a
/// stream, keeping state across calls.
#[derive(Debug, Default, Clone)]
pub struct AnsiStripper {
    state: u8,
}

impl AnsiStripper {
    /// The bytes of `input` that are not part of an escape sequence.
    pub fn strip(&mut self, input: &[u8]) -> Vec<u8> {
        const TEXT: u8 = 0;
        const ESC: u8 = 1;
        const CSI: u8 = 2;
        const OSC: u8 = 3;
        const OSC_ESC: u8 = 4;
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            self.state = match (self.state, b) {
                (TEXT, 0x1b) => ESC,
                (TEXT, _) => {
                    out.push(b);
                    TEXT
                }
                (ESC, b'[') => CSI,
                (ESC, b']') => OSC,
                (ESC, _) => TEXT,
                (CSI, 0x40..=0x7e) => TEXT,
                (CSI, _) => CSI,
                (OSC, 0x07) => TEXT,
                (OSC, 0x1b) => OSC_ESC,
                (OSC, _) => OSC,
                (OSC_ESC, b'\\') => TEXT,
                (OSC_ESC, _) => OSC,
                _ => TEXT,
            };
        }
        out
    }
}

/// Adds `[HH:MM:SS.mmm] ` at the start of every line (UTC).
#[derive(Debug, Clone)]
pub struct Timestamper {
    at_line_start: bool,
}

impl Default for Timestamper {
    fn default() -> Self {
        Timestamper {
            at_line_start: true,
        }
    }
}

impl Timestamper {
    /// `bytes` with a timestamp before each line's first byte.
    pub fn stamp(&mut self, now: std::time::SystemTime, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + 16);
        for &b in bytes {
            if self.at_line_start && b != b'\r' && b != b'\n' {
                out.extend_from_slice(format_time(now).as_bytes());
                self.at_line_start = false;
            }
            out.push(b);
            if b == b'\n' {
                self.at_line_start = true;
            }
        }
        out
    }
}

/// `[HH:MM:SS.mmm] ` in UTC.
pub fn format_time(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() % 86_400;
    format!(
        "[{:02}:{:02}:{:02}.{:03}] ",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        d.subsec_millis()
    )
}

/// A console log file: board output with ANSI sequences removed, CRs
/// dropped, optionally timestamped per line.
#[derive(Debug)]
pub struct ConsoleLog {
    file: std::fs::File,
    strip: AnsiStripper,
    stamps: Option<Timestamper>,
}

impl ConsoleLog {
    /// Appends to `path`.
    pub fn open(path: &std::path::Path, timestamps: bool) -> std::io::Result<ConsoleLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(ConsoleLog {
            file,
            strip: AnsiStripper::default(),
            stamps: timestamps.then(Timestamper::default),
        })
    }

    /// Logs board output.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut clean = self.strip.strip(bytes);
        clean.retain(|&b| b != b'\r');
        let clean = match &mut self.stamps {
            Some(t) => t.stamp(std::time::SystemTime::now(), &clean),
            None => clean,
        };
        self.file.write_all(&clean)
    }

    /// Logs one of lmx's own status lines, marked as such.
    pub fn note(&mut self, text: &str) -> std::io::Result<()> {
        writeln!(self.file, "\n[lmx] {text}")
    }
}

static SAVED: Mutex<Option<(RawFd, libc::termios)>> = Mutex::new(None);

/// Puts the saved terminal settings back (from a panic hook or signal path).
pub fn restore_terminal() {
    if let Ok(saved) = SAVED.lock() {
        if let Some((fd, t)) = saved.as_ref() {
            // SAFETY: restoring settings read from the same descriptor.
            unsafe { libc::tcsetattr(*fd, libc::TCSANOW, t) };
        }
    }
}

/// The terminal in raw mode for as long as this lives. The original
/// settings come back on drop, and also from a panic (a hook is
/// installed) through [`restore_terminal`].
#[derive(Debug)]
pub struct RawMode {
    fd: RawFd,
    original: libc::termios,
}

impl RawMode {
    /// Switches `fd` (a tty) to raw mode.
    pub fn enable(fd: RawFd) -> std::io::Result<RawMode> {
        let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the struct on success.
        if unsafe { libc::tcgetattr(fd, t.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: initialised by tcgetattr above.
        let original = unsafe { t.assume_init() };
        let mut raw = original;
        // SAFETY: cfmakeraw edits the struct in place.
        unsafe { libc::cfmakeraw(&mut raw) };
        if let Ok(mut s) = SAVED.lock() {
            *s = Some((fd, original));
        }
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_terminal();
                prev(info);
            }));
        });
        // SAFETY: applying a termios derived from the current one.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(RawMode { fd, original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the settings read in `enable`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.original) };
        if let Ok(mut s) = SAVED.lock() {
            *s = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_prefix_and_enter() {
        let mut k = Keys::new(DEFAULT_EXIT_KEY, DEFAULT_PREFIX_KEY, EnterMap::CrLf);
        assert_eq!(
            k.feed(b"ls\r\x14b\x14\x14x\x1dnot sent"),
            vec![
                KeyAction::Send(b"ls\r\n".to_vec()),
                KeyAction::Break,
                KeyAction::Send(b"\x14x".to_vec()),
                KeyAction::Exit,
            ]
        );
        // A prefix split across reads still works.
        assert_eq!(k.feed(b"\x14"), vec![]);
        assert_eq!(k.feed(b"t"), vec![KeyAction::ToggleTimestamps]);
    }

    #[test]
    fn key_names_parse() {
        assert_eq!(parse_key("ctrl-]"), Some(0x1d));
        assert_eq!(parse_key("^T"), Some(0x14));
        assert_eq!(parse_key("ctrl-a"), Some(0x01));
        assert_eq!(parse_key("x"), Some(b'x'));
        assert_eq!(parse_key("ctrl-"), None);
        assert_eq!(key_name(0x1d), "Ctrl-]");
    }

    #[test]
    fn ansi_is_stripped_across_reads() {
        let mut s = AnsiStripper::default();
        let mut out = s.strip(b"a\x1b[1;3");
        out.extend(s.strip(b"2mred\x1b[0m \x1b]0;title\x07b"));
        assert_eq!(out, b"ared b");
    }

    #[test]
    fn timestamps_per_line_and_lf_mapping() {
        let mut t = Timestamper::default();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(3_723_004);
        assert_eq!(
            t.stamp(at, b"one\r\ntw"),
            b"[01:02:03.004] one\r\n[01:02:03.004] tw".to_vec()
        );
        let mut prev = 0;
        assert_eq!(
            map_output(OutputMap::LfToCrLf, &mut prev, b"a\nb\r\n"),
            b"a\r\nb\r\n"
        );
    }
}
