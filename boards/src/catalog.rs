//! Where board files are found, which one wins, and resolving a name to
//! a validated [`Board`].
//!
//! A [`Catalog`] is an ordered list of [`Layer`]s. The standard order is
//! `--boards-dir`, `./boards/`, the user's config directory
//! (`$XDG_CONFIG_HOME/lmx/boards/`, else `~/.config/lmx/boards/`) and
//! last the built-in set compiled into the binary. The first layer that
//! has a board of the requested name wins; the same name further down is
//! *shadowed* and reported as such.
//!
//! Inside a directory layer, boards are `*.toml` files at the top level
//! (except `Cargo.toml`, so this crate's own directory works as a layer)
//! and families are `families/*.toml`. `extends = "X"` looks for a
//! family `X` through all layers in order, then for a board `X`.

use std::path::{Path, PathBuf};

use crate::builtin;
use crate::error::{BoardError, BoardErrors, Rule};
use crate::resolve::{self, ChainFile};
use crate::schema::Board;

/// Where a board file came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A file on disk.
    File(PathBuf),
    /// The set compiled into lmx; the string is the path inside `boards/`.
    BuiltIn(&'static str),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::BuiltIn(p) => write!(f, "built-in ({p})"),
        }
    }
}

/// Which of the lookup locations a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerKind {
    /// The directory of a file given to `lmx boards check`.
    CheckedFile,
    /// `--boards-dir`.
    BoardsDir,
    /// `./boards/` in the current directory.
    CurrentDir,
    /// `~/.config/lmx/boards/`.
    UserConfig,
    /// Compiled into the binary.
    BuiltIn,
}

/// Whether a file is a board or a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    /// A board: listed, and must resolve to a complete [`Board`].
    Board,
    /// A family: shared facts that boards extend; never listed.
    Family,
}

/// One board or family file, not yet parsed.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Name (the file name without `.toml`).
    pub name: String,
    /// Board or family.
    pub kind: DocKind,
    /// Where it came from.
    pub source: Source,
    text: Result<String, String>,
}

impl Doc {
    /// A document held in memory, as if read from `path` (the fuzz
    /// targets' boards).
    pub(crate) fn from_text(name: &str, kind: DocKind, path: &str, text: &str) -> Self {
        Doc {
            name: name.to_string(),
            kind,
            source: Source::File(PathBuf::from(path)),
            text: Ok(text.to_string()),
        }
    }

    fn from_path(path: &Path, kind: DocKind) -> Self {
        Doc {
            name: stem(path),
            kind,
            source: Source::File(path.to_path_buf()),
            text: std::fs::read_to_string(path).map_err(|e| e.to_string()),
        }
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One lookup location and the files found there.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Which location this is.
    pub kind: LayerKind,
    /// The directory, for directory layers.
    pub dir: Option<PathBuf>,
    /// Boards and families found.
    pub docs: Vec<Doc>,
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "Cargo.toml"))
        .collect();
    files.sort();
    files
}

impl Layer {
    /// Reads `dir/*.toml` (boards, except `Cargo.toml`) and
    /// `dir/families/*.toml` (families). A missing directory is an empty layer.
    pub fn from_dir(kind: LayerKind, dir: &Path) -> Self {
        let mut docs: Vec<Doc> = toml_files(dir)
            .iter()
            .map(|p| Doc::from_path(p, DocKind::Board))
            .collect();
        docs.extend(
            toml_files(&dir.join("families"))
                .iter()
                .map(|p| Doc::from_path(p, DocKind::Family)),
        );
        Layer {
            kind,
            dir: Some(dir.to_path_buf()),
            docs,
        }
    }

    /// The set compiled into the binary.
    pub fn builtin() -> Self {
        Layer {
            kind: LayerKind::BuiltIn,
            dir: None,
            docs: builtin::FILES
                .iter()
                .map(|f| Doc {
                    name: f.name.to_string(),
                    kind: if f.family {
                        DocKind::Family
                    } else {
                        DocKind::Board
                    },
                    source: Source::BuiltIn(f.path),
                    text: Ok(f.text.to_string()),
                })
                .collect(),
        }
    }

    fn find(&self, name: &str, kind: DocKind) -> Option<&Doc> {
        self.docs.iter().find(|d| d.name == name && d.kind == kind)
    }
}

/// A board resolved through its families and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The board, fully merged.
    pub board: Board,
    /// The file that won.
    pub source: Source,
    /// The families it inherits from, nearest first.
    pub families: Vec<Source>,
    /// Files of the same name further down the lookup order.
    pub shadowed: Vec<Source>,
}

impl Resolved {
    /// JSON with the board and where it came from:
    /// `{"source", "families", "shadowed", "board"}`.
    pub fn to_json_pretty(&self) -> String {
        let value = serde_json::json!({
            "source": self.source.to_string(),
            "families": self.families.iter().map(Source::to_string).collect::<Vec<_>>(),
            "shadowed": self.shadowed.iter().map(Source::to_string).collect::<Vec<_>>(),
            "board": self.board,
        });
        serde_json::to_string_pretty(&value).expect("a board always serializes")
    }
}

/// One row of [`Catalog::boards`].
#[derive(Debug, Clone)]
pub struct Entry {
    /// Board name.
    pub name: String,
    /// The file that wins.
    pub source: Source,
    /// Files of the same name that lose.
    pub shadowed: Vec<Source>,
}

/// The lookup locations, highest priority first.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The layers, highest priority first.
    pub layers: Vec<Layer>,
}

/// The user's board directory: `$XDG_CONFIG_HOME/lmx/boards`, else
/// `$HOME/.config/lmx/boards`.
pub fn user_boards_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(base.join("lmx").join("boards"))
}

impl Catalog {
    /// Only the built-in boards.
    pub fn builtin() -> Self {
        Catalog {
            layers: vec![Layer::builtin()],
        }
    }

    /// The standard lookup order: `boards_dir` (the `--boards-dir`
    /// flag), `./boards/`, the user's config directory, built-in.
    pub fn standard(boards_dir: Option<&Path>) -> Self {
        let mut layers = Vec::new();
        if let Some(d) = boards_dir {
            layers.push(Layer::from_dir(LayerKind::BoardsDir, d));
        }
        layers.push(Layer::from_dir(LayerKind::CurrentDir, Path::new("boards")));
        if let Some(d) = user_boards_dir() {
            layers.push(Layer::from_dir(LayerKind::UserConfig, &d));
        }
        layers.push(Layer::builtin());
        Catalog { layers }
    }

    /// Every board name with the file that wins, sorted by name.
    pub fn boards(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for layer in &self.layers {
            for doc in layer.docs.iter().filter(|d| d.kind == DocKind::Board) {
                match out.iter_mut().find(|e| e.name == doc.name) {
                    Some(e) => e.shadowed.push(doc.source.clone()),
                    None => out.push(Entry {
                        name: doc.name.clone(),
                        source: doc.source.clone(),
                        shadowed: Vec::new(),
                    }),
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn all(&self, name: &str, kind: DocKind) -> Vec<&Doc> {
        self.layers
            .iter()
            .filter_map(|l| l.find(name, kind))
            .collect()
    }

    /// Resolves the board called `name` through its families and validates it.
    pub fn resolve(&self, name: &str) -> Result<Resolved, BoardErrors> {
        let found = self.all(name, DocKind::Board);
        let Some(doc) = found.first() else {
            let known: Vec<String> = self.boards().into_iter().map(|e| e.name).collect();
            let refs: Vec<&str> = known.iter().map(String::as_str).collect();
            let mut e = BoardError::new(
                name,
                "",
                Rule::NotFound,
                format!("no board named \"{name}\" in {}", self.describe_layers()),
            );
            e = match crate::error::did_you_mean(name, &refs) {
                Some(s) => {
                    e.with_help(format!("did you mean `{s}`? (`lmx boards list` shows all)"))
                }
                None => e.with_help("`lmx boards list` shows the known boards"),
            };
            return Err(e.into());
        };
        let mut r = self.resolve_doc(doc)?;
        r.shadowed = found[1..].iter().map(|d| d.source.clone()).collect();
        Ok(r)
    }

    /// Resolves every board; one result per name, sorted.
    pub fn resolve_all(&self) -> Vec<(Entry, Result<Resolved, BoardErrors>)> {
        self.boards()
            .into_iter()
            .map(|e| {
                let r = self.resolve(&e.name);
                (e, r)
            })
            .collect()
    }

    fn describe_layers(&self) -> String {
        let parts: Vec<String> = self
            .layers
            .iter()
            .map(|l| match &l.dir {
                Some(d) => d.display().to_string(),
                None => "the built-in set".to_string(),
            })
            .collect();
        parts.join(", ")
    }

    fn parent(&self, name: &str) -> Option<&Doc> {
        self.all(name, DocKind::Family)
            .into_iter()
            .next()
            .or_else(|| self.all(name, DocKind::Board).into_iter().next())
    }

    /// Resolves one board document: follows `extends`, merges, validates.
    pub fn resolve_doc(&self, doc: &Doc) -> Result<Resolved, BoardErrors> {
        if doc.kind == DocKind::Family {
            return Err(BoardError::new(
                doc.source.to_string(),
                "",
                Rule::InvalidValue,
                format!("\"{}\" is a family, not a board", doc.name),
            )
            .with_help("families are resolved through the boards that extend them")
            .into());
        }
        let (chain, sources) = self.chain_of(doc)?;
        let board = resolve::finish(&chain)?;
        Ok(Resolved {
            board,
            source: doc.source.clone(),
            families: sources[1..].to_vec(),
            shadowed: Vec::new(),
        })
    }

    /// Parses `doc` and every file it extends, nearest first.
    fn chain_of(&self, doc: &Doc) -> Result<(Vec<ChainFile>, Vec<Source>), BoardErrors> {
        let mut chain: Vec<ChainFile> = Vec::new();
        let mut sources: Vec<Source> = Vec::new();
        let mut errors: Vec<BoardError> = Vec::new();
        let mut cur = doc;
        loop {
            let file = cur.source.to_string();
            let text = cur.text.as_ref().map_err(|e| {
                BoardError::new(&file, "", Rule::Io, format!("cannot read the file: {e}"))
            })?;
            let table = resolve::parse_table(&file, text)?;
            let cf = ChainFile { file, table };
            resolve::check_identity(&cf, &cur.name, &mut errors);
            let ext = resolve::extends_of(&cf)?;
            chain.push(cf);
            sources.push(cur.source.clone());
            let Some(parent_name) = ext else { break };
            let child = chain.last().expect("just pushed").file.clone();
            let Some(parent) = self.parent(&parent_name) else {
                errors.push(
                    BoardError::new(
                        child,
                        "extends",
                        Rule::ExtendsUnknown,
                        format!("`extends = \"{parent_name}\"` names no known family or board"),
                    )
                    .with_help(format!(
                        "families live in a `families/` folder next to the boards; looked in {}",
                        self.describe_layers()
                    )),
                );
                return Err(BoardErrors { errors });
            };
            if sources.contains(&parent.source) {
                let mut names: Vec<String> = chain.iter().map(|c| c.file.clone()).collect();
                names.push(parent.source.to_string());
                errors.push(
                    BoardError::new(
                        child,
                        "extends",
                        Rule::ExtendsCycle,
                        format!("`extends` forms a cycle: {}", names.join(" -> ")),
                    )
                    .with_help("a family must not extend, directly or not, a file that extends it"),
                );
                return Err(BoardErrors { errors });
            }
            cur = parent;
        }
        if !errors.is_empty() {
            return Err(BoardErrors { errors });
        }
        Ok((chain, sources))
    }

    /// Checks a file a person is writing. `extends` is looked up first
    /// next to the file (its directory, or the parent of a `families/`
    /// directory), then in this catalog.
    ///
    /// A board must resolve and validate completely. A family (a file in
    /// a `families/` folder) is checked as far as it can be alone:
    /// syntax, identity keys, `extends`, and the keys and values it sets
    /// (together with its own families); missing facts are not demanded,
    /// as the boards that extend it supply them.
    pub fn check_file(&self, path: &Path) -> Result<Checked, BoardErrors> {
        let parent = path.parent().unwrap_or(Path::new("."));
        let in_families = parent.file_name().is_some_and(|n| n == "families");
        let kind = if in_families {
            DocKind::Family
        } else {
            DocKind::Board
        };
        let home = if in_families {
            parent.parent().unwrap_or(Path::new("."))
        } else {
            parent
        };
        let mut layers = vec![Layer::from_dir(LayerKind::CheckedFile, home)];
        layers.extend(self.layers.iter().cloned());
        let cat = Catalog { layers };
        let doc = Doc::from_path(path, kind);
        if kind == DocKind::Board {
            return cat.resolve_doc(&doc).map(|r| Checked::Board(Box::new(r)));
        }
        let (chain, sources) = cat.chain_of(&doc)?;
        let merged = resolve::merge_chain(&chain);
        match resolve::deserialize(&chain, merged) {
            Ok(_) => {}
            Err(errors) => {
                let real: Vec<BoardError> = errors
                    .into_iter()
                    .filter(|e| e.rule != Rule::MissingField)
                    .collect();
                if !real.is_empty() {
                    return Err(BoardErrors { errors: real });
                }
            }
        }
        Ok(Checked::Family {
            source: doc.source.clone(),
            families: sources[1..].to_vec(),
        })
    }
}

/// The outcome of [`Catalog::check_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A board that resolved and validated.
    Board(Box<Resolved>),
    /// A family whose keys and values are valid as far as they go.
    Family {
        /// The family file.
        source: Source,
        /// The families it extends, nearest first.
        families: Vec<Source>,
    },
}
