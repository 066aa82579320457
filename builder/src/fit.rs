//! FIT (Flattened Image Tree) images: a kernel, a device tree and an
//! optional ramdisk in one FDT blob, each with a hash, and a default
//! configuration that names them, for boards whose U-Boot boots FIT
//! (`bootm ADDR` picks the default configuration).
//!
//! This exists because the newer boards (MT7621, MT7622, MT7981, the
//! virtual arm64 board) boot FIT, and because building the tree here, on
//! our own [`Fdt`] codec, avoids writing an `.its` and shelling out to
//! `mkimage -f`. Reading is the other half: [`Fit::parse`] lists what an
//! image holds and [`Fit::verify`] checks every hash, for `lmx image info`.

use crate::fdt::{self, Fdt, Node};
use crate::uimage::{Arch, Compression};
use sha1::Digest as _;

/// A FIT hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgo {
    /// CRC32 (4 bytes, big-endian), what `mkimage -f auto` uses.
    Crc32,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
}

impl HashAlgo {
    /// The `algo` string in the tree.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Crc32 => "crc32",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
        }
    }

    /// Parses an `algo` string.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "crc32" => Some(HashAlgo::Crc32),
            "sha1" => Some(HashAlgo::Sha1),
            "sha256" => Some(HashAlgo::Sha256),
            _ => None,
        }
    }

    /// The digest of `data` as stored in a `value` property.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgo::Crc32 => crc32fast::hash(data).to_be_bytes().to_vec(),
            HashAlgo::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlgo::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }
}

/// The kernel part of a FIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitKernel {
    /// Kernel bytes, already compressed as `compression` says.
    pub data: Vec<u8>,
    /// Compression of `data`.
    pub compression: Compression,
    /// Load address.
    pub load: u64,
    /// Entry point.
    pub entry: u64,
}

/// The ramdisk part of a FIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitRamdisk {
    /// Ramdisk bytes.
    pub data: Vec<u8>,
    /// Where U-Boot copies it, when it must be copied.
    pub load: Option<u64>,
}

/// Everything that goes into a FIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitSpec {
    /// Top-level `description`.
    pub description: String,
    /// Architecture of every image.
    pub arch: Arch,
    /// `timestamp` (use [`crate::uimage::source_date_epoch`]).
    pub timestamp: u32,
    /// Hash put on every image.
    pub hash: HashAlgo,
    /// The kernel.
    pub kernel: FitKernel,
    /// The device tree blob, when there is one.
    pub fdt: Option<Vec<u8>>,
    /// The ramdisk, when there is one.
    pub ramdisk: Option<FitRamdisk>,
}

/// Errors from building or reading a FIT.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The blob is not a valid FDT.
    #[error(transparent)]
    Fdt(#[from] fdt::Error),
    /// The tree is an FDT but not a FIT.
    #[error("not a FIT image: {0}")]
    NotFit(String),
    /// An image's data lies outside the file.
    #[error("image {image}: external data at {offset:#x}+{size:#x} lies outside the file")]
    BadExternalData {
        /// Image node name.
        image: String,
        /// Absolute offset.
        offset: usize,
        /// Size.
        size: usize,
    },
    /// The device tree given for the FIT does not parse.
    #[error("the device tree for the FIT is not valid: {0}")]
    BadFdt(fdt::Error),
    /// The architecture has no FIT name.
    #[error("architecture {0} has no FIT name")]
    UnknownArch(Arch),
}

/// An address in one cell, or two when `wide` (the root then says
/// `#address-cells = <2>`, which is how U-Boot sizes `load`/`entry`).
fn addr_bytes(v: u64, wide: bool) -> Vec<u8> {
    if wide {
        v.to_be_bytes().to_vec()
    } else {
        (v as u32).to_be_bytes().to_vec()
    }
}

fn hash_node(algo: HashAlgo, data: &[u8]) -> Node {
    let mut h = Node::new("hash-1");
    h.set_prop("value", algo.digest(data))
        .set_str("algo", algo.name());
    h
}

impl FitSpec {
    /// Builds the FIT blob: `/images/{kernel-1,fdt-1,ramdisk-1}` with one
    /// hash node each and `/configurations/conf-1` as the default.
    ///
    /// The device tree's bytes start on an 8-byte boundary of the blob
    /// (an empty `lmx,align` property before its `data` moves them when
    /// needed): U-Boot hands the kernel the FDT in place, and the
    /// kernel's libfdt refuses a blob that is not 8-byte aligned
    /// (`FDT_ERR_ALIGNMENT`), so an arm32 kernel booted from a FIT whose
    /// DTB sat 4 bytes off printed nothing at all.
    pub fn build(&self) -> Result<Vec<u8>, Error> {
        let blob = self.to_fdt_padded(false)?.to_bytes();
        match (&self.fdt, self.fdt.as_ref().and_then(|d| find(&blob, d))) {
            (Some(_), Some(at)) if at % 8 != 0 => Ok(self.to_fdt_padded(true)?.to_bytes()),
            _ => Ok(blob),
        }
    }

    /// The FIT as a tree, before serialization.
    pub fn to_fdt(&self) -> Result<Fdt, Error> {
        self.to_fdt_padded(false)
    }

    fn to_fdt_padded(&self, pad: bool) -> Result<Fdt, Error> {
        let arch = self
            .arch
            .mkimage_name()
            .ok_or(Error::UnknownArch(self.arch))?;
        let comp = |c: Compression| c.mkimage_name().unwrap_or("none");
        let wide = [Some(self.kernel.load), Some(self.kernel.entry)]
            .into_iter()
            .chain([self.ramdisk.as_ref().and_then(|r| r.load)])
            .flatten()
            .any(|a| a > u64::from(u32::MAX));
        let mut t = Fdt::new();
        t.root
            .set_u32("timestamp", self.timestamp)
            .set_str("description", &self.description)
            .set_str("creator", "lmx-builder")
            .set_u32("#address-cells", if wide { 2 } else { 1 });
        let images = t.root.add_child(Node::new("images"));

        let k = &self.kernel;
        let kn = images.add_child(Node::new("kernel-1"));
        kn.set_str("description", "Linux kernel")
            .set_prop("data", k.data.clone())
            .set_str("type", "kernel")
            .set_str("arch", arch)
            .set_str("os", "linux")
            .set_str("compression", comp(k.compression))
            .set_prop("load", addr_bytes(k.load, wide))
            .set_prop("entry", addr_bytes(k.entry, wide));
        kn.add_child(hash_node(self.hash, &k.data));

        if let Some(dtb) = &self.fdt {
            fdt::Fdt::parse(dtb).map_err(Error::BadFdt)?;
            let n = images.add_child(Node::new("fdt-1"));
            n.set_str("description", "Flattened device tree");
            if pad {
                // 12 bytes of property header: moves `data` by 4 mod 8.
                n.set_prop("lmx,align", Vec::new());
            }
            n.set_prop("data", dtb.clone())
                .set_str("type", "flat_dt")
                .set_str("arch", arch)
                .set_str("compression", "none");
            n.add_child(hash_node(self.hash, dtb));
        }
        if let Some(rd) = &self.ramdisk {
            let n = images.add_child(Node::new("ramdisk-1"));
            n.set_str("description", "Ramdisk")
                .set_prop("data", rd.data.clone())
                .set_str("type", "ramdisk")
                .set_str("arch", arch)
                .set_str("os", "linux")
                .set_str("compression", "none");
            if let Some(load) = rd.load {
                n.set_prop("load", addr_bytes(load, wide));
            }
            n.add_child(hash_node(self.hash, &rd.data));
        }

        let confs = t.root.add_child(Node::new("configurations"));
        confs.set_str("default", "conf-1");
        let c = confs.add_child(Node::new("conf-1"));
        c.set_str("description", &self.description)
            .set_str("kernel", "kernel-1");
        if self.fdt.is_some() {
            c.set_str("fdt", "fdt-1");
        }
        if self.ramdisk.is_some() {
            c.set_str("ramdisk", "ramdisk-1");
        }
        Ok(t)
    }
}

/// Offset of the first occurrence of `needle` in `hay` after its start.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    (1..=hay.len() - needle.len()).find(|&i| hay[i..i + needle.len()] == *needle)
}

/// One hash of a FIT image and whether it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitHash {
    /// Hash node name, e.g. `hash-1`.
    pub node: String,
    /// `algo` as written (may be one this crate cannot compute).
    pub algo: String,
    /// Stored `value`.
    pub value: Vec<u8>,
    /// `Some(true)` when recomputed and equal, `Some(false)` when not,
    /// `None` when the algorithm is unknown here.
    pub ok: Option<bool>,
}

/// One image under `/images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitImageInfo {
    /// Node name, e.g. `kernel-1`.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `type`, e.g. `kernel`, `flat_dt`, `ramdisk`.
    pub kind: Option<String>,
    /// `arch`.
    pub arch: Option<String>,
    /// `os`.
    pub os: Option<String>,
    /// `compression`.
    pub compression: Option<String>,
    /// `load`.
    pub load: Option<u64>,
    /// `entry`.
    pub entry: Option<u64>,
    /// Size of the data.
    pub data_size: usize,
    /// The hashes, checked.
    pub hashes: Vec<FitHash>,
}

/// One configuration under `/configurations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitConfig {
    /// Node name.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `kernel`.
    pub kernel: Option<String>,
    /// `ramdisk`.
    pub ramdisk: Option<String>,
    /// `fdt`.
    pub fdt: Option<String>,
}

/// A parsed FIT with every hash checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fit {
    /// Top-level `description`.
    pub description: Option<String>,
    /// Top-level `timestamp`.
    pub timestamp: Option<u32>,
    /// The images.
    pub images: Vec<FitImageInfo>,
    /// `/configurations/default`.
    pub default_config: Option<String>,
    /// The configurations.
    pub configs: Vec<FitConfig>,
}

fn str_prop(n: &Node, name: &str) -> Option<String> {
    n.prop(name).and_then(|p| p.as_str()).map(str::to_owned)
}

fn addr_prop(n: &Node, name: &str) -> Option<u64> {
    let v = &n.prop(name)?.value;
    match v.len() {
        4 => Some(u32::from_be_bytes(v[..].try_into().ok()?) as u64),
        8 => Some(u64::from_be_bytes(v[..].try_into().ok()?)),
        _ => None,
    }
}

/// The data of an image node: embedded `data`, or external data placed
/// after the FDT (`data-offset`, from the 4-byte-aligned end of the
/// tree) or at an absolute `data-position`, as `mkimage -E` writes.
fn image_data<'a>(n: &'a Node, file: &'a [u8], fdt_size: usize) -> Result<&'a [u8], Error> {
    if let Some(p) = n.prop("data") {
        return Ok(&p.value);
    }
    let size = n.prop("data-size").and_then(|p| p.as_u32());
    let start = if let Some(off) = n.prop("data-offset").and_then(|p| p.as_u32()) {
        Some(fdt_size.next_multiple_of(4) + off as usize)
    } else {
        n.prop("data-position")
            .and_then(|p| p.as_u32())
            .map(|p| p as usize)
    };
    match (start, size) {
        (Some(offset), Some(size)) => {
            file.get(offset..offset + size as usize)
                .ok_or(Error::BadExternalData {
                    image: n.name.clone(),
                    offset,
                    size: size as usize,
                })
        }
        _ => Err(Error::NotFit(format!("image {} has no data", n.name))),
    }
}

impl Fit {
    /// Parses a FIT file and checks every hash node of every image.
    pub fn parse(file: &[u8]) -> Result<Fit, Error> {
        let t = Fdt::parse(file)?;
        let fdt_size = fdt::FdtHeader::new_unchecked(file).total_size() as usize;
        let images_node = t
            .node("/images")
            .ok_or_else(|| Error::NotFit("no /images node".into()))?;
        let mut images = Vec::new();
        for n in &images_node.children {
            let data = image_data(n, file, fdt_size)?;
            let hashes = n
                .children
                .iter()
                .filter(|h| {
                    h.name == "hash" || h.name.starts_with("hash-") || h.name.starts_with("hash@")
                })
                .map(|h| {
                    let algo = str_prop(h, "algo").unwrap_or_default();
                    let value = h.prop("value").map(|p| p.value.clone()).unwrap_or_default();
                    let ok = HashAlgo::from_name(&algo).map(|a| a.digest(data) == value);
                    FitHash {
                        node: h.name.clone(),
                        algo,
                        value,
                        ok,
                    }
                })
                .collect();
            images.push(FitImageInfo {
                name: n.name.clone(),
                description: str_prop(n, "description"),
                kind: str_prop(n, "type"),
                arch: str_prop(n, "arch"),
                os: str_prop(n, "os"),
                compression: str_prop(n, "compression"),
                load: addr_prop(n, "load"),
                entry: addr_prop(n, "entry"),
                data_size: data.len(),
                hashes,
            });
        }
        let confs = t.node("/configurations");
        Ok(Fit {
            description: str_prop(&t.root, "description"),
            timestamp: t.root.prop("timestamp").and_then(|p| p.as_u32()),
            images,
            default_config: confs.and_then(|c| str_prop(c, "default")),
            configs: confs
                .map(|c| {
                    c.children
                        .iter()
                        .map(|c| FitConfig {
                            name: c.name.clone(),
                            description: str_prop(c, "description"),
                            kernel: str_prop(c, "kernel"),
                            ramdisk: str_prop(c, "ramdisk"),
                            fdt: str_prop(c, "fdt"),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Every failed check, as `image/hash-node (algo)` strings; empty
    /// when all hashes match and the default configuration exists and
    /// names existing images.
    pub fn failures(&self) -> Vec<String> {
        let mut bad = Vec::new();
        for i in &self.images {
            for h in &i.hashes {
                match h.ok {
                    Some(true) => {}
                    Some(false) => bad.push(format!(
                        "hash of image {} ({}, {}) does not match its data",
                        i.name, h.node, h.algo
                    )),
                    None => bad.push(format!(
                        "hash of image {} ({}) uses unsupported algorithm {:?}",
                        i.name, h.node, h.algo
                    )),
                }
            }
        }
        if let Some(d) = &self.default_config {
            if !self.configs.iter().any(|c| &c.name == d) {
                bad.push(format!("default configuration {d:?} does not exist"));
            }
        }
        for c in &self.configs {
            for r in [&c.kernel, &c.fdt, &c.ramdisk].into_iter().flatten() {
                if !self.images.iter().any(|i| &i.name == r) {
                    bad.push(format!(
                        "configuration {} names missing image {r:?}",
                        c.name
                    ));
                }
            }
        }
        bad
    }

    /// `Ok` when [`Fit::failures`] is empty, else the first failure.
    pub fn verify(&self) -> Result<(), String> {
        match self.failures().into_iter().next() {
            None => Ok(()),
            Some(f) => Err(f),
        }
    }
}

/// Whether an FDT blob is a FIT (has an `/images` node).
pub fn is_fit(file: &[u8]) -> bool {
    Fdt::parse(file)
        .map(|t| t.node("/images").is_some())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(hash: HashAlgo) -> FitSpec {
        FitSpec {
            description: "test".into(),
            arch: Arch::Arm64,
            timestamp: 1_700_000_000,
            hash,
            kernel: FitKernel {
                data: b"kernel bytes".to_vec(),
                compression: Compression::None,
                load: 0x4040_0000,
                entry: 0x4040_0000,
            },
            fdt: Some(Fdt::new().to_bytes()),
            ramdisk: Some(FitRamdisk {
                data: b"rd".to_vec(),
                load: None,
            }),
        }
    }

    #[test]
    fn build_then_parse_each_algo() {
        for algo in [HashAlgo::Crc32, HashAlgo::Sha1, HashAlgo::Sha256] {
            let blob = spec(algo).build().unwrap();
            assert!(is_fit(&blob));
            let fit = Fit::parse(&blob).unwrap();
            assert_eq!(fit.images.len(), 3);
            assert_eq!(fit.default_config.as_deref(), Some("conf-1"));
            assert_eq!(fit.images[0].load, Some(0x4040_0000));
            assert_eq!(fit.images[0].data_size, 12);
            assert_eq!(fit.images[0].hashes[0].ok, Some(true));
            assert!(fit.failures().is_empty(), "{:?}", fit.failures());
        }
    }

    #[test]
    fn the_device_tree_starts_8_byte_aligned_whatever_precedes_it() {
        let mut dtb_tree = Fdt::new();
        dtb_tree.root.set_str("model", "lmx alignment test");
        let dtb = dtb_tree.to_bytes();
        let mut padded = 0;
        for name_len in 0..8 {
            for kernel_len in [12usize, 13, 14, 15, 16] {
                let mut s = spec(HashAlgo::Crc32);
                s.description = "x".repeat(name_len + 1);
                s.kernel.data = vec![0xa5; kernel_len];
                s.fdt = Some(dtb.clone());
                let blob = s.build().unwrap();
                let at = find(&blob, &dtb).unwrap();
                assert_eq!(at % 8, 0, "description {name_len}, kernel {kernel_len}");
                let fit = Fit::parse(&blob).unwrap();
                assert!(fit.failures().is_empty(), "{:?}", fit.failures());
                if s.to_fdt().unwrap().to_bytes() != blob {
                    padded += 1;
                }
            }
        }
        // Both cases occur: the padding is only added where needed.
        assert!(padded > 0 && padded < 40, "{padded}");
    }

    #[test]
    fn addresses_above_4_gib_use_two_cells() {
        let mut s = spec(HashAlgo::Crc32);
        s.kernel.load = 0x1_0008_0000;
        let t = s.to_fdt().unwrap();
        assert_eq!(t.root.prop("#address-cells").unwrap().as_u32(), Some(2));
        let fit = Fit::parse(&t.to_bytes()).unwrap();
        assert_eq!(fit.images[0].load, Some(0x1_0008_0000));
        assert_eq!(fit.images[0].entry, Some(0x4040_0000));
        let t = spec(HashAlgo::Crc32).to_fdt().unwrap();
        assert_eq!(t.root.prop("#address-cells").unwrap().as_u32(), Some(1));
    }

    #[test]
    fn crc32_value_is_big_endian() {
        assert_eq!(
            HashAlgo::Crc32.digest(b"123456789"),
            0xcbf4_3926u32.to_be_bytes()
        );
        assert_eq!(HashAlgo::Sha1.digest(b"").len(), 20);
    }

    #[test]
    fn corrupt_data_fails_its_hash() {
        let mut blob = spec(HashAlgo::Sha256).build().unwrap();
        let at = blob.windows(12).position(|w| w == b"kernel bytes").unwrap();
        blob[at] = b'K';
        let fit = Fit::parse(&blob).unwrap();
        let f = fit.failures();
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("kernel-1"), "{f:?}");
    }

    #[test]
    fn plain_dtb_is_not_fit() {
        assert!(!is_fit(&Fdt::new().to_bytes()));
        assert!(matches!(
            Fit::parse(&Fdt::new().to_bytes()),
            Err(Error::NotFit(_))
        ));
    }
}
