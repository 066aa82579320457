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

use crate::schema::{Trap, UBoot};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLimit {
    /// `CONFIG_SYS_CBSIZE`, or [`DEFAULT_CBSIZE`].
    pub cbsize: usize,
    /// Whether CBSIZE came from the board file.
    pub cbsize_known: bool,
    /// The marker lmx appends.
    pub marker: MarkerMode,
}

impl LineLimit {
    /// The limit of a board's U-Boot.
    pub fn of(u: &UBoot) -> LineLimit {
        LineLimit {
            cbsize: u.cbsize.map(|c| c as usize).unwrap_or(DEFAULT_CBSIZE),
            cbsize_known: u.cbsize.is_some(),
            marker: MarkerMode::of(u),
        }
    }

    /// The longest line U-Boot's readline takes: CBSIZE − 2.
    pub fn typed_max(&self) -> usize {
        self.cbsize.saturating_sub(2)
    }

    /// The longest command lmx sends: the typed line minus its marker.
    pub fn body_max(&self) -> usize {
        self.typed_max().saturating_sub(self.marker.overhead())
    }

    /// The longest command after the simple parser expanded `${NAME}`:
    /// it expands into a buffer of CBSIZE bytes, the NUL included
    /// (`finaltoken[CFG_CBSIZE]`, `gl-inet/uboot-source-for_mtk:
    /// common/main.c` l.778).
    pub fn expanded_max(&self) -> usize {
        self.cbsize.saturating_sub(1)
    }
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
    pub fn check(&self, line: &str, hush: bool) -> Result<(), CommandProblem> {
        if let Some((inv, trap)) = self.trap(line, hush) {
            return Err(CommandProblem::Trap {
                command: inv.words.join(" "),
                trap: trap.clone(),
            });
        }
        for inv in invocations(line, hush) {
            let Some(name) = inv.name() else { continue };
            if let Some(reason) = &self.restricted {
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
            CommandProblem::Restricted { .. } => format!("If your unit's prompt runs it (try it by hand), remove uboot.commands.restricted in {copy}"),
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
            };
            assert_eq!(l.typed_max(), 254);
            assert_eq!(l.body_max(), 254 - overhead);
            assert_eq!(l.expanded_max(), 255);
        }
    }
}
