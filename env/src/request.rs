//! Where the environment is in a file: what the user gave, what the
//! board file says, and what the file's length implies, resolved to one
//! [`EnvLayout`].
//!
//! A [`LayoutRequest`] holds the explicit values (any may be missing)
//! and the board's [`BoardEnv`]; [`LayoutRequest::resolve`] applies the
//! rules: an explicit value wins over the board, a bare request for a
//! redundant copy takes the board's second offset or the slot right
//! after the first, a file without a board is one copy to its end, and
//! a virtual board's single pflash bank file is addressed inside the
//! bank ([`LayoutRequest::within_bank`]). Nothing here reads a file.

use crate::{Endian, EnvError, EnvLayout, FlagStyle};

/// What a board file says about its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardEnv {
    /// The board's name, for messages.
    pub name: String,
    /// Flash offset of the (first) copy (`CONFIG_ENV_OFFSET`).
    pub offset: u64,
    /// Size of one copy (`CONFIG_ENV_SIZE`), when known.
    pub size: Option<u64>,
    /// Flash offset of the second copy (`CONFIG_ENV_OFFSET_REDUND`).
    pub redundant: Option<u64>,
    /// Flag style U-Boot's flash driver saves with.
    pub flags: FlagStyle,
    /// Byte order of the stored CRC.
    pub endian: Endian,
    /// Size of one pflash bank of a virtual board with several banks
    /// (each bank is its own file).
    pub pflash_bank: Option<u64>,
}

impl BoardEnv {
    /// The environment facts of `board` (its `[flash.env]`, flash kind,
    /// CPU byte order and virtual flash banks).
    pub fn of(board: &lmx_boards::Board) -> Result<BoardEnv, LayoutError> {
        let Some(env) = &board.flash.env else {
            return Err(LayoutError::BoardHasNoEnv {
                board: board.name.clone(),
            });
        };
        // U-Boot's NOR and SPI flash drivers save with boolean flags; NAND,
        // UBI and MMC with a counter.
        let flags = match board.flash.kind {
            lmx_boards::FlashKind::Nor | lmx_boards::FlashKind::SpiNor => FlagStyle::Boolean,
            _ => FlagStyle::Counter,
        };
        // The CRC is written in the CPU's byte order unless the file says otherwise.
        let endian = match env.endian.unwrap_or(board.cpu.endian) {
            lmx_boards::Endian::Big => Endian::Big,
            lmx_boards::Endian::Little => Endian::Little,
        };
        Ok(BoardEnv {
            name: board.name.clone(),
            offset: env.offset,
            size: env.size,
            redundant: env.redundant_offset,
            flags,
            endian,
            pflash_bank: board
                .qemu
                .as_ref()
                .filter(|q| q.pflash_banks.unwrap_or(0) > 1)
                .and_then(|q| q.pflash_bank_size),
        })
    }
}

/// The layout as asked for: explicit values, and the board's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutRequest {
    /// Offset of the (first) copy in the file.
    pub offset: Option<u64>,
    /// Size of one copy.
    pub size: Option<u64>,
    /// Two copies: `Some(Some(offset2))`, or `Some(None)` for the board's
    /// second copy (else the slot right after the first).
    pub redundant: Option<Option<u64>>,
    /// Flag style of a redundant environment.
    pub flags: Option<FlagStyle>,
    /// Byte order of the CRC.
    pub endian: Option<Endian>,
    /// The board whose flash the file is a dump of.
    pub board: Option<BoardEnv>,
}

/// The environment moved into one pflash bank file ([`LayoutRequest::within_bank`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BankShift {
    /// The environment's offset in the whole flash.
    pub flash_offset: u64,
    /// Its offset in the bank file.
    pub bank_offset: u64,
    /// The bank's number.
    pub bank: u64,
}

/// Why no layout could be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum LayoutError {
    /// The board file has no `[flash.env]`.
    #[error("board {board} does not say where its U-Boot environment is (no [flash.env])")]
    #[diagnostic(help(
        "give --offset and --size (CONFIG_ENV_OFFSET, CONFIG_ENV_SIZE), \
         and add them to the board file's [flash.env]"
    ))]
    BoardHasNoEnv {
        /// The board.
        board: String,
    },
    /// Without a size, the copy runs to the end of the file; but the
    /// offset is already past it.
    #[error("--offset {offset:#x} is at or past the end of {image} ({len:#x} bytes)")]
    #[diagnostic(help("check --offset"))]
    OffsetPastEnd {
        /// The offset.
        offset: u64,
        /// The file.
        image: String,
        /// Its length.
        len: u64,
    },
    /// No size was given and none follows.
    #[error("the environment size is needed{why}")]
    #[diagnostic(help("give --size (CONFIG_ENV_SIZE), e.g. --size 0x40000"))]
    SizeNeeded {
        /// Why it does not follow, e.g. ` for a redundant environment`.
        why: String,
    },
    /// The size does not fit in memory.
    #[error("--size {size:#x} is too large")]
    SizeTooLarge {
        /// The size.
        size: u64,
    },
    /// Two copies, and no way to know how U-Boot picks between them.
    #[error(
        "a redundant environment needs --flags: the two styles pick and update copies differently"
    )]
    #[diagnostic(help(
        "--flags boolean for NOR, SPI-NOR and DataFlash; \
         --flags counter for NAND, UBI, MMC and files"
    ))]
    FlagsNeeded,
    /// A flag style for a single copy.
    #[error("--flags only applies to a redundant environment")]
    #[diagnostic(help("add --redundant [OFFSET2]"))]
    FlagsWithoutRedundant,
    /// The resolved layout is inconsistent (overlapping copies, ...).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Env(#[from] EnvError),
}

impl LayoutRequest {
    /// A virtual board keeps each flash bank in its own file: given one
    /// bank (a file of exactly one bank's length, without an explicit
    /// offset), the board's flash offsets are taken inside the bank that
    /// holds the environment. Returns the shift when there was one.
    pub fn within_bank(&mut self, image_len: u64) -> Option<BankShift> {
        if self.offset.is_some() {
            return None;
        }
        let b = self.board.as_mut()?;
        let bank = b
            .pflash_bank
            .filter(|&bank| image_len == bank && b.offset >= bank)?;
        let base = b.offset - b.offset % bank;
        let shift = BankShift {
            flash_offset: b.offset,
            bank_offset: b.offset - base,
            bank: base / bank,
        };
        b.offset -= base;
        b.redundant = b.redundant.map(|r| r.saturating_sub(base));
        Some(shift)
    }

    /// Works out the layout of `image` (named in errors), whose length is
    /// `image_len` (`None` for a file still to be created).
    pub fn resolve(&self, image: &str, image_len: Option<u64>) -> Result<EnvLayout, LayoutError> {
        let board = self.board.as_ref();
        let offset = self.offset.or(board.map(|b| b.offset)).unwrap_or(0);
        // An explicit second offset wins over the board; a bare request
        // takes the board's second copy if it has one, else the slot
        // right after the first copy.
        let redundant: Option<Option<u64>> = match (&self.redundant, board) {
            (Some(Some(second)), _) => Some(Some(*second)),
            (Some(None), Some(b)) => Some(b.redundant),
            (Some(None), None) => Some(None),
            (None, Some(b)) => b.redundant.map(Some),
            (None, None) => None,
        };
        let size = self.size.or(board.and_then(|b| b.size));
        let size = match (size, &redundant, image_len) {
            (Some(size), _, _) => size,
            (None, None, Some(len)) if board.is_none() && len > offset => len - offset,
            (None, None, Some(len)) if board.is_none() => {
                return Err(LayoutError::OffsetPastEnd {
                    offset,
                    image: image.into(),
                    len,
                })
            }
            _ => {
                let why = if let Some(b) = board {
                    format!(" (board {} does not know CONFIG_ENV_SIZE)", b.name)
                } else if redundant.is_some() {
                    " for a redundant environment".to_string()
                } else {
                    " to create a new image".to_string()
                };
                return Err(LayoutError::SizeNeeded { why });
            }
        };
        let size = usize::try_from(size).map_err(|_| LayoutError::SizeTooLarge { size })?;
        let mut layout = EnvLayout::single(offset, size);
        if let Some(second) = redundant {
            let flags = match (self.flags, board) {
                (Some(f), _) => f,
                (None, Some(b)) => b.flags,
                (None, None) => return Err(LayoutError::FlagsNeeded),
            };
            let second = second.unwrap_or(offset + size as u64);
            layout = EnvLayout::redundant(offset, size, second, flags);
        } else if self.flags.is_some() {
            return Err(LayoutError::FlagsWithoutRedundant);
        }
        let endian = self.endian.or(board.map(|b| b.endian)).unwrap_or_default();
        layout = layout.with_endian(endian);
        layout.validate()?;
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> BoardEnv {
        BoardEnv {
            name: "b".into(),
            offset: 0x4_040_000,
            size: Some(0x40000),
            redundant: None,
            flags: FlagStyle::Boolean,
            endian: Endian::Big,
            pflash_bank: Some(0x4_000_000),
        }
    }

    #[test]
    fn a_bare_file_is_one_copy_to_its_end() {
        let r = LayoutRequest::default();
        assert_eq!(
            r.resolve("f", Some(0x2000)).unwrap(),
            EnvLayout::single(0, 0x2000)
        );
        let r = LayoutRequest {
            offset: Some(0x2000),
            ..Default::default()
        };
        assert!(matches!(
            r.resolve("f", Some(0x2000)),
            Err(LayoutError::OffsetPastEnd { .. })
        ));
        assert!(matches!(
            LayoutRequest::default().resolve("f", None),
            Err(LayoutError::SizeNeeded { .. })
        ));
    }

    #[test]
    fn the_board_fills_in_what_was_not_given_and_flags_win_over_it() {
        let r = LayoutRequest {
            board: Some(board()),
            ..Default::default()
        };
        let l = r.resolve("f", Some(1 << 27)).unwrap();
        assert_eq!(
            l,
            EnvLayout::single(0x4_040_000, 0x40000).with_endian(Endian::Big)
        );
        let r = LayoutRequest {
            offset: Some(0),
            endian: Some(Endian::Little),
            redundant: Some(None),
            board: Some(board()),
            ..Default::default()
        };
        let l = r.resolve("f", Some(1 << 27)).unwrap();
        assert_eq!(
            l,
            EnvLayout::redundant(0, 0x40000, 0x40000, FlagStyle::Boolean)
        );
    }

    #[test]
    fn one_bank_file_is_addressed_inside_the_bank() {
        let mut r = LayoutRequest {
            board: Some(board()),
            ..Default::default()
        };
        assert_eq!(r.within_bank(1 << 27), None, "a whole-flash dump");
        let shift = r.within_bank(0x4_000_000).unwrap();
        assert_eq!(
            shift,
            BankShift {
                flash_offset: 0x4_040_000,
                bank_offset: 0x40000,
                bank: 1
            }
        );
        assert_eq!(r.resolve("f", Some(0x4_000_000)).unwrap().offset, 0x40000);
    }

    #[test]
    fn redundant_copies_need_a_flag_style_and_single_ones_refuse_it() {
        let r = LayoutRequest {
            size: Some(0x2000),
            redundant: Some(Some(0x8000)),
            ..Default::default()
        };
        assert_eq!(r.resolve("f", Some(0x10000)), Err(LayoutError::FlagsNeeded));
        let r = LayoutRequest {
            size: Some(0x2000),
            flags: Some(FlagStyle::Counter),
            ..Default::default()
        };
        assert_eq!(
            r.resolve("f", Some(0x10000)),
            Err(LayoutError::FlagsWithoutRedundant)
        );
    }
}
