//! Writing values into U-Boot command lines so they arrive unchanged.
//!
//! The hush shell of mainline U-Boot keeps `;`, `$`, `#`, blanks and
//! double quotes literal inside single quotes, and accepts `'\''` for a
//! quote. Unlike a POSIX shell it still treats a backslash inside single
//! quotes as an escape (`'a\b'` stores `ab`, `'a\\b'` stores `a\b`), as
//! the test bed's U-Boot shows (`tests/fixtures/qemu-aarch64-quoting.raw`);
//! so backslashes are doubled. Old builds use the simple parser: it splits on
//! blanks, keeps quotes as text, runs `;` as a separator and expands
//! `${x}` and `$(x)`, and `setenv` joins its words with one blank.
//! Nothing can be escaped reliably there, so values those builds would
//! change are refused instead of being sent and silently altered.

use crate::dialect::Dialect;

/// Why a value cannot be written for this dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum QuoteError {
    /// A variable name U-Boot would not take as one word.
    #[error("`{0}` is not a usable environment variable name (letters, digits, `_`, `.`, `-`)")]
    #[diagnostic(code(lmx_console::bad_name))]
    BadName(String),
    /// The simple parser of old builds would change this value.
    #[error("the value {value:?} would be changed by this U-Boot's simple command parser ({why})")]
    #[diagnostic(
        code(lmx_console::unquotable),
        help("old U-Boot builds cannot quote; split the value or avoid `;`, `$`, quotes, backslashes and repeated blanks")
    )]
    Unquotable {
        /// The value.
        value: String,
        /// The character or pattern that would be altered.
        why: &'static str,
    },
}

fn check_name(name: &str) -> Result<(), QuoteError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(QuoteError::BadName(name.to_string()))
    }
}

/// `value` as one hush word that expands to exactly `value`.
pub fn hush_single_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The `setenv NAME VALUE` line that stores `value` unchanged under this
/// dialect, or why it cannot be written.
pub fn setenv_line(dialect: &Dialect, name: &str, value: &str) -> Result<String, QuoteError> {
    check_name(name)?;
    if dialect.quotes_special {
        return Ok(format!("setenv {name} {}", hush_single_quote(value)));
    }
    let refuse = |why| {
        Err(QuoteError::Unquotable {
            value: value.to_string(),
            why,
        })
    };
    if value.contains(';') {
        return refuse("`;` separates commands");
    }
    if value.contains("${") || value.contains("$(") {
        return refuse("`${` and `$(` expand variables");
    }
    if value.contains('\'') || value.contains('\\') {
        return refuse("quotes and backslashes are parser syntax");
    }
    if value.starts_with(' ') || value.ends_with(' ') || value.contains("  ") {
        return refuse("blanks are collapsed into one");
    }
    if value.is_empty() {
        return refuse("an empty value deletes the variable");
    }
    Ok(format!("setenv {name} {value}"))
}

/// The `printenv NAME` line.
pub fn printenv_line(name: &str) -> Result<String, QuoteError> {
    check_name(name)?;
    Ok(format!("printenv {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hush_quotes_everything_literally() {
        let d = Dialect::mainline();
        assert_eq!(
            setenv_line(&d, "t1", "a b;c$d\\e\"f'g").unwrap(),
            "setenv t1 'a b;c$d\\\\e\"f'\\''g'"
        );
    }

    #[test]
    fn old_builds_refuse_what_they_would_change() {
        let mut d = Dialect::mainline();
        d.quotes_special = false;
        assert_eq!(
            setenv_line(&d, "bootargs", "console=ttyS0,115200 root=/dev/mtdblock5").unwrap(),
            "setenv bootargs console=ttyS0,115200 root=/dev/mtdblock5"
        );
        for bad in ["a;b", "x${y}", "a  b", "it's", " lead", ""] {
            assert!(setenv_line(&d, "x", bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            setenv_line(&d, "a b", "x"),
            Err(QuoteError::BadName(_))
        ));
    }
}
