//! `lmx image`: inspect boot images offline.
//!
//! `lmx image info FILE` tells a U-Boot legacy image, a FIT and a plain
//! device tree apart, prints the fields `dumpimage -l` prints, and checks
//! everything that can be checked (header and data CRCs, every FIT hash,
//! the blob structure). A failed check is an error that names the check,
//! so a script can rely on the exit status before sending an image to a
//! board. The formats live in `lmx-builder`; this module only reads the
//! file and turns the results into text and diagnostics.
//!
//! `lmx image squashfs` (hidden until `lmx build` wraps it) builds a
//! squashfs from a directory; the benchmark in `bench/builder.sh` uses it.

use clap::{Args, Subcommand};
use lmx_builder::compress;
use lmx_builder::fdt::{self, Fdt};
use lmx_builder::fit::Fit;
use lmx_builder::squashfs::{self, SquashfsCompression, SquashfsOptions};
use lmx_builder::uimage::{self, Compression, Header, HeaderRepr, ImageType};
use miette::{miette, Result};
use std::path::{Path, PathBuf};

/// Flags of `lmx image`.
#[derive(Args, Debug)]
pub struct ImageArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// Subcommands of `lmx image`.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Show a uImage, FIT or device tree and verify its CRCs and hashes.
    Info(InfoArgs),
    /// Build a squashfs from a directory (development helper).
    #[command(hide = true)]
    Squashfs(SquashfsArgs),
}

/// Flags of `lmx image info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The image: legacy uImage, FIT (.itb) or DTB.
    pub file: PathBuf,
}

/// Flags of `lmx image squashfs`.
#[derive(Args, Debug)]
pub struct SquashfsArgs {
    /// Root directory of the tree.
    pub dir: PathBuf,
    /// Output image.
    pub out: PathBuf,
    /// Compression: xz, gzip or zstd.
    #[arg(long, default_value = "xz", value_parser = parse_comp)]
    pub comp: SquashfsCompression,
    /// Make every file owned by root.
    #[arg(long)]
    pub all_root: bool,
    /// Device table: lines `PATH c|b|d MAJOR MINOR MODE UID GID`.
    #[arg(long, value_name = "FILE")]
    pub devices: Option<PathBuf>,
}

fn parse_comp(s: &str) -> Result<SquashfsCompression, String> {
    SquashfsCompression::from_name(s).ok_or_else(|| format!("{s:?}: use xz, gzip or zstd"))
}

/// Runs `lmx image`.
pub fn run(args: ImageArgs) -> Result<()> {
    match args.command {
        ImageCommand::Info(a) => info(&a.file),
        ImageCommand::Squashfs(a) => build_squashfs(a),
    }
}

fn info(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| {
        miette!(
            help = "check the path and its permissions",
            "cannot read {}: {e}",
            path.display()
        )
    })?;
    if bytes.len() >= 4 && bytes[..4] == uimage::MAGIC.to_be_bytes() {
        uimage_info(path, &bytes)
    } else if fdt::looks_like_fdt(&bytes) {
        let tree = Fdt::parse(&bytes).map_err(|e| {
            miette!(
                help = "the blob is truncated or corrupt: rebuild it with dtc or re-copy it",
                "{}: {e}",
                path.display()
            )
        })?;
        if tree.node("/images").is_some() {
            fit_info(path, &bytes)
        } else {
            dtb_info(path, &bytes, &tree);
            Ok(())
        }
    } else {
        let magic: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Err(miette!(
            help = "lmx image info reads U-Boot legacy images (27 05 19 56), \
                    FIT images and device tree blobs (d0 0d fe ed)",
            "{}: not a uImage, FIT or device tree (starts with {})",
            path.display(),
            if magic.is_empty() {
                "nothing: the file is empty".into()
            } else {
                magic.join(" ")
            }
        ))
    }
}

fn uimage_info(path: &Path, bytes: &[u8]) -> Result<()> {
    let h = Header::new_checked(bytes).map_err(|e| {
        miette!(
            help = "the file is truncated: copy it again",
            "{}: {e}",
            path.display()
        )
    })?;
    println!("U-Boot legacy image: {}", path.display());
    println!("Image Name:   {}", String::from_utf8_lossy(h.name_bytes()));
    println!(
        "Created:      {}",
        uimage::format_ctime(h.timestamp().into())
    );
    let repr = HeaderRepr {
        name: String::new(),
        timestamp: h.timestamp(),
        data_size: h.data_size(),
        load_addr: h.load_addr(),
        entry_point: h.entry_point(),
        data_crc: h.data_crc(),
        os: h.os(),
        arch: h.arch(),
        image_type: h.image_type(),
        compression: h.compression(),
    };
    println!("Image Type:   {}", repr.type_line());
    println!(
        "Data Size:    {}",
        uimage::format_size(h.data_size().into())
    );
    println!("Load Address: {:08x}", h.load_addr());
    println!("Entry Point:  {:08x}", h.entry_point());

    let fail = |check: &str, e: uimage::Error, help: &str| {
        miette!(
            help = help.to_owned(),
            "{}: {check} failed: {e}",
            path.display()
        )
    };
    let computed = h.compute_header_crc();
    if computed != h.header_crc() {
        println!(
            "Header CRC:   {:08x} BAD (computed {computed:08x})",
            h.header_crc()
        );
        return Err(fail(
            "header CRC check",
            uimage::Error::BadHeaderCrc {
                stored: h.header_crc(),
                computed,
            },
            "the 64-byte header was modified or damaged: rebuild the image",
        ));
    }
    println!("Header CRC:   {:08x} OK", h.header_crc());
    match h.verify() {
        Ok(()) => println!("Data CRC:     {:08x} OK", h.data_crc()),
        Err(e @ uimage::Error::TruncatedData { .. }) => {
            println!(
                "Data CRC:     {:08x} not checked: data truncated",
                h.data_crc()
            );
            return Err(fail(
                "data size check",
                e,
                "the file is shorter than its header says: it was cut during a copy or download",
            ));
        }
        Err(e) => {
            println!("Data CRC:     {:08x} BAD", h.data_crc());
            return Err(fail(
                "data CRC check",
                e,
                "the payload was damaged after the image was built: rebuild or copy it again",
            ));
        }
    }
    let payload = h.payload();
    if matches!(h.image_type(), ImageType::Multi | ImageType::Script) {
        if let Ok(parts) = uimage::split_multi(payload) {
            println!("Contents:");
            for (i, p) in parts.iter().enumerate() {
                println!("   Image {i}: {}", uimage::format_size(p.len() as u64));
            }
        }
    }
    // Only a plausible .lzma header is worth showing: the first byte
    // packs lc/lp/pb (< 225) and no router kernel unpacks past 4 GiB.
    if h.compression() == Compression::Lzma && payload.first().is_some_and(|&p| p < 225) {
        match compress::lzma_uncompressed_size(payload) {
            Ok(Some(n)) if n > u32::MAX as u64 => {}
            Ok(Some(n)) => println!(
                "Uncompressed: {} (from the .lzma header)",
                uimage::format_size(n)
            ),
            Ok(None) => println!("Uncompressed: unknown (.lzma header has no size)"),
            Err(_) => {}
        }
    }
    Ok(())
}

fn fit_info(path: &Path, bytes: &[u8]) -> Result<()> {
    let fit = Fit::parse(bytes).map_err(|e| {
        miette!(
            help = "the FIT is damaged: rebuild it",
            "{}: {e}",
            path.display()
        )
    })?;
    println!("FIT image: {}", path.display());
    let created = fit.timestamp.map(|t| uimage::format_ctime(t.into()));
    println!(
        "FIT description: {}",
        fit.description.as_deref().unwrap_or("unavailable")
    );
    println!(
        "Created:         {}",
        created.as_deref().unwrap_or("unavailable")
    );
    for (i, img) in fit.images.iter().enumerate() {
        println!(" Image {i} ({})", img.name);
        println!(
            "  Description:  {}",
            img.description.as_deref().unwrap_or("unavailable")
        );
        if let Some(c) = &created {
            println!("  Created:      {c}");
        }
        println!("  Type:         {}", fit_type_name(img.kind.as_deref()));
        println!(
            "  Compression:  {}",
            img.compression
                .as_deref()
                .and_then(Compression::from_mkimage_name)
                .map(|c| c.to_string())
                .unwrap_or_else(|| img.compression.clone().unwrap_or("unavailable".into()))
        );
        println!(
            "  Data Size:    {}",
            uimage::format_size(img.data_size as u64)
        );
        if let Some(a) = &img.arch {
            let shown = uimage::Arch::from_mkimage_name(a)
                .map(|a| a.to_string())
                .unwrap_or_else(|| a.clone());
            println!("  Architecture: {shown}");
        }
        if let Some(os) = &img.os {
            println!(
                "  OS:           {}",
                if os == "linux" { "Linux" } else { os }
            );
        }
        if let Some(l) = img.load {
            println!("  Load Address: {l:#010x}");
        }
        if let Some(e) = img.entry {
            println!("  Entry Point:  {e:#010x}");
        }
        for h in &img.hashes {
            let value: String = h.value.iter().map(|b| format!("{b:02x}")).collect();
            let verdict = match h.ok {
                Some(true) => "OK",
                Some(false) => "BAD",
                None => "not checked (unknown algorithm)",
            };
            println!("  Hash algo:    {}", h.algo);
            println!("  Hash value:   {value} {verdict}");
        }
    }
    if let Some(d) = &fit.default_config {
        println!(" Default Configuration: '{d}'");
    }
    for (i, c) in fit.configs.iter().enumerate() {
        println!(" Configuration {i} ({})", c.name);
        println!(
            "  Description:  {}",
            c.description.as_deref().unwrap_or("unavailable")
        );
        if let Some(k) = &c.kernel {
            println!("  Kernel:       {k}");
        }
        if let Some(r) = &c.ramdisk {
            println!("  Init Ramdisk: {r}");
        }
        if let Some(f) = &c.fdt {
            println!("  FDT:          {f}");
        }
    }
    let failures = fit.failures();
    if failures.is_empty() {
        return Ok(());
    }
    Err(miette!(
        help = "the FIT was modified or damaged after it was built: rebuild it",
        "{}: {} check(s) failed: {}",
        path.display(),
        failures.len(),
        failures.join("; ")
    ))
}

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

fn dtb_info(path: &Path, bytes: &[u8], tree: &Fdt) {
    let h = fdt::FdtHeader::new_unchecked(bytes);
    fn count(n: &fdt::Node) -> usize {
        1 + n.children.iter().map(count).sum::<usize>()
    }
    println!("Device tree blob: {}", path.display());
    println!(
        "Version:      {} (last compatible {})",
        h.version(),
        h.last_comp_version()
    );
    println!(
        "Total Size:   {}",
        uimage::format_size(h.total_size().into())
    );
    println!("Nodes:        {}", count(&tree.root));
    let s = |p: &str| {
        tree.root
            .prop(p)
            .and_then(|p| p.as_str_list())
            .map(|l| l.join(", "))
    };
    if let Some(m) = s("model") {
        println!("Model:        {m}");
    }
    if let Some(c) = s("compatible") {
        println!("Compatible:   {c}");
    }
    for r in &tree.reserved {
        println!("Memreserve:   {:#x} size {:#x}", r.address, r.size);
    }
    if let Some(rm) = tree.node("/reserved-memory") {
        for c in &rm.children {
            println!("Reserved:     /reserved-memory/{}", c.name);
        }
    }
    println!("Bootargs:     {}", tree.bootargs().unwrap_or("(none)"));
    println!("Structure:    OK");
}

fn build_squashfs(a: SquashfsArgs) -> Result<()> {
    let mut opts = SquashfsOptions::new();
    opts.compression = a.comp;
    opts.all_root = a.all_root;
    if let Some(table) = &a.devices {
        let text = std::fs::read_to_string(table).map_err(|e| {
            miette!(
                help = "check --devices",
                "cannot read {}: {e}",
                table.display()
            )
        })?;
        opts.devices = squashfs::parse_device_table(&text, &table.display().to_string())
            .map_err(|e| {
                miette!(
                    help = "each line is PATH c|b|d MAJOR MINOR MODE UID GID, e.g. dev/console c 5 1 600 0 0",
                    "{e}"
                )
            })?;
    }
    let summary = squashfs::build_squashfs(&a.dir, &a.out, &opts).map_err(|e| {
        let help = match &e {
            squashfs::Error::Unreadable { .. } => {
                "make the file readable, remove it from the tree, or build as a user who can read it"
            }
            squashfs::Error::Output { .. } => "check that the output directory exists and is writable",
            _ => "see the message above",
        };
        miette!(help = help.to_owned(), "{e}")
    })?;
    println!(
        "{}: {} entries, {} bytes ({})",
        a.out.display(),
        summary.entries,
        summary.bytes,
        a.comp.name()
    );
    Ok(())
}
