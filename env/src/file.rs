//! Environments in files: flash dumps, partition dumps and bare
//! environment files, read and written in place.
//!
//! The codec itself does no I/O; this module is the thin layer a tool
//! needs around it. Reading seeks to the copies, so a 64 MiB flash dump
//! costs a few hundred KiB of reads ([`read_copies`]). Writing
//! ([`write_atomically`]) copies the image into a temporary file next to
//! the destination, patches only the environment bytes, syncs, and
//! renames it over the destination, so a crash leaves the old file or the
//! new one, never a mix; a device node is refused (a rename would replace
//! it with a plain file). [`verify_file`] then reads the result back: the
//! copy U-Boot will pick must hold exactly the new variables. [`save`]
//! is the whole write of an edited environment: nothing when nothing
//! changed, a plan on a dry run, else the write and the read-back.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{EnvError, EnvImage, EnvLayout, EnvWrite, Environment};

/// Why a file operation on an environment failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FileError {
    /// The source or destination is a device or directory, not a file.
    #[error("{} is not a regular file", path.display())]
    #[diagnostic(help(
        "lmx env edits image files; copy the device to a file, edit it, \
         and write it back with the tool for that device"
    ))]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// The source image could not be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the destination failed (nothing was renamed over it).
    #[error("writing {}", path.display())]
    Write {
        /// The destination.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the written file back failed.
    #[error("reading back {}", path.display())]
    ReadBack {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The written file does not decode.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Env(#[from] EnvError),
    /// After the write, U-Boot would pick another copy or other variables.
    #[diagnostic(help("the image was replaced; check the disk and the layout flags"))]
    #[error("verification failed: after writing copy {}, U-Boot would use {:?} with {vars} variables", target + 1, picked.map(|c| c + 1))]
    Mismatch {
        /// The copy written (0-based).
        target: usize,
        /// The copy U-Boot would use (0-based), if any.
        picked: Option<usize>,
        /// How many variables that copy holds.
        vars: usize,
    },
}

/// Why an environment could not be read from an image.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The image could not be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The image.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the image failed.
    #[error("reading {}", path.display())]
    Read {
        /// The image.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The layout does not fit the image, or no copy is valid.
    #[error("reading {}", path.display())]
    Env {
        /// The image.
        path: PathBuf,
        /// What the codec found.
        #[source]
        source: EnvError,
        /// Advice that replaces the codec's own: where a valid copy was
        /// found, or what the board's offset means.
        help: Option<String>,
    },
    /// No empty environment fits the layout.
    #[error(transparent)]
    Blank(EnvError),
}

/// The codec's code; the help given with the failure, else the codec's.
impl miette::Diagnostic for OpenError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        match self {
            OpenError::Env { source, .. } | OpenError::Blank(source) => source.code(),
            _ => None,
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        match self {
            OpenError::Env {
                help: Some(help), ..
            } => Some(Box::new(help)),
            OpenError::Env { source, .. } | OpenError::Blank(source) => source.help(),
            _ => None,
        }
    }
}

/// An environment read from an image, or started empty.
#[derive(Debug)]
pub struct Opened {
    /// The layout it was read with.
    pub layout: EnvLayout,
    /// The copies and the environment U-Boot would use.
    pub image: EnvImage,
    /// Why it is empty, when it was started empty.
    pub started_empty: Option<Empty>,
}

/// Why [`open`] started an empty environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    /// The image does not exist.
    NoFile,
    /// No copy in the image is valid.
    NoValidCopy,
}

/// Reads the environment of the image at `path`. `layout` works out the
/// layout from the image's length (`None` for a missing file). With
/// `create`, a missing file or an image without a valid copy yields an
/// empty environment (say why: [`Opened::started_empty`]); without, no
/// valid copy is a [`OpenError::Env`] whose help lists the layouts under
/// which the image does hold one ([`suggest_layouts`]). `board` (the
/// board the layout came from) explains a layout that does not fit.
pub fn open<E: From<OpenError>>(
    path: &Path,
    create: bool,
    board: Option<&str>,
    layout: impl FnOnce(Option<u64>) -> Result<EnvLayout, E>,
) -> Result<Opened, E> {
    let empty = |layout: EnvLayout, why: Empty| -> Result<Opened, E> {
        Ok(Opened {
            layout,
            image: EnvImage::blank(layout).map_err(OpenError::Blank)?,
            started_empty: Some(why),
        })
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            let layout = layout(None)?;
            tracing::info!(
                "{} does not exist; starting a new environment",
                path.display()
            );
            return empty(layout, Empty::NoFile);
        }
        Err(source) => {
            return Err(OpenError::Open {
                path: path.to_path_buf(),
                source,
            }
            .into())
        }
    };
    let read_error = |source| OpenError::Read {
        path: path.to_path_buf(),
        source,
    };
    let env_error = |source, help| OpenError::Env {
        path: path.to_path_buf(),
        source,
        help,
    };
    let image_len = file.metadata().map_err(read_error)?.len();
    let layout = layout(Some(image_len))?;
    tracing::info!("environment layout: {layout}");
    if let Err(e) = layout.check_fits(image_len) {
        let help = board.map(|board| {
            format!(
                "with --board {board}, FILE is a dump of the whole flash and the environment \
                 is at {:#x}; for a dump that starts elsewhere (one bank, the env partition) \
                 give --offset, e.g. --offset 0",
                layout.offset
            )
        });
        return Err(env_error(e, help).into());
    }
    let copies = read_copies(&mut file, &layout).map_err(read_error)?;
    let slices: Vec<&[u8]> = copies.iter().map(Vec::as_slice).collect();
    match EnvImage::parse(layout, &slices) {
        Ok(image) => {
            for copy in image.copies() {
                tracing::info!("{} flag {:?}", copy.check, copy.flag);
            }
            if let Some(selection) = image.selection() {
                tracing::info!("using {selection}");
            }
            Ok(Opened {
                layout,
                image,
                started_empty: None,
            })
        }
        Err(EnvError::BadCrc { .. }) if create => empty(layout, Empty::NoValidCopy),
        Err(e @ EnvError::BadCrc { .. }) => {
            let suggestions = suggest_layouts(&mut file, &layout, image_len);
            let help = (!suggestions.is_empty()).then(|| {
                format!(
                    "a valid environment was found with: {}",
                    suggestions.join("; or ")
                )
            });
            Err(env_error(e, help).into())
        }
        Err(e) => Err(env_error(e, None).into()),
    }
}

/// Reads each copy's bytes of `layout` (and nothing else) from `file`.
pub fn read_copies<F: Read + Seek>(file: &mut F, layout: &EnvLayout) -> io::Result<Vec<Vec<u8>>> {
    let mut copies = Vec::new();
    for offset in layout.copy_offsets() {
        let mut buf = vec![0; layout.size];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut buf)?;
        copies.push(buf);
    }
    Ok(copies)
}

/// Layouts whose CRC matches in `file` (of `len` bytes), to suggest after
/// a failure: first around the copies of `layout`, then, when nothing is
/// found there and the file is of flash-dump size (256 MiB at most), in
/// the whole file. At most eight, without repeats, as text.
pub fn suggest_layouts<F: Read + Seek>(file: &mut F, layout: &EnvLayout, len: u64) -> Vec<String> {
    let window = crate::COMMON_SIZES[crate::COMMON_SIZES.len() - 1] as u64;
    let mut found = Vec::new();
    for offset in layout.copy_offsets() {
        let n = window.min(len.saturating_sub(offset)) as usize;
        let mut buf = vec![0; n];
        if file.seek(SeekFrom::Start(offset)).is_ok() && file.read_exact(&mut buf).is_ok() {
            found.extend(crate::probe_at(&buf, offset));
        }
    }
    if found.is_empty() && len <= 256 << 20 {
        let mut dump = Vec::new();
        if file.seek(SeekFrom::Start(0)).is_ok() && file.read_to_end(&mut dump).is_ok() {
            found.extend(crate::scan(&dump, 0x400));
        }
    }
    let mut seen = Vec::new();
    for candidate in found.iter().take(8) {
        let text = candidate.to_string();
        if !seen.contains(&text) {
            seen.push(text);
        }
    }
    seen
}

/// Copies `source` (or, if it does not exist, an erased image of
/// `min_len` bytes of 0xff) into a temporary file in `dest`'s directory,
/// applies `plan`'s patches, syncs and renames it over `dest` (the file a
/// symlink points to, not the link).
pub fn write_atomically(
    source: &Path,
    dest: &Path,
    min_len: u64,
    plan: &EnvWrite,
) -> Result<(), FileError> {
    let dest = fs::canonicalize(dest).unwrap_or_else(|_| dest.to_path_buf());
    for path in [source, dest.as_path()] {
        if let Ok(meta) = fs::metadata(path) {
            if !meta.is_file() {
                return Err(FileError::NotRegular {
                    path: path.to_path_buf(),
                });
            }
        }
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let failed = |source| FileError::Write {
        path: dest.clone(),
        source,
    };
    let mut tmp = TempFile::create_in(&dir, &dest).map_err(failed)?;
    match File::open(source) {
        Ok(mut input) => {
            io::copy(&mut input, &mut tmp.file).map_err(failed)?;
            let permissions = input.metadata().map_err(failed)?.permissions();
            tmp.file.set_permissions(permissions).map_err(failed)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let erased = vec![0xffu8; 1 << 16];
            let mut left = min_len;
            while left > 0 {
                let n = left.min(erased.len() as u64) as usize;
                tmp.file.write_all(&erased[..n]).map_err(failed)?;
                left -= n as u64;
            }
        }
        Err(source_err) => {
            return Err(FileError::Open {
                path: source.to_path_buf(),
                source: source_err,
            })
        }
    }
    for patch in &plan.patches {
        tmp.file
            .seek(SeekFrom::Start(patch.offset))
            .and_then(|_| tmp.file.write_all(&patch.bytes))
            .map_err(failed)?;
    }
    tmp.file.sync_all().map_err(failed)?;
    tmp.persist(&dest).map_err(failed)?;
    // Make the rename itself durable.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads `path` back after [`write_atomically`]: the copy U-Boot picks
/// must be the one `plan` wrote and hold exactly `env`.
pub fn verify_file(
    path: &Path,
    layout: EnvLayout,
    plan: &EnvWrite,
    env: &Environment,
) -> Result<(), FileError> {
    let copies = File::open(path)
        .and_then(|mut f| read_copies(&mut f, &layout))
        .map_err(|source| FileError::ReadBack {
            path: path.to_path_buf(),
            source,
        })?;
    let slices: Vec<&[u8]> = copies.iter().map(Vec::as_slice).collect();
    let image = EnvImage::parse(layout, &slices)?;
    let picked = image.selection().map(|s| s.copy);
    if picked != Some(plan.target) || image.environment() != env {
        return Err(FileError::Mismatch {
            target: plan.target,
            picked,
            vars: image.environment().len(),
        });
    }
    Ok(())
}

/// Whether the file at `path` is a `name=value` text file rather than an
/// image: no NUL byte in its first 64 KiB (an environment has one after
/// its first variable, and erased flash or padding around it more).
pub fn is_text_file(path: &Path) -> io::Result<bool> {
    let mut head = Vec::new();
    File::open(path)?.take(1 << 16).read_to_end(&mut head)?;
    Ok(!head.contains(&0))
}

/// How [`save`] writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SaveOptions<'a> {
    /// Write the result here instead of replacing the image.
    pub output: Option<&'a Path>,
    /// Byte that fills the data area after the variables (else the
    /// image's, see [`EnvImage::pad`]).
    pub pad: Option<u8>,
    /// Plan the write and touch no file.
    pub dry_run: bool,
}

/// What [`save`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// The image already holds a valid copy with exactly these variables,
    /// and neither another output nor a padding byte was asked for:
    /// nothing was written.
    Unchanged,
    /// A dry run: what would be written into `dest`.
    Planned {
        /// The file that would be written.
        dest: PathBuf,
        /// The write.
        plan: EnvWrite,
    },
    /// Written into `dest` and read back ([`verify_file`]).
    Written {
        /// The file written.
        dest: PathBuf,
        /// The write.
        plan: EnvWrite,
    },
}

/// Writes `env` as the environment of the image at `path`, read as
/// `image`: plans the write (failing before any file is touched when the
/// variables do not fit), then, unless it is a dry run, writes it
/// atomically into `opts.output` or the image itself
/// ([`write_atomically`]; a missing image starts as erased flash) and
/// reads it back ([`verify_file`]). An unchanged environment written to
/// the image itself with its own padding is left alone
/// ([`Saved::Unchanged`]).
pub fn save(
    path: &Path,
    image: &EnvImage,
    env: &Environment,
    opts: &SaveOptions<'_>,
) -> Result<Saved, FileError> {
    let mut image = image.clone();
    if let Some(pad) = opts.pad {
        image.set_pad(pad);
    }
    let unchanged = image.selection().is_some() && image.environment() == env;
    if unchanged && opts.output.is_none() && opts.pad.is_none() {
        return Ok(Saved::Unchanged);
    }
    let plan = image.plan_write(env)?;
    let dest = opts.output.unwrap_or(path).to_path_buf();
    if opts.dry_run {
        return Ok(Saved::Planned { dest, plan });
    }
    let layout = *image.layout();
    write_atomically(path, &dest, layout.required_len(), &plan)?;
    verify_file(&dest, layout, &plan, env)?;
    Ok(Saved::Written { dest, plan })
}

/// A temporary file next to the destination, removed unless persisted.
struct TempFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl TempFile {
    fn create_in(dir: &Path, dest: &Path) -> io::Result<Self> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for attempt in 0..100u32 {
            let path = dir.join(format!(
                ".{name}.lmx-env-{}-{nanos:x}-{attempt}",
                std::process::id()
            ));
            match fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        keep: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "could not create a temporary file",
        ))
    }

    /// Renames the file over `dest` (atomic on the same file system).
    fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlagStyle;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_patches_only_the_environment_and_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let layout = EnvLayout::redundant(0x100, 0x400, 0x500, FlagStyle::Boolean);
        let image_path = d.path().join("flash.bin");
        let mut dump = vec![0x5au8; 0x1000];
        let env = Environment::from_pairs([("bootdelay", "2")]).unwrap();
        EnvImage::blank(layout)
            .unwrap()
            .plan_write(&env)
            .unwrap()
            .apply(&mut dump)
            .unwrap();
        fs::write(&image_path, &dump).unwrap();

        let mut f = File::open(&image_path).unwrap();
        let copies = read_copies(&mut f, &layout).unwrap();
        let slices: Vec<&[u8]> = copies.iter().map(Vec::as_slice).collect();
        let image = EnvImage::parse(layout, &slices).unwrap();
        let mut new = image.environment().clone();
        new.set("bootcmd", "run x").unwrap();
        let plan = image.plan_write(&new).unwrap();
        write_atomically(&image_path, &image_path, layout.required_len(), &plan).unwrap();
        verify_file(&image_path, layout, &plan, &new).unwrap();

        let after = fs::read(&image_path).unwrap();
        assert_eq!(after.len(), dump.len());
        assert_eq!(&after[..0x100], &dump[..0x100], "bytes before the env kept");
        assert_eq!(&after[0x900..], &dump[0x900..], "bytes after the env kept");
        assert_eq!(names(d.path()), ["flash.bin"], "no temporary file left");
        // Verifying against other variables fails.
        let e = verify_file(&image_path, layout, &plan, &env).unwrap_err();
        assert!(matches!(e, FileError::Mismatch { .. }), "{e}");
    }

    fn layout_of(layout: EnvLayout) -> impl FnOnce(Option<u64>) -> Result<EnvLayout, OpenError> {
        move |_| Ok(layout)
    }

    #[test]
    fn open_reads_a_valid_copy_or_starts_empty_only_when_asked() {
        let d = tempfile::tempdir().unwrap();
        let layout = EnvLayout::single(0x4000, 0x1000);
        let path = d.path().join("flash.bin");
        let open_with = |create, board| open(&path, create, board, layout_of(layout));

        // No file: an error, or an empty environment with `create`.
        assert!(matches!(
            open_with(false, None),
            Err(OpenError::Open { .. })
        ));
        let o = open_with(true, None).unwrap();
        assert_eq!(o.started_empty, Some(Empty::NoFile));
        assert!(o.image.environment().is_empty());

        // Erased flash: no valid copy.
        fs::write(&path, vec![0xffu8; 0x8000]).unwrap();
        let e = open_with(false, None).unwrap_err();
        assert!(
            matches!(
                &e,
                OpenError::Env {
                    source: EnvError::BadCrc { .. },
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.to_string(), format!("reading {}", path.display()));
        let o = open_with(true, None).unwrap();
        assert_eq!(o.started_empty, Some(Empty::NoValidCopy));

        // A valid copy at 0x2000 instead: the help says where.
        let mut dump = vec![0xffu8; 0x8000];
        let env = Environment::from_pairs([("bootdelay", "2")]).unwrap();
        EnvImage::blank(EnvLayout::single(0x2000, 0x1000))
            .unwrap()
            .plan_write(&env)
            .unwrap()
            .apply(&mut dump)
            .unwrap();
        fs::write(&path, &dump).unwrap();
        let e = open_with(false, None).unwrap_err();
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert!(
            help.starts_with("a valid environment was found with: ") && help.contains("0x2000"),
            "{help}"
        );

        // At the right offset it reads.
        let o = open(
            &path,
            false,
            None,
            layout_of(EnvLayout::single(0x2000, 0x1000)),
        )
        .unwrap();
        assert_eq!(o.started_empty, None);
        assert_eq!(o.image.environment(), &env);

        // A layout past the end, from a board: the help explains the offset.
        let far = EnvLayout::single(0x10000, 0x1000);
        let e = open(&path, false, Some("b"), layout_of(far)).unwrap_err();
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert!(
            help.starts_with("with --board b, FILE is a dump of the whole flash"),
            "{help}"
        );
        let code = miette::Diagnostic::code(&e).unwrap().to_string();
        assert!(code.starts_with("lmx::env::"), "{code}");
    }

    #[test]
    fn a_missing_source_starts_from_erased_flash() {
        let d = tempfile::tempdir().unwrap();
        let layout = EnvLayout::single(0x40, 0x100);
        let env = Environment::from_pairs([("a", "1")]).unwrap();
        let plan = EnvImage::blank(layout).unwrap().plan_write(&env).unwrap();
        let out = d.path().join("new.bin");
        write_atomically(&d.path().join("absent"), &out, 0x200, &plan).unwrap();
        let bytes = fs::read(&out).unwrap();
        assert_eq!(bytes.len(), 0x200);
        assert!(bytes[..0x40].iter().all(|&b| b == 0xff));
        verify_file(&out, layout, &plan, &env).unwrap();
    }

    #[test]
    fn a_device_or_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let layout = EnvLayout::single(0, 0x100);
        let plan = EnvImage::blank(layout)
            .unwrap()
            .plan_write(&Environment::new())
            .unwrap();
        let e = write_atomically(Path::new("/dev/null"), &d.path().join("x"), 0x100, &plan)
            .unwrap_err();
        assert!(matches!(e, FileError::NotRegular { .. }), "{e}");
        let e = write_atomically(&d.path().join("x"), d.path(), 0x100, &plan).unwrap_err();
        assert!(e.to_string().ends_with("is not a regular file"), "{e}");
    }

    #[test]
    fn a_wrong_layout_gets_the_right_one_suggested() {
        let layout = EnvLayout::single(0x2000, 0x1000);
        let mut dump = vec![0xffu8; 0x8000];
        let env = Environment::from_pairs([("bootcmd", "boot")]).unwrap();
        EnvImage::blank(layout)
            .unwrap()
            .plan_write(&env)
            .unwrap()
            .apply(&mut dump)
            .unwrap();
        let wrong = EnvLayout::single(0x4000, 0x1000);
        let len = dump.len() as u64;
        let found = suggest_layouts(&mut io::Cursor::new(dump), &wrong, len);
        assert!(
            found.iter().any(|s| s.contains("0x2000")),
            "suggestions: {found:?}"
        );
    }

    #[test]
    fn save_writes_only_a_change_and_reads_it_back() {
        let d = tempfile::tempdir().unwrap();
        let layout = EnvLayout::single(0x100, 0x200);
        let path = d.path().join("flash.bin");
        let env = Environment::from_pairs([("bootdelay", "2")]).unwrap();
        let mut dump = vec![0xffu8; 0x400];
        EnvImage::blank(layout)
            .unwrap()
            .plan_write(&env)
            .unwrap()
            .apply(&mut dump)
            .unwrap();
        fs::write(&path, &dump).unwrap();
        let read = || open(&path, false, None, layout_of(layout)).unwrap().image;
        let opts = SaveOptions::default();

        // The same variables: nothing written, even the file's time kept.
        let image = read();
        assert_eq!(save(&path, &image, &env, &opts).unwrap(), Saved::Unchanged);
        assert_eq!(fs::read(&path).unwrap(), dump);

        // A change on a dry run: planned, not written.
        let mut new = env.clone();
        new.set("bootcmd", "run x").unwrap();
        let dry = SaveOptions {
            dry_run: true,
            ..opts
        };
        let Saved::Planned { dest, plan } = save(&path, &image, &new, &dry).unwrap() else {
            panic!("not planned")
        };
        assert_eq!(dest, path);
        assert_eq!(plan, image.plan_write(&new).unwrap());
        assert_eq!(fs::read(&path).unwrap(), dump);

        // Written and read back.
        let Saved::Written { dest, .. } = save(&path, &image, &new, &opts).unwrap() else {
            panic!("not written")
        };
        assert_eq!(dest, path);
        assert_eq!(read().environment(), &new);

        // Unchanged, but into another file or with another padding: written.
        let out = d.path().join("copy.bin");
        let to_copy = SaveOptions {
            output: Some(&out),
            ..opts
        };
        let saved = save(&path, &read(), &new, &to_copy).unwrap();
        assert!(matches!(saved, Saved::Written { dest, .. } if dest == out));
        let padded = SaveOptions {
            pad: Some(0xff),
            ..opts
        };
        let image = read();
        assert!(matches!(
            save(&path, &image, &new, &padded).unwrap(),
            Saved::Written { .. }
        ));
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes[0x100 + 0x1ff], 0xff, "padded with 0xff");

        // Too many variables: refused before any file is touched.
        let before = fs::read(&path).unwrap();
        let mut big = Environment::new();
        big.set("x", "y".repeat(0x300)).unwrap();
        let e = save(&path, &read(), &big, &opts).unwrap_err();
        assert!(matches!(e, FileError::Env(_)), "{e}");
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn text_and_images_are_told_apart_by_a_nul() {
        let d = tempfile::tempdir().unwrap();
        let text = d.path().join("env.txt");
        fs::write(&text, "bootdelay=2\nbootcmd=run x\n").unwrap();
        assert!(is_text_file(&text).unwrap());
        let image = d.path().join("env.bin");
        let mut bytes = vec![0xffu8; 0x100];
        EnvImage::blank(EnvLayout::single(0, 0x100))
            .unwrap()
            .plan_write(&Environment::from_pairs([("a", "1")]).unwrap())
            .unwrap()
            .apply(&mut bytes)
            .unwrap();
        fs::write(&image, &bytes).unwrap();
        assert!(!is_text_file(&image).unwrap());
        assert!(is_text_file(&d.path().join("absent")).is_err());
    }
}
