//! `lmx-testbed`: the virtual board, a router you can boot without hardware.
//!
//! The ARM boards are QEMU's `virt` machine running the U-Boot that Debian
//! ships for it (`u-boot-qemu`); the MIPS twins are QEMU's `malta` running a
//! U-Boot built from Debian's source package with LZMA ([`malta`]). Both are
//! reached through a serial console (a unix socket
//! or a pty) and, when asked, through a tap link inside a private network
//! namespace. It boots a small real kernel (built once from Debian's
//! `linux-source-6.1` and cached) that mounts a busybox squashfs from RAM
//! through `phram`. The recipe, and why each piece is the way it is, is in
//! `docs/design/testbed.md`; this crate turns it into code for the `lmx`
//! binary (`--board qemu-*`) and for end-to-end tests.
//!
//! The pieces, each usable on its own:
//! - [`host`]: what the host must provide, found or explained:
//!   [`find_qemu`], [`uboot_firmware`], [`busybox`], [`kernel`].
//! - [`vm`]: [`VmConfig`] → [`Vm::start`], a QEMU process that dies with
//!   its parent; [`dump_dtb`] for the machine's device tree.
//! - [`netns`]: [`enter_private_netns`], a network of the process's own
//!   with a tap device, gone when the process ends.
//! - [`console`]: a console stream with a transcript and a small `expect`;
//!   [`uboot`] the few U-Boot interactions the test bed needs.
//! - [`rootfs`] and [`ramboot`]: the test root filesystem and the fixed RAM
//!   layout and device-tree edits of the verified RAM boot.
//!
//! Nothing here is hidden: every QEMU argument comes from
//! [`VmConfig::qemu_args`], every external program is named in the errors,
//! and nothing is left behind when the process ends (QEMU gets
//! `PR_SET_PDEATHSIG`, the namespace lives only as long as the process).
#![warn(missing_docs)]

pub mod console;
pub mod error;
pub mod host;
pub mod lock;
pub mod malta;
pub mod netns;
pub mod ramboot;
pub mod rootfs;
pub mod uboot;
pub mod vm;

pub use console::ConsoleStream;
pub use error::{Error, Result};
pub use host::{
    busybox, debian_malta_uboot, find_qemu, kernel, uboot_build, uboot_firmware, MIN_QEMU_MAJOR,
};
pub use lock::{one_vm, VmLock};
pub use netns::enter_private_netns;
pub use vm::{
    dump_dtb, dump_dtb_cached, Console, ConsoleEndpoint, Firmware, Pflash, Tap, Vm, VmConfig,
};

use std::fmt;
use std::str::FromStr;

/// The CPU architecture of a virtual board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// 64-bit ARM: `qemu-system-aarch64`, Cortex-A57 (board `qemu-aarch64`).
    Aarch64,
    /// 32-bit ARM: `qemu-system-arm`, Cortex-A15 (board `qemu-armv7l`).
    Armv7l,
    /// Big-endian 32-bit MIPS: `qemu-system-mips`, malta, 24Kc (board
    /// `qemu-mips`, the twin of gl-ar750).
    Mips,
    /// Little-endian 32-bit MIPS: `qemu-system-mipsel`, malta, 24Kc (boards
    /// `qemu-mipsel` and `qemu-mipsel-stock`, twins of the MT76xx routers).
    Mipsel,
}

impl Arch {
    /// The name used on the command line and by `testbed/kernel.sh`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Aarch64 => "aarch64",
            Arch::Armv7l => "armv7l",
            Arch::Mips => "mips",
            Arch::Mipsel => "mipsel",
        }
    }

    /// True for the MIPS twins (QEMU `malta`), false for the ARM `virt` boards.
    pub fn is_malta(self) -> bool {
        matches!(self, Arch::Mips | Arch::Mipsel)
    }

    /// True when the CPU runs big-endian (only [`Arch::Mips`]).
    pub fn is_big_endian(self) -> bool {
        self == Arch::Mips
    }

    /// QEMU's `-machine`: `virt` or `malta`.
    pub fn machine(self) -> &'static str {
        if self.is_malta() {
            "malta"
        } else {
            "virt"
        }
    }

    /// The QEMU system emulator for this architecture.
    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::Aarch64 => "qemu-system-aarch64",
            Arch::Armv7l => "qemu-system-arm",
            Arch::Mips => "qemu-system-mips",
            Arch::Mipsel => "qemu-system-mipsel",
        }
    }

    /// The `-cpu` model of the board.
    pub fn cpu(self) -> &'static str {
        match self {
            Arch::Aarch64 => "cortex-a57",
            Arch::Armv7l => "cortex-a15",
            Arch::Mips | Arch::Mipsel => "24Kc",
        }
    }

    /// The U-Boot build for this architecture: the directory of Debian's
    /// `u-boot-qemu` for the ARM boards, the defconfig (`malta`,
    /// `maltael`) that `testbed/uboot.sh` builds with LZMA for MIPS.
    pub fn uboot_build(self) -> &'static str {
        match self {
            Arch::Aarch64 => "qemu_arm64",
            Arch::Armv7l => "qemu_arm",
            Arch::Mips => "malta",
            Arch::Mipsel => "maltael",
        }
    }

    /// The Debian architecture of the userland (`busybox-static:ARCH`).
    /// Debian 12 has no big-endian MIPS port: for [`Arch::Mips`] the rootfs
    /// is a static `/init` program instead (see [`rootfs`]).
    pub fn debian_arch(self) -> &'static str {
        match self {
            Arch::Aarch64 => "arm64",
            Arch::Armv7l => "armhf",
            Arch::Mips => "mips",
            Arch::Mipsel => "mipsel",
        }
    }

    /// The kernel image `testbed/kernel.sh` builds (`Image`, `zImage`, or
    /// the `vmlinux` ELF for MIPS, which becomes a uImage).
    pub fn kernel_image(self) -> &'static str {
        match self {
            Arch::Aarch64 => "Image",
            Arch::Armv7l => "zImage",
            Arch::Mips | Arch::Mipsel => "vmlinux",
        }
    }

    /// The U-Boot command that boots the kernel (with a separate DTB on ARM;
    /// a legacy uImage without DTB on MIPS).
    pub fn boot_command(self) -> &'static str {
        match self {
            Arch::Aarch64 => "booti",
            Arch::Armv7l => "bootz",
            Arch::Mips | Arch::Mipsel => "bootm",
        }
    }

    /// U-Boot's prompt on this board, as it appears at the start of a line
    /// (`malta # ` big-endian, `maltael # ` little-endian).
    pub fn uboot_prompt(self) -> &'static str {
        match self {
            Arch::Aarch64 | Arch::Armv7l => uboot::PROMPT,
            Arch::Mips => uboot::MALTA_PROMPT,
            Arch::Mipsel => uboot::MALTAEL_PROMPT,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            "armv7l" | "arm" | "armhf" => Ok(Arch::Armv7l),
            "mips" => Ok(Arch::Mips),
            "mipsel" => Ok(Arch::Mipsel),
            _ => Err(format!(
                "unknown architecture {s:?}: use aarch64, armv7l, mips or mipsel"
            )),
        }
    }
}
