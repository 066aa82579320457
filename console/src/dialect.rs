//! What a particular U-Boot build looks like from the serial line.
//!
//! Mainline U-Boot, an Atheros vendor build and a Ralink 1.1.3 build all
//! print different prompts, stop autoboot differently and differ in
//! whether `echo` and `$?` exist. The board file (`[uboot]` in
//! `lmx-boards`) states those facts; [`Dialect`] is the compiled form the
//! shell machine works with, so the matcher never re-parses strings and
//! an unknown fact falls back to the safe choice (no `$?`, no `echo`, a
//! 256-byte line buffer, 16 words per command). It also carries the
//! board's command inventory and traps ([`lmx_boards::Inventory`]): the
//! shell machine never types a trap, whatever asked for it.

use lmx_boards::shell::{self, Invocation};
use lmx_boards::{Board, Interrupt, Inventory, LineLimit, Trap, Wrap};
use regex::Regex;

use crate::error::Refusal;

pub use lmx_boards::MarkerMode;

/// Output texts that make any command fail, on every board
/// (`docs/design/uboot-and-tftp.md`, "Failure texts"). Boards add their own through
/// `uboot.failure_texts`.
///
/// `Usage:` is what U-Boot prints instead of running a command given the
/// wrong arguments, too many words among them (hush's and the simple
/// parser's `argc > cmdtp->maxargs`, `gl-inet/uboot-for-qca95xx:
/// src/common/hush.c` l.1699-1700 and `src/common/main.c` l.1264-1265).
/// `** Too many args` is the simple parser cutting a line at
/// `CONFIG_SYS_MAXARGS` words and running the command with the rest
/// dropped (`src/common/main.c` l.1044): a `setenv` stores a truncated
/// value, so the command must count as failed.
pub const COMMON_FAILURE_TEXTS: &[&str] = &[
    "Unknown command",
    "## Error",
    "Bad Linux ARM64 Image magic!",
    "Wrong Image Format",
    "Bad Data CRC",
    "ERROR: RD image overlaps OS image",
    "Resetting CPU",
    "resetting ...",
    "TFTP error",
    "Retry count exceeded",
    "Usage:",
    "** Too many args",
];

/// Lines that contain a failure text but are not failures. U-Boot's ARP
/// gives up on one round of requests with `ARP Retry count exceeded;
/// starting again` and restarts the transfer by itself (`ArpTimeoutCheck`
/// calls `NetStartAgain`, `u-boot/u-boot: net/arp.c`;
/// `gl-inet/uboot-source-for_mtk: net/net.c` l.283-286), so a load that
/// then succeeds must not fail on it; whether the load worked is judged by
/// its own output and `${filesize}`. TFTP's own `Retry count exceeded` is
/// still a failure.
pub const BENIGN_TEXTS: &[&str] = &["ARP Retry count exceeded; starting again"];

/// Line buffer size assumed when the board file does not state
/// `uboot.cbsize`: the smallest common `CONFIG_SYS_CBSIZE`.
pub const DEFAULT_CBSIZE: usize = shell::DEFAULT_CBSIZE;

/// Words per command assumed when the board file does not state
/// `uboot.maxargs` (see [`lmx_boards::shell::DEFAULT_MAXARGS`]).
pub const DEFAULT_MAXARGS: usize = shell::DEFAULT_MAXARGS;

/// How to stop autoboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptKey {
    /// Any key; send these bytes (usually a space).
    AnyKey(Vec<u8>),
    /// A boot menu; send this choice (e.g. `4`).
    Menu(Vec<u8>),
    /// A keyed build; send this exact string.
    String(Vec<u8>),
}

impl InterruptKey {
    /// The bytes sent to stop autoboot.
    pub fn bytes(&self) -> &[u8] {
        match self {
            InterruptKey::AnyKey(b) | InterruptKey::Menu(b) | InterruptKey::String(b) => b,
        }
    }
}

/// A compiled U-Boot dialect: prompt, autoboot, markers, limits, failures.
#[derive(Debug, Clone)]
pub struct Dialect {
    /// Matches the prompt at the start of a line (e.g. `^=> `).
    pub prompt: Regex,
    /// Texts that announce autoboot (the board's, plus the mainline text).
    pub autoboot: Vec<String>,
    /// How to stop autoboot.
    pub interrupt: InterruptKey,
    /// How a command's end and status are found.
    pub markers: MarkerMode,
    /// `CONFIG_SYS_CBSIZE`: U-Boot's readline keeps CBSIZE − 2 typed
    /// characters ([`Dialect::line_limit`]).
    pub cbsize: usize,
    /// Double quotes group words (hush); false on old builds.
    pub quotes_special: bool,
    /// Variables must be written `${var}` (old builds).
    pub braces_required: bool,
    /// Output texts that fail a command.
    pub failure_texts: Vec<String>,
    /// Line rate in baud; sets echo timeouts.
    pub baud: u32,
    /// Send the interrupt key repeatedly from the banner on: U-Boot with
    /// `bootdelay = 0` checks for a key once, right after it prints the
    /// autoboot text (`common/autoboot.c`), so only a key already waiting
    /// counts. On for `bootdelay = 0`, and on a real board for an any-key
    /// interrupt when the delay is unknown (OpenWrt's MediaTek builds set
    /// 0), where an early key costs nothing; never for a menu or a keyed
    /// string with a delay, where a stray key can boot the board or
    /// shorten the wait.
    pub hammer: bool,
    /// Whether `cbsize` came from the board file.
    pub cbsize_known: bool,
    /// `CONFIG_SYS_MAXARGS`: most words of one command, the name included.
    pub maxargs: usize,
    /// Which commands exist, and the traps that must never be typed.
    pub inventory: Inventory,
    /// The command every line is typed through on a restricted prompt
    /// (`uboot.commands.wrapper`), end marker included.
    pub wrapper: Option<Wrap>,
}

/// A board's `[uboot]` facts that the console cannot work with.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DialectError {
    /// The prompt is not a valid regular expression.
    #[error("the board's U-Boot prompt `{prompt}` is not a valid regular expression: {source}")]
    #[diagnostic(
        code(lmx_console::bad_prompt),
        help("fix `uboot.prompt` in the board file, e.g. '^=> '")
    )]
    Prompt {
        /// The pattern as written.
        prompt: String,
        /// What the regex compiler said.
        #[source]
        source: regex::Error,
    },
    /// `uboot.commands.wrapper` is not one lmx can type through.
    #[error("the board's uboot.commands.wrapper cannot be used: {0}")]
    #[diagnostic(
        code(lmx_console::bad_wrapper),
        help("`lmx boards check` names what is wrong; lmx types through a wrapper that runs `setenv NAME %s`, on a hush prompt")
    )]
    Wrapper(String),
}

impl Dialect {
    /// Mainline U-Boot with the hush shell: prompt `=> `, any key stops
    /// autoboot, `echo` and `$?` exist, CBSIZE 512 (Debian's qemu build).
    pub fn mainline() -> Dialect {
        Dialect {
            prompt: Regex::new("^=> ").expect("static regex"),
            autoboot: vec!["Hit any key to stop autoboot".into()],
            interrupt: InterruptKey::AnyKey(b" ".to_vec()),
            markers: MarkerMode::EchoStatus,
            cbsize: 512,
            quotes_special: true,
            braces_required: false,
            failure_texts: COMMON_FAILURE_TEXTS.iter().map(|s| s.to_string()).collect(),
            baud: 115_200,
            hammer: false,
            cbsize_known: true,
            maxargs: DEFAULT_MAXARGS,
            inventory: Inventory::default(),
            wrapper: None,
        }
    }

    /// The dialect a board file describes. Unknown facts take the safe
    /// value: no `$?` or `echo` (marker-only mode), CBSIZE
    /// [`DEFAULT_CBSIZE`], any key (a space) stops autoboot.
    pub fn from_board(board: &Board) -> Result<Dialect, DialectError> {
        let u = &board.uboot;
        let prompt = Regex::new(&u.prompt).map_err(|source| DialectError::Prompt {
            prompt: u.prompt.clone(),
            source,
        })?;
        let wrapper = match &u.commands.wrapper {
            None => None,
            Some(w) => {
                let wrap = Wrap::of(w).map_err(|e| DialectError::Wrapper(e.0))?;
                if u.quotes_special != Some(true) {
                    return Err(DialectError::Wrapper(
                        "lmx single-quotes the line it passes, which only hush reads as one word, and uboot.quotes_special is not true".into(),
                    ));
                }
                Some(wrap)
            }
        };
        let mut autoboot: Vec<String> = u.autoboot.iter().cloned().collect();
        for common in ["Hit any key to stop autoboot", "Autoboot in"] {
            if !autoboot.iter().any(|a| a.contains(common)) {
                autoboot.push(common.to_string());
            }
        }
        let interrupt = match &u.interrupt {
            Some(Interrupt::AnyKey { key }) => InterruptKey::AnyKey(key.as_bytes().to_vec()),
            Some(Interrupt::Menu { choice }) => InterruptKey::Menu(choice.as_bytes().to_vec()),
            Some(Interrupt::String { string }) => InterruptKey::String(string.as_bytes().to_vec()),
            None => InterruptKey::AnyKey(b" ".to_vec()),
        };
        let markers = MarkerMode::of(u);
        let mut failure_texts: Vec<String> =
            COMMON_FAILURE_TEXTS.iter().map(|s| s.to_string()).collect();
        failure_texts.extend(u.failure_texts.iter().cloned());
        Ok(Dialect {
            prompt,
            autoboot,
            markers,
            cbsize: u.cbsize.map(|c| c as usize).unwrap_or(DEFAULT_CBSIZE),
            quotes_special: u.quotes_special.unwrap_or(false),
            braces_required: u.braces_required.unwrap_or(true),
            failure_texts,
            baud: board.console.baud,
            // A virtual board's facts are read off the U-Boot lmx runs, so
            // a delay it does not state is no autoboot at all (malta).
            hammer: u.bootdelay == Some(0)
                || (u.bootdelay.is_none()
                    && !board.is_virtual
                    && matches!(interrupt, InterruptKey::AnyKey(_))),
            interrupt,
            cbsize_known: u.cbsize.is_some(),
            maxargs: shell::maxargs(u),
            inventory: Inventory::of(u),
            wrapper,
        })
    }

    /// The line limit lmx shares with its planners: U-Boot's readline
    /// keeps CBSIZE − 2 characters, and lmx's end marker takes its part.
    pub fn line_limit(&self) -> LineLimit {
        LineLimit {
            cbsize: self.cbsize,
            cbsize_known: self.cbsize_known,
            marker: self.markers,
            wrap: self.wrapper.as_ref().map(Wrap::cost),
        }
    }

    /// `line` as it is typed on this board: unchanged, or through the
    /// board's wrapper ([`Wrap::typed`]).
    pub fn wrap_line(&self, line: &str) -> String {
        match &self.wrapper {
            Some(w) => w.typed(line),
            None => line.to_string(),
        }
    }

    /// The bytes to type, Enter not included, for a command sent without
    /// [`ShellMachine`](crate::ShellMachine) because it never returns to
    /// the prompt (`run lmxboot`, `reset`, `boot`): refused when it is a
    /// trap, holds a byte that is not printable ASCII or does not fit the
    /// line, and typed through the board's wrapper on a restricted prompt
    /// (a raw `run lmxboot` there only answers `Unknown command`).
    pub fn raw_line(&self, command: &str) -> Result<String, Refusal> {
        let body = command.trim();
        if body.is_empty() {
            return Err(Refusal::Empty);
        }
        if let Some((index, &byte)) = body
            .as_bytes()
            .iter()
            .enumerate()
            .find(|(_, &b)| !(0x20..0x7f).contains(&b))
        {
            return Err(Refusal::ControlByte { index, byte });
        }
        if let Some((inv, trap)) = self.trap(body) {
            return Err(Refusal::Trap {
                command: inv.words.join(" "),
                reason: trap.reason.clone(),
            });
        }
        let typed = self.wrap_line(body);
        let runs_fit = self
            .wrapper
            .as_ref()
            .is_none_or(|w| w.runs(body).len() < w.buffer);
        if typed.len() > self.line_limit().typed_max() || !runs_fit {
            return Err(Refusal::TooLong {
                len: typed.len(),
                max: self.line_limit().typed_max(),
                cbsize: self.cbsize,
            });
        }
        Ok(typed)
    }

    /// The longest command [`ShellMachine::check`](crate::ShellMachine::check)
    /// accepts on this board (the marker not included).
    pub fn max_command_len(&self) -> usize {
        self.line_limit().body_max()
    }

    /// The first command of `line` (of any `;`-separated part) that is a
    /// trap on this board, with the board file's trap. Anything that types
    /// on the console without [`ShellMachine`](crate::ShellMachine) (a raw
    /// `run lmxboot`) must ask this first.
    pub fn trap(&self, line: &str) -> Option<(Invocation, &Trap)> {
        self.inventory.trap(line, self.quotes_special)
    }

    /// Whether a command's success can only be judged from its output
    /// (no `$?`): then a `setenv` is best read back
    /// ([`UBootShell::setenv_checked`](crate::UBootShell::setenv_checked)).
    pub fn needs_readback(&self) -> bool {
        self.markers != MarkerMode::EchoStatus
    }

    /// The failure text `line` holds, if any, leaving out the lines that
    /// only look like failures ([`BENIGN_TEXTS`]).
    pub fn failure_in(&self, line: &str) -> Option<&str> {
        let mut rest = line.to_string();
        for b in BENIGN_TEXTS {
            rest = rest.replace(b, "");
        }
        self.failure_texts
            .iter()
            .find(|t| rest.contains(t.as_str()))
            .map(String::as_str)
    }

    /// Time one character takes on the line (start + 8 data + stop bits).
    pub fn char_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(10_000_000_000 / u64::from(self.baud.max(1)))
    }

    /// Whether `line` (a partial line, without CR/LF) is exactly a prompt
    /// (nothing but white space after the match).
    pub fn is_prompt(&self, line: &str) -> bool {
        self.prompt
            .find(line)
            .is_some_and(|m| m.start() == 0 && line[m.end()..].trim().is_empty())
    }
}
