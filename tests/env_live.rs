//! `lmx env` against the real U-Boot of the virtual board (Debian's
//! u-boot-qemu 2023.01 under QEMU, environment at the start of pflash
//! bank 1, `flash1.img`).
//!
//! The oracle on the U-Boot side is the test bed's own small console
//! (`lmx_testbed::uboot`: type a line, read to the next prompt), not
//! lmx's `UBootShell`, so a shared mistake cannot hide:
//!
//! - `setenv` + `saveenv` typed in U-Boot, then `lmx env print --image
//!   flash1.img --board qemu-aarch64` shows the value;
//! - `lmx env set --image flash1.img --board qemu-aarch64`, then a boot
//!   loads the environment without "bad CRC" and `printenv` shows it;
//! - `lmx env set --board qemu-aarch64 --flash-dir D --save` (live), then
//!   a fresh boot from the same flash shows the value: spaces, quotes,
//!   `$`, `;`, `#`, a backslash; without `--save` nothing persists;
//! - the same through `--port` for a board left at its prompt (a board
//!   file without `virtual`), directly and through the share socket of
//!   an `lmx console` holding the port (in tmux);
//! - the big-endian MIPS twin (`qemu-mips`): saveenv read from its flash
//!   file, an lmx-written file loaded by U-Boot, and the byte order matters;
//! - values a dialect cannot take are refused with the reason before any
//!   console is opened or QEMU started.
//!
//! Needs QEMU and u-boot-qemu (`scripts/deps.sh virtual`), the MIPS
//! twin's U-Boot (`testbed/uboot.sh`, built and cached on first use) and
//! tmux; a missing piece fails with a hint, nothing is skipped. One VM
//! at a time, shared with the other virtual-board tests through
//! `tests/common`'s in-process mutex and host-wide `flock`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{one_vm, s, Tmux};

use lmx_testbed::{uboot, Arch, Console, ConsoleStream, Firmware, Pflash, Vm, VmConfig};

/// QEMU and U-Boot must be there: a clear failure, never a silent pass.
fn require_board() -> PathBuf {
    if let Err(e) = lmx_testbed::find_qemu(Arch::Aarch64) {
        panic!("the virtual-board tests need QEMU (scripts/deps.sh virtual): {e}");
    }
    lmx_testbed::uboot_firmware(Arch::Aarch64)
        .unwrap_or_else(|e| panic!("the virtual-board tests need u-boot-qemu: {e}"))
}

fn lmx(args: &[&str]) -> Output {
    lmx_with(args, &[])
}

fn lmx_with(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lmx"))
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, *v)))
        .env("NO_COLOR", "1")
        .env_remove("LMX_LOG")
        .env_remove("LMX_BOARDS_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("running lmx")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let o = lmx(args);
    assert!(o.status.success(), "lmx {args:?} failed:\n{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a failing lmx; its stderr with miette's line wrapping and
/// gutter undone (words joined by single blanks).
fn fails(args: &[&str]) -> String {
    let o = lmx(args);
    assert!(
        !o.status.success(),
        "lmx {args:?} should fail:\n{}",
        text(&o)
    );
    common::flat(&String::from_utf8_lossy(&o.stderr))
}

/// `lmx env CMD --image IMAGE --board qemu-aarch64 NAME` (offline, on
/// the flash file); its stdout.
fn offline(cmd: &str, image: &str, name: &str) -> String {
    ok(&[
        "env",
        cmd,
        "--image",
        image,
        "--board",
        "qemu-aarch64",
        name,
    ])
}

/// The test bed's U-Boot on pflash files in `dir` (kept between boots).
struct Board {
    vm: Vm,
    con: ConsoleStream,
    /// What U-Boot printed before the autoboot countdown.
    banner: String,
}

fn boot(dir: &Path, flash: &Pflash) -> Board {
    let mut cfg = VmConfig::new(Arch::Aarch64, Console::Unix(dir.join("console.sock")));
    cfg.firmware = Firmware::Pflash(flash.clone());
    let vm = Vm::start(&cfg).unwrap();
    let mut con = vm.open_console().unwrap();
    let banner = uboot::interrupt_autoboot(&mut con, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nQEMU stderr: {}", vm.stderr()));
    Board { vm, con, banner }
}

impl Board {
    fn run(&mut self, command: &str) -> String {
        uboot::run(&mut self.con, command, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{command}: {e}"))
    }

    /// `printenv NAME` as U-Boot prints it: `Some(value)` or `None`.
    fn printenv(&mut self, name: &str) -> Option<String> {
        match uboot::run(
            &mut self.con,
            &format!("printenv {name}"),
            Duration::from_secs(5),
        ) {
            Ok(out) => {
                let line = out.lines().next().unwrap_or("").trim_end_matches('\r');
                let value = line
                    .strip_prefix(&format!("{name}="))
                    .unwrap_or_else(|| panic!("printenv {name} printed {out:?}"));
                Some(value.to_string())
            }
            Err(e) if e.to_string().contains("not defined") => None,
            Err(e) => panic!("printenv {name}: {e}"),
        }
    }

    fn power_off(mut self) {
        self.con.send_line("poweroff").unwrap();
        let _ = self.vm.wait_exit(Duration::from_secs(10));
    }
}

const GOOD_ENV: &str = "Loading Environment from Flash... OK";
const BAD_CRC: &str = "bad CRC, using default environment";

#[test]
fn saveenv_in_uboot_is_read_from_the_flash_file() {
    let _one = one_vm();
    let uboot_bin = require_board();
    let dir = tempfile::tempdir().unwrap();
    let flash = Pflash::create(&dir.path().join("flash"), &uboot_bin, true).unwrap();

    let mut b = boot(dir.path(), &flash);
    // The erased bank: U-Boot says so and uses its default environment.
    assert!(b.banner.contains(BAD_CRC), "banner: {}", b.banner);
    b.run("setenv lmxsaved 'one  two;three $x \"q\"'");
    let out = b.run("saveenv");
    assert!(out.contains("OK"), "saveenv said: {out}");
    b.power_off();

    let image = s(&flash.flash1);
    let out = offline("print", image, "lmxsaved");
    assert_eq!(out, "lmxsaved=one  two;three $x \"q\"\n");
    // The whole listing holds U-Boot's defaults too.
    let all = ok(&["env", "print", "--image", image, "--board", "qemu-aarch64"]);
    assert!(all.contains("\nbootcmd=run distro_bootcmd\n"), "{all}");
}

#[test]
fn an_image_lmx_wrote_boots_without_bad_crc() {
    let _one = one_vm();
    let uboot_bin = require_board();
    let dir = tempfile::tempdir().unwrap();
    let flash = Pflash::create(&dir.path().join("flash"), &uboot_bin, true).unwrap();
    let image = s(&flash.flash1);
    let loc = ["--image", image, "--board", "qemu-aarch64"];

    // A new environment in the erased bank: needs --create.
    let set = |name: &str, value: &str, extra: &[&str]| {
        let mut args = vec!["env", "set"];
        args.extend(loc);
        args.extend(extra);
        args.extend([name, value]);
        let o = lmx(&args);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    set("bootdelay", "1", &["--create"]);
    set("lmxmulti", "line one\nline=two", &[]);
    set("lmxoff", "a  b;c $d ${e} 'f' \"g\"", &[]);
    let warned = set("lmxslash", "p\\q\\\\r", &[]);
    assert!(warned.contains("drops a backslash"), "{warned}");

    let mut b = boot(dir.path(), &flash);
    assert!(b.banner.contains(GOOD_ENV), "banner: {}", b.banner);
    assert!(!b.banner.contains(BAD_CRC), "banner: {}", b.banner);
    assert_eq!(b.printenv("bootdelay").as_deref(), Some("1"));
    assert_eq!(
        b.printenv("lmxoff").as_deref(),
        Some("a  b;c $d ${e} 'f' \"g\"")
    );
    // What the warning says: U-Boot unescapes stored backslashes.
    assert_eq!(b.printenv("lmxslash").as_deref(), Some("pq\\r"));
    // Nothing else was in the new environment.
    assert_eq!(b.printenv("bootcmd"), None);
    b.power_off();

    // A value with a newline: U-Boot prints it raw over two lines; the
    // live listing joins them again and prints what the offline one does.
    let fd = dir.path().join("flash");
    let live = |names: &[&str]| {
        let mut args = vec![
            "env",
            "print",
            "--board",
            "qemu-aarch64",
            "--flash-dir",
            s(&fd),
        ];
        args.extend(names);
        ok(&args)
    };
    let offline = |names: &[&str]| {
        let mut args = vec!["env", "print"];
        args.extend(loc);
        args.extend(names);
        ok(&args)
    };
    let all = live(&[]);
    assert!(all.contains("\nlmxmulti=line one\\\nline=two\n"), "{all}");
    assert!(all.contains("\nlmxoff=a  b;c $d ${e} 'f' \"g\"\n"), "{all}");
    // Mainline escapes its listing (`pq\\r`); lmx reads such values again.
    assert!(all.contains("\nlmxslash=pq\\r\n"), "{all}");
    let names = ["lmxmulti", "lmxoff", "bootdelay"];
    assert_eq!(live(&names), offline(&names));
}

#[test]
fn live_set_with_save_survives_a_fresh_boot() {
    let _one = one_vm();
    let uboot_bin = require_board();
    let dir = tempfile::tempdir().unwrap();
    let flash_dir = dir.path().join("flash");
    let fd = s(&flash_dir);
    let values: &[(&str, &str)] = &[
        ("lmxspace", "  two  blanks, ends with one "),
        ("lmxquote", "it's \"quoted\""),
        ("lmxdollar", "$HOME ${bootcmd} $(x)"),
        ("lmxsemi", "a; echo injected; b"),
        ("lmxhash", "# not a comment"),
        ("lmxslash", "C:\\dir\\\\x"),
    ];
    for (name, value) in values {
        let o = lmx(&[
            "env",
            "set",
            "--board",
            "qemu-aarch64",
            "--flash-dir",
            fd,
            "--save",
            name,
            value,
        ]);
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        assert!(t.contains("(read back)"), "{t}");
        assert!(t.contains("saved (saveenv)"), "{t}");
    }
    // Read back live, through lmx (a boot of its own).
    let got = ok(&[
        "env",
        "get",
        "--board",
        "qemu-aarch64",
        "--flash-dir",
        fd,
        "lmxsemi",
    ]);
    assert_eq!(got, "a; echo injected; b\n");
    let missing = fails(&[
        "env",
        "get",
        "--board",
        "qemu-aarch64",
        "--flash-dir",
        fd,
        "lmxnosuch",
    ]);
    assert!(missing.contains("is not set in U-Boot"), "{missing}");
    // Without --save the value is gone after the power-off.
    let o = lmx(&[
        "env",
        "set",
        "--board",
        "qemu-aarch64",
        "--flash-dir",
        fd,
        "lmxunsaved",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not saved"), "{}", text(&o));
    // The whole listing, live.
    let all = ok(&["env", "print", "--board", "qemu-aarch64", "--flash-dir", fd]);
    assert!(all.contains("\nlmxhash=# not a comment\n"), "{all}");
    assert!(all.contains("\nbootcmd=run distro_bootcmd\n"), "{all}");

    // A fresh boot from the same flash files, read by the test bed's console.
    let flash = Pflash::create(&flash_dir, &uboot_bin, true).unwrap();
    let mut b = boot(dir.path(), &flash);
    assert!(b.banner.contains(GOOD_ENV), "banner: {}", b.banner);
    for (name, value) in values {
        assert_eq!(b.printenv(name).as_deref(), Some(*value), "{name}");
    }
    assert_eq!(b.printenv("lmxunsaved"), None);
    b.power_off();

    // Offline, the flash file holds U-Boot's stored form: a backslash
    // is stored doubled (hexport), everything else as is.
    let get = |name: &str| offline("get", s(&flash.flash1), name);
    assert_eq!(get("lmxquote"), "it's \"quoted\"\n");
    assert_eq!(get("lmxdollar"), "$HOME ${bootcmd} $(x)\n");
    assert_eq!(get("lmxslash"), "C:\\\\dir\\\\\\\\x\n");
}

/// Refusals come before any console is opened or QEMU started: the
/// port does not exist, and no "starting virtual board" line appears.
#[test]
fn unsafe_values_are_refused_per_dialect_before_touching_the_board() {
    // Old builds (quotes not special, braces required): GL's MT76xx
    // U-Boot 1.1.3 (gl-mt300n-v2).
    let old = |value: &str| {
        fails(&[
            "env",
            "set",
            "--board",
            "gl-mt300n-v2",
            "--port",
            "/dev/lmx-no-such-port",
            "x",
            value,
        ])
    };
    for (value, why) in [
        ("a;b", "`;` separates commands"),
        ("${bootcmd}", "expand variables"),
        ("it's", "quotes and backslashes"),
        ("a  b", "blanks are collapsed"),
    ] {
        let e = old(value);
        assert!(e.contains(why), "{value:?}: {e}");
        assert!(!e.contains("lmx-no-such-port"), "{value:?}: {e}");
    }
    // What those builds take as is, shown without sending.
    let o = lmx(&[
        "env",
        "set",
        "--board",
        "gl-mt300n-v2",
        "--port",
        "/dev/lmx-no-such-port",
        "--dry-run",
        "bootargs",
        "console=ttyS0,115200 $notexpanded \"q\"",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("setenv bootargs console=ttyS0,115200 $notexpanded \"q\""),
        "{}",
        text(&o)
    );

    // Hush (the virtual board): only what cannot be typed, or is too long.
    for (value, why) in [
        ("a\nb", "line break"),
        ("", "empty value deletes"),
        (&"v".repeat(600) as &str, "CONFIG_SYS_CBSIZE 512"),
    ] {
        let e = fails(&["env", "set", "--board", "qemu-aarch64", "x", value]);
        assert!(e.contains(why), "{value:?}: {e}");
        assert!(!e.contains("starting virtual board"), "{value:?}: {e}");
    }
    // A board loaded with -bios has no flash to save into.
    let e = fails(&["env", "set", "--board", "qemu-armv7l", "--save", "x", "1"]);
    assert!(e.contains("no flash to save the environment in"), "{e}");
    assert!(!e.contains("starting virtual board"), "{e}");
}

/// A boards directory with `qemu-serial`: qemu-aarch64 as a plain serial
/// board (no `virtual`, no `[qemu]`), so lmx opens `--port` itself.
fn serial_board(dir: &Path) -> PathBuf {
    let shown = ok(&["boards", "show", "qemu-aarch64"]);
    // The first line of the file ensures `\nname =` finds only the board's name.
    let mut toml = String::from("# qemu-aarch64 as a serial board\n");
    for line in shown.lines() {
        if line.starts_with("[qemu]") {
            break;
        }
        if line.starts_with('#') || line.starts_with("extends") || line.starts_with("virtual") {
            continue;
        }
        if line.starts_with("name =") && !toml.contains("\nname =") {
            toml.push_str("name = \"qemu-serial\"\n");
            continue;
        }
        toml.push_str(line);
        toml.push('\n');
    }
    let boards = dir.join("boards");
    std::fs::create_dir_all(&boards).unwrap();
    std::fs::write(boards.join("qemu-serial.toml"), toml).unwrap();
    boards
}

/// The real-board path (`--port`, the board left at its prompt): the
/// virtual board's U-Boot on a unix socket, described by a board file
/// that is not virtual, so lmx opens the port instead of starting QEMU.
#[test]
fn a_board_at_its_prompt_over_a_port() {
    let _one = one_vm();
    let uboot_bin = require_board();
    let dir = tempfile::tempdir().unwrap();
    let boards = serial_board(dir.path());
    let bd = s(&boards);

    let flash = Pflash::create(&dir.path().join("flash"), &uboot_bin, true).unwrap();
    let mut b = boot(dir.path(), &flash);
    // Leave U-Boot at its prompt and hang up, as a person would.
    drop(b.con);
    let port = format!("unix:{}", dir.path().join("console.sock").display());
    let o = lmx(&[
        "env",
        "set",
        "--boards-dir",
        bd,
        "--board",
        "qemu-serial",
        "--port",
        &port,
        "--save",
        "lmxport",
        "over the port; $x",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(!t.contains("starting virtual board"), "{t}");
    assert!(t.contains("saved (saveenv)"), "{t}");
    let got = ok(&[
        "env",
        "get",
        "--boards-dir",
        bd,
        "--board",
        "qemu-serial",
        "--port",
        &port,
        "lmxport",
    ]);
    assert_eq!(got, "over the port; $x\n");
    // The board is still at its prompt, and holds the value.
    b.con = b.vm.open_console().unwrap();
    assert_eq!(b.printenv("lmxport").as_deref(), Some("over the port; $x"));
    b.power_off();
    let stored = offline("get", s(&flash.flash1), "lmxport");
    assert_eq!(stored, "over the port; $x\n");
}

/// Kills a helper process on drop.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A board in a lab: its console published by a real ser2net with RFC
/// 2217 (`telnet(rfc2217)`), as labgrid's exporters do. The chain is
/// lmx ⇄ ser2net ⇄ a pty (socat) ⇄ QEMU's console socket ⇄ U-Boot, and
/// `lmx env` works through `rfc2217://` as through a local port.
#[test]
fn a_board_behind_ser2net_over_rfc2217() {
    let _one = one_vm();
    common::need("ser2net", "run `scripts/deps.sh test` (ser2net, socat)");
    common::need("socat", "run `scripts/deps.sh test` (ser2net, socat)");
    let uboot_bin = require_board();
    let dir = tempfile::tempdir().unwrap();
    let boards = serial_board(dir.path());
    let bd = s(&boards);
    let flash = Pflash::create(&dir.path().join("flash"), &uboot_bin, true).unwrap();
    let b = boot(dir.path(), &flash);
    drop(b.con);

    let pty = dir.path().join("uart");
    let sock = dir.path().join("console.sock");
    let _socat = Reap(
        std::process::Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", pty.display()))
            .arg(format!("unix-connect:{}", sock.display()))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = std::time::Instant::now();
    while !pty.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "socat made no pty");
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("ser2net.yaml");
    std::fs::write(
        &cfg,
        format!(
            "connection: &board\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n  connector: serialdev,{},9600n81,local\n",
            pty.display()
        ),
    )
    .unwrap();
    let _ser2net = Reap(
        std::process::Command::new("ser2net")
            .args(["-n", "-c"])
            .arg(&cfg)
            .arg("-P")
            .arg(dir.path().join("ser2net.pid"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "ser2net did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));

    let url = format!("rfc2217://127.0.0.1:{port}");
    let o = lmx(&[
        "env",
        "set",
        "--boards-dir",
        bd,
        "--board",
        "qemu-serial",
        "--port",
        &url,
        "lmxlab",
        "through ser2net; \\ $y",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let got = ok(&[
        "env",
        "get",
        "--boards-dir",
        bd,
        "--board",
        "qemu-serial",
        "--port",
        &url,
        "lmxlab",
    ]);
    assert_eq!(got, "through ser2net; \\ $y\n");
    // (That ser2net applies the requested baud rate is checked while the
    // connection is open, in console/tests/rfc2217.rs: once lmx has gone,
    // ser2net restores the device's own settings, so reading them here
    // would race with it.)
}

/// The big-endian MIPS twin (`qemu-mips`, malta, U-Boot 2023.01 built by
/// `testbed/uboot.sh`): the environment's CRC is stored big-endian, in
/// the one 4 MiB flash file at 0x3E0000. Both directions against U-Boot.
#[test]
fn big_endian_mips_twin_round_trip() {
    let _one = one_vm();
    if let Err(e) = lmx_testbed::find_qemu(Arch::Mips) {
        panic!("the MIPS twin tests need qemu-system-mips (scripts/deps.sh virtual): {e}");
    }
    let uboot_bin = lmx_testbed::uboot_firmware(Arch::Mips)
        .unwrap_or_else(|e| panic!("the MIPS twin needs its U-Boot (testbed/uboot.sh malta): {e}"));
    let dir = tempfile::tempdir().unwrap();
    let flash_dir = dir.path().join("flash");
    let fd = s(&flash_dir);

    // U-Boot saves, lmx reads the file.
    let o = lmx(&[
        "env",
        "set",
        "--board",
        "qemu-mips",
        "--flash-dir",
        fd,
        "--save",
        "lmxbe",
        "big endian; $x \"q\"",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("saved (saveenv)"), "{}", text(&o));
    let image = flash_dir.join("flash.img");
    let loc = ["--image", s(&image), "--board", "qemu-mips"];
    let with = |head: &[&'static str], tail: &[&str]| -> Vec<String> {
        head.iter()
            .chain(loc.iter())
            .chain(tail.iter())
            .map(|a| a.to_string())
            .collect()
    };
    let args = with(&["env", "get"], &["lmxbe"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(ok(&args), "big endian; $x \"q\"\n");
    // The byte order matters: read as little-endian, the CRC fails.
    let args = with(&["env", "get"], &["--little-endian", "lmxbe"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = fails(&args);
    assert!(e.contains("no valid environment"), "{e}");
    assert!(e.contains("--big-endian"), "suggests the right order: {e}");

    // lmx writes the file, U-Boot loads it.
    let args = with(&["env", "set"], &["lmxoff", "offline ${y}; two  blanks"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
    let flash = lmx_testbed::malta::create_flash(&flash_dir, Arch::Mips, &uboot_bin, true).unwrap();
    assert_eq!(flash, image);
    let cfg = VmConfig::malta(
        Arch::Mips,
        Console::Unix(dir.path().join("console.sock")),
        flash,
    );
    let mut vm = Vm::start(&cfg).unwrap();
    let mut con = vm.open_console().unwrap();
    let banner =
        uboot::interrupt_autoboot_at(&mut con, uboot::MALTA_PROMPT, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\nQEMU stderr: {}", vm.stderr()));
    assert!(!banner.contains(BAD_CRC), "banner: {banner}");
    assert!(
        banner.contains("Loading Environment from Flash... OK"),
        "banner: {banner}"
    );
    for (name, value) in [
        ("lmxoff", "offline ${y}; two  blanks"),
        ("lmxbe", "big endian; $x \"q\""),
    ] {
        let out = uboot::run_at(
            &mut con,
            uboot::MALTA_PROMPT,
            &format!("printenv {name}"),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            out.lines().next().unwrap_or("").trim_end_matches('\r'),
            format!("{name}={value}")
        );
    }
    vm.kill();
}

/// `lmx console` holds the port (in a real terminal): `lmx env` drives
/// U-Boot through its share socket, and the console shows what it typed.
#[test]
fn through_the_share_socket_of_lmx_console() {
    let _one = one_vm();
    let uboot_bin = require_board();
    let dir = tempfile::tempdir().unwrap();
    let boards = serial_board(dir.path());
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    let flash = Pflash::create(&dir.path().join("flash"), &uboot_bin, true).unwrap();
    let mut b = boot(dir.path(), &flash);
    drop(b.con);
    let sock = dir.path().join("console.sock");

    let t = Tmux::new(&format!("lmx-env-live-{}", std::process::id()));
    t.keys(&[
        "-l",
        &format!(
            "XDG_RUNTIME_DIR={} {} console --port unix:{}",
            xdg.display(),
            env!("CARGO_BIN_EXE_lmx"),
            sock.display()
        ),
    ]);
    t.keys(&["Enter"]);
    // The share socket appears once lmx console holds the port.
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !xdg
        .join("lmx")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
    {
        assert!(
            std::time::Instant::now() < end,
            "no share socket; screen:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let port = format!("unix:{}", sock.display());
    let envs = [("XDG_RUNTIME_DIR", xdg.as_path())];
    let common = [
        "--boards-dir",
        s(&boards),
        "--board",
        "qemu-serial",
        "--port",
        &port,
    ];
    let mut args = vec!["env", "set"];
    args.extend(common);
    args.extend(["lmxshare", "through the share; $x"]);
    let o = lmx_with(&args, &envs);
    assert!(o.status.success(), "{}", text(&o));
    // The holder's terminal showed the line lmx typed.
    t.wait_for("setenv lmxshare 'through the share; $x'");
    let mut args = vec!["env", "get"];
    args.extend(common);
    args.push("lmxshare");
    let o = lmx_with(&args, &envs);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "through the share; $x\n"
    );
    // Leave lmx console (its exit key), then check on the board directly.
    t.keys(&["C-]"]);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while xdg
        .join("lmx")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
    {
        assert!(std::time::Instant::now() < end, "lmx console did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    b.con = b.vm.open_console().unwrap();
    assert_eq!(
        b.printenv("lmxshare").as_deref(),
        Some("through the share; $x")
    );
    b.power_off();
}
