//! Property tests of the two ways lmx writes a value into U-Boot's
//! environment from the prompt: the boot plan's `setenv` lines
//! (`bootargs::Dialect::setenv_lines`, one line or `${NAME}` appends) and
//! the console's `quote::setenv_line`. For random values of every
//! printable byte, on every dialect (hush or the simple parser, any
//! CBSIZE and MAXARGS), whatever lmx produces is run through a model of
//! that U-Boot's parser, and what U-Boot would store must be what was
//! meant: the value itself (`setenv_line`), or its words joined by one
//! blank (`setenv_lines`, written for kernel command lines). A value
//! that cannot be written must be refused, never altered.
//!
//! The parser models follow the sources the quoting modules cite: hush
//! (`common/cli_hush.c`: single quotes literal except that a backslash
//! still escapes, double quotes expand `${x}`, a backslash escapes
//! outside quotes, `;` separates commands) and the simple parser of old
//! builds (`common/main.c`: `${x}` and `$(x)` expanded, then split on
//! blanks, quotes kept as text). The real U-Boot is held to the same
//! rules for a sample of values in `console/tests/qemu.rs`
//! (`two_hundred_commands_through_a_16_byte_fifo_at_115200`).

use std::collections::HashMap;

use lmx_builder::bootargs::Dialect;
use proptest::prelude::*;

/// Runs `line` on a hush prompt; `None` where this model (or hush) would
/// not take it (an open quote).
fn hush_run(env: &mut HashMap<String, String>, line: &str) -> Option<()> {
    let b: Vec<char> = line.chars().collect();
    let mut commands: Vec<Vec<String>> = vec![Vec::new()];
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let expand = |env: &HashMap<String, String>, b: &[char], i: &mut usize, out: &mut String| {
        // At `$`: `${name}` (or `$name`).
        if b.get(*i + 1) == Some(&'{') {
            let end = b[*i..].iter().position(|&c| c == '}').map(|p| *i + p);
            if let Some(end) = end {
                let name: String = b[*i + 2..end].iter().collect();
                out.push_str(env.get(&name).map(String::as_str).unwrap_or(""));
                *i = end;
                return;
            }
        }
        out.push('$');
    };
    while i < b.len() {
        let c = b[i];
        match c {
            ' ' | '\t' => {
                if in_word {
                    commands.last_mut()?.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            ';' => {
                if in_word {
                    commands.last_mut()?.push(std::mem::take(&mut word));
                    in_word = false;
                }
                // Hush expands a command's words when it runs it, after
                // the commands before it on the line.
                setenv(env, &commands.pop()?);
                commands.push(Vec::new());
            }
            '\\' => {
                in_word = true;
                i += 1;
                word.push(*b.get(i)?);
            }
            '\'' => {
                in_word = true;
                i += 1;
                loop {
                    match *b.get(i)? {
                        '\'' => break,
                        '\\' => {
                            i += 1;
                            word.push(*b.get(i)?);
                        }
                        c => word.push(c),
                    }
                    i += 1;
                }
            }
            '"' => {
                in_word = true;
                i += 1;
                loop {
                    match *b.get(i)? {
                        '"' => break,
                        '\\' => {
                            i += 1;
                            word.push(*b.get(i)?);
                        }
                        '$' => expand(env, &b, &mut i, &mut word),
                        c => word.push(c),
                    }
                    i += 1;
                }
            }
            '$' => {
                in_word = true;
                expand(env, &b, &mut i, &mut word);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
        i += 1;
    }
    if in_word {
        commands.last_mut()?.push(word);
    }
    for w in commands {
        setenv(env, &w);
    }
    Some(())
}

/// Runs `line` on an old build's simple parser: `;` separates commands
/// (`run_command` splits first), each command's `${x}` and `$(x)` are
/// expanded when it runs (`process_macros`), then blanks separate words;
/// quotes and backslashes are text.
fn simple_run(env: &mut HashMap<String, String>, line: &str) {
    for command in line.split(';') {
        let mut expanded = String::new();
        let mut rest = command;
        while let Some(at) = rest.find('$') {
            expanded.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let close = match after.chars().next() {
                Some('{') => Some('}'),
                Some('(') => Some(')'),
                _ => None,
            };
            match close.and_then(|c| after.find(c)) {
                Some(end) => {
                    let name = &after[1..end];
                    expanded.push_str(env.get(name).map(String::as_str).unwrap_or(""));
                    rest = &after[end + 1..];
                }
                None => {
                    expanded.push('$');
                    rest = after;
                }
            }
        }
        expanded.push_str(rest);
        let words: Vec<String> = expanded.split_whitespace().map(str::to_string).collect();
        setenv(env, &words);
    }
}

fn setenv(env: &mut HashMap<String, String>, w: &[String]) {
    if w.first().map(String::as_str) != Some("setenv") || w.len() < 2 {
        return;
    }
    if w.len() == 2 {
        env.remove(&w[1]);
    } else {
        env.insert(w[1].clone(), w[2..].join(" "));
    }
}

fn value() -> impl Strategy<Value = String> {
    // Printable ASCII, weighted towards what parsers treat specially.
    let special = prop_oneof![
        Just(' '),
        Just('\''),
        Just('"'),
        Just('\\'),
        Just('$'),
        Just(';'),
        Just('{'),
        Just('}'),
        Just('#'),
        Just('='),
    ];
    proptest::collection::vec(
        prop_oneof![3 => (0x21u8..0x7f).prop_map(char::from), 2 => special],
        1..80,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn bootargs_dialect() -> impl Strategy<Value = Dialect> {
    (any::<bool>(), 64usize..1024, 3usize..32, 0usize..40).prop_map(
        |(hush, cbsize, maxargs, marker_overhead)| Dialect {
            cbsize,
            cbsize_known: true,
            hush,
            maxargs,
            maxargs_known: true,
            marker_overhead,
            wrap: None,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn setenv_lines_store_the_words_of_the_value(d in bootargs_dialect(), value in value()) {
        let Ok(lines) = d.setenv_lines("bootargs", &value) else {
            return Ok(());
        };
        let mut env = HashMap::new();
        env.insert("bootargs".to_string(), "stale value".to_string());
        for line in &lines {
            prop_assert!(d.check(line).is_ok(), "{line:?} is over the dialect's limits");
            if d.hush {
                prop_assert!(hush_run(&mut env, line).is_some(), "hush cannot parse {line:?}");
            } else {
                simple_run(&mut env, line);
            }
        }
        let meant = value.split_whitespace().collect::<Vec<_>>().join(" ");
        prop_assert_eq!(env.get("bootargs").cloned().unwrap_or_default(), meant, "lines {:?}", lines);
    }

    #[test]
    fn setenv_line_stores_the_value_itself(
        hush in any::<bool>(),
        braces_required in any::<bool>(),
        value in value(),
    ) {
        let mut d = lmx_console::Dialect::mainline();
        d.quotes_special = hush;
        d.braces_required = braces_required;
        let Ok(line) = lmx_console::quote::setenv_line(&d, "lmxv", &value) else {
            // Refused: the simple parser would change it.
            prop_assert!(!hush, "hush refused {value:?}");
            return Ok(());
        };
        let mut env = HashMap::new();
        if hush {
            prop_assert!(hush_run(&mut env, &line).is_some(), "hush cannot parse {line:?}");
        } else {
            simple_run(&mut env, &line);
        }
        prop_assert_eq!(env.get("lmxv"), Some(&value), "line {:?}", line);
    }
}

#[test]
fn the_models_agree_with_the_recorded_u_boot() {
    // `console/tests/fixtures/qemu-aarch64-quoting.raw`: hush 2023.01
    // stored `a b;c$de"f'g` for `setenv t1 'a b;c$d\e"f'\''g'`.
    let mut env = HashMap::new();
    hush_run(&mut env, r#"setenv t1 'a b;c$d\e"f'\''g'"#).unwrap();
    assert_eq!(env["t1"], r#"a b;c$de"f'g"#);
    hush_run(&mut env, "setenv t2 'x  y' ; setenv t3 \"${t2}\"' z'").unwrap();
    assert_eq!(env["t3"], "x  y z");
    let mut env = HashMap::new();
    simple_run(&mut env, "setenv x a  b; setenv y ${x} c");
    assert_eq!((env["x"].as_str(), env["y"].as_str()), ("a b", "a b c"));
}
