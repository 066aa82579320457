//! The boot plan: the exact U-Boot commands of one RAM boot, as values.
//!
//! This exists so that `lmx tftpboot` executes, and `--dry-run` prints, the
//! same list, and tests can compare it with golden lists. Loads are
//! structured steps ([`LoadStep`]: file, U-Boot address, physical address,
//! expected size and CRC32) rather than text, because the executor must
//! check `${filesize}` and `crc32 ADDR ${filesize}` after each one before it
//! goes on; the text of every step is still available, checked against the
//! board's CBSIZE. The plan renders as a `boot.scr` text, as a script
//! uImage, and goes into the [manifest](crate::manifest).

use std::net::Ipv4Addr;

use lmx_boards::{Board, CommandProblem, Inventory, KernelFormat};
use serde::{Deserialize, Serialize};

use crate::bootargs::{BootargsError, Dialect};
use crate::layout::{RamLayout, RegionKind};
use crate::uimage::{self, UImageSpec};

/// The least memory lmx leaves Linux beyond its own image when `mem=`
/// limits it (`phram = "cmdline"`): page tables, slab, page cache for the
/// squashfs and a small userland. A judgement, not a kernel constant: a
/// busybox userland on the 6.1 test-bed kernels runs in far less, a real
/// router's services in more; below it a boot is more likely to die of
/// memory than to be useful.
pub const MIN_LINUX_FREE: u64 = 16 << 20;

/// The variable the executor stores the boot command in: it types
/// `setenv lmxboot 'bootm …'` and then `run lmxboot`, so that the boot
/// command's echo is done before U-Boot stops reading the console.
pub const BOOT_VAR: &str = "lmxboot";

/// Errors building a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A command does not fit, or a value cannot be quoted.
    #[error(transparent)]
    Bootargs(#[from] BootargsError),
    /// The board's U-Boot lacks a command the plan needs, refuses it at
    /// its prompt, or must never get it (a trap).
    #[error("board {board}: the boot plan needs `{command}`, but {problem}. {help}")]
    Command {
        /// Board name.
        board: String,
        /// The command line.
        command: String,
        /// What the board file says.
        problem: Box<CommandProblem>,
        /// What the command is for and what to do.
        help: String,
    },
    /// The layout lacks a region the plan needs.
    #[error("the layout has no {0} region")]
    MissingRegion(&'static str),
    /// The kernel's span reaches the rootfs while phram is on the command
    /// line (the kernel's memory would cover the rootfs).
    #[error("the kernel spans {kernel_start:#x}..{kernel_end:#x}, but with mem= the kernel's memory ends at the rootfs ({rootfs:#x}); move the rootfs (ram_boot.rootfs) above the kernel")]
    KernelAboveMemLimit {
        /// Kernel span start.
        kernel_start: u64,
        /// Kernel span end.
        kernel_end: u64,
        /// Rootfs start.
        rootfs: u64,
    },
    /// With phram on the command line, `mem=` (which ends at the rootfs)
    /// would leave Linux too little memory beyond its own image.
    #[error("with phram on the command line, mem= ends at the rootfs and gives Linux {mem:#x} bytes, of which its own image takes up to {kernel_end:#x}: {left:#x} bytes would be left, less than the {min:#x} a kernel needs to reach userland{ram_note}",
        min = MIN_LINUX_FREE,
        ram_note = ram.map(|r| format!(" (the board has {r:#x} bytes of RAM)")).unwrap_or_default())]
    MemStarves {
        /// The `mem=` value: RAM below the rootfs.
        mem: u64,
        /// End of the kernel's span (physical).
        kernel_end: u64,
        /// Bytes between the kernel's span and the rootfs.
        left: u64,
        /// The board's RAM size, when known.
        ram: Option<u64>,
    },
    /// A separately loaded file is missing.
    #[error("the {0} is not in the plan's inputs")]
    MissingArtifact(&'static str),
    /// Nothing on this board's U-Boot can prove a load arrived whole, and
    /// the user did not accept unverified loads.
    #[error("board {board}: lmx cannot verify loads on this U-Boot: {why}. lmx boots nothing it could not verify; {help}")]
    CannotVerify {
        /// Board name.
        board: String,
        /// Why neither `crc32` nor `bootm`'s data CRC can be used.
        why: String,
        /// What to do.
        help: String,
    },
}

/// How a plan proves that every byte the board received is the byte lmx
/// planned, chosen from what the board's U-Boot has
/// ([`Verification::choose`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// `crc32 ADDR ${filesize}` after every load (the build has `crc32`, or
    /// the board file does not say it lacks it).
    Crc32,
    /// The build has no `crc32` (GL.iNet's MT76xx U-Boots): the rootfs
    /// travels inside the kernel's legacy uImage, after the LZMA kernel,
    /// so the header's data CRC covers both, and `bootm` checks that CRC
    /// over the whole file ("Verifying Checksum ... OK") before it unpacks
    /// the kernel, which stops at the LZMA stream's own size. The file is
    /// loaded so that the rootfs lands at its planned address.
    /// `rootfs_offset` is where the rootfs starts in the file.
    BootmCovers {
        /// Offset of the rootfs in the combined file (header included).
        rootfs_offset: u64,
    },
    /// `--no-verify`: `${filesize}` only.
    SizeOnly,
}

/// Why [`Verification::choose`] could not use `bootm`'s data CRC.
fn bootm_cover_obstacle(board: &Board, separate_dtb: bool, staged_rootfs: bool) -> Option<String> {
    let inv = Inventory::of(&board.uboot);
    let hush = Dialect::of(board).hush;
    if let Err(p) = inv.check("bootm 0", hush) {
        return Some(format!("`bootm` cannot be used ({p})"));
    }
    if board.kernel.format != KernelFormat::UimageLzma {
        return Some(format!(
            "bootm's data CRC can stand in for crc32 only for an LZMA legacy uImage kernel (kernel.format = \"uimage-lzma\"; bootm unpacks it by the LZMA stream's own size and ignores the rootfs after it); this plan's kernel is {}",
            board.kernel.format.as_str()
        ));
    }
    if separate_dtb {
        return Some("the DTB would be loaded as a separate file that nothing checks; append it to the kernel (--append-dtb)".into());
    }
    if staged_rootfs {
        return Some("the rootfs would be unpacked by lzmadec after bootm's check; send it uncompressed (--no-lzma-rootfs)".into());
    }
    None
}

impl Verification {
    /// The verification `board`'s U-Boot allows: `crc32` where it exists
    /// (or may exist), else `bootm`'s data CRC over a combined
    /// kernel+rootfs uImage, else, only when the user asked for it
    /// (`no_verify`), sizes alone. `no_verify` always means sizes alone.
    /// `rootfs_offset` is where the rootfs would start in the combined
    /// file (the kernel uImage's length, padded).
    pub fn choose(
        board: &Board,
        no_verify: bool,
        separate_dtb: bool,
        staged_rootfs: bool,
        rootfs_offset: u64,
    ) -> Result<Verification, PlanError> {
        use lmx_boards::Availability;
        if no_verify {
            return Ok(Verification::SizeOnly);
        }
        if Inventory::of(&board.uboot).availability("crc32") != Availability::Absent {
            return Ok(Verification::Crc32);
        }
        match bootm_cover_obstacle(board, separate_dtb, staged_rootfs) {
            None => Ok(Verification::BootmCovers { rootfs_offset }),
            Some(why) => Err(PlanError::CannotVerify {
                board: board.name.clone(),
                why: format!("its U-Boot has no crc32 (uboot.commands.absent), and {why}"),
                help: "pass --no-verify to boot with every load checked by its size only (a corrupted byte would then reach the kernel)".into(),
            }),
        }
    }
}

/// How lmx proves one load arrived whole; printed with the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadCheck {
    /// `${filesize}`, then `crc32 ADDR ${filesize}`, before the next step.
    #[default]
    Crc32,
    /// `${filesize}` after the load; every byte by `bootm`, which checks
    /// the uImage's data CRC over the whole file before it unpacks the
    /// kernel. The executor requires bootm's `Verifying Checksum ... OK`
    /// before the kernel starts and sets `verify=y` first.
    BootmDataCrc,
    /// `${filesize}` only (`--no-verify`).
    SizeOnly,
}

/// How the boot command is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootVia {
    /// `setenv lmxboot CMD`, then `run lmxboot`: the long command's echo
    /// is checked by `setenv`, and the short `run` line is all that is
    /// typed once U-Boot stops reading.
    #[default]
    Run,
    /// The boot command typed as the last line, unchecked: the build has
    /// no usable `run` (absent, or a trap such as GL.iNet's flash helper).
    Direct,
}

/// Why the boot needs a command, for refusals.
fn command_purpose(name: &str) -> String {
    match name {
        "crc32" => "lmx verifies every load with `crc32 ADDR ${filesize}` and boots nothing it could not verify, so this U-Boot cannot boot an lmx plan as it stands (a build with crc32 can; GL's MT76xx tree compiles it with UN_NECESSITY_U_BOOT_CMD_OPEN=ON). ".into(),
        "run" => format!("The executor boots with `setenv {BOOT_VAR} …` and `run {BOOT_VAR}`; this U-Boot cannot boot that way. "),
        "lzmadec" => "The rootfs is sent LZMA-compressed (ram_boot.compressed_rootfs or --lzma-rootfs) and needs `lzmadec`; send it uncompressed instead. ".into(),
        "tftpboot" => "Every file is loaded with `tftpboot`. ".into(),
        "setenv" => "The plan sets the network addresses and the kernel command line with `setenv`. ".into(),
        _ => String::new(),
    }
}

/// A file U-Boot loads over TFTP, and how to check it arrived whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadStep {
    /// What it is: `rootfs`, `dtb`, `kernel`.
    pub artifact: String,
    /// File name on the TFTP server (relative to the artifact directory).
    pub file: String,
    /// U-Boot address it is loaded to.
    pub addr: u64,
    /// The same address, physical.
    pub phys: u64,
    /// Expected `${filesize}` (bytes).
    pub size: u64,
    /// Expected CRC32 of the loaded bytes (as U-Boot's `crc32` prints it).
    pub crc32: u32,
    /// How the load is proven whole.
    #[serde(default)]
    pub check: LoadCheck,
}

impl LoadStep {
    /// `tftpboot ADDR FILE`.
    pub fn command(&self) -> String {
        format!("tftpboot {:#x} {}", self.addr, self.file)
    }

    /// The command whose output the executor compares with
    /// [`LoadStep::crc32`]: `crc32 ADDR ${filesize}`.
    pub fn crc_command(&self) -> String {
        format!("crc32 {:#x} ${{filesize}}", self.addr)
    }

    /// `${filesize}` as U-Boot prints it (lower-case hex, no prefix).
    pub fn filesize_hex(&self) -> String {
        format!("{:x}", self.size)
    }
}

/// `lzmadec SRC DST`: U-Boot unpacks a staged LZMA file; afterwards
/// `${filesize}` is the unpacked size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnpackStep {
    /// What it is (`rootfs`).
    pub artifact: String,
    /// U-Boot address of the compressed data.
    pub src: u64,
    /// U-Boot address of the output.
    pub dst: u64,
    /// Expected unpacked size.
    pub size: u64,
    /// Expected CRC32 of the unpacked bytes.
    pub crc32: u32,
}

impl UnpackStep {
    /// `lzmadec SRC DST`.
    pub fn command(&self) -> String {
        format!("lzmadec {:#x} {:#x}", self.src, self.dst)
    }

    /// `crc32 DST ${filesize}`.
    pub fn crc_command(&self) -> String {
        format!("crc32 {:#x} ${{filesize}}", self.dst)
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Step {
    /// Set a U-Boot variable; `commands` are the lines (several for a
    /// long value).
    Setenv {
        /// Variable.
        name: String,
        /// Value.
        value: String,
        /// The `setenv` lines, each within CBSIZE.
        commands: Vec<String>,
    },
    /// Load a file, then verify it.
    Load(LoadStep),
    /// Unpack a staged file, then verify it.
    Unpack(UnpackStep),
    /// Start the kernel.
    Boot {
        /// `booti`/`bootz`/`bootm` with addresses.
        command: String,
    },
}

impl Step {
    /// The U-Boot command lines of this step (without verification).
    pub fn commands(&self) -> Vec<String> {
        match self {
            Step::Setenv { commands, .. } => commands.clone(),
            Step::Load(l) => vec![l.command()],
            Step::Unpack(u) => vec![u.command()],
            Step::Boot { command } => vec![command.clone()],
        }
    }
}

/// A file the plan loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// File name on the TFTP server.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC32.
    pub crc32: u32,
}

impl PlannedFile {
    /// Name, size and CRC32 of `bytes`.
    pub fn of(file: &str, bytes: &[u8]) -> PlannedFile {
        PlannedFile {
            file: file.to_string(),
            size: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
        }
    }
}

/// What the plan loads and boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInputs {
    /// The kernel file (Image, zImage, uImage, FIT).
    pub kernel: PlannedFile,
    /// The separately loaded DTB, if any.
    pub dtb: Option<PlannedFile>,
    /// The rootfs file as loaded (compressed when staged).
    pub rootfs: PlannedFile,
    /// Size and CRC32 of the unpacked rootfs when U-Boot unpacks it.
    pub rootfs_unpacked: Option<(u64, u32)>,
    /// The kernel command line.
    pub bootargs: String,
    /// Board address (`ipaddr`), when known.
    pub ipaddr: Option<Ipv4Addr>,
    /// Server address (`serverip`), when known.
    pub serverip: Option<Ipv4Addr>,
    /// How loads are verified. With [`Verification::BootmCovers`],
    /// `kernel` is the combined kernel+rootfs uImage.
    pub verification: Verification,
}

/// The whole RAM boot: layout, command line and U-Boot steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootPlan {
    /// Board name.
    pub board: String,
    /// The U-Boot dialect the commands were written for.
    pub dialect: Dialect,
    /// The RAM layout.
    pub layout: RamLayout,
    /// The kernel command line.
    pub bootargs: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// How the boot command is started.
    #[serde(default)]
    pub boot_via: BootVia,
}

impl BootPlan {
    /// Builds the steps for `board` over `layout`. With phram on the
    /// command line (`cmdline`), a kernel span reaching the rootfs is
    /// refused: `mem=` ends at the rootfs.
    pub fn new(
        board: &Board,
        layout: RamLayout,
        phram: lmx_boards::PhramMethod,
        inputs: &PlanInputs,
    ) -> Result<BootPlan, PlanError> {
        let dialect = Dialect::of(board);
        let region = |k: RegionKind, what: &'static str| {
            layout.region(k).ok_or(PlanError::MissingRegion(what))
        };
        let rootfs = region(RegionKind::Rootfs, "rootfs")?.clone();
        let kernel = region(RegionKind::Kernel, "kernel")?.clone();
        if phram == lmx_boards::PhramMethod::Cmdline {
            if kernel.end() > rootfs.phys {
                return Err(PlanError::KernelAboveMemLimit {
                    kernel_start: kernel.phys,
                    kernel_end: kernel.end(),
                    rootfs: rootfs.phys,
                });
            }
            // `mem=` ends at the rootfs: what lies between the kernel's own
            // span and the rootfs is all the memory Linux gets.
            let left = rootfs.phys - kernel.end();
            if left < MIN_LINUX_FREE {
                return Err(PlanError::MemStarves {
                    mem: rootfs.phys.saturating_sub(board.ram.base),
                    kernel_end: kernel.end(),
                    left,
                    ram: board.ram.size,
                });
            }
        }
        let addr = |phys: u64| {
            board
                .to_uboot_addr(phys)
                .expect("layout checked the mapping")
        };
        let mut steps = Vec::new();
        let setenv = |steps: &mut Vec<Step>, name: &str, value: String| {
            let commands = dialect.setenv_lines(name, &value)?;
            steps.push(Step::Setenv {
                name: name.to_string(),
                value,
                commands,
            });
            Ok::<_, PlanError>(())
        };
        if let Some(ip) = inputs.ipaddr {
            setenv(&mut steps, "ipaddr", ip.to_string())?;
        }
        if let Some(ip) = inputs.serverip {
            setenv(&mut steps, "serverip", ip.to_string())?;
        }
        let check = match inputs.verification {
            Verification::Crc32 => LoadCheck::Crc32,
            Verification::BootmCovers { .. } => LoadCheck::BootmDataCrc,
            Verification::SizeOnly => LoadCheck::SizeOnly,
        };
        let covered = matches!(inputs.verification, Verification::BootmCovers { .. });
        if covered && (inputs.dtb.is_some() || inputs.rootfs_unpacked.is_some()) {
            // Verification::choose refuses these; a hand-made input must not
            // slip an unchecked file past bootm's check.
            return Err(PlanError::CannotVerify {
                board: board.name.clone(),
                why: "bootm's data CRC covers only the kernel+rootfs file, and this plan would also load a separate DTB or unpack the rootfs".into(),
                help: "append the DTB to the kernel and send the rootfs uncompressed".into(),
            });
        }
        // Rootfs first (as verified on the test bed), then DTB, kernel.
        // With bootm's check, the rootfs arrives inside the kernel's file.
        match (
            layout.region(RegionKind::RootfsStaging),
            inputs.rootfs_unpacked,
        ) {
            _ if covered => {}
            (Some(stage), Some((size, crc32))) => {
                steps.push(Step::Load(LoadStep {
                    artifact: "rootfs".into(),
                    file: inputs.rootfs.file.clone(),
                    addr: addr(stage.phys),
                    phys: stage.phys,
                    size: inputs.rootfs.size,
                    crc32: inputs.rootfs.crc32,
                    check,
                }));
                steps.push(Step::Unpack(UnpackStep {
                    artifact: "rootfs".into(),
                    src: addr(stage.phys),
                    dst: addr(rootfs.phys),
                    size,
                    crc32,
                }));
            }
            _ => steps.push(Step::Load(LoadStep {
                artifact: "rootfs".into(),
                file: inputs.rootfs.file.clone(),
                addr: addr(rootfs.phys),
                phys: rootfs.phys,
                size: inputs.rootfs.size,
                crc32: inputs.rootfs.crc32,
                check,
            })),
        }
        let dtb_addr = match (&inputs.dtb, layout.region(RegionKind::Dtb)) {
            (Some(f), Some(r)) => {
                steps.push(Step::Load(LoadStep {
                    artifact: "dtb".into(),
                    file: f.file.clone(),
                    addr: addr(r.phys),
                    phys: r.phys,
                    size: f.size,
                    crc32: f.crc32,
                    check,
                }));
                Some(addr(r.phys))
            }
            (Some(_), None) => return Err(PlanError::MissingRegion("dtb")),
            _ => None,
        };
        let kphys = match layout.region(RegionKind::KernelStaging) {
            Some(s) => s.phys,
            None => layout.kernel_image,
        };
        if let Verification::BootmCovers { rootfs_offset } = inputs.verification {
            if kphys + rootfs_offset != rootfs.phys {
                return Err(PlanError::CannotVerify {
                    board: board.name.clone(),
                    why: format!(
                        "the combined kernel+rootfs file at {kphys:#x} would put the rootfs at {:#x}, not at its region {:#x}",
                        kphys + rootfs_offset,
                        rootfs.phys
                    ),
                    help: "this is a planner bug; please report it with the plan (--dry-run)".into(),
                });
            }
        }
        let kaddr = addr(kphys);
        steps.push(Step::Load(LoadStep {
            artifact: if covered { "kernel+rootfs" } else { "kernel" }.into(),
            file: inputs.kernel.file.clone(),
            addr: kaddr,
            phys: kphys,
            size: inputs.kernel.size,
            crc32: inputs.kernel.crc32,
            check,
        }));
        setenv(&mut steps, "bootargs", inputs.bootargs.clone())?;
        if covered {
            // bootm skips its data CRC check when `verify` starts with `n`
            // (gl-inet/uboot-source-for_mtk common/cmd_bootm.c l.184-185;
            // mainline's env_get_yesno): make sure it checks.
            setenv(&mut steps, "verify", "y".into())?;
        }
        let cmd = match (board.kernel.format, dtb_addr) {
            (KernelFormat::Fit, _) | (_, None) => format!("{} {kaddr:#x}", board.boot_command()),
            (_, Some(d)) => format!("{} {kaddr:#x} - {d:#x}", board.boot_command()),
        };
        steps.push(Step::Boot { command: cmd });
        // `run` where the build has a usable one; else the boot command is
        // typed as the last line.
        let boot_via = if Inventory::of(&board.uboot)
            .check(&format!("run {BOOT_VAR}"), dialect.hush)
            .is_ok()
        {
            BootVia::Run
        } else {
            BootVia::Direct
        };
        let plan = BootPlan {
            board: board.name.clone(),
            dialect,
            layout,
            bootargs: inputs.bootargs.clone(),
            steps,
            boot_via,
        };
        plan.check_commands(board)?;
        for c in plan.checked_lines() {
            dialect.check(&c)?;
        }
        Ok(plan)
    }

    /// Every line the executor types for this plan that the plan itself
    /// writes: the steps' commands and each load's `crc32` check. (The
    /// boot goes through `setenv lmxboot …` and `run lmxboot`, which the
    /// console quotes itself; [`BootPlan::sent_commands`] lists them.)
    fn checked_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.steps {
            out.extend(s.commands());
            match s {
                Step::Load(l) if l.check == LoadCheck::Crc32 => out.push(l.crc_command()),
                Step::Unpack(u) => out.push(u.crc_command()),
                _ => {}
            }
        }
        out
    }

    /// Every command the executor sends for this plan, in order: the
    /// steps, each load's `crc32` check (where the load is checked that
    /// way), and the boot: through [`BOOT_VAR`] (`setenv lmxboot CMD`,
    /// `run lmxboot`; the console quotes the `setenv` as its dialect
    /// needs) or, without a usable `run`, the command itself.
    pub fn sent_commands(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.steps {
            match s {
                Step::Boot { command } if self.boot_via == BootVia::Direct => {
                    out.push(command.clone());
                }
                Step::Boot { command } => {
                    out.push(format!("setenv {BOOT_VAR} {command}"));
                    out.push(format!("run {BOOT_VAR}"));
                }
                Step::Load(l) => {
                    out.push(l.command());
                    if l.check == LoadCheck::Crc32 {
                        out.push(l.crc_command());
                    }
                }
                Step::Unpack(u) => {
                    out.push(u.command());
                    out.push(u.crc_command());
                }
                Step::Setenv { .. } => out.extend(s.commands()),
            }
        }
        out
    }

    /// Refuses the plan when the board's U-Boot must not or cannot run
    /// one of [`BootPlan::sent_commands`]: a trap (`uboot.traps`), a
    /// command the board file lists as absent, or a locked prompt
    /// (`uboot.commands`). Nothing has been sent when this fails.
    pub fn check_commands(&self, board: &Board) -> Result<(), PlanError> {
        let inventory = Inventory::of(&board.uboot);
        for line in self.sent_commands() {
            if let Err(problem) = inventory.check(&line, self.dialect.hush) {
                let help = format!(
                    "{}{}",
                    command_purpose(problem.name()),
                    problem.help(&board.name)
                );
                return Err(PlanError::Command {
                    board: board.name.clone(),
                    command: line,
                    problem: Box::new(problem),
                    help,
                });
            }
        }
        Ok(())
    }

    /// One sentence on how this plan's loads are proven whole.
    pub fn verification_summary(&self) -> String {
        let has = |c: LoadCheck| self.loads().any(|l| l.check == c);
        if has(LoadCheck::SizeOnly) {
            "WARNING: --no-verify: each load is accepted when ${filesize} matches; its content is NOT verified. The boot command is sent last.".into()
        } else if has(LoadCheck::BootmDataCrc) {
            "This U-Boot has no crc32: each load is accepted when ${filesize} matches, and the kernel starts only after bootm has checked the data CRC over every byte (\"Verifying Checksum ... OK\"); the boot command is sent last.".into()
        } else {
            "Each load is accepted only when ${filesize} and crc32 match the values above; the boot command is sent last.".into()
        }
    }

    /// Every command line, in order (verification not included).
    pub fn commands(&self) -> Vec<String> {
        self.steps.iter().flat_map(Step::commands).collect()
    }

    /// The loads, in order.
    pub fn loads(&self) -> impl Iterator<Item = &LoadStep> {
        self.steps.iter().filter_map(|s| match s {
            Step::Load(l) => Some(l),
            _ => None,
        })
    }

    /// `boot.scr`: the commands, one per line.
    pub fn boot_script(&self) -> String {
        let mut s = self.commands().join("\n");
        s.push('\n');
        s
    }

    /// The script as a U-Boot script uImage (`source ADDR` runs it).
    pub fn script_uimage(
        &self,
        arch: uimage::Arch,
        timestamp: u32,
    ) -> Result<Vec<u8>, uimage::Error> {
        let spec = UImageSpec {
            timestamp,
            ..UImageSpec::script("lmx boot script", arch)
        };
        uimage::script_image(&spec, self.boot_script().as_bytes())
    }

    /// The plan as a person reads it: the map, the command line, the
    /// commands with what each load must check.
    pub fn render(&self) -> String {
        let mut out = format!("Board {}\n\n{}\n", self.board, self.layout);
        out.push_str(&format!(
            "bootargs ({} bytes):\n  {}\n\n",
            self.bootargs.len(),
            self.bootargs
        ));
        out.push_str(&format!(
            "U-Boot commands (CBSIZE {}{}, {} parser{}):\n",
            self.dialect.cbsize,
            if self.dialect.cbsize_known {
                ""
            } else {
                " assumed"
            },
            if self.dialect.hush { "hush" } else { "simple" },
            if self.dialect.wrap.is_some() {
                ", each typed through the prompt's command wrapper"
            } else {
                ""
            }
        ));
        for s in &self.steps {
            for c in s.commands() {
                out.push_str(&format!("  {c}\n"));
            }
            match s {
                Step::Load(l) => out.push_str(&match l.check {
                    LoadCheck::Crc32 => format!(
                        "      check: filesize = {} ({} bytes), {} = {:08x}\n",
                        l.filesize_hex(),
                        l.size,
                        l.crc_command(),
                        l.crc32
                    ),
                    LoadCheck::BootmDataCrc => format!(
                        "      check: filesize = {} ({} bytes); no crc32 on this U-Boot: every byte by bootm's uImage data CRC (\"Verifying Checksum ... OK\") before the kernel starts\n",
                        l.filesize_hex(),
                        l.size,
                    ),
                    LoadCheck::SizeOnly => format!(
                        "      check: filesize = {} ({} bytes) only; CONTENT NOT VERIFIED (--no-verify)\n",
                        l.filesize_hex(),
                        l.size,
                    ),
                }),
                Step::Unpack(u) => out.push_str(&format!(
                    "      check: filesize = {:x}, {} = {:08x}\n",
                    u.size,
                    u.crc_command(),
                    u.crc32
                )),
                Step::Boot { .. } => out.push_str(match self.boot_via {
                    BootVia::Run => "      started as `setenv lmxboot …` + `run lmxboot`\n",
                    BootVia::Direct => "      typed as the last line (this U-Boot has no usable `run`)\n",
                }),
                Step::Setenv { .. } => {}
            }
        }
        out
    }
}
