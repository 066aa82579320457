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
use lmx_boards::Board;
use lmx_console::quote;
use lmx_session::env::{LiveConsole, LiveEnv, LiveEnvError, SetOutcome};
use miette::{miette, Report};

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
    let mut env = open(&board, opts, false)?;
    let mut read = || -> Result<(), LiveEnvError> {
        if names.is_empty() {
            let listing = env.print_all()?;
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
                match env.get(name)? {
                    Some(v) => out.extend(lmx_env::text_line(name.as_bytes(), v.as_bytes())),
                    None => missing.push(name.as_str()),
                }
            }
        }
        Ok(())
    };
    let result = read();
    env.close(result.is_ok());
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
    let mut env = open(&board, opts, false)?;
    let value = env.get(name);
    env.close(value.is_ok());
    match value? {
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
    let line = lmx_session::env::setenv_line(&board, &args.name, &args.value)?;
    if args.write.dry_run {
        println!("would send to U-Boot on {}:\n  {line}", board.name);
        println!("  printenv {} (and compare)", args.name);
        if args.save {
            println!("  saveenv");
        }
        return Ok(());
    }
    let mut env = open(&board, &args.live, args.save)?;
    let save = args.save.then_some(Duration::from_secs(120));
    let done = env.set(&args.name, &args.value, save, &mut TermReporter::new(false));
    env.close(done.is_ok());
    match done? {
        SetOutcome::Saved => eprintln!("saved (saveenv)"),
        _ => eprintln!(
            "note: not saved; the change lasts until U-Boot restarts (add --save to run saveenv)"
        ),
    }
    Ok(())
}

/// Opens the board's console (starting a virtual board, its flash kept
/// in `--flash-dir`) and reaches the U-Boot prompt.
fn open(board: &Board, opts: &LiveOpts, save: bool) -> miette::Result<LiveEnv> {
    let console = if board.is_virtual {
        if opts.port.is_some() {
            return Err(miette!(
                help = "drop --port",
                "virtual board {}: lmx starts it and opens its console itself",
                board.name
            ));
        }
        LiveConsole::Virtual {
            flash_dir: opts
                .flash_dir
                .clone()
                .or_else(|| lmx_session::virt::default_flash_dir(board)),
            chosen: opts.flash_dir.is_some(),
            save,
        }
    } else {
        if opts.flash_dir.is_some() {
            return Err(miette!(
                "--flash-dir is for virtual boards; {} is a real board",
                board.name
            ));
        }
        LiveConsole::Port(crate::cmd::tftpboot::port_of(board, opts.port.as_deref())?)
    };
    let attach = Duration::from_secs(opts.attach_timeout);
    LiveEnv::open(board, console, attach, &mut TermReporter::new(false)).map_err(|e| match e {
        LiveEnvError::NoFlashDir { .. } => miette!(
            help = "give --flash-dir DIR",
            "no cache directory (HOME unset)"
        ),
        e => Report::new(e),
    })
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
