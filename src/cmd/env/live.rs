//! `lmx env print|get|set --board B` without `--image`: the environment
//! of the running U-Boot, over the board's console.
//!
//! The console is opened the way `lmx tftpboot` opens it (through `lmx
//! console`'s share socket when that holds the port; a virtual board is
//! started here, with its flash banks kept in `--flash-dir`). Autoboot is
//! stopped, then only `printenv`, `setenv` and, with `--save`, `saveenv`
//! are typed. Quoting, refusals, `printenv` parsing and the `saveenv`
//! verdict live in `lmx-console` (`quote`, `printenv`); this module
//! checks before anything is opened, reads every value back after
//! `setenv`, and reports.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use lmx_boards::{Board, FirmwareVia};
use lmx_console::printenv::SaveVerdict;
use lmx_console::{quote, Dialect, Pacing, ShellMachine};
use lmx_session::virt::{Flash, Virtual};
use lmx_session::{ConsoleSpec, Session, SessionSpec};
use miette::{miette, IntoDiagnostic, Report};

use super::{Location, SetArgs};
use crate::boot::report::TermReporter;

/// Flags of the live commands (without `--image`).
#[derive(Args, Debug, Clone)]
pub struct LiveOpts {
    /// Console of the board (without --image): a serial device,
    /// unix:PATH or tcp:HOST:PORT. Not for a virtual board, which lmx
    /// starts itself.
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
    /// Virtual board: its flash banks (flash0.img with U-Boot, flash1.img
    /// with the environment) are in DIR, created when missing and reused
    /// when present, so `--save` lasts. Default: the lmx cache's
    /// `virtual/<board>`, the flash `lmx flash` writes too.
    #[arg(long, value_name = "DIR")]
    pub flash_dir: Option<PathBuf>,
    /// Seconds to reach the U-Boot prompt (power the board on or reset
    /// it meanwhile).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub attach_timeout: u64,
}

impl LiveOpts {
    /// Refuses live-only flags on an offline run.
    pub fn check_offline(&self, save: bool) -> miette::Result<()> {
        let mut given = Vec::new();
        if self.port.is_some() {
            given.push("--port");
        }
        if self.flash_dir.is_some() {
            given.push("--flash-dir");
        }
        if save {
            given.push("--save");
        }
        if given.is_empty() {
            Ok(())
        } else {
            Err(miette!(
                help = "drop --image to work on the board's running U-Boot, or drop those flags",
                "{} only apply on the board (without --image)",
                given.join(", ")
            ))
        }
    }
}

/// Runs `lmx env print --board B [NAME...]` on the board.
pub fn print(loc: &Location, opts: &LiveOpts, names: &[String]) -> miette::Result<()> {
    let board = live_board(loc)?;
    for name in names {
        quote::printenv_line(name).map_err(Report::new)?;
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    let mut s = open(&board, opts, false)?;
    let Session {
        driver: shell,
        host,
    } = &mut s;
    let result: miette::Result<()> = host.block_on(async {
        if names.is_empty() {
            let listing = shell.printenv_all().await.map_err(Report::new)?;
            for line in &listing.other {
                eprintln!("u-boot: {line}");
            }
            for (name, value) in &listing.vars {
                out.extend(lmx_env::text_line(name.as_bytes(), value.as_bytes()));
            }
            if let Some((used, total)) = listing.size {
                eprintln!(
                    "{} variables, environment size {used} of {total} bytes",
                    listing.vars.len()
                );
            }
        } else {
            for name in names {
                match shell.printenv(name).await.map_err(Report::new)? {
                    Some(v) => out.extend(lmx_env::text_line(name.as_bytes(), v.as_bytes())),
                    None => missing.push(name.as_str()),
                }
            }
        }
        Ok(())
    });
    s.close(result.is_ok());
    result?;
    super::write_stdout(&out)?;
    if !missing.is_empty() {
        return Err(miette!(
            help = "`lmx env print --board B` without names lists every variable",
            "not set in U-Boot on {}: {}",
            board.name,
            missing.join(", ")
        ));
    }
    Ok(())
}

/// Runs `lmx env get --board B NAME` on the board.
pub fn get(loc: &Location, opts: &LiveOpts, name: &str) -> miette::Result<()> {
    let board = live_board(loc)?;
    quote::printenv_line(name).map_err(Report::new)?;
    let mut s = open(&board, opts, false)?;
    let value = s
        .host
        .block_on(s.driver.printenv(name))
        .map_err(Report::new);
    s.close(value.is_ok());
    let value = value?;
    match value {
        Some(v) => super::write_stdout(format!("{v}\n").as_bytes()),
        None => Err(miette!(
            help = "`lmx env print --board B` lists every variable",
            "{name:?} is not set in U-Boot on {}",
            board.name
        )),
    }
}

/// Runs `lmx env set --board B [--save] NAME VALUE` on the board.
pub fn set(args: &SetArgs) -> miette::Result<()> {
    let loc = &args.location;
    let board = live_board(loc)?;
    let w = &args.write;
    if w.output.is_some() || w.create || w.pad.is_some() {
        return Err(miette!(
            help = "those flags write image files: give --image FILE",
            "--output, --create and --pad need --image"
        ));
    }
    let line = setenv_line_for(&board, &args.name, &args.value)?;
    if args.write.dry_run {
        println!("would send to U-Boot on {}:\n  {line}", board.name);
        println!("  printenv {} (and compare)", args.name);
        if args.save {
            println!("  saveenv");
        }
        return Ok(());
    }
    let (name, value, save) = (args.name.as_str(), args.value.as_str(), args.save);
    let mut s = open(&board, &args.live, save)?;
    let Session {
        driver: shell,
        host,
    } = &mut s;
    let saved: miette::Result<Option<(SaveVerdict, String)>> = host.block_on(async {
        let before = shell.printenv(name).await.map_err(Report::new)?;
        if before.as_deref() == Some(value) && !save {
            eprintln!("{name} already has this value; nothing changed");
            return Ok(None);
        }
        if before.as_deref() != Some(value) {
            eprintln!("==> {line}");
            shell.setenv(name, value).await.map_err(Report::new)?;
            let after = shell.printenv(name).await.map_err(Report::new)?;
            check_read_back(name, value, after.as_deref())?;
            match &before {
                Some(old) => eprintln!("{name}: {old:?} -> {value:?} (read back)"),
                None => eprintln!("{name}: new, {value:?} (read back)"),
            }
        } else {
            eprintln!("{name} already has this value");
        }
        if !save {
            return Ok(None);
        }
        eprintln!("==> saveenv");
        let (verdict, out) = shell
            .saveenv(Duration::from_secs(120))
            .await
            .map_err(Report::new)?;
        Ok(Some((verdict, out.text)))
    });
    s.close(saved.is_ok());
    let saved = saved?;
    match saved {
        None if !args.save => {
            eprintln!(
                "note: not saved; the change lasts until U-Boot restarts (add --save to run saveenv)"
            );
            Ok(())
        }
        None => Ok(()),
        Some((SaveVerdict::Saved, _)) => {
            eprintln!("saved (saveenv)");
            Ok(())
        }
        Some((SaveVerdict::Failed(line), text)) => Err(miette!(
            help = "the value is set in RAM but not stored; check the board's flash and env location",
            "saveenv failed: {line}\n{text}"
        )),
        Some((SaveVerdict::Unclear, text)) => Err(miette!(
            help = "reset the board and check with `lmx env get`",
            "saveenv printed neither success nor a known failure, so lmx cannot tell whether the environment was saved:\n{text}"
        )),
    }
}

/// The `setenv` line for this board's dialect, or why it cannot be sent:
/// the quoting rules, then the line rules (CBSIZE, printable ASCII).
/// Checked before the console is opened.
fn setenv_line_for(board: &Board, name: &str, value: &str) -> miette::Result<String> {
    let dialect = Dialect::from_board(board).map_err(Report::new)?;
    let line = quote::setenv_line(&dialect, name, value)
        .map_err(|e| Report::new(e).wrap_err(format!("board {}", board.name)))?;
    let cbsize = dialect.cbsize;
    if let Err(reason) = ShellMachine::new(dialect, Pacing::default()).check(&line) {
        return Err(miette!(
            help = format!(
                "board {}'s U-Boot takes lines of at most CONFIG_SYS_CBSIZE {cbsize} bytes \
                 (uboot.cbsize); shorten the value, build it from parts with several setenv, \
                 or write it offline with `lmx env set --image`",
                board.name
            ),
            "cannot set {name} on the console: {reason}"
        ));
    }
    Ok(line)
}

/// Compares what `printenv NAME` returned after `setenv` with the value.
fn check_read_back(name: &str, value: &str, got: Option<&str>) -> miette::Result<()> {
    match got {
        Some(v) if v == value => Ok(()),
        Some(v) => Err(miette!(
            help = "U-Boot's parser changed the value: the board file's uboot.quotes_special \
                    and uboot.braces_required may not match this build",
            "after setenv, U-Boot holds {name}={v:?}, not {value:?}"
        )),
        None => Err(miette!(
            help = "U-Boot's parser dropped the value: the board file's uboot.quotes_special \
                    and uboot.braces_required may not match this build",
            "after setenv, {name} is not set in U-Boot"
        )),
    }
}

/// The board of a live command: `--board`, no image-location flags.
fn live_board(loc: &Location) -> miette::Result<Board> {
    let Some(name) = &loc.board else {
        return Err(miette!(
            help = "give --image FILE for a flash dump, or --board NAME (and --port) for a running board",
            "which environment? neither --image nor --board was given"
        ));
    };
    let flags = loc.image_flags();
    if !flags.is_empty() {
        return Err(miette!(
            help =
                "these flags locate the environment in an image: give --image FILE, or drop them",
            "{} need --image",
            flags.join(", ")
        ));
    }
    crate::cmd::boards::resolve_board(loc.boards_dir.as_deref(), name)
}

/// Opens the board's console (starting a virtual board, its flash kept
/// in `--flash-dir`) and reaches the U-Boot prompt.
fn open(board: &Board, opts: &LiveOpts, save: bool) -> miette::Result<Session> {
    let mut say = TermReporter::new(false);
    let console = if board.is_virtual {
        if opts.port.is_some() {
            return Err(miette!(
                help = "drop --port",
                "virtual board {}: lmx starts it and opens its console itself",
                board.name
            ));
        }
        let pflash = board
            .qemu
            .as_ref()
            .is_some_and(|q| q.firmware_via == FirmwareVia::Pflash);
        if !pflash && (save || opts.flash_dir.is_some()) {
            return Err(miette!(
                help = "use a virtual board whose U-Boot runs from pflash, e.g. qemu-aarch64",
                "virtual board {} loads U-Boot with -bios: it has no flash to save the environment in",
                board.name
            ));
        }
        let v = Virtual::prepare(board, &mut say)?;
        // The MIPS twins: one 4 MiB flash file, U-Boot at 0, the
        // environment inside it (`[flash.env]`); ARM: the pflash banks.
        let flash = if pflash || v.arch.is_malta() {
            Flash::Kept {
                dir: match &opts.flash_dir {
                    Some(d) => d.clone(),
                    None => crate::cmd::flash::default_flash_dir(board)?,
                },
                write_protect: false,
            }
        } else {
            Flash::Fresh
        };
        ConsoleSpec::Virtual {
            virt: v,
            flash,
            pty: false,
            network: false,
        }
    } else {
        if opts.flash_dir.is_some() {
            return Err(miette!(
                "--flash-dir is for virtual boards; {} is a real board",
                board.name
            ));
        }
        ConsoleSpec::Port(crate::cmd::tftpboot::port_of(board, opts.port.as_deref())?)
    };
    let scratch = tempfile::Builder::new()
        .prefix("lmx-env-")
        .tempdir()
        .into_diagnostic()?;
    let mut session = Session::open(
        SessionSpec {
            board: board.clone(),
            console,
            client: "lmx env".into(),
            serve: None,
            scratch,
        },
        &mut say,
    )?;
    let attach = Duration::from_secs(opts.attach_timeout);
    session.driver.set_attach_timeout(attach);
    eprintln!(
        "==> waiting for U-Boot on {} (stopping autoboot)",
        board.name
    );
    let Session {
        driver: shell,
        host,
    } = &mut session;
    let attached = if host.at_power_on() {
        // Powered on just now: nothing may be sent before U-Boot speaks.
        host.block_on(shell.attach_at_power_on(attach))
    } else {
        host.block_on(shell.attach(attach))
    };
    if let Err(e) = attached {
        session.close(false);
        return Err(Report::new(e));
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(name: &str) -> Board {
        crate::cmd::boards::catalog(None)
            .resolve(name)
            .unwrap()
            .board
    }

    #[test]
    fn hush_board_quotes_and_old_board_refuses() {
        let hush = board("qemu-aarch64");
        assert_eq!(
            setenv_line_for(&hush, "x", "a b;c$d'e").unwrap(),
            "setenv x 'a b;c$d'\\''e'"
        );
        // GL's MT76xx U-Boot 1.1.3: the simple parser, quotes not special.
        let old = board("gl-mt300n-v2");
        assert_eq!(setenv_line_for(&old, "x", "a b").unwrap(), "setenv x a b");
        let e = format!("{:?}", setenv_line_for(&old, "x", "a;b").unwrap_err());
        assert!(e.contains("`;` separates commands"), "{e}");
    }

    #[test]
    fn lines_longer_than_cbsize_are_refused_before_sending() {
        let hush = board("qemu-aarch64");
        let e = format!(
            "{:?}",
            setenv_line_for(&hush, "x", &"v".repeat(600)).unwrap_err()
        );
        assert!(e.contains("CONFIG_SYS_CBSIZE 512"), "{e}");
        assert!(setenv_line_for(&hush, "x", &"v".repeat(400)).is_ok());
    }

    #[test]
    fn read_back_must_match() {
        assert!(check_read_back("x", "a b", Some("a b")).is_ok());
        let e = format!(
            "{:?}",
            check_read_back("x", "a  b", Some("a b")).unwrap_err()
        );
        assert!(e.contains("quotes_special"), "{e}");
        assert!(check_read_back("x", "1", None).is_err());
    }
}
