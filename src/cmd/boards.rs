//! `lmx boards`: list, show and check board definitions.
//!
//! The facts and the rules live in `lmx-boards`; this module only picks
//! the lookup locations from the flags, prints tables and TOML/JSON, and
//! turns problems into an exit status. `lmx boards check` is the tool
//! for people porting a board: it prints every problem with its help
//! line, not just the first.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use lmx_boards::{render, BoardErrors, Catalog, Checked, Resolved, Source};

/// Flags of `lmx boards`.
#[derive(Args, Debug)]
pub struct BoardsArgs {
    /// Look here for board files before ./boards/, ~/.config/lmx/boards/ and the built-in set.
    #[arg(long, global = true, env = "LMX_BOARDS_DIR", value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: BoardsCommand,
}

/// What `lmx boards` does.
#[derive(Subcommand, Debug)]
pub enum BoardsCommand {
    /// List every known board: name, architecture, flash and the file that wins.
    List,
    /// Print one board fully resolved (families merged) and where it came from.
    Show {
        /// Board name, e.g. gl-ar750.
        name: String,
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Validate board files; prints every problem and exits non-zero if any.
    Check {
        /// Board (or families/*.toml family) files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// The board catalog in the standard lookup order, `boards_dir` first.
/// Other commands that take `--board` use this too.
pub fn catalog(boards_dir: Option<&Path>) -> Catalog {
    Catalog::standard(boards_dir)
}

/// The resolved board `name` for every command: the catalog with
/// `boards_dir` first (`--boards-dir` or `LMX_BOARDS_DIR`), and on failure
/// every problem with its file, field and rule, not only their count.
pub fn resolve_board(boards_dir: Option<&Path>, name: &str) -> miette::Result<lmx_boards::Board> {
    catalog(boards_dir)
        .resolve(name)
        .map(|r| r.board)
        .map_err(|e| {
            let help = "fix the board file (lmx boards check FILE); nothing was sent to the board";
            if e.errors.len() == 1 {
                return miette::miette!(help = help, "{e}");
            }
            let details: Vec<String> = e.errors.iter().map(|p| format!("  - {p}")).collect();
            miette::miette!(help = help, "{e}:\n{}", details.join("\n"))
        })
}

/// Runs `lmx boards`.
pub fn run(args: BoardsArgs) -> miette::Result<()> {
    if let Some(dir) = &args.boards_dir {
        if !dir.is_dir() {
            return Err(miette::miette!(
                help =
                    "give a directory that holds NAME.toml board files (and optionally families/)",
                "--boards-dir {}: not a directory",
                dir.display()
            ));
        }
    }
    let catalog = catalog(args.boards_dir.as_deref());
    match args.command {
        BoardsCommand::List => list(&catalog),
        BoardsCommand::Show { name, json } => show(&catalog, &name, json),
        BoardsCommand::Check { files } => check(&catalog, &files),
    }
}

fn list(catalog: &Catalog) -> miette::Result<()> {
    let mut rows = vec![[
        "NAME".to_string(),
        "ARCH".to_string(),
        "FLASH".to_string(),
        "SOURCE".to_string(),
    ]];
    let mut invalid = Vec::new();
    for (entry, result) in catalog.resolve_all() {
        let row = render::ListRow::of(&entry, result.as_ref().ok().map(|r| &r.board));
        rows.push([row.name, row.arch, row.flash, row.source]);
        if let Err(e) = result {
            invalid.push((entry.name, e));
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    if invalid.is_empty() {
        return Ok(());
    }
    for (_, e) in &invalid {
        print_errors(e);
    }
    let names: Vec<&str> = invalid.iter().map(|(n, _)| n.as_str()).collect();
    Err(miette::miette!(
        help = "fix the files, or check one with `lmx boards check FILE`",
        "{} board(s) are invalid: {}",
        names.len(),
        names.join(", ")
    ))
}

fn show(catalog: &Catalog, name: &str, json: bool) -> miette::Result<()> {
    let r: Resolved = catalog.resolve(name)?;
    if json {
        println!("{}", r.to_json_pretty());
        return Ok(());
    }
    println!("# source: {}", r.source);
    for f in &r.families {
        println!("# extends: {f}");
    }
    for s in &r.shadowed {
        println!("# shadows: {s}");
    }
    println!("# fully resolved; addresses in hex");
    print!("{}", render::to_toml_hex(&r.board));
    Ok(())
}

fn print_errors(errors: &BoardErrors) {
    for e in &errors.errors {
        eprintln!("error: {e}");
        if let Some(h) = &e.help {
            eprintln!("  help: {h}");
        }
    }
}

fn check(catalog: &Catalog, files: &[PathBuf]) -> miette::Result<()> {
    let mut bad = 0usize;
    let mut problems = 0usize;
    for file in files {
        // The loader skips a Cargo manifest in a board directory (the
        // shipped boards/ is also the lmx-boards crate), so a glob such as
        // `boards/*.toml` checks the boards, not the manifest.
        if file.file_name().is_some_and(|n| n == "Cargo.toml") {
            println!(
                "skipped: {} (a Cargo manifest, not a board; board directories skip it too)",
                file.display()
            );
            continue;
        }
        match catalog.check_file(file) {
            Ok(Checked::Board(r)) => {
                let via: Vec<String> = r.families.iter().map(Source::to_string).collect();
                if via.is_empty() {
                    println!("ok: {} (board {})", file.display(), r.board.name);
                } else {
                    println!(
                        "ok: {} (board {}, extends {})",
                        file.display(),
                        r.board.name,
                        via.join(" -> ")
                    );
                }
            }
            Ok(Checked::Family { .. }) => {
                println!(
                    "ok: {} (family; checked as far as it goes alone)",
                    file.display()
                );
            }
            Err(e) => {
                bad += 1;
                problems += e.errors.len();
                print_errors(&e);
            }
        }
    }
    if bad == 0 {
        return Ok(());
    }
    Err(miette::miette!(
        help = "each problem above names the file, the field and the rule; docs/boards.md explains every field",
        "{problems} problem(s) in {bad} of {} file(s)",
        files.len()
    ))
}
