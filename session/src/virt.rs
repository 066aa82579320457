//! The virtual boards (`virtual = true` in the board file): lmx starts
//! them itself through `lmx-testbed`.
//!
//! Order matters. [`enter_network`] must run while the process is still
//! single-threaded (before the tokio runtime or any helper thread): it
//! moves the whole process into a private network namespace with a tap
//! carrying the board's server address, so the TFTP server and QEMU share
//! a link nothing else can see, and everything disappears when the
//! process exits. That needs root, or unprivileged user namespaces plus a
//! `/dev/net/tun` the user may open (see testbed/README.md). The MIPS
//! twins' U-Boot may need building from the package archive the first
//! time, so [`Virtual::prepare`] comes before the private network.
//!
//! Inputs the user did not give default to the test bed's: the cached
//! kernel ([`default_kernel`]), the busybox test rootfs whose `/init`
//! prints `LMX-USERLAND-READY` ([`default_rootfs`]) and the device tree
//! QEMU generates for the same machine ([`default_dtb`]).
//!
//! The MIPS twins (`qemu-mips`, `qemu-mipsel`, `qemu-mipsel-stock`) run on
//! QEMU's malta: U-Boot from a 4 MiB flash image, no device tree (the
//! kernel gets its command line the legacy way). Their U-Boot is the
//! board's `qemu.firmware`: an absolute path is used as it is (Debian's
//! maltael build for `qemu-mipsel-stock`); any other name means the LZMA
//! build of `testbed/uboot.sh`.
//!
//! The vendor-dialect twins (`qemu-mips-ar750`, `qemu-mipsel-mt300`,
//! `qemu-aarch64-mt7622`) name their U-Boot in `qemu.uboot_build`: the
//! `testbed/uboot.sh` build configured to talk like a real board's boot
//! loader, on malta or, with `-bios` or in pflash, on `virt`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use lmx_boards::{Arch as BoardArch, Board, Endian};
use lmx_testbed::{Arch, Console, Firmware, Pflash, Tap, Vm, VmConfig};

use crate::report::Reporter;
use crate::setup::SetupError;

/// The tap device inside the private namespace.
pub const TAP: &str = "tap0";

/// The test bed's architecture for a virtual board (every board
/// architecture has a machine: `virt` for ARM, malta for MIPS).
pub fn arch(board: &Board) -> Arch {
    match (board.cpu.arch, board.cpu.endian) {
        (BoardArch::Aarch64, _) => Arch::Aarch64,
        (BoardArch::Armv7l, _) => Arch::Armv7l,
        (BoardArch::Mips, Endian::Big) => Arch::Mips,
        (BoardArch::Mips, Endian::Little) => Arch::Mipsel,
    }
}

/// A virtual board whose host side is ready: QEMU is installed and the
/// U-Boot it runs is on disk.
#[derive(Debug, Clone)]
pub struct Virtual {
    /// The machine.
    pub arch: Arch,
    /// The U-Boot binary, in the CPU's byte order: the test bed build the
    /// board's `qemu.uboot_build` names (a vendor-dialect twin); else for
    /// the MIPS twins the board's `qemu.firmware` when it is an absolute
    /// path, else the LZMA build of `testbed/uboot.sh`; for the ARM boards
    /// Debian's `u-boot-qemu` build.
    pub uboot: PathBuf,
}

impl Virtual {
    /// Checks that QEMU and U-Boot are installed, and builds (and caches)
    /// a test bed U-Boot (the MIPS twins', a vendor-dialect twin's) the
    /// first time, which needs the package archive: call this before
    /// [`enter_network`].
    pub fn prepare(board: &Board, report: &mut dyn Reporter) -> Result<Virtual, SetupError> {
        let arch = arch(board);
        lmx_testbed::find_qemu(arch).map_err(SetupError::Packages)?;
        if let Some(build) = board.qemu.as_ref().and_then(|q| q.uboot_build.as_deref()) {
            report.say(&format!(
                "==> test bed U-Boot {build} (testbed/uboot.sh {build}; cached after the first build)"
            ));
            let uboot = lmx_testbed::uboot_build(build).map_err(SetupError::testbed)?;
            return Ok(Virtual { arch, uboot });
        }
        if !arch.is_malta() {
            lmx_testbed::uboot_firmware(arch).map_err(SetupError::testbed)?;
        }
        let given = board
            .qemu
            .as_ref()
            .map(|q| PathBuf::from(&q.firmware))
            .filter(|p| p.is_absolute() && arch.is_malta());
        let uboot = match given {
            Some(p) if p.is_file() => p,
            Some(path) => {
                return Err(SetupError::MissingUBoot {
                    board: board.name.clone(),
                    path,
                })
            }
            None => {
                if arch.is_malta() {
                    report.say(&format!(
                        "==> test bed U-Boot with LZMA (testbed/uboot.sh {}; cached after the first build)",
                        arch.uboot_build()
                    ));
                }
                lmx_testbed::uboot_firmware(arch).map_err(SetupError::testbed)?
            }
        };
        Ok(Virtual { arch, uboot })
    }
}

/// Enters the private network: `server_ip/prefix` on the tap. Call first,
/// while the process has one thread.
pub fn enter_network(server_ip: Ipv4Addr, prefix: u8) -> Result<(), SetupError> {
    let host = Ipv4Net::new(server_ip, prefix).map_err(|e| SetupError::Network(e.to_string()))?;
    lmx_testbed::enter_private_netns(host, TAP).map_err(|e| SetupError::Network(e.to_string()))
}

/// Where a virtual board's flash lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    /// Nothing kept: an ARM board runs its U-Boot with `-bios`; a MIPS
    /// twin gets a fresh flash image in the session's scratch directory.
    Fresh,
    /// Flash files in `dir`, made the first time and left as they are
    /// afterwards, so a saved environment or a written firmware is there
    /// on the next start: one 4 MiB `flash.img` on the MIPS twins, the
    /// pflash banks `flash0.img` (U-Boot) and `flash1.img` (the
    /// environment) on ARM.
    Kept {
        /// The directory (see [`default_flash_dir`]).
        dir: PathBuf,
        /// Start bank 0 read-only, as a write-protected chip (ARM only).
        write_protect: bool,
    },
}

/// The machine to run for `board`: `console` as given, the tap when
/// `network`, and its flash as `flash` says (a fresh malta image goes into
/// `scratch`). Kept flash files are named to the user.
pub fn vm_config(
    board: &Board,
    v: &Virtual,
    console: Console,
    network: bool,
    flash: &Flash,
    scratch: &Path,
    report: &mut dyn Reporter,
) -> Result<VmConfig, SetupError> {
    let mut cfg = match flash {
        Flash::Fresh if v.arch.is_malta() => {
            let image = lmx_testbed::malta::create_flash(scratch, v.arch, &v.uboot, false)
                .map_err(SetupError::testbed)?;
            VmConfig::malta(v.arch, console, image)
        }
        Flash::Fresh => {
            // `-bios` with the U-Boot `prepare` chose (Debian's, or a
            // vendor-dialect twin's).
            let mut cfg = VmConfig::new(v.arch, console);
            cfg.firmware = Firmware::Bios(v.uboot.clone());
            cfg
        }
        Flash::Kept { dir, .. } if v.arch.is_malta() => {
            let image = lmx_testbed::malta::create_flash(dir, v.arch, &v.uboot, true).map_err(
                |source| SetupError::FlashFiles {
                    dir: dir.clone(),
                    source,
                },
            )?;
            report.say(&format!("==> flash of {}: {}", board.name, image.display()));
            VmConfig::malta(v.arch, console, image)
        }
        Flash::Kept { dir, write_protect } => {
            let mut banks =
                Pflash::create(dir, &v.uboot, true).map_err(|source| SetupError::FlashFiles {
                    dir: dir.clone(),
                    source,
                })?;
            banks.readonly0 = *write_protect;
            report.say(&format!(
                "==> flash of {}: {} and {} (environment at the start of the second)",
                board.name,
                banks.flash0.display(),
                banks.flash1.display()
            ));
            let mut cfg = VmConfig::new(v.arch, console);
            cfg.firmware = Firmware::Pflash(banks);
            cfg
        }
    };
    if network {
        cfg.network = Some(Tap { name: TAP.into() });
    }
    Ok(cfg)
}

/// Starts the board; QEMU dies with the calling thread (keep it the main one).
pub fn start(cfg: &VmConfig) -> Result<Vm, SetupError> {
    Vm::start(cfg).map_err(SetupError::testbed)
}

/// `$LMX_CACHE_DIR`, `$XDG_CACHE_HOME/lmx` or `~/.cache/lmx`, then
/// `virtual/<board>`: where a virtual board's flash is kept unless the
/// user says otherwise, so every command sees the same flash. `None` when
/// none of those variables is set.
pub fn default_flash_dir(board: &Board) -> Option<PathBuf> {
    let var = std::env::var_os;
    let base = var("LMX_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("lmx")))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache/lmx")))?;
    Some(base.join("virtual").join(&board.name))
}

/// The cached test bed kernel (built the first time, about 5 minutes).
pub fn default_kernel(arch: Arch, report: &mut dyn Reporter) -> Result<PathBuf, SetupError> {
    report.say(&format!(
        "==> test bed kernel (testbed/kernel.sh {arch}; cached after the first build)"
    ));
    lmx_testbed::kernel(arch).map_err(SetupError::testbed)
}

/// The test rootfs (busybox, or for big-endian MIPS the static `/init`
/// program), built once and then taken from the cache.
pub fn default_rootfs(arch: Arch) -> Result<PathBuf, SetupError> {
    lmx_testbed::rootfs::cached_for(arch).map_err(SetupError::testbed)
}

/// The machine's own device tree, as QEMU generates it; `None` for the
/// MIPS twins, whose U-Boot passes no device tree (the malta kernel has
/// its own built in).
pub fn default_dtb(arch: Arch) -> Result<Option<PathBuf>, SetupError> {
    if arch.is_malta() {
        return Ok(None);
    }
    let cfg = VmConfig::new(arch, Console::Pty);
    lmx_testbed::dump_dtb_cached(&cfg)
        .map(Some)
        .map_err(SetupError::testbed)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::setup::testing::board;

    #[test]
    fn every_virtual_board_has_a_machine() {
        assert_eq!(arch(&board("qemu-aarch64")), Arch::Aarch64);
        assert_eq!(arch(&board("qemu-armv7l")), Arch::Armv7l);
        assert_eq!(arch(&board("qemu-mips")), Arch::Mips);
        assert_eq!(arch(&board("qemu-mipsel")), Arch::Mipsel);
        assert_eq!(arch(&board("qemu-mips-ar750")), Arch::Mips);
        assert_eq!(arch(&board("qemu-mipsel-mt300")), Arch::Mipsel);
        assert_eq!(arch(&board("qemu-aarch64-mt7622")), Arch::Aarch64);
    }

    #[test]
    fn flash_is_kept_per_board_in_the_cache() {
        let b = board("qemu-aarch64");
        let dir = default_flash_dir(&b);
        // HOME is set wherever the tests run; the board's name ends it.
        assert!(dir.unwrap().ends_with("virtual/qemu-aarch64"));
    }

    #[test]
    fn fresh_arm_boards_run_u_boot_as_bios_and_get_the_tap() {
        let b = board("qemu-aarch64");
        let v = Virtual {
            arch: Arch::Aarch64,
            uboot: PathBuf::from("/nonexistent/u-boot.bin"),
        };
        let mut r = crate::Recorder::default();
        let cfg = vm_config(
            &b,
            &v,
            Console::Pty,
            true,
            &Flash::Fresh,
            Path::new("/nonexistent"),
            &mut r,
        )
        .unwrap();
        assert_eq!(cfg.network.as_ref().map(|t| t.name.as_str()), Some(TAP));
        // The U-Boot `prepare` chose, whichever it is (a vendor-dialect
        // twin runs its own build).
        assert_eq!(cfg.firmware, Firmware::Bios(v.uboot.clone()));
        assert!(r.lines.is_empty(), "{:?}", r.lines);
    }

    #[test]
    fn kept_arm_flash_is_two_banks_named_to_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let uboot = dir.path().join("u-boot.bin");
        std::fs::write(&uboot, [0u8; 1024]).unwrap();
        let v = Virtual {
            arch: Arch::Aarch64,
            uboot,
        };
        let mut r = crate::Recorder::default();
        let flash = Flash::Kept {
            dir: dir.path().join("fl"),
            write_protect: true,
        };
        let cfg = vm_config(
            &board("qemu-aarch64"),
            &v,
            Console::Pty,
            false,
            &flash,
            dir.path(),
            &mut r,
        )
        .unwrap();
        match &cfg.firmware {
            Firmware::Pflash(p) => {
                assert!(p.readonly0);
                assert!(p.flash0.is_file() && p.flash1.is_file());
            }
            other => panic!("{other:?}"),
        }
        assert!(cfg.network.is_none());
        assert_eq!(r.lines.len(), 1);
        assert!(
            r.lines[0].starts_with("==> flash of qemu-aarch64: ")
                && r.lines[0].ends_with("(environment at the start of the second)"),
            "{:?}",
            r.lines
        );
    }
}
