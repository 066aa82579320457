//! Errors a person porting a board can act on.
//!
//! Every problem found in a board file becomes one [`BoardError`] that
//! names the file, the field (as a dotted path such as
//! `flash.partitions[2].offset`) and the [`Rule`] that was broken, with
//! a help line where there is something specific to try. Loading never
//! stops at the first problem when it can go on, so [`BoardErrors`]
//! carries all of them.

use std::fmt;

/// The rule a board file broke; its [`Rule::code`] appears in every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The file could not be read.
    Io,
    /// No board or family of that name in any lookup location.
    NotFound,
    /// The file is not valid TOML.
    Syntax,
    /// `schema` is missing or not a version this crate understands.
    SchemaVersion,
    /// A key the schema does not have.
    UnknownField,
    /// A required fact is missing after inheritance.
    MissingField,
    /// A value of the wrong type or outside the allowed set.
    InvalidValue,
    /// `name` differs from the file name.
    NameMismatch,
    /// `extends` names no known family or board.
    ExtendsUnknown,
    /// `extends` leads back to a file already in the chain.
    ExtendsCycle,
    /// Two partitions share bytes.
    PartitionOverlap,
    /// A partition runs past the end of the flash.
    PartitionPastEnd,
    /// A partition offset or size is not a multiple of the erase block.
    PartitionAlignment,
    /// Two partitions have the same name.
    PartitionDuplicate,
    /// The erase block is not a power of two.
    EraseBlockPowerOfTwo,
    /// A protected partition lies inside a firmware region.
    ProtectedInFirmware,
    /// A firmware partition lies outside the regions U-Boot can address.
    FirmwareOutsideUsable,
    /// The U-Boot environment lies outside the flash.
    EnvOutsideFlash,
    /// A load, entry or rootfs address is outside RAM.
    AddressOutsideRam,
    /// A load, entry or rootfs address is inside U-Boot's own RAM.
    AddressInUboot,
    /// Two of the load, entry and rootfs addresses collide.
    AddressCollision,
    /// An address no window of the address map covers.
    AddressUnmapped,
    /// Two address-map windows overlap in U-Boot's address space.
    AddressMapOverlap,
    /// A U-Boot RAM address in another window than the RAM window (KSEG1
    /// where KSEG0 is expected on MIPS).
    AddressWrongWindow,
    /// The prompt is not a valid regular expression.
    InvalidPrompt,
    /// The console framing is not of the form `8N1`.
    InvalidFraming,
    /// `virtual = true` without `[qemu]`, or `[qemu]` on a real board.
    VirtualNeedsQemu,
    /// A command listed both present and absent, or a list that
    /// contradicts `uboot.echo` / `uboot.lzmadec`.
    CommandConflict,
    /// A trap on a command the inventory lists as absent.
    TrapOnAbsent,
}

impl Rule {
    /// Stable kebab-case code, e.g. `partition-overlap`.
    pub fn code(self) -> &'static str {
        match self {
            Rule::Io => "io",
            Rule::NotFound => "not-found",
            Rule::Syntax => "syntax",
            Rule::SchemaVersion => "schema-version",
            Rule::UnknownField => "unknown-field",
            Rule::MissingField => "missing-field",
            Rule::InvalidValue => "invalid-value",
            Rule::NameMismatch => "name-mismatch",
            Rule::ExtendsUnknown => "extends-unknown",
            Rule::ExtendsCycle => "extends-cycle",
            Rule::PartitionOverlap => "partition-overlap",
            Rule::PartitionPastEnd => "partition-past-end",
            Rule::PartitionAlignment => "partition-alignment",
            Rule::PartitionDuplicate => "partition-duplicate",
            Rule::EraseBlockPowerOfTwo => "erase-block-power-of-two",
            Rule::ProtectedInFirmware => "protected-in-firmware",
            Rule::FirmwareOutsideUsable => "firmware-outside-usable",
            Rule::EnvOutsideFlash => "env-outside-flash",
            Rule::AddressOutsideRam => "address-outside-ram",
            Rule::AddressInUboot => "address-in-uboot",
            Rule::AddressCollision => "address-collision",
            Rule::AddressUnmapped => "address-unmapped",
            Rule::AddressMapOverlap => "address-map-overlap",
            Rule::AddressWrongWindow => "address-wrong-window",
            Rule::InvalidPrompt => "invalid-prompt",
            Rule::InvalidFraming => "invalid-framing",
            Rule::VirtualNeedsQemu => "virtual-needs-qemu",
            Rule::CommandConflict => "command-conflict",
            Rule::TrapOnAbsent => "trap-on-absent",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem in one board file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardError {
    /// The file at fault: a path, or `built-in (NAME.toml)`.
    pub file: String,
    /// Dotted path of the field, e.g. `flash.partitions[1].size`; empty
    /// when the problem is the whole file.
    pub field: String,
    /// The rule that was broken.
    pub rule: Rule,
    /// What is wrong, with the values involved.
    pub message: String,
    /// What to try.
    pub help: Option<String>,
}

impl BoardError {
    /// A new error without a help line.
    pub fn new(
        file: impl Into<String>,
        field: impl Into<String>,
        rule: Rule,
        message: impl Into<String>,
    ) -> Self {
        BoardError {
            file: file.into(),
            field: field.into(),
            rule,
            message: message.into(),
            help: None,
        }
    }

    /// The same error with a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {} [{}]", self.file, self.message, self.rule)
        } else {
            write!(
                f,
                "{}: `{}`: {} [{}]",
                self.file, self.field, self.message, self.rule
            )
        }
    }
}

impl std::error::Error for BoardError {}

impl miette::Diagnostic for BoardError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("lmx_boards::{}", self.rule.code())))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
}

/// Every problem found while loading or checking board definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardErrors {
    /// The problems, in the order they were found; never empty.
    pub errors: Vec<BoardError>,
}

impl BoardErrors {
    /// Wraps one error.
    pub fn one(e: BoardError) -> Self {
        BoardErrors { errors: vec![e] }
    }

    /// Whether any error broke `rule`.
    pub fn has(&self, rule: Rule) -> bool {
        self.errors.iter().any(|e| e.rule == rule)
    }
}

impl From<BoardError> for BoardErrors {
    fn from(e: BoardError) -> Self {
        BoardErrors::one(e)
    }
}

impl fmt::Display for BoardErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [one] => write!(f, "{one}"),
            many => write!(f, "{} problems in board definitions", many.len()),
        }
    }
}

impl std::error::Error for BoardErrors {}

impl miette::Diagnostic for BoardErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.errors.as_slice() {
            [one] => one.code(),
            _ => Some(Box::new("lmx_boards::invalid")),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.errors.as_slice() {
            [one] => one.help(),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.errors.len() < 2 {
            return None;
        }
        Some(Box::new(
            self.errors.iter().map(|e| e as &dyn miette::Diagnostic),
        ))
    }
}

/// Edit distance between two short strings (for "did you mean").
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `wrong`, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(wrong: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (wrong.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(wrong, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_suggestion() {
        assert_eq!(edit_distance("sise", "size"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            did_you_mean("sise", &["base", "size", "uboot"]),
            Some("size")
        );
        assert_eq!(
            did_you_mean("erase_blok", &["erase_block", "size"]),
            Some("erase_block")
        );
        assert_eq!(did_you_mean("zzzzzz", &["base", "size"]), None);
    }
}
