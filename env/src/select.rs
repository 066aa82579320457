//! Which copy of a redundant environment U-Boot uses.
//!
//! Reading the wrong copy of a redundant environment is silent and
//! confusing: the user edits a variable and the board still boots with
//! the old value. So the choice is a pure function of the two CRC results
//! and flag bytes, tested case by case, and it follows U-Boot's rules:
//!
//! - only one copy has a good CRC: that one; none: no environment;
//! - both good, counter style (`env_check_redund`, fw_env's incremental
//!   scheme): 0 is newer than 255 (the counter wrapped), otherwise the
//!   greater flag wins, and equal flags pick the first copy;
//! - both good, boolean style (NOR's `env_flash_init`, fw_env's boolean
//!   scheme): active (1) beats obsolete (0); equal flags pick the first
//!   copy; a flag still 0xff (the save was interrupted before the old
//!   copy could be marked) wins; anything else picks the first copy.

use crate::error::CopyIndex;
use crate::layout::{FlagStyle, FLAG_ACTIVE, FLAG_OBSOLETE};
use std::fmt;

/// What selection needs to know about one copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyState {
    /// The stored CRC matches the data area.
    pub crc_ok: bool,
    /// The flag byte (0 for a single copy, which has none).
    pub flag: u8,
}

/// Why a copy was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The environment has a single copy.
    Single,
    /// The other copy failed its CRC check.
    OnlyValid,
    /// Boolean flags: this copy is active, the other obsolete.
    Active,
    /// Counter flags: this copy's counter is greater.
    Newer,
    /// Counter flags: this copy's counter wrapped from 255 to 0.
    Wrapped,
    /// Both flags are equal; U-Boot takes the first copy.
    Equal,
    /// Boolean flags: this copy's flag is still erased (0xff).
    Erased,
    /// Boolean flags with values U-Boot does not expect; first copy.
    Fallback,
}

/// The chosen copy and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Index of the chosen copy (0 or 1).
    pub copy: CopyIndex,
    /// Why it was chosen.
    pub reason: Reason,
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            Reason::Single => "the only copy",
            Reason::OnlyValid => "the other copy has a bad CRC",
            Reason::Active => "it is active and the other obsolete",
            Reason::Newer => "its counter is greater",
            Reason::Wrapped => "its counter wrapped from 255 to 0",
            Reason::Equal => "both flags are equal, U-Boot takes the first copy",
            Reason::Erased => "its flag is still 0xff",
            Reason::Fallback => "unexpected flag values, U-Boot takes the first copy",
        };
        write!(f, "copy {} ({why})", self.copy + 1)
    }
}

/// Chooses between the copies of an environment as U-Boot does.
///
/// `copies` holds one state for a single environment and two for a
/// redundant one. Returns `None` when no copy has a good CRC.
pub fn select_copy(style: FlagStyle, copies: &[CopyState]) -> Option<Selection> {
    let pick = |copy, reason| Some(Selection { copy, reason });
    match copies {
        [only] => only.crc_ok.then_some(Selection {
            copy: 0,
            reason: Reason::Single,
        }),
        [a, b] => match (a.crc_ok, b.crc_ok) {
            (false, false) => None,
            (true, false) => pick(0, Reason::OnlyValid),
            (false, true) => pick(1, Reason::OnlyValid),
            (true, true) => Some(by_flags(style, a.flag, b.flag)),
        },
        _ => None,
    }
}

fn by_flags(style: FlagStyle, a: u8, b: u8) -> Selection {
    let pick = |copy, reason| Selection { copy, reason };
    match style {
        FlagStyle::Counter => {
            if a == 255 && b == 0 {
                pick(1, Reason::Wrapped)
            } else if b == 255 && a == 0 {
                pick(0, Reason::Wrapped)
            } else if a > b {
                pick(0, Reason::Newer)
            } else if b > a {
                pick(1, Reason::Newer)
            } else {
                pick(0, Reason::Equal)
            }
        }
        FlagStyle::Boolean => {
            if a == FLAG_ACTIVE && b == FLAG_OBSOLETE {
                pick(0, Reason::Active)
            } else if a == FLAG_OBSOLETE && b == FLAG_ACTIVE {
                pick(1, Reason::Active)
            } else if a == b {
                pick(0, Reason::Equal)
            } else if a == 0xff {
                pick(0, Reason::Erased)
            } else if b == 0xff {
                pick(1, Reason::Erased)
            } else {
                pick(0, Reason::Fallback)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(flag: u8) -> CopyState {
        CopyState { crc_ok: true, flag }
    }
    fn bad(flag: u8) -> CopyState {
        CopyState {
            crc_ok: false,
            flag,
        }
    }
    fn chosen(style: FlagStyle, a: CopyState, b: CopyState) -> Option<(usize, Reason)> {
        select_copy(style, &[a, b]).map(|s| (s.copy, s.reason))
    }

    #[test]
    fn single_copy() {
        let s = select_copy(FlagStyle::Counter, &[ok(0)]).unwrap();
        assert_eq!((s.copy, s.reason), (0, Reason::Single));
        assert_eq!(select_copy(FlagStyle::Counter, &[bad(0)]), None);
    }

    #[test]
    fn crc_decides_before_flags() {
        for style in [FlagStyle::Counter, FlagStyle::Boolean] {
            assert_eq!(chosen(style, ok(0), bad(9)), Some((0, Reason::OnlyValid)));
            assert_eq!(chosen(style, bad(9), ok(0)), Some((1, Reason::OnlyValid)));
            assert_eq!(chosen(style, bad(1), bad(0)), None);
        }
    }

    #[test]
    fn counter_cases() {
        let c = FlagStyle::Counter;
        assert_eq!(chosen(c, ok(3), ok(4)), Some((1, Reason::Newer)));
        assert_eq!(chosen(c, ok(4), ok(3)), Some((0, Reason::Newer)));
        assert_eq!(chosen(c, ok(255), ok(0)), Some((1, Reason::Wrapped)));
        assert_eq!(chosen(c, ok(0), ok(255)), Some((0, Reason::Wrapped)));
        // Only the exact 255/0 pair wraps: 254 against 0 is plain "greater".
        assert_eq!(chosen(c, ok(254), ok(0)), Some((0, Reason::Newer)));
        assert_eq!(chosen(c, ok(7), ok(7)), Some((0, Reason::Equal)));
        assert_eq!(chosen(c, ok(1), ok(0)), Some((0, Reason::Newer)));
    }

    #[test]
    fn boolean_cases() {
        let b = FlagStyle::Boolean;
        assert_eq!(chosen(b, ok(1), ok(0)), Some((0, Reason::Active)));
        assert_eq!(chosen(b, ok(0), ok(1)), Some((1, Reason::Active)));
        assert_eq!(chosen(b, ok(1), ok(1)), Some((0, Reason::Equal)));
        assert_eq!(chosen(b, ok(0), ok(0)), Some((0, Reason::Equal)));
        // Differs from the counter style: 0xff is not "older than 0".
        assert_eq!(chosen(b, ok(0xff), ok(0)), Some((0, Reason::Erased)));
        assert_eq!(chosen(b, ok(0), ok(0xff)), Some((1, Reason::Erased)));
        assert_eq!(chosen(b, ok(1), ok(0xff)), Some((1, Reason::Erased)));
        assert_eq!(chosen(b, ok(2), ok(3)), Some((0, Reason::Fallback)));
    }

    #[test]
    fn display_names_the_copy_and_reason() {
        let s = select_copy(FlagStyle::Counter, &[ok(255), ok(0)]).unwrap();
        assert_eq!(s.to_string(), "copy 2 (its counter wrapped from 255 to 0)");
    }
}
