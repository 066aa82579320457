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
    /// A single word does not fit the command line buffer.
    #[error("`{line}` is {len} bytes; this U-Boot's command buffer (CBSIZE {cbsize}) holds {max}")]
    LineTooLong {
        /// The line.
        line: String,
        /// Its length.
        len: usize,
        /// CBSIZE.
        cbsize: usize,
        /// Usable bytes (CBSIZE - 1).
        max: usize,
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

/// How this board's U-Boot reads a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dialect {
    /// `CONFIG_SYS_CBSIZE` (the board's, or 256 when unknown).
    pub cbsize: usize,
    /// Whether CBSIZE came from the board file.
    pub cbsize_known: bool,
    /// Hush shell with quoting (`quotes_special = true`); otherwise the
    /// simple parser of old builds: no double quotes, `${var}` expanded
    /// into a buffer of CBSIZE bytes.
    pub hush: bool,
}

/// CBSIZE assumed when the board file does not know it (the smallest
/// common value).
pub const DEFAULT_CBSIZE: usize = 256;

impl Dialect {
    /// The board's dialect. Unknown quoting is treated as the simple
    /// parser, whose lines also work on hush.
    pub fn of(board: &Board) -> Dialect {
        let u = &board.uboot;
        Dialect {
            cbsize: u.cbsize.map(|c| c as usize).unwrap_or(DEFAULT_CBSIZE),
            cbsize_known: u.cbsize.is_some(),
            hush: u.quotes_special == Some(true) && u.braces_required != Some(true),
        }
    }

    /// Usable bytes of a line (the buffer holds the terminating NUL).
    pub fn max_line(&self) -> usize {
        self.cbsize.saturating_sub(1)
    }

    /// Checks one command against the line buffer.
    pub fn check(&self, line: &str) -> Result<(), BootargsError> {
        if line.len() > self.max_line() {
            return Err(BootargsError::LineTooLong {
                line: line.to_string(),
                len: line.len(),
                cbsize: self.cbsize,
                max: self.max_line(),
            });
        }
        Ok(())
    }

    /// The `setenv` lines that set `name` to `value`, each within CBSIZE:
    /// one line when it fits, else the first words and then
    /// `setenv NAME ${NAME} MORE...` (simple parser) or
    /// `setenv NAME "${NAME}"' MORE...'` (hush; single quotes keep `$`
    /// and `;` literal).
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
            self.check(&format!("setenv {name} {}", words.join(" ")))?;
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
            if line.len() <= self.max_line() {
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

    fn hush(cbsize: usize) -> Dialect {
        Dialect {
            cbsize,
            cbsize_known: true,
            hush: true,
        }
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
            Dialect {
                cbsize: 1024,
                cbsize_known: true,
                hush: false,
            },
        ] {
            let lines = d.setenv_lines("bootargs", &value).unwrap();
            assert!(lines.iter().all(|l| l.len() < d.cbsize), "{lines:?}");
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
        let d = Dialect {
            cbsize: 64,
            cbsize_known: true,
            hush: false,
        };
        let value = "a".repeat(30) + " " + &"b".repeat(30);
        let e = d.setenv_lines("bootargs", &value).unwrap_err();
        assert!(matches!(e, BootargsError::LineTooLong { .. }), "{e}");
    }

    #[test]
    fn quoting_rules_per_dialect() {
        let simple = Dialect {
            cbsize: 256,
            cbsize_known: true,
            hush: false,
        };
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
    fn parse_mem_forms() {
        assert_eq!(parse_mem("160M"), Some(160 << 20));
        assert_eq!(parse_mem("0xa000000"), Some(0xa00_0000));
        assert_eq!(parse_mem("1G"), Some(1 << 30));
        assert_eq!(mem_size(0xa0_0000), "10M");
    }
}
