//! From the user's kernel, rootfs and device tree to a [`BootPlan`] and a
//! directory holding exactly the files it loads.
//!
//! This is the "build on the fly" half of `lmx tftpboot`: it calls
//! `lmx_builder::build::build`, the same path `lmx build` takes, so both
//! commands make the same plan from the same inputs and flags. A plan
//! written by an earlier run (`boot-plan.json`, or a manifest that carries
//! one) is read back by [`load`], so a plan can be made once and booted
//! many times.

use std::path::{Path, PathBuf};

use lmx_builder::build::{BuildError, BuildRequest};
use lmx_builder::plan::BootPlan;
use miette::{miette, IntoDiagnostic, WrapErr};

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

/// Builds the artifact directory `out` from `req` through
/// `lmx_builder::build` (the path `lmx build` takes), writes
/// `boot-plan.json` beside the manifest, and returns the plan with its
/// files.
pub fn build(req: &BuildRequest, out: &Path) -> Result<Prepared, BuildError> {
    let b = lmx_builder::build::build(req, out, false)?;
    let json = serde_json::to_vec_pretty(&b.plan).expect("a plan always serializes");
    let plan_file = out.join(PLAN_FILE);
    lmx_builder::write_atomically(&plan_file, &json).map_err(|e| BuildError::Output {
        path: plan_file.clone(),
        what: e.to_string(),
    })?;
    let files = b
        .plan
        .loads()
        .map(|l| (l.file.clone(), out.join(&l.file)))
        .collect();
    Ok(Prepared {
        plan: b.plan,
        files,
        notes: b.notes,
    })
}

/// Reads a plan made earlier: the `manifest.json` of `lmx build` (or its
/// directory), whose artifacts are re-hashed against the record first; or a
/// `boot-plan.json` of `lmx tftpboot --out`, whose loads U-Boot's `crc32`
/// alone checks. Files are looked up next to it.
pub fn load(path: &Path) -> miette::Result<Prepared> {
    let file = if path.is_dir() {
        path.join(lmx_builder::manifest::MANIFEST_FILE)
    } else {
        path.to_path_buf()
    };
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let text = std::fs::read_to_string(&file)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading {}", file.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .into_diagnostic()
        .wrap_err_with(|| format!("{} is not JSON", file.display()))?;
    let mut notes = Vec::new();
    let plan = if value.get("schema").is_some() {
        let m = lmx_builder::manifest::Manifest::read(&file).map_err(|e| miette!("{e}"))?;
        m.verify_files(&dir).map_err(|e| {
            miette!(
                help = "rebuild with `lmx build`, or boot the files as they are with --kernel/--rootfs/--dtb",
                "{e}"
            )
        })?;
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
        serde_json::from_value(value.get("plan").cloned().unwrap_or(value))
            .into_diagnostic()
            .wrap_err_with(|| format!("{} holds no boot plan", file.display()))?
    };
    let files: Vec<(String, PathBuf)> = plan
        .loads()
        .map(|l| (l.file.clone(), dir.join(&l.file)))
        .collect();
    for (name, p) in &files {
        if !p.is_file() {
            return Err(miette!(
                "the plan loads {name}, but {} does not exist",
                p.display()
            ));
        }
    }
    Ok(Prepared { plan, files, notes })
}
