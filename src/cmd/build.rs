//! `lmx build`: kernel, device tree and root filesystem in; everything a
//! board boots from RAM over TFTP (and later flashes) out, with the plan.
//!
//! The work is `lmx_builder::build`; this module resolves the board,
//! finds the inputs (`--from DIR` or the single flags), prints the RAM map
//! and the U-Boot commands, and turns errors into diagnostics with a hint.
//! `--dry-run` plans and prints without writing the artifact directory.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Args;
use lmx_boards::{KernelFormat, PhramMethod};
use lmx_builder::build::{self, BuildError, BuildRequest};
use lmx_builder::squashfs::SquashfsCompression;
use miette::{miette, Result};

/// Flags of `lmx build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Board name (see `lmx boards list`).
    #[arg(long, short)]
    pub board: String,
    /// Kernel: vmlinux (ELF), Image, zImage, a uImage or FIT, or a raw binary.
    #[arg(long, value_name = "FILE", required_unless_present = "from")]
    pub kernel: Option<PathBuf>,
    /// Device tree blob (patched with bootargs, phram node, disabled nodes).
    #[arg(long, value_name = "FILE")]
    pub dtb: Option<PathBuf>,
    /// Root filesystem: a directory (made into squashfs) or an image file (used as is).
    #[arg(long, value_name = "DIR|FILE", required_unless_present = "from")]
    pub rootfs: Option<PathBuf>,
    /// Build-output directory with vmlinux/Image/zImage/uimage, dtb and rootfs (symlinks followed).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kernel", "rootfs"])]
    pub from: Option<PathBuf>,
    /// Artifact directory to write.
    #[arg(long, short, value_name = "DIR", default_value = "lmx-out")]
    pub out: PathBuf,
    /// Extra kernel command-line arguments.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub append: Option<String>,
    /// How the kernel finds the RAM rootfs, overriding the board: dt, cmdline or memmap.
    #[arg(long, value_parser = parse_phram)]
    pub phram: Option<PhramMethod>,
    /// Root device of the phram rootfs, overriding the board (e.g. /dev/mtdblock0).
    #[arg(long, value_name = "DEV")]
    pub root: Option<String>,
    /// Free space to leave after the rootfs inside the phram region (bytes, K/M suffix).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "0")]
    pub free: u64,
    /// Set status = "disabled" on this DT node (repeatable), beyond the board's list.
    #[arg(long, value_name = "PATH")]
    pub dt_disable: Vec<String>,
    /// Kernel format, when the board boots more than one (e.g. fit on qemu-aarch64).
    #[arg(long, value_parser = parse_format)]
    pub format: Option<KernelFormat>,
    /// uImage/FIT name (at most 32 bytes).
    #[arg(long)]
    pub name: Option<String>,
    /// squashfs compression for a rootfs directory: xz, gzip or zstd.
    #[arg(long, default_value = "xz", value_parser = parse_comp)]
    pub comp: SquashfsCompression,
    /// Board address (ipaddr), overriding the board file.
    #[arg(long)]
    pub ipaddr: Option<Ipv4Addr>,
    /// TFTP server address (serverip), overriding the board file.
    #[arg(long)]
    pub serverip: Option<Ipv4Addr>,
    /// Append the DTB to the kernel image (what U-Boots that cannot pass a DTB need, e.g.
    /// gl-ar750); needs --dtb. Overrides the board's kernel.append_dtb.
    #[arg(long)]
    pub append_dtb: bool,
    /// Plan and print, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Look here for board files first.
    #[arg(long, env = "LMX_BOARDS_DIR", value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
}

fn parse_phram(s: &str) -> Result<PhramMethod, String> {
    match s {
        "dt" => Ok(PhramMethod::Dt),
        "cmdline" => Ok(PhramMethod::Cmdline),
        "memmap" => Ok(PhramMethod::Memmap),
        _ => Err(format!("{s:?}: use dt, cmdline or memmap")),
    }
}

fn parse_format(s: &str) -> Result<KernelFormat, String> {
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

fn parse_size(s: &str) -> Result<u64, String> {
    lmx_builder::bootargs::parse_mem(s)
        .ok_or_else(|| format!("{s:?}: a size such as 65536, 0x10000, 64K or 1M"))
}

fn hint(e: &BuildError) -> &'static str {
    match e {
        BuildError::Input { .. } => "check the path and its permissions",
        BuildError::Dtb { .. } => "give the board's compiled .dtb (dtc -I dts -O dtb), not a .dts or a truncated copy",
        BuildError::Layout { .. } => {
            "the table shows every region; a kernel or rootfs too large for this board's RAM needs a smaller build"
        }
        BuildError::Kernel(lmx_builder::kernel::KernelError::WrongTarget { .. }) => {
            "build the kernel for the board's CPU and byte order (`lmx boards show BOARD`: cpu.arch, cpu.endian)"
        }
        BuildError::Kernel(lmx_builder::kernel::KernelError::Address { .. }) => {
            "on MIPS, U-Boot and the image header take KSEG0 addresses (0x80000000 + physical)"
        }
        BuildError::Kernel(_) => "see `lmx boards show BOARD` for the kernel format this board boots",
        BuildError::Format { .. } => "choose one of the formats listed, or add it to kernel.also_boots in the board file",
        BuildError::Bootargs(_) | BuildError::NeedDtb { .. } => {
            "see `lmx build --help` for --phram, --root and --append"
        }
        BuildError::Output { .. } => "choose another --out",
        BuildError::Caps(_) => {
            "`lmx boards show BOARD` lists what its U-Boot can unpack (uboot.lzma, uboot.lzmadec)"
        }
        _ => "run with -v for details",
    }
}

/// Runs `lmx build`.
pub fn run(args: BuildArgs) -> Result<()> {
    let board = crate::cmd::boards::catalog(args.boards_dir.as_deref())
        .resolve(&args.board)
        .map_err(miette::Report::new)?
        .board;
    let (kernel, dtb, rootfs) = match &args.from {
        Some(dir) => {
            let (k, d, r) = build::inputs_from_dir(&board, dir).map_err(|e| {
                miette!(
                    help = "the directory needs a kernel, rootfs and usually a dtb",
                    "{e}"
                )
            })?;
            (k, args.dtb.clone().or(d), r)
        }
        None => (
            args.kernel.clone().expect("clap requires --kernel"),
            args.dtb.clone(),
            args.rootfs.clone().expect("clap requires --rootfs"),
        ),
    };
    if let Some(n) = &args.name {
        if n.len() > lmx_builder::uimage::NAME_LEN {
            return Err(miette!(
                help = "a uImage name holds at most 32 bytes",
                "--name {n:?} is {} bytes",
                n.len()
            ));
        }
    }
    let mut req = BuildRequest::new(board, kernel, dtb, rootfs);
    req.append = args.append.clone();
    req.phram = args.phram;
    req.root_device = args.root.clone();
    req.rootfs_free = args.free;
    req.dt_disable = args.dt_disable.clone();
    req.name = args.name.clone();
    req.format = args.format;
    req.squashfs.compression = args.comp;
    req.ipaddr = args.ipaddr;
    req.serverip = args.serverip;
    if args.append_dtb {
        req.append_dtb = Some(true);
    }
    let b =
        build::build(&req, &args.out, args.dry_run).map_err(|e| miette!(help = hint(&e), "{e}"))?;
    print!("{}", b.render());
    if args.dry_run {
        println!("\n(dry run: nothing written)");
    } else {
        println!(
            "\nWrote {} ({} files and manifest.json)",
            args.out.display(),
            b.files.len() + 1
        );
    }
    Ok(())
}
