//! From the user's kernel, rootfs and device tree to a [`BootPlan`] and a
//! directory holding exactly the files it loads.
//!
//! This is the "build on the fly" half of `lmx tftpboot`: every decision
//! (kernel format, RAM layout, command line, the phram node, the U-Boot
//! commands) is made by `lmx-builder`; this module only reads the inputs,
//! calls the builder in the right order and writes the artifacts. A plan
//! written by an earlier run (`boot-plan.json`, or a manifest that carries
//! one) is read back by [`load`], so a plan can be made once and booted
//! many times.

use std::path::{Path, PathBuf};

use lmx_boards::{Board, KernelFormat, PhramMethod};
use lmx_builder::bootargs::{self, BootargsInput, PhramRegion};
use lmx_builder::dtedit::{PhramReservation, Status};
use lmx_builder::fdt::Fdt;
use lmx_builder::kernel::{build_kernel, KernelInput};
use lmx_builder::layout::{LayoutRequest, RamLayout, RegionKind, DEFAULT_PHRAM_ERASE};
use lmx_builder::plan::{BootPlan, PlanInputs, PlannedFile};
use miette::{miette, IntoDiagnostic, WrapErr};

/// The plan file written next to the artifacts.
pub const PLAN_FILE: &str = "boot-plan.json";

/// What the user gave (or the test bed's defaults).
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Kernel file (arm64 `Image`, `zImage`, `vmlinux`, uImage).
    pub kernel: PathBuf,
    /// Root filesystem image (squashfs).
    pub rootfs: PathBuf,
    /// The board's device tree; needed unless the kernel carries it.
    pub dtb: Option<PathBuf>,
    /// Kernel format instead of the board's (`fit` for a FIT with the DTB inside).
    pub format: Option<KernelFormat>,
    /// Send the rootfs LZMA-compressed and unpack it with `lzmadec`.
    pub lzma_rootfs: bool,
    /// Extra kernel arguments.
    pub append: Option<String>,
}

/// A plan and where its files are.
#[derive(Debug)]
pub struct Prepared {
    /// The plan.
    pub plan: BootPlan,
    /// TFTP name → file on disk, exactly the plan's loads.
    pub files: Vec<(String, PathBuf)>,
    /// Decisions worth telling the user.
    pub notes: Vec<String>,
}

fn read(p: &Path, what: &str) -> miette::Result<Vec<u8>> {
    std::fs::read(p)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading the {what} {}", p.display()))
}

/// Builds the artifacts for `board` from `inputs` into `out` and plans the boot.
pub fn build(board: &Board, inputs: &Inputs, out: &Path) -> miette::Result<Prepared> {
    let mut board = board.clone();
    if let Some(f) = inputs.format {
        if f != board.kernel.format && !board.kernel.also_boots.contains(&f) {
            return Err(miette!(
                help =
                    "pick one of the formats in the board file's kernel.format / kernel.also_boots",
                "board {} is not known to boot a {} kernel",
                board.name,
                f.as_str()
            ));
        }
        board.kernel.format = f;
    }
    let board = &board;
    let mut notes = Vec::new();
    // What this U-Boot must unpack: refused here, before anything is
    // read or sent, when the board file says it cannot.
    notes.extend(
        lmx_builder::caps::check(
            board,
            None,
            lmx_builder::caps::Needs {
                lzma_kernel: board.kernel.format == KernelFormat::UimageLzma,
                lzmadec: inputs.lzma_rootfs,
            },
        )
        .map_err(|e| {
            miette!(
                help = "`lmx boards show BOARD` lists what its U-Boot can unpack (uboot.lzma, uboot.lzmadec)",
                "{e}"
            )
        })?,
    );
    let kernel_bytes = read(&inputs.kernel, "kernel")?;
    let rootfs_bytes = read(&inputs.rootfs, "rootfs")?;
    let dtb_bytes = match &inputs.dtb {
        Some(p) => Some(read(p, "device tree")?),
        None => None,
    };
    let method = bootargs::phram_method(board, None).map_err(|e| miette!("{e}"))?;
    let rootfs_start = board.ram_boot.rootfs.ok_or_else(|| {
        miette!(
            "board {}: no RAM-boot rootfs address (ram_boot.rootfs)",
            board.name
        )
    })?;

    // The rootfs as loaded: as is, or LZMA for lzmadec.
    let rootfs_name = file_name(&inputs.rootfs, "rootfs.squashfs");
    let (rootfs_file, rootfs_unpacked) = if inputs.lzma_rootfs {
        let packed = lmx_builder::compress::lzma_compress(&rootfs_bytes, 6)
            .map_err(|e| miette!("compressing the rootfs: {e}"))?;
        let name = format!("{rootfs_name}.lzma");
        write(out, &name, &packed)?;
        (
            PlannedFile::of(&name, &packed),
            Some((rootfs_bytes.len() as u64, crc32fast::hash(&rootfs_bytes))),
        )
    } else {
        write(out, &rootfs_name, &rootfs_bytes)?;
        (PlannedFile::of(&rootfs_name, &rootfs_bytes), None)
    };
    let region = PhramRegion {
        start: rootfs_start,
        size: (rootfs_bytes.len() as u64)
            .div_ceil(DEFAULT_PHRAM_ERASE)
            .max(1)
            * DEFAULT_PHRAM_ERASE,
        erase: DEFAULT_PHRAM_ERASE,
    };
    let cmdline = bootargs::compose(&BootargsInput {
        board,
        method,
        rootfs: region,
        root_device: None,
        append: inputs.append.as_deref(),
    })
    .map_err(|e| miette!("{e}"))?;

    // The device tree: phram node, command line, nodes this boot disables.
    let patched = match &dtb_bytes {
        Some(d) => {
            let mut fdt = Fdt::parse(d).map_err(|e| miette!("parsing the device tree: {e}"))?;
            for path in &board.ram_boot.dt_disable {
                if fdt.node(path).is_some() {
                    fdt.set_status(path, Status::Disabled)
                        .map_err(|e| miette!("disabling {path}: {e}"))?;
                    notes.push(format!("device tree: {path} disabled (ram_boot.dt_disable)"));
                }
            }
            if method == PhramMethod::Dt {
                fdt.add_phram_reservation(&PhramReservation {
                    start: region.start,
                    size: region.size,
                    label: Some("rootfs".into()),
                })
                .map_err(|e| miette!("adding the phram node: {e}"))?;
            }
            fdt.set_bootargs(&cmdline);
            Some(fdt.to_bytes())
        }
        None if method == PhramMethod::Dt => {
            return Err(miette!(
                help = "give --dtb (the board's device tree); lmx adds the /reserved-memory phram node to it",
                "board {} declares the rootfs through the device tree (ram_boot.phram = \"dt\"), but no DTB was given",
                board.name
            ))
        }
        None => None,
    };

    let kernel_input = inputs.kernel.display().to_string();
    let kernel = build_kernel(
        board,
        &KernelInput {
            input: &kernel_input,
            bytes: &kernel_bytes,
            dtb: patched.as_deref(),
            name: "lmx tftpboot",
            timestamp: 0,
        },
    )
    .map_err(|e| miette!("{e}"))?;
    notes.extend(kernel.notes.iter().cloned());
    write(out, kernel.file_name, &kernel.bytes)?;
    let dtb_file = match (&patched, kernel.dtb_inside) {
        (Some(d), false) => {
            write(out, "board.dtb", d)?;
            Some(PlannedFile::of("board.dtb", d))
        }
        _ => None,
    };

    let mut req = LayoutRequest::new(
        rootfs_bytes.len() as u64,
        dtb_file.as_ref().map(|f| f.size),
        kernel.facts,
    );
    req.dtb_in_kernel = kernel.dtb_inside;
    if inputs.lzma_rootfs {
        req.rootfs_staged = Some(rootfs_file.size);
    }
    let layout = RamLayout::plan(board, &req).map_err(|e| miette!("{e}"))?;
    if let Some(r) = layout.region(RegionKind::Rootfs) {
        if (r.phys, r.size) != (region.start, region.size) {
            return Err(miette!(
                "internal: the layout put the rootfs at {:#x}+{:#x}, the device tree says {:#x}+{:#x}",
                r.phys,
                r.size,
                region.start,
                region.size
            ));
        }
    }
    let plan = BootPlan::new(
        board,
        layout,
        method,
        &PlanInputs {
            kernel: PlannedFile::of(kernel.file_name, &kernel.bytes),
            dtb: dtb_file,
            rootfs: rootfs_file,
            rootfs_unpacked,
            bootargs: cmdline,
            ipaddr: None,
            serverip: None,
        },
    )
    .map_err(|e| miette!("{e}"))?;
    let json = serde_json::to_vec_pretty(&plan).into_diagnostic()?;
    lmx_builder::write_atomically(&out.join(PLAN_FILE), &json)
        .into_diagnostic()
        .wrap_err_with(|| format!("writing {}", out.join(PLAN_FILE).display()))?;
    let files = plan
        .loads()
        .map(|l| (l.file.clone(), out.join(&l.file)))
        .collect();
    Ok(Prepared { plan, files, notes })
}

/// Reads a plan made earlier: the `manifest.json` of `lmx build` (or its
/// directory), whose artifacts are re-hashed against the record first; or a
/// `boot-plan.json` of `lmx tftpboot --out`, whose loads U-Boot's `crc32`
/// alone checks. Files are looked up next to it.
pub fn load(path: &Path) -> miette::Result<Prepared> {
    let file = if path.is_dir() {
        path.join(lmx_builder::manifest::MANIFEST_FILE)
    } else {
        path.to_path_buf()
    };
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let text = std::fs::read_to_string(&file)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading {}", file.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .into_diagnostic()
        .wrap_err_with(|| format!("{} is not JSON", file.display()))?;
    let mut notes = Vec::new();
    let plan = if value.get("schema").is_some() {
        let m = lmx_builder::manifest::Manifest::read(&file).map_err(|e| miette!("{e}"))?;
        m.verify_files(&dir).map_err(|e| {
            miette!(
                help = "rebuild with `lmx build`, or boot the files as they are with --kernel/--rootfs/--dtb",
                "{e}"
            )
        })?;
        notes.push(format!(
            "manifest {}: {} artifacts re-hashed, all as recorded",
            file.display(),
            m.artifacts.len()
        ));
        BootPlan {
            board: m.board,
            dialect: m.dialect,
            layout: m.layout,
            bootargs: m.bootargs,
            steps: m.steps,
        }
    } else {
        serde_json::from_value(value.get("plan").cloned().unwrap_or(value))
            .into_diagnostic()
            .wrap_err_with(|| format!("{} holds no boot plan", file.display()))?
    };
    let files: Vec<(String, PathBuf)> = plan
        .loads()
        .map(|l| (l.file.clone(), dir.join(&l.file)))
        .collect();
    for (name, p) in &files {
        if !p.is_file() {
            return Err(miette!(
                "the plan loads {name}, but {} does not exist",
                p.display()
            ));
        }
    }
    Ok(Prepared { plan, files, notes })
}

fn file_name(p: &Path, default: &str) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or(default)
        .to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> miette::Result<()> {
    let p = dir.join(name);
    lmx_builder::write_atomically(&p, bytes)
        .into_diagnostic()
        .wrap_err_with(|| format!("writing {}", p.display()))
}
