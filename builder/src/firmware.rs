//! The flashable firmware: the kernel image and the rootfs, each padded to
//! the flash erase block and laid out from the start of the board's
//! firmware partition, plus one concatenated `firmware.bin`.
//!
//! This exists so that `lmx flash` never computes an offset: the layout
//! records for every part its flash offset, its padded size and the CRC32
//! of the padded bytes (what U-Boot's `crc32` of the flash range will
//! print after the write). Padding is `0xff`, the erased state of NOR and
//! NAND, so a padded write leaves the tail as an erase would.

use lmx_boards::Board;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// One part of the firmware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwarePart {
    /// `kernel` or `rootfs`.
    pub name: String,
    /// The artifact it comes from (file name in the artifact directory).
    pub source: String,
    /// Offset inside `firmware.bin`.
    pub image_offset: u64,
    /// Absolute offset in the flash device.
    pub flash_offset: u64,
    /// Bytes of data before padding.
    pub data_size: u64,
    /// Bytes after padding to the erase block.
    pub padded_size: u64,
    /// CRC32 of the padded bytes.
    pub crc32: u32,
    /// SHA-256 of the padded bytes (hex).
    pub sha256: String,
}

/// The firmware laid out for the board's firmware partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareLayout {
    /// Partition name (`flash.partitions[].name` with role `firmware`).
    pub partition: String,
    /// Partition offset in the flash device.
    pub partition_offset: u64,
    /// Partition size.
    pub partition_size: u64,
    /// Erase block the parts are padded to.
    pub erase_block: u64,
    /// Flash technology (`nor`, `spi-nor`, `nand`, `ubi`, `emmc`).
    pub flash_type: String,
    /// U-Boot address of the partition start on memory-mapped flash.
    pub uboot_addr: Option<u64>,
    /// File name of the concatenated image.
    pub image: String,
    /// Its size (sum of the padded parts).
    pub image_size: u64,
    /// Its CRC32.
    pub image_crc32: u32,
    /// The parts, in flash order.
    pub parts: Vec<FirmwarePart>,
}

/// Why no firmware could be laid out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirmwareError {
    /// The padded parts do not fit the partition.
    #[error(
        "the firmware needs {need:#x} bytes ({parts}) but partition {partition} holds {size:#x}"
    )]
    TooLarge {
        /// Bytes needed.
        need: u64,
        /// What the parts are.
        parts: String,
        /// Partition.
        partition: String,
        /// Its size.
        size: u64,
    },
}

/// Lays the parts out, or says why the board has no firmware layout
/// (`Ok(Err(reason))`: no firmware partition, unknown erase block).
pub fn plan_firmware(
    board: &Board,
    parts: &[(&str, &str, &[u8])],
) -> Result<Result<(FirmwareLayout, Vec<u8>), String>, FirmwareError> {
    let Some(p) = board.flash.firmware().next() else {
        return Ok(Err(format!(
            "board {} has no partition with role firmware: no firmware image",
            board.name
        )));
    };
    let Some(erase) = board.flash.erase_block.filter(|e| *e > 0) else {
        return Ok(Err(format!(
            "board {}: flash.erase_block unknown: no firmware image",
            board.name
        )));
    };
    let need: u64 = parts
        .iter()
        .map(|(_, _, d)| (d.len() as u64).div_ceil(erase).max(1) * erase)
        .sum();
    if need > p.size {
        return Err(FirmwareError::TooLarge {
            need,
            parts: parts
                .iter()
                .map(|(n, _, d)| format!("{n} {:#x}", d.len()))
                .collect::<Vec<_>>()
                .join(", "),
            partition: p.name.clone(),
            size: p.size,
        });
    }
    let mut image = Vec::with_capacity(need as usize);
    let mut out = Vec::new();
    for (name, source, data) in parts {
        let offset = image.len() as u64;
        let padded = (data.len() as u64).div_ceil(erase).max(1) * erase;
        image.extend_from_slice(data);
        image.resize((offset + padded) as usize, 0xff);
        let bytes = &image[offset as usize..];
        out.push(FirmwarePart {
            name: name.to_string(),
            source: source.to_string(),
            image_offset: offset,
            flash_offset: p.offset + offset,
            data_size: data.len() as u64,
            padded_size: padded,
            crc32: crc32fast::hash(bytes),
            sha256: hex(&sha2::Sha256::digest(bytes)),
        });
    }
    let layout = FirmwareLayout {
        partition: p.name.clone(),
        partition_offset: p.offset,
        partition_size: p.size,
        erase_block: erase,
        flash_type: board.flash.kind.as_str().to_string(),
        uboot_addr: board.flash_uboot_addr(p.offset).and_then(Result::ok),
        image: "firmware.bin".into(),
        image_size: image.len() as u64,
        image_crc32: crc32fast::hash(&image),
        parts: out,
    };
    Ok(Ok((layout, image)))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_padded_and_placed_in_the_partition() {
        let b = lmx_boards::Catalog::builtin()
            .resolve("gl-ar750")
            .unwrap()
            .board;
        let k = vec![1u8; 0x1_2345];
        let r = vec![2u8; 0x3_0000];
        let (l, img) = plan_firmware(
            &b,
            &[("kernel", "uImage", &k), ("rootfs", "rootfs.squashfs", &r)],
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.partition, "firmware");
        assert_eq!(l.uboot_addr, Some(0x9f06_0000));
        assert_eq!(l.parts[0].flash_offset, 0x6_0000);
        assert_eq!(l.parts[0].padded_size, 0x2_0000);
        assert_eq!(l.parts[1].flash_offset, 0x8_0000);
        assert_eq!(l.parts[1].padded_size, 0x3_0000);
        assert_eq!(img.len(), 0x5_0000);
        assert_eq!(img[0x1_2345], 0xff);
        assert_eq!(l.parts[0].crc32, crc32fast::hash(&img[..0x2_0000]));
    }

    #[test]
    fn too_large_is_refused() {
        let b = lmx_boards::Catalog::builtin()
            .resolve("gl-ar750")
            .unwrap()
            .board;
        let big = vec![0u8; 0x100_0000];
        let e = plan_firmware(&b, &[("rootfs", "r", &big)]).unwrap_err();
        assert!(e.to_string().contains("partition firmware"), "{e}");
    }
}
