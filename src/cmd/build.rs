//! `lmx build`: kernel, device tree and root filesystem in; everything a
//! board boots from RAM over TFTP (and later flashes) out, with the plan.
//!
//! The work is `lmx_builder::build`; this module resolves the board,
//! finds the inputs (`--from DIR` or the single flags), prints the RAM map
//! and the U-Boot commands, and turns errors into diagnostics with a hint.
//! `--dry-run` plans and prints without writing the artifact directory.
//! The planning flags are [`PlanArgs`], shared with `lmx tftpboot`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Args;
use lmx_builder::build::{self, BuildRequest};
use miette::{miette, Result};

use super::plan_args::{hint, PlanArgs};

/// Flags of `lmx build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Board name (see `lmx boards list`).
    #[arg(long, short)]
    pub board: String,
    /// Kernel: vmlinux (ELF), Image, zImage, a uImage or FIT, or a raw binary.
    #[arg(long, value_name = "FILE", required_unless_present = "from")]
    pub kernel: Option<PathBuf>,
    /// Root filesystem: a directory (made into squashfs) or an image file (used as is).
    #[arg(long, value_name = "DIR|FILE", required_unless_present = "from")]
    pub rootfs: Option<PathBuf>,
    /// Build-output directory with vmlinux/Image/zImage/uimage, dtb and rootfs
    /// (symlinks followed; the rule is in docs/build.md).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kernel", "rootfs"])]
    pub from: Option<PathBuf>,
    /// Artifact directory to write.
    #[arg(long, short, value_name = "DIR", default_value = "lmx-out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Board address (ipaddr), overriding the board file.
    #[arg(long)]
    pub ipaddr: Option<Ipv4Addr>,
    /// TFTP server address (serverip), overriding the board file.
    #[arg(long)]
    pub serverip: Option<Ipv4Addr>,
    /// Plan and print, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Look here for board files first.
    #[arg(long, env = "LMX_BOARDS_DIR", value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
}

/// Runs `lmx build`.
pub fn run(args: BuildArgs) -> Result<()> {
    let board = crate::cmd::boards::resolve_board(args.boards_dir.as_deref(), &args.board)?;
    args.plan.check()?;
    let (kernel, dtb, rootfs) = match &args.from {
        Some(dir) => {
            let (k, d, r) =
                build::inputs_from_dir(&board, dir).map_err(|e| miette!(help = hint(&e), "{e}"))?;
            (k, args.plan.dtb.clone().or(d), r)
        }
        None => (
            args.kernel.clone().expect("clap requires --kernel"),
            args.plan.dtb.clone(),
            args.rootfs.clone().expect("clap requires --rootfs"),
        ),
    };
    let mut req = BuildRequest::new(board, kernel, dtb, rootfs);
    args.plan.apply(&mut req);
    req.ipaddr = args.ipaddr;
    req.serverip = args.serverip;
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
