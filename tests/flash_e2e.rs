//! `lmx flash` end to end on the virtual board: the real `lmx` binary
//! starts QEMU with both CFI flash banks backed by files in a test
//! directory (`--flash-dir`), serves the image with its TFTP server and
//! drives Debian's U-Boot through `erase`/`cp.b`/`crc32`. The flash files
//! are then read on the host, so every claim is checked against the bytes
//! QEMU really stored.
//!
//! Needs the virtual package set (`scripts/deps.sh virtual`), the cached
//! test bed kernel (`testbed/kernel.sh aarch64`), for the backup test the
//! U-Boot with `tftpput` (`testbed/uboot.sh qemu_arm64`, built from
//! Debian's source package the first time, about three minutes) and root
//! or unprivileged user namespaces with an openable /dev/net/tun. One VM
//! at a time (the same host-wide lock as the other virtual-board tests).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    flash_and_boot_args, flash_args, lmx_watched as lmx, need, one_vm, pattern, s, MARKER,
};

const MIB: usize = 1 << 20;

fn require_qemu() {
    need("qemu-system-aarch64", "run `scripts/deps.sh virtual`");
}

fn tmp() -> tempfile::TempDir {
    common::tmp("lmx-flash-e2e-")
}

fn bank0(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("flash0.img")).expect("flash0.img")
}

#[test]
fn a_fit_and_rootfs_flashed_from_lmx_build_boot_from_flash() {
    require_qemu();
    let _vm = one_vm();
    // The test bed's kernel, rootfs and machine DTB, then lmx build with a FIT.
    let inputs = common::testbed_inputs();
    let out = tmp();
    let i = inputs.path();
    let r = lmx(
        &[
            "build",
            "--board",
            "qemu-aarch64",
            "--format",
            "fit",
            "--kernel",
            s(&i.join("Image")),
            "--rootfs",
            s(&i.join("rootfs.squashfs")),
            "--dtb",
            s(&i.join("virt.dtb")),
            "--append",
            "init=/init",
            "--out",
            s(out.path()),
        ],
        Duration::from_secs(120),
    );
    assert!(r.success(), "lmx build: {}", r.flat());
    let manifest = common::manifest(out.path());
    assert_eq!(manifest["firmware"]["partition"], "firmware");
    let parts = common::firmware_parts(&manifest);
    let k_off = parts.kernel.0;
    let (r_off, r_size) = parts.rootfs;
    // The rootfs as a partition of the CFI flash Linux calls 0.flash.
    let bootargs = format!(
        "console=ttyAMA0,115200 mtdparts=0.flash:{r_size:#x}@{r_off:#x}(rootfs) root=/dev/mtdblock0 rootfstype=squashfs init=/init"
    );
    let bootcmd = format!("bootm {k_off:#x}");
    let flash = tmp();
    let args = flash_and_boot_args(
        "qemu-aarch64",
        flash.path(),
        out.path(),
        &bootcmd,
        &bootargs,
    );
    let r = lmx(&args, Duration::from_secs(300));
    let all = r.flat();
    assert!(r.success(), "{all}");
    assert!(all.contains("==> [erase] erase 0x400000 +0x"), "{all}");
    assert!(all.contains("flashed and verified: firmware.bin"), "{all}");
    // The kernel mounted its root from the flash partition, not from RAM.
    assert!(
        all.contains("Creating 1 MTD partitions on \"0.flash\""),
        "{all}"
    );
    assert!(
        all.contains(&format!("{MARKER} aarch64 root=/dev/mtdblock0")),
        "{all}"
    );
    assert!(
        all.contains("booted from flash: userland marker seen"),
        "{all}"
    );
    // What QEMU stored is the firmware image, byte for byte.
    let image = std::fs::read(out.path().join("firmware.bin")).unwrap();
    let b0 = bank0(flash.path());
    assert_eq!(&b0[0x40_0000..0x40_0000 + image.len()], &image[..]);
    // U-Boot's own area is untouched: the start of the bank is still u-boot.bin.
    let uboot = std::fs::read("/usr/lib/u-boot/qemu_arm64/u-boot.bin").unwrap();
    assert_eq!(&b0[..uboot.len()], &uboot[..]);
}

#[test]
fn b_write_protected_flash_fails_verification_with_the_flash_state() {
    require_qemu();
    let _vm = one_vm();
    let work = tmp();
    let image = work.path().join("image.bin");
    std::fs::write(&image, pattern(MIB + 4321, 7)).unwrap();
    let flash = work.path().join("flash");
    let mut args = flash_args("qemu-aarch64", &flash);
    args.extend(["--image", s(&image), "--write-protect"]);
    let r = lmx(&args, Duration::from_secs(180));
    let all = r.flat();
    assert!(!r.success(), "{all}");
    assert!(
        all.contains("verification failed: the flash reads back crc32"),
        "{all}"
    );
    assert!(all.contains("was written but does not read back"), "{all}");
    assert!(all.contains("write-protected"), "{all}");
    // QEMU kept nothing: the region is still erased.
    let b0 = bank0(&flash);
    assert!(b0[0x40_0000..0x40_0000 + MIB].iter().all(|b| *b == 0xff));
}

#[test]
fn c_a_region_corrupted_after_the_write_fails_verify_only() {
    require_qemu();
    let _vm = one_vm();
    let work = tmp();
    let image = work.path().join("image.bin");
    let bytes = pattern(3 * MIB / 2, 11);
    std::fs::write(&image, &bytes).unwrap();
    let flash = work.path().join("flash");
    let mut args = flash_args("qemu-aarch64", &flash);
    args.extend(["--image", s(&image)]);
    let r = lmx(&args, Duration::from_secs(180));
    assert!(r.success(), "{}", r.flat());
    // Verify-only on intact flash passes and erases nothing.
    let mut verify = flash_args("qemu-aarch64", &flash);
    verify.extend(["--image", s(&image), "--verify-only"]);
    let r = lmx(&verify, Duration::from_secs(120));
    let all = r.flat();
    assert!(r.success(), "{all}");
    assert!(all.contains("==> verified: flash at 0x400000"), "{all}");
    assert!(!all.contains("[erase]"), "{all}");
    // One flipped byte in the middle of the region, on the host.
    let path = flash.join("flash0.img");
    let mut b0 = bank0(&flash);
    b0[0x40_0000 + 0x1_2345] ^= 0x20;
    std::fs::write(&path, &b0).unwrap();
    let r = lmx(&verify, Duration::from_secs(120));
    let all = r.flat();
    assert!(!r.success(), "{all}");
    assert!(
        all.contains("verification failed: the flash reads back crc32"),
        "{all}"
    );
    assert!(
        all.contains(&format!("the image has {:08x}", crc32fast::hash(&bytes))),
        "{all}"
    );
    assert!(all.contains("unchanged by this run"), "{all}");
}

/// A board directory with qemu-aarch64 variants that differ in one fact.
fn variant_boards(dir: &Path) {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/qemu-aarch64.toml"),
    )
    .unwrap();
    // The firmware partition moved over U-Boot's area (the map of a careless port).
    let overlap = base.replace("name = \"qemu-aarch64\"", "name = \"qemu-overlap\"")
        + "\n[[flash.partitions]]\nname = \"u-boot\"\noffset = 0x0\nsize = 0x400000\nprotected = true\nrole = \"bootloader\"\n\n[[flash.partitions]]\nname = \"firmware\"\noffset = 0x300000\nsize = 0x1D00000\nrole = \"firmware\"\n";
    std::fs::write(dir.join("qemu-overlap.toml"), overlap).unwrap();
    // The same flash declared as SPI-NOR: the plan needs `sf`, which this U-Boot lacks.
    let spi = base.replace("name = \"qemu-aarch64\"", "name = \"qemu-spi\"")
        + "\n[flash]\ntype = \"spi-nor\"\n";
    std::fs::write(dir.join("qemu-spi.toml"), spi).unwrap();
}

#[test]
fn d_a_plan_overlapping_u_boot_is_refused_before_anything_is_sent() {
    let boards = tmp();
    variant_boards(boards.path());
    let work = tmp();
    let image = work.path().join("image.bin");
    std::fs::write(&image, pattern(MIB, 3)).unwrap();
    let flash = work.path().join("flash");
    // Straight at U-Boot's partition.
    let mut args = flash_args("qemu-aarch64", &flash);
    args.extend(["--image", s(&image), "--partition", "u-boot"]);
    let r = lmx(&args, Duration::from_secs(60));
    let all = r.flat();
    assert!(!r.success(), "{all}");
    assert!(
        all.contains("refused: nothing was sent to board qemu-aarch64"),
        "{all}"
    );
    assert!(
        all.contains("partition u-boot is protected (boot loader)"),
        "{all}"
    );
    assert!(!r.qemu_seen, "QEMU ran: {all}");
    assert!(!flash.exists(), "no flash file is even created");
    // Through a board file whose firmware partition covers U-Boot's area.
    let mut args = flash_args("qemu-overlap", &flash);
    args.extend(["--boards-dir", s(boards.path()), "--image", s(&image)]);
    let r = lmx(&args, Duration::from_secs(60));
    let all = r.flat();
    assert!(!r.success(), "{all}");
    assert!(all.contains("[partition-overlap]"), "{all}");
    assert!(all.contains("[protected-in-firmware]"), "{all}");
    assert!(all.contains("nothing was sent to the board"), "{all}");
    assert!(!r.qemu_seen, "QEMU ran: {all}");
    assert!(!flash.exists());
}

#[test]
fn e_a_u_boot_without_sf_is_caught_before_anything_is_erased() {
    require_qemu();
    let _vm = one_vm();
    let boards = tmp();
    variant_boards(boards.path());
    let work = tmp();
    let image = work.path().join("image.bin");
    std::fs::write(&image, pattern(MIB, 5)).unwrap();
    let flash = work.path().join("flash");
    let mut args = flash_args("qemu-spi", &flash);
    args.extend(["--boards-dir", s(boards.path()), "--image", s(&image)]);
    let r = lmx(&args, Duration::from_secs(120));
    let all = r.flat();
    assert!(!r.success(), "{all}");
    assert!(all.contains("U-Boot lacks the command(s) sf"), "{all}");
    assert!(all.contains("Flash state: untouched"), "{all}");
    assert!(all.contains("try --method mapped"), "{all}");
    assert!(!all.contains("[erase]"), "{all}");
    let b0 = bank0(&flash);
    assert!(b0[0x40_0000..0x50_0000].iter().all(|b| *b == 0xff));
    // The suggested method works on the same flash.
    args.extend(["--method", "mapped"]);
    let r = lmx(&args, Duration::from_secs(120));
    assert!(r.success(), "{}", r.flat());
    assert_eq!(&bank0(&flash)[0x40_0000..0x50_0000], &pattern(MIB, 5)[..]);
}

/// The virtual board's U-Boot built with tftpput (cached by the script).
fn uboot_with_tftpput() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/uboot.sh");
    let out = Command::new(&script)
        .arg("qemu_arm64")
        .stderr(Stdio::inherit())
        .output()
        .expect("running testbed/uboot.sh");
    assert!(
        out.status.success(),
        "testbed/uboot.sh qemu_arm64 failed (scripts/deps.sh virtual adds the deb-src entry it needs)"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn f_backup_round_trip_is_byte_identical() {
    require_qemu();
    let uboot = uboot_with_tftpput();
    let _vm = one_vm();
    let work = tmp();
    let flash = work.path().join("flash");
    std::fs::create_dir_all(&flash).unwrap();
    // Bank 0: this U-Boot at offset 0, erased after it (what Pflash::create does).
    let mut b0 = std::fs::read(&uboot).unwrap();
    b0.resize(64 * MIB, 0xff);
    std::fs::write(flash.join("flash0.img"), &b0).unwrap();

    let first = work.path().join("first.bin");
    std::fs::write(&first, pattern(3 * MIB / 2 + 777, 21)).unwrap();
    let mut args = flash_args("qemu-aarch64", &flash);
    args.extend(["--image", s(&first)]);
    let r = lmx(&args, Duration::from_secs(180));
    assert!(r.success(), "{}", r.flat());
    let before = bank0(&flash);

    // Flash a second image, saving what it replaces.
    let second = work.path().join("second.bin");
    std::fs::write(&second, pattern(3 * MIB / 2 + 777, 22)).unwrap();
    let backup = work.path().join("backup.bin");
    let mut args = flash_args("qemu-aarch64", &flash);
    args.extend(["--image", s(&second), "--backup", s(&backup)]);
    let r = lmx(&args, Duration::from_secs(180));
    let all = r.flat();
    assert!(r.success(), "{all}");
    assert!(
        all.contains("==> [backup] tftpput 0x400000 0x1c0000"),
        "{all}"
    );
    assert!(all.contains("matches the board's"), "{all}");
    let saved = std::fs::read(&backup).unwrap();
    // The whole erase region (1.5 MiB + 777 rounded to 256 KiB), as it was.
    assert_eq!(saved.len(), 0x1C_0000);
    assert_eq!(&saved[..], &before[0x40_0000..0x5C_0000]);

    // Restoring the backup brings back exactly the first flash contents.
    let mut args = flash_args("qemu-aarch64", &flash);
    args.extend(["--image", s(&backup), "--partition", "firmware"]);
    let r = lmx(&args, Duration::from_secs(180));
    assert!(r.success(), "{}", r.flat());
    assert_eq!(bank0(&flash), before);
}

#[test]
fn dry_run_prints_the_plan_and_a_too_large_image_is_refused() {
    let work = tmp();
    let image = work.path().join("image.bin");
    std::fs::write(&image, pattern(MIB, 1)).unwrap();
    let r = lmx(
        &[
            "flash",
            "--board",
            "qemu-aarch64",
            "--image",
            s(&image),
            "--dry-run",
        ],
        Duration::from_secs(30),
    );
    let all = r.flat();
    assert!(r.success(), "{all}");
    for line in [
        "tftpboot 0x44000000 image.bin",
        "crc32 0x44000000 0x100000",
        "erase 0x400000 +0x100000",
        "cp.b 0x44000000 0x400000 0x100000",
        "crc32 0x400000 0x100000",
    ] {
        assert!(all.contains(line), "{line}: {all}");
    }
    assert!(!r.qemu_seen);
    // 28 MiB + 1 byte: one more than the firmware partition.
    let big = work.path().join("big.bin");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(0x1C0_0001).unwrap();
    let r = lmx(
        &[
            "flash",
            "--board",
            "qemu-aarch64",
            "--image",
            s(&big),
            "--yes",
        ],
        Duration::from_secs(30),
    );
    let all = r.flat();
    assert!(!r.success(), "{all}");
    assert!(all.contains("partition firmware holds 0x1c00000"), "{all}");
    assert!(all.contains("nothing was sent"), "{all}");
    assert!(!r.qemu_seen);
    // Without --yes and without a terminal answer, nothing happens either.
    let r = lmx(
        &["flash", "--board", "qemu-aarch64", "--image", s(&image)],
        Duration::from_secs(30),
    );
    let all = r.flat();
    assert!(!r.success(), "{all}");
    assert!(all.contains("About to flash board qemu-aarch64"), "{all}");
    assert!(all.contains("not confirmed: nothing was sent"), "{all}");
    assert!(!r.qemu_seen);
}

#[test]
fn g_a_u_boot_error_mid_run_names_the_flash_state_and_recovery() {
    require_qemu();
    let _vm = one_vm();
    // A board file that forgot flash.usable: it claims 60 MiB of bank 0
    // while this U-Boot addresses only the first 32 MiB of each bank.
    let boards = tmp();
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/qemu-aarch64.toml"),
    )
    .unwrap();
    let wrong = base.replace("name = \"qemu-aarch64\"", "name = \"qemu-nousable\"")
        + "\n[flash]\nusable = []\n\n[[flash.partitions]]\nname = \"u-boot\"\noffset = 0x0\nsize = 0x400000\nprotected = true\nrole = \"bootloader\"\n\n[[flash.partitions]]\nname = \"firmware\"\noffset = 0x400000\nsize = 0x3C00000\nrole = \"firmware\"\n\n[[flash.partitions]]\nname = \"u-boot-env\"\noffset = 0x4000000\nsize = 0x40000\nprotected = true\nrole = \"env\"\n";
    std::fs::write(boards.path().join("qemu-nousable.toml"), wrong).unwrap();
    let work = tmp();
    let image = work.path().join("image.bin");
    std::fs::write(&image, pattern(0x1E4_0000, 9)).unwrap();
    let flash = work.path().join("flash");
    let mut args = flash_args("qemu-nousable", &flash);
    args.extend(["--boards-dir", s(boards.path()), "--image", s(&image)]);
    let r = lmx(&args, Duration::from_secs(300));
    let all = r.flat();
    assert!(!r.success(), "{all}");
    // The load and its check passed; U-Boot's erase failed.
    assert!(
        all.contains("==> [erase] erase 0x400000 +0x1e40000"),
        "{all}"
    );
    assert!(all.contains("not in flash"), "{all}");
    assert!(all.contains("Flash state: 0x400000..0x2240000"), "{all}");
    assert!(
        all.contains("were never addressed, so U-Boot still starts"),
        "{all}"
    );
    assert!(
        all.contains("flash.usable or partition map disagrees"),
        "{all}"
    );
    assert!(!all.contains("[write]"), "{all}");
}

#[test]
fn h_without_tftpput_the_backup_comes_over_the_console_byte_identical() {
    require_qemu();
    let _vm = one_vm();
    let work = tmp();
    let flash = work.path().join("flash");
    // Something to back up: a first image of 100 KB (one 256 KiB erase unit).
    let first = work.path().join("first.bin");
    std::fs::write(&first, pattern(100_000, 31)).unwrap();
    let mut args = flash_args("qemu-aarch64", &flash);
    args.extend(["--image", s(&first)]);
    let r = lmx(&args, Duration::from_secs(180));
    assert!(r.success(), "{}", r.flat());
    let before = bank0(&flash);
    // Debian's U-Boot has no tftpput: lmx falls back to md.b.
    let second = work.path().join("second.bin");
    std::fs::write(&second, pattern(100_000, 32)).unwrap();
    let backup = work.path().join("backup.bin");
    let mut args = flash_args("qemu-aarch64", &flash);
    args.extend(["--image", s(&second), "--backup", s(&backup)]);
    let r = lmx(&args, Duration::from_secs(600));
    let all = r.flat();
    assert!(r.success(), "{all}");
    assert!(all.contains("this U-Boot has no tftpput"), "{all}");
    assert!(all.contains("==> [backup] md.b 0x400000 0x40000"), "{all}");
    assert!(all.contains("matches the board's"), "{all}");
    assert_eq!(
        std::fs::read(&backup).unwrap(),
        &before[0x40_0000..0x44_0000]
    );
    assert_eq!(
        &bank0(&flash)[0x40_0000..0x40_0000 + 100_000],
        &pattern(100_000, 32)[..]
    );
}
