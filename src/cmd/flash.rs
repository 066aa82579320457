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

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use ipnet::IpNet;
use lmx_boards::Board;
use lmx_builder::manifest::Manifest;
use lmx_console::{Endpoint, SerialConfig, Transport, UBootShell};
use lmx_flasher::{
    output, Backup, BackupVia, Check, FlashImage, FlashPlan, FlashRequest, FlashState, Method,
    Phase, RamBuffers, Step, Target,
};
use lmx_tftpd::policy::PolicySpec;
use lmx_tftpd::{Policy, Server, ServerConfig};
use miette::{miette, IntoDiagnostic, WrapErr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::boot::run::NetSetup;
use crate::boot::virt;

/// Flags of `lmx flash`.
#[derive(Args, Debug)]
pub struct FlashArgs {
    /// Board name (see `lmx boards list`), e.g. qemu-aarch64.
    #[arg(long)]
    pub board: String,

    /// Look for board files in DIR first.
    #[arg(long, value_name = "DIR")]
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
    #[arg(long, value_name = "ADDR", value_parser = parse_addr, requires = "readback_addr")]
    pub load_addr: Option<u64>,

    /// RAM buffer (U-Boot address) the flash is read back into.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr, requires = "load_addr")]
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

fn parse_addr(s: &str) -> Result<u64, String> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    }
    .map_err(|e| format!("{s:?} is not an address: {e}"))
}

/// A failed step, told with the state the flash is in.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{step} failed: {reason}\n  command: {command}{tail}\n{state}")]
#[diagnostic(code(lmx::flash), help("{hint}"))]
pub struct FlashFailure {
    /// The step, e.g. `erase`.
    pub step: String,
    /// The U-Boot command.
    pub command: String,
    /// Expected and seen.
    pub reason: String,
    /// Console lines, already formatted.
    pub tail: String,
    /// What the flash holds now and how to recover.
    pub state: String,
    /// What to try.
    pub hint: String,
}

/// The image, where it is on disk, and the partition the build laid it out for.
struct Source {
    image: FlashImage,
    path: PathBuf,
    partition: Option<String>,
    /// The build's parts (name, flash offset, padded size), for the boot hint.
    parts: Vec<(String, u64, u64)>,
}

fn source(args: &FlashArgs, board: &Board) -> miette::Result<Source> {
    if let Some(dir) = &args.from {
        let m = Manifest::read(dir).map_err(|e| miette!("{e}"))?;
        if m.board != board.name {
            return Err(miette!(
                help = format!(
                    "flash it with --board {}, or build for {}",
                    m.board, board.name
                ),
                "{} was built for board {}, not {}",
                dir.display(),
                m.board,
                board.name
            ));
        }
        m.verify_files(dir).map_err(|e| miette!("{e}"))?;
        let fw = m.firmware.ok_or_else(|| {
            miette!(
                help = "the board file needs a partition with role = \"firmware\" and flash.erase_block; see the build notes",
                "{} holds no firmware image (notes: {})",
                dir.display(),
                m.notes.join("; ")
            )
        })?;
        if let Some(p) = &args.partition {
            if *p != fw.partition {
                return Err(miette!(
                    help = "rebuild, or flash another file with --image",
                    "{} was laid out for partition {} (its parts sit at offsets inside it), not {p}",
                    dir.display(),
                    fw.partition
                ));
            }
        }
        return Ok(Source {
            image: FlashImage {
                file: fw.image.clone(),
                size: fw.image_size,
                crc32: fw.image_crc32,
            },
            path: dir.join(&fw.image),
            partition: Some(fw.partition),
            parts: fw
                .parts
                .iter()
                .map(|p| (p.name.clone(), p.flash_offset, p.padded_size))
                .collect(),
        });
    }
    let path = args.image.clone().expect("clap requires --from or --image");
    let bytes = std::fs::read(&path)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading the image {}", path.display()))?;
    let file = tftp_name(&path);
    Ok(Source {
        image: FlashImage {
            file,
            size: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        },
        path,
        partition: args.partition.clone(),
        parts: Vec::new(),
    })
}

/// A TFTP name U-Boot can type: the file name with anything unusual replaced.
fn tftp_name(p: &Path) -> String {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image.bin".into());
    n.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn request(args: &FlashArgs, src: &Source, backup_via: BackupVia) -> FlashRequest {
    FlashRequest {
        target: match &src.partition {
            Some(p) => Target::Partition(p.clone()),
            None => Target::Firmware,
        },
        image: src.image.clone(),
        method: args.method.clone(),
        ubi_volume: args.volume.clone(),
        ram: match (args.load_addr, args.readback_addr) {
            (Some(load), Some(readback)) => Some(RamBuffers { load, readback }),
            _ => None,
        },
        backup: args.backup.as_ref().map(|b| Backup {
            file: format!("lmx-backup-{}", tftp_name(b)),
            via: backup_via,
        }),
    }
}

fn build_plan(board: &Board, req: &FlashRequest) -> miette::Result<FlashPlan> {
    FlashPlan::build(board, req).map_err(|e| {
        miette::Report::new(e)
            .wrap_err(format!("refused: nothing was sent to board {}", board.name))
    })
}

/// Runs `lmx flash`.
pub fn run(args: FlashArgs) -> miette::Result<()> {
    let board = crate::cmd::boards::catalog(args.boards_dir.as_deref())
        .resolve(&args.board)
        .map_err(|e| {
            // Every problem with its rule, not only the count.
            let details: Vec<String> = e.errors.iter().map(|p| p.to_string()).collect();
            miette!(
                help = "fix the board file (lmx boards check FILE); nothing was sent to the board",
                "{e}:\n{}",
                details.join("\n")
            )
        })?
        .board;
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
                let net = NetSetup {
                    board_ip: b,
                    server_ip: srv,
                    blocksize: board.uboot.tftp_blocksize,
                    windowsize: board.uboot.tftp_windowsize,
                };
                for (name, value) in net.vars() {
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
            for (name, off, size) in &src.parts {
                let mapped = board
                    .flash_uboot_addr(*off)
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
    let net = NetSetup {
        board_ip,
        server_ip,
        blocksize: board.uboot.tftp_blocksize,
        windowsize: board.uboot.tftp_windowsize,
    };

    if !args.yes && !args.verify_only {
        confirm(&board, &plan, &args)?;
    }

    // A virtual board's network comes first, while this process has one
    // thread. A MIPS twin's U-Boot is built (and cached) by the test bed
    // the first time, which needs the network: before that.
    let mut malta_uboot = None;
    let arch = if board.is_virtual {
        let arch = virt::arch(&board)?;
        if arch.is_malta() && args.write_protect {
            return Err(miette!(
                help = "drop --write-protect (qemu-aarch64 has it)",
                "--write-protect: the malta flash of {} is one bank holding U-Boot, the firmware and the environment; lmx does not start it read-only",
                board.name
            ));
        }
        virt::check_host(arch)?;
        if arch.is_malta() {
            malta_uboot = Some(virt::prepare_firmware(&board, arch)?);
        }
        virt::enter_network(server_ip, board.network.prefix_len.unwrap_or(24))?;
        Some(arch)
    } else {
        None
    };

    let tmp = tempfile::Builder::new()
        .prefix("lmx-flash-")
        .tempdir()
        .into_diagnostic()?;
    let upload_dir = tmp.path().join("upload");
    std::fs::create_dir_all(&upload_dir).into_diagnostic()?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .into_diagnostic()?;
    let bind = args.net.listen(server_ip);
    let policy = Policy::new(PolicySpec {
        files: vec![(src.image.file.clone(), src.path.clone())],
        allow: vec![IpNet::from(IpAddr::V4(board_ip))],
        upload_dir: args.backup.as_ref().map(|_| upload_dir.clone()),
        ..PolicySpec::default()
    })
    .map_err(|e| miette!("serving the image: {e}"))?;
    let server = rt
        .block_on(Server::bind(
            ServerConfig {
                bind: vec![bind],
                ..ServerConfig::default()
            },
            policy,
        ))
        .map_err(|e| miette!("{e}"))?;
    eprintln!(
        "==> TFTP server on {bind}, serving {} to {board_ip} only{}",
        src.image.file,
        if args.backup.is_some() {
            ", accepting the backup upload"
        } else {
            ""
        }
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = rt.spawn(server.run(async {
        let _ = stop_rx.await;
    }));

    // The console: a VM lmx starts (kept on this thread, which QEMU's death
    // signal follows), or the given port.
    let mut _vm = None;
    let transport: Box<dyn Transport> = if let Some(arch) = arch {
        if args.port.is_some() {
            return Err(miette!(
                "--port: lmx starts virtual board {} itself",
                board.name
            ));
        }
        let dir = match &args.flash_dir {
            Some(d) => d.clone(),
            None => default_flash_dir(&board)?,
        };
        let sock = tmp.path().join("console.sock");
        let cfg = if let Some(uboot) = &malta_uboot {
            // A MIPS twin: one 4 MiB flash file (U-Boot, firmware
            // partition, environment), kept like `lmx env`'s.
            let flash = virt::kept_malta_flash(arch, uboot, &dir)?;
            eprintln!(
                "==> starting virtual board {} (QEMU; flash {})",
                board.name,
                flash.display()
            );
            let mut cfg =
                lmx_testbed::VmConfig::malta(arch, lmx_testbed::Console::Unix(sock.clone()), flash);
            cfg.network = Some(lmx_testbed::Tap {
                name: virt::TAP.into(),
            });
            cfg
        } else {
            let uboot = lmx_testbed::uboot_firmware(arch).map_err(|e| miette!("{e}"))?;
            let mut pflash = lmx_testbed::Pflash::create(&dir, &uboot, true)
                .map_err(|e| miette!("{e}"))
                .wrap_err_with(|| format!("flash bank files in {}", dir.display()))?;
            eprintln!(
                "==> starting virtual board {} (QEMU; flash banks in {})",
                board.name,
                dir.display()
            );
            let mut cfg = virt::vm_config(arch, lmx_testbed::Console::Unix(sock.clone()), true);
            pflash.readonly0 = args.write_protect;
            cfg.firmware = lmx_testbed::Firmware::Pflash(pflash);
            cfg
        };
        let vm = virt::start(&cfg)?;
        _vm = Some(vm);
        let sc = SerialConfig::from_board(&board).map_err(|e| miette!("{e}"))?;
        rt.block_on(Endpoint::Unix(sock).open(&sc))
            .map_err(|e| miette!("{e}"))?
    } else {
        if args.write_protect {
            return Err(miette!(
                "--write-protect starts a virtual board read-only; board {} is real",
                board.name
            ));
        }
        super::console::open_port(&rt, &board, args.port.as_deref(), "lmx flash")?
    };
    let shell = UBootShell::for_board(transport, &board).map_err(|e| miette!("{e}"))?;
    let mut exec = Executor {
        shell,
        upload_dir,
        backup_path: args.backup.clone(),
        backup_saved: None,
        recorded_crc: None,
        bad_blocks: Vec::new(),
        verify_only: args.verify_only,
    };
    let started = Instant::now();
    let result = rt.block_on(async {
        eprintln!("==> waiting for U-Boot (stopping autoboot)");
        // A VM lmx just started: silent until U-Boot speaks (a key sent
        // earlier is lost and U-Boot then boots through its countdown).
        let attach = if _vm.is_some() {
            exec.shell.attach_at_power_on(Duration::from_secs(30)).await
        } else {
            exec.shell.attach(Duration::from_secs(30)).await
        };
        attach
            .map_err(|e| fail_untouched(&plan, "reaching the U-Boot prompt", "(attach)", e.to_string(), "check the console port and that the board is powered"))?;
        // Which commands does this U-Boot have? Decided before anything is erased.
        let mut needed = plan.required_commands();
        if args.backup.is_some() && !needed.iter().any(|c| c == "tftpput") {
            needed.push("tftpput".into());
        }
        let missing = exec.probe(&needed).await.map_err(|f| *f)?;
        if missing.iter().any(|m| m == "tftpput") && args.backup.is_some() {
            eprintln!("note: this U-Boot has no tftpput (CONFIG_CMD_TFTPPUT): the backup is read with md.b over the console instead (slow)");
            plan = build_plan(&board, &request(&args, &src, BackupVia::Console))
                .map_err(|e| fail_untouched(&plan, "planning the console backup", "", format!("{e:?}"), "flash without --backup, or use a U-Boot with tftpput"))?;
        }
        let still: Vec<&String> = missing
            .iter()
            .filter(|m| plan.required_commands().contains(m))
            .collect();
        if !still.is_empty() {
            let names = still.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            let mut hint = format!("this U-Boot was built without {names}; use a U-Boot that has it, or another --method");
            if still.iter().any(|s| *s == "sf") && board.flash.mapped_base.is_some() {
                hint = format!("this U-Boot has no sf, but the board maps the flash at {:#x}: try --method mapped", board.flash.mapped_base.unwrap_or(0));
            }
            return Err(fail_untouched(&plan, "checking U-Boot's commands", &format!("help {}", still[0]), format!("U-Boot lacks the command(s) {names}"), &hint));
        }
        eprintln!("    U-Boot has {}", plan.required_commands().join(", "));
        eprintln!("==> network settings");
        for (name, value) in net.vars() {
            exec.shell.setenv(name, &value).await.map_err(|e| fail_untouched(&plan, "network settings", &format!("setenv {name} {value}"), e.to_string(), "check the board file's [uboot] section"))?;
        }
        let steps: Vec<Step> = if args.verify_only {
            plan.steps.iter().filter(|s| matches!(s.phase, Phase::Probe | Phase::ReadBack | Phase::Verify)).cloned().collect()
        } else {
            plan.steps.clone()
        };
        // Ctrl-C ends lmx but not the command U-Boot is running: say what
        // state that leaves the flash in.
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| fail_untouched(&plan, "installing the Ctrl-C handler", "", e.to_string(), "retry"))?;
        for step in &steps {
            tokio::select! {
                r = exec.step(&plan, step) => r.map_err(|f| *f)?,
                _ = interrupt.recv() => {
                    let state = if exec.verify_only {
                        "Flash state: unchanged by this run (--verify-only).".to_string()
                    } else {
                        FlashState::after(step.phase).explain(&plan, exec.backup_saved.as_deref())
                    };
                    return Err(FlashFailure {
                        step: format!("{} ({})", step.phase.as_str(), step.what),
                        command: step.command.clone(),
                        reason: "interrupted (Ctrl-C); U-Boot may still be running the command".into(),
                        tail: String::new(),
                        state,
                        hint: "wait for U-Boot's prompt on the console, then run lmx flash again".into(),
                    });
                }
            }
        }
        if !args.verify_only {
            exec.boot_env(&plan, args.bootcmd.as_deref(), args.bootargs.as_deref()).await.map_err(|f| *f)?;
        }
        Ok::<(), FlashFailure>(())
    });
    if let Err(e) = result {
        let _ = stop_tx.send(());
        return Err(e.into());
    }
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
        let dialect = lmx_console::Dialect::from_board(&board).map_err(|e| miette!("{e}"))?;
        let line = rt.block_on(boot(
            exec.shell.transport_mut(),
            &dialect,
            &args.marker,
            Duration::from_secs(args.marker_timeout),
            args.show_console,
        ))?;
        eprintln!(
            "==> booted from flash: userland marker seen {:.3} s after the reset: {line}",
            t.elapsed().as_secs_f64()
        );
    }
    let _ = stop_tx.send(());
    let _ = rt.block_on(served);
    drop(_vm);
    Ok(())
}

/// `$LMX_CACHE_DIR` or `~/.cache/lmx`, then `virtual/<board>` (also
/// `lmx env`'s default, so both see the same virtual flash).
pub(crate) fn default_flash_dir(board: &Board) -> miette::Result<PathBuf> {
    let base = std::env::var_os("LMX_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("lmx")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/lmx")))
        .ok_or_else(|| {
            miette!(
                help = "give --flash-dir DIR",
                "no cache directory (HOME unset)"
            )
        })?;
    Ok(base.join("virtual").join(&board.name))
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

fn fail_untouched(
    plan: &FlashPlan,
    step: &str,
    command: &str,
    reason: String,
    hint: &str,
) -> FlashFailure {
    FlashFailure {
        step: step.into(),
        command: command.into(),
        reason,
        tail: String::new(),
        state: FlashState::Untouched.explain(plan, None),
        hint: hint.into(),
    }
}

struct Executor {
    shell: UBootShell<Box<dyn Transport>>,
    upload_dir: PathBuf,
    backup_path: Option<PathBuf>,
    backup_saved: Option<String>,
    recorded_crc: Option<u32>,
    bad_blocks: Vec<u64>,
    verify_only: bool,
}

/// Time for a command over `bytes` of flash: generous, the console driver
/// reports a board that went silent long before.
fn budget(bytes: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_secs_f64(bytes as f64 / (32.0 * 1024.0))
}

impl Executor {
    /// `help NAME` for each command; returns the missing ones.
    async fn probe(&mut self, names: &[String]) -> Result<Vec<String>, Box<FlashFailure>> {
        let mut missing = Vec::new();
        for n in names {
            let cmd = format!("help {n}");
            let out = self
                .shell
                .exec(&cmd, Duration::from_secs(10))
                .await
                .map_err(|e| {
                    Box::new(FlashFailure {
                        step: "checking U-Boot's commands".into(),
                        command: cmd.clone(),
                        reason: e.to_string(),
                        tail: String::new(),
                        state: "Flash state: untouched. Nothing was erased or written.".into(),
                        hint: "check the console".into(),
                    })
                })?;
            // `help CMD` returns 1 even when CMD exists (cmd_usage), so only
            // the text counts.
            if out.text.contains("Unknown command 'help'") {
                eprintln!("note: this U-Boot has no help command; the plan's commands cannot be checked before they run");
                return Ok(Vec::new());
            }
            if output::unknown_command(&out.text) {
                missing.push(n.clone());
            }
        }
        Ok(missing)
    }

    fn failure(
        &self,
        plan: &FlashPlan,
        step: &Step,
        reason: String,
        hint: &str,
    ) -> Box<FlashFailure> {
        let state = if self.verify_only {
            "Flash state: unchanged by this run (--verify-only erases and writes nothing); what the flash holds differs from the image. Flash it again without --verify-only.".to_string()
        } else {
            FlashState::after(step.phase).explain(plan, self.backup_saved.as_deref())
        };
        Box::new(FlashFailure {
            step: format!("{} ({})", step.phase.as_str(), step.what),
            command: step.command.clone(),
            reason,
            tail: format!("\n{}", self.shell.machine().tail()),
            state,
            hint: hint.into(),
        })
    }

    async fn step(&mut self, plan: &FlashPlan, step: &Step) -> Result<(), Box<FlashFailure>> {
        eprintln!("==> [{}] {}", step.phase.as_str(), step.command);
        let t = Instant::now();
        let bytes = plan
            .erase
            .map(|e| e.size)
            .unwrap_or(plan.write_len)
            .max(plan.image.size);
        // md.b carries about four console bytes per flash byte through the
        // console driver: allow for about 8 KiB of flash per second.
        let limit = match &step.check {
            Check::Dump { size, .. } => {
                Duration::from_secs(60) + Duration::from_secs_f64(*size as f64 / 8192.0)
            }
            _ => budget(bytes),
        };
        let out = self.shell.exec(&step.command, limit).await.map_err(|e| {
            self.failure(
                plan,
                step,
                e.to_string(),
                "look at the console lines above; the board may have reset or the console was lost",
            )
        })?;
        let default_hint = match step.phase {
            Phase::Load => "check the network (ipaddr/serverip, cable, firewall for UDP 69)",
            Phase::Erase | Phase::Write => "the flash reported an error: it may be write-protected (protect off, WP pin) or failing",
            _ => "look at the console lines above",
        };
        match &step.check {
            Check::CreateIfMissing { create } => {
                if out.status.unwrap_or(0) != 0 || !out.success() {
                    eprintln!("    volume missing: {create}");
                    let c = self
                        .shell
                        .exec(create, budget(bytes))
                        .await
                        .map_err(|e| self.failure(plan, step, e.to_string(), default_hint))?;
                    if !c.success() {
                        return Err(self.failure(
                            plan,
                            step,
                            format!("`{create}` failed: {}", c.text.trim()),
                            "the UBI partition may be full: ubi info l shows its free space",
                        ));
                    }
                }
                return Ok(());
            }
            _ if !out.success() => {
                let what = out
                    .failure
                    .clone()
                    .or(out.status.map(|s| format!("status {s}")))
                    .unwrap_or_default();
                let hint = if out.text.contains("not in flash")
                    || out.text.contains("Outside available Flash")
                {
                    "U-Boot does not address this flash range: the board file's flash.usable or partition map disagrees with what U-Boot sees (flinfo on the board shows its banks and sectors); fix the board file before retrying"
                } else {
                    default_hint
                };
                return Err(self.failure(
                    plan,
                    step,
                    format!("U-Boot reported {what}: {}", last_lines(&out.text)),
                    hint,
                ));
            }
            _ => {}
        }
        match &step.check {
            Check::Succeeds | Check::CreateIfMissing { .. } => {}
            Check::BadBlocks => {
                let bad = output::bad_blocks(&out.text);
                for b in bad {
                    eprintln!("    U-Boot skipped a bad block at {b:#x}");
                    if !self.bad_blocks.contains(&b) {
                        self.bad_blocks.push(b);
                    }
                }
            }
            Check::Loaded { size } => {
                let fs = self
                    .shell
                    .printenv("filesize")
                    .await
                    .map_err(|e| self.failure(plan, step, e.to_string(), default_hint))?;
                let got = fs
                    .as_deref()
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
                if got != Some(*size) {
                    return Err(self.failure(
                        plan,
                        step,
                        format!(
                            "${{filesize}} is {} after the load, the image has {size:#x} bytes",
                            fs.as_deref().unwrap_or("unset")
                        ),
                        "the transfer was cut short; retry",
                    ));
                }
            }
            Check::Crc32 { crc } => {
                let got = output::crc32(&out.text).ok_or_else(|| {
                    self.failure(
                        plan,
                        step,
                        format!("no `==> CRC` line in {:?}", out.text),
                        "this U-Boot may lack crc32 (CONFIG_CMD_CRC32)",
                    )
                })?;
                if got != *crc {
                    let (reason, hint) = if step.phase == Phase::Verify {
                        (
                            format!("verification failed: the flash reads back crc32 {got:08x} over {:#x} bytes, the image has {crc:08x}", plan.image.size),
                            "the flash did not keep what was written: write-protected, worn, or the board file's geometry is wrong (erase block, usable area)",
                        )
                    } else {
                        (
                            format!("the RAM copy has crc32 {got:08x}, the image {crc:08x}: the transfer was corrupted"),
                            "retry; if it repeats, check the RAM buffers (--load-addr) and the link",
                        )
                    };
                    return Err(self.failure(plan, step, reason, hint));
                }
                eprintln!("    crc32 {got:08x} matches");
            }
            Check::RecordCrc => {
                let got = output::crc32(&out.text).ok_or_else(|| {
                    self.failure(
                        plan,
                        step,
                        format!("no `==> CRC` line in {:?}", out.text),
                        "this U-Boot may lack crc32",
                    )
                })?;
                self.recorded_crc = Some(got);
            }
            Check::Upload { file, size } => {
                let path = self.upload_dir.join(file);
                // The server renames the upload into place once its last
                // block is acknowledged, which can trail U-Boot's prompt.
                for _ in 0..40 {
                    if path.is_file() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let bytes = std::fs::read(&path).map_err(|e| {
                    self.failure(
                        plan,
                        step,
                        format!("the upload {} did not arrive: {e}", path.display()),
                        "check that nothing blocks UDP from the board",
                    )
                })?;
                self.save_backup(plan, step, &bytes, *size)?;
            }
            Check::Dump {
                file: _,
                addr,
                size,
            } => {
                let bytes = output::md_dump(&out.text, *addr, *size)
                    .map_err(|e| self.failure(plan, step, e, "retry the backup"))?;
                self.save_backup(plan, step, &bytes, *size)?;
            }
        }
        eprintln!("    ok in {:.3} s", t.elapsed().as_secs_f64());
        Ok(())
    }

    fn save_backup(
        &mut self,
        plan: &FlashPlan,
        step: &Step,
        bytes: &[u8],
        size: u64,
    ) -> Result<(), Box<FlashFailure>> {
        let crc = crc32fast::hash(bytes);
        if bytes.len() as u64 != size || Some(crc) != self.recorded_crc {
            return Err(self.failure(
                plan,
                step,
                format!(
                    "the backup holds {:#x} bytes with crc32 {crc:08x}; U-Boot read {size:#x} bytes with crc32 {}",
                    bytes.len(),
                    self.recorded_crc.map(|c| format!("{c:08x}")).unwrap_or_else(|| "unknown".into())
                ),
                "retry; nothing was erased",
            ));
        }
        let dest = self
            .backup_path
            .clone()
            .expect("a backup step implies --backup");
        std::fs::write(&dest, bytes).map_err(|e| {
            self.failure(
                plan,
                step,
                format!("writing {}: {e}", dest.display()),
                "pick a writable --backup path",
            )
        })?;
        eprintln!(
            "    backup saved: {} ({size:#x} bytes, crc32 {crc:08x} matches the board's)",
            dest.display()
        );
        self.backup_saved = Some(dest.display().to_string());
        Ok(())
    }

    async fn boot_env(
        &mut self,
        plan: &FlashPlan,
        bootcmd: Option<&str>,
        bootargs: Option<&str>,
    ) -> Result<(), Box<FlashFailure>> {
        let vars: Vec<(&str, &str)> = [("bootcmd", bootcmd), ("bootargs", bootargs)]
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n, v)))
            .collect();
        if vars.is_empty() {
            return Ok(());
        }
        let step = Step {
            phase: Phase::Verify,
            command: String::new(),
            check: Check::Succeeds,
            what: "boot environment".into(),
        };
        for (n, v) in vars {
            eprintln!("==> setenv {n} {v}");
            self.shell.setenv(n, v).await.map_err(|e| {
                let mut s = step.clone();
                s.command = format!("setenv {n} ...");
                self.failure(
                    plan,
                    &s,
                    e.to_string(),
                    "the flash write itself is verified; set the variable by hand",
                )
            })?;
        }
        eprintln!("==> saveenv");
        let out = self
            .shell
            .exec("saveenv", Duration::from_secs(60))
            .await
            .map_err(|e| self.failure(plan, &step, e.to_string(), "run saveenv by hand"))?;
        if !out.success() || out.text.contains("FAILED") {
            let mut s = step.clone();
            s.command = "saveenv".into();
            return Err(self.failure(
                plan,
                &s,
                format!("saveenv failed: {}", last_lines(&out.text)),
                "the firmware is written and verified; the environment was not saved",
            ));
        }
        Ok(())
    }
}

fn last_lines(text: &str) -> String {
    let v: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(4)..].join(" | ")
}

/// `reset`, then the console until the marker (or a failure text).
/// `reset`, then the console until `marker`'s line. A U-Boot built
/// without autoboot (the MIPS twins: no `CONFIG_AUTOBOOT`) comes back to
/// its prompt without announcing one: it then gets `boot` (runs the
/// saved `bootcmd`) once. A prompt after an autoboot countdown, or a
/// second one, means `bootcmd` did not boot.
async fn boot<T: Transport + ?Sized>(
    io: &mut T,
    dialect: &lmx_console::Dialect,
    marker: &str,
    timeout: Duration,
    show: bool,
) -> miette::Result<String> {
    eprintln!("==> reset (booting from flash)");
    io.write_all(b"reset\r").await.into_diagnostic()?;
    io.flush().await.into_diagnostic()?;
    let failures = [
        "Kernel panic",
        "Wrong Image Format",
        "Bad Data CRC",
        "Bad Linux ARM64 Image magic",
        "## Error",
        "Unknown command",
        "Unable to mount root",
    ];
    let deadline = tokio::time::Instant::now() + timeout;
    let mut all = String::new();
    let mut buf = vec![0u8; 4096];
    let mut resets = 0;
    let mut boot_sent = false;
    let mut scan_from = 0;
    loop {
        // The whole marker line (it names the root device).
        if let Some(at) = all.find(marker) {
            let line_start = all[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
            if let Some(end) = all[at..].find('\n') {
                return Ok(all[line_start..at + end].trim_end_matches('\r').to_string());
            }
        }
        if let Some(f) = failures.iter().find(|f| all.contains(**f)) {
            return Err(boot_error(&all, &format!("the console showed {f:?}")));
        }
        // Autoboot ended at a prompt: bootcmd did not boot.
        if resets > 0
            && all
                .rsplit("Hit any key")
                .next()
                .is_some_and(|t| t.contains("\n=> "))
        {
            return Err(boot_error(
                &all,
                "U-Boot came back to its prompt: bootcmd did not boot the kernel",
            ));
        }
        // No autoboot: the new U-Boot's banner, then straight its prompt.
        if resets == 0 {
            let at_prompt = at_bare_prompt(dialect, &all[scan_from..], !boot_sent);
            if at_prompt {
                if boot_sent {
                    return Err(boot_error(
                        &all,
                        "U-Boot came back to its prompt after `boot`: bootcmd did not boot the kernel",
                    ));
                }
                eprintln!("==> boot (this U-Boot has no autoboot: run the saved bootcmd)");
                io.write_all(b"boot\r").await.into_diagnostic()?;
                io.flush().await.into_diagnostic()?;
                boot_sent = true;
                scan_from = all.len();
            }
        }
        let n = tokio::select! {
            r = io.read(&mut buf) => r.into_diagnostic()?,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(boot_error(&all, &format!("no userland marker {marker:?} within {} s", timeout.as_secs())));
            }
        };
        if n == 0 {
            return Err(boot_error(&all, "the console closed"));
        }
        if show {
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
        }
        let chunk = String::from_utf8_lossy(&buf[..n]);
        if chunk.contains("Hit any key") || all.contains("Hit any key") {
            resets = 1;
        }
        all.push_str(&chunk);
    }
}

/// Whether the console `text` ends at a bare U-Boot prompt (its last,
/// unfinished line is exactly the prompt): a U-Boot without autoboot is
/// waiting. With `need_banner`, only a prompt after a U-Boot banner counts
/// (the one of the reset, not the line `reset` was typed on).
fn at_bare_prompt(dialect: &lmx_console::Dialect, text: &str, need_banner: bool) -> bool {
    let text = if need_banner {
        match text.find("U-Boot ") {
            Some(at) => &text[at..],
            None => return false,
        }
    } else {
        text
    };
    let last = text.rsplit('\n').next().unwrap_or(text);
    dialect.is_prompt(last.trim_start_matches('\r'))
}

fn boot_error(all: &str, what: &str) -> miette::Report {
    let lines: Vec<&str> = all.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    miette!(
        help = "the flash was written and verified; check bootcmd/bootargs (root= must name the flash partition) with --dry-run and the console",
        "booting from flash failed: {what}\n{tail}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialect(board: &str) -> lmx_console::Dialect {
        let b = crate::cmd::boards::catalog(None)
            .resolve(board)
            .unwrap()
            .board;
        lmx_console::Dialect::from_board(&b).unwrap()
    }

    // The console of qemu-mips after `reset` (the test bed's U-Boot,
    // abridged): no autoboot, straight to the prompt.
    const MALTA_RESET: &str = "reset\r\nresetting ...\r\n\r\n\r\nU-Boot 2023.01 (Nov 28 2026 - 22:05:08 +0000)\r\n\r\nBoard: MIPS Malta CoreLV\r\nDRAM:  256 MiB\r\nFlash: 4 MiB\r\nNet:   pcnet#0\r\n";

    #[test]
    fn a_u_boot_without_autoboot_is_seen_at_its_prompt_after_the_banner() {
        let d = dialect("qemu-mips");
        assert!(!at_bare_prompt(&d, MALTA_RESET, true));
        assert!(at_bare_prompt(&d, &format!("{MALTA_RESET}malta # "), true));
        // The line `reset` was typed on is not the new U-Boot's prompt.
        assert!(!at_bare_prompt(
            &d,
            "malta # reset\r\nresetting ...\r\nmalta # ",
            true
        ));
        // A command being echoed is not a bare prompt.
        assert!(!at_bare_prompt(
            &d,
            &format!("{MALTA_RESET}malta # boot"),
            true
        ));
    }

    #[test]
    fn after_boot_only_a_new_prompt_counts() {
        let d = dialect("qemu-mips");
        assert!(!at_bare_prompt(&d, "", false));
        assert!(!at_bare_prompt(
            &d,
            "boot\r\n## Booting kernel from Legacy Image at be080000 ...\r\n",
            false
        ));
        assert!(at_bare_prompt(
            &d,
            "boot\r\nWrong Image Format for bootm command\r\nmalta # ",
            false
        ));
    }

    #[test]
    fn an_autoboot_countdown_is_not_a_prompt() {
        let d = dialect("qemu-aarch64");
        let text = "U-Boot 2023.01+dfsg-2+deb12u3 (Aug 1 2025)\r\n\r\nDRAM:  512 MiB\r\nHit any key to stop autoboot:  2 ";
        assert!(!at_bare_prompt(&d, text, true));
        assert!(at_bare_prompt(&d, &format!("{text}\r\n=> "), true));
    }
}
