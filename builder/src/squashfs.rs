//! squashfs root filesystems from a directory, through `backhand`.
//!
//! This exists because the rootfs a router boots from RAM (through
//! phram) or from flash is a squashfs image, and because building it
//! in-process lets `lmx build` make it reproducible and unprivileged
//! without `mksquashfs` on the host:
//!
//! - entries are added in sorted order, and with `SOURCE_DATE_EPOCH` set
//!   every inode and the superblock carry that time, so the same tree gives
//!   the same bytes;
//! - `all_root` makes every file owned by 0:0, as a rootfs built by an
//!   ordinary user must be;
//! - device nodes and directories that an unprivileged user cannot create
//!   come from a small [device table](parse_device_table) instead of the
//!   tree (`dev/console c 5 1 600 0 0`).
//!
//! Symlinks are stored as symlinks (never followed), FIFOs and sockets as
//! such; hard links become separate inodes whose identical data is stored
//! once; extended attributes are not stored.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::BufWriter;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use backhand::compression::Compressor;
use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};

/// Errors from building a squashfs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the source tree could not be read.
    #[error("cannot read {path}: {source}", path = path.display())]
    Unreadable {
        /// The path that failed.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The source is not a directory.
    #[error("{path} is not a directory", path = path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// A line of the device table is malformed.
    #[error("{file}:{line}: {what}")]
    DeviceTable {
        /// Table file name (or `<input>`).
        file: String,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// backhand refused an entry or failed while writing.
    #[error("squashfs writer failed on {context}: {source}")]
    Writer {
        /// The entry or output involved.
        context: String,
        /// The writer's error.
        #[source]
        source: backhand::BackhandError,
    },
    /// The output could not be created or moved into place.
    #[error("cannot write {path}: {source}", path = path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Compression for the squashfs data and metadata blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SquashfsCompression {
    /// xz: the smallest, what OpenWrt-style rootfs use (the default).
    #[default]
    Xz,
    /// gzip (zlib): for kernels without `SQUASHFS_XZ`.
    Gzip,
    /// zstd: faster to unpack.
    Zstd,
}

impl SquashfsCompression {
    /// The name `mksquashfs -comp` takes.
    pub fn name(self) -> &'static str {
        match self {
            SquashfsCompression::Xz => "xz",
            SquashfsCompression::Gzip => "gzip",
            SquashfsCompression::Zstd => "zstd",
        }
    }

    /// Parses a `mksquashfs -comp` name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "xz" => Some(SquashfsCompression::Xz),
            "gzip" => Some(SquashfsCompression::Gzip),
            "zstd" => Some(SquashfsCompression::Zstd),
            _ => None,
        }
    }
}

/// What kind of node a device-table line makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// `c`: character device.
    Char,
    /// `b`: block device.
    Block,
    /// `d`: directory.
    Dir,
}

/// One line of a device table: `PATH TYPE MAJOR MINOR MODE UID GID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Path inside the image, without a leading `/`.
    pub path: PathBuf,
    /// Node kind.
    pub kind: DeviceKind,
    /// Major number (0 for directories).
    pub major: u32,
    /// Minor number (0 for directories).
    pub minor: u32,
    /// Permission bits (octal in the table).
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Parses a device table. Blank lines and `#` comments are skipped.
/// Each line is `PATH TYPE MAJOR MINOR MODE UID GID`, e.g.
/// `dev/console c 5 1 600 0 0` or `proc d 0 0 555 0 0`; MODE is octal.
/// `source` names the table in errors.
pub fn parse_device_table(text: &str, source: &str) -> Result<Vec<DeviceSpec>, Error> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |what: String| Error::DeviceTable {
            file: source.to_owned(),
            line: i + 1,
            what,
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 7 {
            return Err(err(format!(
                "expected 7 fields (path type major minor mode uid gid), found {}",
                f.len()
            )));
        }
        let path = clean_image_path(f[0]).ok_or_else(|| {
            err(format!(
                "path {:?} must be relative and stay inside the image",
                f[0]
            ))
        })?;
        let kind = match f[1] {
            "c" => DeviceKind::Char,
            "b" => DeviceKind::Block,
            "d" => DeviceKind::Dir,
            t => return Err(err(format!("type {t:?} is not c, b or d"))),
        };
        let num = |s: &str, what: &str| {
            s.parse::<u32>()
                .map_err(|_| err(format!("{what} {s:?} is not a number")))
        };
        let major = num(f[2], "major")?;
        let minor = num(f[3], "minor")?;
        if major > 0xfff || minor > 0xf_ffff {
            return Err(err(format!("device {major}:{minor} is out of range")));
        }
        let mode = u16::from_str_radix(f[4], 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| err(format!("mode {:?} is not an octal permission", f[4])))?;
        out.push(DeviceSpec {
            path,
            kind,
            major,
            minor,
            mode,
            uid: num(f[5], "uid")?,
            gid: num(f[6], "gid")?,
        });
    }
    Ok(out)
}

/// `a/b`, `/a/b` and `./a/b` all become `a/b`; `..` is refused.
fn clean_image_path(s: &str) -> Option<PathBuf> {
    let mut p = PathBuf::new();
    for c in Path::new(s).components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::RootDir | Component::CurDir => {}
            _ => return None,
        }
    }
    (!p.as_os_str().is_empty()).then_some(p)
}

/// The squashfs (Linux `new_encode_dev`) form of a device number.
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// Splits a host `st_rdev` (glibc encoding) into (major, minor).
fn split_rdev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// How to build the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquashfsOptions {
    /// Block compression.
    pub compression: SquashfsCompression,
    /// Make every entry owned by 0:0 (`mksquashfs -all-root`).
    pub all_root: bool,
    /// Time for every inode and the superblock; `None` keeps each file's
    /// mtime and stamps the image with the current time.
    /// [`SquashfsOptions::new`] takes it from `SOURCE_DATE_EPOCH`.
    pub mtime: Option<u32>,
    /// Data block size, a power of two from 4 KiB to 1 MiB.
    pub block_size: u32,
    /// Extra directories and device nodes (they win over the tree).
    pub devices: Vec<DeviceSpec>,
}

impl SquashfsOptions {
    /// xz, 128 KiB blocks, owners kept, time from `SOURCE_DATE_EPOCH`.
    pub fn new() -> Self {
        SquashfsOptions {
            compression: SquashfsCompression::Xz,
            all_root: false,
            mtime: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|s| s.trim().parse().ok()),
            block_size: 128 * 1024,
            devices: Vec::new(),
        }
    }
}

impl Default for SquashfsOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquashfsSummary {
    /// Entries in the image, the root included.
    pub entries: usize,
    /// Size of the image in bytes (padded to 4 KiB).
    pub bytes: u64,
}

#[derive(Debug)]
enum Kind {
    Dir,
    File(PathBuf),
    Symlink(PathBuf),
    Char(u32),
    Block(u32),
    Fifo,
    Socket,
}

#[derive(Debug)]
struct Entry {
    kind: Kind,
    header: NodeHeader,
}

fn unreadable(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Unreadable {
        path: path.to_owned(),
        source,
    }
}

/// Walks `dir` (sorted by name) into `out`, keyed by image path.
fn walk(
    dir: &Path,
    rel: &Path,
    opts: &SquashfsOptions,
    out: &mut BTreeMap<PathBuf, Entry>,
) -> Result<(), Error> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(unreadable(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(unreadable(dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let md = fs::symlink_metadata(&path).map_err(unreadable(&path))?;
        let header = header_of(&md, opts);
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            walk(&path, &rel, opts, out)?;
            Kind::Dir
        } else if ft.is_file() {
            // backhand opens files only when it writes them; open each one
            // now so that an unreadable file is reported by its path.
            File::open(&path).map_err(unreadable(&path))?;
            Kind::File(path.clone())
        } else if ft.is_symlink() {
            Kind::Symlink(fs::read_link(&path).map_err(unreadable(&path))?)
        } else if ft.is_char_device() || ft.is_block_device() {
            let (ma, mi) = split_rdev(md.rdev());
            if ft.is_char_device() {
                Kind::Char(encode_dev(ma, mi))
            } else {
                Kind::Block(encode_dev(ma, mi))
            }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Socket
        };
        out.insert(rel, Entry { kind, header });
    }
    Ok(())
}

fn header_of(md: &fs::Metadata, opts: &SquashfsOptions) -> NodeHeader {
    let (uid, gid) = if opts.all_root {
        (0, 0)
    } else {
        (md.uid(), md.gid())
    };
    let mtime = opts
        .mtime
        .unwrap_or_else(|| md.mtime().clamp(0, u32::MAX as i64) as u32);
    NodeHeader::new((md.mode() & 0o7777) as u16, uid, gid, mtime)
}

/// Builds a squashfs image of the directory `src` at `out`.
///
/// The image is written to a temporary file next to `out` and renamed
/// into place, so `out` is never half-written.
pub fn build_squashfs(
    src: &Path,
    out: &Path,
    opts: &SquashfsOptions,
) -> Result<SquashfsSummary, Error> {
    let root_md = fs::metadata(src).map_err(unreadable(src))?;
    if !root_md.is_dir() {
        return Err(Error::NotADirectory {
            path: src.to_owned(),
        });
    }
    let mut entries = BTreeMap::new();
    walk(src, Path::new(""), opts, &mut entries)?;
    let mtime = opts.mtime.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0)
    });
    for d in &opts.devices {
        let header = NodeHeader::new(d.mode, d.uid, d.gid, opts.mtime.unwrap_or(mtime));
        // Parents that neither the tree nor the table has: 0755 root.
        for anc in d.path.ancestors().skip(1) {
            if !anc.as_os_str().is_empty() && !entries.contains_key(anc) {
                entries.insert(
                    anc.to_owned(),
                    Entry {
                        kind: Kind::Dir,
                        header: NodeHeader::new(0o755, 0, 0, opts.mtime.unwrap_or(mtime)),
                    },
                );
            }
        }
        let kind = match d.kind {
            DeviceKind::Char => Kind::Char(encode_dev(d.major, d.minor)),
            DeviceKind::Block => Kind::Block(encode_dev(d.major, d.minor)),
            DeviceKind::Dir => Kind::Dir,
        };
        entries.insert(d.path.clone(), Entry { kind, header });
    }

    let mut fs_w = FilesystemWriter::default();
    fs_w.set_time(mtime);
    fs_w.set_block_size(opts.block_size);
    let root_header = header_of(&root_md, opts);
    fs_w.set_root_mode(root_header.permissions);
    fs_w.set_root_uid(root_header.uid);
    fs_w.set_root_gid(root_header.gid);
    let id = match opts.compression {
        SquashfsCompression::Xz => Compressor::Xz,
        SquashfsCompression::Gzip => Compressor::Gzip,
        SquashfsCompression::Zstd => Compressor::Zstd,
    };
    fs_w.set_compressor(
        FilesystemCompressor::new(id, None).map_err(|source| Error::Writer {
            context: format!("{} compressor", opts.compression.name()),
            source,
        })?,
    );

    // BTreeMap order puts every directory before its contents.
    for (rel, e) in &entries {
        let r = match &e.kind {
            Kind::Dir => fs_w.push_dir(rel, e.header),
            Kind::File(p) => fs_w.push_file_from_path(p.clone(), rel, e.header),
            Kind::Symlink(t) => fs_w.push_symlink(t.clone(), rel, e.header),
            Kind::Char(n) => fs_w.push_char_device(*n, rel, e.header),
            Kind::Block(n) => fs_w.push_block_device(*n, rel, e.header),
            Kind::Fifo => fs_w.push_fifo(rel, e.header),
            Kind::Socket => fs_w.push_socket(rel, e.header),
        };
        r.map_err(|source| Error::Writer {
            context: rel.display().to_string(),
            source,
        })?;
    }

    let out_err = |source| Error::Output {
        path: out.to_owned(),
        source,
    };
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".lmx-squashfs-")
        .tempfile_in(parent)
        .map_err(out_err)?;
    let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let (_sb, bytes) = fs_w.write(&mut w).map_err(|source| match source {
        backhand::BackhandError::StdIo(e) => Error::Output {
            path: out.to_owned(),
            source: e,
        },
        source => Error::Writer {
            context: out.display().to_string(),
            source,
        },
    })?;
    drop(w);
    tmp.as_file().sync_all().map_err(out_err)?;
    tmp.persist(out).map_err(|e| out_err(e.error))?;
    // tempfile creates 0600; an image is an ordinary artifact.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(out, fs::Permissions::from_mode(0o644)).map_err(out_err)?;
    Ok(SquashfsSummary {
        entries: entries.len() + 1,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_table_lines() {
        let t = "# console first\n/dev/console c 5 1 600 0 0\n\ndev/sda b 8 0 660 0 6 # disk\nproc d 0 0 555 0 0\n";
        let d = parse_device_table(t, "devices.txt").unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(
            d[0],
            DeviceSpec {
                path: "dev/console".into(),
                kind: DeviceKind::Char,
                major: 5,
                minor: 1,
                mode: 0o600,
                uid: 0,
                gid: 0
            }
        );
        assert_eq!(d[1].kind, DeviceKind::Block);
        assert_eq!(d[1].gid, 6);
        assert_eq!(d[2].kind, DeviceKind::Dir);
        assert_eq!(d[2].mode, 0o555);
    }

    #[test]
    fn device_table_errors_name_file_and_line() {
        for (bad, want) in [
            ("dev/x c 5 1 600 0", "expected 7 fields"),
            ("dev/x p 5 1 600 0 0", "is not c, b or d"),
            ("dev/x c 5 1 999 0 0", "octal"),
            ("../x c 5 1 600 0 0", "inside the image"),
            ("dev/x c five 1 600 0 0", "major"),
        ] {
            let e = parse_device_table(&format!("\n{bad}\n"), "t.txt").unwrap_err();
            let s = e.to_string();
            assert!(s.starts_with("t.txt:2: "), "{s}");
            assert!(s.contains(want), "{s}");
        }
    }

    #[test]
    fn device_numbers() {
        assert_eq!(encode_dev(5, 1), 0x501);
        assert_eq!(encode_dev(8, 0x123), 0x10_0823);
        assert_eq!(split_rdev(0x0501), (5, 1));
        // glibc's makedev(8, 0x123) and makedev(0x1008, 1).
        assert_eq!(split_rdev(0x10_0823), (8, 0x123));
        assert_eq!(split_rdev(0x1000_0000_0801), (0x1008, 1));
    }
}
