//! One line limit and MAXARGS, swept: for the dialect of every shipped
//! board (the eight real ones and the virtual twins), a `bootargs` value
//! of every length up to past the line limit and of every word count up
//! to past `CONFIG_SYS_MAXARGS` is planned into `setenv` lines that
//!
//! * the console accepts as they are (`lmx_console::ShellMachine::check`
//!   with the board's own console dialect: the plan's limit is the
//!   console's, through zyxel-nwa50ax's command wrapper too);
//! * hold at most MAXARGS words as that U-Boot splits them, after the
//!   simple parser's expansion of `${bootargs}` as well;
//! * rebuild the value exactly when replayed the way U-Boot runs them;
//!
//! or it is refused, and only for a reason that holds on that U-Boot.

use lmx_boards::shell::invocations;
use lmx_boards::{Board, Catalog};
use lmx_builder::bootargs::{BootargsError, Dialect};
use lmx_console::{Pacing, ShellMachine};

const NAME: &str = "bootargs";

#[path = "common/sweep_values.rs"]
mod sweep_values;

use sweep_values::values;

/// Replays the lines as U-Boot runs them; returns the value stored and
/// checks each expanded line of the simple parser against CBSIZE and
/// MAXARGS.
fn replay(d: &Dialect, lines: &[String]) -> String {
    let mut env = String::new();
    for l in lines {
        let rest = l.strip_prefix(&format!("setenv {NAME} ")).unwrap();
        env = if d.hush {
            if let Some(r) = rest.strip_prefix(&format!("\"${{{NAME}}}\"'")) {
                format!("{env}{}", r.strip_suffix('\'').unwrap())
            } else {
                rest.trim_matches('\'').to_string()
            }
        } else {
            let stored = match rest.strip_prefix(&format!("${{{NAME}}} ")) {
                Some(r) => format!("{env} {r}"),
                None => rest.to_string(),
            };
            let expanded = format!("setenv {NAME} {stored}");
            assert!(expanded.len() <= d.expanded_max(), "{expanded}");
            assert!(
                expanded.split(' ').count() <= d.maxargs,
                "{expanded}: more than {} words after expansion",
                d.maxargs
            );
            stored
        };
    }
    env
}

fn sweep(b: &Board) -> (usize, usize) {
    let d = Dialect::of(b);
    let console = ShellMachine::new(
        lmx_console::Dialect::from_board(b).unwrap(),
        Pacing::default(),
    );
    assert_eq!(
        d.max_line(),
        console.dialect().max_command_len(),
        "{}",
        b.name
    );
    let top = d.max_line().max(d.expanded_max()) + 64;
    let (mut planned, mut refused) = (0, 0);
    for n in 1..=d.maxargs + 2 {
        for len in (2 * n - 1)..=top {
            for value in values(n, len) {
                assert_eq!(value.len(), len);
                assert_eq!(value.split(' ').count(), n);
                match d.setenv_lines(NAME, &value) {
                    Ok(lines) => {
                        planned += 1;
                        for l in &lines {
                            assert!(d.cost(l) <= d.max_line(), "{}: {l}", b.name);
                            console
                                .check(l)
                                .unwrap_or_else(|r| panic!("{}: console refuses {l}: {r}", b.name));
                            for inv in invocations(l, d.hush) {
                                assert!(inv.words.len() <= d.maxargs, "{}: {l}", b.name);
                            }
                        }
                        assert_eq!(replay(&d, &lines), value, "{}: {lines:#?}", b.name);
                    }
                    Err(e) => {
                        refused += 1;
                        let whole = format!("setenv {NAME} {value}");
                        let ok = match &e {
                            BootargsError::ExpandedTooLong { .. } => {
                                !d.hush && whole.len() > d.expanded_max()
                            }
                            BootargsError::ValueTooManyWords { max, .. } => {
                                !d.hush && n > *max && *max == d.maxargs - 2
                            }
                            // Some word alone does not fit a line.
                            BootargsError::LineTooLong { .. }
                            | BootargsError::WrappedLineTooLong { .. } => {
                                value.split(' ').any(|w| {
                                    let alone = if d.hush {
                                        format!("setenv {NAME} \"${{{NAME}}}\"' {w}'")
                                    } else {
                                        format!("setenv {NAME} ${{{NAME}}} {w}")
                                    };
                                    d.cost(&alone) > d.max_line()
                                })
                            }
                            _ => false,
                        };
                        assert!(ok, "{}: {value:?} refused wrongly: {e}", b.name);
                        // What fits one line always plans (hush quotes a
                        // value of several words: two bytes more, which a
                        // wrapper counts as quotes).
                        let first = if d.hush && n > 1 {
                            format!("setenv {NAME} '{value}'")
                        } else {
                            whole.clone()
                        };
                        let one_line = d.cost(&first);
                        assert!(
                            one_line > d.max_line() || (!d.hush && n + 2 > d.maxargs),
                            "{}: {value:?} fits one line but was refused: {e}",
                            b.name
                        );
                    }
                }
            }
        }
    }
    (planned, refused)
}

#[test]
fn every_length_and_word_count_plans_within_both_limits_on_every_board() {
    let all = Catalog::builtin().resolve_all();
    assert!(all.len() >= 13);
    for (_, r) in all {
        let b = r.unwrap().board;
        let (planned, refused) = sweep(&b);
        assert!(
            planned > 0 && refused > 0,
            "{}: {planned}/{refused}",
            b.name
        );
    }
}

#[test]
fn the_reported_qemu_mips_case_plans() {
    // 218 bytes of short words on qemu-mips (CBSIZE 256, hush with $?):
    // once planned into a 236-byte line the console then refused.
    let b = Catalog::builtin().resolve("qemu-mips").unwrap().board;
    let d = Dialect::of(&b);
    let words: Vec<String> = (0..60).map(|i| format!("a{i:03}")).collect();
    let value = words.join(" ")[..218].trim_end().to_string();
    let lines = d.setenv_lines(NAME, &value).unwrap();
    assert!(lines.len() > 1, "{lines:?}");
    let console = ShellMachine::new(
        lmx_console::Dialect::from_board(&b).unwrap(),
        Pacing::default(),
    );
    for l in &lines {
        console.check(l).unwrap();
    }
}
