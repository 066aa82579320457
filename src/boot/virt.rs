//! The virtual board (`virtual = true` in the board file): lmx starts it
//! itself through `lmx-testbed`.
//!
//! Order matters. [`enter_network`] must run while the process is still
//! single-threaded (before the tokio runtime or any helper thread): it
//! moves the whole `lmx` process into a private network namespace with a
//! tap carrying the board's server address, so the TFTP server and QEMU
//! share a link nothing else can see, and everything disappears when
//! `lmx` exits. That needs root, or unprivileged user namespaces plus a
//! `/dev/net/tun` the user may open (see testbed/README.md).
//!
//! Inputs the user did not give default to the test bed's: the cached
//! kernel (`testbed/kernel.sh`), the busybox test rootfs (its `/init`
//! prints `LMX-USERLAND-READY`) and the device tree QEMU generates for the
//! same machine options.
//!
//! The MIPS twins (`qemu-mips`, `qemu-mipsel`, `qemu-mipsel-stock`) run on
//! QEMU's malta: U-Boot from a 4 MiB flash image made per run, no device
//! tree (the kernel gets its command line the legacy way), and for
//! big-endian a rootfs whose `/init` is a small static program (Debian has
//! no big-endian MIPS userland). Their U-Boot is the board's
//! `qemu.firmware`: an absolute path is used as it is (Debian's maltael
//! build for `qemu-mipsel-stock`); any other name means the LZMA build of
//! `testbed/uboot.sh`, which the first time downloads Debian's U-Boot
//! source, so [`prepare_firmware`] runs before the private network.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use lmx_boards::{Arch as BoardArch, Board, Endian};
use lmx_testbed::{Arch, Console, Tap, Vm, VmConfig};
use miette::{miette, WrapErr};

/// The tap device inside the private namespace.
pub const TAP: &str = "tap0";

/// The test bed's architecture for a virtual board (every board
/// architecture has a machine: `virt` for ARM, malta for MIPS).
pub fn arch(board: &Board) -> miette::Result<Arch> {
    Ok(match (board.cpu.arch, board.cpu.endian) {
        (BoardArch::Aarch64, _) => Arch::Aarch64,
        (BoardArch::Armv7l, _) => Arch::Armv7l,
        (BoardArch::Mips, Endian::Big) => Arch::Mips,
        (BoardArch::Mips, Endian::Little) => Arch::Mipsel,
    })
}

fn testbed_err(e: lmx_testbed::Error) -> miette::Report {
    let text = e.to_string();
    if text.contains("qemu") || text.contains("QEMU") || text.contains("u-boot") {
        miette!(
            help = "install the virtual board's packages with `scripts/deps.sh virtual`",
            "{text}"
        )
    } else {
        miette!("{text}")
    }
}

/// Enters the private network: `server_ip/prefix` on the tap. Call first.
pub fn enter_network(server_ip: Ipv4Addr, prefix: u8) -> miette::Result<()> {
    let host = Ipv4Net::new(server_ip, prefix).map_err(|e| miette!("{e}"))?;
    lmx_testbed::enter_private_netns(host, TAP).map_err(|e| {
        miette!(
            help = "a virtual board needs root, or unprivileged user namespaces and a /dev/net/tun the user may open (testbed/README.md, \"Network without root\")",
            "{e}"
        )
    })
}

/// Checks that QEMU and U-Boot are installed (before anything else runs).
pub fn check_host(arch: Arch) -> miette::Result<()> {
    lmx_testbed::find_qemu(arch).map_err(|e| {
        miette!(
            help = "install the virtual board's packages with `scripts/deps.sh virtual`",
            "{e}"
        )
    })?;
    if !arch.is_malta() {
        lmx_testbed::uboot_firmware(arch).map_err(testbed_err)?;
    }
    Ok(())
}

/// The U-Boot binary `board` runs, in the CPU's byte order: for the MIPS
/// twins the board's `qemu.firmware` when it is an absolute path, else the
/// LZMA build of `testbed/uboot.sh` (built and cached the first time,
/// which needs the package archive: call this before [`enter_network`]).
/// For the ARM boards Debian's `u-boot-qemu` build.
pub fn prepare_firmware(board: &Board, arch: Arch) -> miette::Result<PathBuf> {
    firmware(board, arch, true)
}

fn firmware(board: &Board, arch: Arch, announce: bool) -> miette::Result<PathBuf> {
    let given = board
        .qemu
        .as_ref()
        .map(|q| PathBuf::from(&q.firmware))
        .filter(|p| p.is_absolute() && arch.is_malta());
    match given {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => Err(miette!(
            help = "install the virtual board's packages with `scripts/deps.sh virtual`",
            "board {}: U-Boot {} is missing",
            board.name,
            p.display()
        )),
        None => {
            if arch.is_malta() && announce {
                eprintln!(
                    "==> test bed U-Boot with LZMA (testbed/uboot.sh {}; cached after the first build)",
                    arch.uboot_build()
                );
            }
            lmx_testbed::uboot_firmware(arch).map_err(testbed_err)
        }
    }
}

/// The machine lmx runs for an ARM `virt` board (`-bios` Debian's U-Boot).
/// The MIPS twins need a flash image made per run: use [`vm_config_for`].
pub fn vm_config(arch: Arch, console: Console, network: bool) -> VmConfig {
    let mut cfg = VmConfig::new(arch, console);
    if network {
        cfg.network = Some(Tap { name: TAP.into() });
    }
    cfg
}

/// The machine lmx runs for `board`, with what it needs in `dir`: for the
/// MIPS twins a fresh malta flash image holding [`prepare_firmware`]'s
/// U-Boot (word-swapped on little-endian); for the ARM boards the same as
/// [`vm_config`].
pub fn vm_config_for(
    board: &Board,
    arch: Arch,
    console: Console,
    network: bool,
    dir: &Path,
) -> miette::Result<VmConfig> {
    if !arch.is_malta() {
        return Ok(vm_config(arch, console, network));
    }
    let uboot = firmware(board, arch, false)?;
    let flash = lmx_testbed::malta::create_flash(dir, arch, &uboot, false).map_err(testbed_err)?;
    let mut cfg = VmConfig::malta(arch, console, flash);
    if network {
        cfg.network = Some(Tap { name: TAP.into() });
    }
    Ok(cfg)
}

/// The flash file of a MIPS twin kept between runs: `dir/flash.img`,
/// made from `uboot` (see [`prepare_firmware`]) the first time and left
/// as it is afterwards, so a saved environment or a firmware written by
/// `lmx flash` is there on the next start (`lmx env`, `lmx flash`).
pub fn kept_malta_flash(arch: Arch, uboot: &Path, dir: &Path) -> miette::Result<PathBuf> {
    lmx_testbed::malta::create_flash(dir, arch, uboot, true)
        .map_err(testbed_err)
        .wrap_err_with(|| format!("preparing the flash file in {}", dir.display()))
}

/// The cached test bed kernel (built the first time, about 5 minutes).
pub fn default_kernel(arch: Arch) -> miette::Result<PathBuf> {
    eprintln!("==> test bed kernel (testbed/kernel.sh {arch}; cached after the first build)");
    lmx_testbed::kernel(arch).map_err(testbed_err)
}

/// The test rootfs (busybox, or for big-endian MIPS the static `/init`
/// program), built once and then taken from the cache.
pub fn default_rootfs(arch: Arch) -> miette::Result<PathBuf> {
    lmx_testbed::rootfs::cached_for(arch).map_err(testbed_err)
}

/// The machine's own device tree, as QEMU generates it; `None` for the
/// MIPS twins, whose U-Boot passes no device tree (the malta kernel has
/// its own built in).
pub fn default_dtb(arch: Arch) -> miette::Result<Option<PathBuf>> {
    if arch.is_malta() {
        return Ok(None);
    }
    let cfg = vm_config(arch, Console::Pty, false);
    lmx_testbed::dump_dtb_cached(&cfg)
        .map(Some)
        .map_err(testbed_err)
}

/// Starts the board; QEMU dies with the calling thread (keep it the main one).
pub fn start(cfg: &VmConfig) -> miette::Result<Vm> {
    Vm::start(cfg).map_err(testbed_err)
}
