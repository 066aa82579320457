//! The test root filesystem: a static busybox, an `/init` that mounts the
//! kernel's file systems and prints [`MARKER`], as a squashfs built by
//! `lmx-builder` (no `mksquashfs`).
//!
//! The recipe lives in `testbed/rootfs/`: `init` (the script), `applets`
//! (the busybox applets linked into `/bin`; the list is fixed because an
//! ARM busybox cannot be asked for its applets on the host) and
//! `devices.table` (device nodes, `PATH TYPE MAJOR MINOR MODE UID GID`).

use std::path::{Path, PathBuf};

use lmx_builder::squashfs::{
    build_squashfs, parse_device_table, SquashfsCompression, SquashfsOptions, SquashfsSummary,
};

use crate::host::testbed_dir;
use crate::{Error, Result};

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
    let table_path = recipe_dir().join("devices.table");
    let table = std::fs::read_to_string(&table_path)
        .map_err(Error::io(format!("reading {}", table_path.display())))?;
    let mut opts = SquashfsOptions::new();
    opts.compression = SquashfsCompression::Xz;
    opts.all_root = true;
    opts.mtime = Some(0);
    opts.devices = parse_device_table(&table, &table_path.display().to_string())?;
    Ok(build_squashfs(tmp.path(), out, &opts)?)
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
}
