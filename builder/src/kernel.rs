//! The kernel as the board boots it: recognise what the user gave
//! (`vmlinux` ELF, arm64 `Image`, ARM `zImage`, a uImage, a FIT, or a raw
//! binary), turn it into the board's format, and say how much RAM it will
//! span once started.
//!
//! This exists so that `lmx build` needs no `objcopy`, `lzma` or `mkimage`:
//! a MIPS `vmlinux` becomes exactly the bytes `objcopy -O binary` writes
//! (its allocated sections laid out by load address) with the entry point
//! from the ELF header, is compressed and wrapped as a legacy uImage, with the
//! DTB appended first for U-Boots that cannot pass one. The run-size facts
//! it returns feed the [RAM layout planner](crate::layout). Everything here
//! is a pure function of bytes and the board.

use lmx_boards::{Arch as BoardArch, Board, Endian, KernelFormat};

use crate::compress;
use crate::fit::{Fit, FitKernel, FitSpec, HashAlgo};
use crate::layout::{zimage_span, KernelFacts, KernelRun};
use crate::uimage::{self, Arch, Compression, UImage, UImageSpec};

/// The magic of an arm64 `Image` (`ARM\x64` at offset 0x38).
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
/// The magic word of an ARM zImage at offset 0x24.
const ZIMAGE_MAGIC: u32 = 0x016f_2818;
/// LZMA preset used for kernels (the `lzma` tool's default).
pub const LZMA_PRESET: u32 = 6;

/// What kind of kernel file the user gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// An ELF `vmlinux`.
    Elf,
    /// A U-Boot legacy image.
    UImage,
    /// A FIT image.
    Fit,
    /// An arm64 `Image` (booti).
    Arm64Image,
    /// An ARM `zImage` (bootz).
    Zimage,
    /// Anything else: taken as raw kernel bytes (`vmlinux.bin`).
    Raw,
}

impl KernelKind {
    /// Tells the kinds apart by their magic numbers.
    pub fn detect(bytes: &[u8]) -> KernelKind {
        if bytes.starts_with(b"\x7fELF") {
            KernelKind::Elf
        } else if bytes.len() >= 4
            && u32::from_be_bytes(bytes[..4].try_into().unwrap()) == uimage::MAGIC
        {
            KernelKind::UImage
        } else if crate::fit::is_fit(bytes) {
            KernelKind::Fit
        } else if bytes.get(0x38..0x3c) == Some(ARM64_MAGIC) {
            KernelKind::Arm64Image
        } else if bytes
            .get(0x24..0x28)
            .is_some_and(|b| u32::from_le_bytes(b.try_into().unwrap()) == ZIMAGE_MAGIC)
        {
            KernelKind::Zimage
        } else {
            KernelKind::Raw
        }
    }

    /// A name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelKind::Elf => "ELF vmlinux",
            KernelKind::UImage => "uImage",
            KernelKind::Fit => "FIT",
            KernelKind::Arm64Image => "arm64 Image",
            KernelKind::Zimage => "ARM zImage",
            KernelKind::Raw => "raw binary",
        }
    }
}

/// Errors from reading or converting the kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The ELF file could not be read.
    #[error("kernel {input}: not a usable ELF file: {what}")]
    Elf {
        /// The input name.
        input: String,
        /// What is wrong.
        what: String,
    },
    /// The kernel is for another CPU or byte order than the board.
    #[error("kernel {input}: {what}, but board {board} is {arch} {endian}")]
    WrongTarget {
        /// The input name.
        input: String,
        /// What the kernel is.
        what: String,
        /// Board name.
        board: String,
        /// Board architecture.
        arch: &'static str,
        /// Board byte order.
        endian: &'static str,
    },
    /// The kernel cannot be turned into the board's format.
    #[error("kernel {input}: a {kind} cannot be booted as {format} on board {board}: {help}")]
    WrongKind {
        /// The input name.
        input: String,
        /// What was given.
        kind: &'static str,
        /// The board's format.
        format: &'static str,
        /// Board name.
        board: String,
        /// What to do instead.
        help: String,
    },
    /// No load address known.
    #[error("kernel {input}: no load/entry address: the board has no kernel.load and the image carries none")]
    NoLoad {
        /// The input name.
        input: String,
    },
    /// A uImage given as the kernel is corrupt.
    #[error("kernel {input}: {source}")]
    UImage {
        /// The input name.
        input: String,
        /// What failed.
        #[source]
        source: uimage::Error,
    },
    /// A FIT given as the kernel is corrupt, or building one failed.
    #[error("kernel {input}: {source}")]
    Fit {
        /// The input name.
        input: String,
        /// What failed.
        #[source]
        source: crate::fit::Error,
    },
    /// The board's U-Boot cannot unpack LZMA (`uboot.lzma = false`).
    #[error("kernel {input}: board {board}'s U-Boot has no LZMA (uboot.lzma = false): bootm would fail with \"Unimplemented compression type 3\" after the transfer; {help}")]
    NoLzma {
        /// The input name.
        input: String,
        /// Board name.
        board: String,
        /// What to do instead.
        help: String,
    },
    /// A load or entry address is not a U-Boot RAM address of the board
    /// (on MIPS: KSEG1 or physical where KSEG0 is expected).
    #[error("kernel {input}: {what}: {source}")]
    Address {
        /// The input name.
        input: String,
        /// Which address, and where it came from.
        what: String,
        /// What is wrong with it.
        #[source]
        source: lmx_boards::AddressError,
    },
    /// Compression failed.
    #[error("kernel {input}: {source}")]
    Compress {
        /// The input name.
        input: String,
        /// What failed.
        #[source]
        source: compress::Error,
    },
}

/// The loadable bytes of an ELF `vmlinux`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfBinary {
    /// Address the first byte of [`ElfBinary::data`] is linked to run at
    /// (its virtual address; the uImage load address).
    pub load: u64,
    /// Entry point from the ELF header.
    pub entry: u64,
    /// The allocated, non-empty sections with contents laid out by load
    /// address from the lowest one, gaps zero-filled: what
    /// `objcopy -O binary` writes.
    pub data: Vec<u8>,
    /// Bytes from `load` to the end of the last `PT_LOAD` segment in
    /// memory (the BSS included): what the kernel spans once started.
    pub mem_size: u64,
    /// Big-endian ELF (`EI_DATA` = `ELFDATA2MSB`).
    pub big_endian: bool,
    /// `e_machine` as a name (`mips`, `arm`, `aarch64`).
    pub machine: String,
    /// The `.appended_dtb` section of a kernel built with
    /// `CONFIG_MIPS_ELF_APPENDED_DTB`, when there is one: where its bytes
    /// start in [`ElfBinary::data`] and how large it is. Such a kernel
    /// looks for its device tree there, not after the end of the image.
    pub appended_dtb: Option<AppendedDtbSection>,
}

/// Where a kernel's `.appended_dtb` section lies in its binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedDtbSection {
    /// Offset of the section's first byte in [`ElfBinary::data`].
    pub offset: u64,
    /// The section's size: the largest DTB it can hold (1 MiB in Linux's
    /// `arch/mips/kernel/setup.c`).
    pub size: u64,
    /// The DTB was written into it ([`elf_to_binary_with_dtb`]).
    pub filled: bool,
}

/// The ELF section a `CONFIG_MIPS_ELF_APPENDED_DTB` kernel reads its
/// device tree from.
pub const APPENDED_DTB_SECTION: &str = ".appended_dtb";

/// 64-bit MIPS kernels link 32-bit KSEG0 addresses sign-extended.
fn narrow(a: u64) -> u64 {
    if a >> 32 == 0xffff_ffff {
        a & 0xffff_ffff
    } else {
        a
    }
}

/// One `PT_LOAD` program header.
#[derive(Debug, Clone, Copy)]
struct Load {
    vaddr: u64,
    paddr: u64,
    offset: u64,
    filesz: u64,
    memsz: u64,
}

/// Bytes to place: load (physical) address, virtual address, contents.
type Part<'a> = (u64, u64, &'a [u8]);

/// Largest binary accepted (a kernel is a few tens of MiB at most; a
/// larger span means segments far apart, as in a user-space program).
const MAX_BINARY: u64 = 1 << 30;

/// Most zero fill accepted between sections. A kernel's sections are
/// contiguous up to alignment (arm64 aligns segments to 64 KiB, an empty
/// MIPS `.appended_dtb` leaves 1 MiB), a few MiB in all; a few bytes of
/// ELF whose sections lie far apart must not make lmx allocate, compress
/// and write up to a GiB of zeros (found by the `kernel` fuzz target:
/// a 9 KiB file asked for 1 GiB).
pub const MAX_FILL: u64 = 16 << 20;

/// Reads an ELF file (32/64-bit, either byte order) into one binary, as
/// `objcopy -O binary` does.
///
/// objcopy works on sections, not segments: it writes every section that
/// is allocated and has contents (`SHF_ALLOC`, not `SHT_NOBITS`, size > 0)
/// at its load address (LMA: the `PT_LOAD`'s `p_paddr` plus the section's
/// offset into it), starting at the lowest one and zero-filling gaps; the
/// ELF and program headers are not sections, so a segment that maps them
/// does not move the start. A file without section headers falls back to
/// the `PT_LOAD` segments' file bytes.
pub fn elf_to_binary(input: &str, bytes: &[u8]) -> Result<ElfBinary, KernelError> {
    elf_to_binary_with_dtb(input, bytes, None)
}

/// [`elf_to_binary`] with the contents of the `.appended_dtb` section
/// replaced by `dtb` first, as `objcopy --update-section
/// .appended_dtb=DTB` followed by `objcopy -O binary` would: the section
/// keeps its address and takes the DTB's size, so the bytes after the
/// DTB up to the next section are the binary's zero fill. A DTB larger
/// than the section is refused; an ELF without the section is read as
/// [`elf_to_binary`] reads it (its `appended_dtb` is `None`, and the
/// caller appends the DTB another way).
pub fn elf_to_binary_with_dtb(
    input: &str,
    bytes: &[u8],
    dtb: Option<&[u8]>,
) -> Result<ElfBinary, KernelError> {
    use object::elf::{FileHeader32, FileHeader64};
    let bad = |what: String| KernelError::Elf {
        input: input.to_string(),
        what,
    };
    if !bytes.starts_with(b"\x7fELF") {
        return Err(bad("no ELF magic (\\x7fELF)".into()));
    }
    match bytes.get(4) {
        Some(1) => elf_image::<FileHeader32<object::Endianness>>(input, bytes, dtb),
        Some(2) => elf_image::<FileHeader64<object::Endianness>>(input, bytes, dtb),
        other => Err(bad(format!(
            "EI_CLASS is {other:?}; expected 1 (32-bit) or 2 (64-bit)"
        ))),
    }
}

fn elf_image<H>(input: &str, bytes: &[u8], dtb: Option<&[u8]>) -> Result<ElfBinary, KernelError>
where
    H: object::read::elf::FileHeader<Endian = object::Endianness>,
{
    use object::elf;
    use object::read::elf::{ProgramHeader, SectionHeader};
    let bad = |what: String| KernelError::Elf {
        input: input.to_string(),
        what,
    };
    let h = H::parse(bytes).map_err(|e| bad(format!("ELF header: {e}")))?;
    let endian = h.endian().map_err(|e| bad(format!("ELF header: {e}")))?;
    let machine = match h.e_machine(endian) {
        elf::EM_MIPS => "mips",
        elf::EM_ARM => "arm",
        elf::EM_AARCH64 => "aarch64",
        other => return Err(bad(format!("unsupported machine (e_machine {})", other.0))),
    };
    let loads: Vec<Load> = h
        .program_headers(endian, bytes)
        .map_err(|e| bad(format!("program headers: {e}")))?
        .iter()
        .filter(|p| p.p_type(endian) == elf::PT_LOAD)
        .map(|p| Load {
            vaddr: narrow(p.p_vaddr(endian).into()),
            paddr: narrow(p.p_paddr(endian).into()),
            offset: p.p_offset(endian).into(),
            filesz: p.p_filesz(endian).into(),
            memsz: p.p_memsz(endian).into(),
        })
        .filter(|l| l.memsz > 0)
        .collect();
    if loads.is_empty() {
        return Err(bad("no PT_LOAD segments".into()));
    }
    let sections = h
        .sections(endian, bytes)
        .map_err(|e| bad(format!("section headers: {e}")))?;
    let mut parts: Vec<Part> = Vec::new();
    // (LMA, size) of `.appended_dtb`, when the kernel has one.
    let mut dtb_section: Option<(u64, u64)> = None;
    for s in sections.iter() {
        let size: u64 = s.sh_size(endian).into();
        let is_dtb_section = sections
            .section_name(endian, s)
            .is_ok_and(|n| n == APPENDED_DTB_SECTION.as_bytes());
        if s.sh_flags(endian).0 & elf::SHF_ALLOC.0 == 0
            || (s.sh_type(endian) == elf::SHT_NOBITS && !is_dtb_section)
            || size == 0
        {
            continue;
        }
        let mut data: &[u8] = if s.sh_type(endian) == elf::SHT_NOBITS {
            &[]
        } else {
            s.data(endian, bytes)
                .map_err(|e| bad(format!("section data: {e}")))?
        };
        let vma = narrow(s.sh_addr(endian).into());
        let off: u64 = s.sh_offset(endian).into();
        // The section's LMA, through the segment that holds its bytes.
        let lma = loads
            .iter()
            .find(|l| {
                off >= l.offset
                    && within(off, size, l.offset, l.filesz)
                    && vma >= l.vaddr
                    && within(vma, size, l.vaddr, l.memsz)
            })
            .and_then(|l| l.paddr.checked_add(vma - l.vaddr))
            .unwrap_or(vma);
        if is_dtb_section {
            dtb_section = Some((lma, size));
            if let Some(d) = dtb {
                if d.len() as u64 > size {
                    return Err(bad(format!(
                        "the DTB is {} bytes; the kernel's {APPENDED_DTB_SECTION} section holds {size}",
                        d.len()
                    )));
                }
                data = d;
            }
            if data.is_empty() {
                continue;
            }
        }
        parts.push((lma, vma, data));
    }
    if parts.is_empty() {
        for l in loads.iter().filter(|l| l.filesz > 0) {
            let range = usize::try_from(l.offset)
                .ok()
                .zip(
                    l.offset
                        .checked_add(l.filesz)
                        .and_then(|e| usize::try_from(e).ok()),
                )
                .and_then(|(a, b)| bytes.get(a..b))
                .ok_or_else(|| {
                    bad(format!(
                        "PT_LOAD at {:#x} runs past the end of the file",
                        l.vaddr
                    ))
                })?;
            parts.push((l.paddr, l.vaddr, range));
        }
    }
    if parts.is_empty() {
        return Err(bad("nothing to load: every PT_LOAD is BSS".into()));
    }
    let (lma0, load, _) = *parts.iter().min_by_key(|p| p.0).expect("not empty");
    let Some(end) = parts.iter().try_fold(0u64, |end, p| {
        p.0.checked_add(p.2.len() as u64).map(|e| end.max(e))
    }) else {
        return Err(bad(
            "a section ends past the end of the address space".into()
        ));
    };
    let len = end - lma0;
    let contents: u64 = parts.iter().map(|p| p.2.len() as u64).sum();
    let fill = len.saturating_sub(contents);
    if len > MAX_BINARY || fill > MAX_FILL {
        return Err(bad(format!(
            "sections span {len:#x} bytes from {lma0:#x}, {fill:#x} of them gaps; not a kernel (a kernel's sections are contiguous)"
        )));
    }
    let mut data = vec![0u8; len as usize];
    for (lma, _, d) in &parts {
        let o = (lma - lma0) as usize;
        data[o..o + d.len()].copy_from_slice(d);
    }
    let mem_end = loads
        .iter()
        .map(|l| l.vaddr.saturating_add(l.memsz))
        .max()
        .expect("not empty");
    Ok(ElfBinary {
        load,
        entry: narrow(h.e_entry(endian).into()),
        data,
        mem_size: mem_end.saturating_sub(load).max(len),
        big_endian: h.is_big_endian(),
        machine: machine.to_string(),
        appended_dtb: dtb_section.map(|(lma, size)| AppendedDtbSection {
            offset: lma.wrapping_sub(lma0),
            size,
            filled: dtb.is_some(),
        }),
    })
}

/// Whether `[start, start + size)` lies inside `[base, base + len)`;
/// false when either end is past `u64::MAX` (a corrupt header: found by
/// the `kernel` fuzz target, where these sums overflowed).
fn within(start: u64, size: u64, base: u64, len: u64) -> bool {
    match (start.checked_add(size), base.checked_add(len)) {
        (Some(end), Some(limit)) => start >= base && end <= limit,
        _ => false,
    }
}

/// `jr ra` (MIPS32/64 before R6) and `jalr zero, ra` (R6): how every
/// function returns.
const MIPS_RETURNS: [u32; 2] = [0x03e0_0008, 0x03e0_0009];

/// The byte order of MIPS machine code, told from how often a function
/// return (`jr ra`) appears as an aligned word in each byte order. A
/// kernel has thousands (the 6.1 malta kernel: 14785 one way, 0 the
/// other), data almost never holds that word, so the count is decisive.
/// Returns `(order, big-endian count, little-endian count)`; the order is
/// `None` with fewer than 8 returns or without an 8:1 majority.
pub fn mips_code_endian(code: &[u8]) -> (Option<Endian>, usize, usize) {
    let (mut be, mut le) = (0usize, 0usize);
    for w in code.chunks_exact(4) {
        let w: [u8; 4] = w.try_into().expect("4 bytes");
        if MIPS_RETURNS.contains(&u32::from_be_bytes(w)) {
            be += 1;
        } else if MIPS_RETURNS.contains(&u32::from_le_bytes(w)) {
            le += 1;
        }
    }
    let order = if be >= 8 && be >= 8 * le {
        Some(Endian::Big)
    } else if le >= 8 && le >= 8 * be {
        Some(Endian::Little)
    } else {
        None
    };
    (order, be, le)
}

/// A uImage header has no byte order: for a MIPS board, tell it from the
/// code (see [`mips_code_endian`]) and refuse the wrong one. `Ok(Some)`
/// is a note when the code does not tell.
fn check_mips_code(
    board: &Board,
    input: &str,
    what: &str,
    code: &[u8],
) -> Result<Option<String>, KernelError> {
    if board.cpu.arch != BoardArch::Mips {
        return Ok(None);
    }
    let name = |e: Endian| match e {
        Endian::Big => "big-endian",
        Endian::Little => "little-endian",
    };
    match mips_code_endian(code) {
        (Some(e), be, le) if e != board.cpu.endian => Err(KernelError::WrongTarget {
            input: input.to_string(),
            what: format!(
                "the {what} holds {} MIPS code ({be} function returns read big-endian, {le} little-endian)",
                name(e)
            ),
            board: board.name.clone(),
            arch: board.cpu.arch.as_str(),
            endian: name(board.cpu.endian),
        }),
        (Some(_), _, _) => Ok(None),
        (None, be, le) => Ok(Some(format!(
            "the byte order of the {what}'s code could not be told ({be} function returns read big-endian, {le} little-endian); it is assumed to be the board's"
        ))),
    }
}

/// The `image_size` field of an arm64 `Image` header (the BSS included);
/// `None` when the header says 0 (kernels before 3.17) or is not there.
pub fn arm64_image_size(bytes: &[u8]) -> Option<u64> {
    if bytes.get(0x38..0x3c) != Some(ARM64_MAGIC) {
        return None;
    }
    let n = u64::from_le_bytes(bytes[16..24].try_into().ok()?);
    (n != 0).then_some(n)
}

/// Uncompressed size of a uImage payload, from the `.lzma` header, the
/// gzip trailer (`ISIZE`) or the payload itself.
pub fn unpacked_size(payload: &[u8], comp: Compression) -> Option<u64> {
    match comp {
        Compression::None => Some(payload.len() as u64),
        Compression::Lzma => compress::lzma_uncompressed_size(payload).ok().flatten(),
        Compression::Gzip if payload.len() >= 18 => {
            let t = &payload[payload.len() - 4..];
            Some(u32::from_le_bytes(t.try_into().ok()?) as u64)
        }
        _ => None,
    }
}

/// The uImage architecture code for a board.
pub fn uimage_arch(board: &Board) -> Arch {
    match board.cpu.arch {
        BoardArch::Mips => Arch::Mips,
        BoardArch::Armv7l => Arch::Arm,
        BoardArch::Aarch64 => Arch::Arm64,
    }
}

/// The kernel ready for the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelArtifact {
    /// File name in the artifact directory (`Image`, `zImage`, `uImage`, `kernel.itb`).
    pub file_name: &'static str,
    /// The bytes U-Boot loads.
    pub bytes: Vec<u8>,
    /// What the layout planner needs.
    pub facts: KernelFacts,
    /// The DTB travels inside the kernel file (appended or FIT).
    pub dtb_inside: bool,
    /// Decisions worth telling the user.
    pub notes: Vec<String>,
}

/// Inputs of [`build_kernel`].
#[derive(Debug, Clone, Copy)]
pub struct KernelInput<'a> {
    /// Name of the input for messages (its path).
    pub input: &'a str,
    /// The kernel file.
    pub bytes: &'a [u8],
    /// The device tree, already patched for this boot; needed for
    /// appended-DTB and FIT kernels.
    pub dtb: Option<&'a [u8]>,
    /// uImage / FIT name (at most 32 bytes for a uImage).
    pub name: &'a str,
    /// Timestamp for image headers.
    pub timestamp: u32,
}

fn board_load(board: &Board, input: &str) -> Result<(u64, u64), KernelError> {
    match (board.kernel.load, board.kernel.entry) {
        (Some(l), Some(e)) => Ok((l, e)),
        (Some(l), None) => Ok((l, l)),
        _ => Err(KernelError::NoLoad {
            input: input.to_string(),
        }),
    }
}

fn check_elf(board: &Board, input: &str, elf: &ElfBinary) -> Result<(), KernelError> {
    let want = match board.cpu.arch {
        BoardArch::Mips => "mips",
        BoardArch::Armv7l => "arm",
        BoardArch::Aarch64 => "aarch64",
    };
    let board_big = board.cpu.endian == Endian::Big;
    if elf.machine != want || elf.big_endian != board_big {
        return Err(KernelError::WrongTarget {
            input: input.to_string(),
            what: format!(
                "the ELF is {} {}-endian",
                elf.machine,
                if elf.big_endian { "big" } else { "little" }
            ),
            board: board.name.clone(),
            arch: board.cpu.arch.as_str(),
            endian: if board_big {
                "big-endian"
            } else {
                "little-endian"
            },
        });
    }
    Ok(())
}

/// Refuses an LZMA payload for a U-Boot known to lack LZMA.
fn check_lzma(board: &Board, input: &str, comp: Compression) -> Result<(), KernelError> {
    if comp == Compression::Lzma && board.uboot.lzma == Some(false) {
        let gzip_ok = board.kernel.format == KernelFormat::UimageGzip
            || board.kernel.also_boots.contains(&KernelFormat::UimageGzip);
        return Err(KernelError::NoLzma {
            input: input.to_string(),
            board: board.name.clone(),
            help: if gzip_ok {
                "give the vmlinux and build the board's uimage-gzip format (lmx build --format uimage-gzip)".into()
            } else {
                "set kernel.format = \"uimage-gzip\" in the board file and give the vmlinux".into()
            },
        });
    }
    Ok(())
}

/// Checks that `load` and `entry` (from `source`) are U-Boot RAM
/// addresses of the board: on MIPS, KSEG0. A KSEG1 or physical address is
/// refused with the KSEG0 address to use, never converted silently.
fn check_ram_addrs(
    board: &Board,
    input: &str,
    source: &str,
    load: u64,
    entry: u64,
) -> Result<(), KernelError> {
    for (what, addr) in [("load address", load), ("entry point", entry)] {
        board
            .address_map
            .ram_to_phys(addr)
            .map_err(|source_err| KernelError::Address {
                input: input.to_string(),
                what: format!("{source} {what} {addr:#x}"),
                source: source_err,
            })?;
    }
    Ok(())
}

/// Estimated span of a kernel whose BSS size is unknown.
fn estimate(unpacked: u64) -> u64 {
    unpacked + unpacked / 4 + (1 << 20)
}

/// Turns the user's kernel into what the board boots (see the module docs).
pub fn build_kernel(board: &Board, k: &KernelInput) -> Result<KernelArtifact, KernelError> {
    let kind = KernelKind::detect(k.bytes);
    let format = board.kernel.format;
    let wrong = |help: &str| KernelError::WrongKind {
        input: k.input.to_string(),
        kind: kind.as_str(),
        format: format.as_str(),
        board: board.name.clone(),
        help: help.to_string(),
    };
    let file_size = k.bytes.len() as u64;
    let mut notes = Vec::new();
    match format {
        KernelFormat::Image => {
            if kind != KernelKind::Arm64Image {
                return Err(wrong("give the arm64 `Image` (arch/arm64/boot/Image)"));
            }
            let (size, known) = match arm64_image_size(k.bytes) {
                Some(n) => (n, true),
                None => (file_size * 2, false),
            };
            // booti runs the image in place only at a 2 MiB boundary plus
            // text_offset (0 on kernels since 5.8); otherwise it moves it.
            let text_offset = u64::from_le_bytes(k.bytes[8..16].try_into().expect("8 bytes"));
            if let Some(load) = board.kernel.load {
                if load % (2 << 20) != text_offset {
                    notes.push(format!(
                        "Image text_offset is {text_offset:#x} but kernel.load {load:#x} is not a 2 MiB boundary plus it: booti will move the kernel, which the layout does not model"
                    ));
                }
            }
            Ok(KernelArtifact {
                file_name: "Image",
                bytes: k.bytes.to_vec(),
                facts: KernelFacts {
                    file_size,
                    run: KernelRun::InPlace { size },
                    size_known: known,
                },
                dtb_inside: false,
                notes,
            })
        }
        KernelFormat::Zimage => {
            if kind != KernelKind::Zimage {
                return Err(wrong("give the ARM `zImage` (arch/arm/boot/zImage)"));
            }
            notes.push("zImage: decompressed size assumed at most 4x the file".into());
            Ok(KernelArtifact {
                file_name: "zImage",
                bytes: k.bytes.to_vec(),
                facts: KernelFacts {
                    file_size,
                    run: KernelRun::Zimage {
                        decompressed: file_size * 4,
                    },
                    size_known: false,
                },
                dtb_inside: false,
                notes,
            })
        }
        KernelFormat::UimageLzma | KernelFormat::UimageGzip | KernelFormat::Uimage => {
            let comp = match format {
                KernelFormat::UimageLzma => Compression::Lzma,
                KernelFormat::UimageGzip => Compression::Gzip,
                _ => Compression::None,
            };
            if kind == KernelKind::UImage {
                return reuse_uimage(board, k, comp, notes);
            }
            check_lzma(board, k.input, comp)?;
            // Where the DTB goes when the board needs it appended: into the
            // kernel's `.appended_dtb` section when it has one, else after
            // the image.
            let mut in_section = false;
            let (mut raw, load, entry, span, known) = match kind {
                KernelKind::Elf => {
                    let dtb = k.dtb.filter(|_| board.kernel.append_dtb);
                    let elf = elf_to_binary_with_dtb(k.input, k.bytes, dtb)?;
                    match (elf.appended_dtb, dtb) {
                        (Some(sec), Some(dtb)) => {
                            in_section = true;
                            notes.push(format!(
                                "appended DTB: written into the kernel's {APPENDED_DTB_SECTION} section ({} of {} bytes; CONFIG_MIPS_ELF_APPENDED_DTB kernel)",
                                dtb.len(),
                                sec.size
                            ));
                        }
                        (Some(_), None) if !board.kernel.append_dtb => {
                            notes.push(format!(
                                "the kernel has an empty {APPENDED_DTB_SECTION} section, but the board passes the DTB itself (kernel.append_dtb = false): it stays empty"
                            ));
                        }
                        _ => {}
                    }
                    check_elf(board, k.input, &elf)?;
                    if let Some(l) = board.kernel.load {
                        if l != elf.load {
                            notes.push(format!(
                                "vmlinux is linked at {:#x}; the board says kernel.load {:#x}: using the ELF's",
                                elf.load, l
                            ));
                        }
                    }
                    check_ram_addrs(board, k.input, "ELF", elf.load, elf.entry)?;
                    let span = elf.mem_size;
                    (elf.data, elf.load, elf.entry, span, true)
                }
                KernelKind::Raw => {
                    if board.cpu.arch == BoardArch::Mips && board.kernel.entry.is_none() {
                        return Err(wrong(
                            "a raw MIPS binary does not say where it starts and the board has no kernel.entry: give the vmlinux ELF (its header has the entry point), or set kernel.entry",
                        ));
                    }
                    let (l, e) = board_load(board, k.input)?;
                    check_ram_addrs(board, k.input, "board kernel.load/entry:", l, e)?;
                    notes.extend(check_mips_code(board, k.input, "raw kernel", k.bytes)?);
                    notes.push(format!(
                        "raw kernel: load {l:#x} and entry {e:#x} from the board; BSS size estimated"
                    ));
                    (k.bytes.to_vec(), l, e, estimate(file_size), false)
                }
                _ => {
                    return Err(wrong(
                        "give the `vmlinux` ELF, its raw binary, or a ready uImage",
                    ))
                }
            };
            let mut span = span;
            let dtb_inside = board.kernel.append_dtb;
            if dtb_inside && !in_section {
                let dtb = k.dtb.ok_or_else(|| {
                    wrong("the board needs the DTB appended to the kernel, and no device tree was given")
                })?;
                raw.extend_from_slice(dtb);
                span = span.max(raw.len() as u64);
                notes.push(format!(
                    "appended DTB: concatenated after the image ({} bytes; for kernels built with CONFIG_MIPS_RAW_APPENDED_DTB, as OpenWrt's)",
                    dtb.len()
                ));
            }
            let payload = compress_as(k.input, &raw, comp)?;
            let spec = UImageSpec {
                timestamp: k.timestamp,
                ..UImageSpec::kernel(k.name, uimage_arch(board), comp, load as u32, entry as u32)
            };
            let bytes = spec.build(&payload).map_err(|source| KernelError::UImage {
                input: format!("{} (uImage name {:?})", k.input, k.name),
                source,
            })?;
            Ok(KernelArtifact {
                file_name: "uImage",
                facts: KernelFacts {
                    file_size: bytes.len() as u64,
                    run: KernelRun::Unpacked { load, size: span },
                    size_known: known,
                },
                bytes,
                dtb_inside,
                notes,
            })
        }
        KernelFormat::Fit => build_fit(board, k, kind, notes),
    }
}

fn compress_as(input: &str, raw: &[u8], comp: Compression) -> Result<Vec<u8>, KernelError> {
    let err = |source| KernelError::Compress {
        input: input.to_string(),
        source,
    };
    match comp {
        Compression::Lzma => compress::lzma_compress(raw, LZMA_PRESET).map_err(err),
        Compression::Gzip => compress::gzip_compress(raw).map_err(err),
        _ => Ok(raw.to_vec()),
    }
}

fn reuse_uimage(
    board: &Board,
    k: &KernelInput,
    comp: Compression,
    mut notes: Vec<String>,
) -> Result<KernelArtifact, KernelError> {
    let img = UImage::parse(k.bytes).map_err(|source| KernelError::UImage {
        input: k.input.to_string(),
        source,
    })?;
    let h = &img.header;
    check_lzma(board, k.input, h.compression)?;
    check_ram_addrs(
        board,
        k.input,
        "uImage header",
        h.load_addr as u64,
        h.entry_point as u64,
    )?;
    if h.arch != uimage_arch(board) {
        return Err(KernelError::WrongTarget {
            input: k.input.to_string(),
            what: format!("the uImage is for {}", h.arch),
            board: board.name.clone(),
            arch: board.cpu.arch.as_str(),
            endian: match board.cpu.endian {
                Endian::Big => "big-endian",
                Endian::Little => "little-endian",
            },
        });
    }
    let unpacked_code = match h.compression {
        Compression::None => Some(img.payload.to_vec()),
        Compression::Lzma => compress::lzma_decompress(img.payload).ok(),
        Compression::Gzip => compress::gzip_decompress(img.payload).ok(),
        _ => None,
    };
    match unpacked_code {
        Some(code) => notes.extend(check_mips_code(board, k.input, "uImage", &code)?),
        None if board.cpu.arch == BoardArch::Mips => notes.push(format!(
            "the uImage's {} payload could not be unpacked here: its byte order is not checked",
            h.compression
        )),
        None => {}
    }
    if h.compression != comp {
        let also = board.kernel.also_boots.iter().any(|f| {
            matches!(
                (f, h.compression),
                (KernelFormat::UimageLzma, Compression::Lzma)
                    | (KernelFormat::UimageGzip, Compression::Gzip)
                    | (KernelFormat::Uimage, Compression::None)
            )
        });
        if !also {
            return Err(KernelError::WrongKind {
                input: k.input.to_string(),
                kind: "uImage",
                format: board.kernel.format.as_str(),
                board: board.name.clone(),
                help: format!(
                    "it is {}, which this board's U-Boot is not known to unpack; give the vmlinux and lmx compresses it",
                    h.compression
                ),
            });
        }
    }
    if board.kernel.append_dtb {
        notes.push("ready uImage used as is: the DTB is assumed to be appended already".into());
    }
    let unpacked =
        unpacked_size(img.payload, h.compression).unwrap_or(img.payload.len() as u64 * 4);
    Ok(KernelArtifact {
        file_name: "uImage",
        bytes: k.bytes.to_vec(),
        facts: KernelFacts {
            file_size: k.bytes.len() as u64,
            run: KernelRun::Unpacked {
                load: h.load_addr as u64,
                size: estimate(unpacked),
            },
            size_known: false,
        },
        dtb_inside: board.kernel.append_dtb,
        notes,
    })
}

fn build_fit(
    board: &Board,
    k: &KernelInput,
    kind: KernelKind,
    mut notes: Vec<String>,
) -> Result<KernelArtifact, KernelError> {
    let fit_err = |source| KernelError::Fit {
        input: k.input.to_string(),
        source,
    };
    if kind == KernelKind::Fit {
        let fit = Fit::parse(k.bytes).map_err(fit_err)?;
        fit.verify().map_err(|what| KernelError::Elf {
            input: k.input.to_string(),
            what: format!("FIT hash check failed: {what}"),
        })?;
        let kimg = fit
            .images
            .iter()
            .find(|i| i.kind.as_deref() == Some("kernel"))
            .ok_or_else(|| KernelError::NoLoad {
                input: k.input.to_string(),
            })?;
        let load = kimg.load.ok_or_else(|| KernelError::NoLoad {
            input: k.input.to_string(),
        })?;
        notes.push(
            "ready FIT used as is: its DTB is not patched (bootargs come from the environment)"
                .into(),
        );
        return Ok(KernelArtifact {
            file_name: "kernel.itb",
            bytes: k.bytes.to_vec(),
            facts: KernelFacts {
                file_size: k.bytes.len() as u64,
                run: KernelRun::Unpacked {
                    load,
                    size: estimate(kimg.data_size as u64 * 4),
                },
                size_known: false,
            },
            dtb_inside: fit
                .images
                .iter()
                .any(|i| i.kind.as_deref() == Some("flat_dt")),
            notes,
        });
    }
    let (data, compression, load, entry, span, known) = match kind {
        KernelKind::Elf => {
            let elf = elf_to_binary(k.input, k.bytes)?;
            check_elf(board, k.input, &elf)?;
            check_ram_addrs(board, k.input, "ELF", elf.load, elf.entry)?;
            let span = elf.mem_size;
            // LZMA unless the board's U-Boot is known to lack it.
            let comp = if board.uboot.lzma == Some(false) {
                Compression::Gzip
            } else {
                Compression::Lzma
            };
            let z = compress_as(k.input, &elf.data, comp)?;
            (z, comp, elf.load, elf.entry, span, true)
        }
        KernelKind::Arm64Image | KernelKind::Zimage | KernelKind::Raw => {
            let (l, e) = board_load(board, k.input)?;
            let (span, known) = match arm64_image_size(k.bytes) {
                Some(n) => (n.max(k.bytes.len() as u64), true),
                None if kind == KernelKind::Zimage => (k.bytes.len() as u64 * 4, false),
                None => (estimate(k.bytes.len() as u64), false),
            };
            (k.bytes.to_vec(), Compression::None, l, e, span, known)
        }
        KernelKind::UImage | KernelKind::Fit => {
            return Err(KernelError::WrongKind {
                input: k.input.to_string(),
                kind: kind.as_str(),
                format: "fit",
                board: board.name.clone(),
                help: "give the raw kernel (Image, zImage or vmlinux) and lmx builds the FIT"
                    .into(),
            })
        }
    };
    let spec = FitSpec {
        description: k.name.to_string(),
        arch: uimage_arch(board),
        timestamp: k.timestamp,
        hash: HashAlgo::Crc32,
        kernel: FitKernel {
            data,
            compression,
            load,
            entry,
        },
        fdt: k.dtb.map(<[u8]>::to_vec),
        ramdisk: None,
    };
    // bootm copies a zImage to its load address, where it unpacks itself
    // below that address (and may move itself past its output): the
    // kernel's RAM is that whole span, not the load address onwards.
    let (start, span) = if kind == KernelKind::Zimage {
        let (start, end) = zimage_span(load, spec.kernel.data.len() as u64, span);
        (start, end - start)
    } else {
        (load, span)
    };
    let bytes = spec.build().map_err(fit_err)?;
    Ok(KernelArtifact {
        file_name: "kernel.itb",
        facts: KernelFacts {
            file_size: bytes.len() as u64,
            run: KernelRun::Unpacked {
                load: start,
                size: span,
            },
            size_known: known,
        },
        bytes,
        dtb_inside: k.dtb.is_some(),
        notes,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF32 big-endian MIPS executable with two PT_LOAD
    /// segments (text at `load`, data after a gap) and a BSS tail.
    pub(crate) fn tiny_mips_elf(load: u32, entry: u32) -> Vec<u8> {
        let mut f = vec![0u8; 0x100];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 1; // ELFCLASS32
        f[5] = 2; // big-endian
        f[6] = 1;
        let be16 =
            |f: &mut Vec<u8>, o: usize, v: u16| f[o..o + 2].copy_from_slice(&v.to_be_bytes());
        let be32 =
            |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_be_bytes());
        be16(&mut f, 16, 2); // ET_EXEC
        be16(&mut f, 18, 8); // EM_MIPS
        be32(&mut f, 20, 1);
        be32(&mut f, 24, entry);
        be32(&mut f, 28, 52); // phoff
        be16(&mut f, 40, 52); // ehsize
        be16(&mut f, 42, 32); // phentsize
        be16(&mut f, 44, 2); // phnum
                             // PT_LOAD 1: 16 bytes at file 0x80 -> load
        let ph = |f: &mut Vec<u8>, o: usize, off: u32, va: u32, fsz: u32, msz: u32| {
            be32(f, o, 1);
            be32(f, o + 4, off);
            be32(f, o + 8, va);
            be32(f, o + 12, va);
            be32(f, o + 16, fsz);
            be32(f, o + 20, msz);
            be32(f, o + 24, 7);
            be32(f, o + 28, 16);
        };
        ph(&mut f, 52, 0x80, load, 16, 16);
        ph(&mut f, 84, 0x90, load + 0x20, 8, 0x100);
        for (i, b) in f[0x80..0x98].iter_mut().enumerate() {
            *b = 0xa0 + i as u8;
        }
        f
    }

    #[test]
    fn elf_segments_are_laid_out_by_address() {
        let elf = elf_to_binary("vmlinux", &tiny_mips_elf(0x8010_0000, 0x8010_0004)).unwrap();
        assert_eq!(elf.load, 0x8010_0000);
        assert_eq!(elf.entry, 0x8010_0004);
        assert!(elf.big_endian);
        assert_eq!(elf.machine, "mips");
        assert_eq!(elf.data.len(), 0x28);
        assert_eq!(&elf.data[..2], &[0xa0, 0xa1]);
        assert_eq!(&elf.data[0x10..0x20], &[0; 16]);
        assert_eq!(elf.data[0x20], 0xb0);
        assert_eq!(elf.mem_size, 0x120);
    }

    #[test]
    fn truncated_elf_is_refused_by_name() {
        let e = elf_to_binary(
            "build/vmlinux",
            &tiny_mips_elf(0x8010_0000, 0x8010_0000)[..40],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("build/vmlinux"), "{e}");
    }

    #[test]
    fn raw_mips_binary_needs_an_entry_point() {
        let mut b = lmx_boards::Catalog::builtin()
            .resolve("qemu-mips")
            .unwrap()
            .board;
        let raw = vec![0u8; 4096];
        let input = KernelInput {
            input: "vmlinux.bin",
            bytes: &raw,
            dtb: None,
            name: "Linux",
            timestamp: 0,
        };
        let e = build_kernel(&b, &input).unwrap_err().to_string();
        assert!(e.contains("give the vmlinux ELF"), "{e}");
        b.kernel.entry = Some(0x8010_0400);
        let k = build_kernel(&b, &input).unwrap();
        let h = UImage::parse(&k.bytes).unwrap().header;
        assert_eq!((h.load_addr, h.entry_point), (0x8010_0000, 0x8010_0400));
        // Its byte order cannot be told from zeros: a note, not a refusal.
        assert!(
            k.notes.iter().any(|n| n.contains("could not be told")),
            "{:?}",
            k.notes
        );
    }

    #[test]
    fn mips_code_byte_order_from_function_returns() {
        let mut code = Vec::new();
        for i in 0..10u32 {
            code.extend_from_slice(&(0x2402_0000 + i).to_be_bytes()); // li v0, i
            code.extend_from_slice(&0x03e0_0008u32.to_be_bytes()); // jr ra
        }
        assert_eq!(mips_code_endian(&code), (Some(Endian::Big), 10, 0));
        let swapped: Vec<u8> = code
            .chunks_exact(4)
            .flat_map(|w| [w[3], w[2], w[1], w[0]])
            .collect();
        assert_eq!(mips_code_endian(&swapped), (Some(Endian::Little), 0, 10));
        // Too few returns, or no clear majority: not told.
        assert_eq!(mips_code_endian(&code[..24]).0, None);
        let mut mixed = code.clone();
        mixed.extend_from_slice(&swapped[..48]);
        assert_eq!(mips_code_endian(&mixed).0, None);
        assert_eq!(mips_code_endian(&[0u8; 4096]), (None, 0, 0));
    }

    #[test]
    fn a_zimage_in_a_fit_reserves_the_ram_it_unpacks_into() {
        let mut b = lmx_boards::Catalog::builtin()
            .resolve("qemu-armv7l")
            .unwrap()
            .board;
        b.kernel.format = KernelFormat::Fit;
        let mut z = vec![0x11u8; 1_700_000];
        z[0x24..0x28].copy_from_slice(&ZIMAGE_MAGIC.to_le_bytes());
        let k = build_kernel(
            &b,
            &KernelInput {
                input: "zImage",
                bytes: &z,
                dtb: None,
                name: "t",
                timestamp: 0,
            },
        )
        .unwrap();
        // Loaded at 0x40400000, unpacked from 0x40008000: 6.5 MiB (4x the
        // file) reach past the copy, which moves itself above its output.
        let (start, end) = zimage_span(0x4040_0000, 1_700_000, 4 * 1_700_000);
        assert_eq!(start, 0x4000_8000);
        assert_eq!(
            end,
            0x4000_8000 + 4 * 1_700_000 + 1_700_000 + crate::layout::ZIMAGE_SLACK
        );
        assert_eq!(
            k.facts.run,
            KernelRun::Unpacked {
                load: start,
                size: end - start
            }
        );
        // The FIT itself still tells bootm to copy the zImage to 0x40400000.
        let fit = Fit::parse(&k.bytes).unwrap();
        let kimg = fit
            .images
            .iter()
            .find(|i| i.kind.as_deref() == Some("kernel"))
            .unwrap();
        assert_eq!(kimg.load, Some(0x4040_0000));
    }

    #[test]
    fn detects_kinds() {
        assert_eq!(KernelKind::detect(&tiny_mips_elf(0, 0)), KernelKind::Elf);
        let mut img = vec![0u8; 64];
        img[0x38..0x3c].copy_from_slice(ARM64_MAGIC);
        img[16..24].copy_from_slice(&0x12_3000u64.to_le_bytes());
        assert_eq!(KernelKind::detect(&img), KernelKind::Arm64Image);
        assert_eq!(arm64_image_size(&img), Some(0x12_3000));
        let mut z = vec![0u8; 64];
        z[0x24..0x28].copy_from_slice(&ZIMAGE_MAGIC.to_le_bytes());
        assert_eq!(KernelKind::detect(&z), KernelKind::Zimage);
        assert_eq!(KernelKind::detect(b"hello"), KernelKind::Raw);
    }
}
