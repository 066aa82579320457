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
//! change are refused instead of being sent and silently altered. On
//! builds that expand `$name` without braces every `$` is refused.
//!
//! On every build, a value must be typeable: printable ASCII only (a
//! newline ends the line, other control bytes drive the line editor),
//! and not empty (`setenv NAME` with nothing after it deletes NAME).
//! Whether the whole line fits the board's `CONFIG_SYS_CBSIZE` is checked
//! by [`ShellMachine::check`](crate::ShellMachine::check) before it is
//! sent.

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
    /// No U-Boot line editor takes this value as typed.
    #[error("the value of {name} cannot be typed at the U-Boot prompt: {why}")]
    #[diagnostic(
        code(lmx_console::untypable),
        help("write it offline into a flash dump (`lmx env set --image`), or `env import` a text file loaded into RAM")
    )]
    Untypable {
        /// The variable.
        name: String,
        /// What is wrong with the value.
        why: String,
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
    check_typeable(name, value)?;
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
    if !dialect.braces_required && value.contains('$') {
        return refuse("this build expands `$name` without braces");
    }
    if value.contains('\'') || value.contains('\\') {
        return refuse("quotes and backslashes are parser syntax");
    }
    if value.starts_with(' ') || value.ends_with(' ') || value.contains("  ") {
        return refuse("blanks are collapsed into one");
    }
    Ok(format!("setenv {name} {value}"))
}

/// Refuses values no U-Boot prompt takes as typed: empty (deletes the
/// variable), or holding a byte outside printable ASCII.
fn check_typeable(name: &str, value: &str) -> Result<(), QuoteError> {
    let refuse = |why: String| {
        Err(QuoteError::Untypable {
            name: name.to_string(),
            why,
        })
    };
    if value.is_empty() {
        return refuse(format!(
            "an empty value deletes the variable (to delete it, `setenv {name}`)"
        ));
    }
    if let Some((i, c)) = value.char_indices().find(|(_, c)| !(' '..='~').contains(c)) {
        let what = match c {
            '\n' | '\r' => "a line break ends the command line",
            '\t' => "a tab is the line editor's completion key",
            c if c.is_ascii_control() => "control bytes drive the line editor",
            _ => "only printable ASCII is typed (the line editor works on bytes)",
        };
        return refuse(format!("{c:?} at byte {i}: {what}"));
    }
    Ok(())
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
        d.braces_required = true;
        assert_eq!(
            setenv_line(&d, "bootargs", "console=ttyS0,115200 root=/dev/mtdblock5").unwrap(),
            "setenv bootargs console=ttyS0,115200 root=/dev/mtdblock5"
        );
        for bad in [
            "a;b", "x${y}", "x$(y)", "a  b", "it's", "a\\b", " lead", "trail ",
        ] {
            assert!(
                matches!(
                    setenv_line(&d, "x", bad),
                    Err(QuoteError::Unquotable { .. })
                ),
                "{bad:?}"
            );
        }
        // `$` without braces and double quotes are literal on these builds.
        assert_eq!(
            setenv_line(&d, "x", "cost=$5 \"q\" #no-comment").unwrap(),
            "setenv x cost=$5 \"q\" #no-comment"
        );
        // A build that expands `$name` without braces: no `$` at all.
        d.braces_required = false;
        let e = setenv_line(&d, "x", "cost=$5").unwrap_err();
        assert!(e.to_string().contains("without braces"), "{e}");
        assert!(matches!(
            setenv_line(&d, "a b", "x"),
            Err(QuoteError::BadName(_))
        ));
    }

    #[test]
    fn hush_keeps_dollars_semicolons_and_quotes_literal() {
        let d = Dialect::mainline();
        assert_eq!(
            setenv_line(&d, "bootcmd", "run a; echo ${x} $y \"z\"").unwrap(),
            "setenv bootcmd 'run a; echo ${x} $y \"z\"'"
        );
        assert_eq!(
            setenv_line(&d, "x", "  two  blanks  ").unwrap(),
            "setenv x '  two  blanks  '"
        );
        assert_eq!(setenv_line(&d, "x", "#").unwrap(), "setenv x '#'");
    }

    #[test]
    fn untypable_values_are_refused_on_every_dialect() {
        let mut old = Dialect::mainline();
        old.quotes_special = false;
        old.braces_required = true;
        for d in [Dialect::mainline(), old] {
            for (bad, why) in [
                ("", "empty value deletes"),
                ("a\nb", "line break"),
                ("a\tb", "tab"),
                ("a\u{3}b", "control bytes"),
                ("caf\u{e9}", "printable ASCII"),
            ] {
                let e = setenv_line(&d, "x", bad).unwrap_err();
                assert!(matches!(e, QuoteError::Untypable { .. }), "{bad:?}: {e}");
                assert!(e.to_string().contains(why), "{bad:?}: {e}");
            }
        }
    }
}
