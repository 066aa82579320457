//! `lmx build` driven as a user runs it: the real binary on a tiny fake
//! arm64 kernel, a dtc-compiled tree and a rootfs directory, the outputs
//! checked with the reference tools (`dumpimage -l`, `mkimage -l`,
//! `fdtget`, `unsquashfs -lln`). A missing tool fails the test naming its
//! Debian package.

mod common;

use std::path::{Path, PathBuf};

use common::{lmx_output as lmx, s, tool};

struct Inputs {
    kernel: PathBuf,
    dtb: PathBuf,
    rootfs: PathBuf,
}

fn inputs(dir: &Path) -> Inputs {
    let mut k = vec![0x5au8; 200_000];
    k[..0x40].fill(0);
    k[16..24].copy_from_slice(&0x60_0000u64.to_le_bytes());
    k[0x38..0x3c].copy_from_slice(b"ARM\x64");
    let kernel = dir.join("Image");
    std::fs::write(&kernel, k).unwrap();
    let dts = dir.join("virt.dts");
    std::fs::write(
        &dts,
        "/dts-v1/;\n/ {\n\t#address-cells = <2>;\n\t#size-cells = <2>;\n\
         \tpl061@9030000 { compatible = \"arm,pl061\"; status = \"okay\"; };\n\
         \tchosen { };\n};\n",
    )
    .unwrap();
    let dtb = dir.join("virt.dtb");
    tool(
        "dtc",
        &[
            "-q",
            "-I",
            "dts",
            "-O",
            "dtb",
            "-o",
            dtb.to_str().unwrap(),
            dts.to_str().unwrap(),
        ],
    );
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("init"), "#!/bin/sh\necho up\n").unwrap();
    std::fs::write(rootfs.join("etc/hostname"), "lmx\n").unwrap();
    Inputs {
        kernel,
        dtb,
        rootfs,
    }
}

#[test]
fn build_writes_artifacts_the_reference_tools_accept() {
    let t = tempfile::tempdir().unwrap();
    let i = inputs(t.path());
    let out = t.path().join("out");
    let o = lmx(&[
        "build",
        "--board",
        "qemu-aarch64",
        "--kernel",
        s(&i.kernel),
        "--dtb",
        s(&i.dtb),
        "--rootfs",
        s(&i.rootfs),
        "--out",
        s(&out),
        "--append",
        "init=/init",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The printed map and plan.
    for want in [
        "RAM 0x40000000..0x60000000",
        "rootfs             0x44000000",
        "tftpboot 0x44000000 rootfs.squashfs",
        "tftpboot 0x40400000 Image",
        "booti 0x40400000 - 0x44010000",
        "crc32 0x44000000 ${filesize}",
    ] {
        assert!(stdout.contains(want), "{want:?} not in\n{stdout}");
    }
    let d = out.join("board.dtb");
    assert_eq!(
        tool("fdtget", &[s(&d), "/chosen", "bootargs"]).trim(),
        "console=ttyAMA0,115200 root=/dev/mtdblock1 rootfstype=squashfs init=/init"
    );
    assert_eq!(
        tool("fdtget", &[s(&d), "/pl061@9030000", "status"]).trim(),
        "disabled"
    );
    assert_eq!(
        tool(
            "fdtget",
            &[
                "-t",
                "x",
                s(&d),
                "/reserved-memory/phram-rootfs@44000000",
                "reg"
            ]
        )
        .trim(),
        "0 44000000 0 10000"
    );
    let l = tool("mkimage", &["-l", s(&out.join("boot.scr.uimg"))]);
    assert!(l.contains("Script"), "{l}");
    let l = tool("dumpimage", &["-l", s(&out.join("boot.scr.uimg"))]);
    assert!(l.contains("Image Name:   lmx boot script"), "{l}");
    let ls = tool("unsquashfs", &["-lln", s(&out.join("rootfs.squashfs"))]);
    assert!(ls.contains("squashfs-root/etc/hostname"), "{ls}");
    let m: serde_json_value::Value = serde_json_value::read(&out.join("manifest.json"));
    assert_eq!(m.schema, 1);
    assert!(out.join("firmware.bin").is_file());
    assert!(out.join("plan.txt").is_file());
}

/// The few manifest fields the CLI test reads, without depending on the
/// library's types (the file is a public format).
mod serde_json_value {
    pub struct Value {
        pub schema: u64,
    }

    pub fn read(p: &std::path::Path) -> Value {
        let text = std::fs::read_to_string(p).unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("\"schema\""))
            .expect("schema field");
        let n = line.split(':').nth(1).unwrap().trim().trim_end_matches(',');
        Value {
            schema: n.parse().unwrap(),
        }
    }
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let i = inputs(t.path());
    let out = t.path().join("out");
    let o = lmx(&[
        "build",
        "--board",
        "qemu-aarch64",
        "--kernel",
        s(&i.kernel),
        "--dtb",
        s(&i.dtb),
        "--rootfs",
        s(&i.rootfs),
        "--out",
        s(&out),
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("booti 0x40400000"), "{stdout}");
    assert!(stdout.contains("dry run: nothing written"));
    assert!(!out.exists());
}

#[test]
fn from_dir_and_bad_inputs() {
    let t = tempfile::tempdir().unwrap();
    let i = inputs(t.path());
    let res = t.path().join("result");
    std::fs::create_dir(&res).unwrap();
    std::os::unix::fs::symlink(&i.kernel, res.join("Image")).unwrap();
    std::os::unix::fs::symlink(&i.dtb, res.join("dtb")).unwrap();
    std::os::unix::fs::symlink(&i.rootfs, res.join("rootfs")).unwrap();
    let o = lmx(&[
        "build",
        "--board",
        "qemu-aarch64",
        "--from",
        s(&res),
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A truncated DTB is named.
    let cut = t.path().join("cut.dtb");
    let blob = std::fs::read(&i.dtb).unwrap();
    std::fs::write(&cut, &blob[..20]).unwrap();
    let o = lmx(&[
        "build",
        "--board",
        "qemu-aarch64",
        "--kernel",
        s(&i.kernel),
        "--dtb",
        s(&cut),
        "--rootfs",
        s(&i.rootfs),
        "--dry-run",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("cut.dtb"), "{err}");

    // A name longer than 32 bytes.
    let o = lmx(&[
        "build",
        "--board",
        "qemu-aarch64",
        "--from",
        s(&res),
        "--dry-run",
        "--name",
        "a-very-long-image-name-that-does-not-fit",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("32"), "{err}");

    // A kernel of the wrong kind for the board.
    let o = lmx(&[
        "build",
        "--board",
        "qemu-armv7l",
        "--kernel",
        s(&i.kernel),
        "--dtb",
        s(&i.dtb),
        "--rootfs",
        s(&i.rootfs),
        "--dry-run",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("zImage"), "{err}");
}
