//! The environment of a running U-Boot, over its console: `printenv`,
//! `setenv` with every value read back, and `saveenv` judged by what it
//! printed.
//!
//! [`LiveEnv::open`] opens a [`Session`] without a TFTP server — a real
//! board's port, or a virtual board started with its flash kept where
//! `saveenv` writes — and stops autoboot. Only `printenv`, `setenv` and
//! `saveenv` are typed. Quoting, `printenv` parsing and the `saveenv`
//! verdict are `lmx-console`'s (`quote`, `printenv`); this module checks a
//! line before anything is opened ([`setenv_line`]), reads each value
//! back after `setenv` ([`check_read_back`]), and turns the verdicts into
//! one error type, [`LiveEnvError`].

use std::path::PathBuf;
use std::time::Duration;

use lmx_boards::{Board, FirmwareVia};
use lmx_console::dialect::DialectError;
use lmx_console::printenv::{Listing, SaveVerdict};
use lmx_console::quote::{self, QuoteError};
use lmx_console::{Dialect, Pacing, ShellError, ShellMachine};

use crate::report::Reporter;
use crate::setup::{ConsoleSpec, Session, SessionSpec, SetupError};
use crate::virt::{Flash, Virtual};

/// Why a live environment command failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LiveEnvError {
    /// The board's U-Boot facts do not make a dialect.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Dialect(#[from] DialectError),
    /// The value cannot be written for this board's parser.
    #[error("board {board}")]
    Quote {
        /// The board.
        board: String,
        /// Why.
        #[source]
        #[diagnostic_source]
        source: QuoteError,
    },
    /// The `setenv` line breaks a line rule of the board's U-Boot.
    #[error("cannot set {name} on the console: {reason}")]
    #[diagnostic(help(
        "board {board}'s U-Boot takes lines of at most CONFIG_SYS_CBSIZE {cbsize} bytes \
         (uboot.cbsize); shorten the value, build it from parts with several setenv, \
         or write it into a flash dump offline"
    ))]
    Line {
        /// The variable.
        name: String,
        /// The rule it breaks.
        reason: String,
        /// The board.
        board: String,
        /// Its line limit.
        cbsize: usize,
    },
    /// U-Boot holds another value than the one set.
    #[error("after setenv, U-Boot holds {name}={got:?}, not {value:?}")]
    #[diagnostic(help(
        "U-Boot's parser changed the value: the board file's uboot.quotes_special \
         and uboot.braces_required may not match this build"
    ))]
    Changed {
        /// The variable.
        name: String,
        /// What was set.
        value: String,
        /// What `printenv` returned.
        got: String,
    },
    /// U-Boot holds no value after `setenv`.
    #[error("after setenv, {name} is not set in U-Boot")]
    #[diagnostic(help(
        "U-Boot's parser dropped the value: the board file's uboot.quotes_special \
         and uboot.braces_required may not match this build"
    ))]
    Dropped {
        /// The variable.
        name: String,
    },
    /// `saveenv` said it failed.
    #[error("saveenv failed: {line}\n{output}")]
    #[diagnostic(help(
        "the value is set in RAM but not stored; check the board's flash and env location"
    ))]
    SaveFailed {
        /// The line that says so.
        line: String,
        /// All it printed.
        output: String,
    },
    /// `saveenv` printed neither success nor a known failure.
    #[error("saveenv printed neither success nor a known failure, so lmx cannot tell whether the environment was saved:\n{output}")]
    #[diagnostic(help("reset the board and read the variable back"))]
    SaveUnclear {
        /// All it printed.
        output: String,
    },
    /// A virtual board without flash cannot keep a saved environment.
    #[error(
        "virtual board {board} loads U-Boot with -bios: it has no flash to save the environment in"
    )]
    #[diagnostic(help("use a virtual board whose U-Boot runs from pflash, e.g. qemu-aarch64"))]
    NoFlash {
        /// The board.
        board: String,
    },
    /// The virtual board's flash needs a directory and none is known.
    #[error("no cache directory for the flash of virtual board {board} (HOME unset)")]
    #[diagnostic(help("set LMX_CACHE_DIR, or give the flash directory"))]
    NoFlashDir {
        /// The board.
        board: String,
    },
    /// The session could not be set up.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Setup(#[from] SetupError),
    /// Talking to U-Boot failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Shell(#[from] ShellError),
}

/// The `setenv` line for this board's dialect, or why it cannot be sent:
/// the quoting rules, then the line rules (CBSIZE, printable ASCII).
/// Check it before the console is opened.
pub fn setenv_line(board: &Board, name: &str, value: &str) -> Result<String, LiveEnvError> {
    let dialect = Dialect::from_board(board)?;
    let line = quote::setenv_line(&dialect, name, value).map_err(|source| LiveEnvError::Quote {
        board: board.name.clone(),
        source,
    })?;
    let cbsize = dialect.cbsize;
    ShellMachine::new(dialect, Pacing::default())
        .check(&line)
        .map_err(|reason| LiveEnvError::Line {
            name: name.to_string(),
            reason: reason.to_string(),
            board: board.name.clone(),
            cbsize,
        })?;
    Ok(line)
}

/// Compares what `printenv NAME` returned after `setenv` with the value.
pub fn check_read_back(name: &str, value: &str, got: Option<&str>) -> Result<(), LiveEnvError> {
    match got {
        Some(v) if v == value => Ok(()),
        Some(v) => Err(LiveEnvError::Changed {
            name: name.to_string(),
            value: value.to_string(),
            got: v.to_string(),
        }),
        None => Err(LiveEnvError::Dropped {
            name: name.to_string(),
        }),
    }
}

/// Where the board's console is.
#[derive(Debug, Clone)]
pub enum LiveConsole {
    /// A real board's port (see [`ConsoleSpec::Port`]).
    Port(String),
    /// A virtual board, started here. Its flash (pflash banks, or a MIPS
    /// twin's flash file) is kept in `flash_dir`, so a saved environment
    /// lasts; a board whose U-Boot runs with `-bios` has none, and is
    /// refused when `save` (or a `flash_dir` the user chose) needs it.
    Virtual {
        /// Where the flash files are (`None`: no directory is known).
        flash_dir: Option<PathBuf>,
        /// The user chose `flash_dir` (refused without flash).
        chosen: bool,
        /// `saveenv` will run.
        save: bool,
    },
}

/// What [`LiveEnv::set`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    /// The variable already had the value, and nothing was saved.
    Unchanged,
    /// Set (and read back), not saved: it lasts until U-Boot restarts.
    Set,
    /// Saved by `saveenv` (set first, unless it already had the value).
    Saved,
}

/// A board at its U-Boot prompt, for environment commands.
pub struct LiveEnv {
    session: Session,
}

impl LiveEnv {
    /// Opens `board`'s console, starting a virtual board, and stops
    /// autoboot within `attach`.
    pub fn open(
        board: &Board,
        console: LiveConsole,
        attach: Duration,
        report: &mut dyn Reporter,
    ) -> Result<LiveEnv, LiveEnvError> {
        let console = match console {
            LiveConsole::Port(p) => ConsoleSpec::Port(p),
            LiveConsole::Virtual {
                flash_dir,
                chosen,
                save,
            } => {
                let pflash = board
                    .qemu
                    .as_ref()
                    .is_some_and(|q| q.firmware_via == FirmwareVia::Pflash);
                if !pflash && (save || chosen) {
                    return Err(LiveEnvError::NoFlash {
                        board: board.name.clone(),
                    });
                }
                let virt = Virtual::prepare(board, report)?;
                // The MIPS twins: one 4 MiB flash file, U-Boot at 0, the
                // environment inside it (`[flash.env]`); ARM: the pflash banks.
                let flash = if pflash || virt.arch.is_malta() {
                    Flash::Kept {
                        dir: flash_dir.ok_or_else(|| LiveEnvError::NoFlashDir {
                            board: board.name.clone(),
                        })?,
                        write_protect: false,
                    }
                } else {
                    Flash::Fresh
                };
                ConsoleSpec::Virtual {
                    virt,
                    flash,
                    pty: false,
                    network: false,
                }
            }
        };
        let scratch = tempfile::Builder::new()
            .prefix("lmx-env-")
            .tempdir()
            .map_err(|source| SetupError::Io {
                what: "creating a scratch directory".into(),
                source,
            })?;
        let mut session = Session::open(
            SessionSpec {
                board: board.clone(),
                console,
                client: "lmx env".into(),
                serve: None,
                scratch,
            },
            report,
        )?;
        session.driver.set_attach_timeout(attach);
        report.say(&format!(
            "==> waiting for U-Boot on {} (stopping autoboot)",
            board.name
        ));
        let Session { driver, host } = &mut session;
        let attached = if host.at_power_on() {
            // Powered on just now: nothing may be sent before U-Boot speaks.
            host.block_on(driver.attach_at_power_on(attach))
        } else {
            host.block_on(driver.attach(attach))
        };
        if let Err(e) = attached {
            session.close(false);
            return Err(e.into());
        }
        Ok(LiveEnv { session })
    }

    /// `printenv`: every variable, in the order printed.
    pub fn print_all(&mut self) -> Result<Listing, LiveEnvError> {
        let Session { driver, host } = &mut self.session;
        Ok(host.block_on(driver.printenv_all())?)
    }

    /// `printenv NAME`: its value, `None` when it is not set.
    pub fn get(&mut self, name: &str) -> Result<Option<String>, LiveEnvError> {
        let Session { driver, host } = &mut self.session;
        Ok(host.block_on(driver.printenv(name))?)
    }

    /// Sets `name` to `value` unless it already has it, reads it back,
    /// and with `save` runs `saveenv` (at most `save_timeout`). Each step
    /// is told to `report`.
    pub fn set(
        &mut self,
        name: &str,
        value: &str,
        save: Option<Duration>,
        report: &mut dyn Reporter,
    ) -> Result<SetOutcome, LiveEnvError> {
        let line = setenv_line(self.session.host.board(), name, value)?;
        let Session {
            driver: shell,
            host,
        } = &mut self.session;
        host.block_on(async {
            let before = shell.printenv(name).await?;
            if before.as_deref() == Some(value) && save.is_none() {
                report.say(&format!("{name} already has this value; nothing changed"));
                return Ok(SetOutcome::Unchanged);
            }
            if before.as_deref() != Some(value) {
                report.say(&format!("==> {line}"));
                shell.setenv(name, value).await?;
                let after = shell.printenv(name).await?;
                check_read_back(name, value, after.as_deref())?;
                report.say(&match &before {
                    Some(old) => format!("{name}: {old:?} -> {value:?} (read back)"),
                    None => format!("{name}: new, {value:?} (read back)"),
                });
            } else {
                report.say(&format!("{name} already has this value"));
            }
            let Some(timeout) = save else {
                return Ok(SetOutcome::Set);
            };
            report.say("==> saveenv");
            let (verdict, out) = shell.saveenv(timeout).await?;
            match verdict {
                SaveVerdict::Saved => Ok(SetOutcome::Saved),
                SaveVerdict::Failed(line) => Err(LiveEnvError::SaveFailed {
                    line,
                    output: out.text,
                }),
                SaveVerdict::Unclear => Err(LiveEnvError::SaveUnclear { output: out.text }),
            }
        })
    }

    /// Leaves the board: a real board stays at its prompt; a virtual board
    /// is powered off (cleanly after success, so QEMU closes its flash
    /// files; killed otherwise).
    pub fn close(self, clean: bool) {
        self.session.close(clean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::setup::testing::board;

    #[test]
    fn hush_board_quotes_and_old_board_refuses() {
        let hush = board("qemu-aarch64");
        assert_eq!(
            setenv_line(&hush, "x", "a b;c$d'e").unwrap(),
            "setenv x 'a b;c$d'\\''e'"
        );
        // GL's MT76xx U-Boot 1.1.3: the simple parser, quotes not special.
        let old = board("gl-mt300n-v2");
        assert_eq!(setenv_line(&old, "x", "a b").unwrap(), "setenv x a b");
        let e = setenv_line(&old, "x", "a;b").unwrap_err();
        let shown = format!("{:?}", miette::Report::new(e));
        assert!(shown.contains("`;` separates commands"), "{shown}");
    }

    #[test]
    fn lines_longer_than_cbsize_are_refused_before_sending() {
        let hush = board("qemu-aarch64");
        let e = setenv_line(&hush, "x", &"v".repeat(600)).unwrap_err();
        let shown = format!("{:?}", miette::Report::new(e));
        assert!(shown.contains("CONFIG_SYS_CBSIZE 512"), "{shown}");
        assert!(setenv_line(&hush, "x", &"v".repeat(400)).is_ok());
    }

    #[test]
    fn read_back_must_match() {
        assert!(check_read_back("x", "a b", Some("a b")).is_ok());
        let e = check_read_back("x", "a  b", Some("a b")).unwrap_err();
        let shown = format!("{:?}", miette::Report::new(e));
        assert!(shown.contains("quotes_special"), "{shown}");
        assert!(matches!(
            check_read_back("x", "1", None),
            Err(LiveEnvError::Dropped { .. })
        ));
    }

    #[test]
    fn a_bios_board_has_no_flash_to_save_in() {
        // qemu-armv7l runs U-Boot with -bios; refused before QEMU is looked for.
        let b = board("qemu-armv7l");
        let r = LiveEnv::open(
            &b,
            LiveConsole::Virtual {
                flash_dir: None,
                chosen: false,
                save: true,
            },
            Duration::from_secs(1),
            &mut crate::Recorder::default(),
        );
        assert!(matches!(r, Err(LiveEnvError::NoFlash { .. })));
    }
}
