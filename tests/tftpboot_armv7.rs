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
//! run the test checks that no process started by it is left. `--watch`
//! resets the board with `reboot -f` and boots it again.

mod common;

use std::time::Duration;

use common::{lmx_watched as lmx, need, one_vm, s, tmp, tool, Watch, MARKER};

const BOARD: &str = "qemu-armv7l";

fn require_qemu() {
    need(
        "qemu-system-arm",
        "run `scripts/deps.sh virtual` (QEMU from bookworm-backports, u-boot-qemu, the armhf cross compiler and busybox)",
    );
}

/// Load lines verified by `filesize and crc32 ... match`.
fn verified_loads(all: &str) -> usize {
    all.lines()
        .filter(|l| l.contains("filesize and crc32") && l.contains("match"))
        .count()
}

/// `fdtget ARGS` (the reference reader), trimmed.
fn fdtget(args: &[&str]) -> String {
    tool("fdtget", args).trim().to_owned()
}

#[test]
fn a_zimage_and_dtb_with_phram_node_reach_userland() {
    require_qemu();
    let _vm = one_vm();
    let dir = tmp("lmx-armv7-");
    let out = s(dir.path());
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
    let node = "/reserved-memory/phram-rootfs@44000000";
    assert_eq!(fdtget(&[s(&dtb), node, "label"]), "rootfs");
    assert_eq!(fdtget(&[s(&dtb), node, "compatible"]), "phram");
    // arm32 refuses to ioremap mapped RAM: the node must say no-map.
    let props = fdtget(&["-p", s(&dtb), node]);
    assert!(props.lines().any(|l| l == "no-map"), "{props}");
    assert!(dir.path().join("rootfs.squashfs").is_file());
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

#[test]
fn d_watch_reboots_the_board_and_boots_again_after_a_change() {
    require_qemu();
    let _vm = one_vm();
    let planned = tmp("lmx-armv7-");
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            BOARD,
            "--dry-run",
            "--out",
            s(planned.path()),
        ],
        Duration::from_secs(600),
    );
    assert!(r.success(), "{}", r.all());
    let inputs = tmp("lmx-armv7-");
    for f in ["zImage", "rootfs.squashfs", "virt.dtb"] {
        std::fs::copy(planned.path().join(f), inputs.path().join(f)).unwrap();
    }
    let rootfs = inputs.path().join("rootfs.squashfs");
    // `reboot -f` on the running busybox resets the board through PSCI.
    let transcript = Watch::cycle(
        &[
            "tftpboot",
            "--board",
            BOARD,
            "--no-console",
            "--kernel",
            s(&inputs.path().join("zImage")),
            "--rootfs",
            s(&rootfs),
            "--dtb",
            s(&inputs.path().join("virt.dtb")),
            "--append",
            "init=/init",
            "--watch",
            s(&rootfs),
        ],
        BOARD,
        &rootfs,
        Duration::from_secs(300),
    );
    assert_eq!(
        transcript
            .matches("==> bootz 0x40400000 - 0x440d0000")
            .count(),
        2,
        "{transcript}"
    );
}
