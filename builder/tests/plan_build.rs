//! `lmx_builder::build` end to end on small fake inputs (an arm64 `Image`
//! header, a big-endian MIPS `vmlinux`, dtc-compiled trees, a rootfs
//! directory), with the outputs checked by the reference tools:
//! `fdtget`, `dumpimage -l`, `mkimage -l`, `unsquashfs -lln`. A missing
//! tool fails the test naming its Debian package.

use std::path::{Path, PathBuf};
use std::process::Command;

use lmx_boards::{Board, Catalog, PhramMethod};
use lmx_builder::build::{self, BuildRequest};
use lmx_builder::compress;
use lmx_builder::manifest::{Manifest, ManifestError};
use lmx_builder::uimage::UImage;

fn package_of(tool: &str) -> &'static str {
    match tool {
        "mkimage" | "dumpimage" => "u-boot-tools",
        "dtc" | "fdtget" => "device-tree-compiler",
        "unsquashfs" => "squashfs-tools",
        _ => "?",
    }
}

fn tool(name: &str, args: &[&str]) -> String {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is missing: install the Debian package {} (apt-get install {})",
        package_of(name),
        package_of(name)
    );
    let out = Command::new(name)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn board(name: &str) -> Board {
    Catalog::builtin().resolve(name).unwrap().board
}

fn dtb(dir: &Path, fixture: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plan")
        .join(fixture);
    let out = dir.join(fixture).with_extension("dtb");
    tool(
        "dtc",
        &[
            "-q",
            "-I",
            "dts",
            "-O",
            "dtb",
            "-o",
            out.to_str().unwrap(),
            src.to_str().unwrap(),
        ],
    );
    out
}

/// An arm64 `Image`: the 64-byte header with its magic and `image_size`.
fn arm64_image(dir: &Path, len: usize, image_size: u64) -> PathBuf {
    let mut b = vec![0x5au8; len];
    b[..0x40].fill(0);
    b[16..24].copy_from_slice(&image_size.to_le_bytes());
    b[0x38..0x3c].copy_from_slice(b"ARM\x64");
    let p = dir.join("Image");
    std::fs::write(&p, b).unwrap();
    p
}

/// A big-endian MIPS ELF32 `vmlinux`: one PT_LOAD of `text` at `load`
/// with 64 KiB of BSS after it.
fn mips_vmlinux(dir: &Path, load: u32, entry: u32, text: &[u8]) -> PathBuf {
    let mut f = vec![0u8; 0x100];
    f[..7].copy_from_slice(b"\x7fELF\x01\x02\x01");
    let w16 = |f: &mut Vec<u8>, o: usize, v: u16| f[o..o + 2].copy_from_slice(&v.to_be_bytes());
    let w32 = |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_be_bytes());
    w16(&mut f, 16, 2);
    w16(&mut f, 18, 8);
    w32(&mut f, 20, 1);
    w32(&mut f, 24, entry);
    w32(&mut f, 28, 52);
    w16(&mut f, 40, 52);
    w16(&mut f, 42, 32);
    w16(&mut f, 44, 1);
    for (o, v) in [
        (52, 1),
        (56, 0x100),
        (60, load),
        (64, load),
        (68, text.len() as u32),
        (72, text.len() as u32 + 0x1_0000),
        (76, 7),
        (80, 0x1000),
    ] {
        w32(&mut f, o, v);
    }
    f.extend_from_slice(text);
    let p = dir.join("vmlinux");
    std::fs::write(&p, f).unwrap();
    p
}

fn rootfs_dir(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    std::fs::create_dir_all(r.join("bin")).unwrap();
    std::fs::write(r.join("init"), "#!/bin/sh\necho LMX-MARKER\nexec sh\n").unwrap();
    std::fs::write(r.join("bin/busybox"), vec![7u8; 100_000]).unwrap();
    std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
    r
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn qemu_aarch64_build_checked_by_the_reference_tools() {
    let t = tempfile::tempdir().unwrap();
    let req = BuildRequest::new(
        board("qemu-aarch64"),
        arm64_image(t.path(), 300_000, 0x80_0000),
        Some(dtb(t.path(), "virt.dts")),
        rootfs_dir(t.path()),
    );
    let out = t.path().join("out");
    let b = build::build(&req, &out, false).unwrap();

    // The map and the plan.
    let text = b.render();
    assert!(text.contains("booti 0x40400000 - "), "{text}");
    assert_eq!(b.plan.loads().next().unwrap().addr, 0x4400_0000);

    // The DTB edits, seen by fdtget.
    let d = out.join("board.dtb");
    assert_eq!(
        tool("fdtget", &[p(&d), "/chosen", "bootargs"]).trim(),
        b.manifest.bootargs
    );
    assert_eq!(
        tool("fdtget", &[p(&d), "/pl061@9030000", "status"]).trim(),
        "disabled"
    );
    let rootfs = b
        .plan
        .layout
        .region(lmx_builder::layout::RegionKind::Rootfs)
        .unwrap();
    assert_eq!(
        tool(
            "fdtget",
            &[
                "-t",
                "x",
                p(&d),
                "/reserved-memory/phram-rootfs@44000000",
                "reg"
            ]
        )
        .trim(),
        format!("0 44000000 0 {:x}", rootfs.size)
    );
    assert_eq!(
        tool(
            "fdtget",
            &[p(&d), "/reserved-memory/phram-rootfs@44000000", "label"]
        )
        .trim(),
        "rootfs"
    );
    assert!(b.manifest.bootargs.contains("root=/dev/mtdblock1"));
    assert!(!b.manifest.bootargs.contains("phram.phram="));

    // The rootfs, seen by unsquashfs.
    let list = tool("unsquashfs", &["-lln", p(&out.join("rootfs.squashfs"))]);
    assert!(list.contains("squashfs-root/init"), "{list}");
    assert!(list.contains("squashfs-root/bin/sh -> busybox"), "{list}");
    assert!(list.contains(" 0/0 "), "{list}");

    // The script uImage, seen by mkimage and dumpimage.
    let l = tool("mkimage", &["-l", p(&out.join("boot.scr.uimg"))]);
    assert!(l.contains("Script"), "{l}");
    let scr = std::fs::read_to_string(out.join("boot.scr")).unwrap();
    assert_eq!(scr.lines().collect::<Vec<_>>(), b.manifest.commands);
    let img = std::fs::read(out.join("boot.scr.uimg")).unwrap();
    let parts = lmx_builder::uimage::split_multi(UImage::parse(&img).unwrap().payload).unwrap();
    assert_eq!(parts, [scr.as_bytes()]);

    // The manifest reads back, and every file matches it.
    let m = Manifest::read(&out).unwrap();
    assert_eq!(m, b.manifest);
    assert_eq!(m.schema, 1);
    m.verify_files(&out).unwrap();
    let k = m.artifact("kernel").unwrap();
    assert_eq!((k.path.as_str(), k.load_addr), ("Image", Some(0x4040_0000)));
    assert_eq!(m.artifact("rootfs").unwrap().load_addr, Some(0x4400_0000));
    assert!(m.script_addr.is_some());

    // Firmware for bank 0 after U-Boot, padded to 256 KiB.
    let fw = m.firmware.as_ref().unwrap();
    assert_eq!(
        (fw.partition.as_str(), fw.erase_block),
        ("firmware", 0x4_0000)
    );
    assert_eq!(fw.parts[0].flash_offset, 0x40_0000);
    assert_eq!(
        fw.parts[1].flash_offset,
        0x40_0000 + fw.parts[0].padded_size
    );
    let bin = std::fs::read(out.join("firmware.bin")).unwrap();
    assert_eq!(crc32fast::hash(&bin), fw.image_crc32);

    // No temporary directories are left next to the output.
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".lmx-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A changed artifact is caught.
    std::fs::write(out.join("board.dtb"), b"changed").unwrap();
    assert!(matches!(
        m.verify_files(&out),
        Err(ManifestError::Changed { .. })
    ));
}

#[test]
fn gl_ar750_vmlinux_becomes_an_lzma_uimage_with_the_dtb_appended() {
    let t = tempfile::tempdir().unwrap();
    let text: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let dt = dtb(t.path(), "mips.dts");
    let mut req = BuildRequest::new(
        board("gl-ar750"),
        mips_vmlinux(t.path(), 0x8006_0000, 0x8006_0400, &text),
        Some(dt.clone()),
        rootfs_dir(t.path()),
    );
    req.root_device = Some("/dev/mtdblock0".into());
    let out = t.path().join("out");
    // mem= would end at the rootfs (10 MiB): refused, not a starving boot.
    let mut starving = req.clone();
    starving.phram = Some(PhramMethod::Cmdline);
    match build::build(&starving, &t.path().join("starving"), true) {
        Err(build::BuildError::Plan(lmx_builder::plan::PlanError::MemStarves { mem, .. })) => {
            assert_eq!(mem, 0xa0_0000)
        }
        other => panic!("expected MemStarves, got {other:?}"),
    }
    // The board's own method: dt-cmdline, all RAM kept.
    let b = build::build(&req, &out, false).unwrap();

    let info = tool("dumpimage", &["-l", p(&out.join("uImage"))]);
    for want in [
        "Load Address: 80060000",
        "Entry Point:  80060400",
        "lzma compressed",
        "MIPS",
    ] {
        assert!(info.contains(want), "{want} not in\n{info}");
    }
    let img = std::fs::read(out.join("uImage")).unwrap();
    let raw = compress::lzma_decompress(UImage::parse(&img).unwrap().payload).unwrap();
    assert_eq!(&raw[..text.len()], &text[..]);
    // The appended DTB carries the command line.
    let appended = t.path().join("appended.dtb");
    std::fs::write(&appended, &raw[text.len()..]).unwrap();
    let args = tool("fdtget", &[p(&appended), "/chosen", "bootargs"]);
    assert_eq!(args.trim(), b.manifest.bootargs);
    assert!(args.contains(" phram.phram=phram0,0xa00000,"), "{args}");
    assert!(!args.contains("mem="), "{args}");
    // The no-map node keeps the kernel off the rootfs; no label, so the
    // command line alone makes the MTD device.
    let node = "/reserved-memory/phram-rootfs@a00000";
    assert_eq!(
        tool("fdtget", &[p(&appended), node, "compatible"]).trim(),
        "phram"
    );
    let props = tool("fdtget", &["-p", p(&appended), node]);
    assert!(props.lines().any(|l| l == "no-map"), "{props}");
    assert!(!props.lines().any(|l| l == "label"), "{props}");

    // KSEG0 loads, physical phram; no separate DTB.
    let cmds = &b.manifest.commands;
    // The board's network defaults (GL's U-Boot configuration) come first.
    assert_eq!(cmds[0], "setenv ipaddr 192.168.1.1");
    assert_eq!(cmds[1], "setenv serverip 192.168.1.2");
    assert_eq!(cmds[2], "tftpboot 0x80a00000 rootfs.squashfs");
    assert!(cmds
        .iter()
        .any(|c| c.starts_with("tftpboot 0x80") && c.ends_with(" uImage")));
    assert!(cmds.last().unwrap().starts_with("bootm 0x80"));
    assert!(!out.join("board.dtb").exists());
    // Firmware at 0x9F060000 (U-Boot address of the partition).
    assert_eq!(
        b.manifest.firmware.as_ref().unwrap().uboot_addr,
        Some(0x9f06_0000)
    );
}

#[test]
fn dry_run_writes_nothing_and_rebuilds_replace_whole_directories() {
    let t = tempfile::tempdir().unwrap();
    let req = BuildRequest::new(
        board("qemu-aarch64"),
        arm64_image(t.path(), 100_000, 0x40_0000),
        Some(dtb(t.path(), "virt.dts")),
        rootfs_dir(t.path()),
    );
    let out = t.path().join("out");
    build::build(&req, &out, true).unwrap();
    assert!(!out.exists());
    build::build(&req, &out, false).unwrap();
    std::fs::write(out.join("stale"), b"x").unwrap();
    build::build(&req, &out, false).unwrap();
    assert!(!out.join("stale").exists());
    assert!(out.join("manifest.json").is_file());
    // A directory that is not an earlier build is never replaced.
    let other = t.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"keep").unwrap();
    let e = build::build(&req, &other, false).unwrap_err().to_string();
    assert!(e.contains("not an lmx artifact directory"), "{e}");
    assert!(other.join("notes.txt").is_file());
}

#[test]
fn bad_inputs_are_named() {
    let t = tempfile::tempdir().unwrap();
    let good_dtb = dtb(t.path(), "virt.dts");
    let kernel = arm64_image(t.path(), 100_000, 0x40_0000);
    let rootfs = rootfs_dir(t.path());
    let out = t.path().join("out");

    // Truncated DTB.
    let cut = t.path().join("cut.dtb");
    let blob = std::fs::read(&good_dtb).unwrap();
    std::fs::write(&cut, &blob[..blob.len() / 2]).unwrap();
    let req = BuildRequest::new(
        board("qemu-aarch64"),
        kernel.clone(),
        Some(cut.clone()),
        rootfs.clone(),
    );
    let e = build::build(&req, &out, true).unwrap_err().to_string();
    assert!(e.contains("cut.dtb") && e.contains("truncated"), "{e}");

    // Corrupt DTB (bad magic).
    let bad = t.path().join("bad.dtb");
    let mut b2 = blob.clone();
    b2[0] = 0;
    std::fs::write(&bad, b2).unwrap();
    let req = BuildRequest::new(
        board("qemu-aarch64"),
        kernel.clone(),
        Some(bad),
        rootfs.clone(),
    );
    let e = build::build(&req, &out, true).unwrap_err().to_string();
    assert!(e.contains("bad.dtb") && e.contains("magic"), "{e}");

    // Kernel too large for RAM.
    let huge = arm64_image(t.path(), 4096, 600 << 20);
    let req = BuildRequest::new(
        board("qemu-aarch64"),
        huge.clone(),
        Some(good_dtb.clone()),
        rootfs.clone(),
    );
    let e = build::build(&req, &out, true).unwrap_err().to_string();
    assert!(
        e.contains(huge.to_str().unwrap()) && e.contains("kernel region"),
        "{e}"
    );

    // Unreadable rootfs file.
    let missing = t.path().join("no-such-rootfs.squashfs");
    let req = BuildRequest::new(
        board("qemu-aarch64"),
        kernel.clone(),
        Some(good_dtb.clone()),
        missing,
    );
    let e = build::build(&req, &out, true).unwrap_err().to_string();
    assert!(e.contains("no-such-rootfs.squashfs"), "{e}");

    // A uImage name longer than 32 bytes.
    let mut req = BuildRequest::new(
        board("gl-ar750"),
        mips_vmlinux(t.path(), 0x8006_0000, 0x8006_0000, &[1, 2, 3, 4]),
        Some(dtb(t.path(), "mips.dts")),
        rootfs,
    );
    req.phram = Some(PhramMethod::Cmdline);
    req.root_device = Some("/dev/mtdblock0".into());
    req.name = Some("x".repeat(40));
    let e = build::build(&req, &out, true).unwrap_err().to_string();
    assert!(e.contains("at most 32") && e.contains("vmlinux"), "{e}");

    // A little-endian kernel for the big-endian board.
    let mut le = std::fs::read(t.path().join("vmlinux")).unwrap();
    le[5] = 1;
    let lep = t.path().join("vmlinux-le");
    std::fs::write(&lep, le).unwrap();
    req.kernel = lep;
    req.name = None;
    let e = build::build(&req, &out, true).unwrap_err().to_string();
    assert!(e.contains("vmlinux-le"), "{e}");
    assert!(!out.exists());
}

#[test]
fn from_dir_finds_inputs_through_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let k = arm64_image(&store, 1000, 0x1000);
    let d = dtb(&store, "virt.dts");
    let r = rootfs_dir(&store);
    let res = t.path().join("result");
    std::fs::create_dir(&res).unwrap();
    std::os::unix::fs::symlink(&k, res.join("Image")).unwrap();
    std::os::unix::fs::symlink(&d, res.join("dtb")).unwrap();
    std::os::unix::fs::symlink(&r, res.join("rootfs")).unwrap();
    let (kk, dd, rr) = build::inputs_from_dir(&board("qemu-aarch64"), &res).unwrap();
    assert_eq!(
        (kk, dd, rr),
        (res.join("Image"), Some(res.join("dtb")), res.join("rootfs"))
    );
    let e = build::inputs_from_dir(&board("gl-ar750"), &res)
        .unwrap_err()
        .to_string();
    assert!(e.contains("vmlinux"), "{e}");
}

#[test]
fn fit_kernel_carries_the_patched_dtb_and_boots_with_bootm() {
    let t = tempfile::tempdir().unwrap();
    let mut req = BuildRequest::new(
        board("qemu-aarch64"),
        arm64_image(t.path(), 200_000, 0x60_0000),
        Some(dtb(t.path(), "virt.dts")),
        rootfs_dir(t.path()),
    );
    // qemu-aarch64 also boots FIT (kernel.also_boots); zimage it does not.
    req.format = Some(lmx_boards::KernelFormat::Zimage);
    let out = t.path().join("out");
    let e = build::build(&req, &out, true).unwrap_err().to_string();
    assert!(
        e.contains("not known to boot a zimage kernel (it boots: image, fit)"),
        "{e}"
    );
    req.format = Some(lmx_boards::KernelFormat::Fit);
    let built = build::build(&req, &out, false).unwrap();
    let itb = out.join("kernel.itb");
    let info = tool("dumpimage", &["-l", p(&itb)]);
    assert!(
        info.contains("Flat Device Tree") && info.contains("Kernel Image"),
        "{info}"
    );
    assert!(!out.join("board.dtb").exists());
    let cmds = &built.manifest.commands;
    let boot = cmds.last().unwrap();
    let stage = built
        .plan
        .layout
        .region(lmx_builder::layout::RegionKind::KernelStaging)
        .unwrap();
    assert_eq!(boot, &format!("bootm {:#x}", stage.phys));
    assert!(stage.phys >= 0x40a0_0000, "{}", built.plan.layout);
    // The FIT's tree has the phram node and the bootargs.
    let fit = lmx_builder::fit::Fit::parse(&std::fs::read(&itb).unwrap()).unwrap();
    fit.verify().unwrap();
    let tree = lmx_builder::fdt::Fdt::parse(&std::fs::read(&itb).unwrap()).unwrap();
    let data = tree
        .node("/images/fdt-1")
        .unwrap()
        .prop("data")
        .unwrap()
        .value
        .clone();
    let inner = lmx_builder::fdt::Fdt::parse(&data).unwrap();
    assert_eq!(inner.bootargs(), Some(built.manifest.bootargs.as_str()));
    assert!(inner
        .node("/reserved-memory/phram-rootfs@44000000")
        .is_some());
}

#[test]
fn compressed_rootfs_is_staged_and_unpacked_with_lzmadec() {
    let t = tempfile::tempdir().unwrap();
    let mut b = board("qemu-armv7l");
    b.ram_boot.compressed_rootfs = true;
    // The planning of a zImage board with lzmadec (Debian's qemu_arm
    // U-Boot itself has none: the board file says lzmadec = false).
    b.uboot.lzmadec = Some(true);
    let mut z = vec![0x11u8; 150_000];
    z[0x24..0x28].copy_from_slice(&0x016f_2818u32.to_le_bytes());
    let zimage = t.path().join("zImage");
    std::fs::write(&zimage, z).unwrap();
    let req = BuildRequest::new(
        b,
        zimage,
        Some(dtb(t.path(), "virt.dts")),
        rootfs_dir(t.path()),
    );
    let out = t.path().join("out");
    let built = build::build(&req, &out, false).unwrap();
    let staged = std::fs::read(out.join("rootfs.squashfs.lzma")).unwrap();
    let rootfs = std::fs::read(out.join("rootfs.squashfs")).unwrap();
    assert_eq!(compress::lzma_decompress(&staged).unwrap(), rootfs);
    let unpack = built
        .plan
        .steps
        .iter()
        .find_map(|s| match s {
            lmx_builder::plan::Step::Unpack(u) => Some(u.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(unpack.dst, 0x4400_0000);
    assert_eq!(
        (unpack.size, unpack.crc32),
        (rootfs.len() as u64, crc32fast::hash(&rootfs))
    );
    let cmds = &built.manifest.commands;
    let i = cmds.iter().position(|c| c.starts_with("lzmadec ")).unwrap();
    assert!(cmds[i - 1].ends_with(" rootfs.squashfs.lzma"), "{cmds:?}");
    assert_eq!(cmds[i], format!("lzmadec {:#x} 0x44000000", unpack.src));
    assert!(cmds.last().unwrap().starts_with("bootz 0x40400000 - 0x44"));
    let m = Manifest::read(&out).unwrap();
    assert_eq!(m.artifact("rootfs").unwrap().load_addr, Some(0x4400_0000));
    assert_eq!(
        m.artifact("rootfs-lzma").unwrap().load_addr,
        Some(unpack.src)
    );
    m.verify_files(&out).unwrap();
}

#[test]
fn manifest_round_trip_and_schema_check() {
    let t = tempfile::tempdir().unwrap();
    let req = BuildRequest::new(
        board("qemu-aarch64"),
        arm64_image(t.path(), 100_000, 0x40_0000),
        Some(dtb(t.path(), "virt.dts")),
        rootfs_dir(t.path()),
    );
    let b = build::build(&req, &t.path().join("out"), true).unwrap();
    let json = b.manifest.to_json();
    let back = Manifest::from_json("m.json", &json).unwrap();
    assert_eq!(back, b.manifest);
    // The steps keep their structure in JSON.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let load = &v["steps"][2];
    assert_eq!(load["op"], "load");
    assert_eq!(load["artifact"], "rootfs");
    assert_eq!(load["addr"], 0x4400_0000u64);
    assert!(load["crc32"].is_u64() && load["size"].is_u64());
    // Another schema version is refused, not guessed at.
    let v2 = json.replacen("\"schema\": 1", "\"schema\": 2", 1);
    assert!(matches!(
        Manifest::from_json("m.json", &v2),
        Err(ManifestError::Schema { .. })
    ));
    assert!(matches!(
        Manifest::from_json("m.json", "{\"schema\": 1}"),
        Err(ManifestError::Invalid { .. })
    ));
    let e = Manifest::read(&t.path().join("nothing-here")).unwrap_err();
    assert!(e.to_string().contains("nothing-here"), "{e}");
}
