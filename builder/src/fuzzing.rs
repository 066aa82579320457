//! Invariant checks shared by the cargo-fuzz targets (`fuzz/`, targets
//! `image` and `kernel`) and the seed-corpus test (`tests/fuzz_corpus.rs`),
//! so the fuzzed properties are also exercised by `cargo test`. Not part
//! of the supported API.
//!
//! * [`check_image`]: what `lmx image info` does with any file (uImage,
//!   FIT or device tree, told apart by magic), plus the codec pairs: a
//!   parsed header emits and parses back to itself, a parsed tree
//!   serializes to a blob that parses to the same tree, and so does the
//!   tree after the edits a RAM boot makes.
//! * [`check_kernel`]: the kernel inspection of `lmx build` on any file:
//!   kind detection, ELF to binary (with and without a DTB for
//!   `.appended_dtb`), byte-order sniffing, size fields, and
//!   [`build_kernel`] for boards whose formats need no compression.

use std::sync::OnceLock;

use lmx_boards::{Board, Catalog, KernelFormat};

use crate::compress;
use crate::dtedit::PhramReservation;
use crate::fdt::{self, Fdt, FdtHeader, FdtHeaderRepr, Node};
use crate::fit::{self, Fit};
use crate::kernel::{self, build_kernel, KernelInput, KernelKind};
use crate::uimage::{self, Compression, Header, HeaderRepr, ImageType, UImage};

/// `lmx image info` on `data`, and the round trips of each codec.
pub fn check_image(data: &[u8]) {
    let _ = KernelKind::detect(data);
    if data.len() >= 4 && data[..4] == uimage::MAGIC.to_be_bytes() {
        check_uimage(data);
    } else if fdt::looks_like_fdt(data) {
        check_fdt(data);
    } else {
        // Not an image: every parser refuses it without panicking.
        assert!(UImage::parse(data).is_err());
        assert!(Fdt::parse(data).is_err());
        assert!(Fit::parse(data).is_err());
    }
}

fn check_uimage(data: &[u8]) {
    let Ok(h) = Header::new_checked(data) else {
        assert!(data.len() < uimage::HEADER_LEN);
        return;
    };
    let _ = uimage::format_ctime(h.timestamp().into());
    let _ = uimage::format_size(h.data_size().into());
    let crc_ok = h.compute_header_crc() == h.header_crc();
    match HeaderRepr::parse(&h) {
        Ok(repr) => {
            assert!(crc_ok);
            let _ = repr.type_line();
            // Emit and parse back: the same header. The name is lossy
            // UTF-8, so a name that was not UTF-8 may no longer fit.
            let mut buf = [0u8; uimage::HEADER_LEN];
            match repr.emit(&mut Header::new_unchecked(&mut buf[..])) {
                Ok(()) => {
                    let again = HeaderRepr::parse(&Header::new_unchecked(&buf[..]))
                        .expect("an emitted header parses");
                    assert_eq!(again, repr);
                }
                Err(e) => {
                    assert!(std::str::from_utf8(h.name_bytes()).is_err(), "{e}");
                }
            }
        }
        Err(_) => assert!(!crc_ok),
    }
    let payload = h.payload();
    assert!(payload.len() <= h.data_size() as usize);
    match h.verify() {
        Ok(()) => {
            let img = UImage::parse(data).expect("a verified image parses");
            assert_eq!(img.payload.len(), h.data_size() as usize);
            assert_eq!(img.payload, payload);
        }
        Err(_) => assert!(UImage::parse(data).is_err()),
    }
    if matches!(h.image_type(), ImageType::Multi | ImageType::Script) {
        if let Ok(parts) = uimage::split_multi(payload) {
            let total: usize = parts.iter().map(|p| p.len()).sum();
            assert!(total <= payload.len());
            // The table the parts came from is what multi_payload writes
            // for them, up to the padding bytes.
            let again = uimage::multi_payload(&parts);
            assert_eq!(uimage::split_multi(&again).expect("emitted table"), parts);
        }
    }
    if h.compression() == Compression::Lzma {
        let _ = compress::lzma_uncompressed_size(payload);
    }
    let _ = kernel::unpacked_size(payload, h.compression());
}

fn walk(n: &Node, depth: usize) {
    assert!(depth <= 65, "nesting beyond the parser's limit");
    for p in &n.props {
        let _ = (p.as_str(), p.as_str_list(), p.as_u32(), p.as_cells());
    }
    for c in &n.children {
        walk(c, depth + 1);
    }
}

fn check_fdt(data: &[u8]) {
    let header = FdtHeader::new_checked(data).and_then(|h| FdtHeaderRepr::parse(&h));
    let Ok(tree) = Fdt::parse(data) else {
        return;
    };
    assert!(header.is_ok(), "a tree parsed past a bad header");
    walk(&tree.root, 0);
    let _ = tree.to_string();
    let _ = tree.bootargs();
    // Serialize, parse back: the same tree, and the same bytes again.
    let blob = tree.to_bytes();
    let again = Fdt::parse(&blob).expect("an emitted tree parses");
    assert_eq!(again, tree);
    assert_eq!(again.to_bytes(), blob);
    // What `lmx image info` does next: a FIT, or a plain tree.
    if tree.node("/images").is_some() {
        assert!(fit::is_fit(data));
        if let Ok(f) = Fit::parse(data) {
            let failures = f.failures();
            assert_eq!(f.verify().is_ok(), failures.is_empty());
        }
    }
    // The edits a RAM boot makes, then the same round trip.
    let mut edited = tree.clone();
    edited.set_bootargs("console=ttyS0,115200 root=/dev/mtdblock0");
    let reserved = edited.add_phram_reservation(&PhramReservation {
        start: 0x4800_0000,
        size: 0x40_0000,
        label: Some("rootfs".into()),
    });
    if let Ok(path) = &reserved {
        assert!(edited.node(path).is_some());
    }
    let blob = edited.to_bytes();
    let again = Fdt::parse(&blob).expect("an edited tree parses");
    assert_eq!(
        again.bootargs(),
        Some("console=ttyS0,115200 root=/dev/mtdblock0")
    );
    assert_eq!(again, edited);
}

/// Boards for [`build_kernel`], with formats that need no compression
/// (LZMA at preset 6 would make every input cost a second): a MIPS board
/// of each byte order as plain uImage, with and without an appended
/// DTB, and the ARM boards' `Image` and `zImage`.
fn boards() -> &'static [Board] {
    static B: OnceLock<Vec<Board>> = OnceLock::new();
    B.get_or_init(|| {
        let cat = Catalog::builtin();
        let get = |n: &str| cat.resolve(n).expect("built-in board").board;
        let mut v = Vec::new();
        for name in ["gl-ar750", "qemu-mipsel", "gl-mt300n-v2"] {
            let mut b = get(name);
            b.kernel.format = KernelFormat::Uimage;
            b.uboot.lzma = Some(false);
            for append in [false, true] {
                let mut b = b.clone();
                b.kernel.append_dtb = append;
                v.push(b);
            }
        }
        v.push(get("qemu-aarch64"));
        v.push(get("qemu-armv7l"));
        v
    })
}

/// The kernel inspection of `lmx build` on `data`: byte 0 picks the board
/// and whether a DTB is given; the rest is the kernel file.
pub fn check_kernel(data: &[u8]) {
    let Some((&setup, file)) = data.split_first() else {
        return;
    };
    let kind = KernelKind::detect(file);
    let _ = kind.as_str();
    let dtb = Fdt::new().to_bytes();
    match kernel::elf_to_binary(file_name(), file) {
        Ok(elf) => {
            assert_eq!(kind, KernelKind::Elf);
            // The binary is the file's bytes with bounded gaps, never a
            // huge zero fill for a small file.
            assert!(elf.data.len() as u64 <= file.len() as u64 + kernel::MAX_FILL);
            assert!(elf.mem_size >= elf.data.len() as u64);
            if let Some(sec) = elf.appended_dtb {
                assert!(!sec.filled);
            }
            if let Ok(with) = kernel::elf_to_binary_with_dtb(file_name(), file, Some(&dtb)) {
                if let Some(sec) = with.appended_dtb {
                    assert!(sec.filled && sec.size >= dtb.len() as u64);
                }
            }
        }
        Err(_) => {
            let _ = kernel::elf_to_binary_with_dtb(file_name(), file, Some(&dtb));
        }
    }
    let (order, be, le) = kernel::mips_code_endian(file);
    assert!(be + le <= file.len() / 4);
    if order.is_some() {
        assert!(be.max(le) >= 8);
    }
    let _ = kernel::arm64_image_size(file);
    for comp in [Compression::None, Compression::Lzma, Compression::Gzip] {
        let _ = kernel::unpacked_size(file, comp);
    }
    let bs = boards();
    let board = &bs[usize::from(setup & 0x7f) % bs.len()];
    let k = KernelInput {
        input: file_name(),
        bytes: file,
        dtb: (setup & 0x80 != 0).then_some(&dtb[..]),
        name: "fuzz",
        timestamp: 0,
    };
    if let Ok(art) = build_kernel(board, &k) {
        assert!(!art.bytes.is_empty() || file.is_empty());
        if art.file_name == "uImage" {
            UImage::parse(&art.bytes).expect("a built uImage verifies");
        }
    }
}

fn file_name() -> &'static str {
    "fuzz-input"
}
