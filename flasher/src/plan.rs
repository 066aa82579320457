//! [`FlashPlan`]: from a board's flash map and an image to the ordered
//! U-Boot commands that write it safely, or a [`PlanError`] saying why not.
//!
//! All safety checks live here, so they run before a console is even
//! opened: a refused plan has sent nothing. The checks work on flash
//! *offsets* (the board file's partition positions); addresses only
//! appear when commands are rendered (memory-mapped NOR through the
//! board's address map, RAM buffers through `[ram]`).

use std::fmt::Write as _;

use lmx_boards::{
    AddressError, Board, CommandProblem, FlashKind, Inventory, Partition, PartitionRole, Region,
};
use lmx_console::{Dialect, Pacing, ShellMachine};

/// Room the plan leaves below the end of RAM for U-Boot itself when the
/// board file does not say where U-Boot lives (it relocates to the top).
pub const ASSUMED_UBOOT_TOP: u64 = 16 << 20;
/// RAM buffers start on this boundary.
pub const RAM_ALIGN: u64 = 1 << 20;

/// The bytes to write, as the host knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashImage {
    /// Name U-Boot asks the TFTP server for.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC32 of the bytes (what U-Boot's `crc32` prints).
    pub crc32: u32,
}

/// Which partition the image goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The partition with role `firmware` (for UBI boards: role `ubi`).
    Firmware,
    /// The partition with this name.
    Partition(String),
}

/// How the flash is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// The flash type's own commands: `erase`/`cp.b` (NOR), `sf` (SPI-NOR),
    /// `nand` (NAND), `ubi` (UBI).
    Native,
    /// Memory-mapped flash written with `erase`/`cp.b`, e.g. SPI-NOR on old
    /// ath79/ramips U-Boots that have no `sf` but map the chip.
    Mapped,
    /// The generic `mtd erase`/`mtd write`/`mtd read` on this MTD device
    /// (a name from `mtd list`, e.g. `nor0` or `spi-nand0`).
    Mtd {
        /// The MTD device name.
        device: String,
    },
}

/// Where the region about to be erased is saved first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// Name the upload is stored under on the host.
    pub file: String,
    /// How the bytes leave the board.
    pub via: BackupVia,
}

/// How a backup leaves the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupVia {
    /// `tftpput` to lmx's TFTP server (upload mode).
    Tftpput,
    /// `md.b` over the console, for U-Boots built without `tftpput`
    /// (slow: about four console bytes per flash byte).
    Console,
}

/// Two RAM buffers, as U-Boot addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamBuffers {
    /// Where the image is loaded over TFTP.
    pub load: u64,
    /// Where the flash is read back (and backups are staged).
    pub readback: u64,
}

/// What `lmx flash` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashRequest {
    /// The partition.
    pub target: Target,
    /// The image.
    pub image: FlashImage,
    /// How to write.
    pub method: Method,
    /// The UBI volume (UBI boards only).
    pub ubi_volume: Option<String>,
    /// RAM buffers instead of the ones derived from the board.
    pub ram: Option<RamBuffers>,
    /// Save the region first.
    pub backup: Option<Backup>,
}

impl FlashRequest {
    /// The usual request: `image` into the firmware partition, native commands.
    pub fn firmware(image: FlashImage) -> FlashRequest {
        FlashRequest {
            target: Target::Firmware,
            image,
            method: Method::Native,
            ubi_volume: None,
            ram: None,
            backup: None,
        }
    }
}

/// The stages of a plan, in order. The flash is untouched until [`Phase::Erase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Device probing (`sf probe`, `ubi part`).
    Probe,
    /// Reading the old contents and saving them on the host.
    Backup,
    /// TFTP load into RAM and its check.
    Load,
    /// RAM-only preparation (padding) and UBI volume creation.
    Prepare,
    /// Erasing the flash region.
    Erase,
    /// Writing the image.
    Write,
    /// Reading the flash back into RAM.
    ReadBack,
    /// Comparing the flash with the host's CRC32.
    Verify,
}

impl Phase {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Probe => "probe",
            Phase::Backup => "backup",
            Phase::Load => "load",
            Phase::Prepare => "prepare",
            Phase::Erase => "erase",
            Phase::Write => "write",
            Phase::ReadBack => "read back",
            Phase::Verify => "verify",
        }
    }

    /// Whether a failure in this phase may have changed the flash.
    pub fn touches_flash(self) -> bool {
        self >= Phase::Erase
    }

    /// Whether the phase runs when the flash is only compared with the
    /// image (probe, read back, verify): no load, no backup, no change.
    pub fn verifies_only(self) -> bool {
        matches!(self, Phase::Probe | Phase::ReadBack | Phase::Verify)
    }
}

/// What a step's output must show for the run to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Status 0 and no failure text.
    Succeeds,
    /// A TFTP load: success, then `${filesize}` equals this.
    Loaded {
        /// Expected size.
        size: u64,
    },
    /// `crc32` prints this value.
    Crc32 {
        /// Expected CRC32.
        crc: u32,
    },
    /// `crc32` of the region being backed up: remembered, compared with the upload.
    RecordCrc,
    /// `tftpput`: the host received `size` bytes as `file`, whose CRC32
    /// equals the recorded one.
    Upload {
        /// Host-side name.
        file: String,
        /// Expected size.
        size: u64,
    },
    /// `md.b`: the hex dump is parsed, must cover `size` bytes and match
    /// the recorded CRC32, and is saved as `file`.
    Dump {
        /// Host-side name.
        file: String,
        /// Start address of the dump.
        addr: u64,
        /// Expected size.
        size: u64,
    },
    /// `ubi check VOL`: status 0 means the volume exists; otherwise the
    /// command here is run (it must succeed).
    CreateIfMissing {
        /// `ubi create ...`.
        create: String,
    },
    /// NAND erase/write: success; `Skipping bad block` lines are reported.
    BadBlocks,
}

/// One U-Boot command of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Stage.
    pub phase: Phase,
    /// The command line.
    pub command: String,
    /// What its output must show.
    pub check: Check,
    /// One line for people: what the step does.
    pub what: String,
}

/// A checked, ordered flash write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashPlan {
    /// Board name.
    pub board: String,
    /// Flash type.
    pub kind: FlashKind,
    /// How it is written.
    pub method: Method,
    /// The target partition.
    pub partition: Partition,
    /// Flash offsets the image bytes go to.
    pub write: Region,
    /// Flash offsets erased (the write rounded to erase blocks); `None` for
    /// UBI, where `ubi write` replaces the volume.
    pub erase: Option<Region>,
    /// Bytes handed to the write command (the image, padded to the NAND
    /// page where needed).
    pub write_len: u64,
    /// The image.
    pub image: FlashImage,
    /// The UBI volume.
    pub volume: Option<String>,
    /// RAM buffers.
    pub ram: RamBuffers,
    /// U-Boot address of the write region on memory-mapped flash.
    pub mapped_addr: Option<u64>,
    /// The backup, when asked for.
    pub backup: Option<Backup>,
    /// Names of the board's protected partitions (never addressed).
    pub protected: Vec<String>,
    /// The commands in order.
    pub steps: Vec<Step>,
}

/// Why a plan was refused. Nothing has been sent to the board.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    /// The board file has no partitions.
    #[error("board {board} has no flash map: [flash] lists no partitions, so lmx cannot tell the boot loader from the firmware")]
    #[diagnostic(
        code(lmx_flash::no_flash_map),
        help("add [[flash.partitions]] with offset, size, role and protected = true for the boot loader, environment and calibration data (read /proc/mtd or the vendor's device tree; docs/boards.md)")
    )]
    NoFlashMap {
        /// Board.
        board: String,
    },
    /// No partition has the firmware role.
    #[error("board {board} has no partition with role {role}; partitions: {known}")]
    #[diagnostic(
        code(lmx_flash::no_firmware_partition),
        help(
            "name the partition with --partition, or give one role = \"{role}\" in the board file"
        )
    )]
    NoFirmwarePartition {
        /// Board.
        board: String,
        /// The role looked for.
        role: String,
        /// The partitions there are.
        known: String,
    },
    /// `--partition NAME` names nothing.
    #[error("board {board} has no partition {name:?}; partitions: {known}")]
    #[diagnostic(
        code(lmx_flash::unknown_partition),
        help("pick one of the listed names")
    )]
    UnknownPartition {
        /// Board.
        board: String,
        /// Asked for.
        name: String,
        /// The partitions there are.
        known: String,
    },
    /// The target itself is protected.
    #[error("partition {name} is protected ({role}): lmx never writes it")]
    #[diagnostic(
        code(lmx_flash::protected),
        help("protected partitions hold the boot loader, its environment or calibration data; writing them is how boards get bricked. Pick the firmware partition")
    )]
    Protected {
        /// Partition.
        name: String,
        /// Its role.
        role: String,
    },
    /// The erase or write would touch a protected partition or the environment.
    #[error("the {what} {region} overlaps protected {other} {other_region}")]
    #[diagnostic(
        code(lmx_flash::overlaps_protected),
        help("the board file's partition map is inconsistent or the image is placed wrongly; fix the partition offsets (lmx boards check)")
    )]
    OverlapsProtected {
        /// `erase region` or `write`.
        what: String,
        /// Its span.
        region: Span,
        /// The protected thing.
        other: String,
        /// Its span.
        other_region: Span,
    },
    /// The image does not fit the partition.
    #[error("{file} is {size:#x} bytes ({size} bytes) but partition {partition} holds {capacity:#x} bytes{extra}")]
    #[diagnostic(
        code(lmx_flash::too_large),
        help("make the image smaller (a smaller rootfs, xz compression) or pick a bigger partition; nothing was sent to the board")
    )]
    TooLarge {
        /// Image name.
        file: String,
        /// Its size.
        size: u64,
        /// Partition.
        partition: String,
        /// Bytes available.
        capacity: u64,
        /// Why the capacity is what it is.
        extra: String,
    },
    /// The image is empty.
    #[error("{file} is empty: nothing to flash")]
    #[diagnostic(code(lmx_flash::empty))]
    Empty {
        /// Image name.
        file: String,
    },
    /// Past the end of the device.
    #[error("the {what} {region} runs past the end of the {size:#x}-byte flash device")]
    #[diagnostic(
        code(lmx_flash::past_device),
        help("fix flash.size or the partition map in the board file")
    )]
    PastDevice {
        /// What.
        what: String,
        /// Its span.
        region: Span,
        /// Device size.
        size: u64,
    },
    /// Outside the area U-Boot can address.
    #[error("the {what} {region} is not inside the area U-Boot can address ({usable})")]
    #[diagnostic(
        code(lmx_flash::outside_usable),
        help("U-Boot sees only flash.usable of this flash; pick a partition inside it or a smaller image")
    )]
    OutsideUsable {
        /// What.
        what: String,
        /// Its span.
        region: Span,
        /// The usable regions.
        usable: String,
    },
    /// Not aligned to the erase unit or page.
    #[error("{what} {value:#x} is not a multiple of the {unit_name} {unit:#x}")]
    #[diagnostic(
        code(lmx_flash::misaligned),
        help("erasing a partial block would wipe bytes outside the partition; fix the partition offset in the board file")
    )]
    Misaligned {
        /// What is misaligned.
        what: String,
        /// Its value.
        value: u64,
        /// The unit name (`erase block`, `page`).
        unit_name: String,
        /// The unit.
        unit: u64,
    },
    /// A geometry fact the write needs is unknown.
    #[error("board {board}: {field} is unknown, and a {kind} write needs it")]
    #[diagnostic(
        code(lmx_flash::unknown_geometry),
        help("add {field} to the board file (from the boot log, /proc/mtd or the chip's datasheet); lmx never guesses it")
    )]
    UnknownGeometry {
        /// Board.
        board: String,
        /// The field, e.g. `flash.erase_block`.
        field: String,
        /// Flash type.
        kind: String,
    },
    /// Raw writes into UBI-managed flash.
    #[error("partition {partition} {why}: raw {how} writes there would destroy UBI's erase counters and volume table")]
    #[diagnostic(
        code(lmx_flash::ubi_managed),
        help("write a UBI volume instead (--volume NAME on a UBI board), or pick a partition outside the UBI area")
    )]
    UbiManaged {
        /// Partition.
        partition: String,
        /// `is UBI-managed` or `overlaps UBI partition X`.
        why: String,
        /// `nand` or `mtd`.
        how: String,
    },
    /// A UBI write without a volume.
    #[error("a UBI write needs a volume name (partition {partition})")]
    #[diagnostic(
        code(lmx_flash::no_volume),
        help("give --volume NAME (ubi info l on the board lists them)")
    )]
    NoVolume {
        /// Partition.
        partition: String,
    },
    /// A UBI write to a non-UBI partition.
    #[error("partition {partition} has role {role}, not ubi: `ubi part` would fail or attach the wrong area")]
    #[diagnostic(
        code(lmx_flash::not_ubi),
        help("pick the partition with role = \"ubi\"")
    )]
    NotUbi {
        /// Partition.
        partition: String,
        /// Its role.
        role: String,
    },
    /// lmx cannot write this flash type (yet).
    #[error("lmx flash does not write {kind} flash{why}")]
    #[diagnostic(code(lmx_flash::unsupported), help("{help}"))]
    Unsupported {
        /// Flash type.
        kind: String,
        /// Detail.
        why: String,
        /// What to do.
        help: String,
    },
    /// An address the board's map does not cover.
    #[error("{what}: {source}")]
    #[diagnostic(
        code(lmx_flash::address),
        help("check [[address_map.windows]], flash.mapped_base and [ram] in the board file")
    )]
    Address {
        /// What was converted.
        what: String,
        /// Why it failed.
        source: AddressError,
    },
    /// The RAM buffers do not fit.
    #[error("RAM: {why}")]
    #[diagnostic(code(lmx_flash::ram), help("{help}"))]
    Ram {
        /// What is wrong.
        why: String,
        /// What to do.
        help: String,
    },
    /// A command does not fit the board's line buffer (or is not typeable).
    #[error("command {command:?} cannot be sent: {reason}")]
    #[diagnostic(
        code(lmx_flash::command),
        help("shorten the file or volume name, or check uboot.cbsize in the board file")
    )]
    Command {
        /// The command.
        command: String,
        /// Why.
        reason: String,
    },
    /// The board's U-Boot lacks a command the plan needs, or its prompt
    /// refuses it (`uboot.commands`).
    #[error("board {board}: the flash plan needs `{command}`, but {problem}")]
    #[diagnostic(code(lmx_flash::missing_command), help("{help}"))]
    MissingCommand {
        /// Board.
        board: String,
        /// The command line.
        command: String,
        /// What the board file says.
        problem: String,
        /// What the command is for and what to do.
        help: String,
    },
    /// A command of the plan is a trap on this board (`uboot.traps`).
    #[error(
        "board {board}: the flash plan would send `{command}`, a trap on this U-Boot: {reason}"
    )]
    #[diagnostic(code(lmx_flash::trap), help("{help}"))]
    Trap {
        /// Board.
        board: String,
        /// The command line.
        command: String,
        /// The board file's reason.
        reason: String,
        /// What to do.
        help: String,
    },
    /// A backup that cannot be made for this plan.
    #[error("--backup: {why}")]
    #[diagnostic(code(lmx_flash::backup), help("{help}"))]
    Backup {
        /// Why.
        why: String,
        /// What to do.
        help: String,
    },
}

/// A flash span for messages: `0x400000..0x1400000 (0x1000000 bytes)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Region);

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:#x}..{:#x} ({:#x} bytes)",
            self.0.base,
            self.0.end(),
            self.0.size
        )
    }
}

fn region(base: u64, size: u64) -> Region {
    Region { base, size }
}

fn align_up(v: u64, unit: u64) -> u64 {
    v.div_ceil(unit) * unit
}

fn role_name(p: &Partition) -> String {
    match p.role {
        Some(PartitionRole::Bootloader) => "boot loader",
        Some(PartitionRole::Env) => "U-Boot environment",
        Some(PartitionRole::Calibration) => "calibration data",
        Some(PartitionRole::Firmware) => "firmware",
        Some(PartitionRole::Kernel) => "kernel",
        Some(PartitionRole::Ubi) => "ubi",
        Some(PartitionRole::Other) => "other",
        None => "no role",
    }
    .to_string()
}

fn known_partitions(board: &Board) -> String {
    board
        .flash
        .partitions
        .iter()
        .map(|p| format!("{} ({})", p.name, role_name(p)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

impl FlashPlan {
    /// Plans `req` on `board`, or refuses it. Nothing here talks to a board.
    pub fn build(board: &Board, req: &FlashRequest) -> Result<FlashPlan, PlanError> {
        let flash = &board.flash;
        let kind = flash.kind;
        if kind == FlashKind::Emmc {
            return Err(PlanError::Unsupported {
                kind: "eMMC".into(),
                why: " (a block device with a partition table, not an MTD map)".into(),
                help: "write it from U-Boot with `mmc write`, or from Linux with dd; lmx plans MTD flash only".into(),
            });
        }
        if flash.partitions.is_empty() {
            return Err(PlanError::NoFlashMap {
                board: board.name.clone(),
            });
        }
        if req.image.size == 0 {
            return Err(PlanError::Empty {
                file: req.image.file.clone(),
            });
        }
        let ubi = kind == FlashKind::Ubi && !matches!(req.method, Method::Mtd { .. });
        let partition = match &req.target {
            Target::Partition(name) => {
                flash
                    .partition(name)
                    .cloned()
                    .ok_or_else(|| PlanError::UnknownPartition {
                        board: board.name.clone(),
                        name: name.clone(),
                        known: known_partitions(board),
                    })?
            }
            Target::Firmware => {
                let role = if ubi {
                    PartitionRole::Ubi
                } else {
                    PartitionRole::Firmware
                };
                flash
                    .partitions
                    .iter()
                    .find(|p| p.role == Some(role))
                    .cloned()
                    .ok_or_else(|| PlanError::NoFirmwarePartition {
                        board: board.name.clone(),
                        role: if ubi { "ubi" } else { "firmware" }.into(),
                        known: known_partitions(board),
                    })?
            }
        };
        if partition.protected {
            return Err(PlanError::Protected {
                name: partition.name.clone(),
                role: role_name(&partition),
            });
        }
        if ubi {
            return plan_ubi(board, req, partition);
        }
        plan_raw(board, req, partition)
    }

    /// The command lines in order; a volume creation is listed after its check.
    pub fn commands(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.steps {
            out.push(s.command.clone());
            if let Check::CreateIfMissing { create } = &s.check {
                out.push(create.clone());
            }
        }
        out
    }

    /// The U-Boot commands the plan uses (`cp` for `cp.b`), in first-use
    /// order, for a `help` probe before anything runs.
    pub fn required_commands(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.commands() {
            let word = c.split_whitespace().next().unwrap_or_default();
            let name = word.split('.').next().unwrap_or(word).to_string();
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// The steps of one phase.
    pub fn phase(&self, phase: Phase) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.phase == phase)
    }

    /// The steps of a run that only compares the flash with the image
    /// (`lmx flash --verify-only`): those whose phase
    /// [verifies only](Phase::verifies_only), in order.
    pub fn verification_steps(&self) -> Vec<Step> {
        self.steps
            .iter()
            .filter(|s| s.phase.verifies_only())
            .cloned()
            .collect()
    }

    /// What will be erased, in a sentence (for the confirmation prompt).
    pub fn erase_summary(&self) -> String {
        match (&self.erase, &self.volume) {
            (Some(e), _) => format!(
                "flash {} in partition {} (its old contents there are lost)",
                Span(*e),
                self.partition.name
            ),
            (None, Some(v)) => format!(
                "UBI volume {v} in partition {} is replaced (created if missing); other volumes stay",
                self.partition.name
            ),
            (None, None) => "nothing".into(),
        }
    }

    /// The plan as a person reads it (`--dry-run`).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Flash plan for board {}", self.board);
        let _ = writeln!(
            s,
            "  flash:      {} via {}",
            self.kind.as_str(),
            match &self.method {
                Method::Native => "its own commands".to_string(),
                Method::Mapped => "memory-mapped erase/cp.b".to_string(),
                Method::Mtd { device } => format!("mtd on {device}"),
            }
        );
        let _ = writeln!(
            s,
            "  partition:  {} at {}",
            self.partition.name,
            Span(self.partition.region())
        );
        if let Some(v) = &self.volume {
            let _ = writeln!(s, "  volume:     {v}");
        }
        let _ = writeln!(
            s,
            "  image:      {} ({:#x} bytes, crc32 {:08x})",
            self.image.file, self.image.size, self.image.crc32
        );
        let _ = writeln!(s, "  writes:     {}", Span(self.write));
        let _ = writeln!(s, "  erases:     {}", self.erase_summary());
        if let Some(a) = self.mapped_addr {
            let _ = writeln!(s, "  mapped at:  {a:#x} (U-Boot address)");
        }
        let _ = writeln!(
            s,
            "  RAM:        load {:#x}, read-back {:#x}",
            self.ram.load, self.ram.readback
        );
        if let Some(b) = &self.backup {
            let _ = writeln!(
                s,
                "  backup:     {} via {}",
                b.file,
                match b.via {
                    BackupVia::Tftpput => "tftpput",
                    BackupVia::Console => "md.b over the console",
                }
            );
        }
        let _ = writeln!(s, "\nU-Boot commands, in order:");
        for st in &self.steps {
            let _ = writeln!(s, "  [{:<9}] {}", st.phase.as_str(), st.command);
            if let Check::CreateIfMissing { create } = &st.check {
                let _ = writeln!(
                    s,
                    "  [{:<9}] {create}   (only if the check fails)",
                    st.phase.as_str()
                );
            }
            let expect = match &st.check {
                Check::Succeeds | Check::CreateIfMissing { .. } => String::new(),
                Check::Loaded { size } => format!("${{filesize}} = {size:x}"),
                Check::Crc32 { crc } => format!("crc32 = {crc:08x}"),
                Check::RecordCrc => "crc32 recorded for the backup".into(),
                Check::Upload { file, size } => {
                    format!("host receives {file}, {size:#x} bytes, same crc32")
                }
                Check::Dump { file, size, .. } => {
                    format!("dump parsed into {file}, {size:#x} bytes, same crc32")
                }
                Check::BadBlocks => "success; skipped bad blocks are reported".into(),
            };
            if expect.is_empty() {
                let _ = writeln!(s, "               ({})", st.what);
            } else {
                let _ = writeln!(s, "               ({}; expects {expect})", st.what);
            }
        }
        let _ = writeln!(
            s,
            "\nNothing is erased before the RAM copy matched the host's size and crc32."
        );
        s
    }
}

/// Partitions and the environment lmx must never touch, as (name, region).
fn keep_out(board: &Board) -> Vec<(String, Region)> {
    let flash = &board.flash;
    let mut out: Vec<(String, Region)> = flash
        .protected()
        .map(|p| {
            (
                format!("partition {} ({})", p.name, role_name(p)),
                p.region(),
            )
        })
        .collect();
    if let Some(env) = &flash.env {
        let size = env.size.or(flash.erase_block).unwrap_or(1);
        out.push(("U-Boot environment".into(), region(env.offset, size)));
        if let Some(r) = env.redundant_offset {
            out.push(("redundant U-Boot environment".into(), region(r, size)));
        }
    }
    out
}

fn check_span(
    board: &Board,
    what: &str,
    r: Region,
    partition: &Partition,
) -> Result<(), PlanError> {
    let flash = &board.flash;
    for (name, other) in keep_out(board) {
        if r.overlaps(&other) {
            return Err(PlanError::OverlapsProtected {
                what: what.into(),
                region: Span(r),
                other: name,
                other_region: Span(other),
            });
        }
    }
    if let Some(size) = flash.size {
        if r.end() > size {
            return Err(PlanError::PastDevice {
                what: what.into(),
                region: Span(r),
                size,
            });
        }
    }
    if !flash.usable.is_empty() && !flash.usable.iter().any(|u| u.contains_region(&r)) {
        return Err(PlanError::OutsideUsable {
            what: what.into(),
            region: Span(r),
            usable: flash
                .usable
                .iter()
                .map(|u| Span(*u).to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if !partition.region().contains_region(&r) {
        return Err(PlanError::TooLarge {
            file: what.into(),
            size: r.size,
            partition: partition.name.clone(),
            capacity: partition.size,
            extra: format!(
                " ({} would end at {:#x}, the partition at {:#x})",
                what,
                r.end(),
                partition.region().end()
            ),
        });
    }
    Ok(())
}

fn geometry(board: &Board, field: &str) -> PlanError {
    PlanError::UnknownGeometry {
        board: board.name.clone(),
        field: field.into(),
        kind: board.flash.kind.as_str().into(),
    }
}

/// NOR, SPI-NOR, NAND and mtd writes: an erased, written, read-back span.
fn plan_raw(
    board: &Board,
    req: &FlashRequest,
    partition: Partition,
) -> Result<FlashPlan, PlanError> {
    let flash = &board.flash;
    let kind = flash.kind;
    let mtd = matches!(req.method, Method::Mtd { .. });
    // Raw NAND or mtd writes must stay out of UBI's area.
    let raw_nand = matches!(kind, FlashKind::Nand | FlashKind::Ubi);
    if raw_nand || mtd {
        let how = if mtd { "mtd" } else { "nand" };
        if partition.role == Some(PartitionRole::Ubi) {
            return Err(PlanError::UbiManaged {
                partition: partition.name.clone(),
                why: "is UBI-managed (role ubi)".into(),
                how: how.into(),
            });
        }
        if let Some(u) = flash.partitions.iter().find(|p| {
            p.role == Some(PartitionRole::Ubi) && p.region().overlaps(&partition.region())
        }) {
            return Err(PlanError::UbiManaged {
                partition: partition.name.clone(),
                why: format!("overlaps UBI partition {}", u.name),
                how: how.into(),
            });
        }
    }
    let erase_block = flash
        .erase_block
        .filter(|e| *e > 0)
        .ok_or_else(|| geometry(board, "flash.erase_block"))?;
    // U-Boot's own sector may be larger than the true block (then it erases
    // more than asked) or smaller (QEMU: one 128 KiB sector erase wipes the
    // 256 KiB block): align to the larger so every erase stays inside.
    let unit = erase_block.max(flash.uboot_sector.unwrap_or(0));
    let page = if raw_nand {
        Some(
            flash
                .page_size
                .filter(|p| *p > 0)
                .ok_or_else(|| geometry(board, "flash.page_size"))?,
        )
    } else {
        None
    };
    if partition.offset % unit != 0 {
        return Err(PlanError::Misaligned {
            what: format!("partition {} offset", partition.name),
            value: partition.offset,
            unit_name: "erase unit".into(),
            unit,
        });
    }
    let size = req.image.size;
    if size > partition.size {
        return Err(PlanError::TooLarge {
            file: req.image.file.clone(),
            size,
            partition: partition.name.clone(),
            capacity: partition.size,
            extra: String::new(),
        });
    }
    let write_len = match page {
        Some(p) => align_up(size, p),
        None => size,
    };
    let write = region(partition.offset, size);
    // NAND skips bad blocks by writing the data to the next good one, so the
    // whole partition is erased: every replacement block is then blank.
    let erase = if raw_nand && !mtd {
        if partition.size % unit != 0 {
            return Err(PlanError::Misaligned {
                what: format!("partition {} size", partition.name),
                value: partition.size,
                unit_name: "erase block".into(),
                unit,
            });
        }
        partition.region()
    } else {
        region(partition.offset, align_up(write_len, unit))
    };
    check_span(board, "erase region", erase, &partition)?;

    // Which commands: native (per type), mapped, or mtd.
    let mapped = match (&req.method, kind) {
        (Method::Mapped, FlashKind::Nand | FlashKind::Ubi) => {
            return Err(PlanError::Unsupported {
                kind: kind.as_str().into(),
                why: " through memory-mapped erase/cp.b (NAND is never mapped)".into(),
                help: "use the native method".into(),
            })
        }
        (Method::Mapped, _) | (Method::Native, FlashKind::Nor) => true,
        _ => false,
    };
    let mapped_addr = if mapped {
        Some(
            board
                .flash_uboot_addr(partition.offset)
                .ok_or_else(|| PlanError::Unsupported {
                    kind: kind.as_str().into(),
                    why: " through erase/cp.b: flash.mapped_base is unknown".into(),
                    help: "add flash.mapped_base (and mapped_window on MIPS) to the board file, or use the sf/mtd method".into(),
                })?
                .map_err(|source| PlanError::Address {
                    what: "flash.mapped_base".into(),
                    source,
                })?,
        )
    } else {
        None
    };
    // The read-back buffer also stages a backup of the whole erase region.
    let rb_len = if req.backup.is_some() {
        erase.size.max(write_len)
    } else {
        write_len
    };
    let ram = ram_buffers(board, req.ram, write_len, rb_len)?;
    let crc = req.image.crc32;
    let mut steps = Vec::new();
    let st = |phase, command: String, check, what: &str| Step {
        phase,
        command,
        check,
        what: what.to_string(),
    };
    let (rb, ld) = (ram.readback, ram.load);
    let (off, el) = (erase.base, erase.size);

    // Probe.
    match (&req.method, kind, mapped) {
        (_, _, true) => {}
        (Method::Mtd { .. }, _, _) => {}
        (_, FlashKind::SpiNor, _) => steps.push(st(
            Phase::Probe,
            "sf probe 0".into(),
            Check::Succeeds,
            "detect the SPI flash chip",
        )),
        _ => {}
    }

    // Backup of the erase region.
    if let Some(b) = &req.backup {
        let src = if let Some(a) = mapped_addr {
            a
        } else {
            let read = match (&req.method, kind) {
                (Method::Mtd { device }, _) => {
                    format!("mtd read {device} {} {} {}", hex(rb), hex(off), hex(el))
                }
                (_, FlashKind::SpiNor) => format!("sf read {} {} {}", hex(rb), hex(off), hex(el)),
                _ => format!("nand read {} {} {}", hex(rb), hex(off), hex(el)),
            };
            steps.push(st(
                Phase::Backup,
                read,
                Check::BadBlocks,
                "read the region about to be erased into RAM",
            ));
            rb
        };
        steps.push(st(
            Phase::Backup,
            format!("crc32 {} {}", hex(src), hex(el)),
            Check::RecordCrc,
            "CRC32 of the old contents",
        ));
        steps.push(backup_step(b, src, el));
    }

    // Load and check in RAM.
    push_load(&mut steps, req, ld);
    if write_len > size {
        steps.push(st(
            Phase::Prepare,
            format!("mw.b {} 0xff {}", hex(ld + size), hex(write_len - size)),
            Check::Succeeds,
            "pad the RAM copy to the page with 0xff (the erased state)",
        ));
    }

    // Erase, write, read back, verify.
    if let Some(a) = mapped_addr {
        steps.push(st(
            Phase::Erase,
            format!("erase {} +{}", hex(a), hex(el)),
            Check::Succeeds,
            "erase the blocks the image covers",
        ));
        steps.push(st(
            Phase::Write,
            format!("cp.b {} {} {}", hex(ld), hex(a), hex(size)),
            Check::Succeeds,
            "program the flash from RAM",
        ));
        steps.push(st(
            Phase::Verify,
            format!("crc32 {} {}", hex(a), hex(size)),
            Check::Crc32 { crc },
            "CRC32 of the flash itself (memory-mapped)",
        ));
    } else {
        let (erase_cmd, write_cmd, read_cmd, check) = match (&req.method, kind) {
            (Method::Mtd { device }, _) => (
                format!("mtd erase {device} {} {}", hex(off), hex(el)),
                format!(
                    "mtd write {device} {} {} {}",
                    hex(ld),
                    hex(off),
                    hex(write_len)
                ),
                format!(
                    "mtd read {device} {} {} {}",
                    hex(rb),
                    hex(off),
                    hex(write_len)
                ),
                Check::Succeeds,
            ),
            (_, FlashKind::SpiNor) => (
                format!("sf erase {} {}", hex(off), hex(el)),
                format!("sf write {} {} {}", hex(ld), hex(off), hex(write_len)),
                format!("sf read {} {} {}", hex(rb), hex(off), hex(write_len)),
                Check::Succeeds,
            ),
            _ => (
                format!("nand erase {} {}", hex(off), hex(el)),
                format!("nand write {} {} {}", hex(ld), hex(off), hex(write_len)),
                format!("nand read {} {} {}", hex(rb), hex(off), hex(write_len)),
                Check::BadBlocks,
            ),
        };
        steps.push(st(
            Phase::Erase,
            erase_cmd,
            check.clone(),
            "erase the blocks the image covers",
        ));
        steps.push(st(
            Phase::Write,
            write_cmd,
            check.clone(),
            "program the flash from RAM",
        ));
        steps.push(st(
            Phase::ReadBack,
            read_cmd,
            check,
            "read the flash back into the second RAM buffer",
        ));
        steps.push(st(
            Phase::Verify,
            format!("crc32 {} {}", hex(rb), hex(size)),
            Check::Crc32 { crc },
            "CRC32 of what the flash returned",
        ));
    }
    finish(
        board,
        FlashPlan {
            board: board.name.clone(),
            kind,
            method: if mapped && req.method == Method::Native && kind != FlashKind::Nor {
                Method::Mapped
            } else {
                req.method.clone()
            },
            partition,
            write,
            erase: Some(erase),
            write_len,
            image: req.image.clone(),
            volume: None,
            ram,
            mapped_addr,
            backup: req.backup.clone(),
            protected: protected_names(board),
            steps,
        },
    )
}

fn protected_names(board: &Board) -> Vec<String> {
    board.flash.protected().map(|p| p.name.clone()).collect()
}

fn backup_step(b: &Backup, src: u64, len: u64) -> Step {
    match b.via {
        BackupVia::Tftpput => Step {
            phase: Phase::Backup,
            command: format!("tftpput {} {} {}", hex(src), hex(len), b.file),
            check: Check::Upload {
                file: b.file.clone(),
                size: len,
            },
            what: "upload the old contents to lmx's TFTP server".into(),
        },
        BackupVia::Console => Step {
            phase: Phase::Backup,
            command: format!("md.b {} {}", hex(src), hex(len)),
            check: Check::Dump {
                file: b.file.clone(),
                addr: src,
                size: len,
            },
            what: "dump the old contents over the console".into(),
        },
    }
}

fn push_load(steps: &mut Vec<Step>, req: &FlashRequest, at: u64) {
    steps.push(Step {
        phase: Phase::Load,
        command: format!("tftpboot {} {}", hex(at), req.image.file),
        check: Check::Loaded {
            size: req.image.size,
        },
        what: "load the image into RAM over TFTP".into(),
    });
    steps.push(Step {
        phase: Phase::Load,
        command: format!("crc32 {} {}", hex(at), hex(req.image.size)),
        check: Check::Crc32 {
            crc: req.image.crc32,
        },
        what: "check the RAM copy before anything is erased".into(),
    });
}

/// UBI: attach the partition, make sure the volume exists, write it.
fn plan_ubi(
    board: &Board,
    req: &FlashRequest,
    partition: Partition,
) -> Result<FlashPlan, PlanError> {
    if partition.role != Some(PartitionRole::Ubi) {
        return Err(PlanError::NotUbi {
            partition: partition.name.clone(),
            role: role_name(&partition),
        });
    }
    let volume = req.ubi_volume.clone().ok_or_else(|| PlanError::NoVolume {
        partition: partition.name.clone(),
    })?;
    if req.backup.is_some() {
        return Err(PlanError::Backup {
            why: "backing up a UBI volume is not supported (its size is only known on the board)".into(),
            help: "read it from Linux (cat /dev/ubi0_N) or back up the whole partition with --method mtd".into(),
        });
    }
    let size = req.image.size;
    // UBI keeps two blocks for its tables and a few for bad-block handling;
    // the exact overhead needs the PEB count, so only the hard limit is checked.
    if size > partition.size {
        return Err(PlanError::TooLarge {
            file: req.image.file.clone(),
            size,
            partition: partition.name.clone(),
            capacity: partition.size,
            extra: " (UBI keeps part of that for its own tables)".into(),
        });
    }
    check_span(board, "UBI partition", partition.region(), &partition)?;
    let ram = ram_buffers(board, req.ram, size, size)?;
    let crc = req.image.crc32;
    let mut steps = vec![Step {
        phase: Phase::Probe,
        command: format!("ubi part {}", partition.name),
        check: Check::Succeeds,
        what: "attach the UBI partition".into(),
    }];
    push_load(&mut steps, req, ram.load);
    steps.push(Step {
        phase: Phase::Prepare,
        command: format!("ubi check {volume}"),
        check: Check::CreateIfMissing {
            create: format!("ubi create {volume} {} dynamic", hex(size)),
        },
        what: "create the volume if it is missing".into(),
    });
    steps.push(Step {
        phase: Phase::Write,
        command: format!("ubi write {} {volume} {}", hex(ram.load), hex(size)),
        check: Check::Succeeds,
        what: "replace the volume's contents".into(),
    });
    steps.push(Step {
        phase: Phase::ReadBack,
        command: format!("ubi read {} {volume} {}", hex(ram.readback), hex(size)),
        check: Check::Succeeds,
        what: "read the volume back into the second RAM buffer".into(),
    });
    steps.push(Step {
        phase: Phase::Verify,
        command: format!("crc32 {} {}", hex(ram.readback), hex(size)),
        check: Check::Crc32 { crc },
        what: "CRC32 of what the volume returned".into(),
    });
    finish(
        board,
        FlashPlan {
            board: board.name.clone(),
            kind: board.flash.kind,
            method: req.method.clone(),
            write: partition.region(),
            partition,
            erase: None,
            write_len: size,
            image: req.image.clone(),
            volume: Some(volume),
            ram,
            mapped_addr: None,
            backup: None,
            protected: protected_names(board),
            steps,
        },
    )
}

/// Why a flash plan needs a command, and what else could do, for refusals.
fn command_purpose(name: &str) -> &'static str {
    match name {
        "sf" => "Without `sf`, write SPI-NOR flash through its memory mapping: --method mapped (erase/cp.b). ",
        "crc32" => "lmx checks the RAM copy before anything is erased, and the flash after the write, with `crc32`; it does not flash what it cannot verify. Flash from Linux instead (sysupgrade, mtd write). ",
        "tftpput" => "Back up over the console instead (md.b), which needs no tftpput. ",
        "cp" => "The memory-mapped write copies RAM to flash with `cp.b`. ",
        "erase" => "The memory-mapped write erases with `erase ADDR +LEN`. ",
        "ubi" | "mtd" | "nand" => "This U-Boot cannot write that flash with these commands; flash from Linux instead. ",
        "md" => "The console backup dumps the flash with `md.b`. ",
        "mw" => "NAND writes pad the RAM copy to the page with `mw.b`. ",
        _ => "",
    }
}

/// Every command must be one the board's U-Boot has and runs at its
/// prompt, none may be a trap, and each must fit the board's line buffer
/// with lmx's end marker.
fn finish(board: &Board, plan: FlashPlan) -> Result<FlashPlan, PlanError> {
    let dialect = Dialect::from_board(board).map_err(|e| PlanError::Command {
        command: String::new(),
        reason: e.to_string(),
    })?;
    let inventory = Inventory::of(&board.uboot);
    for c in plan.commands() {
        if let Err(problem) = inventory.check(&c, dialect.quotes_special) {
            let help = format!(
                "{}{}",
                command_purpose(problem.name()),
                problem.help(&board.name)
            );
            return Err(match problem {
                CommandProblem::Trap { trap, .. } => PlanError::Trap {
                    board: board.name.clone(),
                    command: c,
                    reason: trap.reason,
                    help,
                },
                other => PlanError::MissingCommand {
                    board: board.name.clone(),
                    command: c,
                    problem: other.to_string(),
                    help,
                },
            });
        }
    }
    let machine = ShellMachine::new(dialect, Pacing::default());
    for c in plan.commands() {
        machine.check(&c).map_err(|r| PlanError::Command {
            command: c.clone(),
            reason: r.to_string(),
        })?;
    }
    Ok(plan)
}

/// Two buffers in free RAM: the load buffer at the RAM-boot area (known
/// free), the read-back buffer after it, both below U-Boot.
fn ram_buffers(
    board: &Board,
    given: Option<RamBuffers>,
    load_len: u64,
    rb_len: u64,
) -> Result<RamBuffers, PlanError> {
    let ram = &board.ram;
    let Some(ram_region) = ram.region() else {
        return Err(PlanError::Ram {
            why: format!("board {}: ram.size is unknown, so the buffers cannot be checked against the end of RAM", board.name),
            help: "add ram.size to the board file".into(),
        });
    };
    // The top of usable RAM: U-Boot's known region, else an assumed 16 MiB.
    let top = match ram.uboot {
        Some(u) if u.base > ram_region.base => u.base,
        _ => ram_region.end().saturating_sub(ASSUMED_UBOOT_TOP),
    };
    let to_phys = |a: u64, what: &str| {
        board.to_phys(a).map_err(|source| PlanError::Address {
            what: what.into(),
            source,
        })
    };
    let (load_phys, rb_phys) = match given {
        Some(g) => (
            to_phys(g.load, "load buffer")?,
            to_phys(g.readback, "read-back buffer")?,
        ),
        None => {
            let base = board
                .ram_boot
                .free
                .map(|f| f.base)
                .or(board.ram_boot.rootfs)
                .ok_or_else(|| PlanError::Ram {
                    why: format!("board {}: no known free RAM (ram_boot.free or ram_boot.rootfs)", board.name),
                    help: "add ram_boot.rootfs to the board file, or give --load-addr and --readback-addr".into(),
                })?;
            let base = align_up(base, RAM_ALIGN);
            (base, align_up(base + load_len, RAM_ALIGN))
        }
    };
    let bufs = [
        ("load buffer", load_phys, load_len),
        ("read-back buffer", rb_phys, rb_len),
    ];
    for (what, start, len) in bufs {
        let r = region(start, len);
        if start < ram_region.base || r.end() > top {
            return Err(PlanError::Ram {
                why: format!(
                    "the {what} {} does not fit in RAM below U-Boot ({:#x}..{top:#x})",
                    Span(r),
                    ram_region.base
                ),
                help: "a smaller image, or other buffers with --load-addr/--readback-addr".into(),
            });
        }
        if let Some(u) = ram.uboot {
            if r.overlaps(&u) {
                return Err(PlanError::Ram {
                    why: format!(
                        "the {what} {} overlaps U-Boot's own memory {}",
                        Span(r),
                        Span(u)
                    ),
                    help: "pick other buffers with --load-addr/--readback-addr".into(),
                });
            }
        }
    }
    if region(load_phys, load_len).overlaps(&region(rb_phys, rb_len)) {
        return Err(PlanError::Ram {
            why: "the load and read-back buffers overlap".into(),
            help: "give buffers at least the image size apart".into(),
        });
    }
    let to_uboot = |p: u64, what: &str| {
        board.to_uboot_addr(p).map_err(|source| PlanError::Address {
            what: what.into(),
            source,
        })
    };
    Ok(RamBuffers {
        load: to_uboot(load_phys, "load buffer")?,
        readback: to_uboot(rb_phys, "read-back buffer")?,
    })
}
