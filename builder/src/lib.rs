//! `lmx-builder`: the artifacts a router boots from RAM over TFTP or
//! from flash, built on the host without `mkimage`, `mksquashfs`, `lzma`
//! or `fdtput`.
//!
//! - [`uimage`]: U-Boot legacy images (kernel, ramdisk, script, firmware),
//!   byte-identical to `mkimage`, and their verification.
//! - [`fit`]: FIT images (kernel + DTB + optional ramdisk, hashed, with a
//!   default configuration), written and read.
//! - [`fdt`]: a read-modify-write device tree codec; [`dtedit`] the edits a
//!   RAM boot needs (`/chosen/bootargs`, the phram `/reserved-memory` node,
//!   `status`, the appended-DTB kernel of old MIPS U-Boots).
//! - [`compress`]: LZMA in the legacy `.lzma` container U-Boot reads, and gzip.
//! - [`squashfs`]: a reproducible squashfs root filesystem from a directory.
//!
//! Everything here is a pure function of its inputs (and
//! `SOURCE_DATE_EPOCH`); nothing talks to a board. The RAM layout planner
//! and the boot plan build on these pieces.
#![warn(missing_docs)]

pub mod compress;
pub mod dtedit;
pub mod fdt;
pub mod fit;
pub mod squashfs;
pub mod uimage;
