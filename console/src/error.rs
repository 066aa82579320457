//! Errors of the U-Boot driver, each with what was seen on the console.
//!
//! A failure on a serial line is only actionable with context: the
//! person needs to see what U-Boot printed last. Every [`ShellError`]
//! that happened on the line carries a [`Tail`] of the last console
//! lines, shown in its message.

use std::fmt;
use std::time::Duration;

use crate::dialect::DialectError;
use crate::quote::QuoteError;

/// The last lines seen on the console (oldest first), for error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail(pub Vec<String>);

impl fmt::Display for Tail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "\n  (nothing was received)");
        }
        write!(f, "\n  last console lines:")?;
        for l in &self.0 {
            write!(f, "\n  | {l}")?;
        }
        Ok(())
    }
}

/// Why a command was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Empty or blank: a bare newline repeats the previous command.
    #[error("an empty command is never sent (a bare newline repeats the previous command)")]
    Empty,
    /// Longer than the board's line buffer would keep.
    #[error("the command is {len} bytes; lmx sends at most {max} on this board (U-Boot's readline keeps CONFIG_SYS_CBSIZE {cbsize} − 2 characters, and lmx's end marker takes the rest), and U-Boot would drop the excess")]
    TooLong {
        /// Bytes in the command.
        len: usize,
        /// The longest command that fits.
        max: usize,
        /// The board's CBSIZE.
        cbsize: usize,
    },
    /// Through the board's wrapper (`uboot.commands.wrapper`) the line
    /// would not fit: the typed line must fit the readline, and the line
    /// the wrapper builds must fit the wrapper's buffer.
    #[error("the command counts {len} bytes through the board's `{wrapper}` wrapper (once quoted, a quote takes 4 bytes and a backslash 2); lmx sends at most {max} there: the typed line must fit U-Boot's readline (CONFIG_SYS_CBSIZE {cbsize} − 2 characters) and the line `{wrapper}` builds must fit its {buffer}-byte buffer, which would cut it short without a word")]
    TooLongWrapped {
        /// The command counted against `max` (`LineLimit::cost`).
        len: usize,
        /// The longest command without quotes or backslashes that fits.
        max: usize,
        /// The board's CBSIZE.
        cbsize: usize,
        /// The wrapper command.
        wrapper: String,
        /// The wrapper's buffer.
        buffer: usize,
    },
    /// A line the board's wrapper would not run as lmx means it.
    #[error("the command cannot be typed through the board's `{wrapper}` wrapper: {why}")]
    Unwrappable {
        /// The wrapper command.
        wrapper: String,
        /// Why.
        why: &'static str,
    },
    /// A byte U-Boot's line editor would act on (or mangle).
    #[error("byte {byte:#04x} at offset {index} is a control or non-ASCII byte that U-Boot's line editor would act on")]
    ControlByte {
        /// Offset in the command.
        index: usize,
        /// The byte.
        byte: u8,
    },
    /// Hush would wait for more input (an open quote).
    #[error("unbalanced quote: U-Boot's shell would wait for more input")]
    Unbalanced,
    /// Hush would read the rest of the line, lmx's end marker included, as a comment.
    #[error("an unquoted `#` at offset {0} starts a comment that would swallow lmx's end marker; quote it")]
    Comment(usize),
    /// A command this board's U-Boot must never get (`uboot.traps`).
    #[error("`{command}` is a trap on this board's U-Boot and is never typed: {reason}")]
    Trap {
        /// The command as it would run.
        command: String,
        /// The board file's reason.
        reason: String,
    },
    /// More words than `CONFIG_SYS_MAXARGS`: U-Boot would print `Usage:`
    /// (hush) or cut the command short (`** Too many args`).
    #[error("`{command}` would get {words} words; this board's U-Boot takes at most {maxargs} (CONFIG_SYS_MAXARGS, the command included)")]
    TooManyArgs {
        /// The command name.
        command: String,
        /// Words it would get.
        words: usize,
        /// The limit.
        maxargs: usize,
    },
    /// Another operation is still in progress on the machine.
    #[error("another console operation is still in progress")]
    Busy,
}

/// What went wrong while talking to U-Boot.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ShellError {
    /// Refused before sending.
    #[error("command {command:?} refused: {reason}")]
    #[diagnostic(
        code(lmx_console::refused),
        help("split long commands (e.g. build bootargs from pieces with setenv) and use only printable ASCII; a command the board file lists under uboot.traps is never typed")
    )]
    Refused {
        /// The command.
        command: String,
        /// Why.
        reason: Refusal,
    },
    /// No U-Boot prompt appeared.
    #[error("no U-Boot prompt within {waited:?}{tail}")]
    #[diagnostic(
        code(lmx_console::no_prompt),
        help("check the baud rate and the board's `uboot.prompt`, power-cycle the board, or check that nothing else holds the port")
    )]
    NoPrompt {
        /// How long lmx waited.
        waited: Duration,
        /// The console before giving up.
        tail: Tail,
    },
    /// The command did not finish in time.
    #[error("command {command:?} did not finish within {waited:?} ({phase}){tail}")]
    #[diagnostic(
        code(lmx_console::timeout),
        help("give it more time, or look at the last lines: the board may be stuck or booting something else")
    )]
    Timeout {
        /// The command.
        command: String,
        /// Where it was stuck.
        phase: &'static str,
        /// How long lmx waited.
        waited: Duration,
        /// The console at that moment.
        tail: Tail,
    },
    /// The command ran and failed: non-zero status or a failure text.
    #[error("command {command:?} failed{}{}{tail}",
        status.map(|s| format!(" with status {s}")).unwrap_or_default(),
        failure.as_ref().map(|f| format!(" (U-Boot said {f:?})")).unwrap_or_default())]
    #[diagnostic(code(lmx_console::failed))]
    Failed {
        /// The command.
        command: String,
        /// `$?`, when the build has it.
        status: Option<i32>,
        /// The first failure text found in the output.
        failure: Option<String>,
        /// Everything the command printed.
        output: String,
        /// The console.
        tail: Tail,
    },
    /// A new U-Boot banner appeared mid-command: the board reset.
    #[error("the board reset while running {command:?}{tail}")]
    #[diagnostic(
        code(lmx_console::reset),
        help("a reset mid-command usually means a crash, a watchdog or a power problem; look at the lines before the banner")
    )]
    Reset {
        /// The command.
        command: String,
        /// The console around the reset.
        tail: Tail,
    },
    /// The echo never matched what was sent, even after retries.
    #[error("U-Boot never echoed {command:?} correctly after {attempts} attempts; the line is losing or garbling characters{tail}")]
    #[diagnostic(
        code(lmx_console::unreliable_line),
        help("check the wiring and ground, lower the baud rate, or set flow control if the board supports it")
    )]
    Unreliable {
        /// The command.
        command: String,
        /// Times it was typed.
        attempts: u32,
        /// The console.
        tail: Tail,
    },
    /// Hush waited for more input (`> `): unbalanced quotes or braces.
    #[error("U-Boot's shell wanted more input after {command:?} (unbalanced quote or brace?); the line was cancelled{tail}")]
    #[diagnostic(code(lmx_console::incomplete))]
    Incomplete {
        /// The command.
        command: String,
        /// The console.
        tail: Tail,
    },
    /// The prompt came back without lmx's end marker, or the marker came
    /// when it should not have: what ran is not known for sure.
    #[error("lost track of {command:?}: {what}{tail}")]
    #[diagnostic(
        code(lmx_console::lost),
        help("something else may be typing on this console, or the line garbles output")
    )]
    Lost {
        /// The command.
        command: String,
        /// What was unexpected.
        what: &'static str,
        /// The console.
        tail: Tail,
    },
    /// The transport failed or closed.
    #[error("console connection failed: {source}{tail}")]
    #[diagnostic(
        code(lmx_console::transport),
        help("was the adapter unplugged or the emulator stopped?")
    )]
    Transport {
        /// The I/O error (`UnexpectedEof` when the peer closed).
        #[source]
        source: std::io::Error,
        /// The console before it went away.
        tail: Tail,
    },
    /// A variable read back after `setenv` does not hold what was set.
    #[error("{name} does not hold the value lmx set: printenv {name} shows {}{tail}",
        match got { Some(g) => format!("{g:?}"), None => "that it is not set".to_string() })]
    #[diagnostic(
        code(lmx_console::readback),
        help("U-Boot did not store the value as typed: too many words for CONFIG_SYS_MAXARGS, a line longer than its buffer, or quoting this build reads differently; check uboot.maxargs, uboot.cbsize and uboot.quotes_special in the board file")
    )]
    EnvMismatch {
        /// The variable.
        name: String,
        /// The value lmx set.
        expected: String,
        /// What `printenv` showed; `None` when not set.
        got: Option<String>,
        /// The console.
        tail: Tail,
    },
    /// A value could not be quoted for this dialect.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Quote(#[from] QuoteError),
    /// The board's dialect is broken.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Dialect(#[from] DialectError),
}

impl ShellError {
    /// The console lines carried by the error, if any.
    pub fn tail(&self) -> Option<&Tail> {
        match self {
            ShellError::NoPrompt { tail, .. }
            | ShellError::Timeout { tail, .. }
            | ShellError::Failed { tail, .. }
            | ShellError::Reset { tail, .. }
            | ShellError::Unreliable { tail, .. }
            | ShellError::Incomplete { tail, .. }
            | ShellError::Lost { tail, .. }
            | ShellError::EnvMismatch { tail, .. }
            | ShellError::Transport { tail, .. } => Some(tail),
            _ => None,
        }
    }
}
