//! lmx against the vendor-dialect twins: U-Boot 2023.01 configured by the
//! test bed to talk like the boot loaders of three real boards
//! (`testbed/uboot/{ar750,mt300,mt7622}.config`, docs/design/testbed.md,
//! "Vendor-dialect twins"), on the machines of the plain virtual boards:
//!
//! - `qemu-mips-ar750` (big-endian malta): prompt `ath> `, autoboot
//!   stopped only by the string `gl`, hush, CBSIZE 512, no `lzmadec`,
//!   `sf` or `tftpput`;
//! - `qemu-mipsel-mt300` (little-endian malta): prompt `MT7628 # `, `gl`
//!   again, the simple parser (no `$?`), CBSIZE 256, and no `crc32`,
//!   `echo` or `run`;
//! - `qemu-aarch64-mt7622` (virt): prompt `MT7622> `, bootdelay 0 (one
//!   look for a key), MAXARGS 8.
//!
//! The console-level tests drive `UBootShell` against each twin from
//! power-on and read the whole traffic: what lmx typed before the prompt
//! (the string `gl`, or the key it sends from the banner on when the
//! delay is 0), that the board booted once (no reset from a missed
//! interrupt: each twin's bootcmd resets when the firmware partition
//! holds nothing), and the dialect at the prompt (`help`, `Unknown
//! command`). The other tests run the real `lmx` binary: `lmx tftpboot`
//! to userland with every load verified (by `crc32`, or on the mt300 twin
//! by bootm's data CRC of a kernel+rootfs uImage), `lmx env` live, and
//! `lmx flash --dry-run`'s plan or refusal.
//!
//! Needs `scripts/deps.sh virtual`, the twins' U-Boots (`testbed/uboot.sh
//! ar750|mt300|mt7622`, built on first use), the test bed kernels and
//! root or unprivileged user namespaces with an openable /dev/net/tun
//! (the tftpboot tests). A missing piece fails with its hint. One VM at a
//! time (tests/common's lock); after every `lmx` run nothing it started
//! may be left.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{need, one_vm, s, Run, MARKER};
use lmx_boards::{Board, Catalog};
use lmx_console::{ShellError, UBootShell};
use lmx_testbed::{Arch, Console, Firmware, Vm, VmConfig};

const T: Duration = Duration::from_secs(20);

/// One of the three twins.
struct Twin {
    board: &'static str,
    /// `testbed/uboot.sh` build.
    build: &'static str,
    arch: Arch,
    prompt: &'static str,
    autoboot: &'static str,
}

const AR750: Twin = Twin {
    board: "qemu-mips-ar750",
    build: "ar750",
    arch: Arch::Mips,
    prompt: "ath> ",
    autoboot: "Hit 'gl' to stop autoboot:  2",
};

const MT300: Twin = Twin {
    board: "qemu-mipsel-mt300",
    build: "mt300",
    arch: Arch::Mipsel,
    prompt: "MT7628 # ",
    autoboot: "Autobooting in:\t2 s (type 'gl' to run U-Boot console)",
};

const MT7622: Twin = Twin {
    board: "qemu-aarch64-mt7622",
    build: "mt7622",
    arch: Arch::Aarch64,
    prompt: "MT7622> ",
    autoboot: "Hit any key to stop autoboot:  0",
};

fn board(name: &str) -> Board {
    Catalog::builtin().resolve(name).unwrap().board
}

fn require_qemu(arch: Arch) {
    if let Err(e) = lmx_testbed::find_qemu(arch) {
        panic!("the vendor twins need QEMU (scripts/deps.sh virtual): {e}");
    }
}

/// Runs `lmx ARGS` under the watchdog (tests/common) and prints its output.
fn lmx(args: &[&str], limit: Duration) -> Run {
    let r = common::lmx_watched(args, limit);
    eprintln!("--- lmx {} ---\n{}", args.join(" "), r.all());
    r
}

// ---- the console driver against each twin, from power-on ----

/// Everything that crossed the console, in order.
#[derive(Default)]
struct Traffic {
    rx: Vec<u8>,
    /// Each write to the board, with how much had been received by then.
    tx: Vec<(usize, Vec<u8>)>,
}

/// The twin's machine with its U-Boot, console on a unix socket in `dir`,
/// no network; QEMU waits for the console before it starts the CPU.
fn start_twin(t: &Twin, dir: &Path) -> Vm {
    require_qemu(t.arch);
    let uboot = lmx_testbed::uboot_build(t.build)
        .unwrap_or_else(|e| panic!("testbed/uboot.sh {}: {e}", t.build));
    let console = Console::Unix(dir.join("console.sock"));
    let cfg = if t.arch.is_malta() {
        let flash = lmx_testbed::malta::create_flash(dir, t.arch, &uboot, false).unwrap();
        VmConfig::malta(t.arch, console, flash)
    } else {
        let mut cfg = VmConfig::new(t.arch, console);
        cfg.firmware = Firmware::Bios(uboot);
        cfg
    };
    Vm::start(&cfg).unwrap()
}

/// Powers the twin on, attaches as `lmx` does for a board it started
/// (`attach_at_power_on`), checks what was typed before the prompt and
/// that the board booted once, then hands the shell to `at_prompt`.
fn attach_from_power_on<F>(t: &Twin, at_prompt: F)
where
    F: for<'a> FnOnce(
        &'a mut UBootShell<tokio::net::UnixStream>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>,
{
    let _vm_lock = one_vm();
    let dir = common::tmp("lmx-twin-");
    // QEMU dies with the thread that started it: this one, which also
    // runs the runtime below.
    let vm = start_twin(t, dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Traffic::default()));
    rt.block_on(async {
        let io = tokio::net::UnixStream::connect(dir.path().join("console.sock"))
            .await
            .unwrap();
        let mut sh = UBootShell::for_board(io, &board(t.board)).unwrap();
        let log = seen.clone();
        sh.observe(move |tr| {
            let mut l = log.lock().unwrap();
            match tr {
                lmx_console::Traffic::Rx(b) => l.rx.extend_from_slice(b),
                lmx_console::Traffic::Tx(b) => {
                    let at = l.rx.len();
                    l.tx.push((at, b.to_vec()));
                }
            }
        });
        if let Err(e) = sh.attach_at_power_on(Duration::from_secs(60)).await {
            panic!("{}: attach failed: {e}\nQEMU: {}", t.board, vm.stderr());
        }
        let (rx, tx) = {
            let l = seen.lock().unwrap();
            (String::from_utf8_lossy(&l.rx).into_owned(), l.tx.clone())
        };
        // The first prompt U-Boot printed, at the start of a line.
        let prompt_at = rx
            .match_indices(t.prompt)
            .map(|(i, _)| i)
            .find(|&i| i == 0 || rx[..i].ends_with('\n'))
            .unwrap_or_else(|| panic!("{}: no prompt in\n{rx}", t.board));
        let boot = &rx[..prompt_at];
        assert_eq!(
            boot.matches("U-Boot 2023.01").count(),
            1,
            "{}: booted more than once (a missed interrupt lets the bootcmd reset):\n{rx}",
            t.board
        );
        assert!(boot.contains(t.autoboot), "{}: {boot}", t.board);
        for bootcmd_ran in ["Wrong Image Format", "resetting", "## Booting"] {
            assert!(
                !rx.contains(bootcmd_ran),
                "{}: autoboot ran:\n{rx}",
                t.board
            );
        }
        let typed_before: Vec<&[u8]> = tx
            .iter()
            .filter(|(at, _)| *at <= prompt_at)
            .map(|(_, b)| b.as_slice())
            .collect();
        match t.build {
            // The keyed twins: nothing before the autoboot text, then
            // exactly `gl` (no Ctrl-C, no space: a stray key costs GL's
            // AR750 a second of its countdown).
            "ar750" | "mt300" => {
                let autoboot_at = rx.find(t.autoboot).unwrap();
                let first = tx.first().expect("lmx typed nothing");
                assert!(first.0 >= autoboot_at, "{}: typed before the text", t.board);
                assert_eq!(typed_before, [b"gl".as_slice()], "{}", t.board);
            }
            // bootdelay 0: the key went out from the banner on, before
            // U-Boot printed its one-look autoboot line.
            _ => {
                let banner_at = rx.find("U-Boot 2023.01").unwrap();
                let autoboot_at = rx.find(t.autoboot).unwrap();
                assert!(
                    typed_before.iter().all(|b| *b == b" "),
                    "{}: {typed_before:?}",
                    t.board
                );
                assert!(
                    tx.iter()
                        .any(|(at, b)| *at >= banner_at && *at <= autoboot_at && b == b" "),
                    "{}: no key waited when U-Boot looked: {tx:?}",
                    t.board
                );
            }
        }
        at_prompt(&mut sh).await;
        let l = seen.lock().unwrap();
        eprintln!(
            "--- {} console ---\n{}\n--- typed ---\n{:?}",
            t.board,
            String::from_utf8_lossy(&l.rx),
            l.tx.iter()
                .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
                .collect::<Vec<_>>()
        );
    });
}

#[test]
fn a_console_attach_types_gl_on_the_ar750_twin() {
    attach_from_power_on(&AR750, |sh| {
        Box::pin(async move {
            let v = sh.run("version", T).await.unwrap();
            assert!(v.text.starts_with("U-Boot 2023.01"), "{}", v.text);
            // Hush: $? and echo.
            let e = sh.exec("echo lmx; false", T).await.unwrap();
            assert_eq!((e.text.as_str(), e.status), ("lmx", Some(1)));
            let c = sh.run("crc32 0x80100000 0x100", T).await.unwrap();
            assert!(c.text.contains("==> "), "{}", c.text);
            for absent in ["sf probe", "lzmadec 0x80100000 0x81000000", "tftpput"] {
                match sh.run(absent, T).await {
                    Err(ShellError::Failed { failure, .. }) => assert!(
                        failure
                            .as_deref()
                            .unwrap_or("")
                            .starts_with("Unknown command"),
                        "{absent}: {failure:?}"
                    ),
                    other => panic!("{absent}: {other:?}"),
                }
            }
            assert_eq!(
                sh.printenv("bootdelay").await.unwrap().as_deref(),
                Some("2")
            );
        })
    });
}

#[test]
fn b_console_attach_types_gl_on_the_mt300_twin_and_meets_the_simple_parser() {
    attach_from_power_on(&MT300, |sh| {
        Box::pin(async move {
            // `help` lists what the build has: not crc32, echo or run.
            let help = sh.run("help", T).await.unwrap();
            let listed: Vec<&str> = help
                .text
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            for cmd in ["bootm", "tftpboot", "printenv", "setenv", "saveenv"] {
                assert!(listed.contains(&cmd), "{cmd} not in help:\n{}", help.text);
            }
            for cmd in ["crc32", "echo", "run", "lzmadec", "tftpput", "sf"] {
                assert!(!listed.contains(&cmd), "{cmd} in help:\n{}", help.text);
            }
            // And U-Boot answers them with `Unknown command`.
            for line in ["crc32 0x80100000 0x100", "echo lmx", "run bootcmd"] {
                match sh.run(line, T).await {
                    Err(ShellError::Failed { failure, .. }) => {
                        let word = line.split(' ').next().unwrap();
                        assert!(
                            failure
                                .as_deref()
                                .unwrap_or("")
                                .starts_with(&format!("Unknown command '{word}'")),
                            "{line}: {failure:?}"
                        );
                    }
                    other => panic!("{line}: {other:?}"),
                }
            }
            // No $?: the end marker is the `Unknown command` of a name
            // lmx makes up, and a setenv is read back (the simple parser
            // cannot quote: a plain value).
            let v = sh.exec("version", T).await.unwrap();
            assert_eq!(v.status, None);
            assert!(v.text.starts_with("U-Boot 2023.01"), "{}", v.text);
            let value = "lmx twin 1.2.3";
            sh.setenv_checked("lmxtwin", value).await.unwrap();
            assert_eq!(
                sh.printenv("lmxtwin").await.unwrap().as_deref(),
                Some(value)
            );
            assert_eq!(
                sh.printenv("bootcmd").await.unwrap().as_deref(),
                Some("bootm 0xbe080000; reset")
            );
        })
    });
}

#[test]
fn c_console_attach_catches_bootdelay_zero_on_the_mt7622_twin() {
    attach_from_power_on(&MT7622, |sh| {
        Box::pin(async move {
            assert_eq!(
                sh.printenv("bootdelay").await.unwrap().as_deref(),
                Some("0")
            );
            let e = sh.exec("false", T).await.unwrap();
            assert_eq!(e.status, Some(1));
            // MAXARGS 8: U-Boot itself refuses a ninth word with Usage
            // (the console would refuse the line before sending it, so
            // the words come from a variable).
            sh.run("setenv lmxw 'a b c d e f g'", T).await.unwrap();
            let over = sh.exec("setenv lmxx ${lmxw}", T).await.unwrap();
            assert_eq!(over.status, Some(1), "{}", over.text);
            assert!(over.text.contains("Usage:"), "{}", over.text);
            let fits = sh.exec("setenv lmxx a b c d e f", T).await.unwrap();
            assert_eq!(fits.status, Some(0), "{}", fits.text);
            assert_eq!(
                sh.printenv("lmxx").await.unwrap().as_deref(),
                Some("a b c d e f")
            );
        })
    });
}

// ---- lmx tftpboot to userland ----

/// Load lines `lmx tftpboot` printed as verified by size and `crc32`.
fn crc32_verified_loads(all: &str) -> usize {
    all.lines()
        .filter(|l| l.contains("filesize and crc32") && l.contains("match"))
        .count()
}

/// The keys lmx sent to stop autoboot (`-vv` traces every write to the
/// console as `console tx=…`, escaped): what it typed after starting the
/// board and before the Ctrl-C that begins its sync at the prompt.
fn typed_while_attaching(all: &str) -> Vec<String> {
    all.lines()
        .skip_while(|l| !l.starts_with("==> waiting for U-Boot"))
        .take_while(|l| !l.contains("at the U-Boot prompt after"))
        .filter_map(|l| l.split_once("console tx=").map(|(_, t)| t.to_string()))
        .take_while(|t| t != "\\u{3}")
        .collect()
}

fn tftpboot(t: &Twin) -> String {
    require_qemu(t.arch);
    let _vm = one_vm();
    let r = lmx(
        &[
            "-vv",
            "tftpboot",
            "--board",
            t.board,
            "--no-console",
            "--show-console",
        ],
        Duration::from_secs(900),
    );
    let all = r.all();
    assert!(
        r.success(),
        "lmx tftpboot --board {} failed:\n{all}",
        t.board
    );
    assert!(r.qemu_seen, "{all}");
    assert!(
        all.contains(&format!("userland marker \"{MARKER}\" seen")),
        "{all}"
    );
    assert!(
        all.contains(&format!("==> booted: {} is up", t.board)),
        "{all}"
    );
    all
}

#[test]
fn d_tftpboot_on_the_ar750_twin_types_gl_and_checks_every_load_with_crc32() {
    let all = tftpboot(&AR750);
    assert_eq!(typed_while_attaching(&all), ["gl"], "{all}");
    // The LZMA uImage and the rootfs, each checked by crc32.
    assert_eq!(crc32_verified_loads(&all), 2, "{all}");
    assert!(all.contains("==> bootm 0x8"), "{all}");
    assert!(
        all.contains("MIPS Linux Kernel Image (lzma compressed)"),
        "{all}"
    );
    assert!(all.contains(&format!("{MARKER} mips")), "{all}");
}

#[test]
fn e_tftpboot_on_the_mt7622_twin_catches_bootdelay_zero_and_checks_every_load() {
    let all = tftpboot(&MT7622);
    let typed = typed_while_attaching(&all);
    assert!(
        !typed.is_empty() && typed.iter().all(|k| k == " "),
        "the any-key interrupt from the banner on: {typed:?}\n{all}"
    );
    // rootfs, DTB and Image, each checked by crc32; booti with MAXARGS 8.
    assert_eq!(crc32_verified_loads(&all), 3, "{all}");
    assert!(all.contains("==> booti 0x40400000 - 0x"), "{all}");
    assert!(all.contains(&format!("{MARKER} aarch64")), "{all}");
}

/// The mt300 twin has no `crc32`, `echo` or `run`: lmx sends the kernel
/// and the rootfs in one uImage whose data CRC bootm checks before the
/// kernel starts, and boots with `bootm` itself.
#[test]
fn f_tftpboot_on_the_mt300_twin_is_verified_by_bootm_without_crc32_echo_or_run() {
    let all = tftpboot(&MT300);
    assert_eq!(typed_while_attaching(&all), ["gl"], "{all}");
    let typed: Vec<&str> = all
        .lines()
        .filter_map(|l| l.split_once("console tx=").map(|(_, t)| t))
        .collect();
    let typed = typed.concat();
    for word in ["crc32 ", "echo ", "run "] {
        assert!(!typed.contains(word), "{word:?} typed: {typed}");
    }
    assert_eq!(crc32_verified_loads(&all), 0, "{all}");
    assert!(
        all.contains("its bytes are checked by bootm's data CRC"),
        "{all}"
    );
    assert!(all.contains("Verifying Checksum ... OK"), "{all}");
    assert!(
        all.contains("bootm verified the data CRC of every loaded byte"),
        "{all}"
    );
    assert!(all.contains(&format!("{MARKER} mips")), "{all}");
}

// ---- lmx env, live ----

/// `lmx env print` through each twin's console (its own flash files).
#[test]
fn g_env_print_works_on_every_twin() {
    for (t, bootcmd, delay) in [
        (&AR750, "bootm 0xbe080000; reset", "2"),
        (&MT300, "bootm 0xbe080000; reset", "2"),
        (&MT7622, "bootm 0x400000; reset", "0"),
    ] {
        require_qemu(t.arch);
        let _vm = one_vm();
        let dir = common::tmp("lmx-twin-env-");
        let r = lmx(
            &[
                "env",
                "print",
                "--board",
                t.board,
                "--flash-dir",
                s(dir.path()),
            ],
            Duration::from_secs(600),
        );
        let out = r.stdout();
        assert!(r.success(), "{}: {}", t.board, r.all());
        assert!(r.qemu_seen, "{}", t.board);
        assert!(
            out.lines().any(|l| l == format!("bootcmd={bootcmd}")),
            "{}: {out}",
            t.board
        );
        assert!(
            out.lines().any(|l| l == format!("bootdelay={delay}")),
            "{}: {out}",
            t.board
        );
    }
}

/// The simple parser and no `echo`: `lmx env set --save` reads the value
/// back, a fresh boot of the same flash shows it, and so does the flash
/// file. A value that parser would change is refused before QEMU starts.
#[test]
fn h_env_set_saves_through_the_mt300_twins_simple_parser() {
    require_qemu(MT300.arch);
    let _vm = one_vm();
    let dir = common::tmp("lmx-twin-env-");
    let fd = s(dir.path());
    let r = lmx(
        &[
            "env",
            "set",
            "--board",
            MT300.board,
            "--flash-dir",
            fd,
            "lmxtwin",
            "a; reset",
        ],
        Duration::from_secs(60),
    );
    assert!(!r.success(), "{}", r.all());
    assert!(!r.qemu_seen, "{}", r.all());
    assert!(r.flat().contains("simple command parser"), "{}", r.all());
    let value = "twin value 1.2.3";
    let r = lmx(
        &[
            "env",
            "set",
            "--board",
            MT300.board,
            "--flash-dir",
            fd,
            "--save",
            "lmxtwin",
            value,
        ],
        Duration::from_secs(600),
    );
    assert!(r.success(), "{}", r.all());
    assert!(r.all().contains("saved (saveenv)"), "{}", r.all());
    let r = lmx(
        &[
            "env",
            "get",
            "--board",
            MT300.board,
            "--flash-dir",
            fd,
            "lmxtwin",
        ],
        Duration::from_secs(600),
    );
    assert!(r.success(), "{}", r.all());
    assert_eq!(r.stdout(), format!("{value}\n"));
    // Offline, from the flash file U-Boot wrote (little-endian CRC).
    let image = dir.path().join("flash.img");
    let r = lmx(
        &[
            "env",
            "get",
            "--board",
            MT300.board,
            "--image",
            s(&image),
            "lmxtwin",
        ],
        Duration::from_secs(60),
    );
    assert!(r.success(), "{}", r.all());
    assert_eq!(r.stdout(), format!("{value}\n"));
}

// ---- lmx flash --dry-run ----

#[test]
fn i_flash_dry_run_plans_on_the_crc32_twins_and_refuses_on_the_mt300_twin() {
    let dir = common::tmp("lmx-twin-flash-");
    let image = dir.path().join("image.bin");
    std::fs::write(&image, common::pattern(0x1_0000, 7)).unwrap();
    let crc = format!("{:08x}", crc32fast::hash(&std::fs::read(&image).unwrap()));
    for (t, load, flash) in [
        (&AR750, "0x8a000000", "0xbe080000"),
        (&MT7622, "0x44000000", "0x400000"),
    ] {
        let r = lmx(
            &[
                "flash",
                "--board",
                t.board,
                "--image",
                s(&image),
                "--dry-run",
            ],
            Duration::from_secs(60),
        );
        let all = r.flat();
        assert!(r.success(), "{}: {all}", t.board);
        assert!(!r.qemu_seen, "{}: a dry run starts nothing", t.board);
        for want in [
            format!("tftpboot {load} image.bin"),
            format!("crc32 {load} 0x10000"),
            format!("erase {flash} +0x"),
            format!("cp.b {load} {flash} 0x10000"),
            format!("crc32 {flash} 0x10000"),
            format!("expects crc32 = {crc}"),
        ] {
            assert!(all.contains(&want), "{}: {want:?} not in {all}", t.board);
        }
    }
    let r = lmx(
        &[
            "flash",
            "--board",
            MT300.board,
            "--image",
            s(&image),
            "--dry-run",
        ],
        Duration::from_secs(60),
    );
    let all = r.flat();
    assert!(!r.success(), "{all}");
    assert!(!r.qemu_seen, "{all}");
    assert!(
        all.contains("refused: nothing was sent to board qemu-mipsel-mt300"),
        "{all}"
    );
    assert!(
        all.contains("this U-Boot has no `crc32` command (uboot.commands.absent)"),
        "{all}"
    );
}

#[test]
fn j_the_twins_u_boots_build() {
    // Each build is what its board file names (and so what the tests
    // above run): testbed/uboot.sh prints one path, cached after the first.
    for t in [&AR750, &MT300, &MT7622] {
        let b = board(t.board);
        assert_eq!(
            b.qemu.as_ref().unwrap().uboot_build.as_deref(),
            Some(t.build)
        );
        need(
            "apt-get",
            "the twins' U-Boot comes from Debian's source package",
        );
        let bin = lmx_testbed::uboot_build(t.build)
            .unwrap_or_else(|e| panic!("testbed/uboot.sh {}: {e}", t.build));
        let config = std::fs::read_to_string(bin.with_file_name("config")).unwrap();
        assert!(
            config
                .lines()
                .any(|l| l == format!("CONFIG_SYS_PROMPT=\"{}\"", t.prompt)),
            "{}",
            t.build
        );
        let bytes = std::fs::read(&bin).unwrap();
        let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(has(t.prompt), "{}: the prompt is in the binary", t.build);
        if t.arch == Arch::Mipsel {
            assert!(bin.with_file_name("u-boot-swap.bin").is_file());
        }
    }
}

#[path = "../builder/tests/common/sweep_values.rs"]
mod sweep_values;

/// The sans-I/O sweep (builder/tests/line_limits.rs) checks every length
/// and word count against models of the parsers; here the twins' real
/// U-Boots take a sample: every length of a one-word value up to past the
/// line limit, and every word count up to past MAXARGS at lengths around
/// the limits. Each planned `setenv` runs without a failure text (no
/// `Usage:`, no `** Too many args`) and `printenv` shows exactly the value.
fn bootargs_sweep(t: &'static Twin) {
    attach_from_power_on(t, move |sh| {
        Box::pin(async move {
            let b = board(t.board);
            let d = lmx_builder::bootargs::Dialect::of(&b);
            let top = d.max_line().max(d.expanded_max()) + 24;
            let near = |len: usize| {
                [d.max_line(), d.expanded_max()]
                    .iter()
                    .any(|m| len + 3 >= *m && len <= m + 3)
            };
            let (mut planned, mut refused) = (0, 0);
            for n in 1..=d.maxargs + 2 {
                for len in (2 * n - 1)..=top {
                    if n > 1 && len % 29 != 0 && !near(len) {
                        continue;
                    }
                    for value in sweep_values::values(n, len) {
                        let Ok(lines) = d.setenv_lines("bootargs", &value) else {
                            refused += 1;
                            continue;
                        };
                        planned += 1;
                        for l in &lines {
                            if let Err(e) = sh.run(l, T).await {
                                panic!("{}: {l:?} (of {n} words, {len} bytes): {e}", t.board);
                            }
                        }
                        let got = sh.printenv("bootargs").await.unwrap();
                        assert_eq!(
                            got.as_deref(),
                            Some(value.as_str()),
                            "{}: {n} words, {len} bytes, lines {lines:#?}",
                            t.board
                        );
                    }
                }
            }
            eprintln!(
                "{}: {planned} values stored exactly, {refused} refused by the plan",
                t.board
            );
            assert!(
                planned > 300 && refused > 0,
                "{}: {planned}/{refused}",
                t.board
            );
        })
    });
}

#[test]
fn k_bootargs_of_every_length_and_word_count_store_exactly_on_the_ar750_twin() {
    bootargs_sweep(&AR750);
}

#[test]
fn l_bootargs_of_every_length_and_word_count_store_exactly_on_the_mt300_twin() {
    bootargs_sweep(&MT300);
}

#[test]
fn m_bootargs_of_every_length_and_word_count_store_exactly_on_the_mt7622_twin() {
    bootargs_sweep(&MT7622);
}
