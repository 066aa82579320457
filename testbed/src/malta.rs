//! The MIPS twins' machine, QEMU `malta`: its flash image, the little-endian
//! word swap, and the RAM boot verified in `docs/design/testbed.md`
//! ("MIPS twins").
//!
//! - The 4 MiB flash ([`FLASH_SIZE`]) is mapped at physical 0x1E000000
//!   (U-Boot's text base is its KSEG1 alias 0xBE000000) and aliased at the
//!   reset vector. U-Boot goes at offset 0; its environment lives at
//!   [`ENV_OFFSET`] (left erased here: an environment written by
//!   `mkenvimage` without `fdtcontroladdr` broke Debian's build at boot,
//!   while environments written by `saveenv` work).
//! - In little-endian mode QEMU byte-swaps every 32-bit word of the first
//!   `min(size, 0x3E0000)` bytes of the flash ([`SWAP_LIMIT`]) when it
//!   starts: so the flash image of a little-endian board holds U-Boot
//!   word-swapped ([`word_swap`], what U-Boot's build calls
//!   `u-boot-swap.bin`), and QEMU turns it back. The environment area is
//!   not swapped.
//! - U-Boot runs in KSEG0: it loads to 0x8xxxxxxx, while the kernel's
//!   `phram=` wants the physical address ([`kseg0_to_phys`]).

use std::path::{Path, PathBuf};

use crate::{Arch, Error, Result};

/// Size of malta's flash (and so of the `-drive if=pflash` image).
pub const FLASH_SIZE: u64 = 4 << 20;
/// Offset of U-Boot's environment in the flash (`CONFIG_ENV_ADDR`
/// 0xBE3E0000 of Debian's malta builds).
pub const ENV_OFFSET: u64 = 0x3E_0000;
/// QEMU swaps the words of the first this many bytes of a little-endian
/// malta's flash (everything before the environment).
pub const SWAP_LIMIT: usize = 0x3E_0000;
/// Where the flash is in the physical address space.
pub const FLASH_PHYS: u64 = 0x1E00_0000;
/// RAM of the machine in MiB (`-m`): malta maps at most 256 MiB low memory.
pub const MEMORY_MIB: u32 = 256;

/// U-Boot's KSEG0 address for physical address `phys` (below 512 MiB).
pub fn phys_to_kseg0(phys: u64) -> u64 {
    debug_assert!(phys < 0x2000_0000);
    phys | 0x8000_0000
}

/// The physical address behind a KSEG0 (0x80000000–0x9FFFFFFF) or KSEG1
/// (0xA0000000–0xBFFFFFFF) address; `None` for anything else.
pub fn kseg0_to_phys(addr: u64) -> Option<u64> {
    (0x8000_0000..0xC000_0000)
        .contains(&addr)
        .then_some(addr & 0x1FFF_FFFF)
}

/// `data` with each 32-bit word of its first `min(len, SWAP_LIMIT)` bytes
/// byte-swapped, padded with 0xff to a multiple of 4 first: the flash
/// content of a little-endian malta (see the module docs). Applying it twice
/// gives the padded input back.
pub fn word_swap(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(4) * 4, 0xff);
    let end = out.len().min(SWAP_LIMIT);
    for w in out[..end].chunks_exact_mut(4) {
        w.reverse();
    }
    out
}

/// The flash content for `arch` with `uboot` (U-Boot as it runs, in the
/// CPU's byte order) at offset 0 and the rest erased (0xff), exactly
/// [`FLASH_SIZE`] bytes. Little-endian: U-Boot word-swapped.
pub fn flash_image(arch: Arch, uboot: &[u8]) -> Result<Vec<u8>> {
    if !arch.is_malta() {
        return Err(Error::Io {
            context: format!("a malta flash image for {arch}: only mips and mipsel run on malta"),
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    }
    if uboot.len() > SWAP_LIMIT {
        return Err(Error::Io {
            context: format!(
                "U-Boot is {} bytes: it must end before the environment at {ENV_OFFSET:#x}",
                uboot.len()
            ),
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    }
    let mut image = if arch.is_big_endian() {
        uboot.to_vec()
    } else {
        word_swap(uboot)
    };
    image.resize(FLASH_SIZE as usize, 0xff);
    Ok(image)
}

/// Writes `DIR/flash.img` for `arch` from the U-Boot binary `uboot` (see
/// [`flash_image`]) and returns its path. With `keep_existing`, a file of
/// the right size is left as it is, so an environment saved by an earlier
/// run (or a firmware written into the flash) persists.
pub fn create_flash(dir: &Path, arch: Arch, uboot: &Path, keep_existing: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let path = dir.join("flash.img");
    if keep_existing
        && path
            .metadata()
            .map(|m| m.len() == FLASH_SIZE)
            .unwrap_or(false)
    {
        return Ok(path);
    }
    let bin = std::fs::read(uboot).map_err(|e| Error::Missing {
        what: format!("U-Boot binary ({e})"),
        path: uboot.to_owned(),
        hint: "run `testbed/uboot.sh malta|maltael`, or `scripts/deps.sh virtual` for Debian's maltael build".into(),
    })?;
    let image = flash_image(arch, &bin)?;
    std::fs::write(&path, image).map_err(Error::io(format!("writing {}", path.display())))?;
    Ok(path)
}

/// The verified RAM boot of the MIPS twins, as values: the uImage at
/// [`RamBoot::UIMAGE_ADDR`], the rootfs at [`RamBoot::ROOTFS_ADDR`] (KSEG0,
/// 160 MiB into RAM), the kernel kept below it with `mem=`, and
/// command-line phram over the rootfs (no device tree on these boards).
///
/// This is the test bed's fixed layout for proving the machine works; the
/// general planner is `lmx-builder`'s `RamLayout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamBoot {
    /// Size of the phram region: the rootfs rounded up to the erase size.
    pub rootfs_region: u64,
}

impl RamBoot {
    /// Where `tftpboot` puts the uImage (KSEG0); `bootm` decompresses it to
    /// the load address in its header, 0x80100000.
    pub const UIMAGE_ADDR: u64 = 0x8100_0000;
    /// Where `tftpboot` puts the rootfs (KSEG0).
    pub const ROOTFS_ADDR: u64 = 0x8A00_0000;
    /// The phram erase size.
    pub const ERASE: u64 = 0x1_0000;

    /// The layout for a rootfs of `rootfs_len` bytes.
    pub fn new(rootfs_len: u64) -> RamBoot {
        RamBoot {
            rootfs_region: rootfs_len.div_ceil(Self::ERASE).max(1) * Self::ERASE,
        }
    }

    /// The kernel command line: the console, `mem=` up to the rootfs, the
    /// phram device at the rootfs's *physical* address, its one partition
    /// as the root (`/dev/mtdblock0`: malta's kernel has no flash driver).
    pub fn bootargs(&self) -> String {
        let phys = kseg0_to_phys(Self::ROOTFS_ADDR).expect("KSEG0 constant");
        format!(
            "console=ttyS0,115200 mem={}M phram.phram=phram0,{phys:#x},{:#x},{:#x} mtdparts=phram0:{:#x}(rootfs) root=/dev/mtdblock0 rootfstype=squashfs init=/init",
            phys >> 20,
            self.rootfs_region,
            Self::ERASE,
            self.rootfs_region,
        )
    }

    /// The root device the kernel mounts.
    pub fn root_device(&self) -> &'static str {
        "/dev/mtdblock0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_swap_pads_swaps_and_inverts() {
        assert_eq!(
            word_swap(&[1, 2, 3, 4, 5, 6]),
            vec![4, 3, 2, 1, 0xff, 0xff, 6, 5]
        );
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let twice = word_swap(&word_swap(&data));
        assert_eq!(&twice[..1001], &data[..]);
        assert_eq!(&twice[1001..], &[0xff; 3]);
    }

    #[test]
    fn word_swap_stops_at_the_environment() {
        let data = vec![0x12u8; SWAP_LIMIT + 8];
        let mut data = data;
        data[SWAP_LIMIT..].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        data[..4].copy_from_slice(&[0xa, 0xb, 0xc, 0xd]);
        let s = word_swap(&data);
        assert_eq!(&s[..4], &[0xd, 0xc, 0xb, 0xa]);
        assert_eq!(&s[SWAP_LIMIT..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn flash_images_per_endianness() {
        let be = flash_image(Arch::Mips, b"\x10\x00\x02\x3c").unwrap();
        assert_eq!(be.len() as u64, FLASH_SIZE);
        assert_eq!(&be[..5], b"\x10\x00\x02\x3c\xff");
        let le = flash_image(Arch::Mipsel, b"\x3c\x02\x00\x10").unwrap();
        assert_eq!(&le[..5], b"\x10\x00\x02\x3c\xff");
        assert!(le[ENV_OFFSET as usize..].iter().all(|&b| b == 0xff));
        assert!(flash_image(Arch::Aarch64, b"x").is_err());
        assert!(flash_image(Arch::Mips, &vec![0; SWAP_LIMIT + 1]).is_err());
    }

    #[test]
    fn addresses_and_bootargs() {
        assert_eq!(kseg0_to_phys(0x8A00_0000), Some(0x0A00_0000));
        assert_eq!(kseg0_to_phys(0xBE00_0000), Some(FLASH_PHYS));
        assert_eq!(kseg0_to_phys(0x0A00_0000), None);
        assert_eq!(phys_to_kseg0(0x0010_0000), 0x8010_0000);
        let r = RamBoot::new(0xf_1000);
        assert_eq!(r.rootfs_region, 0x10_0000);
        assert_eq!(
            r.bootargs(),
            "console=ttyS0,115200 mem=160M phram.phram=phram0,0xa000000,0x100000,0x10000 mtdparts=phram0:0x100000(rootfs) root=/dev/mtdblock0 rootfstype=squashfs init=/init"
        );
    }

    #[test]
    fn flash_file_is_kept_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let uboot = dir.path().join("u-boot.bin");
        std::fs::write(&uboot, b"\x3c\x02\x00\x10").unwrap();
        let f = create_flash(dir.path(), Arch::Mipsel, &uboot, true).unwrap();
        let mut data = std::fs::read(&f).unwrap();
        data[ENV_OFFSET as usize] = 0;
        std::fs::write(&f, &data).unwrap();
        let g = create_flash(dir.path(), Arch::Mipsel, &uboot, true).unwrap();
        assert_eq!(std::fs::read(&g).unwrap()[ENV_OFFSET as usize], 0);
        let h = create_flash(dir.path(), Arch::Mipsel, &uboot, false).unwrap();
        assert_eq!(std::fs::read(&h).unwrap()[ENV_OFFSET as usize], 0xff);
    }
}
