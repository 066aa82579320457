//! A boot plan kept on disk: written beside a build's artifacts
//! (`boot-plan.json`) and read back, so a plan can be made once and booted
//! many times.
//!
//! `lmx tftpboot` builds through [`build_with_plan`] (the path `lmx build`
//! takes, plus the plan file) and boots a saved plan through [`load`]: the
//! `manifest.json` of `lmx build`, whose artifacts are re-hashed against
//! the record first, or a `boot-plan.json`, whose loads U-Boot's `crc32`
//! alone checks. Either way the result is a [`Prepared`]: the plan and
//! the file on disk behind each TFTP name it loads.

use std::path::{Path, PathBuf};

use crate::build::{BuildError, BuildRequest};
use crate::manifest::{Manifest, ManifestError, MANIFEST_FILE};
use crate::plan::BootPlan;

/// The plan file written next to the artifacts.
pub const PLAN_FILE: &str = "boot-plan.json";

/// A plan and where its files are.
#[derive(Debug)]
pub struct Prepared {
    /// The plan.
    pub plan: BootPlan,
    /// TFTP name → file on disk, exactly the plan's loads.
    pub files: Vec<(String, PathBuf)>,
    /// Decisions worth telling the user.
    pub notes: Vec<String>,
}

/// Why a saved plan could not be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SavedError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path} is not JSON")]
    NotJson {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but no boot plan in it.
    #[error("{path} holds no boot plan")]
    NoPlan {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest that does not read as one.
    #[error("{0}")]
    Manifest(ManifestError),
    /// A manifest whose artifacts changed after the build.
    #[error("{0}")]
    #[diagnostic(help(
        "rebuild with `lmx build`, or boot the files as they are with --kernel/--rootfs/--dtb"
    ))]
    Changed(ManifestError),
    /// A file the plan loads is missing.
    #[error("the plan loads {name}, but {} does not exist", path.display())]
    Missing {
        /// The TFTP name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The plan was made for another board.
    #[error("{} was planned for board {planned}, not {board}", path.display())]
    #[diagnostic(help("boot it with --board {planned}, or rebuild for this board"))]
    OtherBoard {
        /// The plan file.
        path: PathBuf,
        /// The board it was made for.
        planned: String,
        /// The board asked for.
        board: String,
    },
}

/// Builds the artifact directory `out` from `req` through
/// [`crate::build::build`] (the path `lmx build` takes), writes
/// [`PLAN_FILE`] beside the manifest, and returns the plan with its files.
pub fn build_with_plan(req: &BuildRequest, out: &Path) -> Result<Prepared, BuildError> {
    let b = crate::build::build(req, out, false)?;
    let json = serde_json::to_vec_pretty(&b.plan).expect("a plan always serializes");
    let plan_file = out.join(PLAN_FILE);
    crate::write_atomically(&plan_file, &json).map_err(|e| BuildError::Output {
        path: plan_file.clone(),
        what: e.to_string(),
    })?;
    let files = files_of(&b.plan, out);
    Ok(Prepared {
        plan: b.plan,
        files,
        notes: b.notes,
    })
}

/// The saved plan in `dir`, if it holds one: [`PLAN_FILE`], else the
/// manifest.
pub fn in_dir(dir: &Path) -> Option<PathBuf> {
    [PLAN_FILE, MANIFEST_FILE]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Reads a plan made earlier: a `manifest.json` of `lmx build` (or its
/// directory), whose artifacts are re-hashed against the record first; or
/// a [`PLAN_FILE`] (or any JSON whose `plan` field is one), whose loads
/// U-Boot's `crc32` alone checks. Files are looked up next to it and must
/// exist.
pub fn load(path: &Path) -> Result<Prepared, SavedError> {
    let file = if path.is_dir() {
        path.join(MANIFEST_FILE)
    } else {
        path.to_path_buf()
    };
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let text = std::fs::read_to_string(&file).map_err(|source| SavedError::Read {
        path: file.clone(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| SavedError::NotJson {
            path: file.clone(),
            source,
        })?;
    let mut notes = Vec::new();
    let plan = if value.get("schema").is_some() {
        let m = Manifest::read(&file).map_err(SavedError::Manifest)?;
        m.verify_files(&dir).map_err(SavedError::Changed)?;
        notes.push(format!(
            "manifest {}: {} artifacts re-hashed, all as recorded",
            file.display(),
            m.artifacts.len()
        ));
        BootPlan {
            board: m.board,
            dialect: m.dialect,
            layout: m.layout,
            bootargs: m.bootargs,
            steps: m.steps,
            boot_via: m.boot_via,
        }
    } else {
        serde_json::from_value(value.get("plan").cloned().unwrap_or(value)).map_err(|source| {
            SavedError::NoPlan {
                path: file.clone(),
                source,
            }
        })?
    };
    let files = files_of(&plan, &dir);
    if let Some((name, p)) = files.iter().find(|(_, p)| !p.is_file()) {
        return Err(SavedError::Missing {
            name: name.clone(),
            path: p.clone(),
        });
    }
    Ok(Prepared { plan, files, notes })
}

impl Prepared {
    /// `self`, if it was planned for `board`; `path` names the plan file
    /// in the error.
    pub fn for_board(self, board: &str, path: &Path) -> Result<Prepared, SavedError> {
        if self.plan.board != board {
            return Err(SavedError::OtherBoard {
                path: path.to_path_buf(),
                planned: self.plan.board,
                board: board.to_string(),
            });
        }
        Ok(self)
    }
}

/// TFTP name → path under `dir`, for each of the plan's loads.
fn files_of(plan: &BootPlan, dir: &Path) -> Vec<(String, PathBuf)> {
    plan.loads()
        .map(|l| (l.file.clone(), dir.join(&l.file)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(board: &str) -> BootPlan {
        BootPlan {
            board: board.into(),
            dialect: crate::bootargs::Dialect {
                cbsize: 1024,
                cbsize_known: true,
                hush: true,
                maxargs: 64,
                maxargs_known: true,
                marker_overhead: 0,
                wrap: None,
            },
            layout: serde_json::from_value(serde_json::json!({
                "ram": {"base": 0, "size": 0x1000_0000u64},
                "regions": [], "phram_erase": 65536, "kernel_image": 0
            }))
            .unwrap(),
            bootargs: String::new(),
            steps: vec![
                crate::plan::Step::Load(crate::plan::LoadStep {
                    artifact: "kernel".into(),
                    file: "Image".into(),
                    addr: 0x1000,
                    phys: 0x1000,
                    size: 3,
                    crc32: 0x352441c2,
                    check: Default::default(),
                }),
                crate::plan::Step::Boot {
                    command: "booti 0x1000".into(),
                },
            ],
            boot_via: Default::default(),
        }
    }

    #[test]
    fn a_plan_file_is_read_with_its_files_next_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(PLAN_FILE);
        std::fs::write(&file, serde_json::to_vec(&plan("b")).unwrap()).unwrap();
        assert_eq!(in_dir(dir.path()), Some(file.clone()));
        let missing = load(&file).unwrap_err();
        assert_eq!(
            missing.to_string(),
            format!(
                "the plan loads Image, but {} does not exist",
                dir.path().join("Image").display()
            )
        );
        std::fs::write(dir.path().join("Image"), b"abc").unwrap();
        let p = load(&file).unwrap();
        assert_eq!(p.plan, plan("b"));
        assert_eq!(p.files, vec![("Image".into(), dir.path().join("Image"))]);
        assert!(p.notes.is_empty());
        let other = p.for_board("c", &file).unwrap_err();
        assert_eq!(
            other.to_string(),
            format!("{} was planned for board b, not c", file.display())
        );
        // A JSON object whose `plan` field is the plan reads the same.
        let wrapped = dir.path().join("run.json");
        let v = serde_json::json!({ "plan": plan("b") });
        std::fs::write(&wrapped, v.to_string()).unwrap();
        assert_eq!(load(&wrapped).unwrap().plan, plan("b"));
    }

    #[test]
    fn not_json_and_no_plan_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(in_dir(dir.path()), None);
        let f = dir.path().join("x.json");
        std::fs::write(&f, "{").unwrap();
        assert!(matches!(load(&f), Err(SavedError::NotJson { .. })));
        std::fs::write(&f, "{\"plan\": 3}").unwrap();
        let e = load(&f).unwrap_err();
        assert!(matches!(e, SavedError::NoPlan { .. }));
        assert_eq!(e.to_string(), format!("{} holds no boot plan", f.display()));
        let e = load(&dir.path().join("none.json")).unwrap_err();
        assert!(matches!(e, SavedError::Read { .. }));
    }
}
