//! `lmx image` driven as a user runs it: the real binary on real files.

use lmx_builder::fdt::Fdt;
use lmx_builder::fit::{FitKernel, FitSpec, HashAlgo};
use lmx_builder::uimage::{Arch, Compression, UImageSpec};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn lmx(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lmx"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run lmx")
}

fn info(file: &Path) -> (bool, String, String) {
    let out = lmx(&["image".as_ref(), "info".as_ref(), file.as_os_str()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn uimage() -> Vec<u8> {
    let spec = UImageSpec {
        timestamp: 1_700_000_000,
        ..UImageSpec::kernel(
            "Linux-6.1",
            Arch::Mips,
            Compression::None,
            0x8006_0000,
            0x8006_0000,
        )
    };
    spec.build(&vec![0xa5; 3000]).unwrap()
}

#[test]
fn info_shows_and_verifies_a_uimage() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("uImage");
    std::fs::write(&f, uimage()).unwrap();
    let (ok, out, err) = info(&f);
    assert!(ok, "{out}{err}");
    for want in [
        "Image Name:   Linux-6.1",
        "Created:      Tue Nov 14 22:13:20 2023",
        "Image Type:   MIPS Linux Kernel Image (uncompressed)",
        "Data Size:    3000 Bytes = 2.93 KiB = 0.00 MiB",
        "Load Address: 80060000",
        "Entry Point:  80060000",
        "Header CRC:",
        "Data CRC:",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert_eq!(out.matches(" OK").count(), 2, "{out}");
}

#[test]
fn info_names_the_failed_uimage_check() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("uImage");
    for (what, mutate) in [
        (
            "data CRC check failed",
            (|b: &mut Vec<u8>| b[100] ^= 1) as fn(&mut Vec<u8>),
        ),
        ("header CRC check failed", |b: &mut Vec<u8>| b[40] ^= 1),
        ("data size check failed", |b: &mut Vec<u8>| b.truncate(1000)),
    ] {
        let mut b = uimage();
        mutate(&mut b);
        std::fs::write(&f, &b).unwrap();
        let (ok, out, err) = info(&f);
        assert!(!ok, "{what}: accepted\n{out}");
        assert!(err.contains(what), "{what}: {err}");
        assert!(err.contains("uImage"), "the file is named: {err}");
    }
}

#[test]
fn info_lists_a_fit_and_catches_a_bad_hash() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("image.itb");
    let spec = FitSpec {
        description: "cli FIT".into(),
        arch: Arch::Arm64,
        timestamp: 1_700_000_000,
        hash: HashAlgo::Sha256,
        kernel: FitKernel {
            data: b"pretend this is an arm64 Image".to_vec(),
            compression: Compression::None,
            load: 0x4040_0000,
            entry: 0x4040_0000,
        },
        fdt: Some(Fdt::new().to_bytes()),
        ramdisk: None,
    };
    let mut blob = spec.build().unwrap();
    std::fs::write(&f, &blob).unwrap();
    let (ok, out, err) = info(&f);
    assert!(ok, "{out}{err}");
    for want in [
        "FIT description: cli FIT",
        " Image 0 (kernel-1)",
        "  Type:         Kernel Image",
        "  Architecture: AArch64",
        "  Load Address: 0x40400000",
        " Image 1 (fdt-1)",
        "  Type:         Flat Device Tree",
        "  Hash algo:    sha256",
        " Default Configuration: 'conf-1'",
        "  FDT:          fdt-1",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let at = blob.windows(7).position(|w| w == b"pretend").unwrap();
    blob[at] = b'P';
    std::fs::write(&f, &blob).unwrap();
    let (ok, out, err) = info(&f);
    assert!(!ok);
    assert!(out.contains(" BAD"), "{out}");
    assert!(err.contains("kernel-1") && err.contains("sha256"), "{err}");
}

#[test]
fn info_reads_a_dtb_and_refuses_a_truncated_one() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("board.dtb");
    let mut t = Fdt::new();
    t.root.set_str("model", "lmx test board");
    t.set_bootargs("console=ttyS0,115200");
    let blob = t.to_bytes();
    std::fs::write(&f, &blob).unwrap();
    let (ok, out, err) = info(&f);
    assert!(ok, "{err}");
    assert!(out.contains("Model:        lmx test board"), "{out}");
    assert!(out.contains("Bootargs:     console=ttyS0,115200"), "{out}");
    std::fs::write(&f, &blob[..blob.len() - 5]).unwrap();
    let (ok, _, err) = info(&f);
    assert!(!ok);
    assert!(
        err.contains("board.dtb") && err.contains("truncated"),
        "{err}"
    );
    std::fs::write(&f, b"hello world").unwrap();
    let (ok, _, err) = info(&f);
    assert!(!ok);
    assert!(err.contains("not a uImage, FIT or device tree"), "{err}");
}

#[test]
fn squashfs_names_an_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let src = dir.path().join("rootfs");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    let secret = src.join("etc/shadow");
    std::fs::write(&secret, b"root:*:::::::\n").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(src.join("etc"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out_img = dir.path().join("rootfs.sqfs");
    let lmx_bin = env!("CARGO_BIN_EXE_lmx");
    let args = ["image", "squashfs", "--all-root"];
    // Root reads every file: run as `nobody` then, through setpriv
    // (util-linux), so the permission check is real.
    let is_root = std::fs::read(&secret).is_ok();
    let out = if is_root {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", lmx_bin])
            .args(args)
            .arg(&src)
            .arg(&out_img)
            .output()
            .expect("setpriv (util-linux) is needed to test as an unprivileged user")
    } else {
        Command::new(lmx_bin)
            .args(args)
            .arg(&src)
            .arg(&out_img)
            .output()
            .unwrap()
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "built despite an unreadable file");
    assert!(err.contains("etc/shadow"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!out_img.exists(), "a partial image was left behind");

    // Readable again: the image is built, and readable by others.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(lmx_bin)
        .args(args)
        .arg(&src)
        .arg(&out_img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out_img.metadata().unwrap().len() > 0);
}
