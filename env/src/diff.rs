//! Differences between two environments.
//!
//! Before writing an environment back to a board, or when a board
//! misbehaves after an update, the question is "what changed?". Order is
//! not a change (U-Boot sorts on save), so [`diff`] compares by name and
//! lists removals, changes and additions in a stable order: the old
//! environment's order, then new names in the new environment's order.
//! [`diff_text`] writes the changes as `-name=value` / `+name=value`
//! lines and [`DiffSummary`] counts them.

use std::fmt;

use crate::environment::Environment;
use crate::text::text_line;

/// One difference between two environments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Only in the new environment.
    Added {
        /// Name.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Only in the old environment.
    Removed {
        /// Name.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// In both, with different values.
    Changed {
        /// Name.
        key: Vec<u8>,
        /// Value in the old environment.
        old: Vec<u8>,
        /// Value in the new environment.
        new: Vec<u8>,
    },
}

/// Lists what turns `old` into `new`.
pub fn diff(old: &Environment, new: &Environment) -> Vec<Change> {
    let mut changes = Vec::new();
    for (key, value) in old.iter() {
        match new.get(key) {
            None => changes.push(Change::Removed {
                key: key.to_vec(),
                value: value.to_vec(),
            }),
            Some(other) if other != value => changes.push(Change::Changed {
                key: key.to_vec(),
                old: value.to_vec(),
                new: other.to_vec(),
            }),
            Some(_) => {}
        }
    }
    for (key, value) in new.iter() {
        if old.get(key).is_none() {
            changes.push(Change::Added {
                key: key.to_vec(),
                value: value.to_vec(),
            });
        }
    }
    changes
}

/// The changes as text: `-name=value` for what goes, `+name=value` for
/// what comes (a changed name: its old line, then its new one), each line
/// as [`text_line`] writes it.
pub fn diff_text(changes: &[Change]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = |sign: u8, key: &[u8], value: &[u8]| {
        out.push(sign);
        out.extend(text_line(key, value));
    };
    for change in changes {
        match change {
            Change::Removed { key, value } => line(b'-', key, value),
            Change::Changed { key, old, new } => {
                line(b'-', key, old);
                line(b'+', key, new);
            }
            Change::Added { key, value } => line(b'+', key, value),
        }
    }
    out
}

/// How many names a list of changes adds, removes and changes; shown as
/// `2 added, 1 removed, 0 changed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffSummary {
    /// Names only in the new environment.
    pub added: usize,
    /// Names only in the old environment.
    pub removed: usize,
    /// Names in both, with different values.
    pub changed: usize,
}

impl DiffSummary {
    /// Counts `changes`.
    pub fn of(changes: &[Change]) -> DiffSummary {
        let mut s = DiffSummary::default();
        for change in changes {
            match change {
                Change::Added { .. } => s.added += 1,
                Change::Removed { .. } => s.removed += 1,
                Change::Changed { .. } => s.changed += 1,
            }
        }
        s
    }
}

impl fmt::Display for DiffSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} added, {} removed, {} changed",
            self.added, self.removed, self.changed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_removed_changed_and_order_ignored() {
        let old = Environment::from_pairs([("a", "1"), ("b", "2"), ("c", "3")]).unwrap();
        let new = Environment::from_pairs([("c", "3"), ("b", "9"), ("d", "4")]).unwrap();
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Removed {
                    key: b"a".to_vec(),
                    value: b"1".to_vec()
                },
                Change::Changed {
                    key: b"b".to_vec(),
                    old: b"2".to_vec(),
                    new: b"9".to_vec()
                },
                Change::Added {
                    key: b"d".to_vec(),
                    value: b"4".to_vec()
                },
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn the_changes_as_lines_and_counted() {
        let old = Environment::from_pairs([("a", "1"), ("b", "2"), ("c", "3")]).unwrap();
        let new =
            Environment::from_pairs([("b", "9"), ("c", "3"), ("d", "4"), ("e", "5")]).unwrap();
        let changes = diff(&old, &new);
        assert_eq!(
            String::from_utf8(diff_text(&changes)).unwrap(),
            "-a=1\n-b=2\n+b=9\n+d=4\n+e=5\n"
        );
        let summary = DiffSummary::of(&changes);
        assert_eq!(
            summary,
            DiffSummary {
                added: 2,
                removed: 1,
                changed: 1
            }
        );
        assert_eq!(summary.to_string(), "2 added, 1 removed, 1 changed");
        assert!(diff_text(&[]).is_empty());
        assert_eq!(
            DiffSummary::of(&[]).to_string(),
            "0 added, 0 removed, 0 changed"
        );
    }
}
