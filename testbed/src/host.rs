//! What the host must provide for a virtual board, found where Debian and
//! `scripts/deps.sh virtual` put it — or an error that says how to get it.
//!
//! | piece | where | provided by |
//! | --- | --- | --- |
//! | QEMU ≥ 8 | `qemu-system-aarch64`/`-arm` in `PATH` | `qemu-system-arm` (bookworm-backports on Debian 12) |
//! | QEMU ≥ 8 (MIPS) | `qemu-system-mips`/`-mipsel` in `PATH` | `qemu-system-mips` (bookworm-backports on Debian 12) |
//! | U-Boot | `/usr/lib/u-boot/qemu_arm64/u-boot.bin`, `qemu_arm/…` | `u-boot-qemu` |
//! | U-Boot (MIPS, LZMA) | `$LMX_CACHE_DIR/u-boot/<key>/u-boot.bin` | `testbed/uboot.sh malta\|maltael`, from Debian's source package |
//! | U-Boot (a vendor-dialect twin) | `$LMX_CACHE_DIR/u-boot/<key>/u-boot.bin` | `testbed/uboot.sh ar750\|mt300\|mt7622` ([`uboot_build`]) |
//! | U-Boot (MIPS, stock) | `/usr/lib/u-boot/maltael/u-boot.bin` | `u-boot-qemu` (little-endian, no LZMA) |
//! | busybox | `/var/cache/lmx/busybox-arm64/bin/busybox` (`-armhf`, `-mipsel`) | `busybox-static:arm64`, unpacked by `scripts/deps.sh virtual` |
//! | `/init` (big-endian MIPS) | compiled from `testbed/rootfs/mips-init.c` | `gcc-mips-linux-gnu` |
//! | kernel | `$LMX_CACHE_DIR/kernel/<key>/Image` (`zImage`, `vmlinux`) | `testbed/kernel.sh` |

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Arch, Error, Result};

/// The lowest QEMU major version the board works with: QEMU 7.2 (Debian
/// 12's own) cannot complete U-Boot's buffered CFI flash writes, so
/// `saveenv` and flashing fail; 8 and later can.
pub const MIN_QEMU_MAJOR: u32 = 8;

const DEPS_HINT: &str = "run `scripts/deps.sh virtual`";

/// Finds the QEMU system emulator for `arch` in `PATH` and checks that its
/// version is at least [`MIN_QEMU_MAJOR`]. Returns its path.
pub fn find_qemu(arch: Arch) -> Result<PathBuf> {
    let binary = arch.qemu_binary();
    let path = which(binary).ok_or_else(|| Error::QemuNotFound {
        binary: binary.to_owned(),
    })?;
    let out = Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: path.display().to_string(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = parse_qemu_version(&text).ok_or_else(|| Error::CommandFailed {
        command: format!("{} --version", path.display()),
        status: out.status,
        output: format!("no \"QEMU emulator version X.Y\" line in: {}", text.trim()),
    })?;
    if version.0 < MIN_QEMU_MAJOR {
        return Err(Error::QemuTooOld {
            binary: path,
            found: format!("{}.{}.{}", version.0, version.1, version.2),
            min: MIN_QEMU_MAJOR,
        });
    }
    Ok(path)
}

/// Reads `QEMU emulator version X.Y.Z` from `qemu-system-* --version`.
pub fn parse_qemu_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("QEMU emulator version "))?;
    let word = rest.split_whitespace().next()?;
    let mut parts = word.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
    });
    let major = parts.next()?.ok()?;
    let minor = parts.next().and_then(|p| p.ok()).unwrap_or(0);
    let patch = parts.next().and_then(|p| p.ok()).unwrap_or(0);
    Some((major, minor, patch))
}

fn which(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The U-Boot binary of `arch`'s board: for the ARM boards the one
/// Debian's `u-boot-qemu` ships for the `virt` machine (U-Boot 2023.01 on
/// Debian 12); for the MIPS twins the LZMA build of `testbed/uboot.sh`
/// (built from Debian's source package the first time, about a minute,
/// then cached), in the CPU's byte order (not word-swapped; see
/// [`crate::malta`]).
pub fn uboot_firmware(arch: Arch) -> Result<PathBuf> {
    if arch.is_malta() {
        return cached_build("uboot.sh", arch.uboot_build(), "U-Boot binary");
    }
    let path = Path::new("/usr/lib/u-boot")
        .join(arch.uboot_build())
        .join("u-boot.bin");
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Missing {
            what: format!("U-Boot for QEMU's {arch} virt machine"),
            path,
            hint: format!("{DEPS_HINT} (Debian package u-boot-qemu)"),
        })
    }
}

/// The U-Boot of test bed build `name` (`testbed/uboot.sh NAME`: `malta`,
/// `maltael`, `qemu_arm64`, or a vendor-dialect twin's `ar750`, `mt300`,
/// `mt7622`): built from Debian's source package the first time (about a
/// minute), then taken from the cache. In the CPU's byte order.
pub fn uboot_build(name: &str) -> Result<PathBuf> {
    cached_build("uboot.sh", name, "U-Boot binary")
}

/// Debian's own little-endian malta U-Boot (`u-boot-qemu`): gzip uImages
/// only (no LZMA, `lzmadec`, FIT, `setexpr` or `bootz`). The board
/// `qemu-mipsel-stock` runs it, word-swapped like every little-endian
/// malta flash image.
pub fn debian_malta_uboot() -> Result<PathBuf> {
    let path = PathBuf::from("/usr/lib/u-boot/maltael/u-boot.bin");
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Missing {
            what: "Debian's U-Boot for QEMU's little-endian malta".into(),
            path,
            hint: format!("{DEPS_HINT} (Debian package u-boot-qemu)"),
        })
    }
}

/// The statically linked busybox for `arch`, unpacked (not installed: it is
/// a foreign architecture) by `scripts/deps.sh virtual` into
/// `/var/cache/lmx/busybox-<debian arch>/`.
pub fn busybox(arch: Arch) -> Result<PathBuf> {
    let path = PathBuf::from(format!(
        "/var/cache/lmx/busybox-{}/bin/busybox",
        arch.debian_arch()
    ));
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(Error::Missing {
            what: format!("static busybox for {arch}"),
            path,
            hint: format!(
                "{DEPS_HINT} (it unpacks busybox-static:{} with dpkg-deb)",
                arch.debian_arch()
            ),
        })
    }
}

/// The cache directory the test bed's scripts use too:
/// `$LMX_CACHE_DIR`, else `$XDG_CACHE_HOME/lmx`, else `~/.cache/lmx`.
pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("LMX_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(x).join("lmx");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/lmx"))
        .unwrap_or_else(|| std::env::temp_dir().join("lmx-cache"))
}

/// `name` in `cache_root()/kind/KEY/`, made by `make` (given a temporary
/// path beside it, renamed into place) when it is not there yet. The key
/// is the hex SHA-256 of `key_parts`: whatever decides the file's bytes.
pub fn cached_file(
    kind: &str,
    name: &str,
    key_parts: &[&[u8]],
    make: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in key_parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let dir = cache_root().join(kind).join(key);
    let out = dir.join(name);
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(&dir)
        .map_err(crate::Error::io(format!("creating {}", dir.display())))?;
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    make(&tmp)?;
    std::fs::rename(&tmp, &out)
        .map_err(crate::Error::io(format!("renaming into {}", out.display())))?;
    Ok(out)
}

/// The test bed's directory in the source tree (where `kernel.sh`, the
/// kernel fragments and the rootfs recipe are).
pub fn testbed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kernel image for `arch`: runs `testbed/kernel.sh ARCH`, which prints
/// the cached image at once when it exists and builds it otherwise (about
/// 5 minutes on 2 cores the first time; progress on stderr).
pub fn kernel(arch: Arch) -> Result<PathBuf> {
    cached_build("kernel.sh", arch.name(), "kernel image")
}

/// Runs `testbed/SCRIPT ARG`, a build-and-cache script that prints the path
/// of its (cached) result on stdout, and returns that path.
fn cached_build(script: &str, arg: &str, what: &str) -> Result<PathBuf> {
    let script = testbed_dir().join(script);
    let out = Command::new(&script)
        .arg(arg)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| Error::Spawn {
            program: script.display().to_string(),
            source,
        })?;
    let command = format!("{} {arg}", script.display());
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command,
            status: out.status,
            output: "see the messages above; packages: scripts/deps.sh virtual".into(),
        });
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Missing {
            what: format!("{what} printed by `{command}`"),
            path,
            hint: "remove the cache directory and run it again".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_versions() {
        assert_eq!(
            parse_qemu_version(
                "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright"
            ),
            Some((10, 0, 2))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)"),
            Some((7, 2, 15))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 9.1"),
            Some((9, 1, 0))
        );
        assert_eq!(parse_qemu_version("something else"), None);
    }

    #[test]
    fn firmware_paths_follow_debian() {
        assert!(
            matches!(
                uboot_firmware(Arch::Aarch64),
                Ok(p) if p.ends_with("qemu_arm64/u-boot.bin")
            ) || !Path::new("/usr/lib/u-boot/qemu_arm64").exists()
        );
    }
}
