//! How a running session tells the user what it does.
//!
//! The runners never print. They call a [`Reporter`]: the binary renders
//! step lines on stderr, progress bars and the board's console on stdout;
//! a test records everything with [`Recorder`] and asserts on it.

/// How a load was proven to hold the planned bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadProof {
    /// `${filesize}` and U-Boot's `crc32` over the loaded bytes.
    Crc32,
    /// Not loaded: U-Boot's `crc32` over the planned region already
    /// matched (`--verify-in-place`, `--watch` re-runs).
    InPlace,
    /// `${filesize}` now; every byte by `bootm`'s uImage data CRC before
    /// the kernel starts (U-Boots without `crc32`).
    BootmDataCrc,
    /// `${filesize}` only (`--no-verify`).
    SizeOnly,
}

impl LoadProof {
    /// The name used in machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadProof::Crc32 => "crc32",
            LoadProof::InPlace => "in-place",
            LoadProof::BootmDataCrc => "bootm-data-crc",
            LoadProof::SizeOnly => "size-only",
        }
    }
}

/// What happened, as data: what a machine-readable rendering (`--json`)
/// prints, and what tests assert on. Human lines go through
/// [`Reporter::say`]; every event has one there too.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// U-Boot's prompt was reached (`seconds` since the console opened).
    AtPrompt {
        /// Seconds from console open to the prompt.
        seconds: f64,
    },
    /// A step ended successfully after `seconds`.
    StepDone {
        /// The step, as in the timing table (`setenv bootargs`, …).
        step: String,
        /// Its duration.
        seconds: f64,
    },
    /// A file is in the board's RAM, and how that was proven.
    Loaded {
        /// TFTP file name.
        file: String,
        /// U-Boot address.
        addr: u64,
        /// Bytes.
        size: u64,
        /// CRC32 of the bytes (the plan's).
        crc32: u32,
        /// How it was checked.
        proof: LoadProof,
        /// Seconds for the transfer (0 when verified in place).
        seconds: f64,
    },
    /// `bootm` reported its data CRC over every loaded byte correct.
    BootmVerified,
    /// The kernel started (`seconds` after the boot command).
    KernelStarted {
        /// Seconds since the boot command was typed.
        seconds: f64,
    },
    /// The userland marker appeared: the board is up.
    Userland {
        /// The marker.
        marker: String,
        /// Seconds since U-Boot's prompt.
        seconds: f64,
    },
}

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
    /// A structured event (see [`Event`]); human output can ignore it.
    fn event(&mut self, _event: &Event) {}
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
    /// Structured events, in order.
    pub events: Vec<Event>,
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
    fn event(&mut self, event: &Event) {
        self.events.push(event.clone());
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
    fn event(&mut self, event: &Event) {
        (**self).event(event)
    }
}
