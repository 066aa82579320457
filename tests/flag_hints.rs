//! Every `--flag` that lmx's messages tell a user to pass exists. The
//! flags are read from the real binary's `--help` (every command and
//! subcommand); the messages are the string literals of the binary and
//! the library crates (comments skipped). A hint naming a flag that
//! exists nowhere — or only on another command — sends a user in circles,
//! so a flag must at least exist somewhere; flags of other programs that
//! lmx runs or quotes are listed below with the program.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Flags of other programs that appear in lmx's strings.
const FOREIGN: &[(&str, &str)] = &[("--help", "every command's own (clap)")];

fn help(path: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lmx"))
        .args(path)
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .expect("run lmx --help");
    assert!(out.status.success(), "lmx {path:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Subcommand names listed under `Commands:` in a help text.
fn subcommands(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            if line.trim().is_empty() || !line.starts_with("  ") {
                break;
            }
            // Wrapped descriptions are indented further than names.
            if line.starts_with("   ") {
                continue;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            if name != "help" {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// `--long` words in a text.
fn flags_in(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'-'
            && b[i + 1] == b'-'
            && b[i + 2].is_ascii_lowercase()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-'))
        {
            let mut j = i + 2;
            while j < b.len()
                && (b[j].is_ascii_lowercase() || b[j].is_ascii_digit() || b[j] == b'-')
            {
                j += 1;
            }
            out.push(text[i..j].trim_end_matches('-').to_string());
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Every flag of every command, recursively.
fn known_flags() -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    // Hidden commands (not listed under `Commands:`) that take flags.
    let mut todo: Vec<Vec<String>> = vec![vec![], vec!["image".into(), "squashfs".into()]];
    while let Some(path) = todo.pop() {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&refs);
        known.extend(flags_in(&text));
        for sub in subcommands(&text) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
    }
    known
}

/// The string literals of a Rust file's non-comment lines, roughly: the
/// text between the first and the last double quote of each line.
fn literals(source: &str) -> Vec<(usize, String)> {
    source
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter_map(|(n, l)| {
            let a = l.find('"')?;
            let b = l.rfind('"')?;
            (b > a).then(|| (n + 1, l[a + 1..b].to_string()))
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_flag_a_message_suggests_exists() {
    let known = known_flags();
    for must in ["--phram", "--dtb", "--root", "--board-ip", "--port"] {
        assert!(known.contains(must), "{must} not found in any --help");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "src",
        "builder/src",
        "boards/src",
        "console/src",
        "env/src",
        "flasher/src",
        "tftpd/src",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 30, "{files:?}");
    let mut unknown = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (line, lit) in literals(&text) {
            for flag in flags_in(&lit) {
                if !known.contains(&flag) && !FOREIGN.iter().any(|(x, _)| *x == flag) {
                    unknown.push(format!(
                        "{}:{line}: {flag} in {lit:?}",
                        f.strip_prefix(root).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "messages name flags no lmx command has:\n{}",
        unknown.join("\n")
    );
}
