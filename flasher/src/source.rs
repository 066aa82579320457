//! The image a flash plan writes: the firmware of an `lmx build` output
//! directory (its `manifest.json` says which file, partition, size and
//! CRC32), or any file for a named partition.
//!
//! This is the one module of the crate that reads files: the manifest
//! (whose artifacts are re-hashed against the record) or the image itself,
//! to learn the size and CRC32 the plan checks U-Boot against. A build's
//! firmware was laid out for one partition of one board; both are held
//! to it here, before a plan exists.

use std::path::{Path, PathBuf};

use lmx_builder::firmware::FirmwarePart;
use lmx_builder::manifest::{Manifest, ManifestError};

use crate::plan::{Backup, BackupVia, FlashImage, FlashRequest, Method, RamBuffers, Target};

/// The image, where it is on disk, and the partition the build laid it out for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashSource {
    /// Name, size and CRC32, as the plan serves and checks it.
    pub image: FlashImage,
    /// The file on disk.
    pub path: PathBuf,
    /// The partition to write: the build's, or the one asked for (`None`:
    /// the board's firmware partition).
    pub partition: Option<String>,
    /// The build's parts (kernel, rootfs) with their flash offsets; empty
    /// for a plain file.
    pub parts: Vec<FirmwarePart>,
}

/// Why the image cannot be flashed as asked.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SourceError {
    /// The manifest could not be read, or an artifact changed since the build.
    #[error("{0}")]
    Manifest(ManifestError),
    /// The build is for another board.
    #[error("{} was built for board {built}, not {board}", dir.display())]
    #[diagnostic(help("flash it with --board {built}, or build for {board}"))]
    OtherBoard {
        /// The build directory.
        dir: PathBuf,
        /// The board it was built for.
        built: String,
        /// The board asked for.
        board: String,
    },
    /// The build made no firmware image.
    #[error("{} holds no firmware image (notes: {})", dir.display(), notes.join("; "))]
    #[diagnostic(help(
        "the board file needs a partition with role = \"firmware\" and flash.erase_block; see the build notes"
    ))]
    NoFirmware {
        /// The build directory.
        dir: PathBuf,
        /// The build's notes (they say why).
        notes: Vec<String>,
    },
    /// Another partition than the one the firmware was laid out for.
    #[error(
        "{} was laid out for partition {built} (its parts sit at offsets inside it), not {asked}",
        dir.display()
    )]
    #[diagnostic(help("rebuild, or flash another file with --image"))]
    OtherPartition {
        /// The build directory.
        dir: PathBuf,
        /// The partition of the build.
        built: String,
        /// The partition asked for.
        asked: String,
    },
    /// The image file could not be read.
    #[error("reading the image {}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl FlashSource {
    /// The firmware image of the build in `dir`, made for `board`; with
    /// `partition`, it must be the one the build laid the image out for.
    /// The artifacts are re-hashed against the manifest first.
    pub fn from_build(
        dir: &Path,
        board: &str,
        partition: Option<&str>,
    ) -> Result<FlashSource, SourceError> {
        let m = Manifest::read(dir).map_err(SourceError::Manifest)?;
        if m.board != board {
            return Err(SourceError::OtherBoard {
                dir: dir.to_path_buf(),
                built: m.board,
                board: board.to_string(),
            });
        }
        m.verify_files(dir).map_err(SourceError::Manifest)?;
        let fw = m.firmware.ok_or_else(|| SourceError::NoFirmware {
            dir: dir.to_path_buf(),
            notes: m.notes.clone(),
        })?;
        if let Some(p) = partition {
            if p != fw.partition {
                return Err(SourceError::OtherPartition {
                    dir: dir.to_path_buf(),
                    built: fw.partition,
                    asked: p.to_string(),
                });
            }
        }
        Ok(FlashSource {
            image: FlashImage {
                file: fw.image.clone(),
                size: fw.image_size,
                crc32: fw.image_crc32,
            },
            path: dir.join(&fw.image),
            partition: Some(fw.partition),
            parts: fw.parts,
        })
    }

    /// The file at `path` as it is, for `partition` (`None`: the board's
    /// firmware partition); served under [`tftp_name`] of its name.
    pub fn from_file(path: &Path, partition: Option<&str>) -> Result<FlashSource, SourceError> {
        let bytes = std::fs::read(path).map_err(|source| SourceError::Image {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(FlashSource {
            image: FlashImage {
                file: tftp_name(path),
                size: bytes.len() as u64,
                crc32: crc32fast::hash(&bytes),
            },
            path: path.to_path_buf(),
            partition: partition.map(str::to_string),
            parts: Vec::new(),
        })
    }

    /// The request to plan this image's write: by `method`, into the UBI
    /// volume `ubi_volume` (UBI boards), through the RAM buffers `ram`
    /// (default: the board's RAM-boot area), saving the old contents first
    /// to `backup` (a host path, uploaded under [`Backup::for_path`]'s name).
    pub fn request(
        &self,
        method: Method,
        ubi_volume: Option<String>,
        ram: Option<RamBuffers>,
        backup: Option<(&Path, BackupVia)>,
    ) -> FlashRequest {
        FlashRequest {
            target: match &self.partition {
                Some(p) => Target::Partition(p.clone()),
                None => Target::Firmware,
            },
            image: self.image.clone(),
            method,
            ubi_volume,
            ram,
            backup: backup.map(|(path, via)| Backup::for_path(path, via)),
        }
    }
}

impl Backup {
    /// The backup saved to the host file `path`: uploaded as
    /// `lmx-backup-NAME` (NAME its file name, as [`tftp_name`] makes it).
    pub fn for_path(path: &Path, via: BackupVia) -> Backup {
        Backup {
            file: format!("lmx-backup-{}", tftp_name(path)),
            via,
        }
    }
}

/// A TFTP name U-Boot can type: the file name with anything but ASCII
/// letters, digits, `.`, `_` and `-` replaced by `_` (`image.bin` without
/// a name).
pub fn tftp_name(p: &Path) -> String {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image.bin".into());
    n.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tftp_names_are_typeable() {
        assert_eq!(tftp_name(Path::new("/a/b/fw-1.2_x.bin")), "fw-1.2_x.bin");
        assert_eq!(
            tftp_name(Path::new("my image (v2).bin")),
            "my_image__v2_.bin"
        );
        assert_eq!(tftp_name(Path::new("/")), "image.bin");
        assert_eq!(tftp_name(Path::new("ü.img")), "_.img");
    }

    #[test]
    fn a_plain_file_is_measured_and_requested_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw image.bin");
        std::fs::write(&path, b"123456789").unwrap();
        let src = FlashSource::from_file(&path, Some("kernel")).unwrap();
        assert_eq!(
            src.image,
            FlashImage {
                file: "fw_image.bin".into(),
                size: 9,
                crc32: 0xcbf4_3926,
            }
        );
        assert!(src.parts.is_empty());
        let ram = RamBuffers {
            load: 0x100,
            readback: 0x200,
        };
        let req = src.request(
            Method::Native,
            None,
            Some(ram),
            Some((Path::new("old/backup.bin"), BackupVia::Console)),
        );
        assert_eq!(req.target, Target::Partition("kernel".into()));
        assert_eq!(req.ram, Some(ram));
        assert_eq!(
            req.backup,
            Some(Backup {
                file: "lmx-backup-backup.bin".into(),
                via: BackupVia::Console,
            })
        );
        let none = FlashSource::from_file(&path, None).unwrap();
        assert_eq!(
            none.request(Method::Native, None, None, None).target,
            Target::Firmware
        );
        let missing = FlashSource::from_file(&dir.path().join("nope"), None).unwrap_err();
        assert!(matches!(missing, SourceError::Image { .. }), "{missing}");
    }

    #[test]
    fn a_directory_without_a_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = FlashSource::from_build(dir.path(), "b", None).unwrap_err();
        assert!(matches!(e, SourceError::Manifest(_)), "{e}");
    }
}
