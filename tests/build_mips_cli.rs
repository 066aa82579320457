//! `lmx build` and `lmx tftpboot --dry-run` for the MIPS twins, driven as a
//! user runs them: the real binary on a `vmlinux` compiled here with
//! Debian's MIPS cross compilers (`builder/tests/fixtures/elf/kernel.c`,
//! linked at KSEG0 0x80100000 as the malta kernel is), a rootfs directory,
//! and the outputs read back by `mkimage -l`, `dumpimage`, `xz`,
//! `unsquashfs -lln` and the cross `objcopy`. Then the refusals a user
//! meets first: the wrong byte order, LZMA for Debian's U-Boot without
//! it, an `lzmadec` rootfs there. A missing tool fails the test naming
//! its Debian package.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{lmx_output as lmx, s, tool, vmlinux};

/// stdout and stderr, with miette's line wrapping and frame undone.
fn text(o: &Output) -> String {
    common::flat(&format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    ))
}

/// `lmx build --board BOARD --kernel K --rootfs ROOTFS --out OUT`.
fn build(board: &str, kernel: &Path, rootfs: &Path, out: &Path) -> Output {
    lmx(&[
        "build",
        "--board",
        board,
        "--kernel",
        s(kernel),
        "--rootfs",
        s(rootfs),
        "--out",
        s(out),
    ])
}

fn rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    std::fs::create_dir_all(r.join("bin")).unwrap();
    std::fs::write(r.join("init"), "#!/bin/sh\necho LMX-USERLAND-READY\n").unwrap();
    std::fs::write(r.join("bin/tool"), vec![9u8; 50_000]).unwrap();
    r
}

#[test]
fn qemu_mips_build_is_an_lzma_mips_uimage_with_cmdline_phram() {
    let t = tempfile::tempdir().unwrap();
    let k = vmlinux(t.path(), "mips-linux-gnu");
    let out = t.path().join("out");
    let o = build("qemu-mips", &k, &rootfs(t.path()), &out);
    let printed = text(&o);
    assert!(o.status.success(), "{printed}");
    for want in [
        "tftpboot 0x8a000000 rootfs.squashfs",
        "mem=160M phram.phram=phram0,0xa000000,0x10000,65536 mtdparts=phram0:0x10000(rootfs) root=/dev/mtdblock0 rootfstype=squashfs",
        "setenv bootargs 'console=ttyS0,115200 mem=160M",
        "bootm 0x80",
    ] {
        assert!(printed.contains(want), "{want:?} not in\n{printed}");
    }
    // The kernel: a MIPS LZMA uImage at the ELF's address, readable by
    // both reference tools, whose payload is objcopy's binary.
    let uimage = out.join("uImage");
    for t in ["mkimage", "dumpimage"] {
        let info = tool(t, &["-l", s(&uimage)]);
        for want in [
            "MIPS Linux Kernel Image (lzma compressed)",
            "Load Address: 80100000",
            "Entry Point:  80100000",
        ] {
            assert!(info.contains(want), "{want:?} not in {t} -l:\n{info}");
        }
    }
    let payload = t.path().join("k.lzma");
    tool(
        "dumpimage",
        &["-T", "kernel", "-p", "0", "-o", s(&payload), s(&uimage)],
    );
    tool("xz", &["--format=lzma", "-d", "-k", s(&payload)]);
    let bin = t.path().join("vmlinux.bin");
    tool("mips-linux-gnu-objcopy", &["-O", "binary", s(&k), s(&bin)]);
    assert!(std::fs::read(t.path().join("k")).unwrap() == std::fs::read(&bin).unwrap());
    let listing = tool("unsquashfs", &["-lln", s(&out.join("rootfs.squashfs"))]);
    assert!(listing.contains("squashfs-root/init"), "{listing}");
    // The manifest: physical phram, KSEG0 loads, the firmware partition
    // between U-Boot and the environment, through KSEG1.
    let m = common::manifest(&out);
    assert_eq!(m["phram"], "cmdline");
    assert_eq!(m["kernel_format"], "uimage-lzma");
    let fw = &m["firmware"];
    assert_eq!(fw["partition_offset"], 0x8_0000);
    assert_eq!(fw["uboot_addr"], 0xBE08_0000u64);
    let loads: Vec<(String, u64)> = m["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["op"] == "load")
        .map(|st| {
            (
                st["file"].as_str().unwrap().to_string(),
                st["addr"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(loads[0], ("rootfs.squashfs".into(), 0x8A00_0000));
    assert!(loads[1].1 >= 0x8000_0000 && loads[1].1 < 0xA000_0000);
}

#[test]
fn qemu_mipsel_stock_builds_gzip_and_tftpboot_dry_run_prints_the_plan() {
    let t = tempfile::tempdir().unwrap();
    let k = vmlinux(t.path(), "mipsel-linux-gnu");
    let out = t.path().join("out");
    let o = build("qemu-mipsel-stock", &k, &rootfs(t.path()), &out);
    assert!(o.status.success(), "{}", text(&o));
    let info = tool("mkimage", &["-l", s(&out.join("uImage"))]);
    assert!(
        info.contains("MIPS Linux Kernel Image (gzip compressed)"),
        "{info}"
    );
    // The dry run plans from the same inputs and starts no board.
    let o = lmx(&[
        "tftpboot",
        "--board",
        "qemu-mipsel-stock",
        "--dry-run",
        "--kernel",
        s(&k),
        "--rootfs",
        s(&out.join("rootfs.squashfs")),
    ]);
    let printed = text(&o);
    assert!(o.status.success(), "{printed}");
    for want in [
        "tftpboot 0x8a000000 rootfs.squashfs",
        "setenv bootargs 'console=ttyS0,115200 mem=160M phram.phram=phram0,0xa000000,",
        "bootm 0x80",
        "setenv serverip 192.168.77.1",
    ] {
        assert!(printed.contains(want), "{want:?} not in\n{printed}");
    }
}

#[test]
fn mips_refusals_come_before_anything_is_sent() {
    let t = tempfile::tempdir().unwrap();
    let be = vmlinux(t.path(), "mips-linux-gnu");
    let le = vmlinux(t.path(), "mipsel-linux-gnu");
    let root = rootfs(t.path());
    let out = t.path().join("out");
    // A big-endian vmlinux for the little-endian twin.
    let o = build("qemu-mipsel", &be, &root, &out);
    assert!(!o.status.success());
    assert!(
        text(&o)
            .contains("the ELF is mips big-endian, but board qemu-mipsel is mips little-endian"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());
    // A ready big-endian uImage for it: the header has no byte order,
    // the code does.
    let be_out = t.path().join("be");
    let o = build("qemu-mips", &be, &root, &be_out);
    assert!(o.status.success(), "{}", text(&o));
    let o = lmx(&[
        "tftpboot",
        "--board",
        "qemu-mipsel",
        "--dry-run",
        "--kernel",
        s(&be_out.join("uImage")),
        "--rootfs",
        s(&be_out.join("rootfs.squashfs")),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("the uImage holds big-endian MIPS code"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("tftpboot 0x"), "{}", text(&o));
    // A ready LZMA uImage for Debian's U-Boot, which has no LZMA.
    let lzma_out = t.path().join("lzma");
    let o = build("qemu-mipsel", &le, &root, &lzma_out);
    assert!(o.status.success(), "{}", text(&o));
    let squash = lzma_out.join("rootfs.squashfs");
    let o = lmx(&[
        "tftpboot",
        "--board",
        "qemu-mipsel-stock",
        "--dry-run",
        "--kernel",
        s(&lzma_out.join("uImage")),
        "--rootfs",
        s(&squash),
    ]);
    assert!(!o.status.success());
    let msg = text(&o);
    assert!(
        msg.contains("has no LZMA") && msg.contains("Unimplemented compression type 3"),
        "{msg}"
    );
    assert!(
        !msg.contains("tftpboot 0x"),
        "no plan may be printed:\n{msg}"
    );
    // An lzmadec rootfs there.
    let o = lmx(&[
        "tftpboot",
        "--board",
        "qemu-mipsel-stock",
        "--dry-run",
        "--lzma-rootfs",
        "--kernel",
        s(&le),
        "--rootfs",
        s(&squash),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no `lzmadec` command"), "{}", text(&o));
    // The appended-DTB variant needs the DTB.
    let o = lmx(&[
        "build",
        "--board",
        "qemu-mips",
        "--append-dtb",
        "--kernel",
        s(&be),
        "--rootfs",
        s(&root),
        "--out",
        s(&t.path().join("app")),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--dtb"), "{}", text(&o));
}
