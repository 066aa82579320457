//! The virtual board boots: U-Boot answers on its console (unix socket and
//! pty), `saveenv` persists into the pflash files, and the whole RAM path
//! (TFTP loads verified by CRC, `booti`/`bootz`, phram root) reaches
//! userland on qemu-aarch64 and qemu-armv7l.
//!
//! These tests need QEMU >= 8, Debian's u-boot-qemu and, for the RAM boots,
//! the cross-built kernels (`testbed/kernel.sh`, cached) and the static
//! busyboxes: `scripts/deps.sh virtual` installs the packages, and
//! `scripts/test.sh` does that and builds the kernels before testing. A missing
//! piece fails the test with that hint; nothing is skipped silently.
//!
//! One VM at a time (the machines have 2 cores): every test holds
//! `ONE_VM`. QEMU is killed by `Vm`'s drop and by its death signal; the
//! RAM boot's namespace belongs to the `lmx-testbed-run` child, which dies
//! with this test thread.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{one_vm, proc_mtd, run_bounded, Finished};

use lmx_testbed::ramboot::{PhramMethod, RamBootLayout};
use lmx_testbed::rootfs::{self, MARKER};
use lmx_testbed::vm::read_flash;
use lmx_testbed::{
    busybox, dump_dtb, find_qemu, kernel, uboot, uboot_firmware, Arch, Console, Firmware, Pflash,
    Vm, VmConfig,
};

/// QEMU and U-Boot must be there: a clear failure, never a silent pass.
fn require_board(arch: Arch) -> PathBuf {
    if let Err(e) = find_qemu(arch) {
        panic!("the virtual-board tests need QEMU: {e}");
    }
    uboot_firmware(arch).unwrap_or_else(|e| panic!("the virtual-board tests need U-Boot: {e}"))
}

#[test]
fn uboot_prompt_and_version_over_unix_socket() {
    let _one = one_vm();
    require_board(Arch::Aarch64);
    let dir = tempfile::tempdir().unwrap();
    let cfg = VmConfig::new(
        Arch::Aarch64,
        Console::Unix(dir.path().join("console.sock")),
    );
    assert!(cfg.network.is_none());
    let mut vm = Vm::start(&cfg).unwrap();
    let mut con = vm.open_console().unwrap();
    let t0 = Instant::now();
    let banner = uboot::interrupt_autoboot(&mut con, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nQEMU stderr: {}", vm.stderr()));
    let to_prompt = t0.elapsed();
    assert!(banner.contains("U-Boot 2023.01"), "banner: {banner}");
    let out = uboot::run(&mut con, "version", Duration::from_secs(5)).unwrap();
    assert!(out.contains("U-Boot 2023.01"), "version said: {out}");
    assert!(out.contains("aarch64-linux-gnu-gcc"), "version said: {out}");
    eprintln!(
        "U-Boot prompt after {:.2} s; version:\n{out}",
        to_prompt.as_secs_f64()
    );
    // PSCI power-off ends QEMU on its own.
    con.send_line("poweroff").unwrap();
    let status = vm.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(status.is_some(), "QEMU still runs after poweroff");
}

#[test]
fn uboot_over_pty() {
    let _one = one_vm();
    require_board(Arch::Aarch64);
    let vm = Vm::start(&VmConfig::new(Arch::Aarch64, Console::Pty)).unwrap();
    let lmx_testbed::ConsoleEndpoint::Pty(pty) = vm.console().clone() else {
        panic!("expected a pty endpoint");
    };
    assert!(pty.starts_with("/dev/pts/"), "{}", pty.display());
    let mut con = vm.open_console().unwrap();
    uboot::interrupt_autoboot(&mut con, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nQEMU stderr: {}", vm.stderr()));
    let out = uboot::run(&mut con, "echo pty-'ok'", Duration::from_secs(5)).unwrap();
    assert_eq!(out.trim(), "pty-ok");
}

#[test]
fn saveenv_persists_in_pflash() {
    let _one = one_vm();
    let uboot_bin = require_board(Arch::Aarch64);
    let dir = tempfile::tempdir().unwrap();
    let flash = Pflash::create(&dir.path().join("flash"), &uboot_bin, true).unwrap();
    let mut cfg = VmConfig::new(
        Arch::Aarch64,
        Console::Unix(dir.path().join("console.sock")),
    );
    cfg.firmware = Firmware::Pflash(flash.clone());
    {
        let vm = Vm::start(&cfg).unwrap();
        let mut con = vm.open_console().unwrap();
        uboot::interrupt_autoboot(&mut con, Duration::from_secs(30)).unwrap();
        uboot::run(&mut con, "setenv lmxtest 42", Duration::from_secs(5)).unwrap();
        let out = uboot::run(&mut con, "saveenv", Duration::from_secs(30)).unwrap();
        assert!(out.contains("OK"), "saveenv said: {out}");
    }
    // The environment (CRC32 + text) is at the start of bank 1.
    let env = read_flash(&flash.flash1, 0, 0x40000).unwrap();
    let crc = u32::from_le_bytes(env[..4].try_into().unwrap());
    assert_eq!(crc, crc32fast::hash(&env[4..]), "environment CRC");
    assert!(env.windows(10).any(|w| w == b"lmxtest=42"));
    // And a second boot from the same files reads it back.
    let reused = Pflash::create(&dir.path().join("flash"), &uboot_bin, true).unwrap();
    assert_eq!(reused, flash);
    let vm = Vm::start(&cfg).unwrap();
    let mut con = vm.open_console().unwrap();
    uboot::interrupt_autoboot(&mut con, Duration::from_secs(30)).unwrap();
    let out = uboot::run(&mut con, "printenv lmxtest", Duration::from_secs(5)).unwrap();
    assert_eq!(out.trim(), "lmxtest=42");
}

/// Builds the artifacts for `method`, boots them with `lmx-testbed-run`
/// and returns its console output and report, after the common checks.
fn ram_boot(arch: Arch, method: PhramMethod) -> (RamBootLayout, String, String) {
    require_board(arch);
    let image = kernel(arch).unwrap_or_else(|e| panic!("the RAM boot test needs the kernel: {e}"));
    let bb = busybox(arch).unwrap_or_else(|e| panic!("the RAM boot test needs busybox: {e}"));

    let dir = tempfile::tempdir().unwrap();
    let serve = dir.path().join("serve");
    std::fs::create_dir(&serve).unwrap();
    let summary = rootfs::build(&bb, &serve.join("rootfs.squashfs")).unwrap();
    let layout = RamBootLayout::new(arch, summary.bytes).with_phram(method);
    // The same firmware options as the real run (-bios), no console needed.
    let virt = dump_dtb(
        &VmConfig::new(arch, Console::Pty),
        &dir.path().join("virt.dtb"),
    )
    .unwrap();
    let dtb = layout.patch_dtb(&std::fs::read(virt).unwrap()).unwrap();
    std::fs::write(serve.join("board.dtb"), dtb).unwrap();
    let image_name = arch.kernel_image();
    std::fs::copy(&image, serve.join(image_name)).unwrap();

    let load = |addr: u64, name: &str| format!("{addr:#x}:{name}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lmx-testbed-run"));
    cmd.args(["--arch", arch.name(), "--serve"])
        .arg(&serve)
        .args([
            "--load",
            &load(layout.rootfs_addr, "rootfs.squashfs"),
            "--load",
            &load(layout.dtb_addr, "board.dtb"),
            "--load",
            &load(layout.kernel_addr, image_name),
            "--boot",
            &layout.boot_command(),
            "--expect",
            MARKER,
            "--then",
            "cat /proc/mtd",
            "--timeout",
            "60",
        ]);
    let Finished {
        status,
        console: out,
        report: err,
    } = run_bounded(&mut cmd, Duration::from_secs(180));
    let status = status.expect("lmx-testbed-run did not finish within 180 s");
    assert!(status.success(), "lmx-testbed-run failed: {err}");
    assert!(out.contains("Run /init as init process"), "{out}");
    let marker_line = out
        .lines()
        .find(|l| l.starts_with(MARKER))
        .unwrap_or_else(|| panic!("no {MARKER} line in the console output"));
    // `uname -m` says the architecture's name on both ARM boards.
    assert!(marker_line.contains(arch.name()), "{marker_line}");
    assert!(marker_line.contains(layout.root_device()), "{marker_line}");
    assert_eq!(err.matches("crc32 ok").count(), 3, "{err}");
    (layout, out, err)
}

#[test]
fn ram_boot_over_tftp_reaches_userland() {
    let _one = one_vm();
    let (_, out, _) = ram_boot(Arch::Aarch64, PhramMethod::DtAndCmdline);
    let mtd = proc_mtd(&out);
    assert!(mtd[0].contains("\"0.flash\""), "{mtd:?}");
    assert!(
        mtd[2].starts_with("mtd2: 000d0000") || mtd[2].contains("\"rootfs\""),
        "{mtd:?}"
    );
}

#[test]
fn ram_boot_with_a_single_phram_device() {
    let _one = one_vm();
    let (layout, out, _) = ram_boot(Arch::Aarch64, PhramMethod::DtLabel);
    let mtd = proc_mtd(&out);
    assert_eq!(mtd.len(), 2, "{mtd:?}");
    assert!(mtd[0].contains("\"0.flash\""), "{mtd:?}");
    assert_eq!(
        mtd[1],
        format!("mtd1: {:08x} 00001000 \"rootfs\"", layout.rootfs_region),
        "{mtd:?}"
    );
}

#[test]
fn armv7l_ram_boot_reaches_userland() {
    let _one = one_vm();
    let (layout, out, _) = ram_boot(Arch::Armv7l, PhramMethod::DtLabel);
    assert!(out.contains("bootz 0x40400000"), "{out}");
    let mtd = proc_mtd(&out);
    assert_eq!(mtd.len(), 2, "{mtd:?}");
    assert!(
        mtd[1].starts_with(&format!("mtd1: {:08x}", layout.rootfs_region)),
        "{mtd:?}"
    );
}
