//! The kernel command line of a RAM boot, composed from the board, the
//! phram region and the user's arguments, and the `setenv` lines that get
//! it into a U-Boot with a small line buffer.
//!
//! This exists because the command line is where a RAM boot most often
//! goes wrong silently: U-Boot truncates a line longer than
//! `CONFIG_SYS_CBSIZE` without a word, old builds run `b"` for
//! `setenv x "a;b"`, `memmap=SIZE$START` loses its `$` to variable
//! expansion, and a `mem=` that still covers the rootfs lets the kernel use
//! the rootfs as ordinary memory. Each of those is a refusal here, not a
//! surprise at boot.
//!
//! phram methods (the board's `ram_boot.phram`, or an override):
//! - `dt`: the `/reserved-memory` node (with `label = "rootfs"`, so Linux
//!   creates exactly one phram device) carries everything; the command
//!   line only gets `root=`;
//! - `cmdline`: `mem=` keeps the kernel below the rootfs, and
//!   `phram.phram=phram0,START,SIZE,ERASE mtdparts=phram0:SIZE(rootfs)`
//!   declares it (physical addresses, not KSEG0);
//! - `memmap`: `mem=RAM memmap=SIZE$START` (MIPS; `memmap=` alone panics
//!   there) plus the same `phram.phram=`/`mtdparts=`;
//! - `dt-cmdline`: a `/reserved-memory` `no-map` node without a label
//!   keeps the kernel off the region, and the same `phram.phram=`/
//!   `mtdparts=` make the MTD device; no `mem=`, so Linux keeps every
//!   other byte of RAM (the recipe of Liminix's `tftpboot` output).

use lmx_boards::shell::{self, LineLimit, WrapBudget};
use lmx_boards::{Arch as BoardArch, Board, PhramMethod};

/// Errors composing the command line or its `setenv` lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootargsError {
    /// Neither the board nor the user says how to declare phram.
    #[error("board {board} does not say how the kernel finds the RAM rootfs (ram_boot.phram); choose one of dt-cmdline, dt, cmdline, memmap")]
    NoPhramMethod {
        /// Board name.
        board: String,
    },
    /// No root device known.
    #[error("board {board} does not say which device the phram rootfs becomes (ram_boot.root_device); give a root device (such as /dev/mtdblock0) or root= among the extra arguments")]
    NoRootDevice {
        /// Board name.
        board: String,
    },
    /// `memmap=` is not a kernel parameter on this architecture.
    #[error(
        "phram method memmap: `memmap=` is not a kernel parameter on {arch}; use dt or cmdline"
    )]
    MemmapUnsupported {
        /// The architecture.
        arch: &'static str,
    },
    /// The rootfs sits at the start of RAM: `mem=` would leave nothing.
    #[error(
        "the rootfs starts at the start of RAM ({start:#x}): mem= would leave the kernel no memory"
    )]
    RootfsAtRamBase {
        /// Rootfs start.
        start: u64,
    },
    /// A `mem=` limit lets the kernel use the rootfs.
    #[error("{arg} gives the kernel RAM up to {limit:#x}, which covers the rootfs at {rootfs:#x}; with phram on the command line the kernel must stay below the rootfs")]
    MemCoversRootfs {
        /// The offending argument.
        arg: String,
        /// End of the kernel's memory.
        limit: u64,
        /// Rootfs start.
        rootfs: u64,
    },
    /// The command line is longer than the kernel accepts.
    #[error("the kernel command line is {len} bytes; {arch} kernels take at most {max}")]
    TooLong {
        /// Length.
        len: usize,
        /// Limit (`COMMAND_LINE_SIZE - 1`).
        max: usize,
        /// Architecture.
        arch: &'static str,
    },
    /// A value cannot be written in this U-Boot dialect.
    #[error("cannot write `{value}` to U-Boot's {name}: {why}")]
    Unquotable {
        /// Variable.
        name: String,
        /// The value.
        value: String,
        /// Why.
        why: String,
    },
    /// A command (or one word of a value) does not fit the line lmx may
    /// type.
    #[error("`{line}` is {len} bytes; lmx types at most {max} per command on this U-Boot (CBSIZE {cbsize}{assumed}: its readline keeps CBSIZE − 2 characters, and the console's end marker takes the rest)",
        assumed = if *cbsize_known { "" } else { " assumed, the board file does not state uboot.cbsize" })]
    LineTooLong {
        /// The line.
        line: String,
        /// Its length.
        len: usize,
        /// CBSIZE.
        cbsize: usize,
        /// Whether CBSIZE came from the board file.
        cbsize_known: bool,
        /// The longest command lmx types ([`LineLimit::body_max`]).
        max: usize,
    },
    /// A command that does not fit once typed through the board's wrapper
    /// (`uboot.commands.wrapper`).
    #[error("`{line}` counts {len} bytes through this U-Boot's command wrapper (uboot.commands.wrapper; once quoted a quote takes 4 bytes, a backslash 2), and lmx types at most {max} there: the typed line must fit the readline and the line the wrapper builds must fit its buffer, which would cut it short")]
    WrappedLineTooLong {
        /// The line.
        line: String,
        /// Its length as counted through the wrapper.
        len: usize,
        /// The longest command without quotes that fits.
        max: usize,
    },
    /// The simple parser expands `${NAME}` into a buffer of CBSIZE bytes:
    /// the whole value must fit one expanded line.
    #[error("`setenv {name} …` with the whole value is {len} bytes, and this U-Boot's simple parser expands `${{{name}}}` into a buffer of CBSIZE {cbsize}{assumed} that holds {max}; a longer value cannot be built from pieces there",
        assumed = if *cbsize_known { "" } else { " (assumed, the board file does not state uboot.cbsize)" })]
    ExpandedTooLong {
        /// Variable.
        name: String,
        /// Length of `setenv NAME VALUE`.
        len: usize,
        /// CBSIZE.
        cbsize: usize,
        /// Whether CBSIZE came from the board file.
        cbsize_known: bool,
        /// CBSIZE − 1.
        max: usize,
    },
    /// A command with more words than `CONFIG_SYS_MAXARGS`.
    #[error("`{line}` has {words} words; this U-Boot runs commands of at most {maxargs} (CONFIG_SYS_MAXARGS{assumed}) and would print `Usage:` or cut it short",
        assumed = if *maxargs_known { "" } else { ", assumed: the board file does not state uboot.maxargs" })]
    TooManyWords {
        /// The line.
        line: String,
        /// Its words.
        words: usize,
        /// The limit.
        maxargs: usize,
        /// Whether the limit came from the board file.
        maxargs_known: bool,
    },
    /// A value with more words than a simple parser's `setenv` can store.
    #[error("{name} would hold {words} words, but this U-Boot's simple parser splits an expanded `${{{name}}}` into words again, so a value typed at its prompt holds at most {max} (CONFIG_SYS_MAXARGS {maxargs}{assumed}, minus `setenv {name}`); pass fewer arguments, or state uboot.quotes_special = true if this U-Boot has hush, which keeps a quoted value as one word",
        assumed = if *maxargs_known { "" } else { ", assumed: the board file does not state uboot.maxargs" })]
    ValueTooManyWords {
        /// Variable.
        name: String,
        /// Words of the value.
        words: usize,
        /// Most words a value can have (MAXARGS − 2).
        max: usize,
        /// The limit.
        maxargs: usize,
        /// Whether the limit came from the board file.
        maxargs_known: bool,
    },
}

/// The phram region as the kernel sees it (physical addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhramRegion {
    /// Physical start.
    pub start: u64,
    /// Size, a multiple of `erase`.
    pub size: u64,
    /// Erase size given to phram.
    pub erase: u64,
}

/// Inputs of [`compose`].
#[derive(Debug, Clone, Copy)]
pub struct BootargsInput<'a> {
    /// The board.
    pub board: &'a Board,
    /// How phram is declared.
    pub method: PhramMethod,
    /// The rootfs region.
    pub rootfs: PhramRegion,
    /// Root device override (else the board's).
    pub root_device: Option<&'a str>,
    /// The user's extra arguments.
    pub append: Option<&'a str>,
}

/// `mem=`-style size: `160M`, `832K` or plain bytes.
pub fn mem_size(n: u64) -> String {
    if n % (1 << 20) == 0 {
        format!("{}M", n >> 20)
    } else if n % (1 << 10) == 0 {
        format!("{}K", n >> 10)
    } else {
        n.to_string()
    }
}

/// Parses a kernel `memparse` value (`160M`, `0xa000000`, `1G`).
pub fn parse_mem(s: &str) -> Option<u64> {
    let (num, mul) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let v = match num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => num.parse().ok()?,
    };
    v.checked_mul(mul)
}

/// The longest command line the kernel keeps (`COMMAND_LINE_SIZE - 1`).
pub fn max_cmdline(arch: BoardArch) -> usize {
    match arch {
        BoardArch::Mips => 4095,
        BoardArch::Armv7l => 1023,
        BoardArch::Aarch64 => 2047,
    }
}

/// The phram method in effect: the override, else the board's.
pub fn phram_method(
    board: &Board,
    over: Option<PhramMethod>,
) -> Result<PhramMethod, BootargsError> {
    over.or(board.ram_boot.phram)
        .ok_or_else(|| BootargsError::NoPhramMethod {
            board: board.name.clone(),
        })
}

/// Composes the command line: console, memory limit, phram, root, the
/// board's RAM-boot arguments, then the user's.
pub fn compose(i: &BootargsInput) -> Result<String, BootargsError> {
    let b = i.board;
    let mut parts = vec![format!(
        "console={},{}",
        b.console.kernel_name, b.console.baud
    )];
    let r = i.rootfs;
    let user: Vec<&str> = b
        .ram_boot
        .bootargs
        .as_deref()
        .into_iter()
        .chain(i.append)
        .flat_map(|s| s.split_whitespace())
        .collect();
    let phram = format!(
        "phram.phram=phram0,{:#x},{:#x},{} mtdparts=phram0:{:#x}(rootfs)",
        r.start, r.size, r.erase, r.size
    );
    match i.method {
        PhramMethod::Dt => {}
        PhramMethod::DtCmdline => parts.push(phram),
        PhramMethod::Cmdline => {
            let below = r
                .start
                .checked_sub(b.ram.base)
                .filter(|n| *n > 0)
                .ok_or(BootargsError::RootfsAtRamBase { start: r.start })?;
            parts.push(format!("mem={}", mem_size(below)));
            parts.push(phram);
        }
        PhramMethod::Memmap => {
            if b.cpu.arch != BoardArch::Mips {
                return Err(BootargsError::MemmapUnsupported {
                    arch: b.cpu.arch.as_str(),
                });
            }
            if let Some(size) = b.ram.size {
                parts.push(format!("mem={}", mem_size(size)));
            }
            parts.push(format!("memmap={}${:#x}", mem_size(r.size), r.start));
            parts.push(phram);
        }
    }
    // A user's mem= must not hand the rootfs back to the kernel.
    if i.method == PhramMethod::Cmdline {
        for w in &user {
            if let Some(v) = w.strip_prefix("mem=") {
                let size = v.split('@').next().and_then(parse_mem);
                let at = v
                    .split('@')
                    .nth(1)
                    .and_then(parse_mem)
                    .unwrap_or(b.ram.base);
                match size {
                    Some(s) if at.saturating_add(s) > r.start && at < r.start + r.size => {
                        return Err(BootargsError::MemCoversRootfs {
                            arg: w.to_string(),
                            limit: at.saturating_add(s),
                            rootfs: r.start,
                        })
                    }
                    _ => {}
                }
            }
        }
    }
    let user_root = user.iter().any(|w| w.starts_with("root="));
    if !user_root {
        let root = i
            .root_device
            .map(str::to_string)
            .or_else(|| b.ram_boot.root_device.clone())
            .ok_or_else(|| BootargsError::NoRootDevice {
                board: b.name.clone(),
            })?;
        parts.push(format!("root={root}"));
    }
    parts.extend(user.iter().map(|s| s.to_string()));
    let line = parts.join(" ");
    let max = max_cmdline(b.cpu.arch);
    if line.len() > max {
        return Err(BootargsError::TooLong {
            len: line.len(),
            max,
            arch: b.cpu.arch.as_str(),
        });
    }
    Ok(line)
}

/// Text for inside a hush single-quoted word. U-Boot's hush keeps `;`,
/// `$`, `#` and double quotes literal there but still treats a backslash
/// as an escape (`'a\\b'` stores `a\b`, seen on the test bed's U-Boot
/// 2023.01, `console/tests/fixtures/qemu-aarch64-quoting.raw`), so
/// backslashes are doubled and a quote is written `'\''`.
pub fn hush_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "'\\''")
}

/// How this board's U-Boot reads a command line, and how long a line
/// lmx's console will type there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dialect {
    /// `CONFIG_SYS_CBSIZE` (the board's, or 256 when unknown).
    pub cbsize: usize,
    /// Whether CBSIZE came from the board file.
    pub cbsize_known: bool,
    /// Hush shell with quoting (`quotes_special = true`); otherwise the
    /// simple parser of old builds: no double quotes, `${var}` expanded
    /// into a buffer of CBSIZE bytes, then split into words.
    pub hush: bool,
    /// `CONFIG_SYS_MAXARGS`: most words of one command, the command
    /// included (the board's, or [`DEFAULT_MAXARGS`] when unknown).
    #[serde(default = "default_maxargs")]
    pub maxargs: usize,
    /// Whether MAXARGS came from the board file.
    #[serde(default)]
    pub maxargs_known: bool,
    /// Bytes the console appends to every command it types (its end
    /// marker, [`lmx_boards::MarkerMode::overhead`]); plans saved before
    /// this was recorded assume the longest marker.
    #[serde(default = "default_marker_overhead")]
    pub marker_overhead: usize,
    /// On a restricted prompt the console types every line through the
    /// board's wrapper (`uboot.commands.wrapper`): what that leaves for a
    /// command ([`LineLimit::wrap_budget`]). `None` on other boards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap: Option<WrapBudget>,
}

/// CBSIZE assumed when the board file does not know it (the smallest
/// common value).
pub const DEFAULT_CBSIZE: usize = shell::DEFAULT_CBSIZE;

/// MAXARGS assumed when the board file does not know it: 16
/// ([`lmx_boards::shell::DEFAULT_MAXARGS`] says where that comes from).
pub const DEFAULT_MAXARGS: usize = shell::DEFAULT_MAXARGS;

fn default_maxargs() -> usize {
    DEFAULT_MAXARGS
}

fn default_marker_overhead() -> usize {
    lmx_boards::MarkerMode::EchoStatus.overhead()
}

impl Dialect {
    /// The board's dialect. Unknown quoting is treated as the simple
    /// parser, whose lines also work on hush.
    pub fn of(board: &Board) -> Dialect {
        let u = &board.uboot;
        let limit = LineLimit::of(u);
        Dialect {
            cbsize: limit.cbsize,
            cbsize_known: limit.cbsize_known,
            hush: u.quotes_special == Some(true) && u.braces_required != Some(true),
            maxargs: shell::maxargs(u),
            maxargs_known: u.maxargs.is_some(),
            marker_overhead: limit.marker.overhead(),
            wrap: limit.wrap_budget(),
        }
    }

    /// The longest command lmx types: what U-Boot's readline keeps
    /// (CBSIZE − 2) minus the console's end marker, or through a wrapper
    /// what its two limits leave. The console refuses exactly what is
    /// longer ([`LineLimit::body_max`]), so a plan never holds a line the
    /// console would refuse.
    pub fn max_line(&self) -> usize {
        match self.wrap {
            Some(w) => w.max(),
            None => self
                .cbsize
                .saturating_sub(2)
                .saturating_sub(self.marker_overhead),
        }
    }

    /// `line` counted against [`Dialect::max_line`]: its length, or
    /// through a wrapper with what quoting adds ([`WrapBudget::cost`]).
    pub fn cost(&self, line: &str) -> usize {
        match self.wrap {
            Some(w) => w.cost(line),
            None => line.len(),
        }
    }

    /// The longest line the simple parser holds after expanding `${x}`
    /// ([`LineLimit::expanded_max`]).
    pub fn expanded_max(&self) -> usize {
        self.cbsize.saturating_sub(1)
    }

    /// Most words a value set by typed `setenv` lines can have: hush keeps
    /// a quoted value as one word, so any; the simple parser re-splits the
    /// expanded `${NAME}`, so `MAXARGS − 2`.
    pub fn max_value_words(&self) -> Option<usize> {
        (!self.hush).then(|| self.maxargs.saturating_sub(2))
    }

    /// Checks one command against the line lmx may type and against
    /// MAXARGS (words counted as typed, as this parser splits them).
    pub fn check(&self, line: &str) -> Result<(), BootargsError> {
        let len = self.cost(line);
        if len > self.max_line() {
            if self.wrap.is_some() {
                return Err(BootargsError::WrappedLineTooLong {
                    line: line.to_string(),
                    len,
                    max: self.max_line(),
                });
            }
            return Err(BootargsError::LineTooLong {
                line: line.to_string(),
                len,
                cbsize: self.cbsize,
                cbsize_known: self.cbsize_known,
                max: self.max_line(),
            });
        }
        if let Some(inv) = shell::invocations(line, self.hush)
            .into_iter()
            .find(|inv| inv.words.len() > self.maxargs)
        {
            return Err(BootargsError::TooManyWords {
                line: line.to_string(),
                words: inv.words.len(),
                maxargs: self.maxargs,
                maxargs_known: self.maxargs_known,
            });
        }
        Ok(())
    }

    /// The `setenv` lines that set `name` to `value`, each within the line
    /// lmx types ([`Dialect::max_line`]) and MAXARGS: one line when it
    /// fits, else the first words and then `setenv NAME ${NAME} MORE...`
    /// (simple parser) or `setenv NAME "${NAME}"' MORE...'` (hush; single
    /// quotes keep `$` and `;` literal, and every line is three words).
    ///
    /// On the simple parser the whole value must fit one expanded line
    /// (CBSIZE − 1) and hold at most `MAXARGS − 2` words: it expands
    /// `${NAME}` before it splits a line into words (`process_macros`,
    /// then `parse_line`, `gl-inet/uboot-source-for_mtk: common/main.c`
    /// l.844-847), so appending does not get round either limit.
    pub fn setenv_lines(&self, name: &str, value: &str) -> Result<Vec<String>, BootargsError> {
        let bad = |why: &str| BootargsError::Unquotable {
            name: name.to_string(),
            value: value.to_string(),
            why: why.to_string(),
        };
        let words: Vec<&str> = value.split_whitespace().collect();
        if !self.hush {
            for c in [';', '"', '\'', '\\'] {
                if value.contains(c) {
                    return Err(bad(&format!(
                        "the simple parser of this U-Boot treats `{c}` specially and has no way to quote it"
                    )));
                }
            }
            if value.contains("${") || value.contains("$(") {
                return Err(bad("it would be expanded as a U-Boot variable"));
            }
            // The simple parser expands `${name}` into a CBSIZE buffer: the
            // whole value must fit one expanded line.
            let whole = format!("setenv {name} {}", words.join(" "));
            if whole.len() > self.expanded_max() {
                return Err(BootargsError::ExpandedTooLong {
                    name: name.to_string(),
                    len: whole.len(),
                    cbsize: self.cbsize,
                    cbsize_known: self.cbsize_known,
                    max: self.expanded_max(),
                });
            }
            // ... and it splits the expansion into words again.
            if let Some(max) = self.max_value_words().filter(|m| words.len() > *m) {
                return Err(BootargsError::ValueTooManyWords {
                    name: name.to_string(),
                    words: words.len(),
                    max,
                    maxargs: self.maxargs,
                    maxargs_known: self.maxargs_known,
                });
            }
        }
        let plain = |w: &str| {
            w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._,:/=+-@%".contains(c))
        };
        let first = |w: &str| {
            if self.hush && !plain(w) {
                format!("setenv {name} '{}'", hush_escape(w))
            } else {
                format!("setenv {name} {w}")
            }
        };
        let more = |w: &str| {
            if self.hush {
                format!("setenv {name} \"${{{name}}}\"' {}'", hush_escape(w))
            } else {
                format!("setenv {name} ${{{name}}} {w}")
            }
        };
        let mut lines: Vec<String> = Vec::new();
        let mut chunk: Vec<&str> = Vec::new();
        for w in words {
            let mut tried = chunk.clone();
            tried.push(w);
            let text = tried.join(" ");
            let line = if lines.is_empty() {
                first(&text)
            } else {
                more(&text)
            };
            if self.check(&line).is_ok() {
                chunk = tried;
                continue;
            }
            if chunk.is_empty() {
                // One word alone is too long for any line.
                self.check(&line)?;
            }
            let text = chunk.join(" ");
            lines.push(if lines.is_empty() {
                first(&text)
            } else {
                more(&text)
            });
            chunk = vec![w];
            let alone = more(w);
            self.check(&alone)?;
        }
        if !chunk.is_empty() || lines.is_empty() {
            let text = chunk.join(" ");
            lines.push(if lines.is_empty() {
                first(&text)
            } else {
                more(&text)
            });
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dialect for the splitting rules alone: no console marker.
    fn dialect(cbsize: usize, hush: bool, maxargs: usize) -> Dialect {
        Dialect {
            cbsize,
            cbsize_known: true,
            hush,
            maxargs,
            maxargs_known: true,
            marker_overhead: 0,
            wrap: None,
        }
    }

    fn hush(cbsize: usize) -> Dialect {
        dialect(cbsize, true, 16)
    }

    #[test]
    fn short_value_is_one_line() {
        assert_eq!(
            hush(512)
                .setenv_lines("bootargs", "console=ttyAMA0,115200 root=/dev/mtdblock1")
                .unwrap(),
            vec!["setenv bootargs 'console=ttyAMA0,115200 root=/dev/mtdblock1'"]
        );
    }

    #[test]
    fn long_value_is_split_within_cbsize_and_rejoins() {
        let value: Vec<String> = (0..40).map(|i| format!("arg{i}=value{i}")).collect();
        let value = value.join(" ");
        for d in [
            hush(64),
            hush(100),
            // 40 words need a simple parser with a MAXARGS of more than 42.
            dialect(1024, false, 64),
        ] {
            let lines = d.setenv_lines("bootargs", &value).unwrap();
            assert!(lines.iter().all(|l| l.len() <= d.max_line()), "{lines:?}");
            // Replay the lines as U-Boot would.
            let mut env = String::new();
            for l in &lines {
                let rest = l.strip_prefix("setenv bootargs ").unwrap();
                env = if d.hush {
                    if let Some(r) = rest.strip_prefix("\"${bootargs}\"'") {
                        format!("{env}{}", r.strip_suffix('\'').unwrap())
                    } else {
                        rest.trim_matches('\'').to_string()
                    }
                } else if let Some(r) = rest.strip_prefix("${bootargs} ") {
                    format!("{env} {r}")
                } else {
                    rest.to_string()
                };
            }
            assert_eq!(env, value);
            if d.cbsize < 1000 {
                assert!(lines.len() > 1);
            }
        }
    }

    #[test]
    fn simple_parser_limits_the_expanded_value() {
        let d = dialect(64, false, 16);
        let value = "a".repeat(30) + " " + &"b".repeat(30);
        let e = d.setenv_lines("bootargs", &value).unwrap_err();
        assert!(matches!(e, BootargsError::ExpandedTooLong { .. }), "{e}");
    }

    #[test]
    fn quoting_rules_per_dialect() {
        let simple = dialect(256, false, 16);
        assert!(simple.setenv_lines("x", "a;b").is_err());
        assert!(simple.setenv_lines("x", "a ${b}").is_err());
        assert_eq!(
            simple.setenv_lines("x", "memmap=1M$0xa000000").unwrap(),
            vec!["setenv x memmap=1M$0xa000000"]
        );
        assert_eq!(
            hush(256)
                .setenv_lines("x", "memmap=1M$0xa000000 a;b")
                .unwrap(),
            vec!["setenv x 'memmap=1M$0xa000000 a;b'"]
        );
        assert_eq!(
            hush(256).setenv_lines("x", "it's a\\b").unwrap(),
            vec!["setenv x 'it'\\''s a\\\\b'"]
        );
    }

    #[test]
    fn a_word_longer_than_the_buffer_is_refused() {
        let e = hush(32)
            .setenv_lines("bootargs", &"x".repeat(40))
            .unwrap_err();
        assert!(matches!(e, BootargsError::LineTooLong { .. }), "{e}");
    }

    #[test]
    fn a_simple_parser_value_holds_at_most_maxargs_minus_two_words() {
        // `setenv NAME ${NAME} MORE` expands before it is split into words,
        // so appending cannot get past CONFIG_SYS_MAXARGS there.
        let d = dialect(1024, false, 16);
        let words = |n: usize| {
            (0..n)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let lines = d.setenv_lines("bootargs", &words(14)).unwrap();
        assert_eq!(lines.len(), 1);
        let e = d.setenv_lines("bootargs", &words(15)).unwrap_err();
        assert!(
            matches!(
                e,
                BootargsError::ValueTooManyWords {
                    words: 15,
                    max: 14,
                    maxargs: 16,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("quotes_special = true"), "{e}");
        // Hush keeps a quoted value as one word: every line is three.
        let lines = dialect(64, true, 3).setenv_lines("x", &words(40)).unwrap();
        assert!(lines.len() > 1);
        for l in &lines {
            assert_eq!(shell::invocations(l, true)[0].words.len(), 3, "{l}");
        }
    }

    #[test]
    fn check_counts_words_as_the_parser_splits_them() {
        let simple = dialect(256, false, 4);
        assert!(simple.check("bootm 0x1 - 0x2").is_ok());
        let e = simple.check("bootm 0x1 - 0x2 x").unwrap_err();
        assert!(
            matches!(e, BootargsError::TooManyWords { words: 5, .. }),
            "{e}"
        );
        // The simple parser splits quoted text as well.
        assert!(simple.check("setenv x 'a b c'").is_err());
        assert!(dialect(256, true, 4).check("setenv x 'a b c'").is_ok());
    }

    #[test]
    fn the_line_limit_leaves_room_for_the_console_marker() {
        // qemu-mips: CBSIZE 256, hush with $?: the console types
        // `BODY; echo 'lmx''N.'$?` and its readline keeps 254 characters.
        let d = Dialect {
            marker_overhead: lmx_boards::MarkerMode::EchoStatus.overhead(),
            ..dialect(256, true, 16)
        };
        assert_eq!(d.max_line(), 254 - 23);
        assert!(d.check(&"x".repeat(231)).is_ok());
        let e = d.check(&"x".repeat(232)).unwrap_err();
        assert!(e.to_string().contains("at most 231"), "{e}");
        // A manifest written before the marker was recorded assumes the
        // longest one.
        let old: Dialect =
            serde_json::from_str(r#"{"cbsize":256,"cbsize_known":true,"hush":false}"#).unwrap();
        assert_eq!((old.maxargs, old.maxargs_known), (16, false));
        assert_eq!(old.max_line(), 231);
    }

    #[test]
    fn through_a_wrapper_quotes_count_and_plans_record_it() {
        // zyxel-nwa50ax: `atns` formats `setenv serverip %s` into 256
        // bytes, so a command may hold 255 - 29 - 11 (its marker).
        let b = lmx_boards::Catalog::builtin()
            .resolve("zyxel-nwa50ax")
            .unwrap()
            .board;
        let d = Dialect::of(&b);
        assert_eq!(d.max_line(), 215);
        assert_eq!(d.cost(&"x".repeat(215)), 215);
        assert!(d.check(&"x".repeat(215)).is_ok());
        let e = d.check(&"x".repeat(216)).unwrap_err();
        assert!(matches!(e, BootargsError::WrappedLineTooLong { .. }), "{e}");
        // The readline's limit takes over once quotes add up: each costs
        // 4 bytes in the typed line (254 - 20 - 11 = 223 for the command).
        let quoted = format!("{}{}", "'".repeat(3), "x".repeat(209));
        assert_eq!(d.cost(&quoted), 212 + 9 + 215 - 223);
        // Plans record it; older plans without it read as unwrapped.
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"wrap\""), "{json}");
        let back: Dialect = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        let old: Dialect =
            serde_json::from_str(r#"{"cbsize":256,"cbsize_known":true,"hush":true}"#).unwrap();
        assert_eq!(old.wrap, None);
    }

    #[test]
    fn parse_mem_forms() {
        assert_eq!(parse_mem("160M"), Some(160 << 20));
        assert_eq!(parse_mem("0xa000000"), Some(0xa00_0000));
        assert_eq!(parse_mem("1G"), Some(1 << 30));
        assert_eq!(mem_size(0xa0_0000), "10M");
    }
}
