//! `lmx-builder`: the artifacts a router boots from RAM over TFTP or
//! from flash, built on the host without `mkimage`, `mksquashfs`, `lzma`
//! or `fdtput`.
//!
//! - [`uimage`]: U-Boot legacy images (kernel, ramdisk, script, firmware),
//!   byte-identical to `mkimage`, and their verification.
//! - [`fit`]: FIT images (kernel + DTB + optional ramdisk, hashed, with a
//!   default configuration), written and read.
//! - [`fdt`]: a read-modify-write device tree codec; [`dtedit`] the edits a
//!   RAM boot needs (`/chosen/bootargs`, the phram `/reserved-memory` node,
//!   `status`, the appended-DTB kernel of old MIPS U-Boots).
//! - [`compress`]: LZMA in the legacy `.lzma` container U-Boot reads, and gzip.
//! - [`squashfs`]: a reproducible squashfs root filesystem from a directory.
//!
//! Everything here is a pure function of its inputs (and
//! `SOURCE_DATE_EPOCH`); nothing talks to a board. The RAM layout planner
//! and the boot plan build on these pieces.
#![warn(missing_docs)]

pub mod bootargs;
pub mod build;
pub mod caps;
pub mod compress;
pub mod dtedit;
pub mod fdt;
pub mod firmware;
pub mod fit;
pub mod fuzzing;
pub mod inspect;
pub mod kernel;
pub mod layout;
pub mod manifest;
pub mod plan;
pub mod saved;
pub mod squashfs;
pub mod uimage;

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same
/// directory, synced and then renamed into place: `path` holds either its
/// old content or the complete new one, never half an artifact. The file
/// gets mode 0644.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".lmx-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn write_atomically_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.img");
        std::fs::write(&f, b"old old old").unwrap();
        super::write_atomically(&f, b"new").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
