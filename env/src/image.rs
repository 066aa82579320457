//! Reading and writing environment copies inside a larger image.
//!
//! An environment rarely comes alone: it sits at an offset inside a flash
//! dump whose other bytes (boot loader, calibration data, firmware) must
//! survive an edit untouched. This module works on the copies' bytes only
//! and stays free of I/O: [`EnvImage::parse`] takes the copies' slices,
//! and [`EnvImage::plan_write`] returns an [`EnvWrite`], a list of
//! [`Patch`]es (offset plus bytes) that a caller prints for a dry run,
//! applies to a buffer, or writes into a file.
//!
//! [`EnvCopy`] is the zero-copy view of one copy (CRC, optional flag byte,
//! data area), used both to parse and to build copies.

use crate::environment::Environment;
use crate::error::{CopyIndex, CrcCheck, EnvError, Warning};
use crate::layout::{EnvLayout, FlagStyle, FLAG_ACTIVE, FLAG_OBSOLETE};
use crate::select::{select_copy, CopyState, Selection};
use std::fmt;

/// A view of one environment copy: 4-byte CRC, optional flag byte, data.
#[derive(Clone, Debug)]
pub struct EnvCopy<T: AsRef<[u8]>> {
    buf: T,
    flagged: bool,
}

impl<T: AsRef<[u8]>> EnvCopy<T> {
    /// Wraps `buf`; `flagged` says whether a flag byte follows the CRC.
    /// Fails when the buffer cannot hold the header and a terminator.
    pub fn new_checked(buf: T, flagged: bool) -> Result<Self, EnvError> {
        let header = if flagged { 5 } else { 4 };
        if buf.as_ref().len() < header + 1 {
            return Err(EnvError::InvalidLayout(format!(
                "a copy of {} bytes cannot hold the {header}-byte header and a terminator",
                buf.as_ref().len()
            )));
        }
        Ok(EnvCopy { buf, flagged })
    }

    fn header_len(&self) -> usize {
        if self.flagged {
            5
        } else {
            4
        }
    }

    /// The stored CRC, read in `endian` byte order.
    pub fn stored_crc(&self, endian: crate::Endian) -> u32 {
        let b = self.buf.as_ref();
        endian.read_u32([b[0], b[1], b[2], b[3]])
    }

    /// The flag byte, if this copy has one.
    pub fn flag(&self) -> Option<u8> {
        self.flagged.then(|| self.buf.as_ref()[4])
    }

    /// The data area (variables, terminator, padding).
    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..]
    }

    /// CRC-32 (IEEE) of the data area.
    pub fn computed_crc(&self) -> u32 {
        crc32fast::hash(self.data())
    }

    /// True when every byte is 0xff (erased flash).
    pub fn is_erased(&self) -> bool {
        self.buf.as_ref().iter().all(|&b| b == 0xff)
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EnvCopy<T> {
    /// Writes the CRC in `endian` byte order.
    pub fn set_crc(&mut self, endian: crate::Endian, crc: u32) {
        self.buf.as_mut()[..4].copy_from_slice(&endian.write_u32(crc));
    }

    /// Writes the flag byte (ignored when the copy has none).
    pub fn set_flag(&mut self, flag: u8) {
        if self.flagged {
            self.buf.as_mut()[4] = flag;
        }
    }

    /// The data area, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let header = self.header_len();
        &mut self.buf.as_mut()[header..]
    }

    /// Recomputes the CRC over the data area and stores it.
    pub fn fill_crc(&mut self, endian: crate::Endian) {
        let crc = self.computed_crc();
        self.set_crc(endian, crc);
    }
}

/// What was found in one copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyInfo {
    /// CRC check details (offset, stored and computed CRC, erased).
    pub check: CrcCheck,
    /// The flag byte, for redundant environments.
    pub flag: Option<u8>,
}

impl CopyInfo {
    /// The stored CRC matches the data.
    pub fn crc_ok(&self) -> bool {
        self.check.stored == self.check.computed
    }
}

/// Encodes `env` as one complete copy of `layout.size` bytes.
///
/// The data area is padded with `pad` after the terminator; `flag` is
/// written only for redundant layouts. Fails, before producing anything,
/// when the variables do not fit.
pub fn encode_copy(
    layout: &EnvLayout,
    env: &Environment,
    flag: u8,
    pad: u8,
) -> Result<Vec<u8>, EnvError> {
    layout.validate()?;
    let encoded = env.encode();
    if encoded.len() > layout.data_len() {
        return Err(EnvError::TooLarge {
            needed: encoded.len(),
            available: layout.data_len(),
            size: layout.size,
            header: layout.header_len(),
        });
    }
    let mut copy = EnvCopy::new_checked(vec![pad; layout.size], layout.is_redundant())?;
    copy.data_mut()[..encoded.len()].copy_from_slice(&encoded);
    copy.set_flag(flag);
    copy.fill_crc(layout.endian);
    Ok(copy.into_inner())
}

/// A parsed environment area: the copies, which one U-Boot uses, and its
/// variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvImage {
    layout: EnvLayout,
    copies: Vec<CopyInfo>,
    selection: Option<Selection>,
    env: Environment,
    warnings: Vec<Warning>,
    pad: u8,
}

impl EnvImage {
    /// Parses the copies of `layout` (one slice per copy, first copy
    /// first, each exactly `layout.size` bytes).
    ///
    /// Fails with [`EnvError::BadCrc`] when no copy is valid.
    pub fn parse(layout: EnvLayout, copies: &[&[u8]]) -> Result<Self, EnvError> {
        layout.validate()?;
        let offsets = layout.copy_offsets();
        if copies.len() != offsets.len() {
            return Err(EnvError::InvalidLayout(format!(
                "the layout has {} copies but {} were given",
                offsets.len(),
                copies.len()
            )));
        }
        let mut infos = Vec::new();
        let mut views = Vec::new();
        for (index, (bytes, offset)) in copies.iter().zip(offsets).enumerate() {
            if bytes.len() != layout.size {
                return Err(EnvError::WrongLength {
                    copy: index,
                    expected: layout.size,
                    got: bytes.len(),
                });
            }
            let view = EnvCopy::new_checked(*bytes, layout.is_redundant())?;
            infos.push(CopyInfo {
                check: CrcCheck {
                    copy: index,
                    offset,
                    stored: view.stored_crc(layout.endian),
                    computed: view.computed_crc(),
                    erased: view.is_erased(),
                },
                flag: view.flag(),
            });
            views.push(view);
        }
        let states: Vec<CopyState> = infos
            .iter()
            .map(|c| CopyState {
                crc_ok: c.crc_ok(),
                flag: c.flag.unwrap_or(0),
            })
            .collect();
        let Some(selection) = select_copy(layout.flags, &states) else {
            return Err(EnvError::BadCrc {
                checks: infos.iter().map(|c| c.check).collect(),
            });
        };
        let mut warnings: Vec<Warning> = infos
            .iter()
            .filter(|c| !c.crc_ok())
            .map(|c| Warning::BadCopy(c.check))
            .collect();
        let data = views[selection.copy].data();
        let decoded = Environment::decode(data);
        warnings.extend(decoded.warnings);
        // Keep the padding style of what is there: mkenvimage pads with
        // 0xff, U-Boot's saveenv and fw_setenv with 0x00.
        let pad = match decoded.end.and_then(|end| data.get(end)) {
            Some(0xff) => 0xff,
            _ => 0x00,
        };
        Ok(EnvImage {
            layout,
            copies: infos,
            selection: Some(selection),
            env: decoded.env,
            warnings,
            pad,
        })
    }

    /// Parses the environment of `layout` inside a whole image.
    pub fn from_dump(layout: EnvLayout, dump: &[u8]) -> Result<Self, EnvError> {
        layout.validate()?;
        layout.check_fits(dump.len() as u64)?;
        let slices: Vec<&[u8]> = layout
            .copy_offsets()
            .into_iter()
            .map(|o| &dump[o as usize..o as usize + layout.size])
            .collect();
        Self::parse(layout, &slices)
    }

    /// An area with no valid copy, to be overwritten with a new
    /// environment: the next write goes to the first copy.
    pub fn blank(layout: EnvLayout) -> Result<Self, EnvError> {
        layout.validate()?;
        Ok(EnvImage {
            layout,
            copies: Vec::new(),
            selection: None,
            env: Environment::new(),
            warnings: Vec::new(),
            pad: 0x00,
        })
    }

    /// The layout this image was read with.
    pub fn layout(&self) -> &EnvLayout {
        &self.layout
    }

    /// The variables of the copy U-Boot uses.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// Takes the variables out.
    pub fn into_environment(self) -> Environment {
        self.env
    }

    /// Problems found while reading.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// What was found in each copy (empty for [`EnvImage::blank`]).
    pub fn copies(&self) -> &[CopyInfo] {
        &self.copies
    }

    /// The copy U-Boot uses and why (`None` for [`EnvImage::blank`]).
    pub fn selection(&self) -> Option<Selection> {
        self.selection
    }

    /// Padding byte used by [`EnvImage::plan_write`].
    pub fn pad(&self) -> u8 {
        self.pad
    }

    /// Overrides the padding byte (normally taken from the active copy).
    pub fn set_pad(&mut self, pad: u8) {
        self.pad = pad;
    }

    /// Plans writing `env` the way U-Boot's save does.
    ///
    /// A single copy is rewritten in place. A redundant environment gets
    /// the new copy in the copy U-Boot does not use; counter flags become
    /// the active flag plus one (mod 256); boolean flags mark the new copy
    /// active and the old copy obsolete (only its flag byte changes, so
    /// its CRC stays valid). Fails before planning anything when the
    /// variables do not fit.
    pub fn plan_write(&self, env: &Environment) -> Result<EnvWrite, EnvError> {
        let layout = &self.layout;
        let offsets = layout.copy_offsets();
        let active = self.selection.map(|s| s.copy);
        let target = match (layout.is_redundant(), active) {
            (true, Some(active)) => 1 - active,
            _ => 0,
        };
        let active_flag = active.and_then(|a| self.copies[a].flag);
        let flag = match (layout.flags, active_flag) {
            (FlagStyle::Counter, Some(f)) => f.wrapping_add(1),
            _ => FLAG_ACTIVE,
        };
        let bytes = encode_copy(layout, env, flag, self.pad)?;
        let mut patches = vec![Patch {
            offset: offsets[target],
            bytes,
            what: PatchKind::Copy {
                copy: target,
                flag: layout.is_redundant().then_some(flag),
            },
        }];
        if let (true, FlagStyle::Boolean, Some(active)) =
            (layout.is_redundant(), layout.flags, active)
        {
            patches.push(Patch {
                offset: offsets[active] + 4,
                bytes: vec![FLAG_OBSOLETE],
                what: PatchKind::Obsolete { copy: active },
            });
        }
        Ok(EnvWrite {
            target,
            used: env.encoded_len(),
            available: layout.data_len(),
            patches,
        })
    }
}

/// What a [`Patch`] changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// A whole copy, with its new flag for redundant layouts.
    Copy {
        /// Copy index.
        copy: CopyIndex,
        /// New flag byte.
        flag: Option<u8>,
    },
    /// The flag byte of the old copy, set to obsolete (boolean style).
    Obsolete {
        /// Copy index.
        copy: CopyIndex,
    },
}

/// Bytes to write at an offset of the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// Offset inside the image.
    pub offset: u64,
    /// The new bytes.
    pub bytes: Vec<u8>,
    /// What they are.
    pub what: PatchKind,
}

impl fmt::Display for Patch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.what {
            PatchKind::Copy { copy, flag } => {
                write!(
                    f,
                    "write copy {} ({:#x} bytes at {:#x})",
                    copy + 1,
                    self.bytes.len(),
                    self.offset
                )?;
                if let Some(flag) = flag {
                    write!(f, " with flag {flag}")?;
                }
                Ok(())
            }
            PatchKind::Obsolete { copy } => write!(
                f,
                "mark copy {} obsolete (flag byte at {:#x} := 0)",
                copy + 1,
                self.offset
            ),
        }
    }
}

/// A planned environment write: the patches, in the order to apply them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvWrite {
    /// The copy that receives the new environment.
    pub target: CopyIndex,
    /// Bytes the variables use in the data area (terminator included).
    pub used: usize,
    /// Size of the data area.
    pub available: usize,
    /// New copy first, then (boolean flags) the old copy's flag byte.
    pub patches: Vec<Patch>,
}

impl EnvWrite {
    /// Applies the patches to a whole image held in memory.
    pub fn apply(&self, image: &mut [u8]) -> Result<(), EnvError> {
        for patch in &self.patches {
            let start = patch.offset as usize;
            let end = start + patch.bytes.len();
            if end > image.len() {
                return Err(EnvError::Truncated {
                    copy: match patch.what {
                        PatchKind::Copy { copy, .. } | PatchKind::Obsolete { copy } => copy,
                    },
                    offset: patch.offset,
                    end: end as u64,
                    image_len: image.len() as u64,
                });
            }
            image[start..end].copy_from_slice(&patch.bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endian;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::from_pairs(pairs.iter().copied()).unwrap()
    }

    /// `a=1`, 16-byte single copy, 0xff padding, as `mkenvimage -s 16`
    /// writes it (CRC checked against the real tool).
    const SINGLE_LE: [u8; 16] = [
        0x86, 0x0f, 0xc0, 0xce, b'a', b'=', b'1', 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];

    #[test]
    fn parse_literal_single() {
        let image = EnvImage::parse(EnvLayout::single(0, 16), &[&SINGLE_LE]).unwrap();
        assert_eq!(image.environment(), &env(&[("a", "1")]));
        assert!(image.warnings().is_empty());
        assert_eq!(image.pad(), 0xff);
        assert_eq!(image.selection().unwrap().copy, 0);
    }

    #[test]
    fn emit_literal_single() {
        let layout = EnvLayout::single(0, 16);
        assert_eq!(
            encode_copy(&layout, &env(&[("a", "1")]), 0, 0xff).unwrap(),
            SINGLE_LE
        );
        let be = encode_copy(
            &layout.with_endian(Endian::Big),
            &env(&[("a", "1")]),
            0,
            0xff,
        )
        .unwrap();
        assert_eq!(&be[..4], &[0xce, 0xc0, 0x0f, 0x86]);
        assert_eq!(&be[4..], &SINGLE_LE[4..]);
    }

    /// `a=1`, one 16-byte copy of a redundant big-endian environment,
    /// flag 1, 0x00 padding (`mkenvimage -r -b -p 0 -s 16`).
    const REDUNDANT_BE: [u8; 16] = [
        0x5e, 0x9a, 0x25, 0x0d, 0x01, b'a', b'=', b'1', 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn redundant_big_endian_literal_both_directions() {
        let layout = EnvLayout::redundant(0, 16, 16, FlagStyle::Counter).with_endian(Endian::Big);
        assert_eq!(
            encode_copy(&layout, &env(&[("a", "1")]), 1, 0).unwrap(),
            REDUNDANT_BE
        );
        let erased = [0xffu8; 16];
        let image = EnvImage::parse(layout, &[&REDUNDANT_BE, &erased]).unwrap();
        assert_eq!(image.environment(), &env(&[("a", "1")]));
        assert_eq!(image.copies()[0].flag, Some(1));
        assert_eq!(image.pad(), 0);
        let view = EnvCopy::new_checked(&REDUNDANT_BE[..], true).unwrap();
        assert_eq!(view.stored_crc(Endian::Big), 0x5e9a250d);
        assert_eq!(view.data(), b"a=1\0\0\0\0\0\0\0\0");
    }

    #[test]
    fn big_endian_is_not_read_as_little() {
        let layout = EnvLayout::single(0, 16).with_endian(Endian::Big);
        let err = EnvImage::parse(layout, &[&SINGLE_LE]).unwrap_err();
        let EnvError::BadCrc { checks } = err else {
            panic!("{err:?}")
        };
        assert_eq!(checks[0].stored, 0x860fc0ce);
        assert_eq!(checks[0].computed, 0xcec00f86);
    }

    #[test]
    fn too_large_is_refused_with_numbers() {
        let layout = EnvLayout::single(0, 10);
        // "ab=12\0\0" is 7 bytes, the data area 6.
        let err = encode_copy(&layout, &env(&[("ab", "12")]), 0, 0).unwrap_err();
        assert_eq!(
            err,
            EnvError::TooLarge {
                needed: 7,
                available: 6,
                size: 10,
                header: 4
            }
        );
        // Exactly full fits.
        assert!(encode_copy(&layout, &env(&[("a", "12")]), 0, 0).is_ok());
    }

    fn redundant_dump(style: FlagStyle, flags: [u8; 2], values: [&str; 2]) -> (EnvLayout, Vec<u8>) {
        let layout = EnvLayout::redundant(0, 32, 32, style);
        let mut dump = Vec::new();
        for (flag, value) in flags.into_iter().zip(values) {
            dump.extend(encode_copy(&layout, &env(&[("v", value)]), flag, 0).unwrap());
        }
        (layout, dump)
    }

    #[test]
    fn redundant_counter_write_goes_to_inactive_copy() {
        let (layout, mut dump) = redundant_dump(FlagStyle::Counter, [255, 0], ["old", "new"]);
        let image = EnvImage::from_dump(layout, &dump).unwrap();
        assert_eq!(image.selection().unwrap().copy, 1);
        assert_eq!(image.environment().get("v"), Some(&b"new"[..]));
        let write = image.plan_write(&env(&[("v", "newer")])).unwrap();
        assert_eq!(write.target, 0);
        assert_eq!(write.patches.len(), 1);
        assert_eq!(
            write.patches[0].what,
            PatchKind::Copy {
                copy: 0,
                flag: Some(1)
            }
        );
        write.apply(&mut dump).unwrap();
        assert_eq!(dump[4], 1);
        let again = EnvImage::from_dump(layout, &dump).unwrap();
        assert_eq!(again.selection().unwrap().copy, 0);
        assert_eq!(again.environment().get("v"), Some(&b"newer"[..]));
    }

    #[test]
    fn redundant_counter_wraps() {
        let (layout, mut dump) = redundant_dump(FlagStyle::Counter, [254, 255], ["a", "b"]);
        let image = EnvImage::from_dump(layout, &dump).unwrap();
        assert_eq!(image.selection().unwrap().copy, 1);
        image
            .plan_write(&env(&[("v", "c")]))
            .unwrap()
            .apply(&mut dump)
            .unwrap();
        assert_eq!(dump[4], 0);
        let again = EnvImage::from_dump(layout, &dump).unwrap();
        assert_eq!(again.selection().unwrap().copy, 0);
        assert_eq!(again.environment().get("v"), Some(&b"c"[..]));
    }

    #[test]
    fn redundant_boolean_marks_old_copy_obsolete() {
        let (layout, mut dump) = redundant_dump(FlagStyle::Boolean, [1, 0], ["cur", "old"]);
        let image = EnvImage::from_dump(layout, &dump).unwrap();
        assert_eq!(image.selection().unwrap().copy, 0);
        let write = image.plan_write(&env(&[("v", "next")])).unwrap();
        assert_eq!(write.target, 1);
        assert_eq!(write.patches[1].offset, 4);
        assert_eq!(write.patches[1].bytes, vec![0]);
        write.apply(&mut dump).unwrap();
        assert_eq!((dump[4], dump[32 + 4]), (0, 1));
        let again = EnvImage::from_dump(layout, &dump).unwrap();
        assert_eq!(again.selection().unwrap().copy, 1);
        assert_eq!(again.environment().get("v"), Some(&b"next"[..]));
        // The old copy's CRC does not cover the flag: it is still valid.
        assert!(again.copies().iter().all(CopyInfo::crc_ok));
    }

    #[test]
    fn one_bad_copy_is_a_warning_and_gets_overwritten() {
        let (layout, mut dump) = redundant_dump(FlagStyle::Counter, [5, 6], ["a", "b"]);
        dump[32 + 10] ^= 0x55; // corrupt the newer copy
        let image = EnvImage::from_dump(layout, &dump).unwrap();
        assert_eq!(image.selection().unwrap().copy, 0);
        assert!(matches!(image.warnings()[0], Warning::BadCopy(c) if c.copy == 1));
        let write = image.plan_write(image.environment()).unwrap();
        assert_eq!(write.target, 1);
        assert_eq!(
            write.patches[0].what,
            PatchKind::Copy {
                copy: 1,
                flag: Some(6)
            }
        );
    }

    #[test]
    fn all_copies_bad_or_erased() {
        let layout = EnvLayout::redundant(0, 32, 32, FlagStyle::Counter);
        let dump = vec![0xff; 64];
        let err = EnvImage::from_dump(layout, &dump).unwrap_err();
        let EnvError::BadCrc { checks } = &err else {
            panic!("{err:?}")
        };
        assert!(checks.iter().all(|c| c.erased));
        assert!(err.hint().unwrap().contains("never written"));
        // --create: a blank image writes copy 1 with flag 1.
        let mut dump = dump;
        let blank = EnvImage::blank(layout).unwrap();
        blank
            .plan_write(&env(&[("x", "y")]))
            .unwrap()
            .apply(&mut dump)
            .unwrap();
        let image = EnvImage::from_dump(layout, &dump).unwrap();
        assert_eq!(image.selection().unwrap().copy, 0);
        assert_eq!(image.copies()[0].flag, Some(1));
    }

    #[test]
    fn truncated_and_wrong_length() {
        let layout = EnvLayout::single(8, 16);
        assert!(matches!(
            EnvImage::from_dump(layout, &[0; 20]),
            Err(EnvError::Truncated {
                end: 24,
                image_len: 20,
                ..
            })
        ));
        assert!(matches!(
            EnvImage::parse(layout, &[&[0; 15]]),
            Err(EnvError::WrongLength {
                expected: 16,
                got: 15,
                ..
            })
        ));
    }

    #[test]
    fn pad_follows_the_active_copy() {
        let layout = EnvLayout::single(0, 16);
        let zero = encode_copy(&layout, &env(&[("a", "1")]), 0, 0).unwrap();
        let image = EnvImage::parse(layout, &[&zero]).unwrap();
        assert_eq!(image.pad(), 0);
        let write = image.plan_write(&env(&[("a", "2")])).unwrap();
        assert!(write.patches[0].bytes[9..].iter().all(|&b| b == 0));
        let ff = EnvImage::parse(layout, &[&SINGLE_LE]).unwrap();
        let write = ff.plan_write(&env(&[("a", "2")])).unwrap();
        assert!(write.patches[0].bytes[9..].iter().all(|&b| b == 0xff));
    }

    #[test]
    fn bytes_outside_the_area_are_untouched() {
        let layout = EnvLayout::single(0x10, 16);
        let mut dump: Vec<u8> = (0..64u8).collect();
        dump[0x10..0x20].copy_from_slice(&SINGLE_LE);
        let before = dump.clone();
        let image = EnvImage::from_dump(layout, &dump).unwrap();
        image
            .plan_write(&env(&[("b", "2")]))
            .unwrap()
            .apply(&mut dump)
            .unwrap();
        assert_eq!(dump[..0x10], before[..0x10]);
        assert_eq!(dump[0x20..], before[0x20..]);
        assert_ne!(dump[0x10..0x20], before[0x10..0x20]);
    }
}
