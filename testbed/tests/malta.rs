//! The MIPS twins (QEMU malta) work as the test bed's recipe says, driven
//! by hand with uImages made by the reference tools (`objcopy`, `xz`,
//! `gzip`, `mkimage`), independent of `lmx build`:
//! - the U-Boot built by `testbed/uboot.sh` boots an LZMA uImage to
//!   userland on both endiannesses, every load checked by `crc32`;
//! - Debian's stock little-endian U-Boot boots a gzip uImage and fails an
//!   LZMA one at `bootm` ("Unimplemented compression type 3": the reason
//!   lmx refuses LZMA for that board before loading anything);
//! - the word swap the test bed applies for little-endian equals U-Boot's
//!   own `u-boot-swap.bin`;
//! - `saveenv` writes the environment at 0x3E0000 of the flash image with
//!   its CRC in the CPU's byte order.
//!
//! Needs `scripts/deps.sh virtual` and the caches of `testbed/kernel.sh
//! mips|mipsel` and `testbed/uboot.sh malta|maltael` (built on first use,
//! minutes; `scripts/test.sh` builds them first). A missing piece fails
//! the test with that hint; nothing is skipped silently. One VM at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{one_vm, proc_mtd, run_bounded, Finished};

use lmx_testbed::malta::{self, RamBoot};
use lmx_testbed::rootfs::{self, MARKER};
use lmx_testbed::vm::read_flash;
use lmx_testbed::{debian_malta_uboot, find_qemu, kernel, uboot_firmware, Arch};

fn run_tool(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run scripts/deps.sh virtual)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The entry point from a 32-bit ELF header of either byte order.
fn elf32_entry(elf: &[u8]) -> u32 {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 1, "not ELFCLASS32");
    let e: [u8; 4] = elf[24..28].try_into().unwrap();
    match elf[5] {
        1 => u32::from_le_bytes(e),
        2 => u32::from_be_bytes(e),
        other => panic!("EI_DATA {other}"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Compression {
    Lzma,
    Gzip,
}

/// A legacy MIPS uImage of the cached `vmlinux`, made the way the recipe
/// says: `objcopy -O binary`, LZMA (with the real size in the header, as
/// U-Boot's decoder wants) or gzip, `mkimage` at load 0x80100000 with the
/// ELF's entry.
fn uimage(arch: Arch, comp: Compression, dir: &Path) -> PathBuf {
    let vmlinux = kernel(arch).unwrap_or_else(|e| panic!("the malta tests need the kernel: {e}"));
    let entry = elf32_entry(&std::fs::read(&vmlinux).unwrap());
    let bin = dir.join("vmlinux.bin");
    run_tool(
        Command::new(format!("{}-linux-gnu-objcopy", arch.name()))
            .args(["-O", "binary"])
            .arg(&vmlinux)
            .arg(&bin),
    );
    let raw_len = std::fs::metadata(&bin).unwrap().len();
    let (packed, name) = match comp {
        Compression::Lzma => {
            let mut data = run_tool(
                Command::new("xz")
                    .args(["--format=lzma", "-9", "--stdout"])
                    .arg(&bin),
            );
            // .lzma header: properties (1), dictionary size (4), size (8).
            data[5..13].copy_from_slice(&raw_len.to_le_bytes());
            (data, "lzma")
        }
        Compression::Gzip => (
            run_tool(
                Command::new("gzip")
                    .args(["-9", "-n", "--stdout"])
                    .arg(&bin),
            ),
            "gzip",
        ),
    };
    let packed_path = dir.join(format!("vmlinux.bin.{name}"));
    std::fs::write(&packed_path, packed).unwrap();
    let out = dir.join("uImage");
    run_tool(
        Command::new("mkimage")
            .args(["-A", "mips", "-O", "linux", "-T", "kernel", "-C", name])
            .args(["-a", "0x80100000", "-e", &format!("{entry:#x}")])
            .args(["-n", "lmx malta twin"])
            .arg("-d")
            .arg(&packed_path)
            .arg(&out),
    );
    out
}

struct Boot {
    console: String,
    report: String,
    success: bool,
}

/// Boots `uimage` and the test rootfs through `lmx-testbed-run` with the
/// verified layout (uImage at 0x81000000, rootfs at 0x8A000000, `mem=`
/// below it, command-line phram), U-Boot `uboot` (default: the LZMA
/// build). `then` runs in userland after the marker.
fn ram_boot(arch: Arch, uboot: Option<&Path>, comp: Compression, then: &[&str]) -> Boot {
    find_qemu(arch).unwrap_or_else(|e| panic!("the malta tests need QEMU: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let serve = dir.path().join("serve");
    std::fs::create_dir(&serve).unwrap();
    let image = uimage(arch, comp, dir.path());
    std::fs::copy(&image, serve.join("uImage")).unwrap();
    let summary = rootfs::build_for(arch, &serve.join("rootfs.squashfs"))
        .unwrap_or_else(|e| panic!("the malta tests need the test rootfs: {e}"));
    let layout = RamBoot::new(summary.bytes);

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lmx-testbed-run"));
    cmd.args(["--arch", arch.name(), "--serve"]).arg(&serve);
    if let Some(u) = uboot {
        cmd.arg("--uboot").arg(u);
    }
    cmd.args([
        "--load",
        &format!("{:#x}:uImage", RamBoot::UIMAGE_ADDR),
        "--load",
        &format!("{:#x}:rootfs.squashfs", RamBoot::ROOTFS_ADDR),
        "--cmd",
        &format!("setenv bootargs '{}'", layout.bootargs()),
        "--boot",
        &format!("bootm {:#x}", RamBoot::UIMAGE_ADDR),
        "--expect",
        MARKER,
        "--timeout",
        "60",
    ]);
    for t in then {
        cmd.args(["--then", t]);
    }
    let Finished {
        status,
        console,
        report,
    } = run_bounded(&mut cmd, Duration::from_secs(240));
    let status = status.expect("lmx-testbed-run did not finish within 240 s");
    Boot {
        console,
        report,
        success: status.success(),
    }
}

/// The common checks of a boot that reached userland.
fn assert_userland(b: &Boot, comp: Compression) {
    assert!(b.success, "lmx-testbed-run failed: {}", b.report);
    assert_eq!(b.report.matches("crc32 ok").count(), 2, "{}", b.report);
    let comp_name = match comp {
        Compression::Lzma => "lzma compressed",
        Compression::Gzip => "gzip compressed",
    };
    // bootm's header listing.
    assert!(b.console.contains(comp_name), "{}", b.console);
    assert!(
        b.console.contains("MIPS Linux Kernel Image"),
        "{}",
        b.console
    );
    assert!(
        b.console.contains("Run /init as init process"),
        "{}",
        b.console
    );
    let marker = b
        .console
        .lines()
        .find(|l| l.starts_with(MARKER))
        .unwrap_or_else(|| panic!("no {MARKER} line"));
    // `uname -m` is "mips" on both endiannesses.
    assert!(marker.contains(" mips "), "{marker}");
    assert!(marker.contains("root=/dev/mtdblock0"), "{marker}");
    // The kernel was told to keep off the rootfs (mem=160M).
    assert!(
        b.console.contains(
            "Kernel command line: console=ttyS0,115200 mem=160M phram.phram=phram0,0xa000000,"
        ),
        "{}",
        b.console
    );
}

#[test]
fn big_endian_lzma_uimage_boots_to_the_static_init() {
    let _one = one_vm();
    let b = ram_boot(Arch::Mips, None, Compression::Lzma, &["cat /proc/mtd"]);
    assert_userland(&b, Compression::Lzma);
    assert!(b.console.contains("malta # "), "{}", b.console);
    let mtd = proc_mtd(&b.console);
    assert_eq!(mtd.len(), 1, "{mtd:?}");
    assert!(mtd[0].ends_with("00010000 \"rootfs\""), "{mtd:?}");
}

#[test]
fn little_endian_lzma_uimage_boots_to_busybox() {
    let _one = one_vm();
    let b = ram_boot(Arch::Mipsel, None, Compression::Lzma, &["cat /proc/mtd"]);
    assert_userland(&b, Compression::Lzma);
    assert!(b.console.contains("maltael # "), "{}", b.console);
    assert_eq!(proc_mtd(&b.console).len(), 1, "{}", b.console);
}

#[test]
fn stock_little_endian_uboot_boots_gzip_and_fails_lzma_at_bootm() {
    let _one = one_vm();
    let stock = debian_malta_uboot().unwrap_or_else(|e| panic!("{e}"));
    let b = ram_boot(Arch::Mipsel, Some(&stock), Compression::Gzip, &[]);
    assert_userland(&b, Compression::Gzip);
    assert!(b.console.contains("U-Boot 2023.01+dfsg"), "{}", b.console);

    // The same U-Boot with an LZMA uImage: everything loads, bootm fails.
    let b = ram_boot(Arch::Mipsel, Some(&stock), Compression::Lzma, &[]);
    assert!(!b.success, "an LZMA uImage booted on Debian's U-Boot");
    // (lmx-testbed-run stops at the failure text, possibly before the rest
    // of U-Boot's line, "type 3", has arrived.)
    assert!(
        b.console.contains("Unimplemented compression"),
        "{}",
        b.console
    );
    assert!(!b.console.contains("Starting kernel"), "{}", b.console);
}

#[test]
fn little_endian_word_swap_equals_the_uboot_builds_own() {
    let bin = uboot_firmware(Arch::Mipsel).unwrap_or_else(|e| panic!("{e}"));
    let swap = bin.with_file_name("u-boot-swap.bin");
    let theirs = std::fs::read(&swap).unwrap_or_else(|e| panic!("{}: {e}", swap.display()));
    let ours = malta::word_swap(&std::fs::read(&bin).unwrap());
    assert!(theirs.len() > 100_000, "{} bytes", theirs.len());
    assert_eq!(ours.len(), theirs.len());
    assert!(
        ours == theirs,
        "word_swap(u-boot.bin) differs from u-boot-swap.bin"
    );
}

#[test]
fn saveenv_writes_the_environment_at_0x3e0000() {
    let _one = one_vm();
    for arch in [Arch::Mips, Arch::Mipsel] {
        let dir = tempfile::tempdir().unwrap();
        let serve = dir.path().join("serve");
        std::fs::create_dir(&serve).unwrap();
        let flash = dir.path().join("flash");
        let run = |extra: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_lmx-testbed-run"))
                .args(["--arch", arch.name(), "--serve"])
                .arg(&serve)
                .arg("--pflash")
                .arg(&flash)
                .args(extra)
                .args(["--timeout", "30"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            text
        };
        let first = run(&["--cmd", "setenv lmxtest 42", "--cmd", "saveenv"]);
        assert!(first.contains("done") || first.contains("OK"), "{first}");
        let image = flash.join("flash.img");
        let env = read_flash(&image, malta::ENV_OFFSET, 0x20000).unwrap();
        let crc_bytes: [u8; 4] = env[..4].try_into().unwrap();
        let crc = if arch.is_big_endian() {
            u32::from_be_bytes(crc_bytes)
        } else {
            u32::from_le_bytes(crc_bytes)
        };
        assert_eq!(crc, crc32fast::hash(&env[4..]), "{arch}: environment CRC");
        assert!(env.windows(10).any(|w| w == b"lmxtest=42"), "{arch}");
        // The next boot from the same flash reads it back.
        let second = run(&["--cmd", "printenv lmxtest"]);
        assert!(
            second.contains("lmxtest=42\r\n") || second.contains("lmxtest=42\n"),
            "{second}"
        );
    }
}
