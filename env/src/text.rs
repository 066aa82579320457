//! The text form of an environment: `key=value` lines.
//!
//! People keep environments as text (a board's defaults in a repository,
//! the output of `printenv` pasted into a ticket) and `mkenvimage` turns
//! such text into a blob. [`parse_text`] reads the same input
//! `mkenvimage` accepts, so a file that works with one works with the
//! other: empty lines are skipped, a `#` in the first column starts a
//! comment, a value may contain `=`, and a line ending in a backslash
//! continues the value on the next line (the backslash and line break
//! become one newline in the value). Unlike `mkenvimage`, lines without
//! `=` and invalid names are refused with their line number instead of
//! being stored for U-Boot to drop, and a trailing carriage return is
//! removed. [`to_text`] writes the form back so the two round-trip.

use crate::environment::{validate_key, validate_value, Environment};
use crate::error::{EnvError, Warning};

/// Parses `key=value` lines into an environment; duplicates (last wins)
/// are reported as warnings.
pub fn parse_text(text: &[u8]) -> Result<(Environment, Vec<Warning>), EnvError> {
    let mut env = Environment::new();
    let mut warnings = Vec::new();
    let mut lines = text.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((index, first)) = lines.next() {
        let line_no = index + 1;
        if first.is_empty() || first == b"\r" || first[0] == b'#' {
            continue;
        }
        // Join continuation lines: "...\\\n..." becomes "...\n...".
        let mut entry: Vec<u8> = first.to_vec();
        while entry.last() == Some(&b'\\') {
            entry.pop();
            match lines.next() {
                Some((_, next)) => {
                    entry.push(b'\n');
                    entry.extend_from_slice(next);
                }
                None => break,
            }
        }
        if entry.last() == Some(&b'\r') {
            entry.pop();
        }
        let Some(eq) = entry.iter().position(|&b| b == b'=') else {
            return Err(EnvError::BadTextLine {
                line: line_no,
                reason: format!(
                    "{:?} has no '='",
                    String::from_utf8_lossy(&entry[..entry.len().min(40)])
                ),
            });
        };
        let (key, value) = (&entry[..eq], &entry[eq + 1..]);
        let bad = |e: EnvError| EnvError::BadTextLine {
            line: line_no,
            reason: e.to_string(),
        };
        validate_key(key).map_err(bad)?;
        validate_value(key, value).map_err(bad)?;
        if env.set(key, value)?.is_some() {
            warnings.push(Warning::DuplicateKey {
                key: String::from_utf8_lossy(key).into_owned(),
            });
        }
    }
    Ok((env, warnings))
}

/// Writes `key=value` lines that [`parse_text`] and `mkenvimage` read
/// back to the same environment (newlines in values are escaped with a
/// backslash), with two exceptions the format cannot express: a value
/// ending in a backslash reads back joined to the next line, and one
/// ending in a carriage return loses it (`tests/props.rs` holds every
/// other value to the round trip).
pub fn to_text(env: &Environment) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in env.iter() {
        out.extend(text_line(key, value));
    }
    out
}

/// One `key=value` line of [`to_text`], newline included.
pub fn text_line(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + value.len() + 2);
    out.extend_from_slice(key);
    out.push(b'=');
    for &b in value {
        if b == b'\n' {
            out.extend_from_slice(b"\\\n");
        } else {
            out.push(b);
        }
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkenvimage_rules() {
        let text = b"a=1\nb=x=y\n# comment\n\nc=multi\\\nline\nd=\r\n";
        let (env, warnings) = parse_text(text).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(env.encode(), b"a=1\0b=x=y\0c=multi\nline\0d=\0\0");
        assert_eq!(parse_text(&to_text(&env)).unwrap().0, env);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_text(b"a=1\n\nnoequals\n").unwrap_err();
        assert!(
            matches!(err, EnvError::BadTextLine { line: 3, .. }),
            "{err}"
        );
        let err = parse_text(b"a=1\n=x\n").unwrap_err();
        assert!(
            matches!(err, EnvError::BadTextLine { line: 2, .. }),
            "{err}"
        );
        let err = parse_text(b" a=1\n").unwrap_err();
        assert!(
            matches!(err, EnvError::BadTextLine { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn duplicates_warn() {
        let (env, warnings) = parse_text(b"a=1\na=2\n").unwrap();
        assert_eq!(env.get("a"), Some(&b"2"[..]));
        assert_eq!(warnings.len(), 1);
    }
}
