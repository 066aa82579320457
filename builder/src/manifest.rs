//! `manifest.json`: what `lmx build` produced, in a versioned schema that
//! `lmx tftpboot` and `lmx flash` read back instead of re-deriving it.
//!
//! This exists so that the commands downstream of a build trust one
//! record: every artifact with its size, CRC32, SHA-256 and load address;
//! the boot plan's steps and command lines; the kernel command line; the
//! RAM layout; and the firmware layout for flashing. Numbers are JSON
//! integers (addresses and CRCs included); `"schema": 1` is checked on
//! read, and a reader refuses any other version rather than guess.
//! [`Manifest::verify_files`] re-hashes the artifacts, so a file changed
//! after the build is caught before it is served.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::bootargs::Dialect;
use crate::firmware::{hex, FirmwareLayout};
use crate::layout::RamLayout;
use crate::plan::{BootPlan, BootVia, Step};

/// The schema version this crate writes and reads.
pub const MANIFEST_SCHEMA: u32 = 1;
/// The file name inside an artifact directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One file of the artifact directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactEntry {
    /// `kernel`, `dtb`, `rootfs`, `boot-script`, `boot-script-uimage`, `firmware`.
    pub role: String,
    /// Path relative to the artifact directory (also the TFTP name).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC32 (as U-Boot's `crc32` prints it).
    pub crc32: u32,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// U-Boot address it is loaded to for the RAM boot, if it is loaded.
    pub load_addr: Option<u64>,
    /// The same address, physical.
    pub phys_addr: Option<u64>,
}

impl ArtifactEntry {
    /// An entry for `bytes` stored at `path`.
    pub fn of(role: &str, path: &str, bytes: &[u8]) -> ArtifactEntry {
        ArtifactEntry {
            role: role.to_string(),
            path: path.to_string(),
            size: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
            sha256: hex(&sha2::Sha256::digest(bytes)),
            load_addr: None,
            phys_addr: None,
        }
    }
}

/// The manifest (schema 1). See `docs/build.md` for the field reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_SCHEMA`].
    pub schema: u32,
    /// `lmx <version>`.
    pub generator: String,
    /// Board name.
    pub board: String,
    /// Build time (seconds since the epoch; `SOURCE_DATE_EPOCH` when set).
    pub created: u64,
    /// The board's kernel format (`image`, `zimage`, `uimage-lzma`, `fit`, ...).
    pub kernel_format: String,
    /// phram method used (`dt`, `cmdline`, `memmap`).
    pub phram: String,
    /// Every file of the directory except `manifest.json` and `plan.txt`.
    pub artifacts: Vec<ArtifactEntry>,
    /// The kernel command line.
    pub bootargs: String,
    /// The U-Boot dialect the commands were written for.
    pub dialect: Dialect,
    /// The plan's command lines, in order (what `boot.scr` holds).
    pub commands: Vec<String>,
    /// The plan's structured steps (loads carry size and CRC32).
    pub steps: Vec<Step>,
    /// How the boot command is started (`run` or typed directly).
    #[serde(default)]
    pub boot_via: BootVia,
    /// The RAM layout.
    pub layout: RamLayout,
    /// U-Boot address to load `boot.scr.uimg` to before `source`.
    pub script_addr: Option<u64>,
    /// The firmware for `lmx flash`, when the board has a firmware partition.
    pub firmware: Option<FirmwareLayout>,
    /// Decisions and assumptions worth reading.
    pub notes: Vec<String>,
}

/// Errors reading or checking a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or not this schema's shape.
    #[error("{path}: not a valid lmx manifest: {what}")]
    Invalid {
        /// Path.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// Another schema version.
    #[error("{path}: manifest schema {found}, this lmx reads schema {MANIFEST_SCHEMA}; rebuild with `lmx build`")]
    Schema {
        /// Path.
        path: String,
        /// Version found.
        found: String,
    },
    /// An artifact differs from what the manifest recorded.
    #[error("artifact {path} changed after the build: {what}; rebuild with `lmx build`")]
    Changed {
        /// Artifact path.
        path: String,
        /// What differs.
        what: String,
    },
}

impl Manifest {
    /// Assembles the manifest of a plan.
    pub fn new(
        plan: &BootPlan,
        kernel_format: &str,
        phram: &str,
        artifacts: Vec<ArtifactEntry>,
        firmware: Option<FirmwareLayout>,
        notes: Vec<String>,
        created: u64,
    ) -> Manifest {
        let script_addr = plan
            .layout
            .region(crate::layout::RegionKind::Script)
            .and_then(|r| r.uboot);
        Manifest {
            schema: MANIFEST_SCHEMA,
            generator: format!("lmx {}", env!("CARGO_PKG_VERSION")),
            board: plan.board.clone(),
            created,
            kernel_format: kernel_format.to_string(),
            phram: phram.to_string(),
            artifacts,
            bootargs: plan.bootargs.clone(),
            dialect: plan.dialect,
            commands: plan.commands(),
            steps: plan.steps.clone(),
            boot_via: plan.boot_via,
            layout: plan.layout.clone(),
            script_addr,
            firmware,
            notes,
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a manifest always serializes");
        s.push('\n');
        s
    }

    /// Parses manifest text; `origin` names it in errors.
    pub fn from_json(origin: &str, text: &str) -> Result<Manifest, ManifestError> {
        let invalid = |what: String| ManifestError::Invalid {
            path: origin.to_string(),
            what,
        };
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        match v.get("schema") {
            Some(s) if s.as_u64() == Some(MANIFEST_SCHEMA as u64) => {}
            Some(s) => {
                return Err(ManifestError::Schema {
                    path: origin.to_string(),
                    found: s.to_string(),
                })
            }
            None => return Err(invalid("no \"schema\" field".into())),
        }
        serde_json::from_value(v).map_err(|e| invalid(e.to_string()))
    }

    /// Reads and checks `manifest.json` (or an artifact directory holding it).
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let file = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_path_buf()
        };
        let origin = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Io {
            path: origin.clone(),
            source,
        })?;
        Self::from_json(&origin, &text)
    }

    /// The load steps, in order (what the executor verifies).
    pub fn loads(&self) -> impl Iterator<Item = &crate::plan::LoadStep> {
        self.steps.iter().filter_map(|s| match s {
            Step::Load(l) => Some(l),
            _ => None,
        })
    }

    /// The first artifact with `role`.
    pub fn artifact(&self, role: &str) -> Option<&ArtifactEntry> {
        self.artifacts.iter().find(|a| a.role == role)
    }

    /// Re-reads every artifact under `dir` and compares size, CRC32 and
    /// SHA-256 with the record.
    pub fn verify_files(&self, dir: &Path) -> Result<(), ManifestError> {
        for a in &self.artifacts {
            let p = dir.join(&a.path);
            let bytes = std::fs::read(&p).map_err(|source| ManifestError::Io {
                path: p.display().to_string(),
                source,
            })?;
            let changed = |what: String| ManifestError::Changed {
                path: a.path.clone(),
                what,
            };
            if bytes.len() as u64 != a.size {
                return Err(changed(format!(
                    "{} bytes, recorded {}",
                    bytes.len(),
                    a.size
                )));
            }
            let crc = crc32fast::hash(&bytes);
            if crc != a.crc32 {
                return Err(changed(format!(
                    "crc32 {crc:08x}, recorded {:08x}",
                    a.crc32
                )));
            }
            if hex(&sha2::Sha256::digest(&bytes)) != a.sha256 {
                return Err(changed("sha256 differs".into()));
            }
        }
        Ok(())
    }
}
