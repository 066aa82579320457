//! The variables themselves: an ordered map and its data-area encoding.
//!
//! U-Boot keeps variables in a hash table and sorts them on `saveenv`;
//! `fw_setenv` and `mkenvimage` keep the order they were given. lmx keeps
//! the order it read, replaces values in place and appends new names, so
//! changing one variable changes as few bytes as possible and a diff of
//! two dumps stays readable. Names and values are bytes, not `String`s:
//! vendor environments sometimes carry non-UTF-8 bytes, and rewriting an
//! environment must not alter variables the user did not touch.
//!
//! The data area is `name=value\0` entries followed by one more `\0`; an
//! empty environment is a single `\0`. Decoding mirrors U-Boot's import:
//! the list ends at the first empty entry, a later duplicate wins.

use crate::error::{EnvError, Warning};

/// An ordered set of U-Boot variables (`name=value`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    vars: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Result of decoding a data area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The variables.
    pub env: Environment,
    /// Problems found on the way.
    pub warnings: Vec<Warning>,
    /// Offset just past the terminating empty entry, if one was found.
    pub end: Option<usize>,
}

/// Checks that `key` is a name U-Boot stores and reads back unchanged.
///
/// Refused: empty names, `=` (it ends the name), NUL (it ends the entry),
/// blanks and newlines (U-Boot's import strips leading blanks and the
/// shell splits on them) and a leading `#` (import skips such entries as
/// comments).
pub fn validate_key(key: &[u8]) -> Result<(), EnvError> {
    let reason = if key.is_empty() {
        Some("the name is empty")
    } else if key.contains(&b'=') {
        Some("it contains '='")
    } else if key.contains(&0) {
        Some("it contains a NUL byte")
    } else if key
        .iter()
        .any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        Some("it contains a blank or a line break")
    } else if key[0] == b'#' {
        Some("it starts with '#', which U-Boot's import skips as a comment")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(EnvError::InvalidKey {
            key: String::from_utf8_lossy(key).into_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks that `value` can be stored (no NUL byte).
pub fn validate_value(key: &[u8], value: &[u8]) -> Result<(), EnvError> {
    if value.contains(&0) {
        return Err(EnvError::InvalidValue {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: "it contains a NUL byte",
        });
    }
    Ok(())
}

impl Environment {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// True when there are no variables.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&[u8]> {
        let key = key.as_ref();
        self.vars
            .iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Sets `key` to `value`, in place if it exists, else at the end.
    /// Returns the previous value.
    pub fn set(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, EnvError> {
        let (key, value) = (key.as_ref(), value.as_ref());
        validate_key(key)?;
        validate_value(key, value)?;
        Ok(self.insert(key, value))
    }

    /// Builds an environment from pairs, validating each one.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, EnvError>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut env = Environment::new();
        for (k, v) in pairs {
            env.set(k, v)?;
        }
        Ok(env)
    }

    /// Inserts without validation (the decoder keeps what it found).
    fn insert(&mut self, key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        match self.vars.iter_mut().find(|(k, _)| k.as_slice() == key) {
            Some((_, v)) => Some(std::mem::replace(v, value.to_vec())),
            None => {
                self.vars.push((key.to_vec(), value.to_vec()));
                None
            }
        }
    }

    /// Removes `key`; returns its value if it was set.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let key = key.as_ref();
        let index = self.vars.iter().position(|(k, _)| k.as_slice() == key)?;
        Some(self.vars.remove(index).1)
    }

    /// The variables in stored order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.vars.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Bytes the data area needs: every `name=value\0` plus the final `\0`.
    pub fn encoded_len(&self) -> usize {
        1 + self
            .vars
            .iter()
            .map(|(k, v)| k.len() + 1 + v.len() + 1)
            .sum::<usize>()
    }

    /// The data-area encoding, without padding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for (k, v) in &self.vars {
            out.extend_from_slice(k);
            out.push(b'=');
            out.extend_from_slice(v);
            out.push(0);
        }
        out.push(0);
        out
    }

    /// Decodes a data area (the bytes after the CRC and flag).
    ///
    /// Never fails: problems become warnings, as U-Boot imports whatever
    /// it can once the CRC matched.
    pub fn decode(data: &[u8]) -> Decoded {
        let mut env = Environment::new();
        let mut warnings = Vec::new();
        let mut pos = 0;
        let mut end = None;
        while pos < data.len() {
            let (entry, next) = match data[pos..].iter().position(|&b| b == 0) {
                Some(len) => (&data[pos..pos + len], pos + len + 1),
                None => (&data[pos..], data.len()),
            };
            if entry.is_empty() {
                end = Some(next);
                break;
            }
            match entry.iter().position(|&b| b == b'=') {
                Some(eq) if eq > 0 => {
                    let (key, value) = (&entry[..eq], &entry[eq + 1..]);
                    if env.insert(key, value).is_some() {
                        warnings.push(Warning::DuplicateKey {
                            key: String::from_utf8_lossy(key).into_owned(),
                        });
                    }
                }
                _ => {
                    let shown: Vec<u8> = entry.iter().copied().take(40).collect();
                    warnings.push(Warning::MalformedEntry {
                        offset: pos,
                        entry: String::from_utf8_lossy(&shown).into_owned(),
                    });
                }
            }
            pos = next;
        }
        if end.is_none() {
            warnings.push(Warning::MissingTerminator);
        }
        Decoded { env, warnings, end }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn encode_literal_bytes() {
        let e = env(&[("bootdelay", "2"), ("bootcmd", "run a; run b")]);
        assert_eq!(e.encode(), b"bootdelay=2\0bootcmd=run a; run b\0\0");
        assert_eq!(e.encoded_len(), e.encode().len());
        assert_eq!(Environment::new().encode(), b"\0");
    }

    #[test]
    fn decode_literal_bytes() {
        let d = Environment::decode(b"a=1\0b=x=y\0\0\xff\xff");
        assert_eq!(d.env, env(&[("a", "1"), ("b", "x=y")]));
        assert!(d.warnings.is_empty());
        assert_eq!(d.end, Some(11));
        let empty = Environment::decode(b"\0\0\0");
        assert!(empty.env.is_empty());
        assert_eq!(empty.end, Some(1));
    }

    #[test]
    fn decode_duplicate_last_wins_first_position() {
        let d = Environment::decode(b"a=1\0b=2\0a=3\0\0");
        assert_eq!(d.env, env(&[("a", "3"), ("b", "2")]));
        assert_eq!(d.warnings, vec![Warning::DuplicateKey { key: "a".into() }]);
    }

    #[test]
    fn decode_missing_terminator() {
        let d = Environment::decode(b"a=1\0b=2\0");
        assert_eq!(d.env, env(&[("a", "1"), ("b", "2")]));
        assert_eq!(d.warnings, vec![Warning::MissingTerminator]);
        // An unterminated last entry is still imported, as U-Boot does.
        let d = Environment::decode(b"a=1\0b=2");
        assert_eq!(d.env.get("b"), Some(&b"2"[..]));
        assert_eq!(d.warnings, vec![Warning::MissingTerminator]);
    }

    #[test]
    fn decode_malformed_entries() {
        let d = Environment::decode(b"noequals\0=x\0a=1\0\0");
        assert_eq!(d.env, env(&[("a", "1")]));
        assert_eq!(d.warnings.len(), 2);
        assert!(matches!(
            d.warnings[0],
            Warning::MalformedEntry { offset: 0, .. }
        ));
        assert!(matches!(
            d.warnings[1],
            Warning::MalformedEntry { offset: 9, .. }
        ));
    }

    #[test]
    fn set_in_place_and_append() {
        let mut e = env(&[("a", "1"), ("b", "2")]);
        assert_eq!(e.set("a", "9").unwrap(), Some(b"1".to_vec()));
        e.set("c", "3").unwrap();
        assert_eq!(e.encode(), b"a=9\0b=2\0c=3\0\0");
        assert_eq!(e.remove("b"), Some(b"2".to_vec()));
        assert_eq!(e.remove("b"), None);
        assert_eq!(e.encode(), b"a=9\0c=3\0\0");
    }

    #[test]
    fn bad_keys_and_values() {
        let mut e = Environment::new();
        for key in [&b""[..], b"a=b", b"a\0b", b"a b", b"#x", b"a\nb"] {
            assert!(
                matches!(e.set(key, "v"), Err(EnvError::InvalidKey { .. })),
                "{key:?}"
            );
        }
        assert!(matches!(
            e.set("k", b"a\0b"),
            Err(EnvError::InvalidValue { .. })
        ));
        // '=' and newlines are fine in values; non-UTF-8 bytes too.
        e.set("k", "a=b\nc\u{e9}").unwrap();
        e.set("raw", b"\xff\xfe").unwrap();
        assert!(!e.is_empty() && e.len() == 2);
    }
}
