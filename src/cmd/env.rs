//! `lmx env`: read and edit U-Boot environments in images, offline.
//!
//! This module only parses flags, asks `lmx_env::request` for the layout
//! they and the board file describe, and prints; the format lives in
//! `lmx-env`, and so does the file handling (`lmx_env::file`: copies read
//! by seeking, writes patched into a temporary copy, synced, renamed over
//! the original and read back). The codec's errors are diagnostics.
//!
//! Without `--image`, `print`, `get` and `set` talk to the board's U-Boot
//! over its console instead ([`live`]).

use clap::{Args, Subcommand, ValueEnum};
use lmx_boards::number::parse_size;
use lmx_env::file::{Empty, SaveOptions, Saved};
use lmx_env::request::{BoardEnv, LayoutRequest};
use lmx_env::{DiffSummary, EnvError, EnvImage, EnvLayout, Environment, FlagStyle, Warning};
use miette::{miette, IntoDiagnostic, Report, WrapErr};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

mod live;

/// Flags of `lmx env`.
#[derive(Args, Debug)]
pub struct EnvArgs {
    /// What to do with the environment.
    #[command(subcommand)]
    pub command: EnvCommand,
}

/// Subcommands of `lmx env`.
#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// Print variables as `name=value` lines (all, or the named ones);
    /// from the board's U-Boot when --image is not given.
    Print(PrintArgs),
    /// Print the value of one variable (from U-Boot without --image).
    Get(GetArgs),
    /// Set one variable and write the environment back (in U-Boot,
    /// saved with --save, without --image).
    Set(SetArgs),
    /// Remove variables and write the environment back.
    Unset(UnsetArgs),
    /// Set variables from a `name=value` text file (as mkenvimage reads).
    Import(ImportArgs),
    /// Compare the environment with another image or a text file.
    Diff(DiffArgs),
}

/// Where the environment is and how it is stored.
#[derive(Args, Debug, Clone)]
pub struct Location {
    /// Flash dump, partition dump or bare environment file. Without it,
    /// `print`, `get` and `set` work on the running U-Boot of --board.
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Take the location from this board's `[flash.env]`; FILE is then a
    /// dump of the whole flash (or, on a virtual board, one pflash bank
    /// file such as flash1.img). The flags below override the board.
    /// Without --image: the board whose running U-Boot is read or changed.
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// Look here for board files before ./boards/, ~/.config/lmx/boards/
    /// and the built-in set.
    #[arg(long, env = "LMX_BOARDS_DIR", value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
    /// Offset of the (first) environment copy in the image
    /// (CONFIG_ENV_OFFSET) [default: the board's, else 0].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub offset: Option<u64>,
    /// Size of one copy (CONFIG_ENV_SIZE) [default: the board's, else the
    /// rest of the file as a single copy].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub size: Option<u64>,
    /// Two copies (CONFIG_SYS_REDUNDAND_ENVIRONMENT); the second at OFFSET2
    /// [default: right after the first].
    #[arg(long, value_name = "OFFSET2", num_args = 0..=1, value_parser = parse_size)]
    pub redundant: Option<Option<u64>>,
    /// Flag style of a redundant environment: boolean on NOR, SPI-NOR and
    /// DataFlash; counter on NAND, UBI, MMC and files.
    /// [default with --board: boolean for NOR and SPI-NOR, else counter]
    #[arg(long, value_enum)]
    pub flags: Option<FlagsArg>,
    /// The CRC is stored big-endian (big-endian target CPU).
    #[arg(long, conflicts_with = "little_endian")]
    pub big_endian: bool,
    /// The CRC is stored little-endian (the default without --board).
    #[arg(long)]
    pub little_endian: bool,
}

/// `--flags` values.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum FlagsArg {
    /// 1 = active, 0 = obsolete (NOR-like flash).
    Boolean,
    /// Incremented on every save (NAND, UBI, MMC, files).
    Counter,
}

/// Options of the commands that write.
#[derive(Args, Debug, Clone)]
pub struct WriteOpts {
    /// Write the result to FILE instead of changing the image in place.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Show what would be written; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// If no copy is valid (erased or corrupt area, or a missing file),
    /// start from an empty environment instead of failing.
    #[arg(long)]
    pub create: bool,
    /// Byte that fills the data area after the variables [default: as
    /// found; 0x00, as saveenv writes, for a new environment].
    #[arg(long, value_name = "BYTE", value_parser = parse_byte)]
    pub pad: Option<u8>,
}

impl Location {
    /// The image of an offline command (checked by [`offline`]).
    fn image(&self) -> &Path {
        self.image
            .as_deref()
            .expect("offline commands are only run with --image")
    }

    /// Whether any flag that only means something for an image was given.
    fn image_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.offset.is_some() {
            v.push("--offset");
        }
        if self.size.is_some() {
            v.push("--size");
        }
        if self.redundant.is_some() {
            v.push("--redundant");
        }
        if self.flags.is_some() {
            v.push("--flags");
        }
        if self.big_endian {
            v.push("--big-endian");
        }
        if self.little_endian {
            v.push("--little-endian");
        }
        v
    }
}

/// Fails unless `--image` was given (commands that only work offline).
fn offline(loc: &Location, command: &str) -> miette::Result<()> {
    if loc.image.is_none() {
        return Err(miette!(
            help = "give --image FILE; on a running board, `lmx env print|get|set --board B` \
                    work over the console",
            "`lmx env {command}` works on images only"
        ));
    }
    Ok(())
}

/// Flags of `lmx env print`.
#[derive(Args, Debug)]
pub struct PrintArgs {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    live: live::LiveOpts,
    /// Only these variables.
    names: Vec<String>,
}

/// Flags of `lmx env get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    live: live::LiveOpts,
    /// Variable name.
    name: String,
}

/// Flags of `lmx env set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    write: WriteOpts,
    #[command(flatten)]
    live: live::LiveOpts,
    /// On the board (no --image): run `saveenv` after the value was read
    /// back, so it survives a reset.
    #[arg(long)]
    save: bool,
    /// Variable name.
    name: String,
    /// New value (quote it for the host shell; it is stored as given, and
    /// on the board lmx quotes it for U-Boot's parser).
    value: String,
}

/// Flags of `lmx env unset`.
#[derive(Args, Debug)]
pub struct UnsetArgs {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    write: WriteOpts,
    /// Variable names.
    #[arg(required = true)]
    names: Vec<String>,
}

/// Flags of `lmx env import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    write: WriteOpts,
    /// Replace the whole environment instead of merging into it.
    #[arg(long)]
    replace: bool,
    /// Text file of `name=value` lines (`-` for standard input).
    file: PathBuf,
}

/// Flags of `lmx env diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    #[command(flatten)]
    location: Location,
    /// The other image (same layout) or text file; told apart by content
    /// (an image contains NUL bytes) unless --text or --binary is given.
    other: PathBuf,
    /// Read OTHER as a `name=value` text file.
    #[arg(long, conflicts_with = "binary")]
    text: bool,
    /// Read OTHER as an image with the same layout.
    #[arg(long)]
    binary: bool,
    /// Exit with status 1 when there are differences.
    #[arg(long)]
    exit_code: bool,
}

/// Runs `lmx env`.
pub fn run(args: EnvArgs) -> miette::Result<()> {
    match args.command {
        EnvCommand::Print(a) => print(a),
        EnvCommand::Get(a) => get(a),
        EnvCommand::Set(a) => set(a),
        EnvCommand::Unset(a) => unset(a),
        EnvCommand::Import(a) => import(a),
        EnvCommand::Diff(a) => diff(a),
    }
}

fn print(args: PrintArgs) -> miette::Result<()> {
    if args.location.image.is_none() {
        return live::print(&args.location, &args.live, &args.names);
    }
    args.live.check_offline(false)?;
    let image = load(&args.location, false)?;
    let env = image.environment();
    let mut out = Vec::new();
    let mut missing = Vec::new();
    if args.names.is_empty() {
        out = lmx_env::to_text(env);
    } else {
        for name in &args.names {
            match env.get(name) {
                Some(value) => out.extend(lmx_env::text_line(name.as_bytes(), value)),
                None => missing.push(name.as_str()),
            }
        }
    }
    write_stdout(&out)?;
    if !missing.is_empty() {
        return Err(miette!(
            help = "`lmx env print` without names lists every variable",
            "not set in {}: {}",
            args.location.image().display(),
            missing.join(", ")
        ));
    }
    Ok(())
}

fn get(args: GetArgs) -> miette::Result<()> {
    if args.location.image.is_none() {
        return live::get(&args.location, &args.live, &args.name);
    }
    args.live.check_offline(false)?;
    let image = load(&args.location, false)?;
    match image.environment().get(&args.name) {
        Some(value) => {
            let mut out = value.to_vec();
            out.push(b'\n');
            write_stdout(&out)
        }
        None => Err(miette!(
            help = "`lmx env print` lists every variable",
            "{:?} is not set in {}",
            args.name,
            args.location.image().display()
        )),
    }
}

fn set(args: SetArgs) -> miette::Result<()> {
    if args.location.image.is_none() {
        return live::set(&args);
    }
    args.live.check_offline(args.save)?;
    if args.value.is_empty() {
        return Err(miette!(
            help = format!(
                "U-Boot deletes a variable set to an empty value; use `lmx env unset {}`",
                args.name
            ),
            "refusing to set {:?} to an empty value",
            args.name
        ));
    }
    let image = load(&args.location, args.write.create)?;
    let mut env = image.environment().clone();
    env.set(&args.name, &args.value).map_err(env_report)?;
    warn_backslash(args.name.as_bytes(), args.value.as_bytes());
    store(&args.location, &args.write, &image, &env)
}

fn unset(args: UnsetArgs) -> miette::Result<()> {
    offline(&args.location, "unset")?;
    let image = load(&args.location, args.write.create)?;
    let mut env = image.environment().clone();
    for name in &args.names {
        if env.remove(name).is_none() {
            eprintln!("note: {name:?} was not set");
        }
    }
    store(&args.location, &args.write, &image, &env)
}

fn import(args: ImportArgs) -> miette::Result<()> {
    offline(&args.location, "import")?;
    let text = read_input(&args.file)?;
    let (imported, warnings) = lmx_env::parse_text(&text)
        .map_err(|e| env_report(e).wrap_err(format!("in {}", args.file.display())))?;
    print_warnings(&warnings);
    let image = load(&args.location, args.write.create)?;
    let mut env = if args.replace {
        Environment::new()
    } else {
        image.environment().clone()
    };
    for (key, value) in imported.iter() {
        env.set(key, value).map_err(env_report)?;
        warn_backslash(key, value);
    }
    store(&args.location, &args.write, &image, &env)
}

fn diff(args: DiffArgs) -> miette::Result<()> {
    offline(&args.location, "diff")?;
    let image = load(&args.location, false)?;
    let other_is_text = if args.text {
        true
    } else if args.binary {
        false
    } else {
        starts_with_text(&args.other)?
    };
    let other = if other_is_text {
        let text = read_input(&args.other)?;
        let (env, warnings) = lmx_env::parse_text(&text)
            .map_err(|e| env_report(e).wrap_err(format!("in {}", args.other.display())))?;
        print_warnings(&warnings);
        env
    } else {
        let location = Location {
            image: Some(args.other.clone()),
            ..args.location.clone()
        };
        load(&location, false)?.into_environment()
    };
    let changes = lmx_env::diff(image.environment(), &other);
    write_stdout(&lmx_env::diff_text(&changes))?;
    if changes.is_empty() {
        eprintln!("no differences");
    } else {
        eprintln!("{}", DiffSummary::of(&changes));
        if args.exit_code {
            std::process::exit(1);
        }
    }
    Ok(())
}

/// The layout as the flags and the board ask for it.
fn layout_request(loc: &Location) -> miette::Result<LayoutRequest> {
    let board = match &loc.board {
        Some(name) => {
            let board = crate::cmd::boards::resolve_board(loc.boards_dir.as_deref(), name)?;
            Some(BoardEnv::of(&board)?)
        }
        None => None,
    };
    Ok(LayoutRequest {
        offset: loc.offset,
        size: loc.size,
        redundant: loc.redundant,
        flags: loc.flags.map(|f| match f {
            FlagsArg::Boolean => FlagStyle::Boolean,
            FlagsArg::Counter => FlagStyle::Counter,
        }),
        endian: if loc.big_endian {
            Some(lmx_env::Endian::Big)
        } else if loc.little_endian {
            Some(lmx_env::Endian::Little)
        } else {
            None
        },
        board,
    })
}

/// Works out the layout from the flags, the board and the image length.
fn resolve_layout(loc: &Location, image_len: Option<u64>) -> miette::Result<EnvLayout> {
    let mut req = layout_request(loc)?;
    if let Some(shift) = image_len.and_then(|len| req.within_bank(len)) {
        eprintln!(
            "note: {} is one flash bank of virtual board {}: the environment at flash \
             offset {:#x} is at {:#x} in bank {} (give --offset to override)",
            loc.image().display(),
            loc.board.as_deref().unwrap_or_default(),
            shift.flash_offset,
            shift.bank_offset,
            shift.bank
        );
    }
    Ok(req.resolve(&loc.image().display().to_string(), image_len)?)
}

/// Reads the environment; with `create`, an area without a valid copy
/// (or a missing file) yields an empty one instead of an error.
fn load(loc: &Location, create: bool) -> miette::Result<EnvImage> {
    let path = loc.image();
    let opened = lmx_env::file::open(path, create, loc.board.as_deref(), |len| {
        resolve_layout(loc, len)
    })?;
    match opened.started_empty {
        Some(Empty::NoValidCopy) => eprintln!(
            "note: no valid environment in {}; starting from an empty one (--create)",
            path.display()
        ),
        Some(Empty::NoFile) => {}
        None => print_warnings(opened.image.warnings()),
    }
    Ok(opened.image)
}

/// Writes `env` back (`lmx_env::file::save`) and says what was written.
fn store(
    loc: &Location,
    opts: &WriteOpts,
    image: &EnvImage,
    env: &Environment,
) -> miette::Result<()> {
    let save = SaveOptions {
        output: opts.output.as_deref(),
        pad: opts.pad,
        dry_run: opts.dry_run,
    };
    match lmx_env::file::save(loc.image(), image, env, &save)? {
        Saved::Unchanged => eprintln!("no change; nothing written"),
        Saved::Planned { dest, plan } => {
            println!(
                "would write {} ({} of {} data bytes used):",
                dest.display(),
                plan.used,
                plan.available
            );
            for patch in &plan.patches {
                println!("  {patch}");
            }
        }
        Saved::Written { dest, plan } => eprintln!(
            "wrote {}: {} ({} of {} data bytes used)",
            dest.display(),
            plan.patches
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            plan.used,
            plan.available
        ),
    }
    Ok(())
}

fn env_report(e: EnvError) -> Report {
    Report::new(e)
}

/// Mainline U-Boot's hash-table environment (since about 2010) stores a backslash
/// as `\\` and drops the first backslash of every pair when it loads
/// the environment; lmx, like `fw_setenv`, stores values as given. Seen
/// with the virtual board's U-Boot 2023.01 (tests/env_live.rs).
fn warn_backslash(key: &[u8], value: &[u8]) {
    if value.contains(&b'\\') {
        eprintln!(
            "warning: {}: the value contains `\\`; mainline U-Boot (hash-table environment, since about 2010) drops a backslash \
             (`\\x` -> `x`, `\\\\` -> `\\`) when loading the environment. For U-Boot to see \
             one backslash, store two; `lmx env set --board B --save` does that for you",
            String::from_utf8_lossy(key)
        );
    }
}

fn print_warnings(warnings: &[Warning]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Whether OTHER is text (`-`, standard input, always is).
fn starts_with_text(path: &Path) -> miette::Result<bool> {
    if path.as_os_str() == "-" {
        return Ok(true);
    }
    lmx_env::file::is_text_file(path)
        .into_diagnostic()
        .wrap_err(format!("cannot read {}", path.display()))
}

fn read_input(path: &Path) -> miette::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        io::stdin().read_to_end(&mut buf).into_diagnostic()?;
        return Ok(buf);
    }
    fs::read(path)
        .into_diagnostic()
        .wrap_err(format!("cannot read {}", path.display()))
}

fn write_stdout(bytes: &[u8]) -> miette::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        // A closed pipe (`| head`) is not an error worth reporting.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r.into_diagnostic(),
    }
}

fn parse_byte(s: &str) -> Result<u8, String> {
    let v = parse_size(s).map_err(|e| e.to_string())?;
    u8::try_from(v).map_err(|_| format!("{s:?} is not a byte (0..=0xff)"))
}
