//! `lmx tftpboot` end to end on the virtual board: the real `lmx` binary
//! starts QEMU (Debian's U-Boot) in its own private network namespace,
//! serves the plan with its TFTP server, verifies every load with U-Boot's
//! `crc32` and boots a real kernel that mounts its squashfs root through
//! phram and prints the test rootfs's marker.
//!
//! Needs the virtual package set (`scripts/deps.sh virtual`), the cached
//! test bed kernel (`testbed/kernel.sh aarch64`) and root or unprivileged
//! user namespaces with an openable /dev/net/tun. A missing QEMU fails the
//! test with that hint; nothing passes silently. One VM at a time: an
//! in-process mutex plus a host-wide `flock`, so parallel test binaries
//! (and other test suites using the same lock file) wait for each other.
//! After every run the test checks that no QEMU started by it is left.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{lmx_watched as lmx, need, one_vm, s, testbed_inputs, Run, Watch, MARKER};

fn require_qemu() {
    need(
        "qemu-system-aarch64",
        "run `scripts/deps.sh virtual` (QEMU from bookworm-backports, u-boot-qemu, the cross compiler and busybox for the test bed)",
    );
}

fn tmp() -> tempfile::TempDir {
    common::tmp("lmx-e2e-")
}

fn assert_booted(r: &Run) {
    let all = r.all();
    assert!(r.success(), "lmx tftpboot failed:\n{all}");
    assert!(
        all.contains(&format!("userland marker \"{MARKER}\" seen")),
        "{all}"
    );
    assert!(all.contains("step timings:"), "{all}");
}

/// Every load line was verified: `filesize and crc32 ... match`.
fn verified_loads(all: &str) -> usize {
    all.lines()
        .filter(|l| l.contains("filesize and crc32") && l.contains("match"))
        .count()
}

#[test]
fn a_raw_image_and_dtb_with_phram_node_reach_userland() {
    require_qemu();
    let _vm = one_vm();
    let dir = tmp();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--no-console",
            "--out",
            s(dir.path()),
        ],
        Duration::from_secs(240),
    );
    assert_booted(&r);
    let all = r.all();
    assert_eq!(verified_loads(&all), 3, "{all}");
    assert!(all.contains("booti 0x40400000 - 0x440d0000"), "{all}");
    // The DT phram node made exactly one device: root is mtdblock1.
    let plan = std::fs::read_to_string(dir.path().join("boot-plan.json")).unwrap();
    assert!(plan.contains("root=/dev/mtdblock1"), "{plan}");
    for f in ["Image", "board.dtb", "rootfs.squashfs"] {
        assert!(dir.path().join(f).is_file(), "{f} kept in --out");
    }
}

#[test]
fn b_fit_with_kernel_and_dtb_boots_with_bootm() {
    require_qemu();
    let _vm = one_vm();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--no-console",
            "--format",
            "fit",
        ],
        Duration::from_secs(240),
    );
    assert_booted(&r);
    let all = r.all();
    assert!(all.contains("==> bootm 0x"), "{all}");
    assert!(!all.contains("booti"), "{all}");
    // rootfs and the FIT: the DTB travels inside.
    assert_eq!(verified_loads(&all), 2, "{all}");
}

#[test]
fn c_lzma_rootfs_is_unpacked_by_lzmadec() {
    require_qemu();
    let _vm = one_vm();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--no-console",
            "--lzma-rootfs",
        ],
        Duration::from_secs(240),
    );
    assert_booted(&r);
    let all = r.all();
    assert!(all.contains("==> lzmadec 0x"), "{all}");
    assert!(all.contains("rootfs.squashfs.lzma"), "{all}");
    assert!(all.contains("unpacked in"), "{all}");
}

#[test]
fn d_a_file_changed_after_planning_is_caught_before_boot() {
    require_qemu();
    let _vm = one_vm();
    let dir = tmp();
    let plan = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--dry-run",
            "--out",
            s(dir.path()),
        ],
        Duration::from_secs(240),
    );
    assert!(plan.success(), "{}", plan.all());
    // Same size, one byte different: only the CRC can tell.
    let image: PathBuf = dir.path().join("Image");
    let mut bytes = std::fs::read(&image).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&image, &bytes).unwrap();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--no-console",
            "--manifest",
            s(&dir.path().join("boot-plan.json")),
        ],
        Duration::from_secs(240),
    );
    let all = r.all();
    assert!(!r.success(), "{all}");
    assert!(all.contains("crc32 mismatch for Image"), "{all}");
    assert!(all.contains(s(&image)), "the error names the file: {all}");
    assert!(all.contains("not booting"), "{all}");
    assert!(!all.contains("Starting kernel"), "{all}");
    assert!(!all.contains("==> booti"), "{all}");
}

#[test]
fn e_an_unreachable_tftp_server_fails_within_the_timeout() {
    require_qemu();
    let _vm = one_vm();
    // The server listens on loopback only: U-Boot's requests to
    // 192.168.77.1:69 go unanswered, like a host firewall dropping UDP 69.
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--no-console",
            "--bind",
            "127.0.0.1",
            "--timeout",
            "5",
        ],
        Duration::from_secs(120),
    );
    let all = r.all();
    assert!(!r.success(), "{all}");
    assert!(
        all.contains("no TFTP request from 192.168.77.2 within 5 s"),
        "{all}"
    );
    assert!(all.contains("load rootfs.squashfs failed"), "{all}");
    assert!(all.contains("firewall for UDP 69"), "{all}");
    // (No wall-clock bound here: the message above is lmx's own account of
    // the wait, and U-Boot's retries alone would take 50 s.)
}

#[test]
fn f_console_over_a_pty_through_the_serial_port_path() {
    require_qemu();
    let _vm = one_vm();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--no-console",
            "--port",
            "pty",
        ],
        Duration::from_secs(240),
    );
    assert_booted(&r);
    assert_eq!(verified_loads(&r.all()), 3, "{}", r.all());
}

#[test]
fn dry_run_prints_the_plan_without_starting_the_board() {
    require_qemu();
    let r = lmx(
        &["tftpboot", "--board", "qemu-aarch64", "--dry-run"],
        Duration::from_secs(240),
    );
    let out = r.stdout();
    assert!(r.success(), "{}", r.all());
    for want in [
        "tftpboot 0x44000000 rootfs.squashfs",
        "crc32 0x44000000 ${filesize}",
        "booti 0x40400000 - 0x440d0000",
        "setenv serverip 192.168.77.1",
        "setenv ipaddr 192.168.77.2",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!r.all().contains("starting virtual board"), "{}", r.all());
}

#[test]
fn g_watch_resets_the_board_and_boots_again_after_a_change() {
    require_qemu();
    let _vm = one_vm();
    let inputs = testbed_inputs();
    let rootfs = inputs.path().join("rootfs.squashfs");
    let transcript = Watch::cycle(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--no-console",
            "--kernel",
            s(&inputs.path().join("Image")),
            "--rootfs",
            s(&rootfs),
            "--dtb",
            s(&inputs.path().join("virt.dtb")),
            "--append",
            "init=/init",
            "--watch",
            s(&rootfs),
        ],
        "qemu-aarch64",
        &rootfs,
        Duration::from_secs(120),
    );
    // The re-run after `reboot -f` (RAM kept) checks each file in place:
    // the rootfs (a no-map phram region nobody wrote) still matches and is
    // not sent again; the kernel ran in place and changed its own memory,
    // so it is loaded again.
    assert_eq!(
        transcript
            .matches("==> tftpboot 0x44000000 rootfs.squashfs")
            .count(),
        1,
        "{transcript}"
    );
    assert!(
        transcript.contains("rootfs.squashfs: already at 0x44000000")
            && transcript.contains("verified in place, not loaded"),
        "{transcript}"
    );
    assert_eq!(
        transcript.matches("==> tftpboot 0x40400000 Image").count(),
        2,
        "{transcript}"
    );
}

fn lmx_build(inputs: &Path, out: &Path) {
    let r = lmx(
        &[
            "build",
            "--board",
            "qemu-aarch64",
            "--kernel",
            s(&inputs.join("Image")),
            "--rootfs",
            s(&inputs.join("rootfs.squashfs")),
            "--dtb",
            s(&inputs.join("virt.dtb")),
            "--append",
            "init=/init",
            "--out",
            s(out),
        ],
        Duration::from_secs(120),
    );
    assert!(r.success(), "lmx build: {}", r.all());
    assert!(out.join("manifest.json").is_file());
}

#[test]
fn h_the_plan_of_lmx_build_boots_from_its_manifest() {
    require_qemu();
    let _vm = one_vm();
    let inputs = testbed_inputs();
    let out = tmp();
    let artifacts = out.path().join("artifacts");
    lmx_build(inputs.path(), &artifacts);
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--no-console",
            "--manifest",
            s(&artifacts.join("manifest.json")),
        ],
        Duration::from_secs(240),
    );
    assert_booted(&r);
    assert!(
        r.all().contains("re-hashed, all as recorded"),
        "{}",
        r.all()
    );
}

#[test]
fn i_an_artifact_changed_after_lmx_build_is_refused_before_the_board_is_touched() {
    require_qemu();
    let _vm = one_vm();
    let inputs = testbed_inputs();
    let out = tmp();
    let artifacts = out.path().join("artifacts");
    lmx_build(inputs.path(), &artifacts);
    let rootfs = std::fs::read_dir(&artifacts)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "squashfs"))
        .expect("a squashfs artifact");
    let mut bytes = std::fs::read(&rootfs).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&rootfs, &bytes).unwrap();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--no-console",
            "--manifest",
            s(&artifacts.join("manifest.json")),
        ],
        Duration::from_secs(120),
    );
    let all = r.all();
    assert!(!r.success(), "{all}");
    assert!(all.contains("changed after the build"), "{all}");
    assert!(
        all.contains(rootfs.file_name().unwrap().to_str().unwrap()),
        "{all}"
    );
    assert!(!all.contains("starting virtual board"), "{all}");
}
