//! Differences between two environments.
//!
//! Before writing an environment back to a board, or when a board
//! misbehaves after an update, the question is "what changed?". Order is
//! not a change (U-Boot sorts on save), so [`diff`] compares by name and
//! lists removals, changes and additions in a stable order: the old
//! environment's order, then new names in the new environment's order.

use crate::environment::Environment;

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
}
