//! How a running session tells the user what it does.
//!
//! The runners never print. They call a [`Reporter`]: the binary renders
//! step lines on stderr, progress bars and the board's console on stdout;
//! a test records everything with [`Recorder`] and asserts on it.

/// Receives what a session does, as it happens.
pub trait Reporter: Send {
    /// A line about a step (`==> tftpboot …`, `    ok: …`, `note: …`).
    fn say(&mut self, line: &str);
    /// A TFTP transfer of `file` (`size` bytes) began.
    fn transfer_start(&mut self, _file: &str, _size: u64) {}
    /// The running transfer has sent `bytes`.
    fn transfer_progress(&mut self, _bytes: u64) {}
    /// The running transfer ended (`ok`: completed).
    fn transfer_end(&mut self, _ok: bool) {}
    /// Console bytes from the board after a boot or reset command, for a
    /// user who wants to watch the boot (the reporter decides whether to
    /// show them).
    fn console(&mut self, _bytes: &[u8]) {}
}

/// A [`Reporter`] that keeps everything, for tests.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// Every `say` line, in order.
    pub lines: Vec<String>,
    /// Transfers: (file, size, ok).
    pub transfers: Vec<(String, u64, Option<bool>)>,
    /// Console bytes passed through.
    pub console: Vec<u8>,
}

impl Reporter for Recorder {
    fn say(&mut self, line: &str) {
        self.lines.push(line.to_string());
    }
    fn transfer_start(&mut self, file: &str, size: u64) {
        self.transfers.push((file.to_string(), size, None));
    }
    fn transfer_end(&mut self, ok: bool) {
        if let Some(t) = self.transfers.last_mut() {
            t.2 = Some(ok);
        }
    }
    fn console(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
    }
}

impl<R: Reporter + ?Sized> Reporter for Box<R> {
    fn say(&mut self, line: &str) {
        (**self).say(line)
    }
    fn transfer_start(&mut self, file: &str, size: u64) {
        (**self).transfer_start(file, size)
    }
    fn transfer_progress(&mut self, bytes: u64) {
        (**self).transfer_progress(bytes)
    }
    fn transfer_end(&mut self, ok: bool) {
        (**self).transfer_end(ok)
    }
    fn console(&mut self, bytes: &[u8]) {
        (**self).console(bytes)
    }
}
