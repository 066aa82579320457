//! The test root filesystem: a static busybox, an `/init` that mounts the
//! kernel's file systems and prints [`MARKER`], as a squashfs built by
//! `lmx-builder` (no `mksquashfs`).
//!
//! The recipe lives in `testbed/rootfs/`: `init` (the script), `applets`
//! (the busybox applets linked into `/bin`; the list is fixed because an
//! ARM busybox cannot be asked for its applets on the host) and
//! `devices.table` (device nodes, `PATH TYPE MAJOR MINOR MODE UID GID`).
//!
//! Debian 12 has no big-endian MIPS userland, so the `qemu-mips` rootfs is
//! different: its `/init` is `mips-init.c`, compiled here with
//! `mips-linux-gnu-gcc -static` ([`compile_init`]), which prints the same
//! marker line and then answers a few shell-like commands on the console
//! ([`build_with_init`]). [`build_for`] picks the right one per [`Arch`].

use std::path::{Path, PathBuf};

use lmx_builder::squashfs::{
    build_squashfs, parse_device_table, SquashfsCompression, SquashfsOptions, SquashfsSummary,
};

use crate::host::testbed_dir;
use crate::{Arch, Error, Result};

/// The line `/init` prints when userland runs (followed by the machine
/// name and the root device).
pub const MARKER: &str = "LMX-USERLAND-READY";

/// The directory holding the rootfs recipe (`testbed/rootfs`).
pub fn recipe_dir() -> PathBuf {
    testbed_dir().join("rootfs")
}

/// Lays out the root tree in `dir` (which must be empty or missing):
/// `/bin/busybox` and its applet links, `/init`, and the mount points.
pub fn stage(busybox: &Path, dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let recipe = recipe_dir();
    let read = |name: &str| {
        let p = recipe.join(name);
        std::fs::read_to_string(&p).map_err(Error::io(format!("reading {}", p.display())))
    };
    for d in ["bin", "dev", "proc", "sys", "tmp", "root", "etc"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(Error::io(format!("creating {}", p.display())))?;
    }
    let bb = dir.join("bin/busybox");
    std::fs::copy(busybox, &bb).map_err(|e| Error::Missing {
        what: format!("static busybox ({e})"),
        path: busybox.to_owned(),
        hint: "run `scripts/deps.sh virtual`".into(),
    })?;
    let init = dir.join("init");
    std::fs::write(&init, read("init")?)
        .map_err(Error::io(format!("writing {}", init.display())))?;
    for p in [&bb, &init] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
            .map_err(Error::io(format!("chmod {}", p.display())))?;
    }
    for applet in read("applets")?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let link = dir.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link)
            .map_err(Error::io(format!("linking {}", link.display())))?;
    }
    Ok(())
}

/// Builds the test rootfs squashfs at `out` from the static `busybox`:
/// xz-compressed, all files owned by root, timestamps fixed (the image is
/// reproducible), device nodes from `devices.table`.
pub fn build(busybox: &Path, out: &Path) -> Result<SquashfsSummary> {
    let tmp = tempfile::tempdir().map_err(Error::io("creating a staging directory"))?;
    stage(busybox, tmp.path())?;
    squash(tmp.path(), out)
}

/// Squashes the staged tree `dir` into `out`: xz, all root, mtime 0,
/// device nodes from `devices.table`.
fn squash(dir: &Path, out: &Path) -> Result<SquashfsSummary> {
    let table_path = recipe_dir().join("devices.table");
    let table = std::fs::read_to_string(&table_path)
        .map_err(Error::io(format!("reading {}", table_path.display())))?;
    let mut opts = SquashfsOptions::new();
    opts.compression = SquashfsCompression::Xz;
    opts.all_root = true;
    opts.mtime = Some(0);
    opts.devices = parse_device_table(&table, &table_path.display().to_string())?;
    Ok(build_squashfs(dir, out, &opts)?)
}

/// The C source of the big-endian MIPS twin's `/init`.
pub fn init_source() -> PathBuf {
    recipe_dir().join("mips-init.c")
}

/// Compiles [`init_source`] into a static, stripped executable `out` for
/// `arch` with Debian's cross compiler (`mips-linux-gnu-gcc` for
/// [`Arch::Mips`]; package `gcc-mips-linux-gnu`, from `scripts/deps.sh
/// virtual`).
pub fn compile_init(arch: Arch, out: &Path) -> Result<()> {
    let gcc = match arch {
        Arch::Aarch64 => "aarch64-linux-gnu-gcc",
        Arch::Armv7l => "arm-linux-gnueabihf-gcc",
        Arch::Mips => "mips-linux-gnu-gcc",
        Arch::Mipsel => "mipsel-linux-gnu-gcc",
    };
    let src = init_source();
    let mut cmd = std::process::Command::new(gcc);
    cmd.args(["-static", "-Os", "-s", "-Wall", "-o"])
        .arg(out)
        .arg(&src)
        .stdin(std::process::Stdio::null());
    let res = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Missing {
            what: format!("the cross compiler {gcc}"),
            path: PathBuf::from(gcc),
            hint: format!(
                "run `scripts/deps.sh virtual` (package gcc-{})",
                gcc.trim_end_matches("-gcc")
            ),
        },
        _ => Error::Spawn {
            program: gcc.into(),
            source: e,
        },
    })?;
    if !res.status.success() {
        return Err(Error::CommandFailed {
            command: format!(
                "{gcc} -static -Os -s -Wall -o {} {}",
                out.display(),
                src.display()
            ),
            status: res.status,
            output: String::from_utf8_lossy(&res.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Lays out a root tree in `dir` whose `/init` is the executable `init`
/// (no busybox, no shell): the mount points and `/init`.
pub fn stage_with_init(init: &Path, dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for d in ["dev", "proc", "sys", "tmp"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(Error::io(format!("creating {}", p.display())))?;
    }
    let target = dir.join("init");
    std::fs::copy(init, &target).map_err(Error::io(format!(
        "copying {} to {}",
        init.display(),
        target.display()
    )))?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
        .map_err(Error::io(format!("chmod {}", target.display())))
}

/// Builds a rootfs squashfs at `out` whose `/init` is the static program
/// `init` (see [`stage_with_init`]), with the same options as [`build`].
pub fn build_with_init(init: &Path, out: &Path) -> Result<SquashfsSummary> {
    let tmp = tempfile::tempdir().map_err(Error::io("creating a staging directory"))?;
    stage_with_init(init, tmp.path())?;
    squash(tmp.path(), out)
}

/// The test rootfs for `arch` at `out`: busybox and the `init` script where
/// Debian has a static busybox ([`build`]), the compiled `mips-init.c` for
/// big-endian MIPS ([`compile_init`], [`build_with_init`]).
pub fn build_for(arch: Arch, out: &Path) -> Result<SquashfsSummary> {
    if arch == Arch::Mips {
        let tmp = tempfile::tempdir().map_err(Error::io("creating a build directory"))?;
        let init = tmp.path().join("init");
        compile_init(arch, &init)?;
        build_with_init(&init, out)
    } else {
        build(&crate::host::busybox(arch)?, out)
    }
}

/// [`build_for`]'s image for `arch`, built once and kept in the cache
/// (`cache_root()/rootfs/KEY/rootfs.squashfs`), keyed by everything that
/// decides its bytes: this module's source, the recipe files, and the
/// busybox binary (or, for big-endian MIPS, the cross compiler's version).
/// Building it (xz) was most of the host time of a virtual-board boot.
pub fn cached_for(arch: Arch) -> Result<PathBuf> {
    let mut owned: Vec<Vec<u8>> = vec![
        arch.name().as_bytes().to_vec(),
        include_str!("rootfs.rs").as_bytes().to_vec(),
    ];
    for f in ["applets", "devices.table", "init", "mips-init.c"] {
        let p = recipe_dir().join(f);
        owned.push(std::fs::read(&p).map_err(Error::io(format!("reading {}", p.display())))?);
    }
    if arch == Arch::Mips {
        let gcc = std::process::Command::new("mips-linux-gnu-gcc")
            .arg("--version")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        owned.push(gcc);
    } else {
        let bb = crate::host::busybox(arch)?;
        owned.push(std::fs::read(&bb).map_err(Error::io(format!("reading {}", bb.display())))?);
    }
    let parts: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    crate::host::cached_file("rootfs", "rootfs.squashfs", &parts, |tmp| {
        build_for(arch, tmp).map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_a_tree_and_builds_an_image() {
        let dir = tempfile::tempdir().unwrap();
        // Any executable stands in for busybox here.
        let fake = dir.path().join("busybox");
        std::fs::write(&fake, b"\x7fELF fake").unwrap();
        let out = dir.path().join("rootfs.squashfs");
        let summary = build(&fake, &out).unwrap();
        assert!(summary.bytes > 0 && summary.bytes % 4096 == 0);
        let img = std::fs::read(&out).unwrap();
        assert_eq!(&img[..4], b"hsqs");
        let staged = dir.path().join("staged");
        stage(&fake, &staged).unwrap();
        assert_eq!(
            std::fs::read_link(staged.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        let init = std::fs::read_to_string(staged.join("init")).unwrap();
        assert!(init.starts_with("#!/bin/sh") && init.contains(MARKER));
    }

    #[test]
    fn big_endian_init_is_a_static_mips_program_in_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let init = dir.path().join("init");
        compile_init(Arch::Mips, &init)
            .unwrap_or_else(|e| panic!("the big-endian rootfs needs the MIPS cross compiler: {e}"));
        let elf = std::fs::read(&init).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(elf[4], 1, "ELFCLASS32");
        assert_eq!(elf[5], 2, "ELFDATA2MSB (big-endian)");
        assert_eq!(u16::from_be_bytes([elf[18], elf[19]]), 8, "EM_MIPS");
        // Statically linked: no PT_INTERP program header.
        let phoff = u32::from_be_bytes(elf[28..32].try_into().unwrap()) as usize;
        let phnum = u16::from_be_bytes([elf[44], elf[45]]) as usize;
        for i in 0..phnum {
            let ph = &elf[phoff + i * 32..];
            assert_ne!(
                u32::from_be_bytes(ph[..4].try_into().unwrap()),
                3,
                "PT_INTERP"
            );
        }
        assert!(elf.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));

        let out = dir.path().join("rootfs.squashfs");
        build_with_init(&init, &out).unwrap();
        // unsquashfs, the reference reader, lists /init and /dev/console.
        let list = std::process::Command::new("unsquashfs")
            .args(["-lls", "-d", ""])
            .arg(&out)
            .output()
            .expect("unsquashfs (package squashfs-tools)");
        let text = String::from_utf8_lossy(&list.stdout);
        assert!(list.status.success(), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("-rwxr-xr-x root/root") && l.ends_with(" /init")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("crw------- root/root") && l.contains("/dev/console")),
            "{text}"
        );
    }
}
