//! How lmx may talk to a board's U-Boot prompt, derived from `[uboot]`:
//! the one line limit plans and the console share, the word limit
//! (`CONFIG_SYS_MAXARGS`), the command inventory and the traps.
//!
//! These are plain functions on board facts so that the boot planner
//! (`lmx-builder`), the flash planner (`lmx-flasher`) and the console
//! driver (`lmx-console`) apply one rule each, not three copies that
//! drift apart (a boot plan once checked lines against CBSIZE − 1 while
//! the console refused anything longer than CBSIZE − 1 minus its end
//! marker, so long `setenv bootargs` lines were planned and then
//! refused).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::schema::{Trap, UBoot, Wrapper};

/// Line buffer size assumed when `uboot.cbsize` is unknown: the smallest
/// common `CONFIG_SYS_CBSIZE` (U-Boot's own fallback in
/// `include/config_fallbacks.h` of the 2018.09 line, and the Ralink SDK's
/// `CFG_CBSIZE`).
pub const DEFAULT_CBSIZE: usize = 256;

/// Words per command assumed when `uboot.maxargs` is unknown: 16, the
/// value of every vendor build the board files cite
/// (`gl-inet/uboot-for-qca95xx: src/include/953x.h`,
/// `gl-inet/uboot-source-for_mtk: include/configs/rt2880.h`,
/// `include/config_fallbacks.h` of U-Boot 2018.09) and mainline's Kconfig
/// default until 2024.01 (`u-boot/u-boot: cmd/Kconfig`, raised to 64 by
/// commit cc7e3d19293). Smaller values exist (`configs/mt7622_rfb_defconfig`
/// sets 8), so a board file should state it when known.
pub const DEFAULT_MAXARGS: usize = 16;

/// The fewest words `uboot.maxargs` may state: `setenv NAME VALUE`.
pub const MIN_MAXARGS: u32 = 3;

/// Digits of the nonce in lmx's end marker.
pub const NONCE_DIGITS: usize = 6;

/// What separates a command from lmx's end marker on the typed line.
pub const MARKER_SEPARATOR: &str = "; ";

/// How lmx ends each command it types, so that it knows where the
/// command's output stops (the console driver's protocol, defined here
/// because its length is part of the line limit plans must respect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkerMode {
    /// Hush shell: `CMD; echo 'lmx''N.'$?` prints `lmxN.STATUS`.
    EchoStatus,
    /// `echo` but no `$?`: `CMD; echo 'lmx''N.'` prints `lmxN.`.
    Echo,
    /// No `echo`: `CMD; lmxN` prints `Unknown command 'lmxN' - try 'help'`.
    UnknownCommand,
}

impl MarkerMode {
    /// The mode a board's facts allow: `echo` and `$?` only when the
    /// board file says they exist.
    pub fn of(u: &UBoot) -> MarkerMode {
        let echo = Inventory::of(u).availability("echo") == Availability::Present;
        match (echo, u.exit_status) {
            (true, Some(true)) => MarkerMode::EchoStatus,
            (true, _) => MarkerMode::Echo,
            _ => MarkerMode::UnknownCommand,
        }
    }

    /// The marker command for `nonce` ([`NONCE_DIGITS`] hex digits).
    pub fn suffix(self, nonce: &str) -> String {
        match self {
            MarkerMode::EchoStatus => format!("echo 'lmx''{nonce}.'$?"),
            MarkerMode::Echo => format!("echo 'lmx''{nonce}.'"),
            MarkerMode::UnknownCommand => format!("lmx{nonce}"),
        }
    }

    /// Bytes lmx appends to every command: the separator and the marker.
    pub fn overhead(self) -> usize {
        MARKER_SEPARATOR.len() + self.suffix(&"0".repeat(NONCE_DIGITS)).len()
    }

    /// Bytes the separator and the marker take once single-quoted for a
    /// [`Wrap`] (each `'` becomes `'\''`).
    pub fn quoted_overhead(self) -> usize {
        let text = format!(
            "{MARKER_SEPARATOR}{}",
            self.suffix(&"0".repeat(NONCE_DIGITS))
        );
        text.len() + quoting_extra(&text)
    }
}

/// `value` as one hush word that expands to exactly `value`: single
/// quotes, `'\''` for a quote, and every backslash doubled, because
/// U-Boot's hush drops a backslash even inside single quotes when it
/// finishes a word (`done_word`, the same in the 2018.09 tree of
/// `RaitoBezarius/uboot-nwa50ax: common/cli_hush.c` and in mainline).
pub fn hush_single_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Bytes [`hush_single_quote`] adds to `text` beyond its two quotes: 3
/// per quote, 1 per backslash.
pub fn quoting_extra(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'\'' => 3,
            b'\\' => 1,
            _ => 0,
        })
        .sum()
}

/// A board's [`Wrapper`] as lmx uses it: every line lmx would type at a
/// normal prompt, `LINE` (its end marker included), is typed as
///
/// ```text
/// COMMAND '${NAME}; LINE'          (quoted with hush_single_quote)
/// ```
///
/// The restricted prompt's hush (unprivileged) passes the quoted text as
/// the one argument, unchanged; the wrapper formats `setenv NAME ${NAME};
/// LINE` into its buffer and runs it with `run_command`, which parses it
/// with hush again, privileged (`run_command` adds
/// `FLAG_PRIVILEGED_MODE`, `RaitoBezarius/uboot-nwa50ax: common/cli.c`
/// l.40-46; `atns` is `board/ralink/common/cmd_at.c` l.66-80). The first
/// command stores NAME's own value again (a wrapper that ran
/// `setenv serverip ; LINE` would delete `serverip` on every line), and
/// since the outer text was single-quoted, `$?`, `${filesize}` and the
/// quoting inside LINE are read by the inner hush, when each command
/// runs, exactly as at an unrestricted prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrap {
    /// The command typed at the prompt (`atns`).
    pub command: String,
    /// The variable the wrapper's own `setenv NAME %s` sets (`serverip`).
    pub var: String,
    /// The wrapper's buffer, NUL included.
    pub buffer: usize,
}

/// Why a [`Wrapper`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperError(pub String);

impl fmt::Display for WrapperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WrapperError {}

/// The shortest wrapper buffer lmx accepts: room for its own `setenv` and
/// a short command.
pub const MIN_WRAPPER_BUFFER: u32 = 64;

impl Wrap {
    /// The wrapper a board file describes, or why lmx cannot use it.
    pub fn of(w: &Wrapper) -> Result<Wrap, WrapperError> {
        let bad = |why: String| Err(WrapperError(why));
        let name_ok =
            |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if w.command.is_empty()
            || !w
                .command
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return bad(format!("{:?} is not a command name", w.command));
        }
        let Some(var) = w
            .runs
            .strip_prefix("setenv ")
            .and_then(|r| r.strip_suffix(" %s"))
            .filter(|v| name_ok(v))
        else {
            return bad(format!(
                "lmx understands only a wrapper that runs `setenv NAME %s`, not {:?}: it passes `${{NAME}}; LINE` so that the wrapper's own setenv changes nothing",
                w.runs
            ));
        };
        if w.buffer < MIN_WRAPPER_BUFFER {
            return bad(format!(
                "a buffer of {} bytes leaves no room for a command (at least {MIN_WRAPPER_BUFFER})",
                w.buffer
            ));
        }
        Ok(Wrap {
            command: w.command.clone(),
            var: var.to_string(),
            buffer: w.buffer as usize,
        })
    }

    /// The argument the wrapper command gets: `${NAME}; LINE`.
    pub fn argument(&self, line: &str) -> String {
        format!("${{{}}}; {line}", self.var)
    }

    /// What lmx types at the prompt for `line`.
    pub fn typed(&self, line: &str) -> String {
        format!(
            "{} {}",
            self.command,
            hush_single_quote(&self.argument(line))
        )
    }

    /// The command line the wrapper builds and runs for `line` (before its
    /// buffer would cut it).
    pub fn runs(&self, line: &str) -> String {
        format!("setenv {} {}", self.var, self.argument(line))
    }

    /// The fixed costs, for [`LineLimit`].
    pub fn cost(&self) -> WrapCost {
        let empty = self.argument("");
        WrapCost {
            typed: self.command.len() + 1 + 2 + empty.len() + quoting_extra(&empty),
            runs: self.runs("").len(),
            runs_max: self.buffer.saturating_sub(1),
        }
    }
}

/// What a command may hold through a [`Wrap`], the marker already
/// taken off: `typed` bytes once quoted (the readline's limit) and
/// `runs` bytes as it is (the wrapper's buffer). Plans record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WrapBudget {
    /// For the quoted command in the typed line.
    pub typed: usize,
    /// For the command in the line the wrapper builds.
    pub runs: usize,
}

impl WrapBudget {
    /// The longest command without quotes or backslashes.
    pub fn max(&self) -> usize {
        self.typed.min(self.runs)
    }

    /// `command` counted against [`WrapBudget::max`]: at most that
    /// exactly when it fits both budgets.
    pub fn cost(&self, command: &str) -> usize {
        let len = command.len();
        let max = self.max();
        let typed = (len + quoting_extra(command) + max).saturating_sub(self.typed);
        let runs = (len + max).saturating_sub(self.runs);
        typed.max(runs)
    }
}

/// What a [`Wrap`] adds to a line, in numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WrapCost {
    /// Bytes the typed line holds besides the quoted `LINE`:
    /// `COMMAND '${NAME}; ` and the closing quote.
    pub typed: usize,
    /// Bytes the wrapper's own line holds besides `LINE`:
    /// `setenv NAME ${NAME}; `.
    pub runs: usize,
    /// The longest line the wrapper runs: its buffer less the NUL.
    pub runs_max: usize,
}

/// The one line limit of a board: the longest command lmx sends.
///
/// U-Boot's readline keeps at most CBSIZE − 2 typed characters and rings
/// the bell for every further one (`n < CONFIG_SYS_CBSIZE-2` in
/// `u-boot/u-boot: common/cli_readline.c` without command-line editing,
/// `CFG_CBSIZE-2` in `gl-inet/uboot-for-qca95xx: src/common/main.c`
/// l.945 and `gl-inet/uboot-source-for_mtk: drivers/rt2880_eth.c`
/// l.3209; the editing readline keeps more). lmx appends its end marker
/// to every command on the same line, so a command body may use
/// CBSIZE − 2 minus the marker.
///
/// Through a wrapper ([`Wrap`]) two limits apply: the typed line (the
/// wrapper command, the quoted argument, where every `'` costs 4 bytes
/// and every `\` 2) must fit the readline, and the line the wrapper
/// builds must fit its buffer. [`LineLimit::body_max`] is the longest
/// command without quotes or backslashes; [`LineLimit::cost`] counts a
/// given command against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLimit {
    /// `CONFIG_SYS_CBSIZE`, or [`DEFAULT_CBSIZE`].
    pub cbsize: usize,
    /// Whether CBSIZE came from the board file.
    pub cbsize_known: bool,
    /// The marker lmx appends.
    pub marker: MarkerMode,
    /// The wrapper every line goes through, if the board has one.
    pub wrap: Option<WrapCost>,
}

impl LineLimit {
    /// The limit of a board's U-Boot.
    pub fn of(u: &UBoot) -> LineLimit {
        LineLimit {
            cbsize: u.cbsize.map(|c| c as usize).unwrap_or(DEFAULT_CBSIZE),
            cbsize_known: u.cbsize.is_some(),
            marker: MarkerMode::of(u),
            wrap: wrap_of(u).map(|w| w.cost()),
        }
    }

    /// The longest line U-Boot's readline takes: CBSIZE − 2.
    pub fn typed_max(&self) -> usize {
        self.cbsize.saturating_sub(2)
    }

    /// The longest command lmx sends: the typed line minus its marker
    /// (and, through a wrapper, minus what the wrapper adds, on the
    /// tighter of its two limits).
    pub fn body_max(&self) -> usize {
        match self.wrap_budget() {
            None => self.typed_max().saturating_sub(self.marker.overhead()),
            Some(b) => b.max(),
        }
    }

    /// Through a wrapper, what its two limits leave for a command.
    pub fn wrap_budget(&self) -> Option<WrapBudget> {
        self.wrap.map(|w| WrapBudget {
            typed: self
                .typed_max()
                .saturating_sub(w.typed)
                .saturating_sub(self.marker.quoted_overhead()),
            runs: w
                .runs_max
                .saturating_sub(w.runs)
                .saturating_sub(self.marker.overhead()),
        })
    }

    /// `command` counted against [`LineLimit::body_max`]: it fits exactly
    /// when the count is at most that. Without a wrapper the count is the
    /// length; through one, quotes and backslashes cost what quoting adds
    /// to the typed line.
    pub fn cost(&self, command: &str) -> usize {
        match self.wrap_budget() {
            None => command.len(),
            Some(b) => b.cost(command),
        }
    }

    /// The longest command after the simple parser expanded `${NAME}`:
    /// it expands into a buffer of CBSIZE bytes, the NUL included
    /// (`finaltoken[CFG_CBSIZE]`, `gl-inet/uboot-source-for_mtk:
    /// common/main.c` l.778).
    pub fn expanded_max(&self) -> usize {
        self.cbsize.saturating_sub(1)
    }
}

/// The board's wrapper, when it states a usable one.
pub fn wrap_of(u: &UBoot) -> Option<Wrap> {
    u.commands.wrapper.as_ref().and_then(|w| Wrap::of(w).ok())
}

/// `uboot.maxargs`, or [`DEFAULT_MAXARGS`].
pub fn maxargs(u: &UBoot) -> usize {
    u.maxargs.map(|m| m as usize).unwrap_or(DEFAULT_MAXARGS)
}

/// One command of a typed line, as U-Boot's parser would split it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The words, quotes removed; the first is the command.
    pub words: Vec<String>,
}

impl Invocation {
    /// The command word as typed (`cp.b`), if any.
    pub fn word(&self) -> Option<&str> {
        self.words.first().map(String::as_str)
    }

    /// The name U-Boot looks up: the command word up to the first dot
    /// (`cp.b` runs `cp`).
    pub fn name(&self) -> Option<&str> {
        self.word().map(|w| w.split('.').next().unwrap_or(w))
    }

    /// The first argument, if any.
    pub fn first_arg(&self) -> Option<&str> {
        self.words.get(1).map(String::as_str)
    }
}

/// Words hush reads as syntax before a command (`if X; then Y; fi`).
const HUSH_KEYWORDS: &[&str] = &[
    "if", "then", "elif", "else", "fi", "while", "until", "do", "done", "for", "!", "{", "}",
];

/// Splits `line` into the commands U-Boot would run, without expanding
/// variables.
///
/// * Both parsers split at `;` outside single quotes. The simple parser
///   of old builds (and mainline without hush) strips quotes *before* it
///   splits a command into words, so its words are separated by every
///   blank; double quotes are ordinary characters there.
/// * `hush = true`: single and double quotes group words and hide `;`,
///   a backslash escapes the next character, and `&&`, `||`, `|` and `&`
///   also separate commands; hush keywords (`if`, `then`, …) are skipped,
///   so `if x; then cp …; fi` yields `cp`.
///
/// Splitting where the parser would not is the safe error (one more
/// command to check), so the rules stay coarse.
pub fn invocations(line: &str, hush: bool) -> Vec<Invocation> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    let end_word = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    let end_command = |out: &mut Vec<Invocation>, words: &mut Vec<String>| {
        let mut w = std::mem::take(words);
        if hush {
            let skip = w
                .iter()
                .take_while(|x| HUSH_KEYWORDS.contains(&x.as_str()))
                .count();
            w.drain(..skip);
        }
        if !w.is_empty() {
            out.push(Invocation { words: w });
        }
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some(_), '\\') if hush => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            (Some(_), ' ' | '\t') if !hush => end_word(&mut words, &mut word, &mut in_word),
            (Some(_), c) => {
                word.push(c);
                in_word = true;
            }
            (None, '\'') => {
                quote = Some('\'');
                in_word = true;
            }
            (None, '"') if hush => {
                quote = Some('"');
                in_word = true;
            }
            (None, '\\') if hush => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            (None, ';') => {
                end_word(&mut words, &mut word, &mut in_word);
                end_command(&mut out, &mut words);
            }
            (None, '&' | '|') if hush => {
                end_word(&mut words, &mut word, &mut in_word);
                end_command(&mut out, &mut words);
            }
            (None, ' ' | '\t' | '\n' | '\r') => end_word(&mut words, &mut word, &mut in_word),
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    end_word(&mut words, &mut word, &mut in_word);
    end_command(&mut out, &mut words);
    out
}

/// What the board file says about one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Availability {
    /// Listed in `uboot.commands.present` (or `echo`/`lzmadec = true`).
    Present,
    /// Listed in `uboot.commands.absent` (or `echo`/`lzmadec = false`).
    Absent,
    /// Not known.
    Unknown,
}

/// The command facts of a board's U-Boot in one place: the inventory
/// (`uboot.commands`, plus the older `uboot.echo` and `uboot.lzmadec`
/// flags) and the traps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Commands known to exist.
    pub present: Vec<String>,
    /// Commands known to be missing.
    pub absent: Vec<String>,
    /// Why the prompt refuses every command not in `present`, if it does.
    pub restricted: Option<String>,
    /// The command lmx types every line through, past the restriction.
    pub wrapper: Option<Wrapper>,
    /// Commands never to send.
    pub traps: Vec<Trap>,
}

impl Inventory {
    /// The inventory a board file states.
    pub fn of(u: &UBoot) -> Inventory {
        let mut inv = Inventory {
            present: u.commands.present.clone(),
            absent: u.commands.absent.clone(),
            restricted: u.commands.restricted.clone(),
            wrapper: u.commands.wrapper.clone(),
            traps: u.traps.clone(),
        };
        for (name, flag) in [("echo", u.echo), ("lzmadec", u.lzmadec)] {
            let list = match flag {
                Some(true) => &mut inv.present,
                Some(false) => &mut inv.absent,
                None => continue,
            };
            if !list.iter().any(|n| n == name) {
                list.push(name.to_string());
            }
        }
        inv
    }

    /// Whether the build has `name` (a command name, no size suffix).
    pub fn availability(&self, name: &str) -> Availability {
        if self.absent.iter().any(|n| n == name) {
            Availability::Absent
        } else if self.present.iter().any(|n| n == name) {
            Availability::Present
        } else {
            Availability::Unknown
        }
    }

    /// The first command of `line` that is a trap, with the trap.
    pub fn trap(&self, line: &str, hush: bool) -> Option<(Invocation, &Trap)> {
        invocations(line, hush).into_iter().find_map(|inv| {
            self.traps
                .iter()
                .find(|t| trap_matches(t, &inv))
                .map(|t| (inv, t))
        })
    }

    /// Checks every command of `line` (a line a plan would send) against
    /// the traps, the restricted prompt and the inventory, in that order.
    /// A restricted prompt with a [`Wrapper`] refuses nothing more: the
    /// console types every line through the wrapper, where it runs
    /// privileged.
    pub fn check(&self, line: &str, hush: bool) -> Result<(), CommandProblem> {
        if let Some((inv, trap)) = self.trap(line, hush) {
            return Err(CommandProblem::Trap {
                command: inv.words.join(" "),
                trap: trap.clone(),
            });
        }
        for inv in invocations(line, hush) {
            let Some(name) = inv.name() else { continue };
            if let (Some(reason), None) = (&self.restricted, &self.wrapper) {
                if self.availability(name) != Availability::Present {
                    return Err(CommandProblem::Restricted {
                        name: name.to_string(),
                        reason: reason.clone(),
                    });
                }
            }
            if self.availability(name) == Availability::Absent {
                return Err(CommandProblem::Absent {
                    name: name.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Whether `inv` runs what `trap` forbids. U-Boot also runs a command
/// typed as an unambiguous abbreviation (`find_cmd`: `ru` runs `run`), so
/// a command word that is a prefix of the trapped name matches too.
pub fn trap_matches(trap: &Trap, inv: &Invocation) -> bool {
    let typed = if trap.command.contains('.') {
        inv.word()
    } else {
        inv.name()
    };
    let Some(typed) = typed.filter(|t| !t.is_empty()) else {
        return false;
    };
    if !trap.command.starts_with(typed) {
        return false;
    }
    match &trap.args {
        None => true,
        Some(prefix) => inv.first_arg().is_some_and(|a| a.starts_with(prefix)),
    }
}

/// Why a board's U-Boot must not get a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandProblem {
    /// The command is a trap on this build.
    Trap {
        /// The command as it would run (quotes removed).
        command: String,
        /// The board file's trap.
        trap: Trap,
    },
    /// The build lacks the command.
    Absent {
        /// The command name.
        name: String,
    },
    /// The build has it, but its prompt refuses it.
    Restricted {
        /// The command name.
        name: String,
        /// The board file's reason.
        reason: String,
    },
}

impl CommandProblem {
    /// The command name at fault.
    pub fn name(&self) -> &str {
        match self {
            CommandProblem::Trap { trap, .. } => &trap.command,
            CommandProblem::Absent { name } | CommandProblem::Restricted { name, .. } => name,
        }
    }

    /// What a person can do about it on `board`, in general terms
    /// (callers add what the command was needed for).
    pub fn help(&self, board: &str) -> String {
        let copy = format!("a local copy of the board file (`lmx boards show {board} > ~/.config/lmx/boards/{board}.toml`)");
        match self {
            CommandProblem::Trap { trap, .. } => format!("lmx never types it on this board. If your unit runs another U-Boot build, check what `{}` does there (`help {}` at its prompt) and correct uboot.traps in {copy}", trap.command, trap.command),
            CommandProblem::Absent { name } => format!("If your unit's U-Boot does have it (`help {name}` at its prompt lists it), correct uboot.commands in {copy}"),
            CommandProblem::Restricted { .. } => format!("If your unit's prompt runs it (try it by hand), remove uboot.commands.restricted in {copy}; if the build has a command that runs a command line of its own making (Zyxel's `atns`), describe it as uboot.commands.wrapper there"),
        }
    }
}

impl fmt::Display for CommandProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandProblem::Trap { command, trap } => write!(
                f,
                "`{command}` is a trap on this U-Boot (uboot.traps: `{}{}`): {}",
                trap.command,
                trap.args
                    .as_deref()
                    .map(|a| format!(" {a}…"))
                    .unwrap_or_default(),
                trap.reason
            ),
            CommandProblem::Absent { name } => write!(
                f,
                "this U-Boot has no `{name}` command (uboot.commands.absent)"
            ),
            CommandProblem::Restricted { name, reason } => write!(
                f,
                "this U-Boot's prompt refuses `{name}` (uboot.commands.restricted): {reason}"
            ),
        }
    }
}

impl std::error::Error for CommandProblem {}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str, hush: bool) -> Vec<Vec<String>> {
        invocations(line, hush)
            .into_iter()
            .map(|i| i.words)
            .collect()
    }

    fn trap(command: &str, args: Option<&str>) -> Trap {
        Trap {
            command: command.into(),
            args: args.map(str::to_string),
            reason: "test".into(),
        }
    }

    #[test]
    fn the_simple_parser_splits_at_semicolons_outside_single_quotes_and_at_every_blank() {
        assert_eq!(
            words("setenv x 'a b;c'; run lu", false),
            [vec!["setenv", "x", "a", "b;c"], vec!["run", "lu"]]
        );
        // Double quotes are text there: `"a;b"` runs `b"`.
        assert_eq!(
            words("echo \"a;b\"", false),
            [vec!["echo", "\"a"], vec!["b\""]]
        );
    }

    #[test]
    fn hush_groups_quotes_and_splits_at_operators_and_keywords() {
        assert_eq!(
            words("setenv x \"a;b\" 'c d' e\\;f", true),
            [vec!["setenv", "x", "a;b", "c d", "e;f"]]
        );
        assert_eq!(
            words(
                "if ping $serverip; then tftp x && cp.b a b c; else echo no; fi",
                true
            ),
            [
                vec!["ping", "$serverip"],
                vec!["tftp", "x"],
                vec!["cp.b", "a", "b", "c"],
                vec!["echo", "no"],
            ]
        );
    }

    #[test]
    fn traps_match_the_command_its_size_suffix_abbreviations_and_argument_prefix() {
        let run_lu = trap("run", Some("lu"));
        let cp = trap("cp", None);
        let check = |t: &Trap, line: &str| {
            invocations(line, false)
                .iter()
                .any(|inv| trap_matches(t, inv))
        };
        assert!(check(&run_lu, "run lu"));
        assert!(check(&run_lu, "run lucky"));
        assert!(check(&run_lu, "ru lu"));
        assert!(!check(&run_lu, "run lmxboot"));
        assert!(!check(&run_lu, "run"));
        assert!(check(&cp, "cp.b 0x80000000 0x80100000 0x10"));
        assert!(check(&cp, "cp 1 2 3"));
        assert!(!check(&cp, "cp2ram 1 2"));
        assert!(!check(&cp, "crc32 1 2"));
        assert!(check(&cp, "setenv a b; cp.l 1 2 3"));
    }

    #[test]
    fn the_inventory_merges_the_older_flags() {
        let mut u: UBoot = toml::from_str("prompt = '=> '\necho = false\nlzmadec = true").unwrap();
        u.commands.absent = vec!["crc32".into()];
        let inv = Inventory::of(&u);
        assert_eq!(inv.availability("echo"), Availability::Absent);
        assert_eq!(inv.availability("lzmadec"), Availability::Present);
        assert_eq!(inv.availability("crc32"), Availability::Absent);
        assert_eq!(inv.availability("run"), Availability::Unknown);
        let e = inv
            .check("crc32 0x80000000 ${filesize}", false)
            .unwrap_err();
        assert_eq!(
            e,
            CommandProblem::Absent {
                name: "crc32".into()
            }
        );
        assert!(e.to_string().contains("no `crc32`"), "{e}");
    }

    #[test]
    fn a_restricted_prompt_refuses_all_but_the_listed_commands() {
        let inv = Inventory {
            present: vec!["atns".into()],
            restricted: Some("locked".into()),
            ..Inventory::default()
        };
        assert!(inv.check("atns 192.168.1.2", true).is_ok());
        let e = inv.check("setenv ipaddr 192.168.1.1", true).unwrap_err();
        assert!(matches!(e, CommandProblem::Restricted { ref name, .. } if name == "setenv"));
    }

    #[test]
    fn the_line_limit_is_cbsize_minus_two_minus_the_marker() {
        for (mode, overhead) in [
            (MarkerMode::EchoStatus, 23),
            (MarkerMode::Echo, 21),
            (MarkerMode::UnknownCommand, 11),
        ] {
            assert_eq!(mode.overhead(), overhead);
            let l = LineLimit {
                cbsize: 256,
                cbsize_known: true,
                marker: mode,
                wrap: None,
            };
            assert_eq!(l.typed_max(), 254);
            assert_eq!(l.body_max(), 254 - overhead);
            assert_eq!(l.expanded_max(), 255);
            assert_eq!(l.cost("a'b\\c"), 5);
        }
    }

    fn atns() -> Wrapper {
        Wrapper {
            command: "atns".into(),
            runs: "setenv serverip %s".into(),
            buffer: 256,
        }
    }

    #[test]
    fn a_wrapped_line_is_single_quoted_after_the_wrappers_own_variable() {
        let w = Wrap::of(&atns()).unwrap();
        assert_eq!(w.var, "serverip");
        assert_eq!(
            w.typed("printenv ipaddr; lmx000001"),
            "atns '${serverip}; printenv ipaddr; lmx000001'"
        );
        assert_eq!(
            w.runs("printenv ipaddr; lmx000001"),
            "setenv serverip ${serverip}; printenv ipaddr; lmx000001"
        );
        // Quotes and backslashes survive the outer hush's word handling.
        assert_eq!(
            w.typed("setenv x 'a b'\\;"),
            "atns '${serverip}; setenv x '\\''a b'\\''\\\\;'"
        );
        let c = w.cost();
        assert_eq!(c.typed, "atns '${serverip}; '".len());
        assert_eq!(c.runs, "setenv serverip ${serverip}; ".len());
        assert_eq!(c.runs_max, 255);
    }

    #[test]
    fn only_a_setenv_wrapper_with_room_is_understood() {
        for (runs, buffer) in [
            ("run %s", 256),
            ("setenv serverip%s", 256),
            ("setenv a b %s", 256),
            ("setenv serverip %s", 32),
        ] {
            let w = Wrapper {
                runs: runs.into(),
                buffer,
                ..atns()
            };
            assert!(Wrap::of(&w).is_err(), "{runs} {buffer}");
        }
        let w = Wrapper {
            command: "at ns".into(),
            ..atns()
        };
        assert!(Wrap::of(&w).is_err());
    }

    #[test]
    fn the_wrapped_limit_counts_both_the_readline_and_the_wrappers_buffer() {
        let w = Wrap::of(&atns()).unwrap();
        for mode in [
            MarkerMode::EchoStatus,
            MarkerMode::Echo,
            MarkerMode::UnknownCommand,
        ] {
            for cbsize in [128, 256, 512] {
                let l = LineLimit {
                    cbsize,
                    cbsize_known: true,
                    marker: mode,
                    wrap: Some(w.cost()),
                };
                let max = l.body_max();
                assert!(max > 0);
                // Every shape of command: cost <= max exactly when both
                // the typed line and the wrapper's line fit.
                for len in max.saturating_sub(40)..max + 5 {
                    for quotes in [0, 1, 3, 7] {
                        for slashes in [0, 2] {
                            if quotes + slashes > len {
                                continue;
                            }
                            let body = format!(
                                "{}{}{}",
                                "'".repeat(quotes),
                                "\\".repeat(slashes),
                                "x".repeat(len - quotes - slashes)
                            );
                            let line = format!("{body}{MARKER_SEPARATOR}{}", mode.suffix("000001"));
                            let fits = w.typed(&line).len() <= l.typed_max()
                                && w.runs(&line).len() <= w.cost().runs_max;
                            assert_eq!(
                                l.cost(&body) <= max,
                                fits,
                                "{mode:?} cbsize {cbsize} len {len} quotes {quotes} slashes {slashes}"
                            );
                        }
                    }
                }
            }
        }
        // Zyxel's: CBSIZE 256, marker-only; its 256-byte runcmd is the
        // tighter limit: 255 - 29 - 11.
        let l = LineLimit {
            cbsize: 256,
            cbsize_known: true,
            marker: MarkerMode::UnknownCommand,
            wrap: Some(w.cost()),
        };
        assert_eq!(l.body_max(), 215);
    }

    #[test]
    fn a_wrapper_lifts_the_restriction_but_not_traps_or_absent_commands() {
        let mut inv = Inventory {
            present: vec!["atns".into()],
            absent: vec!["tftpput".into()],
            restricted: Some("locked".into()),
            traps: vec![trap("mtkupgrade", None)],
            ..Inventory::default()
        };
        assert!(inv.check("setenv ipaddr 192.168.1.1", true).is_err());
        inv.wrapper = Some(atns());
        assert!(inv.check("setenv ipaddr 192.168.1.1", true).is_ok());
        assert!(matches!(
            inv.check("tftpput 0x80000000 0x10 x", true),
            Err(CommandProblem::Absent { .. })
        ));
        assert!(matches!(
            inv.check("mtkupgrade fw", true),
            Err(CommandProblem::Trap { .. })
        ));
    }
}
