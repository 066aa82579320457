//! `lmx-testbed-run`: boot the virtual board from RAM over TFTP, in a
//! private network namespace, and report what the console showed.
//!
//! ```text
//! lmx-testbed-run --arch aarch64 --serve DIR \
//!     --load 0x44000000:rootfs.squashfs --load 0x440d0000:board.dtb \
//!     --load 0x40400000:Image --boot 'booti 0x40400000 - 0x440d0000' \
//!     [--expect LMX-USERLAND-READY] [--then 'cat /proc/mtd']... \
//!     [--host 192.168.77.1/24] [--board-ip 192.168.77.2] [--tap tap0] \
//!     [--cmd 'U-Boot command']... [--console unix|pty] [--pflash DIR] \
//!     [--uboot FILE] [--timeout SECS] [--quiet]
//! ```
//!
//! `--arch mips|mipsel` runs a MIPS twin (QEMU malta) instead: U-Boot from
//! a 4 MiB flash image (in `--pflash DIR`, or a temporary one), the LZMA
//! build of `testbed/uboot.sh` unless `--uboot FILE` names another (e.g.
//! Debian's `/usr/lib/u-boot/maltael/u-boot.bin`), prompt `malta # `.
//!
//! In order: enter a private network namespace with a tap (this process is
//! still single-threaded then), serve DIR with lmx-tftpd on the host
//! address (only the board may fetch), start QEMU on the tap with a
//! unix-socket (or pty) console, U-Boot from `-bios` (or from pflash files
//! in DIR, kept between runs so `saveenv` persists), stop autoboot, set `ipaddr`/`serverip`, run each
//! `--cmd`, load each `--load ADDR:FILE` and check the byte count and the
//! U-Boot `crc32` against the file, run `--boot`, wait for `--expect`, run
//! each `--then` shell command. The console is copied to stdout as it
//! arrives; step timings go to stderr at the end. Exit status 0 only when
//! everything matched. QEMU and the namespace end with the process.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net};
use lmx_testbed::netns::default_board_ip;
use lmx_testbed::rootfs::MARKER;
use lmx_testbed::{
    enter_private_netns, malta, uboot, uboot_firmware, Arch, Console, Error, Firmware, Pflash, Tap,
    Vm, VmConfig,
};
use lmx_tftpd::policy::PolicySpec;
use lmx_tftpd::{Policy, Server, ServerConfig};

struct Args {
    arch: Arch,
    serve: PathBuf,
    loads: Vec<(String, String)>,
    cmds: Vec<String>,
    boot: Option<String>,
    expect: String,
    then: Vec<String>,
    host: Ipv4Net,
    board_ip: Option<std::net::Ipv4Addr>,
    tap: String,
    timeout: Duration,
    quiet: bool,
    pty: bool,
    pflash: Option<PathBuf>,
    uboot: Option<PathBuf>,
    netns_exec: Vec<String>,
}

const USAGE: &str = "usage: lmx-testbed-run --arch aarch64|armv7l|mips|mipsel --serve DIR [--load ADDR:FILE]... [--boot CMD] [--expect TEXT] [--then SHELL-CMD]... [--cmd U-BOOT-CMD]... [--console unix|pty] [--pflash DIR] [--uboot FILE] [--host IP/PREFIX] [--board-ip IP] [--tap NAME] [--timeout SECS] [--quiet] [--netns-exec SHELL-CMD]...";

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        arch: Arch::Aarch64,
        serve: PathBuf::new(),
        loads: Vec::new(),
        cmds: Vec::new(),
        boot: None,
        expect: MARKER.into(),
        then: Vec::new(),
        host: "192.168.77.1/24".parse().expect("literal"),
        board_ip: None,
        tap: "tap0".into(),
        timeout: Duration::from_secs(60),
        quiet: false,
        netns_exec: Vec::new(),
        pty: false,
        pflash: None,
        uboot: None,
    };
    while let Some(flag) = it.next() {
        if flag == "--quiet" {
            a.quiet = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--arch" => a.arch = v.parse()?,
            "--serve" => a.serve = v.into(),
            "--load" => {
                let (addr, file) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--load {v:?}: expected ADDR:FILE"))?;
                a.loads.push((addr.into(), file.into()));
            }
            "--cmd" => a.cmds.push(v),
            "--netns-exec" => a.netns_exec.push(v),
            "--boot" => a.boot = Some(v),
            "--expect" => a.expect = v,
            "--then" => a.then.push(v),
            "--host" => a.host = v.parse().map_err(|e| format!("--host {v:?}: {e}"))?,
            "--board-ip" => {
                a.board_ip = Some(v.parse().map_err(|e| format!("--board-ip {v:?}: {e}"))?)
            }
            "--tap" => a.tap = v,
            "--console" => {
                a.pty = match v.as_str() {
                    "pty" => true,
                    "unix" => false,
                    _ => return Err(format!("--console {v:?}: expected unix or pty")),
                }
            }
            "--pflash" => a.pflash = Some(v.into()),
            "--uboot" => a.uboot = Some(v.into()),
            "--timeout" => {
                a.timeout =
                    Duration::from_secs(v.parse().map_err(|e| format!("--timeout {v:?}: {e}"))?)
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if a.serve.as_os_str().is_empty() {
        return Err(format!("--serve DIR is required\n{USAGE}"));
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // First, while the process has one thread.
    if let Err(e) = enter_private_netns(args.host, &args.tap) {
        eprintln!("lmx-testbed-run: {e}");
        return ExitCode::FAILURE;
    }
    for c in &args.netns_exec {
        match std::process::Command::new("sh").arg("-c").arg(c).status() {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("lmx-testbed-run: --netns-exec {c:?} failed: {s}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("lmx-testbed-run: --netns-exec {c:?}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lmx-testbed-run: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Step timings, printed at the end.
struct Timings(Vec<(String, Duration)>);

impl Timings {
    fn add(&mut self, step: impl Into<String>, since: Instant) {
        self.0.push((step.into(), since.elapsed()));
    }
    fn print(&self) {
        eprintln!("lmx-testbed-run: timings");
        for (step, d) in &self.0 {
            eprintln!("  {step:<40} {:>8.3} s", d.as_secs_f64());
        }
    }
}

fn run(args: &Args) -> Result<(), Error> {
    let board_ip = args.board_ip.unwrap_or_else(|| default_board_ip(args.host));
    let host_ip = args.host.addr();

    // The TFTP server, in this namespace, only for the board.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(Error::io("starting the async runtime"))?;
    let policy = Policy::new(PolicySpec {
        roots: vec![args.serve.clone()],
        allow: vec![IpNet::from(IpAddr::V4(board_ip))],
        ..PolicySpec::default()
    })
    .map_err(|e| {
        Error::io(format!("serving {}", args.serve.display()))(std::io::Error::other(e.to_string()))
    })?;
    let config = ServerConfig {
        bind: vec![SocketAddr::new(IpAddr::V4(host_ip), 69)],
        ..ServerConfig::default()
    };
    let server = rt
        .block_on(Server::bind(config, policy))
        .map_err(|e| Error::io("starting the TFTP server")(std::io::Error::other(e.to_string())))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = rt.spawn(server.run(async {
        let _ = stop_rx.await;
    }));

    // The board, on the tap, console on a unix socket.
    let dir = tempfile::tempdir().map_err(Error::io("creating a temporary directory"))?;
    let console = if args.pty {
        Console::Pty
    } else {
        Console::Unix(dir.path().join("console.sock"))
    };
    let mut cfg = VmConfig::new(args.arch, console);
    let uboot = match &args.uboot {
        Some(p) => p.clone(),
        None => uboot_firmware(args.arch)?,
    };
    if args.arch.is_malta() {
        let flash_dir = args.pflash.clone().unwrap_or(dir.path().join("flash"));
        let flash = malta::create_flash(&flash_dir, args.arch, &uboot, true)?;
        cfg = VmConfig::malta(args.arch, cfg.console, flash);
    } else if let Some(flash_dir) = &args.pflash {
        cfg.firmware = Firmware::Pflash(Pflash::create(flash_dir, &uboot, true)?);
    } else if args.uboot.is_some() {
        cfg.firmware = Firmware::Bios(uboot);
    }
    cfg.network = Some(Tap {
        name: args.tap.clone(),
    });
    let started = Instant::now();
    let vm = Vm::start(&cfg)?;
    let mut con = vm.open_console()?;
    if !args.quiet {
        con.tee(std::io::stdout());
    }
    let mut t = Timings(Vec::new());
    let result = drive(args, &mut con, board_ip, &mut t, started);
    t.print();
    drop(vm);
    let _ = stop_tx.send(());
    if let Ok(summaries) = rt.block_on(served) {
        eprintln!(
            "lmx-testbed-run: {} TFTP transfer(s) served",
            summaries.len()
        );
        for s in &summaries {
            eprintln!("  {s}");
        }
    }
    result
}

fn drive(
    args: &Args,
    con: &mut lmx_testbed::ConsoleStream,
    board_ip: std::net::Ipv4Addr,
    t: &mut Timings,
    started: Instant,
) -> Result<(), Error> {
    let prompt = args.arch.uboot_prompt();
    uboot::interrupt_autoboot_at(con, prompt, Duration::from_secs(30))?;
    t.add("power-on to U-Boot prompt", started);
    let at_prompt = Instant::now();
    uboot::run_at(
        con,
        prompt,
        &format!(
            "setenv ipaddr {board_ip}; setenv serverip {}",
            args.host.addr()
        ),
        Duration::from_secs(5),
    )?;
    for c in &args.cmds {
        let s = Instant::now();
        uboot::run_at(con, prompt, c, args.timeout)?;
        t.add(c.clone(), s);
    }
    for (addr, file) in &args.loads {
        let s = Instant::now();
        let path = args.serve.join(file);
        let bytes =
            std::fs::read(&path).map_err(Error::io(format!("reading {}", path.display())))?;
        let cmd = format!("tftpboot {addr} {file}");
        let out = uboot::run_at(con, prompt, &cmd, args.timeout)?;
        let got = uboot::bytes_transferred(&out);
        if got != Some(bytes.len() as u64) {
            return Err(Error::UBoot {
                command: cmd,
                reason: format!("expected {} bytes, U-Boot reports {got:?}", bytes.len()),
                output: out,
            });
        }
        let cmd = format!("crc32 {addr} ${{filesize}}");
        let out = uboot::run_at(con, prompt, &cmd, Duration::from_secs(10))?;
        let want = crc32fast::hash(&bytes);
        if uboot::crc32_result(&out) != Some(want) {
            return Err(Error::UBoot {
                command: cmd,
                reason: format!("expected crc32 {want:08x} of {}", path.display()),
                output: out,
            });
        }
        t.add(format!("load {file} ({} bytes, crc32 ok)", bytes.len()), s);
    }
    let Some(boot) = &args.boot else {
        t.add("U-Boot prompt to done", at_prompt);
        return Ok(());
    };
    let s = Instant::now();
    con.send_line(boot)?;
    let failures = [
        "Kernel panic",
        "U-Boot 20",
        "## Error",
        "Bad Linux",
        "ERROR: ",
        "Unimplemented compression",
    ];
    // ARM U-Boot says "Starting kernel"; MIPS U-Boot jumps without a word
    // after "Uncompressing Kernel Image", so the kernel's banner counts too.
    let mut needles = vec!["Starting kernel", "Linux version"];
    needles.extend(failures);
    let (i, out) = con.expect_any(&needles, Duration::from_secs(20))?;
    if i > 1 {
        // Let the failure's line arrive whole (e.g. "... type 3").
        let _ = con.expect("\n", Duration::from_secs(2));
        return Err(Error::UBoot {
            command: boot.clone(),
            reason: format!("{:?} before the kernel started", needles[i]),
            output: out,
        });
    }
    t.add("boot command to kernel start", s);
    let k = Instant::now();
    let mut needles = vec![args.expect.as_str()];
    needles.extend(failures);
    let (i, out) = con.expect_any(&needles, args.timeout)?;
    if i != 0 {
        let _ = con.expect("\n", Duration::from_secs(2));
        return Err(Error::UBoot {
            command: boot.clone(),
            reason: format!("{:?} before {:?}", needles[i], args.expect),
            output: out,
        });
    }
    t.add("kernel start to userland marker", k);
    t.add("U-Boot prompt to userland marker", at_prompt);
    t.add("power-on to userland marker", started);
    con.expect("\n", Duration::from_secs(5))?;
    for (n, c) in args.then.iter().enumerate() {
        // The marker is typed with quotes so its echo never matches.
        let end = format!("LMX-THEN-{n}-DONE");
        con.send_line(&format!("{c}; echo 'LMX-THEN-{n}-''DONE'"))?;
        con.expect(&end, Duration::from_secs(10))?;
    }
    Ok(())
}
