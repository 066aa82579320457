//! The `vmlinux` reader against binutils: ELF files compiled here with
//! Debian's MIPS cross compilers (both byte orders, 32- and 64-bit, a
//! kernel-like link at KSEG0 and an ordinary static program) are turned
//! into a binary by `lmx_builder::kernel::elf_to_binary` and by the real
//! `objcopy -O binary`, and the bytes must be identical; the entry point
//! must be `readelf -h`'s. Then the MIPS twins' kernels are built as
//! uImages and read back with `dumpimage -l`, `mkimage -l`, `dumpimage -p`
//! and `xz`/`gzip`, and the refusals (wrong byte order, LZMA for a U-Boot
//! without it) are checked. A missing tool fails the test with its
//! Debian package.

mod common;

use std::path::{Path, PathBuf};

use common::{run, stdout};
use lmx_boards::{Board, Catalog};
use lmx_builder::kernel::{
    build_kernel, elf_to_binary, elf_to_binary_with_dtb, KernelError, KernelInput,
};
use lmx_builder::layout::KernelRun;
use lmx_builder::uimage::{Arch, Compression, UImage};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elf")
        .join(name)
}

/// A cross tool (`mips-linux-gnu-gcc`, `mipsel-linux-gnu-objcopy`, ...),
/// failing with the package to install when it is missing.
fn cross(triple: &str, tool: &str) -> std::process::Command {
    let name = format!("{triple}-{tool}");
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(&name).is_file()))
        .unwrap_or(false);
    let pkg = if tool == "gcc" {
        format!("gcc-{triple}")
    } else {
        format!("binutils-{triple}")
    };
    assert!(
        found,
        "`{name}` is missing: install the Debian package {pkg} (scripts/deps.sh virtual)"
    );
    let mut c = std::process::Command::new(name);
    c.env("LC_ALL", "C");
    c
}

/// gcc flags for a freestanding, non-PIC static MIPS program, as a kernel is built.
const FREESTANDING: [&str; 5] = ["-O2", "-fno-pic", "-mno-abicalls", "-nostdlib", "-static"];

/// Compiles `kernel.c` with `kernel.lds` (extra flags for the ABI).
fn kernel_elf(dir: &Path, triple: &str, flags: &[&str], out: &str) -> PathBuf {
    let elf = dir.join(out);
    run(cross(triple, "gcc")
        .args(flags)
        .args(FREESTANDING)
        .arg("-Wl,--build-id=none")
        .arg(format!("-Wl,-T,{}", fixture("kernel.lds").display()))
        .arg("-o")
        .arg(&elf)
        .arg(fixture("kernel.c")));
    elf
}

fn objcopy_binary(triple: &str, elf: &Path) -> Vec<u8> {
    // Into a directory of our own: `elf` may be in the test bed's cache.
    let t = tempfile::tempdir().unwrap();
    let bin = t.path().join("vmlinux.bin");
    run(cross(triple, "objcopy")
        .args(["-O", "binary"])
        .arg(elf)
        .arg(&bin));
    std::fs::read(bin).unwrap()
}

fn readelf_entry(triple: &str, elf: &Path) -> u64 {
    let out = stdout(cross(triple, "readelf").arg("-h").arg(elf));
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Entry point address:"))
        .unwrap_or_else(|| panic!("no entry in\n{out}"));
    let hex = line.rsplit("0x").next().unwrap().trim();
    u64::from_str_radix(hex, 16).unwrap()
}

/// The lowest `PT_LOAD` virtual address and end of memory, from `readelf -lW`.
fn readelf_loads(triple: &str, elf: &Path) -> Vec<(u64, u64)> {
    let out = stdout(cross(triple, "readelf").args(["-lW"]).arg(elf));
    out.lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            (hex(f[2]), hex(f[5]))
        })
        .collect()
}

fn check_against_objcopy(triple: &str, elf: &Path, big: bool) {
    let bytes = std::fs::read(elf).unwrap();
    let ours = elf_to_binary(&elf.display().to_string(), &bytes).unwrap();
    let theirs = objcopy_binary(triple, elf);
    assert!(!theirs.is_empty());
    assert_eq!(
        ours.data.len(),
        theirs.len(),
        "{}: length differs from objcopy -O binary",
        elf.display()
    );
    assert!(
        ours.data == theirs,
        "{}: bytes differ from objcopy -O binary",
        elf.display()
    );
    assert_eq!(ours.entry, readelf_entry(triple, elf), "{}", elf.display());
    assert_eq!(ours.big_endian, big);
    assert_eq!(ours.machine, "mips");
    let loads = readelf_loads(triple, elf);
    let mem_end = loads.iter().map(|(va, memsz)| va + memsz).max().unwrap();
    assert_eq!(ours.load + ours.mem_size, mem_end, "{}", elf.display());
}

#[test]
fn kernel_like_elfs_flatten_exactly_as_objcopy_does() {
    let t = tempfile::tempdir().unwrap();
    for (triple, big) in [("mips-linux-gnu", true), ("mipsel-linux-gnu", false)] {
        let elf = kernel_elf(t.path(), triple, &[], &format!("vmlinux-{triple}"));
        check_against_objcopy(triple, &elf, big);
        let ours = elf_to_binary("k", &std::fs::read(&elf).unwrap()).unwrap();
        // The headers' segment starts at 0x800f0000; the binary at .text.
        assert_eq!(ours.load, 0x8010_0000);
        assert_eq!(ours.entry, 0x8010_0000);
        // Text, a zero-filled gap to 0x80110000, then the data.
        assert!(ours.data.len() > 0x1_0000);
        assert_eq!(&ours.data[0x1_0000..0x1_0003], &[1, 2, 3]);
        // The 100000-byte BSS counts in the span, not in the file.
        assert!(ours.mem_size >= ours.data.len() as u64 + 100_000);
    }
    // 64-bit ELF (n64 ABI), big-endian.
    let elf64 = kernel_elf(
        t.path(),
        "mips-linux-gnu",
        &["-mabi=64", "-march=mips64r2"],
        "vmlinux64",
    );
    assert_eq!(std::fs::read(&elf64).unwrap()[4], 2, "ELFCLASS64");
    check_against_objcopy("mips-linux-gnu", &elf64, true);
}

#[test]
fn static_user_program_flattens_as_objcopy_does() {
    // Its first PT_LOAD maps the ELF header at 0x400000; objcopy starts
    // at the first section after it.
    let t = tempfile::tempdir().unwrap();
    let elf = t.path().join("hello");
    run(cross("mips-linux-gnu", "gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&elf)
        .arg(fixture("hello.c")));
    check_against_objcopy("mips-linux-gnu", &elf, true);
    let ours = elf_to_binary("hello", &std::fs::read(&elf).unwrap()).unwrap();
    assert!(
        ours.load > 0x40_0000,
        "starts after the headers: {:#x}",
        ours.load
    );
}

#[test]
fn elf_linked_far_apart_is_refused_as_not_a_kernel() {
    // Linked with -Ttext at KSEG0 but the default script keeps a header
    // segment at 0x400000: 2 GiB apart.
    let t = tempfile::tempdir().unwrap();
    let elf = t.path().join("split");
    run(cross("mips-linux-gnu", "gcc")
        .args(FREESTANDING)
        .args(["-Wl,-Ttext=0x80100000", "-Wl,-e,start", "-o"])
        .arg(&elf)
        .arg(fixture("kernel.c")));
    let e = elf_to_binary("build/split", &std::fs::read(&elf).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("build/split") && e.contains("not a kernel"),
        "{e}"
    );
}

fn board(name: &str) -> Board {
    Catalog::builtin().resolve(name).unwrap().board
}

fn build(board: &Board, elf: &[u8], dtb: Option<&[u8]>) -> Result<Vec<u8>, KernelError> {
    build_kernel(
        board,
        &KernelInput {
            input: "vmlinux",
            bytes: elf,
            dtb,
            name: "Linux",
            timestamp: 0,
        },
    )
    .map(|k| k.bytes)
}

/// `dumpimage -p 0` extraction of a legacy image's payload.
fn extract_payload(dir: &Path, uimage: &Path) -> Vec<u8> {
    let out = dir.join("payload");
    run(common::tool("dumpimage")
        .args(["-T", "kernel", "-p", "0", "-o"])
        .arg(&out)
        .arg(uimage));
    std::fs::read(out).unwrap()
}

fn unpack(dir: &Path, payload: &[u8], comp: Compression) -> Vec<u8> {
    let (tool, args, ext) = match comp {
        Compression::Lzma => ("xz", vec!["--format=lzma", "-d", "-k", "-f"], "lzma"),
        Compression::Gzip => ("gzip", vec!["-d", "-k", "-f"], "gz"),
        other => panic!("{other:?}"),
    };
    let packed = dir.join(format!("k.{ext}"));
    std::fs::write(&packed, payload).unwrap();
    run(common::tool(tool).args(args).arg(&packed));
    std::fs::read(dir.join("k")).unwrap()
}

#[test]
fn twins_get_mips_uimages_that_the_reference_tools_read_back() {
    let t = tempfile::tempdir().unwrap();
    for (name, triple, comp, comp_text) in [
        (
            "qemu-mips",
            "mips-linux-gnu",
            Compression::Lzma,
            "lzma compressed",
        ),
        (
            "qemu-mipsel",
            "mipsel-linux-gnu",
            Compression::Lzma,
            "lzma compressed",
        ),
        (
            "qemu-mipsel-stock",
            "mipsel-linux-gnu",
            Compression::Gzip,
            "gzip compressed",
        ),
    ] {
        let b = board(name);
        let elf = kernel_elf(t.path(), triple, &[], &format!("vmlinux-{name}"));
        let bin = objcopy_binary(triple, &elf);
        let entry = readelf_entry(triple, &elf);
        let img = build(&b, &std::fs::read(&elf).unwrap(), None).unwrap();
        let path = t.path().join(format!("uImage-{name}"));
        std::fs::write(&path, &img).unwrap();
        for tool in ["dumpimage", "mkimage"] {
            let info = stdout(common::tool(tool).arg("-l").arg(&path));
            for want in [
                "Image Type:   MIPS Linux Kernel Image".to_string(),
                comp_text.to_string(),
                "Load Address: 80100000".to_string(),
                format!("Entry Point:  {entry:08x}"),
            ] {
                assert!(
                    info.contains(&want),
                    "{name}: {want:?} not in {tool} -l:\n{info}"
                );
            }
        }
        let h = UImage::parse(&img).unwrap().header;
        assert_eq!((h.arch, h.compression), (Arch::Mips, comp));
        let payload = extract_payload(t.path(), &path);
        assert!(
            unpack(t.path(), &payload, comp) == bin,
            "{name}: payload is not objcopy's binary"
        );
    }
}

#[test]
fn appended_dtb_variant_is_the_binary_then_the_dtb() {
    let t = tempfile::tempdir().unwrap();
    let mut b = board("qemu-mips");
    b.kernel.append_dtb = true;
    let dtb = common::dtb_fixture("mips-ar750.dts", t.path());
    let elf = kernel_elf(t.path(), "mips-linux-gnu", &[], "vmlinux");
    let bin = objcopy_binary("mips-linux-gnu", &elf);
    let k = build_kernel(
        &b,
        &KernelInput {
            input: "vmlinux",
            bytes: &std::fs::read(&elf).unwrap(),
            dtb: Some(&dtb),
            name: "Linux",
            timestamp: 0,
        },
    )
    .unwrap();
    assert!(k.dtb_inside);
    let path = t.path().join("uImage");
    std::fs::write(&path, &k.bytes).unwrap();
    let raw = unpack(
        t.path(),
        &extract_payload(t.path(), &path),
        Compression::Lzma,
    );
    assert!(raw[..bin.len()] == bin[..]);
    assert!(raw[bin.len()..] == dtb[..]);
    // The unpacked span covers the BSS and the appended blob.
    match k.facts.run {
        KernelRun::Unpacked { load, size } => {
            assert_eq!(load, 0x8010_0000);
            assert!(size >= raw.len() as u64);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_byte_order_and_missing_lzma_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let be = std::fs::read(kernel_elf(t.path(), "mips-linux-gnu", &[], "be")).unwrap();
    let le = std::fs::read(kernel_elf(t.path(), "mipsel-linux-gnu", &[], "le")).unwrap();
    let e = build(&board("qemu-mipsel"), &be, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the ELF is mips big-endian") && e.contains("little-endian"),
        "{e}"
    );
    let e = build(&board("qemu-mips"), &le, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("the ELF is mips little-endian"), "{e}");
    // A ready uImage carries no byte order, but its code does: a
    // big-endian kernel's uImage is refused by the little-endian twin,
    // for gzip and LZMA payloads alike.
    for (maker, taker) in [("qemu-mips", "qemu-mipsel"), ("qemu-mipsel", "qemu-mips")] {
        let elf = if maker == "qemu-mips" { &be } else { &le };
        let mut b = board(maker);
        for format in [
            lmx_boards::KernelFormat::UimageLzma,
            lmx_boards::KernelFormat::UimageGzip,
        ] {
            b.kernel.format = format;
            let img = build(&b, elf, None).unwrap();
            let e = build(&board(taker), &img, None).unwrap_err().to_string();
            let want = if maker == "qemu-mips" {
                "holds big-endian MIPS code (20 function returns read big-endian, 0 little-endian)"
            } else {
                "holds little-endian MIPS code (0 function returns read big-endian, 20 little-endian)"
            };
            assert!(e.contains(want), "{maker} -> {taker}: {e}");
            // The right board takes it as is.
            let same = build_kernel(
                &board(maker),
                &KernelInput {
                    input: "uImage",
                    bytes: &img,
                    dtb: None,
                    name: "Linux",
                    timestamp: 0,
                },
            )
            .unwrap();
            assert_eq!(same.bytes, img);
            assert!(
                same.notes.iter().all(|n| !n.contains("byte order")),
                "{:?}",
                same.notes
            );
        }
    }
    // Debian's maltael U-Boot has no LZMA: an LZMA format is refused
    // before anything is built, with the way out.
    let mut stock = board("qemu-mipsel-stock");
    stock.kernel.format = lmx_boards::KernelFormat::UimageLzma;
    let e = build(&stock, &le, None).unwrap_err().to_string();
    assert!(e.contains("no LZMA") && e.contains("uimage-gzip"), "{e}");
}

/// Every MIPS `vmlinux` the test bed has cached (`testbed/kernel.sh`,
/// `$LMX_CACHE_DIR/kernel/*/vmlinux`): real 6.1 malta kernels. Returns
/// how many were checked; none is fine on a machine that has not built
/// them (the compiled ELFs above always run).
#[test]
fn cached_test_bed_kernels_flatten_as_objcopy_does() {
    let cache = std::env::var_os("LMX_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("lmx")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/lmx")));
    let Some(dir) = cache.map(|c| c.join("kernel")) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut checked = 0;
    for e in entries.flatten() {
        let v = e.path().join("vmlinux");
        let Ok(bytes) = std::fs::read(&v) else {
            continue;
        };
        if bytes.len() < 20
            || !bytes.starts_with(b"\x7fELF")
            || bytes[18..20] != [0, 8] && bytes[18..20] != [8, 0]
        {
            continue;
        }
        let big = bytes[5] == 2;
        let triple = if big {
            "mips-linux-gnu"
        } else {
            "mipsel-linux-gnu"
        };
        check_against_objcopy(triple, &v, big);
        checked += 1;
    }
    eprintln!(
        "{checked} cached MIPS vmlinux file(s) compared with objcopy under {}",
        dir.display()
    );
}

/// kernel.c linked with an `.appended_dtb` section (appended_dtb.c,
/// kernel-appended-dtb.lds), as a `CONFIG_MIPS_ELF_APPENDED_DTB` kernel is.
fn appended_section_elf(dir: &Path, triple: &str, out: &str) -> PathBuf {
    let elf = dir.join(out);
    run(cross(triple, "gcc")
        .args(FREESTANDING)
        .arg("-Wl,--build-id=none")
        .arg(format!(
            "-Wl,-T,{}",
            fixture("kernel-appended-dtb.lds").display()
        ))
        .arg("-o")
        .arg(&elf)
        .arg(fixture("kernel.c"))
        .arg(fixture("appended_dtb.c")));
    elf
}

#[test]
fn elf_appended_dtb_section_is_filled_as_objcopy_update_section_does() {
    let t = tempfile::tempdir().unwrap();
    let dtb = common::dtb_fixture("mips-ar750.dts", t.path());
    let dtb_file = t.path().join("board.dtb");
    std::fs::write(&dtb_file, &dtb).unwrap();
    for (triple, board_name) in [
        ("mips-linux-gnu", "gl-ar750"),
        ("mipsel-linux-gnu", "gl-mt300n-v2"),
    ] {
        let elf = appended_section_elf(t.path(), triple, &format!("vmlinux-{triple}"));
        let bytes = std::fs::read(&elf).unwrap();
        // The empty section is found where the linker put it.
        let plain = elf_to_binary("vmlinux", &bytes).unwrap();
        let sec = plain.appended_dtb.expect("the .appended_dtb section");
        assert_eq!(sec.size, 0x1_0000);
        assert!(!sec.filled);
        assert!(plain.data == objcopy_binary(triple, &elf));
        // The oracle: objcopy --update-section, then -O binary.
        let updated = t.path().join(format!("updated-{triple}"));
        run(cross(triple, "objcopy")
            .arg(format!(
                "--update-section=.appended_dtb={}",
                dtb_file.display()
            ))
            .arg(&elf)
            .arg(&updated));
        let theirs = objcopy_binary(triple, &updated);
        let ours = elf_to_binary_with_dtb("vmlinux", &bytes, Some(&dtb)).unwrap();
        assert_eq!(ours.data.len(), theirs.len(), "{triple}: length");
        assert!(ours.data == theirs, "{triple}: bytes differ from objcopy");
        let at = sec.offset as usize;
        assert!(ours.data[at..at + dtb.len()] == dtb[..]);
        // The section is the last one with contents: the binary ends with
        // the DTB, as objcopy's does.
        assert_eq!(ours.data.len(), at + dtb.len());

        // Through build_kernel for a board that appends its DTB: the
        // section is filled, nothing is concatenated.
        let b = board(board_name);
        assert!(b.kernel.append_dtb);
        // The test ELF is linked at 0x80100000, not where the board loads.
        let k = build_kernel(
            &b,
            &KernelInput {
                input: "vmlinux",
                bytes: &bytes,
                dtb: Some(&dtb),
                name: "Linux",
                timestamp: 0,
            },
        )
        .unwrap();
        assert!(k.dtb_inside);
        assert!(
            k.notes.iter().any(|n| n.contains(".appended_dtb section")),
            "{:?}",
            k.notes
        );
        let path = t.path().join(format!("uImage-{triple}"));
        std::fs::write(&path, &k.bytes).unwrap();
        let raw = unpack(
            t.path(),
            &extract_payload(t.path(), &path),
            Compression::Lzma,
        );
        assert!(raw == theirs, "{triple}: uImage payload is not objcopy's");
    }
}

#[test]
fn a_dtb_larger_than_the_section_is_refused_and_no_section_leaves_the_binary_alone() {
    let t = tempfile::tempdir().unwrap();
    let elf = std::fs::read(appended_section_elf(t.path(), "mips-linux-gnu", "v")).unwrap();
    let big = vec![0u8; 0x1_0001];
    let e = elf_to_binary_with_dtb("vmlinux", &elf, Some(&big))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("65537 bytes") && e.contains("holds 65536"),
        "{e}"
    );
    // Without the section nothing is filled: the bytes are objcopy's
    // plain binary, and build_kernel then concatenates instead.
    let plain_elf = kernel_elf(t.path(), "mips-linux-gnu", &[], "p");
    let plain = std::fs::read(&plain_elf).unwrap();
    let b = elf_to_binary_with_dtb("vmlinux", &plain, Some(&big[..16])).unwrap();
    assert!(b.appended_dtb.is_none());
    assert!(b.data == objcopy_binary("mips-linux-gnu", &plain_elf));
}
