//! Helpers shared by the oracle tests: run a reference tool, failing
//! loudly (naming the Debian package) when it is not installed.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Debian package that ships each reference tool.
fn package_of(tool: &str) -> &'static str {
    match tool {
        "mkimage" | "dumpimage" => "u-boot-tools",
        "dtc" | "fdtget" | "fdtput" => "device-tree-compiler",
        "unsquashfs" | "mksquashfs" => "squashfs-tools",
        "xz" | "lzma" => "xz-utils",
        _ => "?",
    }
}

/// A `Command` for `tool`, after checking that it exists on `PATH`.
pub fn tool(tool: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "reference tool `{tool}` is missing: install the Debian package `{}` \
         (apt-get install {})",
        package_of(tool),
        package_of(tool)
    );
    let mut c = Command::new(tool);
    c.env("TZ", "UTC").env("LC_ALL", "C");
    c
}

/// Runs a command, asserting success, and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn reference tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command and returns its stdout as a string.
pub fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("utf-8 output")
}

/// Compiles a `.dts` fixture from `tests/fixtures` to a DTB with `dtc`.
pub fn dtb_fixture(name: &str, dir: &Path) -> Vec<u8> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let out = dir.join(name).with_extension("dtb");
    run(tool("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&out)
        .arg(&src));
    std::fs::read(out).expect("read dtb")
}
