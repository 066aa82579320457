//! What is served, and to whom.
//!
//! A TFTP server has no authentication, so the policy is the only guard:
//! - request names are relative paths without `..`, NUL or a leading `/`;
//! - files come from named entries (`--file NAME=PATH`) or from root
//!   directories; a symlink is followed only when its fully resolved target
//!   lies under a served root or an explicitly allowed prefix (a build tree
//!   full of links into a Nix store works; `/etc/shadow` does not), and the
//!   check is repeated on the opened file descriptor so a link swapped in
//!   between the check and the open cannot escape;
//! - clients can be limited to addresses or CIDR ranges;
//! - uploads are refused unless an upload directory is configured, then go
//!   to a temporary file renamed into place only when complete (never over
//!   an existing file unless overwriting was allowed).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use ipnet::IpNet;

use crate::packet::ErrorCode;

/// Why a request is refused: the TFTP error to send and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Error code for the ERROR packet.
    pub code: ErrorCode,
    /// Message for the ERROR packet and the log.
    pub message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// A configuration problem found at startup.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A root directory does not exist or is not a directory.
    #[error("root directory {path}: {reason}")]
    Root {
        /// The path given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A named file cannot be used.
    #[error("--file {name}={path}: {reason}")]
    NamedFile {
        /// Name served.
        name: String,
        /// Path given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another configured directory is unusable.
    #[error("{what} {path}: {reason}")]
    Dir {
        /// Which option.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Nothing to serve.
    #[error(
        "nothing to serve: give at least one root directory, --file NAME=PATH, or --upload-dir"
    )]
    Empty,
}

/// The serving policy: roots, named files, symlink prefixes, allowlist,
/// uploads.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roots: Vec<PathBuf>,
    files: Vec<(Vec<u8>, PathBuf)>,
    follow_into: Vec<PathBuf>,
    allow: Vec<IpNet>,
    upload_dir: Option<PathBuf>,
    overwrite: bool,
}

/// A file opened for a read request.
#[derive(Debug)]
pub struct OpenedFile {
    /// The open file.
    pub file: File,
    /// The resolved path.
    pub path: PathBuf,
    /// Size at open time.
    pub size: u64,
}

/// Builder input for [`Policy::new`].
#[derive(Debug, Clone, Default)]
pub struct PolicySpec {
    /// Root directories, searched in order.
    pub roots: Vec<PathBuf>,
    /// Named files: request name → path.
    pub files: Vec<(String, PathBuf)>,
    /// Extra prefixes symlinks may resolve into.
    pub follow_symlinks_into: Vec<PathBuf>,
    /// Allowed clients (empty = everyone).
    pub allow: Vec<IpNet>,
    /// Where uploads go (None = uploads refused).
    pub upload_dir: Option<PathBuf>,
    /// Replace existing files on upload.
    pub overwrite: bool,
}

fn canon_dir(what: &'static str, p: &Path) -> Result<PathBuf, PolicyError> {
    let c = p.canonicalize().map_err(|e| PolicyError::Dir {
        what,
        path: p.to_path_buf(),
        reason: io_reason(&e),
    })?;
    if !c.is_dir() {
        return Err(PolicyError::Dir {
            what,
            path: p.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    Ok(c)
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "does not exist".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Parses an allowlist entry: an address or a CIDR range.
pub fn parse_allow(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!("{s:?} is neither an IP address nor a CIDR range (e.g. 192.168.1.0/24)")
    })
}

impl Policy {
    /// Validates the configuration: every directory and named file must exist.
    pub fn new(spec: PolicySpec) -> Result<Policy, PolicyError> {
        let mut roots = Vec::new();
        for r in &spec.roots {
            let c = r.canonicalize().map_err(|e| PolicyError::Root {
                path: r.clone(),
                reason: io_reason(&e),
            })?;
            if !c.is_dir() {
                return Err(PolicyError::Root {
                    path: r.clone(),
                    reason: "not a directory".into(),
                });
            }
            roots.push(c);
        }
        let mut files = Vec::new();
        for (name, path) in &spec.files {
            let bad = |reason: String| PolicyError::NamedFile {
                name: name.clone(),
                path: path.clone(),
                reason,
            };
            validate_name(name.as_bytes()).map_err(|r| bad(r.message))?;
            let md = std::fs::metadata(path).map_err(|e| bad(io_reason(&e)))?;
            if !md.is_file() {
                return Err(bad("not a regular file".into()));
            }
            files.push((name.as_bytes().to_vec(), path.clone()));
        }
        let follow_into = spec
            .follow_symlinks_into
            .iter()
            .map(|p| canon_dir("--follow-symlinks-into", p))
            .collect::<Result<Vec<_>, _>>()?;
        let upload_dir = spec
            .upload_dir
            .as_deref()
            .map(|p| canon_dir("--upload-dir", p))
            .transpose()?;
        if roots.is_empty() && files.is_empty() && upload_dir.is_none() {
            return Err(PolicyError::Empty);
        }
        Ok(Policy {
            roots,
            files,
            follow_into,
            allow: spec.allow,
            upload_dir,
            overwrite: spec.overwrite,
        })
    }

    /// Whether `ip` may use the server.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.allow.is_empty() {
            return true;
        }
        let ip = normalize_ip(ip);
        self.allow.iter().any(|n| n.contains(&ip))
    }

    /// Whether write requests are accepted at all.
    pub fn uploads_enabled(&self) -> bool {
        self.upload_dir.is_some()
    }

    fn permitted(&self, canonical: &Path) -> bool {
        self.roots
            .iter()
            .chain(self.follow_into.iter())
            .any(|r| canonical.starts_with(r))
    }

    /// Resolves and opens the file for a read request.
    pub fn open_read(&self, name: &[u8]) -> Result<OpenedFile, Refusal> {
        let rel = validate_name(name)?;
        if let Some((_, path)) = self.files.iter().find(|(n, _)| n == name) {
            // Named files were chosen explicitly: links are followed freely.
            let file = File::open(path).map_err(|e| open_refusal(&e, name))?;
            return finish_open(file, path.clone(), name);
        }
        for root in &self.roots {
            let candidate = root.join(&rel);
            match std::fs::symlink_metadata(&candidate) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(open_refusal(&e, name)),
            }
            let canonical = match candidate.canonicalize() {
                Ok(c) => c,
                // A dangling link: nothing there.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(open_refusal(&e, name)),
            };
            if !self.permitted(&canonical) {
                return Err(Refusal::new(
                    ErrorCode::AccessViolation,
                    format!(
                        "{} resolves outside the served directories",
                        String::from_utf8_lossy(name)
                    ),
                ));
            }
            let file = File::open(&canonical).map_err(|e| open_refusal(&e, name))?;
            // Re-check what was actually opened (a link may have been
            // swapped in after the check above).
            if let Ok(real) = std::fs::read_link(fd_path(&file)) {
                if !self.permitted(&real) {
                    return Err(Refusal::new(
                        ErrorCode::AccessViolation,
                        "file changed while being opened",
                    ));
                }
            }
            return finish_open(file, canonical, name);
        }
        Err(Refusal::new(
            ErrorCode::FileNotFound,
            format!("File not found: {}", String::from_utf8_lossy(name)),
        ))
    }

    /// Prepares an upload: validates the name and creates the temporary
    /// file next to its final place.
    pub fn prepare_upload(&self, name: &[u8]) -> Result<Upload, Refusal> {
        let Some(dir) = &self.upload_dir else {
            return Err(Refusal::new(
                ErrorCode::AccessViolation,
                "uploads are disabled on this server (start it with --upload-dir)",
            ));
        };
        let rel = validate_name(name)?;
        let dest = dir.join(&rel);
        let parent = dest.parent().unwrap_or(dir);
        let parent_c = parent.canonicalize().map_err(|_| {
            Refusal::new(
                ErrorCode::AccessViolation,
                format!(
                    "upload directory for {} does not exist",
                    String::from_utf8_lossy(name)
                ),
            )
        })?;
        if !parent_c.starts_with(dir) {
            return Err(Refusal::new(
                ErrorCode::AccessViolation,
                "upload path resolves outside the upload directory",
            ));
        }
        let dest = parent_c.join(dest.file_name().unwrap_or(OsStr::new("upload")));
        match std::fs::symlink_metadata(&dest) {
            Ok(md) if !self.overwrite => {
                let _ = md;
                return Err(Refusal::new(
                    ErrorCode::FileExists,
                    format!(
                        "{} already exists (the server was not started with --overwrite)",
                        String::from_utf8_lossy(name)
                    ),
                ));
            }
            Ok(md) if !md.is_file() => {
                return Err(Refusal::new(
                    ErrorCode::AccessViolation,
                    "refusing to replace something that is not a regular file",
                ));
            }
            _ => {}
        }
        let tmp = tempfile::Builder::new()
            .prefix(".lmx-upload-")
            .tempfile_in(&parent_c)
            .map_err(|e| open_refusal(&e, name))?;
        Ok(Upload {
            tmp: Some(tmp),
            dest,
            overwrite: self.overwrite,
        })
    }
}

/// An upload in progress: a temporary file that becomes `dest` on commit
/// and disappears if dropped uncommitted.
#[derive(Debug)]
pub struct Upload {
    tmp: Option<tempfile::NamedTempFile>,
    dest: PathBuf,
    overwrite: bool,
}

impl Upload {
    /// The file being written.
    pub fn file(&mut self) -> &mut File {
        self.tmp
            .as_mut()
            .expect("upload already committed")
            .as_file_mut()
    }

    /// Where the file goes on commit.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Moves the completed file into place (atomically; without replacing
    /// an existing file unless overwriting is allowed).
    pub fn commit(mut self) -> Result<PathBuf, Refusal> {
        let tmp = self.tmp.take().expect("upload already committed");
        tmp.as_file()
            .sync_all()
            .map_err(|e| Refusal::new(ErrorCode::DiskFull, e.to_string()))?;
        let res = if self.overwrite {
            tmp.persist(&self.dest).map(|_| ())
        } else {
            tmp.persist_noclobber(&self.dest).map(|_| ())
        };
        res.map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                Refusal::new(ErrorCode::FileExists, "file appeared during the upload")
            } else {
                Refusal::new(ErrorCode::AccessViolation, e.error.to_string())
            }
        })?;
        Ok(self.dest.clone())
    }
}

fn fd_path(file: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

fn finish_open(file: File, path: PathBuf, name: &[u8]) -> Result<OpenedFile, Refusal> {
    let md = file.metadata().map_err(|e| open_refusal(&e, name))?;
    if !md.is_file() {
        return Err(Refusal::new(
            ErrorCode::AccessViolation,
            format!("{} is not a regular file", String::from_utf8_lossy(name)),
        ));
    }
    Ok(OpenedFile {
        file,
        path,
        size: md.len(),
    })
}

fn open_refusal(e: &io::Error, name: &[u8]) -> Refusal {
    let n = String::from_utf8_lossy(name);
    match e.kind() {
        io::ErrorKind::NotFound => {
            Refusal::new(ErrorCode::FileNotFound, format!("File not found: {n}"))
        }
        io::ErrorKind::PermissionDenied => Refusal::new(
            ErrorCode::AccessViolation,
            format!("Permission denied: {n}"),
        ),
        _ => Refusal::new(ErrorCode::NotDefined, format!("{n}: {e}")),
    }
}

/// Maps an IPv4-mapped IPv6 address (from a dual-stack socket) to IPv4.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Checks a requested name and returns it as a relative path.
pub fn validate_name(name: &[u8]) -> Result<PathBuf, Refusal> {
    let refuse = |why: &str| {
        Refusal::new(
            ErrorCode::AccessViolation,
            format!(
                "refused file name {:?}: {why}",
                String::from_utf8_lossy(name)
            ),
        )
    };
    if name.is_empty() {
        return Err(refuse("empty"));
    }
    if name.contains(&0) {
        return Err(refuse("contains NUL"));
    }
    if name[0] == b'/' {
        return Err(refuse("absolute paths are not served"));
    }
    let path = Path::new(OsStr::from_bytes(name));
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("contains a '..' component")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("absolute paths are not served"))
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(refuse("names no file"));
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn names_refused() {
        for bad in [
            &b""[..],
            b"/etc/passwd",
            b"../x",
            b"a/../../x",
            b"a/..",
            b"..",
            b"a\0b",
            b".",
            b"./",
        ] {
            let r = validate_name(bad).unwrap_err();
            assert_eq!(r.code, ErrorCode::AccessViolation, "{bad:?}");
        }
        assert_eq!(validate_name(b"a//b/./c").unwrap(), PathBuf::from("a/b/c"));
        assert_eq!(validate_name(b"./uImage").unwrap(), PathBuf::from("uImage"));
    }

    #[test]
    fn allowlist() {
        let p = Policy {
            allow: vec![
                parse_allow("192.168.8.251").unwrap(),
                parse_allow("10.0.0.0/8").unwrap(),
            ],
            ..Policy::default()
        };
        assert!(p.allows("192.168.8.251".parse().unwrap()));
        assert!(p.allows("::ffff:192.168.8.251".parse().unwrap()));
        assert!(p.allows("10.9.9.9".parse().unwrap()));
        assert!(!p.allows("192.168.8.250".parse().unwrap()));
        assert!(!p.allows("::1".parse().unwrap()));
        assert!(parse_allow("nonsense").is_err());
        assert!(Policy::default().allows("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn symlinks_followed_only_into_allowed_places() {
        let root = tempfile::tempdir().unwrap();
        let store = tempfile::tempdir().unwrap();
        let secret = tempfile::tempdir().unwrap();
        std::fs::write(store.path().join("uImage"), b"kernel").unwrap();
        std::fs::write(secret.path().join("shadow"), b"secret").unwrap();
        std::fs::write(root.path().join("plain"), b"plain").unwrap();
        symlink(store.path().join("uImage"), root.path().join("uImage")).unwrap();
        symlink(secret.path().join("shadow"), root.path().join("shadow")).unwrap();
        symlink(root.path().join("plain"), root.path().join("inner")).unwrap();
        symlink("/nonexistent/x", root.path().join("dangling")).unwrap();
        std::fs::create_dir(root.path().join("dir")).unwrap();

        let base = PolicySpec {
            roots: vec![root.path().into()],
            ..PolicySpec::default()
        };
        let p = Policy::new(base.clone()).unwrap();
        assert_eq!(p.open_read(b"plain").unwrap().size, 5);
        assert_eq!(p.open_read(b"inner").unwrap().size, 5);
        assert_eq!(
            p.open_read(b"uImage").unwrap_err().code,
            ErrorCode::AccessViolation
        );
        assert_eq!(
            p.open_read(b"shadow").unwrap_err().code,
            ErrorCode::AccessViolation
        );
        assert_eq!(
            p.open_read(b"dangling").unwrap_err().code,
            ErrorCode::FileNotFound
        );
        assert_eq!(
            p.open_read(b"missing").unwrap_err().code,
            ErrorCode::FileNotFound
        );
        assert_eq!(
            p.open_read(b"plain/x").unwrap_err().code,
            ErrorCode::FileNotFound
        );
        assert_eq!(
            p.open_read(b"dir").unwrap_err().code,
            ErrorCode::AccessViolation
        );

        let p = Policy::new(PolicySpec {
            follow_symlinks_into: vec![store.path().into()],
            ..base
        })
        .unwrap();
        assert_eq!(p.open_read(b"uImage").unwrap().size, 6);
        assert_eq!(
            p.open_read(b"shadow").unwrap_err().code,
            ErrorCode::AccessViolation
        );
    }

    #[test]
    fn named_files_and_root_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("x"), b"a").unwrap();
        std::fs::write(b.path().join("x"), b"bb").unwrap();
        std::fs::write(b.path().join("y"), b"yyy").unwrap();
        let named = b.path().join("y");
        let p = Policy::new(PolicySpec {
            roots: vec![a.path().into(), b.path().into()],
            files: vec![("boot/kernel".into(), named)],
            ..PolicySpec::default()
        })
        .unwrap();
        assert_eq!(p.open_read(b"x").unwrap().size, 1);
        assert_eq!(p.open_read(b"y").unwrap().size, 3);
        assert_eq!(p.open_read(b"boot/kernel").unwrap().size, 3);
    }

    #[test]
    fn startup_errors_are_clear() {
        let e = Policy::new(PolicySpec {
            roots: vec!["/nonexistent/lmx-root".into()],
            ..PolicySpec::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(matches!(
            Policy::new(PolicySpec::default()),
            Err(PolicyError::Empty)
        ));
        let e = Policy::new(PolicySpec {
            files: vec![("k".into(), "/nonexistent/k".into())],
            ..PolicySpec::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("--file k="), "{e}");
    }

    #[test]
    fn uploads() {
        let up = tempfile::tempdir().unwrap();
        let p = Policy::new(PolicySpec {
            upload_dir: Some(up.path().into()),
            ..PolicySpec::default()
        })
        .unwrap();
        let mut u = p.prepare_upload(b"backup.bin").unwrap();
        use std::io::Write;
        u.file().write_all(b"data").unwrap();
        let dest = u.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"data");
        // Exists now: refused without --overwrite.
        assert_eq!(
            p.prepare_upload(b"backup.bin").unwrap_err().code,
            ErrorCode::FileExists
        );
        // An abandoned upload leaves nothing behind.
        let u = p.prepare_upload(b"other.bin").unwrap();
        drop(u);
        let names: Vec<_> = std::fs::read_dir(up.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("backup.bin")]);
        assert_eq!(
            p.prepare_upload(b"../x").unwrap_err().code,
            ErrorCode::AccessViolation
        );
        assert_eq!(
            p.prepare_upload(b"nodir/x").unwrap_err().code,
            ErrorCode::AccessViolation
        );
        let none = Policy::new(PolicySpec {
            roots: vec![up.path().into()],
            ..PolicySpec::default()
        })
        .unwrap();
        assert_eq!(
            none.prepare_upload(b"x").unwrap_err().code,
            ErrorCode::AccessViolation
        );
        let ow = Policy::new(PolicySpec {
            upload_dir: Some(up.path().into()),
            overwrite: true,
            ..PolicySpec::default()
        })
        .unwrap();
        let mut u = ow.prepare_upload(b"backup.bin").unwrap();
        u.file().write_all(b"new").unwrap();
        u.commit().unwrap();
        assert_eq!(std::fs::read(up.path().join("backup.bin")).unwrap(), b"new");
    }
}
