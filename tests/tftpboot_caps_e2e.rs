//! `lmx tftpboot` asks U-Boot what it can unpack when the board file does
//! not say, and refuses before the first load: the real `lmx` binary
//! starts QEMU malta with Debian's own maltael U-Boot (which has no
//! `lzmadec`) for a board file that leaves `uboot.lzmadec` unknown, plans
//! an LZMA rootfs for `lzmadec`, runs `help` on the real U-Boot, and must
//! stop there, with nothing loaded.
//!
//! Needs `qemu-system-mipsel` and Debian's `u-boot-qemu` (scripts/deps.sh
//! virtual), the MIPS cross compiler for the stand-in kernel (it is never
//! loaded), `mksquashfs`, and root or unprivileged user namespaces with an
//! openable /dev/net/tun, as tests/tftpboot_e2e.rs. One VM at a time, by
//! the same host-wide lock file as the other virtual-board tests.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{one_vm, run, s, vmlinux};

fn need(tool: &str, package: &str) {
    common::need(
        tool,
        &format!("install {package} (scripts/deps.sh virtual)"),
    );
}

const BOARD: &str = r#"# Debian's maltael U-Boot, LZMA support not recorded: lmx must ask it.
schema = 1
name = "mipsel-lzma-unknown"
extends = "qemu-malta"

[cpu]
endian = "little"

[kernel]
format = "uimage-gzip"

[uboot]
prompt = '^maltael # '

[flash.env]
endian = "little"

[qemu]
binary = "qemu-system-mipsel"
firmware = "/usr/lib/u-boot/maltael/u-boot.bin"
firmware_word_swap = true
"#;

#[test]
fn help_on_the_real_uboot_refuses_an_lzmadec_rootfs_before_any_load() {
    need("qemu-system-mipsel", "qemu-system-mips");
    need("mipsel-linux-gnu-gcc", "gcc-mipsel-linux-gnu");
    need("mksquashfs", "squashfs-tools");
    assert!(
        Path::new("/usr/lib/u-boot/maltael/u-boot.bin").is_file(),
        "Debian's maltael U-Boot is missing: install u-boot-qemu"
    );
    let t = common::tmp("lmx-e2e-");
    let boards = t.path().join("boards");
    std::fs::create_dir(&boards).unwrap();
    std::fs::write(boards.join("mipsel-lzma-unknown.toml"), BOARD).unwrap();
    let kernel = vmlinux(t.path(), "mipsel-linux-gnu");
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("init"), "#!/bin/sh\n").unwrap();
    let squash = t.path().join("rootfs.squashfs");
    run(Command::new("mksquashfs").arg(&root).arg(&squash).args([
        "-noappend",
        "-quiet",
        "-all-root",
    ]));

    let _vm = one_vm();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lmx"))
        .args([
            "tftpboot",
            "--boards-dir",
            s(&boards),
            "--board",
            "mipsel-lzma-unknown",
            "--kernel",
            s(&kernel),
            "--rootfs",
            s(&squash),
            "--lzma-rootfs",
            "--no-console",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A watchdog, not a performance threshold: a hung run fails here
    // instead of hanging the suite.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let flat = common::flat(&all);
    assert!(!out.status.success(), "{all}");
    // The board file does not know, so planning only notes it ...
    assert!(
        flat.contains("whether U-Boot has `lzmadec` is unknown"),
        "{all}"
    );
    // ... and U-Boot itself was asked, at its prompt ...
    assert!(flat.contains("at the U-Boot prompt"), "{all}");
    assert!(flat.contains("what this U-Boot can unpack (help)"), "{all}");
    assert!(
        flat.contains("its U-Boot has no `lzmadec` command (its `help` does not list it)"),
        "{all}"
    );
    // ... before anything was loaded.
    assert!(!flat.contains("==> tftpboot"), "a load was started:\n{all}");
    assert!(!flat.contains("lzmadec 0x"), "{all}");
}
