//! `lmx tftpboot` end to end on the 32-bit ARM twin (`qemu-armv7l`: QEMU
//! virt, Cortex-A15, Debian's `qemu_arm` U-Boot via `-bios`): the real
//! `lmx` binary takes the cached zImage, dumps the machine's device tree
//! with the same firmware options as the run, adds the phram node, starts
//! the board in its own private network namespace, verifies every load
//! with U-Boot's `crc32`, and `bootz` reaches the busybox rootfs's marker
//! with the root on `/dev/mtdblock1`; a FIT holding the zImage and the
//! DTB boots the same way through `bootm`. What this U-Boot cannot do (no
//! `lzmadec`) is refused before the board starts.
//!
//! Needs `scripts/deps.sh virtual` (qemu-system-arm, u-boot-qemu,
//! busybox-static:armhf) and the cache of `testbed/kernel.sh armv7l`
//! (built on first use; `scripts/test.sh` builds it first), and root or
//! unprivileged user namespaces with an openable /dev/net/tun. A missing
//! QEMU fails the test with that hint. One VM at a time (in-process mutex
//! and the host-wide flock shared with tests/tftpboot_e2e.rs); after every
//! run the test checks that no process started by it is left.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MARKER: &str = "LMX-USERLAND-READY";
const BOARD: &str = "qemu-armv7l";
static ONE_VM: Mutex<()> = Mutex::new(());

/// Holds the in-process and the host-wide VM lock.
struct VmLock {
    _guard: std::sync::MutexGuard<'static, ()>,
    _file: std::fs::File,
}

fn one_vm() -> VmLock {
    let guard = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("lmx-virtual-board.lock"))
        .expect("lock file");
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    VmLock {
        _guard: guard,
        _file: file,
    }
}

fn require_qemu() {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("qemu-system-arm").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "qemu-system-arm is not installed: run `scripts/deps.sh virtual` (QEMU from bookworm-backports, u-boot-qemu, the armhf cross compiler and busybox)"
    );
}

/// Processes whose environment carries `tag` (QEMU inherits lmx's).
fn processes_tagged(tag: &str) -> Vec<String> {
    let needle = format!("LMX_E2E_TAG={tag}");
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = e.path();
        if let Ok(env) = std::fs::read(p.join("environ")) {
            if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
                let cmd = std::fs::read_to_string(p.join("cmdline")).unwrap_or_default();
                found.push(format!("{}: {}", p.display(), cmd.replace('\0', " ")));
            }
        }
    }
    found
}

struct Run {
    out: Output,
}

impl Run {
    fn all(&self) -> String {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&self.out.stdout),
            String::from_utf8_lossy(&self.out.stderr)
        )
    }
    fn success(&self) -> bool {
        self.out.status.success()
    }
}

/// Runs `lmx ARGS` with a hard limit, then checks nothing it started is left.
fn lmx(args: &[&str], limit: Duration) -> Run {
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lmx"))
        .args(args)
        .env("LMX_E2E_TAG", &tag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting lmx");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    };
    // QEMU has PDEATHSIG; give the kernel a moment to deliver it.
    let mut left = processes_tagged(&tag);
    for _ in 0..40 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        left = processes_tagged(&tag);
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let r = Run { out };
    eprintln!("--- lmx {} ---\n{}", args.join(" "), r.all());
    r
}

/// Load lines verified by `filesize and crc32 ... match`.
fn verified_loads(all: &str) -> usize {
    all.lines()
        .filter(|l| l.contains("filesize and crc32") && l.contains("match"))
        .count()
}

#[test]
fn a_zimage_and_dtb_with_phram_node_reach_userland() {
    require_qemu();
    let _vm = one_vm();
    let dir = tempfile::Builder::new()
        .prefix("lmx-armv7-")
        .tempdir()
        .unwrap();
    let out = dir.path().to_str().unwrap();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            BOARD,
            "--no-console",
            "--show-console",
            "--out",
            out,
        ],
        Duration::from_secs(600),
    );
    let all = r.all();
    assert!(r.success(), "lmx tftpboot failed:\n{all}");
    assert!(
        all.contains(&format!("userland marker \"{MARKER}\" seen")),
        "{all}"
    );
    // rootfs, DTB and zImage, each checked by U-Boot's crc32.
    assert_eq!(verified_loads(&all), 3, "{all}");
    for want in [
        "tftpboot 0x44000000 rootfs.squashfs",
        "tftpboot 0x440d0000 board.dtb",
        "tftpboot 0x40400000 zImage",
        "==> bootz 0x40400000 - 0x440d0000",
    ] {
        assert!(all.contains(want), "missing {want:?} in\n{all}");
    }
    // The kernel that ran is the 32-bit one, on the machine's own DTB,
    // with the command line lmx put into it.
    assert!(all.contains("CPU: ARMv7 Processor"), "{all}");
    assert!(all.contains("Machine model: linux,dummy-virt"), "{all}");
    let cmdline = all
        .lines()
        .find(|l| l.contains("Kernel command line:"))
        .unwrap_or_else(|| panic!("no kernel command line in\n{all}"));
    // A labelled DT phram node alone makes one device after the CFI flash
    // (mtd0); a squashfs root with a script as /init needs init=/init.
    assert!(cmdline.contains("root=/dev/mtdblock1"), "{cmdline}");
    assert!(cmdline.contains("init=/init"), "{cmdline}");
    assert!(!cmdline.contains("phram.phram="), "{cmdline}");
    let marker = all
        .lines()
        .find(|l| l.starts_with(MARKER))
        .unwrap_or_else(|| panic!("no marker line in\n{all}"));
    // `uname -m` and the root device, as /init prints them.
    assert!(marker.starts_with(&format!("{MARKER} armv7l")), "{marker}");
    // What was sent is kept: an ARM zImage (magic at 0x24) and a DTB
    // carrying the phram node at the rootfs address.
    let zimage = std::fs::read(dir.path().join("zImage")).unwrap();
    assert_eq!(
        u32::from_le_bytes(zimage[0x24..0x28].try_into().unwrap()),
        0x016f_2818
    );
    let dtb = dir.path().join("board.dtb");
    let label = fdtget(&dtb, "/reserved-memory/phram-rootfs@44000000", "label");
    assert_eq!(label, "rootfs");
    let compatible = fdtget(&dtb, "/reserved-memory/phram-rootfs@44000000", "compatible");
    assert_eq!(compatible, "phram");
    // arm32 refuses to ioremap mapped RAM: the node must say no-map.
    let props = fdtget(&dtb, "-p", "/reserved-memory/phram-rootfs@44000000");
    assert!(props.lines().any(|l| l == "no-map"), "{props}");
    assert!(dir.path().join("rootfs.squashfs").is_file());
}

/// `fdtget DTB A B` (the reference reader, package device-tree-compiler):
/// a node's property, or with `-p NODE` its property names.
fn fdtget(dtb: &Path, node: &str, prop: &str) -> String {
    let args = if node == "-p" {
        vec!["-p".as_ref(), dtb.as_os_str(), prop.as_ref()]
    } else {
        vec![dtb.as_os_str(), node.as_ref(), prop.as_ref()]
    };
    let o = Command::new("fdtget")
        .args(args)
        .output()
        .expect("fdtget (package device-tree-compiler)");
    assert!(
        o.status.success(),
        "fdtget {} {node} {prop}: {}",
        dtb.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn c_fit_with_zimage_and_dtb_boots_with_bootm() {
    require_qemu();
    let _vm = one_vm();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            BOARD,
            "--no-console",
            "--show-console",
            "--format",
            "fit",
        ],
        Duration::from_secs(600),
    );
    let all = r.all();
    assert!(r.success(), "lmx tftpboot failed:\n{all}");
    assert!(
        all.contains(&format!("userland marker \"{MARKER}\" seen")),
        "{all}"
    );
    // rootfs and the FIT: the DTB travels inside.
    assert_eq!(verified_loads(&all), 2, "{all}");
    assert!(all.contains("kernel.itb"), "{all}");
    assert!(all.contains("==> bootm 0x"), "{all}");
    assert!(!all.contains("bootz"), "{all}");
    // U-Boot checked the FIT's own hashes, copied the zImage to its load
    // address and used the DTB from the FIT.
    assert!(all.contains("Load Address: 0x40400000"), "{all}");
    assert!(
        all.contains("Verifying Hash Integrity ... crc32+ OK"),
        "{all}"
    );
    assert!(all.contains("Loading fdt from FIT Image"), "{all}");
    assert!(all.contains(&format!("{MARKER} armv7l")), "{all}");
}

#[test]
fn b_an_lzma_rootfs_is_refused_before_the_board_starts() {
    require_qemu();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            BOARD,
            "--no-console",
            "--lzma-rootfs",
        ],
        Duration::from_secs(600),
    );
    let all = r.all();
    assert!(!r.success(), "{all}");
    assert!(all.contains("no `lzmadec`"), "{all}");
    assert!(all.contains("uboot.lzmadec = false"), "{all}");
    assert!(!all.contains("starting virtual board"), "{all}");
    assert!(!all.contains("TFTP server on"), "{all}");
}

#[test]
fn dry_run_plans_bootz_above_the_decompressed_kernel() {
    require_qemu();
    let r = lmx(
        &["tftpboot", "--board", BOARD, "--dry-run"],
        Duration::from_secs(600),
    );
    let all = r.all();
    assert!(r.success(), "{all}");
    for want in [
        "tftpboot 0x44000000 rootfs.squashfs",
        "crc32 0x44000000 ${filesize}",
        "tftpboot 0x440d0000 board.dtb",
        "tftpboot 0x40400000 zImage",
        "bootz 0x40400000 - 0x440d0000",
        "setenv serverip 192.168.77.1",
    ] {
        assert!(all.contains(want), "missing {want:?} in\n{all}");
    }
    assert!(!all.contains("booti"), "{all}");
    assert!(!all.contains("starting virtual board"), "{all}");
}
