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

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use lmx_boards::{Arch as BoardArch, Board};
use lmx_testbed::{Arch, Console, Tap, Vm, VmConfig};
use miette::miette;

/// The tap device inside the private namespace.
pub const TAP: &str = "tap0";

/// The test bed's architecture for a virtual board.
pub fn arch(board: &Board) -> miette::Result<Arch> {
    match board.cpu.arch {
        BoardArch::Aarch64 => Ok(Arch::Aarch64),
        BoardArch::Armv7l => Ok(Arch::Armv7l),
        other => Err(miette!(
            "virtual board {}: the test bed has no {} machine",
            board.name,
            other.as_str()
        )),
    }
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
    lmx_testbed::uboot_firmware(arch).map_err(testbed_err)?;
    Ok(())
}

/// The machine lmx runs for `board`.
pub fn vm_config(arch: Arch, console: Console, network: bool) -> VmConfig {
    let mut cfg = VmConfig::new(arch, console);
    if network {
        cfg.network = Some(Tap { name: TAP.into() });
    }
    cfg
}

/// The cached test bed kernel (built the first time, about 5 minutes).
pub fn default_kernel(arch: Arch) -> miette::Result<PathBuf> {
    eprintln!("==> test bed kernel (testbed/kernel.sh {arch}; cached after the first build)");
    lmx_testbed::kernel(arch).map_err(testbed_err)
}

/// Builds the test rootfs into `dir`.
pub fn default_rootfs(arch: Arch, dir: &Path) -> miette::Result<PathBuf> {
    let busybox = lmx_testbed::busybox(arch).map_err(testbed_err)?;
    let out = dir.join("rootfs.squashfs");
    lmx_testbed::rootfs::build(&busybox, &out).map_err(testbed_err)?;
    Ok(out)
}

/// The machine's own device tree, as QEMU generates it.
pub fn default_dtb(arch: Arch, dir: &Path) -> miette::Result<PathBuf> {
    let cfg = vm_config(arch, Console::Pty, false);
    lmx_testbed::dump_dtb(&cfg, &dir.join("virt.dtb")).map_err(testbed_err)
}

/// Starts the board; QEMU dies with the calling thread (keep it the main one).
pub fn start(cfg: &VmConfig) -> miette::Result<Vm> {
    Vm::start(cfg).map_err(testbed_err)
}
