//! Sizes and addresses as people type them: `0x40000`, `262144`, `256K`.
//!
//! Board files give their numbers as TOML integers; on the command line
//! the same quantities (an environment offset, a RAM buffer, a TFTP
//! upload limit, a phram size) are typed, in hex or decimal, often with
//! a binary unit. Every command reads them through [`parse_size`], so
//! `--size 0x40000`, `--max-upload 64M` and `--load-addr 0x44000000`
//! follow one rule.

/// Why a typed number was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Neither decimal nor `0x` hex digits.
    #[error("{0:?} is not a number (e.g. 0x40000, 262144 or 256K)")]
    NotANumber(String),
    /// A suffix other than K, M or G (KiB, MiB, GiB).
    #[error("unknown unit {unit:?} in {text:?} (use K, M or G)")]
    UnknownUnit {
        /// The whole input.
        text: String,
        /// The suffix found.
        unit: String,
    },
    /// More than 2^64 - 1.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses a byte count or address: decimal or `0x` hex, optionally
/// followed by a binary unit `K`/`KiB`, `M`/`MiB` or `G`/`GiB` (single
/// letters in either case), e.g. `0x40000`, `262144`, `256K`, `64MiB`,
/// `1g`, `0x10M`. Surrounding spaces are ignored.
pub fn parse_size(s: &str) -> Result<u64, NumberError> {
    let t = s.trim();
    let hex = t.starts_with("0x") || t.starts_with("0X");
    // The unit starts at the first letter after the digits (K, M and G
    // are no hex digits; a B only ends KiB, MiB or GiB).
    let body = if hex { &t[2..] } else { t };
    let split = body
        .find(|c: char| {
            if hex {
                !c.is_ascii_hexdigit()
            } else {
                !c.is_ascii_digit()
            }
        })
        .unwrap_or(body.len());
    let (digits, unit) = body.split_at(split);
    let scale: u64 = match unit {
        "" => 1,
        "k" | "K" | "KiB" => 1 << 10,
        "m" | "M" | "MiB" => 1 << 20,
        "g" | "G" | "GiB" => 1 << 30,
        _ if digits.is_empty() || unit.starts_with(|c: char| !c.is_ascii_alphabetic()) => {
            return Err(NumberError::NotANumber(s.into()))
        }
        _ => {
            return Err(NumberError::UnknownUnit {
                text: s.into(),
                unit: unit.into(),
            })
        }
    };
    let value = if hex {
        u64::from_str_radix(digits, 16)
    } else {
        digits.parse()
    };
    let value = value.map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => NumberError::TooLarge(s.into()),
        _ => NumberError::NotANumber(s.into()),
    })?;
    value
        .checked_mul(scale)
        .ok_or_else(|| NumberError::TooLarge(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_hex_and_units() {
        for (s, v) in [
            ("0x40000", 0x40000),
            ("0X40000", 0x40000),
            ("262144", 0x40000),
            (" 256K ", 0x40000),
            ("256k", 0x40000),
            ("256KiB", 0x40000),
            ("64M", 64 << 20),
            ("64m", 64 << 20),
            ("64MiB", 64 << 20),
            ("1G", 1 << 30),
            ("1g", 1 << 30),
            ("1GiB", 1 << 30),
            ("0x10M", 16 << 20),
            ("0xB", 11),
            ("0x44000000", 0x4400_0000),
            ("0", 0),
        ] {
            assert_eq!(parse_size(s), Ok(v), "{s}");
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert_eq!(
            parse_size("0xzz"),
            Err(NumberError::NotANumber("0xzz".into()))
        );
        assert_eq!(parse_size("x"), Err(NumberError::NotANumber("x".into())));
        assert_eq!(parse_size(""), Err(NumberError::NotANumber("".into())));
        assert_eq!(parse_size("0x"), Err(NumberError::NotANumber("0x".into())));
        assert_eq!(parse_size("K"), Err(NumberError::NotANumber("K".into())));
        assert_eq!(parse_size("-1"), Err(NumberError::NotANumber("-1".into())));
        assert_eq!(
            parse_size("1.5M"),
            Err(NumberError::NotANumber("1.5M".into()))
        );
        assert_eq!(
            parse_size("12Q"),
            Err(NumberError::UnknownUnit {
                text: "12Q".into(),
                unit: "Q".into()
            })
        );
        assert_eq!(
            parse_size("1T").unwrap_err().to_string(),
            "unknown unit \"T\" in \"1T\" (use K, M or G)"
        );
        assert_eq!(
            parse_size("99999999999999999999"),
            Err(NumberError::TooLarge("99999999999999999999".into()))
        );
        assert_eq!(
            parse_size("0xffffffffffffffffK"),
            Err(NumberError::TooLarge("0xffffffffffffffffK".into()))
        );
    }
}
