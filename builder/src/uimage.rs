//! U-Boot legacy images (uImage): the 64-byte big-endian header that
//! `bootm`, `iminfo` and `source` read, in front of a kernel, ramdisk,
//! script or firmware payload.
//!
//! This module exists because every board without FIT support (the old
//! MIPS routers above all) boots a uImage, and because the header is small
//! and fixed enough that writing it by hand is simpler and more testable
//! than shelling out to `mkimage`. The output is byte-identical to
//! `mkimage -A .. -O linux -T .. -C .. -a .. -e .. -n .. -d ..` for the same
//! payload and `SOURCE_DATE_EPOCH`.
//!
//! Following the wire-format habit of the project, there are two types:
//! [`Header`], a zero-copy view over bytes with one accessor per field, and
//! [`HeaderRepr`], the parsed high-level value, with
//! [`HeaderRepr::parse`] and [`HeaderRepr::emit`] as a pair.

use std::fmt;
use std::path::Path;

/// The magic number that opens every legacy image (`IH_MAGIC`).
pub const MAGIC: u32 = 0x2705_1956;
/// Size of the legacy header in bytes.
pub const HEADER_LEN: usize = 64;
/// Longest image name the header can hold (`IH_NMLEN`), in bytes.
pub const NAME_LEN: usize = 32;

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const HCRC: Range<usize> = 4..8;
    pub const TIME: Range<usize> = 8..12;
    pub const SIZE: Range<usize> = 12..16;
    pub const LOAD: Range<usize> = 16..20;
    pub const EP: Range<usize> = 20..24;
    pub const DCRC: Range<usize> = 24..28;
    pub const OS: usize = 28;
    pub const ARCH: usize = 29;
    pub const TYPE: usize = 30;
    pub const COMP: usize = 31;
    pub const NAME: Range<usize> = 32..64;
}

/// Errors from parsing, verifying or building a legacy image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than a header.
    #[error("truncated uImage: {len} bytes, the header alone needs 64")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// The first four bytes are not `27 05 19 56`.
    #[error("not a U-Boot legacy image: magic is {found:#010x}, expected 0x27051956")]
    BadMagic {
        /// The value found.
        found: u32,
    },
    /// The header CRC32 does not match the header.
    #[error("header CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadHeaderCrc {
        /// CRC in the header.
        stored: u32,
        /// CRC of the header bytes.
        computed: u32,
    },
    /// The payload is shorter than the header's data size.
    #[error("truncated payload: header says {expected} bytes, file has {found}")]
    TruncatedData {
        /// Size from the header.
        expected: u32,
        /// Bytes after the header.
        found: usize,
    },
    /// The data CRC32 does not match the payload.
    #[error("data CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadDataCrc {
        /// CRC in the header.
        stored: u32,
        /// CRC of the payload.
        computed: u32,
    },
    /// The name does not fit in the 32-byte name field.
    #[error("image name {name:?} is {len} bytes; a uImage name holds at most 32")]
    NameTooLong {
        /// The name given.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The payload does not fit the 32-bit size field.
    #[error("payload of {len} bytes does not fit a uImage (at most 4 GiB - 1)")]
    DataTooLarge {
        /// The payload length.
        len: usize,
    },
    /// A multi-file or script payload's size table runs past the data.
    #[error("corrupt multi-file table: {0}")]
    BadMultiTable(&'static str),
    /// A trailer can only ride after an LZMA kernel image.
    #[error("only an LZMA kernel image can carry the rootfs after its payload; this is a {found}")]
    NotLzmaKernel {
        /// The image's type line.
        found: String,
    },
}

macro_rules! code_enum {
    (
        $(#[$meta:meta])* $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:expr, $mk:expr, $display:expr; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code this crate does not name.
            Unknown(u8),
        }

        impl From<u8> for $name {
            fn from(code: u8) -> Self {
                match code {
                    $( $code => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                match v {
                    $( $name::$variant => $code, )*
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// The name `mkimage` takes on its command line for this value.
            pub fn mkimage_name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($mk), )*
                    $name::Unknown(_) => None,
                }
            }

            /// Parses the name `mkimage` takes on its command line.
            pub fn from_mkimage_name(s: &str) -> Option<Self> {
                match s {
                    $( $mk => Some($name::$variant), )*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            /// The wording `dumpimage -l` uses.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$variant => f.write_str($display), )*
                    $name::Unknown(c) => write!(f, "Unknown {} {}", stringify!($name), c),
                }
            }
        }
    };
}

code_enum! {
    /// CPU architecture (`IH_ARCH_*`).
    Arch {
        /// 32-bit ARM.
        Arm = 2, "arm", "ARM";
        /// 32-bit x86 (`mkimage -A x86`).
        X86 = 3, "x86", "Intel x86";
        /// 32-bit MIPS.
        Mips = 5, "mips", "MIPS";
        /// 64-bit MIPS.
        Mips64 = 6, "mips64", "MIPS 64 Bit";
        /// 64-bit ARM.
        Arm64 = 22, "arm64", "AArch64";
        /// 64-bit x86.
        X86_64 = 24, "x86_64", "AMD x86_64";
        /// RISC-V.
        Riscv = 26, "riscv", "RISC-V";
    }
}

code_enum! {
    /// Operating system (`IH_OS_*`).
    Os {
        /// Linux, the only one this project boots.
        Linux = 5, "linux", "Linux";
    }
}

code_enum! {
    /// Image type (`IH_TYPE_*`).
    ImageType {
        /// A standalone program.
        Standalone = 1, "standalone", "Standalone Program";
        /// An OS kernel.
        Kernel = 2, "kernel", "Kernel Image";
        /// A ramdisk (initrd).
        Ramdisk = 3, "ramdisk", "RAMDisk Image";
        /// Several files behind a size table.
        Multi = 4, "multi", "Multi-File Image";
        /// Firmware, e.g. a boot loader to flash.
        Firmware = 5, "firmware", "Firmware";
        /// A U-Boot script run with `source`.
        Script = 6, "script", "Script";
    }
}

code_enum! {
    /// Payload compression (`IH_COMP_*`). The header only records it; the
    /// payload must already be compressed (see [`crate::compress`]).
    Compression {
        /// Stored as is.
        None = 0, "none", "uncompressed";
        /// gzip.
        Gzip = 1, "gzip", "gzip compressed";
        /// bzip2.
        Bzip2 = 2, "bzip2", "bzip2 compressed";
        /// LZMA in the legacy `.lzma` container.
        Lzma = 3, "lzma", "lzma compressed";
        /// LZO.
        Lzo = 4, "lzo", "lzo compressed";
        /// LZ4.
        Lz4 = 5, "lz4", "lz4 compressed";
        /// Zstandard.
        Zstd = 6, "zstd", "zstd compressed";
    }
}

/// A zero-copy view of a legacy image header (and whatever follows it).
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps a buffer without checking it; accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    /// Wraps a buffer after checking that it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks that the buffer holds at least the 64-byte header.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated { len });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn be32(&self, r: std::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// `ih_magic`.
    pub fn magic(&self) -> u32 {
        self.be32(field::MAGIC)
    }
    /// `ih_hcrc`: CRC32 of the header with this field zeroed.
    pub fn header_crc(&self) -> u32 {
        self.be32(field::HCRC)
    }
    /// `ih_time`: creation time, seconds since the epoch.
    pub fn timestamp(&self) -> u32 {
        self.be32(field::TIME)
    }
    /// `ih_size`: payload size in bytes.
    pub fn data_size(&self) -> u32 {
        self.be32(field::SIZE)
    }
    /// `ih_load`: load address.
    pub fn load_addr(&self) -> u32 {
        self.be32(field::LOAD)
    }
    /// `ih_ep`: entry point.
    pub fn entry_point(&self) -> u32 {
        self.be32(field::EP)
    }
    /// `ih_dcrc`: CRC32 of the payload.
    pub fn data_crc(&self) -> u32 {
        self.be32(field::DCRC)
    }
    /// `ih_os`.
    pub fn os(&self) -> Os {
        self.buffer.as_ref()[field::OS].into()
    }
    /// `ih_arch`.
    pub fn arch(&self) -> Arch {
        self.buffer.as_ref()[field::ARCH].into()
    }
    /// `ih_type`.
    pub fn image_type(&self) -> ImageType {
        self.buffer.as_ref()[field::TYPE].into()
    }
    /// `ih_comp`.
    pub fn compression(&self) -> Compression {
        self.buffer.as_ref()[field::COMP].into()
    }
    /// `ih_name` up to its first NUL byte (all 32 bytes when there is none).
    pub fn name_bytes(&self) -> &[u8] {
        let raw = &self.buffer.as_ref()[field::NAME];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        &raw[..end]
    }

    /// CRC32 of the header as U-Boot computes it (with `ih_hcrc` zeroed).
    pub fn compute_header_crc(&self) -> u32 {
        let b = &self.buffer.as_ref()[..HEADER_LEN];
        let mut h = crc32fast::Hasher::new();
        h.update(&b[..field::HCRC.start]);
        h.update(&[0; 4]);
        h.update(&b[field::HCRC.end..]);
        h.finalize()
    }

    /// The payload after the header, as long as the header says (or
    /// whatever is there when the buffer is shorter).
    pub fn payload(&self) -> &[u8] {
        let b = &self.buffer.as_ref()[HEADER_LEN..];
        let n = (self.data_size() as usize).min(b.len());
        &b[..n]
    }

    /// Checks magic and header CRC, then that the payload is all there and
    /// matches the data CRC: the checks `iminfo` makes, in its order.
    pub fn verify(&self) -> Result<(), Error> {
        self.check_len()?;
        if self.magic() != MAGIC {
            return Err(Error::BadMagic {
                found: self.magic(),
            });
        }
        let computed = self.compute_header_crc();
        if computed != self.header_crc() {
            return Err(Error::BadHeaderCrc {
                stored: self.header_crc(),
                computed,
            });
        }
        let found = self.buffer.as_ref().len() - HEADER_LEN;
        if found < self.data_size() as usize {
            return Err(Error::TruncatedData {
                expected: self.data_size(),
                found,
            });
        }
        let computed = crc32fast::hash(self.payload());
        if computed != self.data_crc() {
            return Err(Error::BadDataCrc {
                stored: self.data_crc(),
                computed,
            });
        }
        Ok(())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    fn set_be32(&mut self, r: std::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets `ih_magic`.
    pub fn set_magic(&mut self, v: u32) {
        self.set_be32(field::MAGIC, v)
    }
    /// Sets `ih_hcrc`.
    pub fn set_header_crc(&mut self, v: u32) {
        self.set_be32(field::HCRC, v)
    }
    /// Sets `ih_time`.
    pub fn set_timestamp(&mut self, v: u32) {
        self.set_be32(field::TIME, v)
    }
    /// Sets `ih_size`.
    pub fn set_data_size(&mut self, v: u32) {
        self.set_be32(field::SIZE, v)
    }
    /// Sets `ih_load`.
    pub fn set_load_addr(&mut self, v: u32) {
        self.set_be32(field::LOAD, v)
    }
    /// Sets `ih_ep`.
    pub fn set_entry_point(&mut self, v: u32) {
        self.set_be32(field::EP, v)
    }
    /// Sets `ih_dcrc`.
    pub fn set_data_crc(&mut self, v: u32) {
        self.set_be32(field::DCRC, v)
    }
    /// Sets `ih_os`.
    pub fn set_os(&mut self, v: Os) {
        self.buffer.as_mut()[field::OS] = v.into();
    }
    /// Sets `ih_arch`.
    pub fn set_arch(&mut self, v: Arch) {
        self.buffer.as_mut()[field::ARCH] = v.into();
    }
    /// Sets `ih_type`.
    pub fn set_image_type(&mut self, v: ImageType) {
        self.buffer.as_mut()[field::TYPE] = v.into();
    }
    /// Sets `ih_comp`.
    pub fn set_compression(&mut self, v: Compression) {
        self.buffer.as_mut()[field::COMP] = v.into();
    }
    /// Sets `ih_name`, zero-filled; the caller has checked the length.
    pub fn set_name_bytes(&mut self, name: &[u8]) {
        let dst = &mut self.buffer.as_mut()[field::NAME];
        dst.fill(0);
        let n = name.len().min(NAME_LEN);
        dst[..n].copy_from_slice(&name[..n]);
    }
    /// Recomputes and stores the header CRC; call after every other setter.
    pub fn fill_header_crc(&mut self) {
        let crc = self.compute_header_crc();
        self.set_header_crc(crc);
    }
}

/// The parsed content of a legacy header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRepr {
    /// Image name, at most 32 bytes.
    pub name: String,
    /// Creation time, seconds since the epoch.
    pub timestamp: u32,
    /// Payload size in bytes.
    pub data_size: u32,
    /// Load address.
    pub load_addr: u32,
    /// Entry point.
    pub entry_point: u32,
    /// CRC32 of the payload.
    pub data_crc: u32,
    /// Operating system.
    pub os: Os,
    /// CPU architecture.
    pub arch: Arch,
    /// Image type.
    pub image_type: ImageType,
    /// Payload compression.
    pub compression: Compression,
}

impl HeaderRepr {
    /// Parses a header after checking its length, magic and header CRC.
    /// The payload is not checked here: see [`Header::verify`].
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Result<Self, Error> {
        h.check_len()?;
        if h.magic() != MAGIC {
            return Err(Error::BadMagic { found: h.magic() });
        }
        let computed = h.compute_header_crc();
        if computed != h.header_crc() {
            return Err(Error::BadHeaderCrc {
                stored: h.header_crc(),
                computed,
            });
        }
        Ok(HeaderRepr::read(h))
    }

    /// The fields as the header holds them, checking nothing (magic and
    /// header CRC may be wrong): what a listing of a damaged image shows.
    /// The header must be at least [`HEADER_LEN`] bytes.
    pub fn read<T: AsRef<[u8]>>(h: &Header<T>) -> Self {
        HeaderRepr {
            name: String::from_utf8_lossy(h.name_bytes()).into_owned(),
            timestamp: h.timestamp(),
            data_size: h.data_size(),
            load_addr: h.load_addr(),
            entry_point: h.entry_point(),
            data_crc: h.data_crc(),
            os: h.os(),
            arch: h.arch(),
            image_type: h.image_type(),
            compression: h.compression(),
        }
    }

    /// Writes the header into the first 64 bytes of `h`, header CRC last.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) -> Result<(), Error> {
        check_name(&self.name)?;
        h.check_len()?;
        h.set_magic(MAGIC);
        h.set_header_crc(0);
        h.set_timestamp(self.timestamp);
        h.set_data_size(self.data_size);
        h.set_load_addr(self.load_addr);
        h.set_entry_point(self.entry_point);
        h.set_data_crc(self.data_crc);
        h.set_os(self.os);
        h.set_arch(self.arch);
        h.set_image_type(self.image_type);
        h.set_compression(self.compression);
        h.set_name_bytes(self.name.as_bytes());
        h.fill_header_crc();
        Ok(())
    }

    /// The type line of `dumpimage -l`, e.g. `ARM Linux Kernel Image (uncompressed)`.
    pub fn type_line(&self) -> String {
        format!(
            "{} {} {} ({})",
            self.arch, self.os, self.image_type, self.compression
        )
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.len() > NAME_LEN {
        return Err(Error::NameTooLong {
            name: name.to_owned(),
            len: name.len(),
        });
    }
    Ok(())
}

/// What goes into a legacy image besides its payload: the `mkimage` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UImageSpec {
    /// `-n`: image name, at most 32 bytes.
    pub name: String,
    /// `-A`: architecture.
    pub arch: Arch,
    /// `-O`: operating system.
    pub os: Os,
    /// `-T`: image type.
    pub image_type: ImageType,
    /// `-C`: compression the payload already has.
    pub compression: Compression,
    /// `-a`: load address.
    pub load_addr: u32,
    /// `-e`: entry point.
    pub entry_point: u32,
    /// Creation time (`SOURCE_DATE_EPOCH` for `mkimage`).
    pub timestamp: u32,
}

impl UImageSpec {
    /// A Linux kernel image with the given name, architecture, compression
    /// and load/entry addresses, stamped with [`source_date_epoch`] or now.
    pub fn kernel(name: &str, arch: Arch, compression: Compression, load: u32, entry: u32) -> Self {
        UImageSpec {
            name: name.to_owned(),
            arch,
            os: Os::Linux,
            image_type: ImageType::Kernel,
            compression,
            load_addr: load,
            entry_point: entry,
            timestamp: source_date_epoch(),
        }
    }

    /// A U-Boot script image (`mkimage -T script -C none`).
    pub fn script(name: &str, arch: Arch) -> Self {
        UImageSpec {
            name: name.to_owned(),
            arch,
            os: Os::Linux,
            image_type: ImageType::Script,
            compression: Compression::None,
            load_addr: 0,
            entry_point: 0,
            timestamp: source_date_epoch(),
        }
    }

    /// Builds the image: header then `payload` as given. For script and
    /// multi-file types, pass the output of [`multi_payload`] (what
    /// [`script_image`] does).
    pub fn build(&self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        check_name(&self.name)?;
        let data_size =
            u32::try_from(payload.len()).map_err(|_| Error::DataTooLarge { len: payload.len() })?;
        let mut out = vec![0u8; HEADER_LEN + payload.len()];
        out[HEADER_LEN..].copy_from_slice(payload);
        let repr = HeaderRepr {
            name: self.name.clone(),
            timestamp: self.timestamp,
            data_size,
            load_addr: self.load_addr,
            entry_point: self.entry_point,
            data_crc: crc32fast::hash(payload),
            os: self.os,
            arch: self.arch,
            image_type: self.image_type,
            compression: self.compression,
        };
        repr.emit(&mut Header::new_unchecked(&mut out[..]))?;
        Ok(out)
    }
}

impl UImageSpec {
    /// Builds the image from the file `input` into `output`, streaming:
    /// the payload is copied in chunks (its CRC computed on the way) after
    /// a placeholder header, which is filled in at the end. The output is
    /// a temporary file next to `output`, renamed into place when complete.
    /// Returns the header written.
    pub fn write_file(&self, input: &Path, output: &Path) -> Result<HeaderRepr, FileError> {
        use std::io::{Read, Seek, SeekFrom, Write};
        check_name(&self.name).map_err(FileError::Image)?;
        let in_err = |source| FileError::Read {
            path: input.to_owned(),
            source,
        };
        let out_err = |source| FileError::Write {
            path: output.to_owned(),
            source,
        };
        let mut src = std::fs::File::open(input).map_err(in_err)?;
        let dir = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".lmx-uimage-")
            .tempfile_in(dir)
            .map_err(out_err)?;
        let f = tmp.as_file_mut();
        f.write_all(&[0; HEADER_LEN]).map_err(out_err)?;
        let mut crc = crc32fast::Hasher::new();
        let mut size: u64 = 0;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(in_err(e)),
            };
            crc.update(&buf[..n]);
            f.write_all(&buf[..n]).map_err(out_err)?;
            size += n as u64;
        }
        let data_size = u32::try_from(size)
            .map_err(|_| FileError::Image(Error::DataTooLarge { len: size as usize }))?;
        let repr = HeaderRepr {
            name: self.name.clone(),
            timestamp: self.timestamp,
            data_size,
            load_addr: self.load_addr,
            entry_point: self.entry_point,
            data_crc: crc.finalize(),
            os: self.os,
            arch: self.arch,
            image_type: self.image_type,
            compression: self.compression,
        };
        let mut header = [0u8; HEADER_LEN];
        repr.emit(&mut Header::new_unchecked(&mut header[..]))
            .map_err(FileError::Image)?;
        f.seek(SeekFrom::Start(0)).map_err(out_err)?;
        f.write_all(&header).map_err(out_err)?;
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(out_err)?;
        f.sync_all().map_err(out_err)?;
        tmp.persist(output).map_err(|e| out_err(e.error))?;
        Ok(repr)
    }
}

/// Errors from [`UImageSpec::write_file`], naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The payload could not be read.
    #[error("cannot read {path}: {source}", path = path.display())]
    Read {
        /// The input path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The image could not be written.
    #[error("cannot write {path}: {source}", path = path.display())]
    Write {
        /// The output path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The header could not be built (name too long, payload too large).
    #[error(transparent)]
    Image(Error),
}

/// A script image of `text`, laid out as `mkimage -T script` does.
pub fn script_image(spec: &UImageSpec, text: &[u8]) -> Result<Vec<u8>, Error> {
    spec.build(&multi_payload(&[text]))
}

/// The payload of a multi-file or script image: a table of big-endian
/// 32-bit sizes ended by a zero entry, then each part padded to 4 bytes
/// except the last (the layout `mkimage` writes).
pub fn multi_payload(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(&[0; 4]);
    for (i, p) in parts.iter().enumerate() {
        out.extend_from_slice(p);
        if i + 1 < parts.len() {
            out.resize(out.len().next_multiple_of(4), 0);
        }
    }
    out
}

/// Splits a multi-file or script payload into its parts.
pub fn split_multi(payload: &[u8]) -> Result<Vec<&[u8]>, Error> {
    let mut sizes = Vec::new();
    let mut off = 0;
    loop {
        let b = payload
            .get(off..off + 4)
            .ok_or(Error::BadMultiTable("size table has no zero terminator"))?;
        off += 4;
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if n == 0 {
            break;
        }
        sizes.push(n);
    }
    let mut parts = Vec::with_capacity(sizes.len());
    for (i, n) in sizes.iter().enumerate() {
        let part = payload
            .get(off..off + n)
            .ok_or(Error::BadMultiTable("a part runs past the end of the data"))?;
        parts.push(part);
        off += n;
        if i + 1 < sizes.len() {
            off = off.next_multiple_of(4);
        }
    }
    Ok(parts)
}

/// Alignment of the trailer [`with_trailer`] appends after the payload.
pub const TRAILER_ALIGN: usize = 4;

/// The offset at which [`with_trailer`] puts a trailer after `image`'s
/// payload: the image's length padded to [`TRAILER_ALIGN`].
pub fn trailer_offset(image_len: usize) -> usize {
    image_len.next_multiple_of(TRAILER_ALIGN)
}

/// `image` (a checked legacy kernel image) with `trailer` appended to its
/// payload at [`trailer_offset`] and the header's data size and data CRC
/// (then its header CRC) rewritten to cover both.
///
/// For U-Boots without `crc32`: `bootm` checks the data CRC over every
/// byte before it unpacks the kernel, and the LZMA decoders of mainline
/// and of the Ralink 1.1.3 trees stop at the size in the LZMA header, so
/// the trailer is verified and then left where it was loaded. Only LZMA
/// kernel images are accepted: an uncompressed one would be copied to
/// its load address trailer and all.
pub fn with_trailer(image: &[u8], trailer: &[u8]) -> Result<Vec<u8>, Error> {
    let img = UImage::parse(image)?;
    if img.header.image_type != ImageType::Kernel || img.header.compression != Compression::Lzma {
        return Err(Error::NotLzmaKernel {
            found: img.header.type_line(),
        });
    }
    let end = HEADER_LEN + img.payload.len();
    let at = trailer_offset(end);
    let size = at - HEADER_LEN + trailer.len();
    let size32 = u32::try_from(size).map_err(|_| Error::DataTooLarge { len: size })?;
    let mut out = Vec::with_capacity(at + trailer.len());
    out.extend_from_slice(&image[..end]);
    out.resize(at, 0);
    out.extend_from_slice(trailer);
    let header = HeaderRepr {
        data_size: size32,
        data_crc: crc32fast::hash(&out[HEADER_LEN..]),
        ..img.header
    };
    let mut h = Header::new_checked(&mut out[..])?;
    header.emit(&mut h)?;
    Ok(out)
}

/// A legacy image checked end to end: header fields plus its payload.
#[derive(Debug, Clone)]
pub struct UImage<'a> {
    /// The parsed header.
    pub header: HeaderRepr,
    /// The payload, exactly `header.data_size` bytes.
    pub payload: &'a [u8],
}

impl<'a> UImage<'a> {
    /// Parses and verifies (magic, header CRC, size, data CRC) an image.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let h = Header::new_checked(bytes)?;
        let header = HeaderRepr::parse(&h)?;
        h.verify()?;
        Ok(UImage {
            header,
            payload: &bytes[HEADER_LEN..HEADER_LEN + h.data_size() as usize],
        })
    }
}

/// The creation time to stamp: `SOURCE_DATE_EPOCH` when set and valid
/// (as `mkimage` does), otherwise the current time.
pub fn source_date_epoch() -> u32 {
    if let Some(t) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// Formats seconds since the epoch as `ctime` does in UTC, e.g.
/// `Tue Nov 14 22:13:20 2023` (the `Created:` line of `dumpimage -l`).
pub fn format_ctime(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats a size as `dumpimage -l` does: `1001 Bytes = 0.98 KiB = 0.00 MiB`.
pub fn format_size(size: u64) -> String {
    format!(
        "{} Bytes = {:.2} KiB = {:.2} MiB",
        size,
        size as f64 / 1024.0,
        size as f64 / 1_048_576.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailer_is_covered_by_the_data_crc_and_leaves_the_kernel_intact() {
        let kernel = crate::compress::lzma_compress(&[7u8; 5000], 6).unwrap();
        let spec = UImageSpec::kernel("k", Arch::Mips, Compression::Lzma, 0x8000_0000, 0x8000_0000);
        let image = spec.build(&kernel).unwrap();
        let trailer: Vec<u8> = (0..3001u32).map(|i| (i * 7) as u8).collect();
        let out = with_trailer(&image, &trailer).unwrap();
        // The whole file checks out as U-Boot's bootm checks it.
        let parsed = UImage::parse(&out).unwrap();
        let at = trailer_offset(image.len());
        assert_eq!(at % TRAILER_ALIGN, 0);
        assert_eq!(
            parsed.header.data_size as usize,
            at - HEADER_LEN + trailer.len()
        );
        assert_eq!(&out[at..], &trailer[..]);
        // The kernel part is the original LZMA stream, then zero padding.
        assert_eq!(&parsed.payload[..kernel.len()], &kernel[..]);
        assert!(out[image.len()..at].iter().all(|b| *b == 0));
        let decoded = crate::compress::lzma_decompress(&parsed.payload[..kernel.len()]).unwrap();
        assert_eq!(decoded, vec![7u8; 5000]);
        // Name, addresses, type and compression are kept.
        let before = HeaderRepr::parse(&Header::new_checked(&image[..]).unwrap()).unwrap();
        assert_eq!(
            HeaderRepr {
                data_size: before.data_size,
                data_crc: before.data_crc,
                ..parsed.header.clone()
            },
            before
        );
        // One flipped trailer byte is what bootm reports as Bad Data CRC.
        let mut bad = out.clone();
        bad[at + 100] ^= 1;
        assert!(matches!(UImage::parse(&bad), Err(Error::BadDataCrc { .. })));
    }

    #[test]
    fn only_an_lzma_kernel_carries_a_trailer() {
        let spec = UImageSpec::kernel("k", Arch::Mips, Compression::None, 0x8000_0000, 0x8000_0000);
        let image = spec.build(&[1, 2, 3]).unwrap();
        let e = with_trailer(&image, b"rootfs").unwrap_err();
        assert!(matches!(e, Error::NotLzmaKernel { .. }), "{e}");
        assert!(e.to_string().contains("(uncompressed)"), "{e}");
        assert!(matches!(
            with_trailer(b"short", b"x"),
            Err(Error::Truncated { .. })
        ));
    }

    /// `SOURCE_DATE_EPOCH=1700000000 mkimage -A arm -O linux -T script -C none
    /// -n boot -d s.txt` with s.txt = "echo hi\nsetenv a b\n".
    const SCRIPT_IMG: [u8; 91] = [
        0x27, 0x05, 0x19, 0x56, 0x9b, 0x5b, 0x8c, 0x24, 0x65, 0x53, 0xf1, 0x00, 0x00, 0x00, 0x00,
        0x1b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xbd, 0xba, 0xe4, 0x74, 0x05, 0x02,
        0x06, 0x00, 0x62, 0x6f, 0x6f, 0x74, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x00, 0x65, 0x63, 0x68,
        0x6f, 0x20, 0x68, 0x69, 0x0a, 0x73, 0x65, 0x74, 0x65, 0x6e, 0x76, 0x20, 0x61, 0x20, 0x62,
        0x0a,
    ];

    fn script_repr() -> HeaderRepr {
        HeaderRepr {
            name: "boot".into(),
            timestamp: 1_700_000_000,
            data_size: 27,
            load_addr: 0,
            entry_point: 0,
            data_crc: 0xbdba_e474,
            os: Os::Linux,
            arch: Arch::Arm,
            image_type: ImageType::Script,
            compression: Compression::None,
        }
    }

    #[test]
    fn parse_literal_script_image() {
        let h = Header::new_checked(&SCRIPT_IMG[..]).unwrap();
        assert_eq!(HeaderRepr::parse(&h).unwrap(), script_repr());
        h.verify().unwrap();
        let img = UImage::parse(&SCRIPT_IMG).unwrap();
        assert_eq!(
            split_multi(img.payload).unwrap(),
            vec![&b"echo hi\nsetenv a b\n"[..]]
        );
    }

    #[test]
    fn emit_literal_script_image() {
        let mut buf = [0u8; 64];
        script_repr()
            .emit(&mut Header::new_unchecked(&mut buf[..]))
            .unwrap();
        assert_eq!(buf[..], SCRIPT_IMG[..64]);
        let mut spec = UImageSpec::script("boot", Arch::Arm);
        spec.timestamp = 1_700_000_000;
        assert_eq!(
            script_image(&spec, b"echo hi\nsetenv a b\n").unwrap(),
            SCRIPT_IMG
        );
    }

    #[test]
    fn type_line_matches_dumpimage() {
        let mut r = script_repr();
        assert_eq!(r.type_line(), "ARM Linux Script (uncompressed)");
        r.image_type = ImageType::Kernel;
        r.arch = Arch::Arm64;
        r.compression = Compression::Lzma;
        assert_eq!(
            r.type_line(),
            "AArch64 Linux Kernel Image (lzma compressed)"
        );
    }

    #[test]
    fn each_check_names_itself() {
        let mut bad = SCRIPT_IMG;
        bad[0] = 0;
        assert!(matches!(UImage::parse(&bad), Err(Error::BadMagic { .. })));
        let mut bad = SCRIPT_IMG;
        bad[40] = b'x';
        assert!(matches!(
            UImage::parse(&bad),
            Err(Error::BadHeaderCrc { .. })
        ));
        let mut bad = SCRIPT_IMG;
        bad[70] ^= 1;
        assert!(matches!(UImage::parse(&bad), Err(Error::BadDataCrc { .. })));
        assert!(matches!(
            UImage::parse(&SCRIPT_IMG[..80]),
            Err(Error::TruncatedData {
                expected: 27,
                found: 16
            })
        ));
        assert_eq!(
            UImage::parse(&SCRIPT_IMG[..10]).unwrap_err(),
            Error::Truncated { len: 10 }
        );
    }

    #[test]
    fn name_of_33_bytes_is_refused() {
        let spec = UImageSpec::script(&"x".repeat(33), Arch::Arm);
        assert!(matches!(
            spec.build(b""),
            Err(Error::NameTooLong { len: 33, .. })
        ));
        let spec = UImageSpec::script(&"x".repeat(32), Arch::Arm);
        let img = spec.build(b"").unwrap();
        assert_eq!(UImage::parse(&img).unwrap().header.name, "x".repeat(32));
    }

    #[test]
    fn write_file_streams_the_same_bytes_as_build() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("Image");
        let data: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&input, &data).unwrap();
        let mut spec = UImageSpec::kernel(
            "k",
            Arch::Arm64,
            Compression::None,
            0x4040_0000,
            0x4040_0000,
        );
        spec.timestamp = 1_700_000_000;
        let out = dir.path().join("uImage");
        let repr = spec.write_file(&input, &out).unwrap();
        assert_eq!(repr.data_size, 3_000_001);
        assert_eq!(std::fs::read(&out).unwrap(), spec.build(&data).unwrap());
        let err = spec
            .write_file(&dir.path().join("missing"), &out)
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        spec.name = "n".repeat(40);
        assert!(matches!(
            spec.write_file(&input, &dir.path().join("x")),
            Err(FileError::Image(Error::NameTooLong { len: 40, .. }))
        ));
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn multi_payload_pads_all_but_last() {
        let p = multi_payload(&[b"abcde", b"x", b"yz"]);
        assert_eq!(
            p,
            [
                0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, b'a', b'b', b'c', b'd', b'e', 0, 0,
                0, b'x', 0, 0, 0, b'y', b'z'
            ]
        );
        assert_eq!(
            split_multi(&p).unwrap(),
            vec![&b"abcde"[..], &b"x"[..], &b"yz"[..]]
        );
        assert!(split_multi(&p[..29]).is_err());
    }

    #[test]
    fn ctime_and_size_format() {
        assert_eq!(format_ctime(1_700_000_000), "Tue Nov 14 22:13:20 2023");
        assert_eq!(format_ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(format_size(1001), "1001 Bytes = 0.98 KiB = 0.00 MiB");
    }

    #[test]
    fn codes_round_trip() {
        for c in 0..=255u8 {
            assert_eq!(u8::from(Arch::from(c)), c);
            assert_eq!(u8::from(ImageType::from(c)), c);
            assert_eq!(u8::from(Compression::from(c)), c);
        }
        assert_eq!(Arch::from_mkimage_name("mips64"), Some(Arch::Mips64));
    }
}
