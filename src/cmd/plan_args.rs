//! The planning flags `lmx build` and `lmx tftpboot` share: one
//! definition, so both commands take every flag and mean the same by it,
//! and one place that turns a [`BuildError`] into the help line a user
//! acts on (naming flags that exist).

use std::path::PathBuf;

use clap::Args;
use lmx_boards::{KernelFormat, PhramMethod};
use lmx_builder::build::{BuildError, BuildRequest};
use lmx_builder::squashfs::SquashfsCompression;

/// Flags that shape the plan: the device tree, the command line, the
/// phram region, the kernel format and the rootfs packaging.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// Device tree blob (patched with bootargs, phram node, disabled nodes).
    #[arg(long, value_name = "FILE")]
    pub dtb: Option<PathBuf>,
    /// Extra kernel command-line arguments.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub append: Option<String>,
    /// How the kernel finds the RAM rootfs, overriding the board: dt-cmdline
    /// (reserved-memory node plus phram.phram=, all RAM kept), dt, cmdline
    /// (mem= below the rootfs) or memmap.
    #[arg(long, value_name = "METHOD", value_parser = parse_phram)]
    pub phram: Option<PhramMethod>,
    /// Root device of the phram rootfs, overriding the board (e.g. /dev/mtdblock0).
    #[arg(long, value_name = "DEV")]
    pub root: Option<String>,
    /// Free space to leave after the rootfs inside the phram region (bytes, K/M suffix).
    #[arg(long, value_name = "SIZE", value_parser = lmx_boards::number::parse_size, default_value = "0")]
    pub free: u64,
    /// Set status = "disabled" on this DT node (repeatable), beyond the board's list.
    #[arg(long, value_name = "PATH")]
    pub dt_disable: Vec<String>,
    /// Kernel format, when the board boots more than one: image, zimage, fit,
    /// uimage-lzma, uimage-gzip, uimage.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<KernelFormat>,
    /// uImage/FIT name (at most 32 bytes; default `Linux BOARD`).
    #[arg(long)]
    pub name: Option<String>,
    /// squashfs compression for a rootfs directory: xz, gzip or zstd.
    #[arg(long, value_name = "COMP", default_value = "xz", value_parser = parse_comp)]
    pub comp: SquashfsCompression,
    /// Append the DTB to the kernel image (what U-Boots that cannot pass a DTB
    /// need); overrides the board's kernel.append_dtb. Needs --dtb.
    #[arg(long, conflicts_with = "no_append_dtb")]
    pub append_dtb: bool,
    /// Do not append the DTB, although the board's kernel.append_dtb says so.
    #[arg(long)]
    pub no_append_dtb: bool,
    /// Send the rootfs LZMA-compressed and unpack it in U-Boot with lzmadec
    /// (overrides the board's ram_boot.compressed_rootfs).
    #[arg(long, conflicts_with = "no_lzma_rootfs")]
    pub lzma_rootfs: bool,
    /// Send the rootfs as it is, although the board's ram_boot.compressed_rootfs says LZMA.
    #[arg(long)]
    pub no_lzma_rootfs: bool,
    /// Accept loads checked by their size only, for a U-Boot where nothing
    /// can verify their bytes (no crc32, and no LZMA uImage whose data CRC
    /// bootm checks). The run then says loudly that its loads are unverified.
    #[arg(long)]
    pub no_verify: bool,
}

impl PlanArgs {
    /// Checks what clap cannot (the uImage name's length).
    pub fn check(&self) -> miette::Result<()> {
        if let Some(n) = &self.name {
            if n.len() > lmx_builder::uimage::NAME_LEN {
                return Err(miette::miette!(
                    help = "a uImage name holds at most 32 bytes",
                    "--name {n:?} is {} bytes",
                    n.len()
                ));
            }
        }
        Ok(())
    }

    /// Writes the flags into a request (the inputs are already in it).
    pub fn apply(&self, req: &mut BuildRequest) {
        req.append = self.append.clone();
        req.phram = self.phram;
        req.root_device = self.root.clone();
        req.rootfs_free = self.free;
        req.dt_disable = self.dt_disable.clone();
        req.name = self.name.clone();
        req.format = self.format;
        req.squashfs.compression = self.comp;
        req.append_dtb = flag_pair(self.append_dtb, self.no_append_dtb);
        req.lzma_rootfs = flag_pair(self.lzma_rootfs, self.no_lzma_rootfs);
        req.no_verify = self.no_verify;
    }
}

fn flag_pair(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

fn parse_phram(s: &str) -> Result<PhramMethod, String> {
    PhramMethod::from_name(s).ok_or_else(|| {
        format!(
            "{s:?}: use {}",
            PhramMethod::ALL.map(PhramMethod::as_str).join(", ")
        )
    })
}

/// Parses a kernel format name as board files write it.
pub fn parse_format(s: &str) -> Result<KernelFormat, String> {
    use KernelFormat as F;
    [
        F::Image,
        F::Zimage,
        F::Fit,
        F::UimageLzma,
        F::UimageGzip,
        F::Uimage,
    ]
    .into_iter()
    .find(|f| f.as_str() == s)
    .ok_or_else(|| format!("{s:?}: use image, zimage, fit, uimage-lzma, uimage-gzip or uimage"))
}

fn parse_comp(s: &str) -> Result<SquashfsCompression, String> {
    SquashfsCompression::from_name(s).ok_or_else(|| format!("{s:?}: use xz, gzip or zstd"))
}

/// What to try after a build error; the flags named here exist on both
/// `lmx build` and `lmx tftpboot` (tests/flag_hints.rs checks).
pub fn hint(e: &BuildError) -> &'static str {
    use lmx_builder::bootargs::BootargsError as B;
    use lmx_builder::kernel::KernelError as K;
    match e {
        BuildError::Input { .. } => "check the path and its permissions",
        BuildError::Dtb { .. } => "give the board's compiled .dtb (dtc -I dts -O dtb), not a .dts or a truncated copy",
        BuildError::Layout { .. } => {
            "the table shows every region; a kernel or rootfs too large for this board's RAM needs a smaller build"
        }
        BuildError::Kernel(K::WrongTarget { .. }) => {
            "build the kernel for the board's CPU and byte order (`lmx boards show BOARD`: cpu.arch, cpu.endian)"
        }
        BuildError::Kernel(K::Address { .. }) => {
            "on MIPS, U-Boot and the image header take KSEG0 addresses (0x80000000 + physical)"
        }
        BuildError::Kernel(K::WrongKind { .. }) => {
            "give the kernel file the board's format needs (and --dtb where the DTB is appended); `lmx boards show BOARD` shows kernel.format"
        }
        BuildError::Kernel(_) => "see `lmx boards show BOARD` for the kernel format this board boots",
        BuildError::Format { .. } => "choose one of the formats listed with --format, or add it to kernel.also_boots in the board file",
        BuildError::Bootargs(B::NoPhramMethod { .. }) => {
            "pass --phram dt-cmdline (reserved-memory node plus phram.phram=; needs --dtb), dt, cmdline or memmap, or set ram_boot.phram in the board file"
        }
        BuildError::Bootargs(B::NoRootDevice { .. }) => {
            "pass --root /dev/mtdblockN, or root= in --append, or set ram_boot.root_device in the board file"
        }
        BuildError::Bootargs(_) => "see --phram, --root and --append in --help",
        BuildError::NeedDtb { .. } => {
            "give --dtb (the board's device tree), or choose --phram cmdline"
        }
        BuildError::Plan(lmx_builder::plan::PlanError::Command { .. }) => {
            "this is what the board file records about its U-Boot (`lmx boards show BOARD`: uboot.commands, uboot.traps); nothing was sent to the board"
        }
        BuildError::Plan(lmx_builder::plan::PlanError::CannotVerify { .. }) => {
            "docs/tftpboot.md, \"Verification without crc32\"; --no-verify boots with sizes checked only"
        }
        BuildError::Plan(lmx_builder::plan::PlanError::MemStarves { .. }) => {
            "use --phram dt-cmdline (Linux keeps all RAM but the rootfs; needs --dtb), or move ram_boot.rootfs higher in the board file"
        }
        BuildError::FromDir { .. } => {
            "the directory needs a kernel, a rootfs and usually a dtb; give --kernel/--rootfs/--dtb to choose"
        }
        BuildError::Output { .. } => "choose another --out",
        BuildError::Caps(_) => {
            "`lmx boards show BOARD` lists what its U-Boot can unpack (uboot.lzma, uboot.lzmadec)"
        }
        _ => "run with -v for details",
    }
}
