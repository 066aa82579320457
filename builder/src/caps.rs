//! What a U-Boot build can unpack, decided from the board file and from
//! U-Boot's own `help` output, before anything is sent.
//!
//! This exists because a U-Boot without LZMA accepts an LZMA uImage over
//! TFTP, verifies its CRC, and only fails at `bootm` (`Unimplemented
//! compression type 3`, Debian's malta U-Boot): the whole transfer was for
//! nothing and the message does not say what to do. The decision here is
//! a pure function of text, so a console adapter only has to run `help`
//! (or `help lzmadec`) and hand over what it printed.
//!
//! What `help` proves: it lists every command compiled in, so the absence
//! of `lzmadec` is certain. `lzmadec` depends on U-Boot's LZMA library, so
//! its presence proves that `bootm` can unpack LZMA too. Its absence does
//! *not* prove the opposite (a build may have `CONFIG_LZMA` without
//! `CONFIG_CMD_LZMADEC`); then the board file's `uboot.lzma` decides, and
//! when that is unknown the answer is [`Support::Unknown`], which callers
//! report rather than refuse.

use std::collections::BTreeSet;

use lmx_boards::Board;

use crate::plan::{BootPlan, Step};
use crate::uimage;

/// Whether a feature is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Known to be there.
    Present,
    /// Known to be missing.
    Absent,
    /// Neither the board file nor the probe says.
    Unknown,
}

impl Support {
    fn of(b: Option<bool>) -> Support {
        match b {
            Some(true) => Support::Present,
            Some(false) => Support::Absent,
            None => Support::Unknown,
        }
    }
}

/// The commands a U-Boot lists in its `help` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commands {
    names: BTreeSet<String>,
}

/// Text that is not `help` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not U-Boot `help` output: no line of the form `NAME - description` in {lines} line(s){first}"
)]
pub struct HelpError {
    /// Lines seen.
    pub lines: usize,
    /// The first non-empty line, quoted, for the message.
    pub first: String,
}

impl Commands {
    /// Parses the output of `help` (without arguments): one line per
    /// command, `NAME` padded with spaces, `- `, the description. CR
    /// line ends, an echoed command line and the prompt are ignored.
    pub fn from_help(text: &str) -> Result<Commands, HelpError> {
        let mut names = BTreeSet::new();
        let mut lines = 0;
        let mut first = String::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            lines += 1;
            if first.is_empty() && !line.trim().is_empty() {
                first = format!(" (first: {:?})", line.trim());
            }
            if let Some(name) = command_of(line) {
                names.insert(name.to_string());
            }
        }
        if names.is_empty() {
            return Err(HelpError { lines, first });
        }
        Ok(Commands { names })
    }

    /// Whether `name` is listed.
    pub fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// All listed commands, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// The `lzmadec` command: listed or not (certain either way).
    pub fn lzmadec(&self) -> Support {
        if self.has("lzmadec") {
            Support::Present
        } else {
            Support::Absent
        }
    }

    /// LZMA in `bootm`: present when `lzmadec` is listed, else unknown
    /// from `help` alone (see the module docs).
    pub fn lzma(&self) -> Support {
        if self.has("lzmadec") {
            Support::Present
        } else {
            Support::Unknown
        }
    }
}

/// The first word of a `help` line (`name   - text`), if it is one.
fn command_of(line: &str) -> Option<&str> {
    let (name, rest) = line.split_once(' ')?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.?-".contains(c))
    {
        return None;
    }
    rest.trim_start().starts_with("- ").then_some(name)
}

/// Whether the output of running `name` (or `help NAME`) says that the
/// command does not exist (`Unknown command 'NAME' - try 'help'`).
pub fn unknown_command(output: &str, name: &str) -> bool {
    output.contains(&format!("Unknown command '{name}'"))
}

/// What a boot needs U-Boot to unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// The kernel image is LZMA-compressed (`bootm` unpacks it).
    pub lzma_kernel: bool,
    /// The rootfs is unpacked with `lzmadec`.
    pub lzmadec: bool,
}

impl Needs {
    /// What `plan` needs: `lzmadec` for an unpack step, LZMA when the
    /// kernel file it loads is a legacy uImage with an LZMA payload.
    /// `kernel_head` is the start of that file (its 64-byte header is
    /// enough); `None` or another format counts as no LZMA.
    pub fn of_plan(plan: &BootPlan, kernel_head: Option<&[u8]>) -> Needs {
        let lzma_kernel = kernel_head
            .and_then(|b| b.get(..uimage::HEADER_LEN))
            .and_then(|h| uimage::HeaderRepr::parse(&uimage::Header::new_unchecked(h)).ok())
            .is_some_and(|h| h.compression == uimage::Compression::Lzma);
        Needs {
            lzma_kernel,
            lzmadec: plan.steps.iter().any(|s| matches!(s, Step::Unpack(_))),
        }
    }
}

/// Whether asking U-Boot (`help`) can tell more than the board file:
/// the plan needs something the board file leaves unknown.
pub fn probe_wanted(board: &Board, needs: Needs) -> bool {
    (needs.lzma_kernel && board.uboot.lzma.is_none())
        || (needs.lzmadec && board.uboot.lzmadec.is_none())
}

/// A boot that this U-Boot cannot do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapsError {
    /// LZMA kernel, U-Boot without LZMA.
    #[error("board {board}: its U-Boot has no LZMA ({why}), so bootm would fail with \"Unimplemented compression type 3\" after the kernel was sent; build a gzip uImage instead (kernel format uimage-gzip)")]
    NoLzma {
        /// Board name.
        board: String,
        /// Where that is known from.
        why: String,
    },
    /// `lzmadec` rootfs, U-Boot without the command.
    #[error(
        "board {board}: its U-Boot has no `lzmadec` command ({why}); send the rootfs uncompressed"
    )]
    NoLzmadec {
        /// Board name.
        board: String,
        /// Where that is known from.
        why: String,
    },
}

/// The verdict on LZMA and `lzmadec` for `board`, from the probe when
/// there is one (what `help` lists is this U-Boot's truth) and the board
/// file otherwise.
pub fn support(board: &Board, probed: Option<&Commands>) -> (Support, Support) {
    let file_lzma = Support::of(board.uboot.lzma);
    let file_dec = Support::of(board.uboot.lzmadec);
    match probed {
        None => (file_lzma, file_dec),
        Some(c) => {
            let lzma = match c.lzma() {
                Support::Unknown => file_lzma,
                known => known,
            };
            (lzma, c.lzmadec())
        }
    }
}

/// Refuses a boot that needs what this U-Boot lacks; returns notes for
/// what cannot be decided (unknown support is reported, not refused).
pub fn check(
    board: &Board,
    probed: Option<&Commands>,
    needs: Needs,
) -> Result<Vec<String>, CapsError> {
    let (lzma, dec) = support(board, probed);
    let mut notes = Vec::new();
    if needs.lzmadec {
        match dec {
            Support::Absent => {
                return Err(CapsError::NoLzmadec {
                    board: board.name.clone(),
                    why: if probed.is_some() {
                        "its `help` does not list it".into()
                    } else {
                        "board file: uboot.lzmadec = false".into()
                    },
                })
            }
            Support::Unknown => notes.push(format!(
                "board {}: whether U-Boot has `lzmadec` is unknown (uboot.lzmadec); the rootfs unpack may fail",
                board.name
            )),
            Support::Present => {}
        }
    }
    if needs.lzma_kernel {
        match lzma {
            Support::Absent => {
                return Err(CapsError::NoLzma {
                    board: board.name.clone(),
                    why: if probed.is_some() {
                        "board file: uboot.lzma = false; its `help` lists no lzmadec either".into()
                    } else {
                        "board file: uboot.lzma = false".into()
                    },
                })
            }
            Support::Unknown => notes.push(format!(
                "board {}: whether U-Boot's bootm unpacks LZMA is unknown (uboot.lzma{}); if bootm says \"Unimplemented compression type 3\", use a gzip uImage",
                board.name,
                if probed.is_some() {
                    "; `help` lists no lzmadec"
                } else {
                    ""
                }
            )),
            Support::Present => {}
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MALTAEL: &str = include_str!("../tests/fixtures/uboot-help/maltael-debian-2023.01.txt");
    const MALTAEL_HELP_LZMADEC: &str =
        include_str!("../tests/fixtures/uboot-help/maltael-debian-2023.01-help-lzmadec.txt");
    const ARM64: &str = include_str!("../tests/fixtures/uboot-help/qemu_arm64-debian-2023.01.txt");
    const ARM: &str = include_str!("../tests/fixtures/uboot-help/qemu_arm-debian-2023.01.txt");

    fn board(name: &str) -> Board {
        lmx_boards::Catalog::builtin().resolve(name).unwrap().board
    }

    #[test]
    fn debian_malta_help_lists_no_lzma() {
        let c = Commands::from_help(MALTAEL).unwrap();
        assert_eq!(c.names().count(), 56);
        for present in [
            "bootm", "tftpboot", "crc32", "iminfo", "saveenv", "erase", "?",
        ] {
            assert!(c.has(present), "{present}");
        }
        for absent in ["lzmadec", "unzip", "setexpr", "bootz"] {
            assert!(!c.has(absent), "{absent}");
        }
        assert_eq!(c.lzmadec(), Support::Absent);
        assert_eq!(c.lzma(), Support::Unknown);
        assert!(unknown_command(MALTAEL_HELP_LZMADEC, "lzmadec"));
        assert!(!unknown_command(MALTAEL, "lzmadec"));
    }

    #[test]
    fn debian_arm64_help_lists_lzmadec() {
        let c = Commands::from_help(ARM64).unwrap();
        assert!(c.has("lzmadec") && c.has("unzip") && c.has("booti"));
        assert_eq!(
            (c.lzma(), c.lzmadec()),
            (Support::Present, Support::Present)
        );
        // One command per line of the recording.
        assert_eq!(c.names().count(), ARM64.lines().count());
    }

    #[test]
    fn debian_arm_help_lists_bootz_but_no_lzmadec() {
        let c = Commands::from_help(ARM).unwrap();
        for present in ["bootz", "bootm", "tftpboot", "crc32", "setexpr"] {
            assert!(c.has(present), "{present}");
        }
        for absent in ["lzmadec", "unzip", "booti"] {
            assert!(!c.has(absent), "{absent}");
        }
        assert_eq!(c.lzmadec(), Support::Absent);
        assert_eq!(c.names().count(), ARM.lines().count());
        // The board file records what `help` showed.
        assert_eq!(board("qemu-armv7l").uboot.lzmadec, Some(false));
    }

    #[test]
    fn echo_prompt_and_cr_are_ignored() {
        let text = "help\r\nbootm     - boot application image from memory\r\nmaltael # ";
        let c = Commands::from_help(text).unwrap();
        assert_eq!(c.names().collect::<Vec<_>>(), ["bootm"]);
    }

    #[test]
    fn other_text_is_not_help() {
        let e = Commands::from_help(MALTAEL_HELP_LZMADEC).unwrap_err();
        assert_eq!(e.lines, 2);
        assert!(e.to_string().contains("Unknown command 'lzmadec'"), "{e}");
        assert!(Commands::from_help("").is_err());
    }

    #[test]
    fn stock_board_refuses_lzma_from_its_file_alone() {
        let b = board("qemu-mipsel-stock");
        let e = check(
            &b,
            None,
            Needs {
                lzma_kernel: true,
                lzmadec: false,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("uboot.lzma = false"), "{e}");
        assert!(e.to_string().contains("uimage-gzip"), "{e}");
        let e = check(
            &b,
            None,
            Needs {
                lzma_kernel: false,
                lzmadec: true,
            },
        )
        .unwrap_err();
        assert!(matches!(e, CapsError::NoLzmadec { .. }));
        assert_eq!(check(&b, None, Needs::default()), Ok(vec![]));
    }

    #[test]
    fn probe_decides_when_the_board_file_does_not_know() {
        let mut b = board("qemu-mipsel");
        b.uboot.lzma = None;
        b.uboot.lzmadec = None;
        let malta = Commands::from_help(MALTAEL).unwrap();
        // lzmadec missing is certain ...
        assert!(matches!(
            check(
                &b,
                Some(&malta),
                Needs {
                    lzma_kernel: false,
                    lzmadec: true
                }
            ),
            Err(CapsError::NoLzmadec { .. })
        ));
        // ... LZMA in bootm is not: reported, not refused.
        let notes = check(
            &b,
            Some(&malta),
            Needs {
                lzma_kernel: true,
                lzmadec: false,
            },
        )
        .unwrap();
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("unknown") && notes[0].contains("no lzmadec"),
            "{}",
            notes[0]
        );
        // With the board file's word the same probe refuses.
        b.uboot.lzma = Some(false);
        assert!(matches!(
            check(
                &b,
                Some(&malta),
                Needs {
                    lzma_kernel: true,
                    lzmadec: false
                }
            ),
            Err(CapsError::NoLzma { .. })
        ));
        // A U-Boot that lists lzmadec can do both, whatever the file guessed.
        let arm = Commands::from_help(ARM64).unwrap();
        assert_eq!(
            check(
                &b,
                Some(&arm),
                Needs {
                    lzma_kernel: true,
                    lzmadec: true
                }
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn needs_come_from_the_kernel_header_and_the_unpack_steps() {
        use crate::uimage::{Arch, Compression, UImageSpec};
        let lzma = UImageSpec::kernel("k", Arch::Mips, Compression::Lzma, 0x8010_0000, 0x8010_0000)
            .build(&[0u8; 16])
            .unwrap();
        let gzip = UImageSpec::kernel("k", Arch::Mips, Compression::Gzip, 0x8010_0000, 0x8010_0000)
            .build(&[0u8; 16])
            .unwrap();
        let plan = |unpack: bool| {
            let mut steps = vec![Step::Boot {
                command: "bootm 0x80700000".into(),
            }];
            if unpack {
                steps.insert(
                    0,
                    Step::Unpack(crate::plan::UnpackStep {
                        artifact: "rootfs".into(),
                        src: 0x8b00_0000,
                        dst: 0x8a00_0000,
                        size: 1,
                        crc32: 0,
                    }),
                );
            }
            steps
        };
        let b = board("qemu-mips");
        let mut p = crate::plan::BootPlan {
            board: b.name.clone(),
            dialect: crate::bootargs::Dialect::of(&b),
            layout: serde_json::from_value(serde_json::json!({
                "ram": {"base": 0, "size": 0x1000_0000u64},
                "regions": [], "phram_erase": 65536, "kernel_image": 0
            }))
            .unwrap(),
            bootargs: String::new(),
            steps: plan(false),
            boot_via: Default::default(),
        };
        assert_eq!(
            Needs::of_plan(&p, Some(&lzma)),
            Needs {
                lzma_kernel: true,
                lzmadec: false
            }
        );
        assert_eq!(Needs::of_plan(&p, Some(&gzip)), Needs::default());
        assert_eq!(Needs::of_plan(&p, Some(&lzma[..40])), Needs::default());
        assert_eq!(Needs::of_plan(&p, None), Needs::default());
        p.steps = plan(true);
        assert!(Needs::of_plan(&p, None).lzmadec);
        // The probe is only worth it where the board file does not know.
        let all = Needs {
            lzma_kernel: true,
            lzmadec: true,
        };
        assert!(!probe_wanted(&b, all));
        let mut unknown = board("gl-ar750");
        unknown.uboot.lzma = None;
        unknown.uboot.lzmadec = None;
        assert!(probe_wanted(&unknown, all));
        assert!(!probe_wanted(&unknown, Needs::default()));
    }

    #[test]
    fn self_built_twins_need_no_probe() {
        for name in ["qemu-mips", "qemu-mipsel"] {
            assert_eq!(
                check(
                    &board(name),
                    None,
                    Needs {
                        lzma_kernel: true,
                        lzmadec: true
                    }
                ),
                Ok(vec![])
            );
        }
    }
}
