//! `lmx-flasher`: plans a flash write from U-Boot that cannot brick the board.
//!
//! People flash routers by pasting `erase`/`cp.b` lines whose addresses
//! they worked out by hand; one wrong digit overwrites the boot loader or
//! the Wi-Fi calibration data. This crate turns the board's flash map
//! (`[flash]` in the board file) and an image (the firmware `lmx build`
//! made, or any file for a named partition) into a [`FlashPlan`]: a value
//! that can be printed, diffed and tested, holding every U-Boot command in
//! order, what each one must print, and what state the flash is in if it
//! fails.
//!
//! The crate is sans-I/O: it never touches a console or a socket, and
//! reads files only in [`source`] (the image, or a build's manifest, for
//! the size and CRC32 the plan checks). `lmx-session`'s `FlashExecutor`
//! runs the plan step by step through `UBootShell`.
//!
//! Every plan has the same shape, whatever the flash type:
//!
//! 1. **probe**: the commands the plan needs exist (`help CMD`) and the
//!    device answers (`sf probe`, `ubi part`);
//! 2. **backup** (optional): the region about to be erased is read and
//!    uploaded to the host with `tftpput`, checked by CRC32;
//! 3. **load**: `tftpboot` into a RAM buffer, then `${filesize}` and
//!    `crc32` of the RAM copy against the host's values. Nothing is erased
//!    before this passed;
//! 4. **erase** and **write** (`erase`/`cp.b`, `sf`, `nand`, `ubi`, `mtd`);
//! 5. **verify**: `crc32` of the flash range (memory-mapped NOR) or of a
//!    second RAM buffer the flash was read back into.
//!
//! [`FlashPlan::build`] refuses, before any command exists, a write that
//! overlaps a protected partition or the environment, runs past the
//! partition, the device or the area U-Boot can address, is misaligned to
//! the erase block, is bigger than the partition, or writes raw NAND/`mtd`
//! into a UBI-managed region; each refusal is a [`PlanError`] that says
//! what was expected, what was seen and what to try.

#![warn(missing_docs)]

pub mod output;
pub mod plan;
pub mod source;
pub mod state;

pub use plan::{
    Backup, BackupVia, Check, FlashImage, FlashPlan, FlashRequest, Method, Phase, PlanError,
    RamBuffers, Step, Target,
};
pub use source::{FlashSource, SourceError};
pub use state::FlashState;
