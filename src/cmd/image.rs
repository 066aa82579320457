//! `lmx image`: inspect boot images offline.
//!
//! `lmx image info FILE` prints what `lmx_builder::inspect` lists for the
//! file (a U-Boot legacy image, a FIT or a plain device tree, the fields
//! `dumpimage -l` prints) and fails with the check that failed (header
//! and data CRCs, every FIT hash, the blob structure), so a script can
//! rely on the exit status before sending an image to a board. This
//! module only reads the file and prints.
//!
//! `lmx image squashfs` (hidden until `lmx build` wraps it) builds a
//! squashfs from a directory; the benchmark in `bench/builder.sh` uses it.

use clap::{Args, Subcommand};
use lmx_builder::inspect;
use lmx_builder::squashfs::{self, SquashfsCompression, SquashfsOptions};
use miette::{miette, Result};
use std::path::{Path, PathBuf};

/// Flags of `lmx image`.
#[derive(Args, Debug)]
pub struct ImageArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// Subcommands of `lmx image`.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Show a uImage, FIT or device tree and verify its CRCs and hashes.
    Info(InfoArgs),
    /// Build a squashfs from a directory (development helper).
    #[command(hide = true)]
    Squashfs(SquashfsArgs),
}

/// Flags of `lmx image info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The image: legacy uImage, FIT (.itb) or DTB.
    pub file: PathBuf,
}

/// Flags of `lmx image squashfs`.
#[derive(Args, Debug)]
pub struct SquashfsArgs {
    /// Root directory of the tree.
    pub dir: PathBuf,
    /// Output image.
    pub out: PathBuf,
    /// Compression: xz, gzip or zstd.
    #[arg(long, default_value = "xz", value_parser = parse_comp)]
    pub comp: SquashfsCompression,
    /// Make every file owned by root.
    #[arg(long)]
    pub all_root: bool,
    /// Device table: lines `PATH c|b|d MAJOR MINOR MODE UID GID`.
    #[arg(long, value_name = "FILE")]
    pub devices: Option<PathBuf>,
}

fn parse_comp(s: &str) -> Result<SquashfsCompression, String> {
    SquashfsCompression::from_name(s).ok_or_else(|| format!("{s:?}: use xz, gzip or zstd"))
}

/// Runs `lmx image`.
pub fn run(args: ImageArgs) -> Result<()> {
    match args.command {
        ImageCommand::Info(a) => info(&a.file),
        ImageCommand::Squashfs(a) => build_squashfs(a),
    }
}

fn info(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| {
        miette!(
            help = "check the path and its permissions",
            "cannot read {}: {e}",
            path.display()
        )
    })?;
    let inspection = inspect::inspect(&path.display().to_string(), &bytes)?;
    print!("{}", inspection.listing);
    match inspection.failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn build_squashfs(a: SquashfsArgs) -> Result<()> {
    let mut opts = SquashfsOptions::new();
    opts.compression = a.comp;
    opts.all_root = a.all_root;
    if let Some(table) = &a.devices {
        let text = std::fs::read_to_string(table).map_err(|e| {
            miette!(
                help = "check --devices",
                "cannot read {}: {e}",
                table.display()
            )
        })?;
        opts.devices = squashfs::parse_device_table(&text, &table.display().to_string())
            .map_err(|e| {
                miette!(
                    help = "each line is PATH c|b|d MAJOR MINOR MODE UID GID, e.g. dev/console c 5 1 600 0 0",
                    "{e}"
                )
            })?;
    }
    let summary = squashfs::build_squashfs(&a.dir, &a.out, &opts).map_err(|e| {
        let help = match &e {
            squashfs::Error::Unreadable { .. } => {
                "make the file readable, remove it from the tree, or build as a user who can read it"
            }
            squashfs::Error::Output { .. } => "check that the output directory exists and is writable",
            _ => "see the message above",
        };
        miette!(help = help.to_owned(), "{e}")
    })?;
    println!(
        "{}: {} entries, {} bytes ({})",
        a.out.display(),
        summary.entries,
        summary.bytes,
        a.comp.name()
    );
    Ok(())
}
