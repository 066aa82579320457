//! `lmx build` as a library call: read the inputs, run the sans-I/O
//! pieces (kernel conversion, DTB patching, layout, plan, firmware,
//! manifest) and write the artifact directory all at once.
//!
//! This is the thin I/O layer around the planner. It exists so that
//! `lmx build`, `lmx tftpboot` (which builds on the fly) and tests share
//! one path from files to a [`Build`], and so that the output directory is
//! only ever seen complete: everything is written to a temporary directory
//! next to `--out` and renamed into place; a dry run plans in a scratch
//! directory that is removed afterwards.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use lmx_boards::{Board, KernelFormat, PhramMethod};

use crate::bootargs::{self, BootargsError, BootargsInput, PhramRegion};
use crate::caps;
use crate::compress;
use crate::dtedit::{PhramReservation, Status};
use crate::fdt::{self, Fdt};
use crate::firmware::{self, FirmwareError, FirmwareLayout};
use crate::kernel::{self, KernelError, KernelInput};
use crate::layout::{LayoutError, LayoutRequest, RamLayout, RegionKind, DEFAULT_PHRAM_ERASE};
use crate::manifest::{ArtifactEntry, Manifest, MANIFEST_FILE};
use crate::plan::{BootPlan, PlanError, PlanInputs, PlannedFile, Step, Verification};
use crate::squashfs::{self, SquashfsOptions};
use crate::uimage;

/// The file that carries kernel and rootfs in one legacy uImage on
/// U-Boots without `crc32` ([`Verification::BootmCovers`]).
pub const COMBINED_FILE: &str = "kernel-rootfs.uimg";

/// Everything `lmx build` is asked to do.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The resolved board.
    pub board: Board,
    /// Kernel file (`vmlinux`, `Image`, `zImage`, uImage, FIT, raw).
    pub kernel: PathBuf,
    /// Device tree blob.
    pub dtb: Option<PathBuf>,
    /// Root filesystem: a directory (made into squashfs) or a file (as is).
    pub rootfs: PathBuf,
    /// Extra kernel arguments.
    pub append: Option<String>,
    /// phram method override.
    pub phram: Option<PhramMethod>,
    /// Root device override.
    pub root_device: Option<String>,
    /// Free space inside the phram region after the rootfs.
    pub rootfs_free: u64,
    /// phram erase size.
    pub phram_erase: u64,
    /// DT nodes to disable beyond the board's `ram_boot.dt_disable`.
    pub dt_disable: Vec<String>,
    /// uImage/FIT name (default: `Linux <board>`, cut to 32 bytes).
    pub name: Option<String>,
    /// Kernel format override; must be the board's `kernel.format` or one
    /// of its `kernel.also_boots` (e.g. `fit` on qemu-aarch64).
    pub format: Option<KernelFormat>,
    /// squashfs options for a rootfs directory.
    pub squashfs: SquashfsOptions,
    /// `ipaddr` override (else the board's `network.ip`).
    pub ipaddr: Option<Ipv4Addr>,
    /// `serverip` override (else the board's `network.server_ip`).
    pub serverip: Option<Ipv4Addr>,
    /// Append the DTB to the kernel (or not), overriding the board's
    /// `kernel.append_dtb`: the image gl-ar750-class U-Boots need, which
    /// cannot pass a DTB themselves.
    pub append_dtb: Option<bool>,
    /// Send the rootfs LZMA-compressed and unpack it in U-Boot with
    /// `lzmadec` (or not), overriding the board's
    /// `ram_boot.compressed_rootfs`.
    pub lzma_rootfs: Option<bool>,
    /// Check loads by their size only (`--no-verify`): for a U-Boot where
    /// nothing can verify the bytes, and only when the user says so.
    pub no_verify: bool,
}

impl BuildRequest {
    /// A request with defaults for everything but the inputs.
    pub fn new(board: Board, kernel: PathBuf, dtb: Option<PathBuf>, rootfs: PathBuf) -> Self {
        let mut squashfs = SquashfsOptions::new();
        squashfs.all_root = true;
        BuildRequest {
            board,
            kernel,
            dtb,
            rootfs,
            append: None,
            phram: None,
            root_device: None,
            rootfs_free: 0,
            phram_erase: DEFAULT_PHRAM_ERASE,
            dt_disable: Vec::new(),
            name: None,
            format: None,
            squashfs,
            ipaddr: None,
            serverip: None,
            append_dtb: None,
            lzma_rootfs: None,
            no_verify: false,
        }
    }
}

/// Errors of a build; each names the input or output involved.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An input could not be read.
    #[error("cannot read {what} {path}: {source}", path = path.display())]
    Input {
        /// Which input.
        what: &'static str,
        /// Path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The DTB is truncated or corrupt.
    #[error("device tree {path}: {source}", path = path.display())]
    Dtb {
        /// Path.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: fdt::Error,
    },
    /// A DT edit failed (e.g. a node to disable is missing).
    #[error("device tree {path}: {what}: {source}", path = path.display())]
    DtEdit {
        /// Path.
        path: PathBuf,
        /// Which edit.
        what: String,
        /// Why.
        #[source]
        source: fdt::Error,
    },
    /// A kernel format the board is not known to boot.
    #[error("board {board} is not known to boot a {format} kernel (it boots: {known})")]
    Format {
        /// Board name.
        board: String,
        /// The format asked for.
        format: &'static str,
        /// The formats it boots.
        known: String,
    },
    /// phram through the DT needs a DTB.
    #[error("phram method {method} adds a /reserved-memory node to the device tree, but no DTB was given for board {board}")]
    NeedDtb {
        /// Board name.
        board: String,
        /// The method in effect.
        method: &'static str,
    },
    /// The kernel could not be converted.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// The board's U-Boot cannot unpack what the build would need.
    #[error(transparent)]
    Caps(#[from] caps::CapsError),
    /// The command line could not be composed.
    #[error(transparent)]
    Bootargs(#[from] BootargsError),
    /// The layout failed.
    #[error("cannot lay out {inputs} in RAM: {source}")]
    Layout {
        /// The inputs and their sizes.
        inputs: String,
        /// Why.
        #[source]
        source: LayoutError,
    },
    /// The plan failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The firmware does not fit.
    #[error(transparent)]
    Firmware(#[from] FirmwareError),
    /// The squashfs could not be built.
    #[error("rootfs {path}: {source}", path = path.display())]
    Squashfs {
        /// Rootfs directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: squashfs::Error,
    },
    /// A uImage (script) could not be built.
    #[error("{what}: {source}")]
    UImage {
        /// Which image.
        what: String,
        /// Why.
        #[source]
        source: uimage::Error,
    },
    /// LZMA for a compressed rootfs failed.
    #[error("rootfs {path}: {source}", path = path.display())]
    Compress {
        /// Path.
        path: PathBuf,
        /// Why.
        #[source]
        source: compress::Error,
    },
    /// A `--from` directory lacks an input.
    #[error("--from {dir}: {what}", dir = dir.display())]
    FromDir {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        what: String,
    },
    /// The output directory could not be written.
    #[error("cannot write {path}: {what}", path = path.display())]
    Output {
        /// Path.
        path: PathBuf,
        /// Why.
        what: String,
    },
}

/// A planned build, with its files in memory.
#[derive(Debug, Clone)]
pub struct Build {
    /// The boot plan.
    pub plan: BootPlan,
    /// The manifest.
    pub manifest: Manifest,
    /// Files of the artifact directory (name, bytes), manifest excepted.
    pub files: Vec<(String, Vec<u8>)>,
    /// The firmware layout, when there is one.
    pub firmware: Option<FirmwareLayout>,
    /// Decisions and assumptions.
    pub notes: Vec<String>,
    /// The command that runs `boot.scr.uimg` on this U-Boot (`source`, or
    /// `autoscr` on old builds), `None` when it has neither.
    pub script_runner: Option<&'static str>,
}

impl Build {
    /// The plan, the firmware and the notes as a person reads them.
    pub fn render(&self) -> String {
        let mut out = self.plan.render();
        match (self.manifest.script_addr, self.script_runner) {
            (Some(a), Some(run)) => out.push_str(&format!(
                "\nBy hand: tftpboot {a:#x} boot.scr.uimg; {run} {a:#x}\n"
            )),
            (Some(_), None) => out.push_str(
                "\nBy hand: this U-Boot has neither `source` nor `autoscr`; type the commands above\n",
            ),
            _ => {}
        }
        if let Some(f) = &self.firmware {
            out.push_str(&format!(
                "\nFirmware for partition {} (flash offset {:#x}, {:#x} bytes, erase block {:#x}):\n",
                f.partition, f.partition_offset, f.partition_size, f.erase_block
            ));
            for p in &f.parts {
                out.push_str(&format!(
                    "  {:<7} flash {:#010x}..{:#010x}  {:#x} bytes padded from {:#x}  crc32 {:08x}\n",
                    p.name,
                    p.flash_offset,
                    p.flash_offset + p.padded_size,
                    p.padded_size,
                    p.data_size,
                    p.crc32
                ));
            }
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n");
            for n in &self.notes {
                out.push_str(&format!("  - {n}\n"));
            }
        }
        out
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::Input {
        what,
        path: path.to_owned(),
        source,
    })
}

/// The default image name: `Linux <board>`, cut to the 32 bytes a uImage holds.
pub fn default_name(board: &str) -> String {
    let mut s = format!("Linux {board}");
    while s.len() > uimage::NAME_LEN {
        s.pop();
    }
    s
}

fn build_time() -> u64 {
    uimage::source_date_epoch() as u64
}

/// Plans the build; a rootfs directory is made into `scratch/rootfs.squashfs`.
pub fn prepare(req: &BuildRequest, scratch: &Path) -> Result<Build, BuildError> {
    let mut chosen = req.board.clone();
    if let Some(f) = req.format {
        let b = &req.board;
        if f != b.kernel.format && !b.kernel.also_boots.contains(&f) {
            return Err(BuildError::Format {
                board: b.name.clone(),
                format: f.as_str(),
                known: std::iter::once(b.kernel.format)
                    .chain(b.kernel.also_boots.iter().copied())
                    .map(KernelFormat::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        chosen.kernel.format = f;
    }
    if let Some(a) = req.append_dtb {
        chosen.kernel.append_dtb = a;
    }
    if let Some(z) = req.lzma_rootfs {
        chosen.ram_boot.compressed_rootfs = z;
    }
    let board = &chosen;
    let mut notes = Vec::new();

    // What this U-Boot must unpack, refused here when the board file says
    // it cannot (before any work, let alone a transfer).
    notes.extend(caps::check(
        board,
        None,
        caps::Needs {
            lzma_kernel: board.kernel.format == KernelFormat::UimageLzma,
            lzmadec: board.ram_boot.compressed_rootfs,
        },
    )?);

    if let Some(ms) = board.ram_boot.hardware_watchdog_ms {
        notes.push(format!(
            "board has an always-running hardware watchdog ({} s, ram_boot.hardware_watchdog_ms): the booted kernel must feed it (its watchdog driver built in) or the board resets",
            f64::from(ms) / 1000.0
        ));
    }

    // Rootfs.
    let (rootfs_name, rootfs) = if std::fs::metadata(&req.rootfs)
        .map(|m| m.is_dir())
        .unwrap_or(false)
    {
        let out = scratch.join("rootfs.squashfs");
        squashfs::build_squashfs(&req.rootfs, &out, &req.squashfs).map_err(|source| {
            BuildError::Squashfs {
                path: req.rootfs.clone(),
                source,
            }
        })?;
        ("rootfs.squashfs".to_string(), read("rootfs", &out)?)
    } else {
        let bytes = read("rootfs", &req.rootfs)?;
        let name = if bytes.starts_with(b"hsqs") {
            "rootfs.squashfs"
        } else {
            "rootfs.img"
        };
        (name.to_string(), bytes)
    };
    let staged = if board.ram_boot.compressed_rootfs {
        let z = compress::lzma_compress(&rootfs, kernel::LZMA_PRESET).map_err(|source| {
            BuildError::Compress {
                path: req.rootfs.clone(),
                source,
            }
        })?;
        Some((format!("{rootfs_name}.lzma"), z))
    } else {
        None
    };

    // Command line, from the rootfs region alone.
    let method = bootargs::phram_method(board, req.phram)?;
    let erase = req.phram_erase.max(1);
    let region_size = (rootfs.len() as u64 + req.rootfs_free)
        .max(1)
        .div_ceil(erase)
        * erase;
    let rootfs_start = board.ram_boot.rootfs.ok_or_else(|| BuildError::Layout {
        inputs: "the rootfs".into(),
        source: LayoutError::NoRootfsAddress {
            board: board.name.clone(),
        },
    })?;
    let cmdline = bootargs::compose(&BootargsInput {
        board,
        method,
        rootfs: PhramRegion {
            start: rootfs_start,
            size: region_size,
            erase,
        },
        root_device: req.root_device.as_deref(),
        append: req.append.as_deref(),
    })?;

    // Device tree.
    let dtb = match &req.dtb {
        None => {
            if method.needs_dtb() {
                return Err(BuildError::NeedDtb {
                    board: board.name.clone(),
                    method: method.as_str(),
                });
            }
            None
        }
        Some(path) => {
            let blob = read("device tree", path)?;
            let mut t = Fdt::parse(&blob).map_err(|source| BuildError::Dtb {
                path: path.clone(),
                source,
            })?;
            for n in &board.ram_boot.dt_disable {
                if t.node(n).is_some() {
                    t.set_status(n, Status::Disabled)
                        .map_err(|source| BuildError::DtEdit {
                            path: path.clone(),
                            what: format!("disable {n}"),
                            source,
                        })?;
                    notes.push(format!("DT: {n} disabled (board ram_boot.dt_disable)"));
                } else {
                    notes.push(format!(
                        "DT: {n} (board ram_boot.dt_disable) is not in this tree"
                    ));
                }
            }
            for n in &req.dt_disable {
                t.set_status(n, Status::Disabled)
                    .map_err(|source| BuildError::DtEdit {
                        path: path.clone(),
                        what: format!("--dt-disable {n}"),
                        source,
                    })?;
            }
            if method.needs_dtb() {
                // `dt` names the node so Linux makes the MTD device from it
                // alone; with `dt-cmdline` the command line makes it, and a
                // label would make a second one.
                t.add_phram_reservation(&PhramReservation {
                    start: rootfs_start,
                    size: region_size,
                    label: (method == PhramMethod::Dt).then(|| "rootfs".into()),
                })
                .map_err(|source| BuildError::DtEdit {
                    path: path.clone(),
                    what: "phram reservation".into(),
                    source,
                })?;
            }
            let property = board.kernel.dt_bootargs.as_deref().unwrap_or("bootargs");
            t.set_chosen_cmdline(property, &cmdline);
            if property != "bootargs" {
                notes.push(format!(
                    "DT: command line in /chosen/{property} (board kernel.dt_bootargs), where this board's kernel reads it"
                ));
            }
            Some(t.to_bytes())
        }
    };

    // Kernel.
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| default_name(&board.name));
    let kbytes = read("kernel", &req.kernel)?;
    let kin = req.kernel.display().to_string();
    let k = kernel::build_kernel(
        board,
        &KernelInput {
            input: &kin,
            bytes: &kbytes,
            dtb: dtb.as_deref(),
            name: &name,
            timestamp: build_time() as u32,
        },
    )?;
    notes.extend(k.notes.iter().cloned());

    // How loads are verified: crc32, else bootm's data CRC over one file
    // that carries kernel and rootfs, else (--no-verify) sizes alone.
    let separate_dtb = dtb.as_ref().filter(|_| !k.dtb_inside);
    let rootfs_offset = uimage::trailer_offset(k.bytes.len()) as u64;
    let verification = Verification::choose(
        board,
        req.no_verify,
        separate_dtb.is_some(),
        staged.is_some(),
        rootfs_offset,
    )?;
    let combined = match verification {
        Verification::BootmCovers { .. } => {
            let bytes =
                uimage::with_trailer(&k.bytes, &rootfs).map_err(|source| BuildError::UImage {
                    what: "kernel+rootfs image".into(),
                    source,
                })?;
            notes.push(format!(
                "no crc32 on this U-Boot: the rootfs rides in the kernel's uImage ({COMBINED_FILE}, rootfs at offset {rootfs_offset:#x}), so bootm's data CRC checks every byte before the kernel starts"
            ));
            Some(bytes)
        }
        Verification::SizeOnly => {
            notes.push("--no-verify: loads are checked by their size only; a corrupted byte would reach the kernel".into());
            None
        }
        Verification::Crc32 => None,
    };

    // Layout and plan.
    let layout_req = LayoutRequest {
        rootfs_size: rootfs.len() as u64,
        rootfs_staged: staged.as_ref().map(|(_, z)| z.len() as u64),
        rootfs_free: req.rootfs_free,
        phram_erase: erase,
        dtb_size: separate_dtb.map(|d| d.len() as u64),
        kernel: k.facts,
        dtb_in_kernel: k.dtb_inside,
        kernel_below_rootfs: combined.as_ref().map(|_| rootfs_offset),
    };
    let layout = RamLayout::plan(board, &layout_req).map_err(|source| BuildError::Layout {
        inputs: format!(
            "kernel {} ({} bytes as {}), rootfs {} ({} bytes){}",
            req.kernel.display(),
            k.bytes.len(),
            k.file_name,
            req.rootfs.display(),
            rootfs.len(),
            separate_dtb
                .map(|d| format!(", DTB ({} bytes)", d.len()))
                .unwrap_or_default()
        ),
        source,
    })?;
    if let Some(u) = layout.region(RegionKind::UBoot) {
        if board.ram.uboot.is_none() {
            notes.push(format!(
                "U-Boot's RAM (ram.uboot) unknown: assumed {:#x}..{:#x}",
                u.phys,
                u.end()
            ));
        }
    }
    let rootfs_file = PlannedFile::of(
        staged
            .as_ref()
            .map(|(n, _)| n.as_str())
            .unwrap_or(&rootfs_name),
        staged
            .as_ref()
            .map(|(_, z)| z.as_slice())
            .unwrap_or(&rootfs),
    );
    let inputs = PlanInputs {
        kernel: match &combined {
            Some(c) => PlannedFile::of(COMBINED_FILE, c),
            None => PlannedFile::of(k.file_name, &k.bytes),
        },
        dtb: separate_dtb.map(|d| PlannedFile::of("board.dtb", d)),
        rootfs: rootfs_file,
        rootfs_unpacked: staged
            .as_ref()
            .map(|_| (rootfs.len() as u64, crc32fast::hash(&rootfs))),
        bootargs: cmdline,
        ipaddr: req.ipaddr.or(board.network.ip),
        serverip: req.serverip.or(board.network.server_ip),
        verification,
    };
    if inputs.ipaddr.is_none() || inputs.serverip.is_none() {
        notes
            .push("ipaddr/serverip unknown: the plan does not set them (lmx tftpboot does)".into());
    }
    let plan = BootPlan::new(board, layout, method, &inputs)?;
    if !plan.dialect.cbsize_known {
        notes.push(format!(
            "CBSIZE unknown: commands kept within {} bytes",
            plan.dialect.cbsize
        ));
    }
    let script = plan
        .script_uimage(kernel::uimage_arch(board), build_time() as u32)
        .map_err(|source| BuildError::UImage {
            what: "boot script".into(),
            source,
        })?;

    // Firmware for flashing: the kernel file and the (unpacked) rootfs.
    let fw = firmware::plan_firmware(
        board,
        &[
            ("kernel", k.file_name, &k.bytes),
            ("rootfs", &rootfs_name, &rootfs),
        ],
    )?;
    let (firmware, fw_image) = match fw {
        Ok((l, img)) => (Some(l), Some(img)),
        Err(reason) => {
            notes.push(reason);
            (None, None)
        }
    };

    // Files and manifest.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    files.push((k.file_name.to_string(), k.bytes.clone()));
    if let Some(c) = &combined {
        files.push((COMBINED_FILE.into(), c.clone()));
    }
    if let Some(d) = separate_dtb {
        files.push(("board.dtb".into(), d.clone()));
    }
    files.push((rootfs_name.clone(), rootfs.clone()));
    if let Some((n, z)) = &staged {
        files.push((n.clone(), z.clone()));
    }
    files.push(("boot.scr".into(), plan.boot_script().into_bytes()));
    files.push(("boot.scr.uimg".into(), script));
    if let (Some(l), Some(img)) = (&firmware, fw_image) {
        files.push((l.image.clone(), img));
    }
    let mut artifacts = Vec::new();
    for (n, bytes) in &files {
        let role = match n.as_str() {
            "board.dtb" => "dtb",
            "boot.scr" => "boot-script",
            "boot.scr.uimg" => "boot-script-uimage",
            "firmware.bin" => "firmware",
            COMBINED_FILE => "kernel-rootfs",
            x if x == k.file_name => "kernel",
            x if staged.as_ref().is_some_and(|(s, _)| s == x) => "rootfs-lzma",
            _ => "rootfs",
        };
        let mut e = ArtifactEntry::of(role, n, bytes);
        let load = plan.steps.iter().find_map(|s| match s {
            Step::Load(l) if l.file == *n => Some((l.addr, l.phys)),
            _ => None,
        });
        let load = load.or_else(|| match role {
            "rootfs" => plan
                .steps
                .iter()
                .find_map(|s| match s {
                    Step::Unpack(u) => Some((u.dst, board.to_phys(u.dst).unwrap_or(u.dst))),
                    _ => None,
                })
                // Inside the kernel+rootfs file, the rootfs lands on its region.
                .or_else(|| {
                    plan.layout
                        .region(RegionKind::Rootfs)
                        .and_then(|r| r.uboot.map(|a| (a, r.phys)))
                }),
            "boot-script-uimage" => plan
                .layout
                .region(RegionKind::Script)
                .and_then(|r| r.uboot.map(|a| (a, r.phys))),
            _ => None,
        });
        if let Some((a, p)) = load {
            e.load_addr = Some(a);
            e.phys_addr = Some(p);
        }
        artifacts.push(e);
    }
    let phram = method.as_str();
    let manifest = Manifest::new(
        &plan,
        board.kernel.format.as_str(),
        phram,
        artifacts,
        firmware.clone(),
        notes.clone(),
        build_time(),
    );
    let inventory = lmx_boards::Inventory::of(&board.uboot);
    let script_runner = if inventory.availability("source") != lmx_boards::Availability::Absent {
        Some("source")
    } else if inventory.availability("autoscr") == lmx_boards::Availability::Present {
        Some("autoscr")
    } else {
        None
    };
    Ok(Build {
        plan,
        manifest,
        files,
        firmware,
        notes,
        script_runner,
    })
}

fn out_err(path: &Path) -> impl Fn(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::Output {
        path: path.to_owned(),
        what: e.to_string(),
    }
}

/// Plans and, unless `dry_run`, writes the artifact directory `out`
/// through a temporary directory next to it. An existing `out` is
/// replaced only when it is empty or an earlier build (holds
/// `manifest.json`).
pub fn build(req: &BuildRequest, out: &Path, dry_run: bool) -> Result<Build, BuildError> {
    if dry_run {
        let scratch = tempfile::Builder::new()
            .prefix("lmx-build-")
            .tempdir()
            .map_err(out_err(Path::new("temporary directory")))?;
        return prepare(req, scratch.path());
    }
    if out.exists() {
        let replaceable = out.is_dir()
            && (out.join(MANIFEST_FILE).is_file()
                || std::fs::read_dir(out)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false));
        if !replaceable {
            return Err(BuildError::Output {
                path: out.to_owned(),
                what: "exists and is not an lmx artifact directory (no manifest.json); choose another --out".into(),
            });
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(out_err(&parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".lmx-build-")
        .tempdir_in(&parent)
        .map_err(out_err(&parent))?;
    let b = prepare(req, tmp.path())?;
    for (name, bytes) in &b.files {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).map_err(out_err(&p))?;
    }
    std::fs::write(tmp.path().join("plan.txt"), b.render()).map_err(out_err(tmp.path()))?;
    let m = tmp.path().join(MANIFEST_FILE);
    std::fs::write(&m, b.manifest.to_json()).map_err(out_err(&m))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(out_err(tmp.path()))?;
    let tmp = tmp.keep();
    if out.exists() {
        let old = tempfile::Builder::new()
            .prefix(".lmx-old-")
            .tempdir_in(&parent)
            .map_err(out_err(&parent))?
            .keep();
        let aside = old.join("previous");
        std::fs::rename(out, &aside).map_err(out_err(out))?;
        std::fs::rename(&tmp, out).map_err(out_err(out))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp, out).map_err(out_err(out))?;
    }
    Ok(b)
}

/// The inputs found in a build-output directory, by one deterministic
/// rule that `lmx build --from` and `lmx tftpboot --from` share:
///
/// * the kernel: the first of `vmlinux`, `uimage`, `uImage` (uImage
///   boards), `Image`, `zImage`, `vmlinux`, `uimage`, `uImage`,
///   `kernel.itb` (FIT boards), `Image` or `zImage` (booti/bootz boards)
///   that exists;
/// * the device tree: `dtb`, else the only `*.dtb` (several are refused);
/// * the rootfs: `rootfs` (a file or a directory), else the only
///   `*.squashfs` (several are refused).
///
/// Symlinks (such as a Nix store's) are followed.
pub fn inputs_from_dir(
    board: &Board,
    dir: &Path,
) -> Result<(PathBuf, Option<PathBuf>, PathBuf), BuildError> {
    use lmx_boards::KernelFormat as F;
    let err = |what: String| BuildError::FromDir {
        dir: dir.to_owned(),
        what,
    };
    if !dir.is_dir() {
        return Err(err("not a directory".into()));
    }
    let order: &[&str] = match board.kernel.format {
        F::Image => &["Image"],
        F::Zimage => &["zImage"],
        F::UimageLzma | F::UimageGzip | F::Uimage => &["vmlinux", "uimage", "uImage"],
        F::Fit => &[
            "Image",
            "zImage",
            "vmlinux",
            "uimage",
            "uImage",
            "kernel.itb",
        ],
    };
    let exists = |n: &str| std::fs::metadata(dir.join(n)).is_ok();
    let kernel = order
        .iter()
        .find(|n| exists(n))
        .map(|n| dir.join(n))
        .ok_or_else(|| {
            err(format!(
                "no kernel for a {} board (looked for {})",
                board.kernel.format.as_str(),
                order.join(", ")
            ))
        })?;
    // The only file with this extension, or none; several are an error.
    let only = |ext: &str, what: &str| -> Result<Option<PathBuf>, BuildError> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == ext) && p.is_file())
            .collect();
        found.sort();
        match found.len() {
            0 | 1 => Ok(found.pop()),
            _ => Err(err(format!(
                "several *.{ext} files ({}); name the {what} to use",
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    };
    let dtb = if std::fs::metadata(dir.join("dtb"))
        .map(|m| m.is_file())
        .unwrap_or(false)
    {
        Some(dir.join("dtb"))
    } else {
        only("dtb", "device tree")?
    };
    let rootfs = if std::fs::metadata(dir.join("rootfs")).is_ok() {
        dir.join("rootfs")
    } else {
        only("squashfs", "rootfs")?.ok_or_else(|| {
            err("no rootfs (a file or directory named rootfs, or one *.squashfs)".into())
        })?
    };
    Ok((kernel, dtb, rootfs))
}
