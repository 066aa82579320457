//! One error type for the test bed. Each variant says what was expected,
//! what was found, and — where a missing host piece is the cause — which
//! package or script provides it.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// `Result` with the test bed's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while preparing or running the virtual board.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the host should provide is not there.
    #[error("{what} not found at {}: {hint}", path.display())]
    Missing {
        /// What the file is (e.g. "U-Boot for QEMU's virt machine").
        what: String,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// The QEMU system emulator is not installed.
    #[error("{binary} not found in PATH: run `scripts/deps.sh virtual` (Debian package qemu-system-arm, from bookworm-backports on Debian 12)")]
    QemuNotFound {
        /// The binary looked for.
        binary: String,
    },
    /// QEMU is older than the board needs.
    #[error("{} is QEMU {found}, the virtual board needs QEMU >= {min} (QEMU 7.2 cannot complete U-Boot's buffered CFI flash writes): run `scripts/deps.sh virtual`, which installs it from bookworm-backports", binary.display())]
    QemuTooOld {
        /// The binary checked.
        binary: PathBuf,
        /// The version it reported.
        found: String,
        /// The lowest major version that works.
        min: u32,
    },
    /// A program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        source: io::Error,
    },
    /// A helper program ran and failed.
    #[error("`{command}` failed ({status}): {output}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its error output (or the last lines of it).
        output: String,
    },
    /// QEMU ended while the test bed was still waiting for something.
    #[error("QEMU exited ({status}) while waiting for {waiting_for}; its error output:\n{stderr}")]
    QemuExited {
        /// What was awaited.
        waiting_for: String,
        /// QEMU's exit status.
        status: ExitStatus,
        /// What QEMU printed on stderr.
        stderr: String,
    },
    /// Something expected on the console or from QEMU did not come in time.
    #[error(
        "timed out after {secs:.1} s waiting for {what}; the last console output was:\n{tail}"
    )]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long was waited.
        secs: f64,
        /// The end of the transcript.
        tail: String,
    },
    /// The console ended (QEMU exited or closed the socket).
    #[error("the console closed while waiting for {what}; the last console output was:\n{tail}")]
    ConsoleClosed {
        /// What was awaited.
        what: String,
        /// The end of the transcript.
        tail: String,
    },
    /// U-Boot answered a command with an error.
    #[error("U-Boot command `{command}` failed: {reason}; its output was:\n{output}")]
    UBoot {
        /// The command sent.
        command: String,
        /// The error line or check that failed.
        reason: String,
        /// What U-Boot printed.
        output: String,
    },
    /// Setting up the private network namespace failed.
    #[error("private network namespace: {step} failed: {reason}. {hint}")]
    Netns {
        /// The step (e.g. `unshare(CLONE_NEWUSER|CLONE_NEWNET)`).
        step: String,
        /// The system's answer.
        reason: String,
        /// What to do about it.
        hint: String,
    },
    /// File I/O with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: io::Error,
    },
    /// A device tree could not be read or edited.
    #[error("device tree: {0}")]
    Fdt(#[from] lmx_builder::fdt::Error),
    /// The root filesystem could not be built.
    #[error("root filesystem: {0}")]
    Squashfs(#[from] lmx_builder::squashfs::Error),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
