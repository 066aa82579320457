//! `lmx-env`: read, edit and write U-Boot environments.
//!
//! The U-Boot environment holds `bootcmd`, `bootargs`, load addresses and
//! MAC addresses. Porting a board starts with reading it from a flash
//! dump; installing firmware often means changing it safely. No existing
//! crate implements the whole format (redundant copies, both flag styles,
//! both byte orders, copy selection), so lmx has its own codec, written
//! from U-Boot's documented behaviour and checked against `mkenvimage`
//! and `fw_printenv`.
//!
//! # Format
//!
//! One copy of `CONFIG_ENV_SIZE` bytes is
//!
//! ```text
//! CRC32 (4 bytes, target byte order) | flag (1 byte, redundant only) |
//! name=value\0 name=value\0 ... \0 | padding up to the size
//! ```
//!
//! The CRC (IEEE, as `crc32fast` computes it) covers the whole data area,
//! padding included, but not the flag. Redundant environments keep two
//! such copies; the flag byte says which is current (see [`select_copy`]).
//!
//! # Use
//!
//! ```
//! use lmx_env::{EnvImage, EnvLayout, Environment};
//!
//! let layout = EnvLayout::single(0x100, 0x400);
//! let mut dump = vec![0xff; 0x800];
//! // Write a fresh environment into an erased area...
//! let env = Environment::from_pairs([("bootdelay", "2")])?;
//! EnvImage::blank(layout)?.plan_write(&env)?.apply(&mut dump)?;
//! // ...read it back, change it, write it again.
//! let image = EnvImage::from_dump(layout, &dump)?;
//! let mut env = image.environment().clone();
//! env.set("bootcmd", "run boot_flash")?;
//! image.plan_write(&env)?.apply(&mut dump)?;
//! assert_eq!(
//!     EnvImage::from_dump(layout, &dump)?.environment().get("bootcmd"),
//!     Some(&b"run boot_flash"[..])
//! );
//! # Ok::<(), lmx_env::EnvError>(())
//! ```
//!
//! The codec does no I/O: callers read the copies' bytes, and write the
//! [`Patch`]es of an [`EnvWrite`] wherever the image lives. For images in
//! files, [`file`] reads the copies by seeking, writes atomically (a
//! temporary file renamed over the image) and reads the result back.

#![warn(missing_docs)]

mod diff;
mod environment;
mod error;
pub mod file;
pub mod fuzzing;
mod image;
mod layout;
mod probe;
pub mod request;
mod select;
mod text;

pub use diff::{diff, diff_text, Change, DiffSummary};
pub use environment::{validate_key, validate_value, Decoded, Environment};
pub use error::{CopyIndex, CrcCheck, EnvError, Warning};
pub use image::{encode_copy, CopyInfo, EnvCopy, EnvImage, EnvWrite, Patch, PatchKind};
pub use layout::{Endian, EnvLayout, FlagStyle, FLAG_ACTIVE, FLAG_OBSOLETE};
pub use probe::{probe_at, scan, Candidate, COMMON_SIZES};
pub use select::{select_copy, CopyState, Reason, Selection};
pub use text::{parse_text, text_line, to_text};
