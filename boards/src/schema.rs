//! The board file schema: one Rust type per TOML table.
//!
//! The types here are the contract between the board files and every
//! other lmx crate, so they are plain data: no I/O, no defaults that
//! pretend to know a fact. A fact nobody has measured is an `Option`
//! that stays `None` (and the board file carries a comment saying it
//! is unknown); a list nobody has filled is empty.
//!
//! Address spaces are part of the contract:
//!
//! * RAM facts (`ram.*`, `ram_boot.*`) and `flash.mapped_base` are
//!   **physical** addresses, the ones the kernel, the device tree and
//!   `phram` use.
//! * `kernel.load` and `kernel.entry` are the addresses written into
//!   the kernel image header, which are also what U-Boot commands take
//!   (on MIPS they are KSEG0 addresses such as `0x80060000`).
//! * Flash partitions and the environment are **offsets** inside the
//!   flash device, not addresses.
//!
//! [`AddressMap`] converts between the two address spaces and refuses
//! addresses it does not cover.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The only schema version this crate understands.
pub const SCHEMA_VERSION: u32 = 1;

/// A fully resolved board definition: what every lmx command reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Schema version of the file; must be [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Board name; equal to the file name without `.toml`.
    pub name: String,
    /// One line a person recognises the board by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the facts came from (wiki pages, device trees, boot logs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// The family this board inherits facts from (see the crate docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// True for an emulated board; then [`Board::qemu`] says how to start it.
    #[serde(rename = "virtual", default, skip_serializing_if = "is_false")]
    pub is_virtual: bool,
    /// Processor facts.
    pub cpu: Cpu,
    /// How physical addresses appear to U-Boot commands.
    pub address_map: AddressMap,
    /// Where RAM is and what part of it U-Boot uses.
    pub ram: Ram,
    /// The kernel image U-Boot boots.
    pub kernel: Kernel,
    /// How a RAM (phram) boot lays the root filesystem out.
    #[serde(default, skip_serializing_if = "RamBoot::is_empty")]
    pub ram_boot: RamBoot,
    /// The serial console.
    pub console: Console,
    /// How this board's U-Boot behaves at its prompt.
    pub uboot: UBoot,
    /// The flash device lmx writes firmware to.
    pub flash: Flash,
    /// Network defaults for TFTP.
    #[serde(default, skip_serializing_if = "Network::is_empty")]
    pub network: Network,
    /// How to start the board in QEMU; present exactly when `virtual = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu: Option<Qemu>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// CPU architecture as the kernel names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// 32-bit MIPS (either endianness).
    Mips,
    /// 32-bit ARM, v7.
    Armv7l,
    /// 64-bit ARM.
    Aarch64,
}

impl Arch {
    /// The name used in board files and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Mips => "mips",
            Arch::Armv7l => "armv7l",
            Arch::Aarch64 => "aarch64",
        }
    }
}

/// Byte order of the CPU (and of the data U-Boot writes, such as its environment CRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    /// Most significant byte first.
    Big,
    /// Least significant byte first.
    Little,
}

/// `[cpu]`: processor facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// Architecture.
    pub arch: Arch,
    /// Byte order.
    pub endian: Endian,
    /// System-on-chip, e.g. `QCA9531`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soc: Option<String>,
    /// CPU core, e.g. `24Kc` or `cortex-a53`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
}

/// A physical-to-U-Boot address window: `[uboot, uboot + size)` shows
/// `[phys, phys + size)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressWindow {
    /// Short name, e.g. `kseg0` or `identity`.
    pub name: String,
    /// First U-Boot (CPU virtual) address of the window.
    pub uboot: u64,
    /// First physical address of the window.
    pub phys: u64,
    /// Window size in bytes.
    pub size: u64,
}

impl AddressWindow {
    fn phys_to_uboot(&self, phys: u64) -> Option<u64> {
        (phys >= self.phys && phys - self.phys < self.size).then(|| self.uboot + (phys - self.phys))
    }

    fn uboot_to_phys(&self, addr: u64) -> Option<u64> {
        (addr >= self.uboot && addr - self.uboot < self.size)
            .then(|| self.phys + (addr - self.uboot))
    }
}

/// `[[address_map.windows]]`: how physical addresses appear to U-Boot.
///
/// On ARM this is one identity window; on MIPS U-Boot reaches RAM and
/// flash through KSEG0 (`0x80000000 + phys`, cached) and KSEG1
/// (`0xA0000000 + phys`, uncached). Conversions never guess: an address
/// outside every window is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressMap {
    /// The windows, in order of preference for [`AddressMap::to_uboot_addr`].
    pub windows: Vec<AddressWindow>,
}

/// An address that no window of the [`AddressMap`] covers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum AddressError {
    /// A physical address outside every window.
    #[error("physical address {0:#x} is outside the board's address map")]
    #[diagnostic(
        code(lmx_boards::address_unmapped),
        help("add an [[address_map.windows]] entry that covers it, or use an address inside RAM")
    )]
    PhysUnmapped(u64),
    /// A U-Boot address outside every window.
    #[error("U-Boot address {0:#x} is outside the board's address map")]
    #[diagnostic(
        code(lmx_boards::address_unmapped),
        help("U-Boot addresses must fall in one of the board's [[address_map.windows]]")
    )]
    UBootUnmapped(u64),
    /// A window name that the map does not have.
    #[error("the address map has no window named `{0}`")]
    #[diagnostic(code(lmx_boards::address_unmapped))]
    NoSuchWindow(String),
    /// A U-Boot address in another window than the one U-Boot uses for
    /// RAM (on MIPS: KSEG1 where KSEG0 is expected).
    #[error("U-Boot address {addr:#x} is in window `{window}`, but RAM addresses on this board go through `{expected}`, where the same byte is {instead:#x}")]
    #[diagnostic(
        code(lmx_boards::address_wrong_window),
        help("write the `{expected}` address ({instead:#x}); lmx does not convert it for you")
    )]
    WrongWindow {
        /// The address given.
        addr: u64,
        /// The window it lies in.
        window: String,
        /// The RAM window.
        expected: String,
        /// The same physical byte through the RAM window.
        instead: u64,
    },
    /// A physical address given where a U-Boot address is expected.
    #[error("{addr:#x} is not a U-Boot address on this board; as a physical address it is {instead:#x} through `{window}`")]
    #[diagnostic(
        code(lmx_boards::address_wrong_window),
        help("U-Boot commands and image headers take `{window}` addresses: write {instead:#x}")
    )]
    PhysicalGiven {
        /// The address given.
        addr: u64,
        /// The RAM window.
        window: String,
        /// The U-Boot address of that physical byte.
        instead: u64,
    },
}

impl AddressMap {
    /// A one-window identity map of `size` bytes, as ARM boards state it.
    pub fn identity(size: u64) -> Self {
        AddressMap {
            windows: vec![AddressWindow {
                name: "identity".into(),
                uboot: 0,
                phys: 0,
                size,
            }],
        }
    }

    /// The address a U-Boot command takes for physical address `phys`,
    /// through the first window that covers it.
    pub fn to_uboot_addr(&self, phys: u64) -> Result<u64, AddressError> {
        self.windows
            .iter()
            .find_map(|w| w.phys_to_uboot(phys))
            .ok_or(AddressError::PhysUnmapped(phys))
    }

    /// Like [`AddressMap::to_uboot_addr`] through the named window
    /// (e.g. `kseg1` for uncached flash access on MIPS).
    pub fn to_uboot_addr_via(&self, window: &str, phys: u64) -> Result<u64, AddressError> {
        let w = self
            .windows
            .iter()
            .find(|w| w.name == window)
            .ok_or_else(|| AddressError::NoSuchWindow(window.to_string()))?;
        w.phys_to_uboot(phys)
            .ok_or(AddressError::PhysUnmapped(phys))
    }

    /// The physical address behind U-Boot address `addr`.
    pub fn to_phys(&self, addr: u64) -> Result<u64, AddressError> {
        self.windows
            .iter()
            .find_map(|w| w.uboot_to_phys(addr))
            .ok_or(AddressError::UBootUnmapped(addr))
    }

    /// The window U-Boot addresses RAM through: the first one (`kseg0`,
    /// cached, on MIPS; the identity window on ARM).
    pub fn ram_window(&self) -> Option<&AddressWindow> {
        self.windows.first()
    }

    /// The physical address behind a U-Boot *RAM* address (a load or
    /// entry address, an image header's load address). Unlike
    /// [`AddressMap::to_phys`] it takes only the RAM window: a KSEG1
    /// address where KSEG0 is expected is [`AddressError::WrongWindow`],
    /// and a physical address that only the RAM window would make sense
    /// of is [`AddressError::PhysicalGiven`]. Both name the address to
    /// write instead; neither is converted silently.
    pub fn ram_to_phys(&self, addr: u64) -> Result<u64, AddressError> {
        let Some(ram) = self.ram_window() else {
            return Err(AddressError::UBootUnmapped(addr));
        };
        if let Some(p) = ram.uboot_to_phys(addr) {
            return Ok(p);
        }
        if let Some((w, p)) = self
            .windows
            .iter()
            .find_map(|w| w.uboot_to_phys(addr).map(|p| (w, p)))
        {
            if let Some(instead) = ram.phys_to_uboot(p) {
                return Err(AddressError::WrongWindow {
                    addr,
                    window: w.name.clone(),
                    expected: ram.name.clone(),
                    instead,
                });
            }
        }
        match ram.phys_to_uboot(addr) {
            Some(instead) => Err(AddressError::PhysicalGiven {
                addr,
                window: ram.name.clone(),
                instead,
            }),
            None => Err(AddressError::UBootUnmapped(addr)),
        }
    }
}

/// A `[base, base + size)` span of addresses or offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }

    /// Whether `other` lies entirely inside.
    pub fn contains_region(&self, other: &Region) -> bool {
        other.base >= self.base && other.end() <= self.end()
    }

    /// Whether the two spans share at least one byte.
    pub fn overlaps(&self, other: &Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// `[ram]`: physical RAM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ram {
    /// Physical base address of RAM.
    pub base: u64,
    /// RAM size in bytes; `None` when unknown (then nothing can be
    /// checked against the end of RAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Physical region U-Boot occupies (code, stack, heap after
    /// relocation) that loads must stay clear of; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uboot: Option<Region>,
}

impl Ram {
    /// RAM as a region, when its size is known.
    pub fn region(&self) -> Option<Region> {
        self.size.map(|size| Region {
            base: self.base,
            size,
        })
    }

    /// Whether physical `addr` is in RAM. With an unknown size only the
    /// base is checked.
    pub fn contains(&self, addr: u64) -> bool {
        match self.region() {
            Some(r) => r.contains(addr),
            None => addr >= self.base,
        }
    }
}

/// The kernel image format U-Boot is given for a RAM boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelFormat {
    /// Legacy uImage, LZMA-compressed payload.
    UimageLzma,
    /// Legacy uImage, gzip-compressed payload.
    UimageGzip,
    /// Legacy uImage, uncompressed payload.
    Uimage,
    /// Flattened Image Tree.
    Fit,
    /// ARM self-decompressing zImage (`bootz`).
    Zimage,
    /// arm64 raw `Image` (`booti`).
    Image,
}

impl KernelFormat {
    /// The U-Boot command that boots this format.
    pub fn boot_command(self) -> &'static str {
        match self {
            KernelFormat::UimageLzma
            | KernelFormat::UimageGzip
            | KernelFormat::Uimage
            | KernelFormat::Fit => "bootm",
            KernelFormat::Zimage => "bootz",
            KernelFormat::Image => "booti",
        }
    }

    /// The name used in board files.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelFormat::UimageLzma => "uimage-lzma",
            KernelFormat::UimageGzip => "uimage-gzip",
            KernelFormat::Uimage => "uimage",
            KernelFormat::Fit => "fit",
            KernelFormat::Zimage => "zimage",
            KernelFormat::Image => "image",
        }
    }
}

/// `[kernel]`: the image U-Boot boots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    /// Format used for a RAM boot.
    pub format: KernelFormat,
    /// Other formats known to boot on this board.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_boots: Vec<KernelFormat>,
    /// Load address as written in the image header / given to U-Boot
    /// (U-Boot address space). `None` when the image carries its own
    /// (FIT) or nobody recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<u64>,
    /// Entry point (U-Boot address space); `None` as for `load`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<u64>,
    /// The DTB must be appended to the kernel because U-Boot cannot pass one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub append_dtb: bool,
    /// The `/chosen` property this board's kernel takes its command line
    /// from, when not `bootargs` (e.g. `bootargs-override` on boards
    /// whose U-Boot rewrites `bootargs`); `None` means `bootargs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dt_bootargs: Option<String>,
}

/// How the kernel is told where the RAM root filesystem is and kept off it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhramMethod {
    /// A device-tree `/reserved-memory` node (`compatible = "phram"`,
    /// `no-map`, `label = "rootfs"`) alone; the kernel's OF phram probe
    /// (Linux 6.2 and later) makes the MTD device.
    Dt,
    /// `phram.phram=` on the command line, RAM limited with `mem=` to
    /// what lies below the rootfs.
    Cmdline,
    /// `memmap=SIZE$START` plus `phram.phram=` on the command line.
    Memmap,
    /// Both halves: a `/reserved-memory` `no-map` node (no label) keeps
    /// the kernel off the region, and `phram.phram=` plus `mtdparts=` on
    /// the command line make the MTD device; no `mem=`, so Linux keeps
    /// all other RAM. The recipe Liminix's `tftpboot` output uses
    /// (`telent/liminix`, `modules/outputs/tftpboot.nix`).
    DtCmdline,
}

impl PhramMethod {
    /// Every method, in the order help texts list them.
    pub const ALL: [PhramMethod; 4] = [
        PhramMethod::DtCmdline,
        PhramMethod::Dt,
        PhramMethod::Cmdline,
        PhramMethod::Memmap,
    ];

    /// The name used in board files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            PhramMethod::Dt => "dt",
            PhramMethod::Cmdline => "cmdline",
            PhramMethod::Memmap => "memmap",
            PhramMethod::DtCmdline => "dt-cmdline",
        }
    }

    /// The method called `name` ([`PhramMethod::as_str`]).
    pub fn from_name(name: &str) -> Option<PhramMethod> {
        PhramMethod::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Whether the method adds a `/reserved-memory` node (and so needs a DTB).
    pub fn needs_dtb(self) -> bool {
        matches!(self, PhramMethod::Dt | PhramMethod::DtCmdline)
    }
}

/// `[ram_boot]`: facts for booting from RAM without touching flash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RamBoot {
    /// Physical address the root filesystem is loaded to; the phram
    /// region starts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<u64>,
    /// How the phram region is declared to the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phram: Option<PhramMethod>,
    /// The root device the kernel sees for the phram rootfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device: Option<String>,
    /// Physical RAM known to be free for the rootfs and DTB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<Region>,
    /// The rootfs is sent LZMA-compressed and unpacked by U-Boot (`lzmadec`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub compressed_rootfs: bool,
    /// Extra kernel command-line arguments for a RAM boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootargs: Option<String>,
    /// Device-tree node paths `lmx build` sets `status = "disabled"` on
    /// for a RAM boot (devices this board's kernel trips over).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dt_disable: Vec<String>,
    /// An always-running hardware watchdog resets the board after this
    /// many milliseconds unless the booted kernel feeds it; every plan
    /// for the board says so. `None` when the board has none (or it is
    /// not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_watchdog_ms: Option<u32>,
}

impl RamBoot {
    fn is_empty(&self) -> bool {
        self == &RamBoot::default()
    }
}

/// Serial flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    /// No flow control (the usual case on routers).
    None,
    /// RTS/CTS hardware flow control.
    Rtscts,
    /// XON/XOFF software flow control.
    Xonxoff,
}

/// `[console]`: the serial console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Console {
    /// Baud rate, e.g. 115200.
    pub baud: u32,
    /// Data bits, parity and stop bits, e.g. `8N1`.
    pub framing: String,
    /// Flow control.
    pub flow_control: FlowControl,
    /// The kernel's name for the console, e.g. `ttyS0` (for `console=`).
    pub kernel_name: String,
}

/// How to stop autoboot and reach the U-Boot prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Interrupt {
    /// Any key stops autoboot; `key` is what to send.
    AnyKey {
        /// The key to send, e.g. a space.
        key: String,
    },
    /// A boot menu; `choice` selects the command line.
    Menu {
        /// The menu entry to send, e.g. `4`.
        choice: String,
    },
    /// A keyed build wants this exact string.
    String {
        /// The string to type.
        string: String,
    },
}

/// `[uboot]`: the dialect of this board's U-Boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UBoot {
    /// Regular expression matching the prompt at the start of a line.
    pub prompt: String,
    /// Version string from the banner, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Text announcing autoboot, e.g. `Hit any key to stop autoboot:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoboot: Option<String>,
    /// Autoboot delay in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootdelay: Option<u32>,
    /// How to interrupt autoboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt: Option<Interrupt>,
    /// The `echo` command exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// `$?` holds the last command's status (hush shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<bool>,
    /// Command line buffer size (`CONFIG_SYS_CBSIZE`) in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cbsize: Option<u32>,
    /// Variables must be written `${var}` (old builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub braces_required: Option<bool>,
    /// Double quotes group words (false on old builds: `"a;b"` runs `b"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotes_special: Option<bool>,
    /// Output texts that mean a command failed, beyond the common ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_texts: Vec<String>,
    /// Default `tftpblocksize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tftp_blocksize: Option<u32>,
    /// Default `tftpwindowsize` (1 = lock-step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tftp_windowsize: Option<u32>,
    /// RFC 7440 windows are compiled in (`setenv tftpwindowsize N` works).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tftp_windows: Option<bool>,
    /// `bootm` can unpack LZMA payloads (`CONFIG_LZMA`). `false` makes
    /// lmx refuse an LZMA kernel before anything is sent (such a U-Boot
    /// fails only at `bootm`: `Unimplemented compression type 3`);
    /// `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lzma: Option<bool>,
    /// The `lzmadec` command exists (`CONFIG_CMD_LZMADEC`), needed for an
    /// LZMA-compressed RAM rootfs; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lzmadec: Option<bool>,
    /// Most words one command may have, the command name included
    /// (`CONFIG_SYS_MAXARGS`); `None` when unknown, then lmx assumes
    /// [`crate::shell::DEFAULT_MAXARGS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxargs: Option<u32>,
    /// Which of the commands lmx uses this build has (`[uboot.commands]`).
    #[serde(default, skip_serializing_if = "Commands::is_empty")]
    pub commands: Commands,
    /// Commands lmx must never send to this build (`[[uboot.traps]]`),
    /// each with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traps: Vec<Trap>,
}

/// `[uboot.commands]`: the command inventory of a U-Boot build. A
/// command listed in neither list is unknown, and lmx then finds out at
/// the prompt (`help NAME`) or from the command's own failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commands {
    /// Commands the build is known to have (e.g. from `help`, or the
    /// command table in a shipped binary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub present: Vec<String>,
    /// Commands the build is known to lack: a plan that needs one is
    /// refused before anything is sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    /// The prompt refuses every command not listed in `present` although
    /// the build has it (a locked vendor console); the text says why. A
    /// plan needing any other command is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted: Option<String>,
    /// How lmx still reaches the commands a restricted prompt refuses: an
    /// unprivileged command that builds a command line from its argument
    /// and runs it with U-Boot's `run_command` (`[uboot.commands.wrapper]`).
    /// lmx then types every line through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper: Option<Wrapper>,
}

/// `[uboot.commands.wrapper]`: a command of a restricted prompt that runs
/// a command line of its own making, which lmx uses to type its lines
/// (Zyxel's `atns ARG` formats `setenv serverip ARG` and runs it as a
/// privileged command line, so `ARG` can carry `; ANY COMMAND`).
///
/// Only a wrapper that runs `setenv NAME %s` is understood: lmx passes
/// `${NAME}; LINE`, so the wrapper's own `setenv` stores the variable's
/// current value again before `LINE` runs. See
/// [`crate::shell::Wrap`] for the line lmx types and its length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wrapper {
    /// The command typed at the prompt, e.g. `atns`; one the restricted
    /// prompt runs (listed in `uboot.commands.present`).
    pub command: String,
    /// The command line it builds and runs, `%s` standing for its one
    /// argument, e.g. `setenv serverip %s`.
    pub runs: String,
    /// Size in bytes of the buffer that line is formatted into, its NUL
    /// included (`char runcmd[256]` with `snprintf`): a longer line is
    /// cut short without a word.
    pub buffer: u32,
}

impl Commands {
    /// Nothing is known.
    pub fn is_empty(&self) -> bool {
        self == &Commands::default()
    }
}

/// `[[uboot.traps]]`: a command that does something destructive on this
/// build (writes flash, rewrites the boot loader) where mainline's
/// command of the same name is harmless, or that lmx must never type for
/// another reason. Plans that would send it are refused, and the console
/// refuses to type it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trap {
    /// The command as typed, without a size suffix (`cp` also covers
    /// `cp.b`; U-Boot looks commands up by the part before the dot).
    pub command: String,
    /// Only when the first argument starts with this (e.g. `lu` for GL's
    /// `run lu`); `None`: every use of the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// What the command does on this build, with the source.
    pub reason: String,
}

/// The kind of flash lmx writes firmware to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlashKind {
    /// Parallel (CFI) NOR, written with `erase` / `cp.b`.
    Nor,
    /// SPI NOR, written with `sf`.
    SpiNor,
    /// Raw NAND, written with `nand`.
    Nand,
    /// NAND managed by UBI, written with `ubi`.
    Ubi,
    /// eMMC, written with `mmc`.
    Emmc,
}

impl FlashKind {
    /// The name used in board files.
    pub fn as_str(self) -> &'static str {
        match self {
            FlashKind::Nor => "nor",
            FlashKind::SpiNor => "spi-nor",
            FlashKind::Nand => "nand",
            FlashKind::Ubi => "ubi",
            FlashKind::Emmc => "emmc",
        }
    }
}

/// What a partition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionRole {
    /// The boot loader.
    Bootloader,
    /// The U-Boot environment.
    Env,
    /// Factory / calibration data (Wi-Fi, MAC addresses).
    Calibration,
    /// The region lmx flashes firmware into.
    Firmware,
    /// A kernel slot.
    Kernel,
    /// A UBI area.
    Ubi,
    /// Anything else.
    Other,
}

/// `[[flash.partitions]]`: one partition of the flash device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Name, as in `/proc/mtd` where there is one.
    pub name: String,
    /// Offset from the start of the flash device.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Never written by lmx.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protected: bool,
    /// What the partition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<PartitionRole>,
}

impl Partition {
    /// The partition as an offset region.
    pub fn region(&self) -> Region {
        Region {
            base: self.offset,
            size: self.size,
        }
    }
}

/// `[flash.env]`: where U-Boot keeps its environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvLocation {
    /// Offset in the flash device.
    pub offset: u64,
    /// Size (`CONFIG_ENV_SIZE`); `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Offset of the redundant copy; `None` for a single copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redundant_offset: Option<u64>,
    /// Byte order of the CRC; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endian: Option<Endian>,
}

/// `[flash]`: the flash device lmx writes firmware to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flash {
    /// Flash technology; TOML key `type`.
    #[serde(rename = "type")]
    pub kind: FlashKind,
    /// Physical address where the flash is memory-mapped, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_base: Option<u64>,
    /// The [`AddressWindow`] U-Boot uses to reach mapped flash (e.g. `kseg1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_window: Option<String>,
    /// Device size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The device's true erase block in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erase_block: Option<u64>,
    /// The sector size U-Boot reports (`flinfo`) when it differs from `erase_block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uboot_sector: Option<u64>,
    /// Page size (NAND) in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    /// Offset regions U-Boot can address; empty means the whole device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usable: Vec<Region>,
    /// The root device when the firmware is flashed, e.g. `/dev/mtdblock5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device: Option<String>,
    /// Partitions, in any order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<Partition>,
    /// The U-Boot environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvLocation>,
}

impl Flash {
    /// The partition called `name`.
    pub fn partition(&self, name: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == name)
    }

    /// Partitions whose role is `firmware`: the only ones lmx writes.
    pub fn firmware(&self) -> impl Iterator<Item = &Partition> {
        self.partitions
            .iter()
            .filter(|p| p.role == Some(PartitionRole::Firmware))
    }

    /// Partitions lmx must never write.
    pub fn protected(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.iter().filter(|p| p.protected)
    }
}

/// `[network]`: TFTP defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The board's address (`ipaddr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// The TFTP server's address (`serverip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ip: Option<Ipv4Addr>,
    /// Prefix length of the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
}

impl Network {
    fn is_empty(&self) -> bool {
        self == &Network::default()
    }
}

/// How QEMU gets the boot loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirmwareVia {
    /// `-bios FILE`.
    Bios,
    /// Copied to offset 0 of pflash bank 0, padded to the bank size.
    Pflash,
}

/// `[qemu]`: what is needed to start a virtual board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qemu {
    /// Emulator binary, e.g. `qemu-system-aarch64`.
    pub binary: String,
    /// Oldest QEMU version known to work, e.g. `10.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// `-machine`.
    pub machine: String,
    /// `-cpu`.
    pub cpu: String,
    /// `-m`, in MiB.
    pub memory_mib: u32,
    /// Boot loader binary.
    pub firmware: String,
    /// The test bed's U-Boot build this board runs instead of its
    /// architecture's default: the argument of `testbed/uboot.sh` (e.g.
    /// `ar750`), which builds and caches it from Debian's source package.
    /// `firmware` then names the file that build makes (`u-boot.bin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uboot_build: Option<String>,
    /// How the boot loader is given to QEMU.
    pub firmware_via: FirmwareVia,
    /// The firmware must be written word-swapped (each 32-bit word's
    /// bytes reversed) into the flash image: QEMU's little-endian `malta`
    /// swaps the first 0x3E0000 bytes of its flash back when it maps it,
    /// so an unswapped U-Boot prints nothing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub firmware_word_swap: bool,
    /// Number of `-drive if=pflash` banks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pflash_banks: Option<u32>,
    /// Size of each pflash bank file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pflash_bank_size: Option<u64>,
    /// Network device model, used as `-device NIC,netdev=n0`.
    pub nic: String,
    /// Further arguments, e.g. `-nographic`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// Debian packages that provide the above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

impl Board {
    /// The address a U-Boot command takes for physical address `phys`.
    pub fn to_uboot_addr(&self, phys: u64) -> Result<u64, AddressError> {
        self.address_map.to_uboot_addr(phys)
    }

    /// The physical address behind U-Boot address `addr`.
    pub fn to_phys(&self, addr: u64) -> Result<u64, AddressError> {
        self.address_map.to_phys(addr)
    }

    /// The U-Boot address of flash offset `offset` on memory-mapped
    /// flash, through `flash.mapped_window` when set. `None` when the
    /// flash is not memory-mapped.
    pub fn flash_uboot_addr(&self, offset: u64) -> Option<Result<u64, AddressError>> {
        let base = self.flash.mapped_base?;
        let phys = base + offset;
        Some(match &self.flash.mapped_window {
            Some(w) => self.address_map.to_uboot_addr_via(w, phys),
            None => self.address_map.to_uboot_addr(phys),
        })
    }

    /// The U-Boot command that boots `kernel.format`.
    pub fn boot_command(&self) -> &'static str {
        self.kernel.format.boot_command()
    }

    /// Serializes the board as TOML (addresses in decimal; see
    /// [`crate::render::to_toml_hex`] for the human form).
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).expect("a Board always serializes")
    }
}
