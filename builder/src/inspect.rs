//! What an image file is, listed as `dumpimage -l` lists it, with every
//! check that can be made on it.
//!
//! [`inspect`] tells a U-Boot legacy image, a FIT and a plain device tree
//! apart, writes the fields `dumpimage -l` prints (and, for a device tree,
//! its model, reservations and bootargs), and checks everything that can
//! be checked: the header and data CRCs, every FIT hash, the blob
//! structure. The listing is kept even when a check fails, so a reader
//! sees how far the file was good; the failure names the check, so a
//! script can rely on it before an image goes to a board.

use crate::compress;
use crate::fdt::{self, Fdt};
use crate::fit::{self, Fit};
use crate::uimage::{self, Compression, Header, HeaderRepr, ImageType};
use std::fmt::Write as _;

/// The listing of an image and the first check it failed.
#[derive(Debug)]
pub struct Inspection {
    /// The lines `dumpimage -l` would print, each ending in a newline; on
    /// a failed check, the lines up to and including the failed field.
    pub listing: String,
    /// The check that failed, if any; `None` when everything checked out.
    pub failure: Option<InspectError>,
}

/// Why an image is not what it should be.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InspectError {
    /// Neither a uImage nor a flattened device tree (or FIT).
    #[error("{name}: not a uImage, FIT or device tree (starts with {head})")]
    #[diagnostic(help(
        "only U-Boot legacy images (27 05 19 56), FIT images and device tree blobs \
         (d0 0d fe ed) can be inspected"
    ))]
    UnknownFormat {
        /// The file, as the listing names it.
        name: String,
        /// The first bytes in hex, or why there are none.
        head: String,
    },
    /// The device tree (or FIT) structure is broken.
    #[error("{name}: {error}")]
    #[diagnostic(help("the blob is truncated or corrupt: rebuild it with dtc or re-copy it"))]
    Fdt {
        /// The file.
        name: String,
        /// What the FDT parser found.
        error: fdt::Error,
    },
    /// Shorter than a uImage header.
    #[error("{name}: {error}")]
    #[diagnostic(help("the file is truncated: copy it again"))]
    ShortHeader {
        /// The file.
        name: String,
        /// The header's length check.
        error: uimage::Error,
    },
    /// A uImage check failed: the header CRC, the data size or the data CRC.
    #[error("{name}: {check} failed: {error}")]
    UImageCheck {
        /// The file.
        name: String,
        /// The check, e.g. `header CRC check`.
        check: &'static str,
        /// What the check found.
        error: uimage::Error,
        /// What to do about it.
        #[help]
        help: &'static str,
    },
    /// The FIT could not be read as a FIT.
    #[error("{name}: {error}")]
    #[diagnostic(help("the FIT is damaged: rebuild it"))]
    Fit {
        /// The file.
        name: String,
        /// What the FIT reader found.
        error: fit::Error,
    },
    /// One or more FIT hashes (or other FIT checks) failed.
    #[error("{name}: {} check(s) failed: {}", failures.len(), failures.join("; "))]
    #[diagnostic(help("the FIT was modified or damaged after it was built: rebuild it"))]
    FitChecks {
        /// The file.
        name: String,
        /// Each failed check.
        failures: Vec<String>,
    },
}

/// Lists and checks the image `bytes`, naming it `name` in the listing
/// and in errors. `Err` when the file is not an image at all (or its
/// structure cannot be read); an [`Inspection`] with a `failure` when it
/// is one but a check failed.
pub fn inspect(name: &str, bytes: &[u8]) -> Result<Inspection, InspectError> {
    let mut out = String::new();
    let failure = if bytes.len() >= 4 && bytes[..4] == uimage::MAGIC.to_be_bytes() {
        uimage_listing(&mut out, name, bytes)?
    } else if fdt::looks_like_fdt(bytes) {
        let tree = Fdt::parse(bytes).map_err(|error| InspectError::Fdt {
            name: name.into(),
            error,
        })?;
        if tree.node("/images").is_some() {
            fit_listing(&mut out, name, bytes)?
        } else {
            dtb_listing(&mut out, name, bytes, &tree);
            None
        }
    } else {
        let magic: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(InspectError::UnknownFormat {
            name: name.into(),
            head: if magic.is_empty() {
                "nothing: the file is empty".into()
            } else {
                magic.join(" ")
            },
        });
    };
    Ok(Inspection {
        listing: out,
        failure,
    })
}

// `writeln!` into a String cannot fail.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

fn uimage_listing(
    out: &mut String,
    name: &str,
    bytes: &[u8],
) -> Result<Option<InspectError>, InspectError> {
    let h = Header::new_checked(bytes).map_err(|error| InspectError::ShortHeader {
        name: name.into(),
        error,
    })?;
    line!(out, "U-Boot legacy image: {name}");
    line!(
        out,
        "Image Name:   {}",
        String::from_utf8_lossy(h.name_bytes())
    );
    line!(
        out,
        "Created:      {}",
        uimage::format_ctime(h.timestamp().into())
    );
    // The header as read, whatever its CRC says (HeaderRepr::parse would refuse it).
    let repr = HeaderRepr::read(&h);
    line!(out, "Image Type:   {}", repr.type_line());
    line!(
        out,
        "Data Size:    {}",
        uimage::format_size(h.data_size().into())
    );
    line!(out, "Load Address: {:08x}", h.load_addr());
    line!(out, "Entry Point:  {:08x}", h.entry_point());

    let fail = |check, error, help| InspectError::UImageCheck {
        name: name.into(),
        check,
        error,
        help,
    };
    let computed = h.compute_header_crc();
    if computed != h.header_crc() {
        line!(
            out,
            "Header CRC:   {:08x} BAD (computed {computed:08x})",
            h.header_crc()
        );
        return Ok(Some(fail(
            "header CRC check",
            uimage::Error::BadHeaderCrc {
                stored: h.header_crc(),
                computed,
            },
            "the 64-byte header was modified or damaged: rebuild the image",
        )));
    }
    line!(out, "Header CRC:   {:08x} OK", h.header_crc());
    match h.verify() {
        Ok(()) => {
            line!(out, "Data CRC:     {:08x} OK", h.data_crc());
        }
        Err(e @ uimage::Error::TruncatedData { .. }) => {
            line!(
                out,
                "Data CRC:     {:08x} not checked: data truncated",
                h.data_crc()
            );
            return Ok(Some(fail(
                "data size check",
                e,
                "the file is shorter than its header says: it was cut during a copy or download",
            )));
        }
        Err(e) => {
            line!(out, "Data CRC:     {:08x} BAD", h.data_crc());
            return Ok(Some(fail(
                "data CRC check",
                e,
                "the payload was damaged after the image was built: rebuild or copy it again",
            )));
        }
    }
    let payload = h.payload();
    if matches!(h.image_type(), ImageType::Multi | ImageType::Script) {
        if let Ok(parts) = uimage::split_multi(payload) {
            line!(out, "Contents:");
            for (i, p) in parts.iter().enumerate() {
                line!(out, "   Image {i}: {}", uimage::format_size(p.len() as u64));
            }
        }
    }
    // Only a plausible .lzma header is worth showing: the first byte
    // packs lc/lp/pb (< 225) and no router kernel unpacks past 4 GiB.
    if h.compression() == Compression::Lzma && payload.first().is_some_and(|&p| p < 225) {
        match compress::lzma_uncompressed_size(payload) {
            Ok(Some(n)) if n > u32::MAX as u64 => {}
            Ok(Some(n)) => {
                line!(
                    out,
                    "Uncompressed: {} (from the .lzma header)",
                    uimage::format_size(n)
                );
            }
            Ok(None) => {
                line!(out, "Uncompressed: unknown (.lzma header has no size)");
            }
            Err(_) => {}
        }
    }
    Ok(None)
}

fn fit_listing(
    out: &mut String,
    name: &str,
    bytes: &[u8],
) -> Result<Option<InspectError>, InspectError> {
    let fit = Fit::parse(bytes).map_err(|error| InspectError::Fit {
        name: name.into(),
        error,
    })?;
    line!(out, "FIT image: {name}");
    let created = fit.timestamp.map(|t| uimage::format_ctime(t.into()));
    line!(
        out,
        "FIT description: {}",
        fit.description.as_deref().unwrap_or("unavailable")
    );
    line!(
        out,
        "Created:         {}",
        created.as_deref().unwrap_or("unavailable")
    );
    for (i, img) in fit.images.iter().enumerate() {
        line!(out, " Image {i} ({})", img.name);
        line!(
            out,
            "  Description:  {}",
            img.description.as_deref().unwrap_or("unavailable")
        );
        if let Some(c) = &created {
            line!(out, "  Created:      {c}");
        }
        line!(
            out,
            "  Type:         {}",
            fit_type_name(img.kind.as_deref())
        );
        line!(
            out,
            "  Compression:  {}",
            img.compression
                .as_deref()
                .and_then(Compression::from_mkimage_name)
                .map(|c| c.to_string())
                .unwrap_or_else(|| img.compression.clone().unwrap_or("unavailable".into()))
        );
        line!(
            out,
            "  Data Size:    {}",
            uimage::format_size(img.data_size as u64)
        );
        if let Some(a) = &img.arch {
            let shown = uimage::Arch::from_mkimage_name(a)
                .map(|a| a.to_string())
                .unwrap_or_else(|| a.clone());
            line!(out, "  Architecture: {shown}");
        }
        if let Some(os) = &img.os {
            line!(
                out,
                "  OS:           {}",
                if os == "linux" { "Linux" } else { os }
            );
        }
        if let Some(l) = img.load {
            line!(out, "  Load Address: {l:#010x}");
        }
        if let Some(e) = img.entry {
            line!(out, "  Entry Point:  {e:#010x}");
        }
        for h in &img.hashes {
            let value: String = h.value.iter().map(|b| format!("{b:02x}")).collect();
            let verdict = match h.ok {
                Some(true) => "OK",
                Some(false) => "BAD",
                None => "not checked (unknown algorithm)",
            };
            line!(out, "  Hash algo:    {}", h.algo);
            line!(out, "  Hash value:   {value} {verdict}");
        }
    }
    if let Some(d) = &fit.default_config {
        line!(out, " Default Configuration: '{d}'");
    }
    for (i, c) in fit.configs.iter().enumerate() {
        line!(out, " Configuration {i} ({})", c.name);
        line!(
            out,
            "  Description:  {}",
            c.description.as_deref().unwrap_or("unavailable")
        );
        if let Some(k) = &c.kernel {
            line!(out, "  Kernel:       {k}");
        }
        if let Some(r) = &c.ramdisk {
            line!(out, "  Init Ramdisk: {r}");
        }
        if let Some(f) = &c.fdt {
            line!(out, "  FDT:          {f}");
        }
    }
    let failures = fit.failures();
    Ok((!failures.is_empty()).then(|| InspectError::FitChecks {
        name: name.into(),
        failures,
    }))
}

/// `dumpimage -l`'s name for a FIT image type.
fn fit_type_name(kind: Option<&str>) -> String {
    match kind {
        Some("kernel") => "Kernel Image".into(),
        Some("flat_dt") => "Flat Device Tree".into(),
        Some("ramdisk") => "RAMDisk Image".into(),
        Some("firmware") => "Firmware".into(),
        Some("script") => "Script".into(),
        Some(other) => other.into(),
        None => "unavailable".into(),
    }
}

fn dtb_listing(out: &mut String, name: &str, bytes: &[u8], tree: &Fdt) {
    let h = fdt::FdtHeader::new_unchecked(bytes);
    fn count(n: &fdt::Node) -> usize {
        1 + n.children.iter().map(count).sum::<usize>()
    }
    line!(out, "Device tree blob: {name}");
    line!(
        out,
        "Version:      {} (last compatible {})",
        h.version(),
        h.last_comp_version()
    );
    line!(
        out,
        "Total Size:   {}",
        uimage::format_size(h.total_size().into())
    );
    line!(out, "Nodes:        {}", count(&tree.root));
    let s = |p: &str| {
        tree.root
            .prop(p)
            .and_then(|p| p.as_str_list())
            .map(|l| l.join(", "))
    };
    if let Some(m) = s("model") {
        line!(out, "Model:        {m}");
    }
    if let Some(c) = s("compatible") {
        line!(out, "Compatible:   {c}");
    }
    for r in &tree.reserved {
        line!(out, "Memreserve:   {:#x} size {:#x}", r.address, r.size);
    }
    if let Some(rm) = tree.node("/reserved-memory") {
        for c in &rm.children {
            line!(out, "Reserved:     /reserved-memory/{}", c.name);
        }
    }
    line!(out, "Bootargs:     {}", tree.bootargs().unwrap_or("(none)"));
    line!(out, "Structure:    OK");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uimage::{Arch, UImageSpec};

    fn uimage() -> Vec<u8> {
        let spec = UImageSpec {
            timestamp: 1_700_000_000,
            ..UImageSpec::kernel(
                "Linux-6.1",
                Arch::Mips,
                Compression::None,
                0x8006_0000,
                0x8006_0000,
            )
        };
        spec.build(&[0xa5; 3000]).unwrap()
    }

    #[test]
    fn a_good_uimage_is_listed_and_passes() {
        let i = inspect("uImage", &uimage()).unwrap();
        assert!(i.failure.is_none(), "{:?}", i.failure);
        assert!(
            i.listing.starts_with("U-Boot legacy image: uImage\n"),
            "{}",
            i.listing
        );
        assert!(i
            .listing
            .contains("Image Type:   MIPS Linux Kernel Image (uncompressed)\n"));
        assert!(i.listing.ends_with(" OK\n"), "{}", i.listing);
    }

    #[test]
    fn each_uimage_check_is_named_and_the_listing_stops_at_it() {
        let mut b = uimage();
        b[40] ^= 1;
        let i = inspect("u", &b).unwrap();
        assert!(i.listing.contains(" BAD (computed "), "{}", i.listing);
        assert!(!i.listing.contains("Data CRC"), "{}", i.listing);
        let e = i.failure.unwrap().to_string();
        assert!(e.starts_with("u: header CRC check failed"), "{e}");

        let mut b = uimage();
        b[100] ^= 1;
        let e = inspect("u", &b).unwrap().failure.unwrap().to_string();
        assert!(e.contains("data CRC check failed"), "{e}");

        let b = uimage();
        let i = inspect("u", &b[..1000]).unwrap();
        assert!(i.listing.contains("not checked: data truncated"));
        assert!(i
            .failure
            .unwrap()
            .to_string()
            .contains("data size check failed"));
    }

    #[test]
    fn a_dtb_is_listed_and_other_files_are_refused() {
        let mut t = Fdt::new();
        t.root.set_str("model", "lmx test board");
        let blob = t.to_bytes();
        let i = inspect("board.dtb", &blob).unwrap();
        assert!(i.failure.is_none());
        assert!(i.listing.contains("Model:        lmx test board\n"));
        assert!(i.listing.ends_with("Structure:    OK\n"));
        let e = inspect("board.dtb", &blob[..blob.len() - 5]).unwrap_err();
        assert!(matches!(e, InspectError::Fdt { .. }), "{e}");
        let e = inspect("x", b"hello world").unwrap_err().to_string();
        assert_eq!(
            e,
            "x: not a uImage, FIT or device tree (starts with 68 65 6c 6c)"
        );
        let e = inspect("x", b"").unwrap_err().to_string();
        assert!(
            e.ends_with("(starts with nothing: the file is empty)"),
            "{e}"
        );
    }
}
