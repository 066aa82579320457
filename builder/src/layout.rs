//! The RAM layout planner: where U-Boot loads the root filesystem, the
//! device tree and the kernel for a RAM (phram) boot, and where the kernel
//! will spread itself once started.
//!
//! This exists because one wrong address costs an afternoon: a DTB that
//! the decompressing kernel overwrites, a rootfs that the kernel later
//! uses as ordinary memory, a load on top of U-Boot's relocated code. The
//! planner is a pure function of the board facts and the artifact sizes
//! ([`RamLayout::plan`]); it places every region, checks that no two
//! overlap, that all lie in RAM and clear of U-Boot, and when something
//! does not fit it refuses with the whole map printed as a table, so the
//! person reading the error sees what collided with what.
//!
//! Placement rules (all addresses physical; U-Boot addresses are derived
//! through the board's address map):
//!
//! - **rootfs** at the board's `ram_boot.rootfs`, its region rounded up to
//!   the phram erase size (64 KiB unless told otherwise) after adding the
//!   requested free space;
//! - **kernel**: the whole span the kernel touches before it has reserved
//!   its own memory. A raw arm64 `Image` runs in place (its header's
//!   `image_size`, which includes the BSS). An ARM zImage decompresses to
//!   `(load & 0xf8000000) + 0x8000` and, when its own copy is in the way,
//!   relocates itself past the end of the decompressed kernel: the span
//!   covers both. A uImage or FIT is staged somewhere free and `bootm`
//!   unpacks it to the header's load address;
//! - **DTB** 4 KiB aligned with 64 KiB of room for U-Boot's fixups (it grows
//!   the blob by about 12 KB in place), outside the kernel's span and the
//!   rootfs. The usual manual rule is "below the kernel"
//!   (`docs/design/uboot-and-tftp.md`, "RAM boot through phram"); it exists to
//!   keep the blob out of the decompressed kernel's way, and for a zImage
//!   the decompressed kernel lies *below* the load address, so the planner
//!   implements the underlying rule instead: first try right above the
//!   rootfs region (the layout verified on the virtual boards), then right
//!   below the kernel's span, then right above it;
//! - **staging areas** (a uImage or FIT before `bootm` unpacks it, an LZMA
//!   rootfs before `lzmadec`) go in the first free gap, 1 MiB aligned,
//!   above the kernel's span, then above the rootfs, then anywhere.
//!
//! U-Boot's own region comes from `ram.uboot`; when the board file does not
//! know it, the top 16 MiB of RAM are assumed to be U-Boot's (it relocates
//! there) and the map says so.

use std::fmt;

use lmx_boards::{AddressError, Board};
use serde::{Deserialize, Serialize};

/// Default erase size of the phram device (and rounding of its region).
pub const DEFAULT_PHRAM_ERASE: u64 = 0x1_0000;
/// Alignment of the DTB.
pub const DTB_ALIGN: u64 = 0x1000;
/// Room left after the DTB for U-Boot's in-place fixups (`/chosen`,
/// `/memory`); about 12 KB were seen on the virtual board.
pub const DTB_GROWTH: u64 = 0x1_0000;
/// Alignment of staging areas (images `bootm` or `lzmadec` unpacks).
pub const STAGING_ALIGN: u64 = 0x10_0000;
/// How much of the top of RAM is assumed to be U-Boot's when the board
/// file does not say.
pub const ASSUMED_UBOOT_TOP: u64 = 16 << 20;
/// Where an ARM zImage puts the decompressed kernel, relative to its load
/// address rounded down to 128 MiB (`TEXT_OFFSET`).
pub const ARM_TEXT_OFFSET: u64 = 0x8000;
/// Room for a relocated zImage's stack, heap and page tables.
pub const ZIMAGE_SLACK: u64 = 1 << 20;
/// The RAM a zImage of `file` bytes started at `at` uses, `[start, end)`:
/// it unpacks `decompressed` bytes to the start of its 128 MiB bank plus
/// [`ARM_TEXT_OFFSET`] and, when its own copy is in the way of that
/// output, first copies itself past it ([`ZIMAGE_SLACK`] for its stack,
/// heap and page tables).
pub fn zimage_span(at: u64, file: u64, decompressed: u64) -> (u64, u64) {
    let dest = (at & 0xf800_0000) + ARM_TEXT_OFFSET;
    let decomp_end = dest.saturating_add(decompressed);
    let end = if at < decomp_end && dest < at + file {
        decomp_end + file + ZIMAGE_SLACK
    } else {
        (at + file + ZIMAGE_SLACK).max(decomp_end)
    };
    (dest.min(at), end)
}

/// Size of the boot script region (scripts are a few hundred bytes).
pub const SCRIPT_SIZE: u64 = 0x1_0000;

/// What a region of the map holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionKind {
    /// The root filesystem as the kernel sees it (the phram region).
    Rootfs,
    /// A compressed rootfs before `lzmadec` unpacks it.
    RootfsStaging,
    /// The device tree, with room to grow.
    Dtb,
    /// The kernel's whole span once started (for in-place kernels this
    /// includes the loaded image).
    Kernel,
    /// A kernel image (uImage, FIT) before `bootm` unpacks it.
    KernelStaging,
    /// U-Boot's own memory (known or assumed).
    UBoot,
    /// The boot script uImage (`tftpboot ADDR boot.scr.uimg; source ADDR`).
    Script,
}

impl RegionKind {
    /// Short name used in the map.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionKind::Rootfs => "rootfs",
            RegionKind::RootfsStaging => "rootfs (staged)",
            RegionKind::Dtb => "dtb",
            RegionKind::Kernel => "kernel",
            RegionKind::KernelStaging => "kernel (staged)",
            RegionKind::UBoot => "u-boot",
            RegionKind::Script => "boot script",
        }
    }
}

/// One placed region of RAM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// What it holds.
    pub kind: RegionKind,
    /// Physical start.
    pub phys: u64,
    /// Size of the region in bytes (rounded, with room to grow).
    pub size: u64,
    /// Bytes actually loaded into it (0 for spans nothing is loaded to).
    pub used: u64,
    /// The address U-Boot commands take for `phys`; `None` when the
    /// board's address map does not cover it (only possible for U-Boot's
    /// own region).
    pub uboot: Option<u64>,
    /// Why it is where it is, or what is assumed about it.
    pub note: String,
}

impl Placed {
    /// One past the last byte (physical).
    pub fn end(&self) -> u64 {
        self.phys.saturating_add(self.size)
    }

    /// Whether the two regions share a byte.
    pub fn overlaps(&self, other: &Placed) -> bool {
        self.phys < other.end() && other.phys < self.end()
    }
}

/// How the kernel occupies RAM once U-Boot has started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelRun {
    /// Runs where it is loaded (arm64 `Image` with `booti`): `size` bytes
    /// from the board's load address, the BSS included.
    InPlace {
        /// Bytes the running kernel spans (at least the file size).
        size: u64,
    },
    /// ARM zImage (`bootz`) loaded at the board's load address that
    /// decompresses itself into `decompressed` bytes.
    Zimage {
        /// Decompressed kernel size (estimated when not known).
        decompressed: u64,
    },
    /// `bootm` unpacks the image to `load` (a U-Boot address, from the
    /// image header) where it spans `size` bytes; the file is staged
    /// elsewhere.
    Unpacked {
        /// Load address (U-Boot address space).
        load: u64,
        /// Bytes the unpacked kernel spans.
        size: u64,
    },
}

/// What the planner needs to know about the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFacts {
    /// Size of the file U-Boot loads.
    pub file_size: u64,
    /// Where it runs.
    pub run: KernelRun,
    /// Whether the run size was read from the image (true) or estimated.
    pub size_known: bool,
}

/// The artifact sizes and the options of one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutRequest {
    /// Bytes of the rootfs as the kernel sees it (the unpacked size when
    /// U-Boot unpacks it).
    pub rootfs_size: u64,
    /// Size of the compressed rootfs file when U-Boot unpacks it with
    /// `lzmadec`; `None` when the rootfs is loaded as is.
    pub rootfs_staged: Option<u64>,
    /// Free space requested after the rootfs inside the phram region.
    pub rootfs_free: u64,
    /// phram erase size (the region is rounded up to it).
    pub phram_erase: u64,
    /// DTB size when the DTB is loaded separately; `None` when it is in
    /// the kernel image (appended, FIT) or absent.
    pub dtb_size: Option<u64>,
    /// The kernel.
    pub kernel: KernelFacts,
    /// The DTB travels inside the kernel image (a FIT, an appended DTB).
    /// U-Boot may grow a FIT's DTB in place, past the end of the file, so
    /// a staged image gets [`DTB_GROWTH`] more room.
    pub dtb_in_kernel: bool,
    /// The kernel file continues with the rootfs (one legacy uImage whose
    /// data CRC `bootm` checks over both, for U-Boots without `crc32`):
    /// its first `n` bytes, header and padded kernel, are staged so that
    /// they end exactly where the rootfs region starts.
    pub kernel_below_rootfs: Option<u64>,
}

impl LayoutRequest {
    /// A request with the default phram erase size and no free space.
    pub fn new(rootfs_size: u64, dtb_size: Option<u64>, kernel: KernelFacts) -> Self {
        LayoutRequest {
            rootfs_size,
            rootfs_staged: None,
            rootfs_free: 0,
            phram_erase: DEFAULT_PHRAM_ERASE,
            dtb_size,
            kernel,
            dtb_in_kernel: false,
            kernel_below_rootfs: None,
        }
    }
}

/// RAM as the planner saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RamSpan {
    /// Physical base.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl RamSpan {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// A planned RAM layout: every region, physical and U-Boot addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RamLayout {
    /// RAM.
    pub ram: RamSpan,
    /// The regions, sorted by physical address.
    pub regions: Vec<Placed>,
    /// The phram erase size used to round the rootfs region.
    pub phram_erase: u64,
    /// Physical address the kernel file is loaded to (the board's load
    /// address for `booti`/`bootz`, the staging area for `bootm`).
    pub kernel_image: u64,
}

/// Why no layout could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The board file does not give the RAM size.
    #[error("board {board}: the RAM size is unknown (ram.size), so nothing can be checked against the end of RAM; add it to the board file")]
    RamSizeUnknown {
        /// Board name.
        board: String,
    },
    /// The board file does not say where the rootfs goes.
    #[error(
        "board {board}: no RAM-boot rootfs address (ram_boot.rootfs); add it to the board file"
    )]
    NoRootfsAddress {
        /// Board name.
        board: String,
    },
    /// The kernel runs at the board's load address but the board has none.
    #[error("board {board}: no kernel load address (kernel.load) for a {format} kernel")]
    NoKernelLoad {
        /// Board name.
        board: String,
        /// Kernel format.
        format: &'static str,
    },
    /// An address outside the board's address map.
    #[error("{what}: {source}")]
    Address {
        /// Which address.
        what: String,
        /// The mapping error.
        #[source]
        source: AddressError,
    },
    /// Regions overlap, leave RAM or hit U-Boot; `map` is the whole table.
    #[error("{problem}\n\n{map}")]
    Conflict {
        /// What went wrong, naming the regions.
        problem: String,
        /// The map as far as it was placed.
        map: String,
    },
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a).saturating_mul(a)
}

fn align_down(v: u64, a: u64) -> u64 {
    v / a * a
}

/// Formats a size the way people say it: `13 MiB`, `832 KiB`, `1234 B`.
pub fn human_size(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

struct Planner<'a> {
    board: &'a Board,
    ram: RamSpan,
    regions: Vec<Placed>,
}

impl Planner<'_> {
    fn map(&self) -> String {
        render_map(self.ram, &self.regions)
    }

    fn conflict(&self, problem: String) -> LayoutError {
        LayoutError::Conflict {
            problem,
            map: self.map(),
        }
    }

    /// Whether U-Boot can address the whole span.
    fn mapped(&self, phys: u64, size: u64) -> bool {
        self.board.to_uboot_addr(phys).is_ok()
            && self.board.to_uboot_addr(phys + size.max(1) - 1).is_ok()
    }

    fn uboot_addr(&self, phys: u64) -> Option<u64> {
        self.board.to_uboot_addr(phys).ok()
    }

    /// Checks a candidate against RAM and every placed region.
    fn fits(&self, phys: u64, size: u64, limit: Option<(u64, u64)>) -> bool {
        let end = match phys.checked_add(size) {
            Some(e) => e,
            None => return false,
        };
        if phys < self.ram.base || end > self.ram.end() {
            return false;
        }
        if !self.mapped(phys, size) {
            return false;
        }
        if let Some((lo, hi)) = limit {
            if phys < lo || end > hi {
                return false;
            }
        }
        self.regions
            .iter()
            .all(|r| end <= r.phys || phys >= r.end())
    }

    /// The first aligned address at or above `floor` where `size` bytes fit.
    fn first_gap(&self, floor: u64, size: u64, align: u64) -> Option<u64> {
        let mut cand = align_up(floor.max(self.ram.base), align);
        let mut sorted: Vec<&Placed> = self.regions.iter().collect();
        sorted.sort_by_key(|r| r.phys);
        loop {
            if cand.checked_add(size)? > self.ram.end() {
                return None;
            }
            match sorted
                .iter()
                .find(|r| cand < r.end() && r.phys < cand + size)
            {
                None if self.mapped(cand, size) => return Some(cand),
                None => return None,
                Some(r) => cand = align_up(r.end(), align),
            }
        }
    }

    fn push(&mut self, kind: RegionKind, phys: u64, size: u64, used: u64, note: String) {
        let uboot = self.uboot_addr(phys);
        self.regions.push(Placed {
            kind,
            phys,
            size,
            used,
            uboot,
            note,
        });
    }

    /// Adds a region whose address is fixed, refusing any conflict.
    fn fixed(
        &mut self,
        kind: RegionKind,
        phys: u64,
        size: u64,
        used: u64,
        note: String,
    ) -> Result<(), LayoutError> {
        let end = phys.checked_add(size);
        if phys < self.ram.base || end.is_none_or(|e| e > self.ram.end()) {
            self.push(kind, phys, size, used, note);
            return Err(self.conflict(format!(
                "the {} region {:#x}..{:#x} ({}) lies outside RAM {:#x}..{:#x}",
                kind.as_str(),
                phys,
                phys.saturating_add(size),
                human_size(size),
                self.ram.base,
                self.ram.end()
            )));
        }
        let clash = self
            .regions
            .iter()
            .find(|r| phys < r.end() && r.phys < phys + size)
            .map(|r| (r.kind, r.phys, r.end()));
        self.push(kind, phys, size, used, note);
        if let Some((k, a, b)) = clash {
            return Err(self.conflict(format!(
                "the {} region {:#x}..{:#x} overlaps the {} region {:#x}..{:#x}",
                kind.as_str(),
                phys,
                phys + size,
                k.as_str(),
                a,
                b
            )));
        }
        Ok(())
    }
}

impl RamLayout {
    /// Plans the RAM boot of `board` for the artifacts described by `req`.
    pub fn plan(board: &Board, req: &LayoutRequest) -> Result<RamLayout, LayoutError> {
        let name = board.name.clone();
        let ram = board
            .ram
            .region()
            .map(|r| RamSpan {
                base: r.base,
                size: r.size,
            })
            .ok_or_else(|| LayoutError::RamSizeUnknown {
                board: name.clone(),
            })?;
        let rootfs = board
            .ram_boot
            .rootfs
            .ok_or_else(|| LayoutError::NoRootfsAddress {
                board: name.clone(),
            })?;
        let erase = req.phram_erase.max(1);
        let mut p = Planner {
            board,
            ram,
            regions: Vec::new(),
        };

        // U-Boot first: everything else must stay clear of it.
        let (ub, ub_note) = match board.ram.uboot {
            Some(r) => (r, "ram.uboot (board file)".to_string()),
            None => {
                let size = ASSUMED_UBOOT_TOP.min(ram.size);
                (
                    lmx_boards::Region {
                        base: ram.end() - size,
                        size,
                    },
                    "assumed: top 16 MiB of RAM (ram.uboot unknown)".to_string(),
                )
            }
        };
        p.push(RegionKind::UBoot, ub.base, ub.size, 0, ub_note);

        // The rootfs at the board's address.
        let rootfs_size = align_up(
            req.rootfs_size.saturating_add(req.rootfs_free).max(1),
            erase,
        );
        let note = if req.rootfs_free > 0 {
            format!(
                "ram_boot.rootfs; {} + {} free, rounded to {}",
                human_size(req.rootfs_size),
                human_size(req.rootfs_free),
                human_size(erase)
            )
        } else {
            format!("ram_boot.rootfs; rounded to {}", human_size(erase))
        };
        p.fixed(
            RegionKind::Rootfs,
            rootfs,
            rootfs_size,
            req.rootfs_size,
            note,
        )?;
        if let Some(free) = board.ram_boot.free {
            if !free.contains_region(&lmx_boards::Region {
                base: rootfs,
                size: rootfs_size,
            }) {
                return Err(p.conflict(format!(
                    "the rootfs region {:#x}..{:#x} leaves the board's free RAM (ram_boot.free) {:#x}..{:#x}",
                    rootfs,
                    rootfs + rootfs_size,
                    free.base,
                    free.end()
                )));
            }
        }

        // The kernel's span.
        let load_phys = |what: &str| -> Result<u64, LayoutError> {
            let load = board.kernel.load.ok_or_else(|| LayoutError::NoKernelLoad {
                board: name.clone(),
                format: board.kernel.format.as_str(),
            })?;
            board.to_phys(load).map_err(|source| LayoutError::Address {
                what: format!("kernel.load {load:#x} ({what})"),
                source,
            })
        };
        let guess = if req.kernel.size_known {
            "size from the image"
        } else {
            "size estimated"
        };
        let mut staged_kernel = None;
        let mut staged_growth = 0;
        let mut kernel_image = 0;
        match req.kernel.run {
            KernelRun::InPlace { size } => {
                let at = load_phys("booti runs the image in place")?;
                kernel_image = at;
                let size = align_up(size.max(req.kernel.file_size), DTB_ALIGN);
                p.fixed(
                    RegionKind::Kernel,
                    at,
                    size,
                    req.kernel.file_size,
                    format!("kernel.load; runs in place, {guess}"),
                )?;
            }
            KernelRun::Zimage { decompressed } => {
                let at = load_phys("bootz")?;
                kernel_image = at;
                let dest = (at & 0xf800_0000) + ARM_TEXT_OFFSET;
                let file = req.kernel.file_size;
                let (start, end) = zimage_span(at, file, decompressed);
                p.fixed(
                    RegionKind::Kernel,
                    start,
                    align_up(end - start, DTB_ALIGN),
                    file,
                    format!(
                        "zImage at {at:#x} unpacks to {dest:#x}, {} ({guess}) + relocation",
                        human_size(decompressed)
                    ),
                )?;
            }
            KernelRun::Unpacked { load, size } => {
                let at = board.to_phys(load).map_err(|source| LayoutError::Address {
                    what: format!("kernel load address {load:#x} (image header)"),
                    source,
                })?;
                p.fixed(
                    RegionKind::Kernel,
                    at,
                    align_up(size.max(1), DTB_ALIGN),
                    0,
                    format!("bootm unpacks here, {}, {guess}", human_size(size)),
                )?;
                staged_kernel = Some(req.kernel.file_size);
                if req.dtb_in_kernel {
                    staged_growth = DTB_GROWTH;
                }
            }
        }
        let kernel = p
            .regions
            .iter()
            .find(|r| r.kind == RegionKind::Kernel)
            .cloned()
            .expect("placed above");
        let rootfs_end = rootfs + rootfs_size;
        let free_limit = board.ram_boot.free.map(|f| (f.base, f.end()));

        // The DTB: above the rootfs, else below the kernel, else above it.
        if let Some(dtb) = req.dtb_size {
            let size = align_up(dtb + DTB_GROWTH, DTB_ALIGN);
            let below = kernel
                .phys
                .checked_sub(size)
                .map(|a| align_down(a, DTB_ALIGN));
            let cands = [
                (Some(align_up(rootfs_end, DTB_ALIGN)), "above the rootfs"),
                (below, "below the kernel"),
                (Some(align_up(kernel.end(), DTB_ALIGN)), "above the kernel"),
            ];
            let pick = cands
                .iter()
                .filter_map(|(a, why)| a.map(|a| (a, *why)))
                .find(|(a, _)| p.fits(*a, size, free_limit));
            match pick {
                Some((at, why)) => p.push(
                    RegionKind::Dtb,
                    at,
                    size,
                    dtb,
                    format!("{why}; {} + {} to grow", human_size(dtb), human_size(DTB_GROWTH)),
                ),
                None => {
                    return Err(p.conflict(format!(
                        "no place for the DTB ({} with room to grow): not above the rootfs, below or above the kernel",
                        human_size(size)
                    )))
                }
            }
        }

        // Staging areas: first free gap above the kernel, the rootfs, RAM base.
        let top_of = |p: &Planner, kinds: &[RegionKind]| {
            p.regions
                .iter()
                .filter(|r| kinds.contains(&r.kind))
                .map(|r| r.end())
                .max()
                .unwrap_or(p.ram.base)
        };
        // `extra`: room after the file (a FIT's DTB grown in place).
        let stage = |p: &mut Planner,
                     kind: RegionKind,
                     bytes: u64,
                     extra: u64,
                     floors: &[u64]|
         -> Result<(), LayoutError> {
            let size = align_up(bytes.max(1) + extra, DTB_ALIGN);
            let at = floors
                .iter()
                .find_map(|f| p.first_gap(*f, size, STAGING_ALIGN));
            match at {
                Some(at) => {
                    let why = if extra > 0 {
                        format!(
                            "first free gap, 1 MiB aligned; + {} for the DTB inside to grow",
                            human_size(extra)
                        )
                    } else {
                        "first free gap, 1 MiB aligned".into()
                    };
                    p.push(kind, at, size, bytes, why);
                    Ok(())
                }
                None => Err(p.conflict(format!(
                    "no free gap of {} in RAM for the {}",
                    human_size(size),
                    kind.as_str()
                ))),
            }
        };
        if let (Some(_), Some(head)) = (staged_kernel, req.kernel_below_rootfs) {
            let at = rootfs.checked_sub(head).filter(|a| *a >= ram.base);
            let Some(at) = at else {
                return Err(p.conflict(format!(
                    "the kernel+rootfs file needs {} below the rootfs at {rootfs:#x} for its kernel part, but RAM starts at {:#x}",
                    human_size(head),
                    ram.base
                )));
            };
            p.fixed(
                RegionKind::KernelStaging,
                at,
                head,
                head,
                "uImage header + kernel, ending where the rootfs starts: one file, bootm checks both".into(),
            )?;
            if let Some(free) = board.ram_boot.free {
                if !free.contains_region(&lmx_boards::Region {
                    base: at,
                    size: head,
                }) {
                    return Err(p.conflict(format!(
                        "the kernel part of the kernel+rootfs file, {at:#x}..{rootfs:#x}, leaves the board's free RAM (ram_boot.free) {:#x}..{:#x}",
                        free.base,
                        free.end()
                    )));
                }
            }
        } else if let Some(bytes) = staged_kernel {
            let floors = [
                kernel.end(),
                top_of(&p, &[RegionKind::Rootfs, RegionKind::Dtb]),
                ram.base,
            ];
            stage(
                &mut p,
                RegionKind::KernelStaging,
                bytes,
                staged_growth,
                &floors,
            )?;
        }
        if let Some(bytes) = req.rootfs_staged {
            let floors = [
                top_of(
                    &p,
                    &[
                        RegionKind::Rootfs,
                        RegionKind::Dtb,
                        RegionKind::Kernel,
                        RegionKind::KernelStaging,
                    ],
                ),
                ram.base,
            ];
            stage(&mut p, RegionKind::RootfsStaging, bytes, 0, &floors)?;
        }
        if let Some(s) = p
            .regions
            .iter()
            .find(|r| r.kind == RegionKind::KernelStaging)
        {
            kernel_image = s.phys;
        }
        let all = top_of(
            &p,
            &[
                RegionKind::Rootfs,
                RegionKind::Dtb,
                RegionKind::Kernel,
                RegionKind::KernelStaging,
                RegionKind::RootfsStaging,
            ],
        );
        stage(&mut p, RegionKind::Script, SCRIPT_SIZE, 0, &[all, ram.base])?;
        // The script's size is only known once the plan is rendered.
        if let Some(s) = p.regions.iter_mut().find(|r| r.kind == RegionKind::Script) {
            s.used = 0;
            s.note = "boot.scr.uimg for `source`; first free gap".into();
        }

        // Every region that U-Boot loads to must have a U-Boot address.
        for r in &p.regions {
            if r.kind != RegionKind::UBoot {
                for a in [r.phys, r.end() - 1] {
                    if let Err(source) = board.to_uboot_addr(a) {
                        return Err(LayoutError::Address {
                            what: format!("the {} region", r.kind.as_str()),
                            source,
                        });
                    }
                }
            }
        }
        let mut layout = RamLayout {
            ram,
            regions: p.regions,
            phram_erase: erase,
            kernel_image,
        };
        layout.regions.sort_by_key(|r| (r.phys, r.kind as u8));
        layout.check()?;
        Ok(layout)
    }

    /// The first region of `kind`.
    pub fn region(&self, kind: RegionKind) -> Option<&Placed> {
        self.regions.iter().find(|r| r.kind == kind)
    }

    /// Checks the invariants: every region in RAM, no two overlapping.
    pub fn check(&self) -> Result<(), LayoutError> {
        for (i, a) in self.regions.iter().enumerate() {
            if a.phys < self.ram.base || a.end() > self.ram.end() {
                return Err(LayoutError::Conflict {
                    problem: format!("the {} region lies outside RAM", a.kind.as_str()),
                    map: self.to_string(),
                });
            }
            for b in &self.regions[i + 1..] {
                if a.overlaps(b) {
                    return Err(LayoutError::Conflict {
                        problem: format!(
                            "the {} and {} regions overlap",
                            a.kind.as_str(),
                            b.kind.as_str()
                        ),
                        map: self.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The map as a table, lowest address first.
pub fn render_map(ram: RamSpan, regions: &[Placed]) -> String {
    let mut rows: Vec<&Placed> = regions.iter().collect();
    rows.sort_by_key(|r| r.phys);
    let mut out = format!(
        "RAM {:#010x}..{:#010x} ({})\n",
        ram.base,
        ram.end(),
        human_size(ram.size)
    );
    out.push_str(&format!(
        "{:<16} {:>12} {:>12} {:>12} {:>10} {:>10}  {}\n",
        "region", "u-boot addr", "phys start", "phys end", "size", "used", "why"
    ));
    for r in rows {
        out.push_str(&format!(
            "{:<16} {:>12} {:>12} {:>12} {:>10} {:>10}  {}\n",
            r.kind.as_str(),
            r.uboot
                .map(|a| format!("{a:#010x}"))
                .unwrap_or_else(|| "-".into()),
            format!("{:#010x}", r.phys),
            format!("{:#010x}", r.end()),
            human_size(r.size),
            if r.used > 0 {
                human_size(r.used)
            } else {
                "-".into()
            },
            r.note
        ));
    }
    out
}

impl fmt::Display for RamLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render_map(self.ram, &self.regions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lmx_boards::Catalog;

    fn board(name: &str) -> Board {
        Catalog::builtin().resolve(name).unwrap().board
    }

    #[test]
    fn qemu_aarch64_matches_the_verified_layout() {
        let b = board("qemu-aarch64");
        let kernel = KernelFacts {
            file_size: 5_000_000,
            run: KernelRun::InPlace { size: 5_600_000 },
            size_known: true,
        };
        let l = RamLayout::plan(&b, &LayoutRequest::new(0xd_0000, Some(0x2000), kernel)).unwrap();
        let rootfs = l.region(RegionKind::Rootfs).unwrap();
        assert_eq!((rootfs.phys, rootfs.size), (0x4400_0000, 0xd_0000));
        assert_eq!(l.region(RegionKind::Dtb).unwrap().phys, 0x440d_0000);
        assert_eq!(l.region(RegionKind::Kernel).unwrap().phys, 0x4040_0000);
        assert_eq!(l.region(RegionKind::Dtb).unwrap().uboot, Some(0x440d_0000));
    }

    #[test]
    fn zimage_span_covers_decompression_and_relocation() {
        let b = board("qemu-armv7l");
        let kernel = KernelFacts {
            file_size: 1_700_000,
            run: KernelRun::Zimage {
                decompressed: 4 * 1_700_000,
            },
            size_known: false,
        };
        let l = RamLayout::plan(&b, &LayoutRequest::new(0xd_0000, Some(0x2000), kernel)).unwrap();
        let k = l.region(RegionKind::Kernel).unwrap();
        assert_eq!(k.phys, 0x4000_8000);
        assert!(k.end() > 0x405b_0000, "{l}");
        assert_eq!(l.region(RegionKind::Dtb).unwrap().phys, 0x440d_0000);
    }

    #[test]
    fn rootfs_on_the_kernel_is_refused_with_the_map() {
        let mut b = board("qemu-aarch64");
        b.ram_boot.rootfs = Some(0x4050_0000);
        let kernel = KernelFacts {
            file_size: 5_000_000,
            run: KernelRun::InPlace { size: 5_600_000 },
            size_known: true,
        };
        let e = RamLayout::plan(&b, &LayoutRequest::new(0xd_0000, Some(0x2000), kernel))
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlaps the rootfs region"), "{e}");
        assert!(e.contains("u-boot addr"), "{e}");
        assert!(e.contains("rootfs"), "{e}");
    }

    #[test]
    fn kernel_too_large_for_ram_is_refused() {
        let b = board("qemu-aarch64");
        let kernel = KernelFacts {
            file_size: 600 << 20,
            run: KernelRun::InPlace { size: 600 << 20 },
            size_known: true,
        };
        let e = RamLayout::plan(&b, &LayoutRequest::new(0xd_0000, None, kernel)).unwrap_err();
        assert!(e.to_string().contains("kernel region"), "{e}");
    }

    #[test]
    fn gl_ar750_stages_the_uimage_between_kernel_and_rootfs() {
        let b = board("gl-ar750");
        let kernel = KernelFacts {
            file_size: 2 << 20,
            run: KernelRun::Unpacked {
                load: 0x8006_0000,
                size: 5 << 20,
            },
            size_known: true,
        };
        let l = RamLayout::plan(&b, &LayoutRequest::new(3 << 20, None, kernel)).unwrap();
        let r = l.region(RegionKind::Rootfs).unwrap();
        assert_eq!((r.phys, r.uboot), (0x00a0_0000, Some(0x80a0_0000)));
        let k = l.region(RegionKind::Kernel).unwrap();
        assert_eq!((k.phys, k.size), (0x6_0000, 5 << 20));
        let s = l.region(RegionKind::KernelStaging).unwrap();
        assert_eq!((s.phys, s.uboot), (0x60_0000, Some(0x8060_0000)));
        let u = l.region(RegionKind::UBoot).unwrap();
        assert_eq!(u.phys, 0x700_0000);
    }

    #[test]
    fn a_kernel_rootfs_file_is_staged_to_end_on_the_rootfs_or_refused() {
        let mut b = board("gl-mt300n-v2");
        let kernel = KernelFacts {
            file_size: 2 << 20,
            run: KernelRun::Unpacked {
                load: 0x8000_0000,
                size: 5 << 20,
            },
            size_known: true,
        };
        let mut req = LayoutRequest::new(3 << 20, None, kernel);
        req.kernel_below_rootfs = Some((2 << 20) + 4);
        let l = RamLayout::plan(&b, &req).unwrap();
        let s = l.region(RegionKind::KernelStaging).unwrap();
        let r = l.region(RegionKind::Rootfs).unwrap();
        assert_eq!(s.end(), r.phys);
        assert_eq!(l.kernel_image, s.phys);
        // The kernel unpacks where the file's kernel part would lie.
        b.ram_boot.rootfs = Some(0x60_0000);
        let e = RamLayout::plan(&b, &req).unwrap_err().to_string();
        assert!(e.contains("kernel (staged) region"), "{e}");
        assert!(e.contains("overlaps the kernel region"), "{e}");
        // Below RAM.
        req.kernel.run = KernelRun::Unpacked {
            load: 0x8400_0000,
            size: 5 << 20,
        };
        b.ram_boot.rootfs = Some(0x10_0000);
        let e = RamLayout::plan(&b, &req).unwrap_err().to_string();
        assert!(e.contains("but RAM starts at"), "{e}");
    }

    #[test]
    fn a_staged_fit_keeps_room_for_its_dtb_to_grow() {
        // The FIT of the qemu-armv7l run: U-Boot used its DTB in place at
        // 0x40bb75b0 and grew it to 0x40bbc415, past the file's end.
        let b = board("qemu-armv7l");
        let (start, end) = zimage_span(0x4040_0000, 1_799_160, 4 * 1_799_160);
        let kernel = KernelFacts {
            file_size: 1_807_756,
            run: KernelRun::Unpacked {
                load: start,
                size: end - start,
            },
            size_known: false,
        };
        let mut req = LayoutRequest::new(798_720, None, kernel);
        let plain = RamLayout::plan(&b, &req).unwrap();
        let s = plain.region(RegionKind::KernelStaging).unwrap();
        assert_eq!(s.size, align_up(1_807_756, DTB_ALIGN));
        assert!(s.end() < 0x40bb_c415 - 0x40a0_0000 + s.phys, "{plain}");
        req.dtb_in_kernel = true;
        let l = RamLayout::plan(&b, &req).unwrap();
        let s = l.region(RegionKind::KernelStaging).unwrap();
        assert_eq!(s.used, 1_807_756);
        assert_eq!(s.size, align_up(1_807_756 + DTB_GROWTH, DTB_ALIGN));
        assert!(s.end() >= 0x40bb_c415 - 0x40a0_0000 + s.phys, "{l}");
        assert!(s.note.contains("for the DTB inside to grow"), "{l}");
    }

    #[test]
    fn lzma_rootfs_is_staged_above() {
        let b = board("qemu-aarch64");
        let kernel = KernelFacts {
            file_size: 5_000_000,
            run: KernelRun::InPlace { size: 5_600_000 },
            size_known: true,
        };
        let mut req = LayoutRequest::new(0x20_0000, Some(0x2000), kernel);
        req.rootfs_staged = Some(0x8_0000);
        let l = RamLayout::plan(&b, &req).unwrap();
        let s = l.region(RegionKind::RootfsStaging).unwrap();
        assert_eq!(s.phys, 0x4430_0000, "{l}");
    }
}
