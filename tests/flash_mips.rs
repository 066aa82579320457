//! `lmx flash` end to end on the big-endian MIPS twin (`qemu-mips`, QEMU
//! malta, the test bed's U-Boot 2023.01 with LZMA): the real `lmx` binary
//! flashes `lmx build`'s `firmware.bin` (the LZMA uImage and the squashfs,
//! each padded to 64 KiB) into the `firmware` partition of the 4 MiB NOR
//! through KSEG1, verified by U-Boot's `crc32` of the flash itself, then
//! saves a bootcmd that copies the squashfs from flash to RAM and runs
//! `bootm` on the uImage in flash, resets the board and waits for the test
//! rootfs's marker. The flash file QEMU wrote is then read on the host:
//! the image byte for byte, U-Boot's partition and the rest of the flash
//! untouched, the environment a valid big-endian one holding the bootcmd.
//! Refusals (U-Boot's partition, the environment, too large an image,
//! `--write-protect`) come before QEMU starts.
//!
//! Needs `scripts/deps.sh virtual`, the caches of `testbed/kernel.sh mips`
//! and `testbed/uboot.sh malta` (built on first use), and root or
//! unprivileged user namespaces with an openable /dev/net/tun. One VM at a
//! time (the host-wide lock of tests/common).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    flash_and_boot_args, flash_args, lmx_watched as lmx, need, one_vm, pattern, s, MARKER,
};

/// The malta flash (boards/families/qemu-malta.toml).
const FLASH_SIZE: usize = 0x40_0000;
const UBOOT_END: usize = 0x8_0000;
const ENV: usize = 0x3E_0000;
const ENV_SIZE: usize = 0x2_0000;
const KSEG1_FLASH: u64 = 0xBE00_0000;

fn tmp() -> tempfile::TempDir {
    common::tmp("lmx-flash-mips-")
}

fn flash_file(dir: &Path) -> Vec<u8> {
    let f = std::fs::read(dir.join("flash.img")).expect("flash.img in --flash-dir");
    assert_eq!(f.len(), FLASH_SIZE);
    f
}

/// The first differing offset of two equally long slices, for messages.
fn first_diff(a: &[u8], b: &[u8], base: usize) -> Option<String> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .map(|i| format!("{:#x}", base + i))
}

#[test]
fn a_firmware_flashed_from_lmx_build_boots_from_flash_on_qemu_mips() {
    need("qemu-system-mips", "run `scripts/deps.sh virtual`");
    let _vm = one_vm();
    // The test bed's LZMA uImage and rootfs, then lmx build's firmware.
    let inputs = tmp();
    let i = inputs.path();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-mips",
            "--dry-run",
            "--out",
            s(i),
        ],
        Duration::from_secs(900),
    );
    assert!(r.success(), "{}", r.all());
    let out = tmp();
    let r = lmx(
        &[
            "build",
            "--board",
            "qemu-mips",
            "--kernel",
            s(&i.join("uImage")),
            "--rootfs",
            s(&i.join("rootfs.squashfs")),
            "--append",
            "init=/init",
            "--out",
            s(out.path()),
        ],
        Duration::from_secs(120),
    );
    assert!(r.success(), "lmx build: {}", r.all());
    let manifest = common::manifest(out.path());
    let fw = &manifest["firmware"];
    assert_eq!(fw["partition"], "firmware");
    let part_off = fw["partition_offset"].as_u64().unwrap() as usize;
    let part_end = part_off + fw["partition_size"].as_u64().unwrap() as usize;
    assert_eq!((part_off, part_end), (UBOOT_END, ENV));
    let parts = common::firmware_parts(&manifest);
    let (k_off, k_size) = parts.kernel;
    let (r_off, r_size) = parts.rootfs;
    // The RAM boot's command line (phram over the rootfs at 0x0A000000).
    let bootargs = manifest["bootargs"].as_str().unwrap().to_string();
    assert!(
        bootargs.contains("phram.phram=phram0,0xa000000,"),
        "{bootargs}"
    );
    // What --dry-run prints for --bootcmd: the parts' KSEG1 addresses.
    let r = lmx(
        &[
            "flash",
            "--board",
            "qemu-mips",
            "--from",
            s(out.path()),
            "--dry-run",
        ],
        Duration::from_secs(60),
    );
    assert!(r.success(), "{}", r.all());
    let (k_addr, r_addr) = (KSEG1_FLASH + k_off, KSEG1_FLASH + r_off);
    for want in [
        format!("kernel flash offset {k_off:#x}, {k_size:#x} bytes, U-Boot address {k_addr:#x}"),
        format!("rootfs flash offset {r_off:#x}, {r_size:#x} bytes, U-Boot address {r_addr:#x}"),
    ] {
        assert!(r.flat().contains(&want), "{want:?} not in {}", r.flat());
    }
    let image = std::fs::read(out.path().join("firmware.bin")).unwrap();
    let flash = tmp();
    let fd = flash.path();

    // 1. The write alone (no environment): the flash file lmx creates
    //    holds U-Boot; put patterns where nothing may write, after U-Boot
    //    in its partition, after the image in the firmware partition, and
    //    over the environment, then flash again.
    let first = lmx(
        &[flash_args("qemu-mips", fd), vec!["--from", s(out.path())]].concat(),
        Duration::from_secs(300),
    );
    assert!(first.success(), "{}", first.all());
    let mut seeded = flash_file(fd);
    assert_eq!(&seeded[part_off..part_off + image.len()], &image[..]);
    let u_boot_len = seeded[..UBOOT_END]
        .iter()
        .rposition(|b| *b != 0xff)
        .unwrap()
        + 1;
    assert!(
        u_boot_len > 0x4_0000,
        "the test bed's U-Boot passes 256 KiB ({u_boot_len:#x})"
    );
    let after_image = part_off + image.len();
    seeded[0x7_0000..UBOOT_END].copy_from_slice(&pattern(UBOOT_END - 0x7_0000, 1));
    seeded[after_image..ENV].copy_from_slice(&pattern(ENV - after_image, 2));
    seeded[ENV..].copy_from_slice(&pattern(ENV_SIZE, 3));
    // And the old firmware region scribbled over: the write must replace it.
    seeded[part_off..after_image].copy_from_slice(&pattern(image.len(), 4));
    std::fs::write(fd.join("flash.img"), &seeded).unwrap();
    let r = lmx(
        &[flash_args("qemu-mips", fd), vec!["--from", s(out.path())]].concat(),
        Duration::from_secs(300),
    );
    let all = r.flat();
    assert!(r.success(), "{all}");
    assert!(
        all.contains(&format!(
            "erase {:#x} +{:#x}",
            KSEG1_FLASH as usize + part_off,
            image.len()
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "[verify] crc32 {:#x} {:#x}",
            KSEG1_FLASH as usize + part_off,
            image.len()
        )),
        "{all}"
    );
    let crc = format!("{:08x}", crc32fast::hash(&image));
    assert!(all.contains(&format!("crc32 {crc} read back")), "{all}");
    let after = flash_file(fd);
    assert_eq!(
        &after[part_off..after_image],
        &image[..],
        "the image in flash"
    );
    assert_eq!(
        first_diff(&after[..part_off], &seeded[..part_off], 0),
        None,
        "U-Boot's partition changed"
    );
    assert_eq!(
        first_diff(&after[after_image..], &seeded[after_image..], after_image),
        None,
        "flash after the image (incl. the environment) changed"
    );

    // 2. The boot from flash: bootcmd copies the squashfs from flash to
    //    the RAM boot's address and runs bootm on the uImage in flash.
    let bootcmd = format!("cp.b {r_addr:#x} 0x8a000000 {r_size:#x}; bootm {k_addr:#x}");
    let r = lmx(
        &flash_and_boot_args("qemu-mips", fd, out.path(), &bootcmd, &bootargs),
        Duration::from_secs(300),
    );
    let all = r.flat();
    assert!(r.success(), "{all}");
    assert!(all.contains("flashed and verified: firmware.bin"), "{all}");
    assert!(all.contains("==> saveenv"), "{all}");
    // After the reset: no TFTP, U-Boot runs the saved bootcmd.
    let console = r.stdout();
    let from_reset = &console[console
        .rfind("U-Boot 20")
        .expect("U-Boot's banner after the reset")..];
    assert!(!from_reset.contains("TFTP"), "{from_reset}");
    assert!(
        from_reset.contains(&format!(
            "## Booting kernel from Legacy Image at {:x}",
            k_addr
        )),
        "{from_reset}"
    );
    assert!(from_reset.contains("lzma compressed"), "{from_reset}");
    assert!(
        from_reset.contains(&format!("Kernel command line: {bootargs}")),
        "{from_reset}"
    );
    assert!(
        from_reset.contains("VFS: Mounted root (squashfs filesystem)"),
        "{from_reset}"
    );
    assert!(
        all.contains("booted from flash: userland marker seen"),
        "{all}"
    );
    assert!(
        all.contains(&format!("{MARKER} mips root=/dev/mtdblock0")),
        "{all}"
    );

    // The flash on the host: the image, U-Boot and the rest unchanged, the
    // environment rewritten by saveenv as a valid big-endian one.
    let after = flash_file(fd);
    assert_eq!(&after[part_off..after_image], &image[..]);
    assert_eq!(
        first_diff(&after[..part_off], &seeded[..part_off], 0),
        None,
        "U-Boot's partition changed"
    );
    assert_eq!(
        first_diff(
            &after[after_image..ENV],
            &seeded[after_image..ENV],
            after_image
        ),
        None,
        "the firmware partition after the image changed"
    );
    let env = &after[ENV..];
    let stored = u32::from_be_bytes(env[..4].try_into().unwrap());
    assert_eq!(stored, crc32fast::hash(&env[4..]), "env CRC (big-endian)");
    let vars: Vec<&[u8]> = env[4..]
        .split(|b| *b == 0)
        .take_while(|v| !v.is_empty())
        .collect();
    for want in [format!("bootcmd={bootcmd}"), format!("bootargs={bootargs}")] {
        assert!(
            vars.contains(&want.as_bytes()),
            "{want:?} not in the saved environment"
        );
    }
    // lmx's own reader agrees.
    let r = lmx(
        &[
            "env",
            "get",
            "--board",
            "qemu-mips",
            "--image",
            s(&fd.join("flash.img")),
            "bootcmd",
        ],
        Duration::from_secs(60),
    );
    assert!(r.success(), "{}", r.all());
    assert_eq!(r.stdout().trim_end(), bootcmd);
}

#[test]
fn b_writes_into_u_boot_or_the_environment_are_refused_before_qemu_starts() {
    let work = tmp();
    let image = work.path().join("image.bin");
    std::fs::write(&image, pattern(0x1_0000, 5)).unwrap();
    let big = work.path().join("big.bin");
    std::fs::write(&big, pattern(ENV - UBOOT_END + 1, 6)).unwrap();
    let flash = work.path().join("flash");
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["--image", s(&image), "--partition", "u-boot"],
            &["partition u-boot is protected (boot loader)"],
        ),
        (
            &["--image", s(&image), "--partition", "u-boot-env"],
            &["partition u-boot-env is protected"],
        ),
        (
            &["--image", s(&big)],
            &["refused: nothing was sent to board qemu-mips", "firmware"],
        ),
        (
            &["--image", s(&image), "--write-protect"],
            &["--write-protect", "lmx does not start it read-only"],
        ),
    ];
    for (extra, wants) in cases {
        let mut args = flash_args("qemu-mips", &flash);
        args.extend_from_slice(extra);
        let r = lmx(&args, Duration::from_secs(60));
        let all = r.flat();
        assert!(!r.success(), "{args:?}: {all}");
        for want in wants {
            assert!(all.contains(want), "{args:?}: {want:?} not in {all}");
        }
        assert!(!r.qemu_seen, "{args:?}: QEMU ran: {all}");
        assert!(!flash.exists(), "{args:?}: the flash file was created");
    }
}
