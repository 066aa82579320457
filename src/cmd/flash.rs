//! `lmx flash`: write a firmware (or any image) into a board's flash from
//! U-Boot, planned from the board file, refused when unsafe, and verified.
//!
//! The plan and every safety rule are `lmx-flasher`'s [`FlashPlan`]; this
//! module finds the image (`--from` a build directory or `--image`),
//! prints (`--dry-run`) or confirms the plan, starts the embedded TFTP
//! server (download of the image, upload of a `--backup`), attaches to
//! U-Boot exactly as `lmx tftpboot` does (a serial port, `lmx console`'s
//! share socket, or the virtual board it starts itself), and runs the
//! steps. Each step's output is judged as the plan says; a failure stops
//! the run with what the flash now holds and how to recover.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use lmx_boards::Board;
use lmx_flasher::{BackupVia, FlashPlan, FlashRequest, FlashSource, Method, RamBuffers, Step};
use lmx_session::virt::{self, Flash};
use lmx_session::{
    ConsoleChoice, FlashExecutor, NetSetup, Serve, Session, SessionSpec, StepFailure,
};
use miette::{miette, IntoDiagnostic};

use crate::boot::report::TermReporter;

/// Flags of `lmx flash`.
#[derive(Args, Debug)]
pub struct FlashArgs {
    /// Board name (see `lmx boards list`), e.g. qemu-aarch64.
    #[arg(long)]
    pub board: String,

    /// Look for board files in DIR first.
    #[arg(long, env = "LMX_BOARDS_DIR", value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,

    /// Flash the firmware image of an `lmx build` output directory
    /// (its manifest.json says which file, partition, size and CRC32).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "image",
        required_unless_present = "image"
    )]
    pub from: Option<PathBuf>,

    /// Flash this file as is (into --partition, default the firmware partition).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,

    /// Target partition (a name from the board file's [[flash.partitions]]).
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,

    /// UBI volume to write (UBI boards).
    #[arg(long, value_name = "NAME")]
    pub volume: Option<String>,

    /// How to write: `native` (the flash type's commands: erase/cp.b, sf,
    /// nand, ubi), `mapped` (erase/cp.b on memory-mapped SPI-NOR) or
    /// `mtd:DEVICE` (generic mtd erase/write on a device from `mtd list`).
    #[arg(long, value_name = "METHOD", default_value = "native", value_parser = parse_method)]
    pub method: Method,

    /// Print the plan (every command, address and CRC32) and exit; nothing
    /// is sent to the board and no virtual board is started.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// First save the region about to be erased into FILE (tftpput to lmx's
    /// TFTP server, or md.b over the console when U-Boot lacks tftpput),
    /// checked by CRC32.
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,

    /// Only compare the flash with the image (no erase, no write).
    #[arg(long, conflicts_with_all = ["backup", "bootcmd", "bootargs"])]
    pub verify_only: bool,

    /// After a verified write: `setenv bootcmd CMD` and `saveenv`.
    #[arg(long, value_name = "CMD")]
    pub bootcmd: Option<String>,

    /// After a verified write: `setenv bootargs ARGS` and `saveenv`.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub bootargs: Option<String>,

    /// After writing, reset the board and wait until it boots from flash to
    /// the userland marker.
    #[arg(long)]
    pub boot: bool,

    /// Text userland prints when it is up (--boot).
    #[arg(long, value_name = "TEXT", default_value = lmx_testbed::rootfs::MARKER)]
    pub marker: String,

    /// Seconds from the reset to the userland marker (--boot).
    #[arg(long, value_name = "SECS", default_value_t = 90)]
    pub marker_timeout: u64,

    /// Copy the console to stdout from the reset on (--boot).
    #[arg(long)]
    pub show_console: bool,

    /// Console: a serial device, unix:PATH or tcp:HOST:PORT (not for a
    /// virtual board, which lmx starts itself).
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,

    #[command(flatten)]
    pub net: super::tftpboot::NetArgs,

    /// RAM buffer (U-Boot address) the image is loaded to, instead of the board's RAM-boot area.
    #[arg(long, value_name = "ADDR", value_parser = lmx_boards::number::parse_size, requires = "readback_addr")]
    pub load_addr: Option<u64>,

    /// RAM buffer (U-Boot address) the flash is read back into.
    #[arg(long, value_name = "ADDR", value_parser = lmx_boards::number::parse_size, requires = "load_addr")]
    pub readback_addr: Option<u64>,

    /// Virtual board: directory of its flash bank files (flash0.img,
    /// flash1.img), kept between runs. Default: the lmx cache.
    #[arg(long, value_name = "DIR")]
    pub flash_dir: Option<PathBuf>,

    /// Virtual board: start flash bank 0 read-only (QEMU `readonly=on`), as
    /// a write-protected chip; shows what lmx does when writes do not stick.
    #[arg(long)]
    pub write_protect: bool,
}

fn parse_method(s: &str) -> Result<Method, String> {
    match s {
        "native" => Ok(Method::Native),
        "mapped" => Ok(Method::Mapped),
        _ => match s.strip_prefix("mtd:") {
            Some(d) if !d.is_empty() => Ok(Method::Mtd { device: d.into() }),
            _ => Err(format!(
                "unknown method {s:?}: native, mapped or mtd:DEVICE (e.g. mtd:nor0)"
            )),
        },
    }
}

/// The image: `--from`'s build, or `--image` as it is.
fn source(args: &FlashArgs, board: &Board) -> miette::Result<FlashSource> {
    let partition = args.partition.as_deref();
    Ok(match &args.from {
        Some(dir) => FlashSource::from_build(dir, &board.name, partition)?,
        None => {
            let path = args
                .image
                .as_deref()
                .expect("clap requires --from or --image");
            FlashSource::from_file(path, partition)?
        }
    })
}

fn request(args: &FlashArgs, src: &FlashSource, backup_via: BackupVia) -> FlashRequest {
    src.request(
        args.method.clone(),
        args.volume.clone(),
        match (args.load_addr, args.readback_addr) {
            (Some(load), Some(readback)) => Some(RamBuffers { load, readback }),
            _ => None,
        },
        args.backup.as_deref().map(|b| (b, backup_via)),
    )
}

fn build_plan(board: &Board, req: &FlashRequest) -> miette::Result<FlashPlan> {
    FlashPlan::build(board, req).map_err(|e| {
        miette::Report::new(e)
            .wrap_err(format!("refused: nothing was sent to board {}", board.name))
    })
}

/// Runs `lmx flash`.
pub fn run(args: FlashArgs) -> miette::Result<()> {
    let board = crate::cmd::boards::resolve_board(args.boards_dir.as_deref(), &args.board)?;
    let src = source(&args, &board)?;
    let mut plan = build_plan(&board, &request(&args, &src, BackupVia::Tftpput))?;

    let board_ip = args.net.board_ip(&board);
    let server_ip = args.net.server_ip(&board, board_ip);

    if args.dry_run {
        if args.verify_only {
            println!("(--verify-only: only the probe, read-back and verify steps run)\n");
        }
        print!("{}", plan.render());
        println!("\nNetwork settings, sent first:");
        match (board_ip, server_ip) {
            (Some(b), Some(srv)) => {
                for (name, value) in NetSetup::for_board(&board, b, srv).vars() {
                    println!("  setenv {name} {value}");
                }
            }
            _ => println!(
                "  ipaddr {}, serverip {} (give --board-ip / --server-ip)",
                board_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                server_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "unknown".into())
            ),
        }
        println!(
            "\nServed over TFTP: {} ({} bytes, {})",
            src.image.file,
            src.image.size,
            src.path.display()
        );
        if args.backup.is_some() {
            println!("If this U-Boot has no tftpput, the backup is read with md.b over the console instead.");
        }
        if !src.parts.is_empty() {
            println!("\nWhere the build's parts land (for --bootcmd/--bootargs):");
            for p in &src.parts {
                let (name, off, size) = (&p.name, p.flash_offset, p.padded_size);
                let mapped = board
                    .flash_uboot_addr(off)
                    .and_then(Result::ok)
                    .map(|a| format!(", U-Boot address {a:#x}"))
                    .unwrap_or_default();
                println!("  {name:<8} flash offset {off:#x}, {size:#x} bytes{mapped}");
            }
        }
        return Ok(());
    }

    let board_ip = board_ip.ok_or_else(|| {
        miette!(
            help = "give --board-ip, or add network.ip to the board file",
            "board {}: no board address",
            board.name
        )
    })?;
    let server_ip = server_ip.ok_or_else(|| {
        miette!(
            help = "give --server-ip (this host's address on the board's network)",
            "no route toward {board_ip} and no network.server_ip in board {}",
            board.name
        )
    })?;
    let net = NetSetup::for_board(&board, board_ip, server_ip);

    if !args.yes && !args.verify_only {
        confirm(&board, &plan, &args)?;
    }

    // A virtual board's network comes first, while this process has one
    // thread (ConsoleChoice::prepare).
    let mut say = TermReporter::new(false);
    if args.write_protect {
        if !board.is_virtual {
            return Err(miette!(
                "--write-protect starts a virtual board read-only; board {} is real",
                board.name
            ));
        }
        if virt::arch(&board).is_malta() {
            return Err(miette!(
                help = "drop --write-protect (qemu-aarch64 has it)",
                "--write-protect: the malta flash of {} is one bank holding U-Boot, the firmware and the environment; lmx does not start it read-only",
                board.name
            ));
        }
    }
    let choice =
        ConsoleChoice::of(&board, args.port.as_deref(), false).map_err(super::console_report)?;
    // U-Boot, the firmware partition and the environment, kept like `lmx env`'s.
    let flash = match (&choice, &args.flash_dir) {
        (ConsoleChoice::Port(_), _) => Flash::Fresh,
        (ConsoleChoice::Virtual { .. }, Some(dir)) => Flash::Kept {
            dir: dir.clone(),
            write_protect: args.write_protect,
        },
        (ConsoleChoice::Virtual { .. }, None) => Flash::Kept {
            dir: default_flash_dir(&board)?,
            write_protect: args.write_protect,
        },
    };
    let console = choice
        .prepare(&board, server_ip, flash, &mut say)
        .map_err(super::console_report)?;

    let scratch = tempfile::Builder::new()
        .prefix("lmx-flash-")
        .tempdir()
        .into_diagnostic()?;
    let session = Session::open(
        SessionSpec {
            board: board.clone(),
            console,
            client: "lmx flash".into(),
            serve: Some(Serve {
                listen: args.net.listen(server_ip),
                board_ip,
                files: vec![(src.image.file.clone(), src.path.clone())],
                uploads: args.backup.is_some(),
            }),
            scratch,
        },
        &mut say,
    )?;
    let upload_dir = session.host.upload_dir();
    let mut session = session.map(|shell| {
        FlashExecutor::new(
            shell,
            upload_dir,
            args.backup.clone(),
            args.verify_only,
            TermReporter::new(args.show_console),
        )
    });
    let started = Instant::now();
    let at_power_on = session.host.at_power_on();
    let Session { driver: exec, host } = &mut session;
    let result = host.block_on(async {
        // A VM lmx just started: silent until U-Boot speaks (a key sent
        // earlier is lost and U-Boot then boots through its countdown).
        exec.attach(&plan, at_power_on).await?;
        exec.check_commands(&mut plan, board.flash.mapped_base, || {
            build_plan(&board, &request(&args, &src, BackupVia::Console))
                .map_err(|e| format!("{e:?}"))
        })
        .await?;
        exec.network(&plan, &net).await?;
        let steps: Vec<Step> = if args.verify_only {
            plan.verification_steps()
        } else {
            plan.steps.clone()
        };
        exec.execute(&plan, &steps).await?;
        if !args.verify_only {
            exec.boot_env(&plan, args.bootcmd.as_deref(), args.bootargs.as_deref())
                .await?;
        }
        Ok::<(), StepFailure>(())
    });
    result?;
    let elapsed = started.elapsed();
    if args.verify_only {
        eprintln!(
            "==> verified: flash at {} matches {} ({} bytes, crc32 {:08x}) in {:.3} s",
            lmx_flasher::plan::Span(plan.write),
            src.image.file,
            src.image.size,
            src.image.crc32,
            elapsed.as_secs_f64()
        );
    } else {
        eprintln!(
            "==> flashed and verified: {} ({} bytes) into partition {} at {}, crc32 {:08x} read back, in {:.3} s",
            src.image.file,
            src.image.size,
            plan.partition.name,
            lmx_flasher::plan::Span(plan.write),
            src.image.crc32,
            elapsed.as_secs_f64()
        );
    }
    if !exec.bad_blocks.is_empty() {
        eprintln!(
            "warning: U-Boot skipped bad blocks at {}",
            exec.bad_blocks
                .iter()
                .map(|b| format!("{b:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if args.boot {
        let t = Instant::now();
        let line = host.block_on(
            exec.boot_from_flash(&args.marker, Duration::from_secs(args.marker_timeout)),
        )?;
        eprintln!(
            "==> booted from flash: userland marker seen {:.3} s after the reset: {line}",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// `$LMX_CACHE_DIR` or `~/.cache/lmx`, then `virtual/<board>` (also
/// `lmx env`'s default, so both see the same virtual flash).
pub(crate) fn default_flash_dir(board: &Board) -> miette::Result<PathBuf> {
    virt::default_flash_dir(board).ok_or_else(|| {
        miette!(
            help = "give --flash-dir DIR",
            "no cache directory (HOME unset)"
        )
    })
}

fn confirm(board: &Board, plan: &FlashPlan, args: &FlashArgs) -> miette::Result<()> {
    use std::io::BufRead;
    eprintln!("About to flash board {}:", board.name);
    eprintln!(
        "  partition {} at {}",
        plan.partition.name,
        lmx_flasher::plan::Span(plan.partition.region())
    );
    eprintln!(
        "  image     {} ({:#x} bytes, crc32 {:08x})",
        plan.image.file, plan.image.size, plan.image.crc32
    );
    eprintln!("  erases    {}", plan.erase_summary());
    match &args.backup {
        Some(b) => eprintln!("  backup    {} first", b.display()),
        None => eprintln!("  backup    none (give --backup FILE to keep the old contents)"),
    }
    eprint!("Type yes to flash: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .into_diagnostic()?;
    if line.trim() != "yes" {
        return Err(miette!(
            help = "answer yes, or pass --yes to skip the question",
            "not confirmed: nothing was sent to the board"
        ));
    }
    Ok(())
}
