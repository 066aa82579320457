//! Where the environment lives and how its header is laid out.
//!
//! The same variables are stored differently per board: the size comes
//! from `CONFIG_ENV_SIZE`, the location from `CONFIG_ENV_OFFSET` (or
//! `CONFIG_ENV_ADDR`), a second copy exists with
//! `CONFIG_SYS_REDUNDAND_ENVIRONMENT`, the CRC is stored in the CPU's byte
//! order, and the flag byte of a redundant copy is a boolean on NOR-like
//! flash and a counter elsewhere. [`EnvLayout`] gathers these facts in one
//! value that a board file can provide and every other module reads.

use crate::error::EnvError;
use std::fmt;

/// Byte order of the stored CRC (the target CPU's byte order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Little-endian (ARM, most MIPS routers running `mipsel`, x86, RISC-V).
    #[default]
    Little,
    /// Big-endian (for example Atheros/QCA MIPS).
    Big,
}

impl Endian {
    /// Reads a `u32` in this byte order.
    pub fn read_u32(self, bytes: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        }
    }

    /// Writes a `u32` in this byte order.
    pub fn write_u32(self, value: u32) -> [u8; 4] {
        match self {
            Endian::Little => value.to_le_bytes(),
            Endian::Big => value.to_be_bytes(),
        }
    }
}

impl fmt::Display for Endian {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endian::Little => "little-endian",
            Endian::Big => "big-endian",
        })
    }
}

/// How the flag byte of a redundant environment marks the current copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FlagStyle {
    /// NOR, SPI-NOR and DataFlash: 1 = active, 0 = obsolete. A save writes
    /// the new copy with 1 and then clears the old copy's flag to 0, which
    /// NOR can do without an erase.
    Boolean,
    /// NAND, UBI, MMC and plain files: a counter incremented (mod 256) on
    /// every save; the greater one is newer, except that 0 beats 255.
    #[default]
    Counter,
}

impl fmt::Display for FlagStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlagStyle::Boolean => "boolean",
            FlagStyle::Counter => "counter",
        })
    }
}

/// Flag value of the current copy in the boolean style.
pub const FLAG_ACTIVE: u8 = 1;
/// Flag value of the superseded copy in the boolean style.
pub const FLAG_OBSOLETE: u8 = 0;

/// Location and format of an environment inside an image (flash dump,
/// partition dump or a bare environment file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnvLayout {
    /// Byte offset of the first copy inside the image.
    pub offset: u64,
    /// Size of one copy, header included (`CONFIG_ENV_SIZE`).
    pub size: usize,
    /// Byte offset of the second copy, for redundant environments.
    pub redundant: Option<u64>,
    /// Flag style of a redundant environment (ignored for a single copy).
    pub flags: FlagStyle,
    /// Byte order of the stored CRC.
    pub endian: Endian,
}

impl EnvLayout {
    /// A single little-endian copy of `size` bytes at `offset`.
    pub fn single(offset: u64, size: usize) -> Self {
        EnvLayout {
            offset,
            size,
            redundant: None,
            flags: FlagStyle::Counter,
            endian: Endian::Little,
        }
    }

    /// Two little-endian copies of `size` bytes at `offset` and `offset2`.
    pub fn redundant(offset: u64, size: usize, offset2: u64, flags: FlagStyle) -> Self {
        EnvLayout {
            offset,
            size,
            redundant: Some(offset2),
            flags,
            endian: Endian::Little,
        }
    }

    /// The same layout with another byte order.
    pub fn with_endian(self, endian: Endian) -> Self {
        EnvLayout { endian, ..self }
    }

    /// True when there are two copies (and so a flag byte per copy).
    pub fn is_redundant(&self) -> bool {
        self.redundant.is_some()
    }

    /// Header length: the CRC, plus the flag byte when redundant.
    pub fn header_len(&self) -> usize {
        if self.is_redundant() {
            5
        } else {
            4
        }
    }

    /// Length of the data area of one copy (`ENV_SIZE` in U-Boot).
    pub fn data_len(&self) -> usize {
        self.size.saturating_sub(self.header_len())
    }

    /// Offsets of the copies, first copy first.
    pub fn copy_offsets(&self) -> Vec<u64> {
        let mut offsets = vec![self.offset];
        offsets.extend(self.redundant);
        offsets
    }

    /// Image length needed to hold every copy.
    pub fn required_len(&self) -> u64 {
        self.copy_offsets()
            .iter()
            .map(|o| o.saturating_add(self.size as u64))
            .max()
            .unwrap_or(0)
    }

    /// Rejects layouts that cannot hold an environment or whose copies
    /// overlap.
    pub fn validate(&self) -> Result<(), EnvError> {
        // Header plus at least the terminating NUL.
        let minimum = self.header_len() + 1;
        if self.size < minimum {
            return Err(EnvError::InvalidLayout(format!(
                "size {:#x} is smaller than the {minimum} bytes of header and terminator",
                self.size
            )));
        }
        for offset in self.copy_offsets() {
            if offset.checked_add(self.size as u64).is_none() {
                return Err(EnvError::InvalidLayout(format!(
                    "a copy of {:#x} bytes at {offset:#x} ends past the largest offset",
                    self.size
                )));
            }
        }
        if let Some(second) = self.redundant {
            let (a, b) = (self.offset, second);
            let size = self.size as u64;
            // Both ends fit a u64: checked just above.
            if a < b + size && b < a + size {
                return Err(EnvError::InvalidLayout(format!(
                    "the copies at {a:#x} and {b:#x} overlap (size {size:#x} each)"
                )));
            }
        }
        Ok(())
    }

    /// Checks that an image of `image_len` bytes holds every copy.
    pub fn check_fits(&self, image_len: u64) -> Result<(), EnvError> {
        for (copy, offset) in self.copy_offsets().into_iter().enumerate() {
            let end = offset.saturating_add(self.size as u64);
            if end > image_len {
                return Err(EnvError::Truncated {
                    copy,
                    offset,
                    end,
                    image_len,
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for EnvLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x} bytes at {:#x}", self.size, self.offset)?;
        if let Some(second) = self.redundant {
            write!(f, " and {second:#x} ({} flags)", self.flags)?;
        }
        write!(f, ", {}", self.endian)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_data_lengths() {
        let single = EnvLayout::single(0, 0x40000);
        assert_eq!(single.header_len(), 4);
        assert_eq!(single.data_len(), 0x40000 - 4);
        let redundant = EnvLayout::redundant(0, 0x2000, 0x2000, FlagStyle::Counter);
        assert_eq!(redundant.header_len(), 5);
        assert_eq!(redundant.data_len(), 0x2000 - 5);
        assert_eq!(redundant.copy_offsets(), vec![0, 0x2000]);
        assert_eq!(redundant.required_len(), 0x4000);
    }

    #[test]
    fn validation() {
        assert!(EnvLayout::single(0, 4).validate().is_err());
        assert!(EnvLayout::single(0, 5).validate().is_ok());
        assert!(EnvLayout::redundant(0, 0x100, 0x80, FlagStyle::Boolean)
            .validate()
            .is_err());
        assert!(EnvLayout::redundant(0x100, 0x100, 0, FlagStyle::Boolean)
            .validate()
            .is_ok());
    }

    #[test]
    fn offsets_near_the_end_of_u64_are_refused_not_wrapped() {
        // Found by the `env` fuzz target: `offset + size` overflowed, and
        // in a release build wrapped to a small end that "fit".
        let layout = EnvLayout::single(u64::MAX - 0xf, 0x10);
        assert!(matches!(layout.validate(), Err(EnvError::InvalidLayout(_))));
        assert_eq!(layout.required_len(), u64::MAX);
        assert!(matches!(
            layout.check_fits(0x100),
            Err(EnvError::Truncated { end: u64::MAX, .. })
        ));
        let redundant = EnvLayout::redundant(0, 0x10, u64::MAX - 0x8, FlagStyle::Counter);
        assert!(redundant.validate().is_err());
        assert!(crate::EnvImage::from_dump(layout, &[0u8; 0x100]).is_err());
    }

    #[test]
    fn fits() {
        let layout = EnvLayout::redundant(0x100, 0x100, 0x300, FlagStyle::Counter);
        assert!(layout.check_fits(0x400).is_ok());
        assert_eq!(
            layout.check_fits(0x3ff),
            Err(EnvError::Truncated {
                copy: 1,
                offset: 0x300,
                end: 0x400,
                image_len: 0x3ff
            })
        );
    }

    #[test]
    fn endian_round_trip() {
        assert_eq!(Endian::Big.write_u32(0x11223344), [0x11, 0x22, 0x33, 0x44]);
        assert_eq!(
            Endian::Little.read_u32([0x44, 0x33, 0x22, 0x11]),
            0x11223344
        );
    }
}
