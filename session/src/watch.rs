//! The console after a boot or reset command: one matcher for both.
//!
//! Once `bootm` (or `reset`) is sent, U-Boot's prompt protocol is over:
//! what follows is free text — U-Boot unpacking the image, the kernel's
//! log, init. [`BootWatch`] is the sans-I/O part: it takes console bytes,
//! keeps the last lines for error reports, and answers whether one of the
//! texts waited for, or one of the failure texts, has appeared.
//! [`until`] drives it from a [`Transport`] with a deadline; `lmx
//! tftpboot` and `lmx flash --boot` both use it, with the failure lists
//! of [`failures`], so the same console is judged the same way.

use std::collections::VecDeque;
use std::time::Duration;

use lmx_console::{Dialect, Tail, Transport};
use tokio::io::AsyncReadExt;

use crate::report::Reporter;

/// Texts that mean the board reset: a U-Boot banner.
pub const RESET_BANNERS: &[&str] = &["U-Boot 20", "U-Boot 1."];

/// Texts U-Boot prints while it resets on purpose (`reset`).
const RESET_TEXTS: &[&str] = &["Resetting CPU", "resetting ..."];

/// Texts that end a boot whatever the board: the kernel gave up.
const KERNEL_FAILURES: &[&str] = &["Kernel panic", "Unable to mount root"];

/// Where in a boot the console is, for [`failures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Right after `reset`: U-Boot's reset messages and banner are
    /// expected, anything else that fails a command is not.
    AfterReset,
    /// After the boot command (or once the kernel runs): a U-Boot banner
    /// or reset message means the board reset.
    Booting,
}

/// The failure texts for `phase`: the dialect's (which the board file
/// extends), the kernel's, and for [`Phase::Booting`] a reset.
pub fn failures(dialect: &Dialect, phase: Phase) -> Vec<String> {
    let mut v: Vec<String> = dialect
        .failure_texts
        .iter()
        .filter(|f| phase == Phase::Booting || !RESET_TEXTS.contains(&f.as_str()))
        .cloned()
        .collect();
    v.extend(KERNEL_FAILURES.iter().map(|s| s.to_string()));
    if phase == Phase::Booting {
        v.extend(RESET_BANNERS.iter().map(|s| s.to_string()));
    }
    v
}

/// Console text after a boot or reset command, split into lines.
#[derive(Debug, Default)]
pub struct BootWatch {
    lines: VecDeque<String>,
    partial: String,
    all: String,
}

/// What [`BootWatch::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// One of the texts waited for.
    Want(String),
    /// A failure text.
    Failure(String),
}

/// Why [`until`] stopped without what it waited for.
#[derive(Debug, Clone)]
pub struct WatchError {
    /// What happened (a failure text, a timeout, the console closing).
    pub what: String,
    /// The console's last lines.
    pub tail: Tail,
}

/// Bytes of text kept for matching; older text is dropped.
const KEEP: usize = 1 << 20;

impl BootWatch {
    /// An empty watch.
    pub fn new() -> BootWatch {
        BootWatch::default()
    }

    /// Appends console bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        let chunk = String::from_utf8_lossy(bytes).into_owned();
        self.all.push_str(&chunk);
        for c in chunk.chars() {
            if c == '\n' {
                let line = std::mem::take(&mut self.partial)
                    .trim_end_matches('\r')
                    .to_string();
                self.lines.push_back(line);
                if self.lines.len() > 40 {
                    self.lines.pop_front();
                }
            } else {
                self.partial.push(c);
            }
        }
        if self.all.len() > KEEP {
            let cut = self.all.len() - (1 << 16);
            let cut = (cut..self.all.len())
                .find(|i| self.all.is_char_boundary(*i))
                .unwrap_or(self.all.len());
            self.all.drain(..cut);
        }
    }

    /// Whether `text` appeared (in the text still kept).
    pub fn seen(&self, text: &str) -> bool {
        self.all.contains(text)
    }

    /// The text kept so far.
    pub fn text(&self) -> &str {
        &self.all
    }

    /// The unfinished last line.
    pub fn partial(&self) -> &str {
        &self.partial
    }

    /// The last 12 lines, the unfinished one included.
    pub fn tail(&self) -> Tail {
        let mut v: Vec<String> = self.lines.iter().cloned().collect();
        if !self.partial.trim().is_empty() {
            v.push(self.partial.clone());
        }
        let n = v.len().saturating_sub(12);
        Tail(v.split_off(n))
    }

    /// The first of `want` anywhere in the kept text, else the first of
    /// `fail` in the text from byte `from` on.
    pub fn check(&self, want: &[&str], fail: &[String], from: usize) -> Option<Seen> {
        if let Some(w) = want.iter().find(|w| self.all.contains(**w)) {
            return Some(Seen::Want(w.to_string()));
        }
        let text = &self.all[floor_boundary(&self.all, from)..];
        fail.iter()
            .find(|f| text.contains(f.as_str()))
            .map(|f| Seen::Failure(f.clone()))
    }

    /// The whole line that holds `text`, once that line has ended.
    pub fn line_with(&self, text: &str) -> Option<String> {
        let at = self.all.rfind(text)?;
        let start = self.all[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let end = self.all[at..].find('\n')?;
        Some(self.all[start..at + end].trim_end_matches('\r').to_string())
    }
}

fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Reads `io` into `watch` until one of `want` appears (its text) or one
/// of `fail`, the timeout or the end of the console (an error). Text
/// already seen counts. Every byte read also goes to the reporter's
/// console.
pub async fn until<T: Transport + ?Sized, R: Reporter + ?Sized>(
    watch: &mut BootWatch,
    io: &mut T,
    report: &mut R,
    want: &[&str],
    fail: &[String],
    timeout: Duration,
) -> Result<String, WatchError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut from = 0usize;
    let mut buf = vec![0u8; 4096];
    loop {
        match watch.check(want, fail, from) {
            Some(Seen::Want(w)) => return Ok(w),
            Some(Seen::Failure(f)) => {
                return Err(WatchError {
                    what: format!("the console showed {f:?}"),
                    tail: watch.tail(),
                })
            }
            None => {}
        }
        // A failure text may straddle two reads.
        from = watch.text().len().saturating_sub(64);
        let before = watch.text().len();
        let n = tokio::select! {
            r = io.read(&mut buf) => match r {
                Ok(0) => return Err(WatchError { what: "the console closed".into(), tail: watch.tail() }),
                Ok(n) => n,
                Err(e) => return Err(WatchError { what: format!("reading the console failed: {e}"), tail: watch.tail() }),
            },
            _ = tokio::time::sleep_until(deadline) => {
                return Err(WatchError {
                    what: format!("nothing matched within {} s", timeout.as_secs()),
                    tail: watch.tail(),
                })
            }
        };
        report.console(&buf[..n]);
        watch.feed(&buf[..n]);
        if watch.text().len() < before {
            // Old text was dropped: scan what is kept.
            from = 0;
        }
    }
}

/// Reads on until the current console line ends, at most `timeout`, so
/// console text shown to the user ends with its line instead of running
/// into lmx's own output.
pub async fn finish_line<T: Transport + ?Sized, R: Reporter + ?Sized>(
    watch: &mut BootWatch,
    io: &mut T,
    report: &mut R,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = vec![0u8; 4096];
    while !watch.partial().is_empty() {
        tokio::select! {
            r = io.read(&mut buf) => match r {
                Ok(n) if n > 0 => {
                    report.console(&buf[..n]);
                    watch.feed(&buf[..n]);
                }
                _ => return,
            },
            _ = tokio::time::sleep_until(deadline) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wants_anywhere_failures_from_the_scan_point() {
        let mut w = BootWatch::new();
        w.feed(b"## Booting kernel\r\nStarting kernel ...\r\n\r\n[    0.000000] Linux version 6.1");
        let fail = vec!["Kernel panic".to_string()];
        assert_eq!(
            w.check(&["Starting kernel"], &fail, 0),
            Some(Seen::Want("Starting kernel".into()))
        );
        w.feed(b"\r\n[    1.0] Kernel panic - not syncing: VFS\r\n");
        assert_eq!(
            w.check(&["LMX-READY"], &fail, 0),
            Some(Seen::Failure("Kernel panic".into()))
        );
        // Scanning from past the failure finds nothing new.
        assert_eq!(w.check(&["LMX-READY"], &fail, w.text().len()), None);
        assert_eq!(
            w.tail().0.last().unwrap(),
            "[    1.0] Kernel panic - not syncing: VFS"
        );
    }

    #[test]
    fn line_with_waits_for_the_end_of_the_line() {
        let mut w = BootWatch::new();
        w.feed(b"boot\r\nLMX-USERLAND-READY mi");
        assert_eq!(w.line_with("LMX-USERLAND-READY"), None);
        w.feed(b"ps root=/dev/mtdblock0\r\n# ");
        assert_eq!(
            w.line_with("LMX-USERLAND-READY").as_deref(),
            Some("LMX-USERLAND-READY mips root=/dev/mtdblock0")
        );
    }

    #[test]
    fn a_reset_is_expected_after_reset_and_a_failure_while_booting() {
        let d = Dialect::mainline();
        let after = failures(&d, Phase::AfterReset);
        let booting = failures(&d, Phase::Booting);
        for t in ["resetting ...", "U-Boot 20"] {
            assert!(!after.iter().any(|f| f == t), "{t}");
            assert!(booting.iter().any(|f| f == t), "{t}");
        }
        for t in ["Kernel panic", "Wrong Image Format", "Bad Data CRC"] {
            assert!(
                after.iter().any(|f| f == t) && booting.iter().any(|f| f == t),
                "{t}"
            );
        }
    }

    #[test]
    fn kept_text_is_bounded() {
        let mut w = BootWatch::new();
        let line = vec![b'x'; 1000];
        for _ in 0..2000 {
            w.feed(&line);
            w.feed(b"\n");
        }
        assert!(w.text().len() <= KEEP);
        assert_eq!(w.tail().0.len(), 12);
    }
}
