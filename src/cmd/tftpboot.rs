//! `lmx tftpboot`: from a kernel and a root filesystem to a running system
//! on the board, loaded into RAM over TFTP, nothing written to flash, every
//! load checked with U-Boot's `crc32` before the boot.
//!
//! The flags choose the inputs (a saved plan, a directory, files, or the
//! test bed's defaults on a virtual board), the addresses and the console;
//! the work is done by [`crate::boot`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use lmx_boards::Board;
use lmx_builder::build::{self, BuildRequest};
use lmx_session::virt::{self, Flash, Virtual};
use lmx_session::{
    BootRunner, ConsoleSpec, NetSetup, RunOptions, Serve, Session, SessionSpec, Timings,
};
use miette::{miette, IntoDiagnostic, WrapErr};

use crate::boot::report::{JsonLines, JsonReporter, TermReporter};
use crate::cmd::plan_args::{hint, PlanArgs};
use lmx_builder::saved::{self, Prepared};
use lmx_session::rerun as watch;

/// The marker the test bed's rootfs prints when userland runs.
pub const DEFAULT_MARKER: &str = lmx_testbed::rootfs::MARKER;

/// Flags of `lmx tftpboot`.
#[derive(Args, Debug)]
pub struct TftpbootArgs {
    /// Board name (see `lmx boards list`), e.g. qemu-aarch64.
    #[arg(long)]
    pub board: String,

    /// Look for board files in DIR first.
    #[arg(long, env = "LMX_BOARDS_DIR", value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,

    /// Take the inputs from DIR: a `boot-plan.json`/`manifest.json` there,
    /// else a build-output directory as `lmx build --from` reads it (kernel,
    /// `dtb` or the only `*.dtb`, `rootfs` or the only `*.squashfs`).
    #[arg(long, value_name = "DIR", conflicts_with = "manifest")]
    pub from: Option<PathBuf>,

    /// Kernel file.
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,

    /// Root filesystem: an image file (squashfs) or a directory (made into squashfs).
    #[arg(long, value_name = "FILE|DIR")]
    pub rootfs: Option<PathBuf>,

    /// Boot a saved plan: `boot-plan.json` (written by --out or --dry-run
    /// --out) or a manifest that carries one; files are read next to it.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    #[command(flatten)]
    pub plan: PlanArgs,

    /// Keep the artifacts, `manifest.json` and `boot-plan.json` in DIR
    /// (default: a temporary directory). DIR must be empty or an earlier
    /// build's.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Console: a serial device, unix:PATH or tcp:HOST:PORT. For a virtual
    /// board: `pty` runs QEMU with -serial pty (opened as a serial port);
    /// the default is a unix socket.
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,

    /// Cycle a real board's power with CMD (run with `sh -c`, e.g.
    /// `labgrid-client -p PLACE power cycle` or a relay tool) and stop its
    /// autoboot from power-on, with the console read from before CMD runs:
    /// for boards whose reboot does not work and bootdelay-0 U-Boots.
    #[arg(long, value_name = "CMD", env = "LMX_POWER")]
    pub power: Option<String>,

    #[command(flatten)]
    pub net: NetArgs,

    /// Exit 0 once the userland marker is seen instead of staying on the console.
    #[arg(long)]
    pub no_console: bool,

    /// Copy the console to stdout from the boot command on (always so without --no-console).
    #[arg(long, conflicts_with = "json")]
    pub show_console: bool,

    /// Machine-readable output: one JSON object per event on stdout (step
    /// done, each load with size, CRC and how it was proven, kernel start,
    /// userland, failure), schema in docs/json.md; human lines stay on
    /// stderr. Implies --no-console.
    #[arg(long)]
    pub json: bool,

    /// Print the plan (commands, addresses, files, CRCs) and exit; nothing is
    /// sent to the board and no virtual board is started.
    #[arg(long)]
    pub dry_run: bool,

    /// Seconds to wait for the board at each step: the first TFTP request
    /// of a load, the kernel banner.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,

    /// Seconds from the kernel banner to the userland marker.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub marker_timeout: u64,

    /// Text userland prints when it is up.
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_MARKER)]
    pub marker: String,

    /// After the boot, watch these files or directories; when they change,
    /// reset the board (--reset), plan again from the same flags and boot
    /// again. Runs until Ctrl-C.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub watch: Vec<PathBuf>,

    /// Before each load, check with U-Boot's crc32 whether the board's RAM
    /// already holds the file at its address and skip the load if so (for a
    /// board reset without power loss since the last boot of the same
    /// plan). --watch does this on its re-runs by itself.
    #[arg(long)]
    pub verify_in_place: bool,

    /// How --watch brings the board back to U-Boot: `reboot` (type
    /// `reboot -f` on the running system), `cmd:COMMAND` (a host command,
    /// e.g. a power switch) or `manual` (you reset it).
    #[arg(long, value_name = "METHOD", default_value = "reboot")]
    pub reset: watch::ResetMethod,
}

/// The network flags of the commands that serve the board over TFTP
/// (`lmx tftpboot`, `lmx flash`), and how their defaults are found.
#[derive(Args, Debug)]
pub struct NetArgs {
    /// Address U-Boot fetches from (serverip). Default: the board file's
    /// for a virtual board; for a real one the host's address on the route
    /// toward the board.
    #[arg(long, value_name = "IP")]
    pub server_ip: Option<Ipv4Addr>,

    /// The board's address (ipaddr). Default: the board file's.
    #[arg(long, value_name = "IP")]
    pub board_ip: Option<Ipv4Addr>,

    /// Address the TFTP server listens on (default: the server IP).
    #[arg(long, value_name = "IP")]
    pub bind: Option<IpAddr>,
}

impl NetArgs {
    /// The board's address: the flag, else the board file's.
    pub fn board_ip(&self, board: &Board) -> Option<Ipv4Addr> {
        self.board_ip.or(board.network.ip)
    }

    /// The address U-Boot fetches from: the flag; for a virtual board the
    /// board file's; for a real one the host's address on the route toward
    /// `board_ip`, else the board file's.
    pub fn server_ip(&self, board: &Board, board_ip: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        self.server_ip
            .or_else(|| lmx_session::setup::default_server_ip(board, board_ip))
    }

    /// Where the TFTP server listens: `--bind`, else the server address.
    pub fn listen(&self, server_ip: Ipv4Addr) -> SocketAddr {
        SocketAddr::new(self.bind.unwrap_or(IpAddr::V4(server_ip)), 69)
    }
}

/// Runs `lmx tftpboot`; with `--json`, what ends it is an event too.
pub fn run(mut args: TftpbootArgs) -> miette::Result<()> {
    let started = Instant::now();
    if !args.json {
        return run_with(args, started, None);
    }
    args.no_console = true;
    let json = JsonLines::new(started);
    json.emit(
        "started",
        serde_json::json!({
            "command": "tftpboot",
            "board": args.board,
            "lmx": env!("CARGO_PKG_VERSION"),
        }),
    );
    let r = run_with(args, started, Some(json));
    match &r {
        Ok(()) => {}
        Err(e) => match e.downcast_ref::<lmx_session::StepFailure>() {
            Some(f) => json.failure(f),
            None => json.error(e),
        },
    }
    r
}

/// The plan as a `plan` event.
fn plan_event(json: &JsonLines, p: &Prepared) {
    use lmx_builder::plan::Step;
    let loads: Vec<_> = p
        .plan
        .loads()
        .map(|l| {
            serde_json::json!({
                "file": l.file,
                "addr": format!("{:#x}", l.addr),
                "size": l.size,
                "crc32": format!("{:08x}", l.crc32),
                // The plan's own serialisation: "crc32", "bootm-data-crc", "size-only".
                "check": l.check,
            })
        })
        .collect();
    let boot = p.plan.steps.iter().find_map(|s| match s {
        Step::Boot { command } => Some(command.clone()),
        _ => None,
    });
    json.emit(
        "plan",
        serde_json::json!({
            "board": p.plan.board,
            "loads": loads,
            "boot": boot,
            "bootargs": p.plan.bootargs,
            "notes": p.notes,
        }),
    );
}

fn run_with(args: TftpbootArgs, started: Instant, json: Option<JsonLines>) -> miette::Result<()> {
    let board = crate::cmd::boards::resolve_board(args.boards_dir.as_deref(), &args.board)?;
    let board_ip = args.net.board_ip(&board).ok_or_else(|| {
        miette!(
            help = "give --board-ip, or add network.ip to the board file",
            "board {}: no board address",
            board.name
        )
    })?;
    let is_virtual = board.is_virtual;
    if is_virtual && args.power.is_some() {
        return Err(miette!(
            help = "drop --power: lmx starts a virtual board's emulator itself, from power-on",
            "board {}: --power is for a real board's power switch",
            board.name
        ));
    }
    let arch = is_virtual.then(|| virt::arch(&board));
    let server_ip = args.net.server_ip(&board, Some(board_ip)).ok_or_else(|| {
        if is_virtual {
            miette!("virtual board {}: no network.server_ip", board.name)
        } else {
            miette!(
                help = "give --server-ip (this host's address on the board's network)",
                "no route toward {board_ip} and no network.server_ip in the board file"
            )
        }
    })?;
    let pty = match (is_virtual, args.port.as_deref()) {
        (true, Some("pty")) => true,
        (true, None) => false,
        (true, Some(other)) => {
            return Err(miette!(
                "--port {other}: a virtual board's console is `pty` or the default unix socket"
            ))
        }
        (false, _) => false,
    };
    let mut say = TermReporter::new(false);

    // A virtual board's network comes first, while this process has one thread.
    let prepared_virt = match (is_virtual, args.dry_run) {
        (true, false) => {
            // The MIPS twins' U-Boot may need building (from the package archive).
            let v = Virtual::prepare(&board, &mut say)?;
            virt::enter_network(server_ip, board.network.prefix_len.unwrap_or(24))?;
            Some(v)
        }
        _ => None,
    };

    let mut timings = Timings::default();
    let t = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("lmx-tftpboot-")
        .tempdir()
        .into_diagnostic()?;
    args.plan.check()?;
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => tmp.path().join("artifacts"),
    };
    let addrs = (board_ip, server_ip);
    let prepared = plan(&args, &board, arch, addrs, &out_dir)?;
    timings.0.push(("plan and artifacts".into(), t.elapsed()));
    for n in &prepared.notes {
        eprintln!("note: {n}");
    }
    let net = NetSetup {
        board_ip,
        server_ip,
        blocksize: board.uboot.tftp_blocksize,
        windowsize: board.uboot.tftp_windowsize,
    };

    if let Some(j) = &json {
        plan_event(j, &prepared);
    }
    if args.dry_run {
        match &json {
            Some(j) => j.emit("done", serde_json::json!({ "ok": true, "dry_run": true })),
            None => print_plan(&prepared, &net),
        }
        return Ok(());
    }

    let bind = args.net.listen(server_ip);
    let console = match prepared_virt {
        Some(virt) => ConsoleSpec::Virtual {
            virt,
            flash: Flash::Fresh,
            pty,
            network: true,
        },
        None => ConsoleSpec::Port(port_of(&board, args.port.as_deref())?),
    };
    let session = Session::open(
        SessionSpec {
            board: board.clone(),
            console,
            client: "lmx tftpboot".into(),
            serve: Some(Serve {
                listen: bind,
                board_ip,
                files: prepared.files.clone(),
                uploads: false,
            }),
            scratch: tmp,
        },
        &mut say,
    )?;
    timings.0.push((
        "start board, open console".into(),
        session.host.console_time(),
    ));

    let opts = RunOptions {
        timeout: Duration::from_secs(args.timeout),
        attach_timeout: Duration::from_secs(30),
        marker: args.marker.clone(),
        marker_timeout: Duration::from_secs(args.marker_timeout),
        show_boot: args.show_console || !args.no_console,
        listen: bind.to_string(),
        verify_in_place: args.verify_in_place,
    };
    let show = args.show_console || !args.no_console;
    let mut session = session;
    let events = session.host.take_events().expect("the session serves");
    let reporter: Box<dyn lmx_session::Reporter> = match json {
        Some(j) => Box::new(JsonReporter::new(j)),
        None => Box::new(TermReporter::new(show)),
    };
    let mut session = session
        .map(|shell| BootRunner::new(shell, events, opts, net, prepared.files.clone(), reporter));
    let (power_on, at_power_on) = (session.host.power_on(), session.host.at_power_on());
    let Session {
        driver: runner,
        host,
    } = &mut session;
    let power = args.power.as_deref().map(lmx_session::power::Power::new);
    let result = host.block_on(async {
        match &power {
            Some(p) => runner.attach_after_power_cycle(p).await?,
            None => runner.attach(power_on, at_power_on).await?,
        }
        runner.check_caps(&board, &prepared.plan).await?;
        runner.run(&prepared.plan).await
    });
    timings.0.extend(runner.timings.0.iter().cloned());
    timings
        .0
        .push(("command start to end".into(), started.elapsed()));
    let table = timings.table();
    if let Err(e) = result {
        eprint!("{table}");
        return Err(e.into());
    }
    eprintln!("==> booted: {} is up", board.name);
    match &json {
        Some(j) => {
            eprint!("{table}");
            let steps: Vec<_> = timings
                .0
                .iter()
                .map(|(s, d)| serde_json::json!({ "step": s, "seconds": d.as_secs_f64() }))
                .collect();
            j.emit(
                "done",
                serde_json::json!({
                    "ok": true,
                    "seconds": started.elapsed().as_secs_f64(),
                    "timings": steps,
                }),
            );
        }
        None => print!("{table}"),
    }
    if !args.watch.is_empty() {
        let mut base = watch::Snapshot::take(&args.watch);
        // Installed before "Ctrl-C stops" is printed, and kept for the
        // whole watch, so no Ctrl-C is lost or kills the process.
        let mut interrupt = host
            .block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            })
            .into_diagnostic()
            .wrap_err("installing the Ctrl-C handler")?;
        loop {
            eprintln!(
                "==> watching {} (Ctrl-C stops)",
                args.watch
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let io = runner.shell_mut().transport_mut();
            let Some((now, path)) = host
                .block_on(watch::wait_for_change(
                    io,
                    &args.watch,
                    &base,
                    &mut TermReporter::new(show),
                    &mut interrupt,
                ))
                .into_diagnostic()
                .wrap_err("watching the console")?
            else {
                eprintln!("==> stopped watching");
                break;
            };
            base = now;
            eprintln!(
                "==> {} changed: resetting the board ({}), planning and booting again",
                path.display(),
                match &power {
                    Some(p) => format!("power cycle: {}", p.cycle),
                    None => format!("{:?}", args.reset),
                }
            );
            // With a power switch, the board is cycled once the new plan is
            // ready, while the console is read (a bootdelay-0 board looks
            // for a key only once).
            if power.is_none() {
                host.block_on(watch::reset(
                    runner.shell_mut().transport_mut(),
                    &args.reset,
                    &mut TermReporter::new(show),
                ))
                .into_diagnostic()
                .wrap_err("resetting the board")?;
            }
            let cycle = Instant::now();
            let again = match plan(&args, &board, arch, addrs, &out_dir) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e:?}");
                    continue;
                }
            };
            if again.files != prepared.files {
                return Err(miette!(
                    help = "restart lmx tftpboot",
                    "the new plan serves other files ({:?}) than the running server",
                    again.files
                ));
            }
            runner.timings = Timings::default();
            // A warm reset keeps RAM: what still matches in place is not
            // sent again (each skip proven by U-Boot's crc32).
            runner.set_verify_in_place(true);
            let result = host.block_on(async {
                match &power {
                    Some(p) => runner.attach_after_power_cycle(p).await?,
                    None => runner.attach(cycle, false).await?,
                }
                runner.run(&again.plan).await
            });
            let table = runner.timings.table();
            match result {
                Ok(()) => {
                    eprintln!("==> booted again: {} is up", board.name);
                    print!("{table}");
                }
                Err(e) => {
                    eprint!("{table}");
                    eprintln!("{:?}", miette::Report::new(e));
                    eprintln!("==> fix the build; lmx boots again on the next change");
                }
            }
        }
    }
    if !args.no_console && args.watch.is_empty() {
        // The same terminal as `lmx console`: its keys, toggles and log.
        let name = format!("console of {}", board.name);
        let Session { driver: port, host } =
            session.map(|runner| runner.into_shell().into_transport());
        host.block_on(super::console::attach_terminal(
            port,
            &name,
            &super::console::TermOptions::defaults(),
        ))?;
    }
    Ok(())
}

/// The console of a real board: `--port`, which it needs.
pub(crate) fn port_of(board: &Board, port: Option<&str>) -> miette::Result<String> {
    port.map(str::to_string).ok_or_else(|| {
        miette!(
            help =
                "e.g. --port /dev/ttyUSB0, --port unix:/tmp/console.sock or --port tcp:host:2000",
            "board {}: which console? give --port",
            board.name
        )
    })
}

fn plan(
    args: &TftpbootArgs,
    board: &Board,
    arch: Option<lmx_testbed::Arch>,
    (board_ip, server_ip): (Ipv4Addr, Ipv4Addr),
    out: &Path,
) -> miette::Result<Prepared> {
    if let Some(m) = &args.manifest {
        return Ok(saved::load(m)?.for_board(&board.name, m)?);
    }
    let mut kernel = args.kernel.clone();
    let mut rootfs = args.rootfs.clone();
    let mut dtb = args.plan.dtb.clone();
    if let Some(dir) = &args.from {
        if kernel.is_none() && rootfs.is_none() && dtb.is_none() {
            if let Some(p) = saved::in_dir(dir) {
                return Ok(saved::load(&p)?);
            }
        }
        // The rule `lmx build --from` follows; flags given beside it win.
        let (k, d, r) =
            build::inputs_from_dir(board, dir).map_err(|e| miette!(help = hint(&e), "{e}"))?;
        kernel = kernel.or(Some(k));
        rootfs = rootfs.or(Some(r));
        dtb = dtb.or(d);
    }
    let mut append = args.plan.append.clone();
    let mut generated_dtb = None;
    if let Some(arch) = arch {
        if kernel.is_none() {
            kernel = Some(virt::default_kernel(arch, &mut TermReporter::new(false))?);
        }
        if rootfs.is_none() {
            eprintln!("==> test rootfs (busybox, or a static /init on big-endian MIPS; /init prints {DEFAULT_MARKER})");
            rootfs = Some(virt::default_rootfs(arch)?);
            // The test rootfs's /init is a script the kernel does not look for by itself.
            let mut a = append.unwrap_or_default();
            if !a.split_whitespace().any(|w| w.starts_with("init=")) {
                a = format!("{a} init=/init").trim().to_string();
            }
            append = Some(a);
        }
        if dtb.is_none() {
            dtb = virt::default_dtb(arch)?;
            generated_dtb = dtb.clone();
        }
    }
    let kernel = kernel.ok_or_else(|| {
        miette!(
            help = "give --kernel FILE, --from DIR or --manifest FILE",
            "no kernel"
        )
    })?;
    let rootfs = rootfs.ok_or_else(|| {
        miette!(
            help = "give --rootfs FILE, --from DIR or --manifest FILE",
            "no rootfs"
        )
    })?;
    let mut req = BuildRequest::new(board.clone(), kernel, dtb, rootfs);
    args.plan.apply(&mut req);
    req.append = append;
    // The plan carries the run's addresses, so it is the plan `lmx build
    // --ipaddr --serverip` makes from the same inputs.
    req.ipaddr = Some(board_ip);
    req.serverip = Some(server_ip);
    let prepared =
        saved::build_with_plan(&req, out).map_err(|e| miette!(help = hint(&e), "{e}"))?;
    // QEMU's own device tree, unpatched, is kept beside the artifacts (as
    // `virt.dtb`): the input to give `lmx build` or a later run.
    if let Some(d) = generated_dtb {
        let to = out.join("virt.dtb");
        std::fs::copy(&d, &to)
            .into_diagnostic()
            .wrap_err_with(|| format!("copying {} to {}", d.display(), to.display()))?;
    }
    Ok(prepared)
}

fn print_plan(p: &Prepared, net: &NetSetup) {
    println!("{}", p.plan.render());
    println!("Network settings, sent first (they take the place of the plan's own):");
    for (name, value) in net.vars() {
        println!("  setenv {name} {value}");
    }
    println!("\nServed over TFTP (only to {}):", net.board_ip);
    for (name, path) in &p.files {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!("  {name:<24} {size:>10} bytes  {}", path.display());
    }
    println!("\n{}", p.plan.verification_summary());
}
