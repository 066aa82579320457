//! Errors and warnings.
//!
//! An environment can be wrong in two ways that call for different
//! reactions. Some problems make it unusable or unsafe to write (every
//! copy fails its CRC, the area does not fit in the image, a key would be
//! misread by U-Boot): those are [`EnvError`]s and stop the operation.
//! Others are survivable and U-Boot itself lives with them (a duplicate
//! key, a missing final terminator, one bad copy out of two): those are
//! [`Warning`]s, collected next to the result so a caller can print them.
//! Every error carries the expected and the seen value, and
//! [`EnvError::hint`] says what to try.

use std::fmt;

/// Which copy of a redundant environment (0 = first, 1 = second).
pub type CopyIndex = usize;

/// The CRC check of one copy, kept for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrcCheck {
    /// Copy index (0 or 1).
    pub copy: CopyIndex,
    /// Byte offset of the copy inside the image.
    pub offset: u64,
    /// CRC stored in the copy's header, read in the layout's byte order.
    pub stored: u32,
    /// CRC computed over the copy's data area.
    pub computed: u32,
    /// The whole copy is 0xff bytes: erased flash, never written.
    pub erased: bool,
}

impl fmt::Display for CrcCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "copy {} at {:#x}: ", self.copy + 1, self.offset)?;
        if self.erased {
            write!(f, "erased (all 0xff)")
        } else {
            write!(
                f,
                "stored CRC {:#010x}, computed {:#010x}",
                self.stored, self.computed
            )
        }
    }
}

/// Why an environment could not be read, encoded or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A variable name U-Boot would reject or misread.
    #[error("invalid variable name {key:?}: {reason}")]
    InvalidKey {
        /// The name, lossily converted for display.
        key: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A value that cannot be stored (it contains a NUL byte).
    #[error("invalid value for {key:?}: {reason}")]
    InvalidValue {
        /// The variable name.
        key: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The encoded environment does not fit the data area.
    #[error(
        "the environment needs {needed} bytes but the data area holds {available} \
         (environment size {size:#x} minus a {header}-byte header)"
    )]
    TooLarge {
        /// Bytes the encoded variables plus terminator need.
        needed: usize,
        /// Bytes available in the data area.
        available: usize,
        /// Environment size of the layout.
        size: usize,
        /// Header length (4 for a single copy, 5 with a flag byte).
        header: usize,
    },
    /// The layout itself is impossible.
    #[error("invalid environment layout: {0}")]
    InvalidLayout(String),
    /// The image ends before an environment copy does.
    #[error(
        "the image is {image_len} bytes ({image_len:#x}) but copy {} of the environment \
         spans {offset:#x}..{end:#x}",
        copy + 1
    )]
    Truncated {
        /// Copy index.
        copy: CopyIndex,
        /// Start of the copy.
        offset: u64,
        /// End of the copy (exclusive).
        end: u64,
        /// Length of the image.
        image_len: u64,
    },
    /// A slice handed to the parser has the wrong length.
    #[error("copy {} is {got} bytes, the layout says {expected}", copy + 1)]
    WrongLength {
        /// Copy index.
        copy: CopyIndex,
        /// The layout's environment size.
        expected: usize,
        /// Length of the slice.
        got: usize,
    },
    /// No copy passed its CRC check.
    #[error("no valid environment: {}", describe_checks(.checks))]
    BadCrc {
        /// One entry per copy.
        checks: Vec<CrcCheck>,
    },
    /// A text line could not be imported.
    #[error("line {line}: {reason}")]
    BadTextLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// The code and the [`EnvError::hint`] as the help line.
impl miette::Diagnostic for EnvError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic_code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.hint().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

fn describe_checks(checks: &[CrcCheck]) -> String {
    let parts: Vec<String> = checks.iter().map(|c| c.to_string()).collect();
    parts.join("; ")
}

impl EnvError {
    /// The diagnostic code, e.g. `lmx::env::bad_crc`.
    pub fn diagnostic_code(&self) -> &'static str {
        match self {
            EnvError::InvalidKey { .. } => "lmx::env::invalid_key",
            EnvError::InvalidValue { .. } => "lmx::env::invalid_value",
            EnvError::TooLarge { .. } => "lmx::env::too_large",
            EnvError::InvalidLayout(_) => "lmx::env::invalid_layout",
            EnvError::Truncated { .. } => "lmx::env::truncated",
            EnvError::WrongLength { .. } => "lmx::env::wrong_length",
            EnvError::BadCrc { .. } => "lmx::env::bad_crc",
            EnvError::BadTextLine { .. } => "lmx::env::bad_text",
        }
    }

    /// What the user can try, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            EnvError::InvalidKey { .. } => Some(
                "names must be non-empty and contain no '=', NUL, blank or newline, \
                 and must not start with '#'"
                    .into(),
            ),
            EnvError::InvalidValue { .. } => {
                Some("U-Boot stores values as NUL-terminated strings".into())
            }
            EnvError::TooLarge {
                needed, available, ..
            } => Some(format!(
                "remove {} bytes of variables, or check --size (nothing was written)",
                needed - available
            )),
            EnvError::InvalidLayout(_) => None,
            EnvError::Truncated { .. } => {
                Some("the dump may be incomplete, or --offset/--size/--redundant are wrong".into())
            }
            EnvError::WrongLength { .. } => None,
            EnvError::BadCrc { checks } => {
                if checks.iter().all(|c| c.erased) {
                    Some(
                        "this area was never written; U-Boot uses its built-in default \
                         environment. Use --create to write a new one"
                            .into(),
                    )
                } else {
                    Some(
                        "check --offset and --size (CONFIG_ENV_OFFSET, CONFIG_ENV_SIZE), \
                         --big-endian and --redundant; or use --create to overwrite it \
                         with a new environment"
                            .into(),
                    )
                }
            }
            EnvError::BadTextLine { .. } => {
                Some("lines are key=value; '#' in the first column starts a comment".into())
            }
        }
    }
}

/// A problem that does not stop reading, reported next to the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The same name appears twice; U-Boot keeps the last value.
    DuplicateKey {
        /// The name, lossily converted for display.
        key: String,
    },
    /// The data area has no empty entry that ends the variable list.
    MissingTerminator,
    /// An entry without `=` or with an empty name; U-Boot ignores it.
    MalformedEntry {
        /// Offset of the entry inside the data area.
        offset: usize,
        /// The entry, lossily converted and shortened for display.
        entry: String,
    },
    /// One copy of a redundant environment is unusable; the other is used.
    BadCopy(CrcCheck),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::DuplicateKey { key } => {
                write!(f, "variable {key:?} is defined twice; U-Boot uses the last value")
            }
            Warning::MissingTerminator => write!(
                f,
                "the variable list is not terminated by an empty entry (double NUL)"
            ),
            Warning::MalformedEntry { offset, entry } => write!(
                f,
                "entry {entry:?} at data offset {offset:#x} has no name or no '='; U-Boot ignores it"
            ),
            Warning::BadCopy(check) => {
                write!(f, "{check}; the other copy is used")
            }
        }
    }
}
