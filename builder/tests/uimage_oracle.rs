//! Legacy images and LZMA/gzip payloads checked against the reference
//! tools: `mkimage` must produce the same bytes, `dumpimage` must read
//! them, and `xz`/`lzma` must decode our `.lzma` streams.

mod common;

use common::{run, stdout, tool};
use lmx_builder::compress;
use lmx_builder::uimage::{self, Arch, Compression, ImageType, Os, UImage, UImageSpec};

const EPOCH: u32 = 1_700_000_000;

/// Deterministic, somewhat compressible bytes.
fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 3 == 0 {
                b'a' + (i % 7) as u8
            } else {
                x as u8
            }
        })
        .collect()
}

fn mkimage(spec: &UImageSpec, data: &[u8], dir: &std::path::Path) -> Vec<u8> {
    let input = dir.join("in.bin");
    let output = dir.join("out.img");
    std::fs::write(&input, data).unwrap();
    run(tool("mkimage")
        .env("SOURCE_DATE_EPOCH", spec.timestamp.to_string())
        .args(["-A", spec.arch.mkimage_name().unwrap()])
        .args(["-O", "linux"])
        .args(["-T", spec.image_type.mkimage_name().unwrap()])
        .args(["-C", spec.compression.mkimage_name().unwrap()])
        .args(["-a", &format!("{:#x}", spec.load_addr)])
        .args(["-e", &format!("{:#x}", spec.entry_point)])
        .args(["-n", &spec.name])
        .arg("-d")
        .arg(&input)
        .arg(&output));
    std::fs::read(output).unwrap()
}

#[test]
fn byte_identical_to_mkimage_for_every_arch_type_and_compression() {
    let dir = tempfile::tempdir().unwrap();
    let raw = payload(70_001, 7);
    let gz = compress::gzip_compress(&raw).unwrap();
    let lz = compress::lzma_compress(&raw, 6).unwrap();
    let mut n = 0;
    for arch in [
        Arch::Arm,
        Arch::Arm64,
        Arch::Mips,
        Arch::Mips64,
        Arch::Riscv,
        Arch::X86,
    ] {
        for ty in [ImageType::Kernel, ImageType::Ramdisk, ImageType::Firmware] {
            for (comp, data) in [
                (Compression::None, &raw),
                (Compression::Gzip, &gz),
                (Compression::Lzma, &lz),
            ] {
                let spec = UImageSpec {
                    name: format!("lmx {arch:?} {ty:?}"),
                    arch,
                    os: Os::Linux,
                    image_type: ty,
                    compression: comp,
                    load_addr: 0x8006_0000,
                    entry_point: 0x8006_0400,
                    timestamp: EPOCH,
                };
                let ours = spec.build(data).unwrap();
                let theirs = mkimage(&spec, data, dir.path());
                assert!(
                    ours == theirs,
                    "{arch:?} {ty:?} {comp:?}: headers differ\nours   {:02x?}\ntheirs {:02x?}",
                    &ours[..64],
                    &theirs[..64]
                );
                n += 1;
            }
        }
    }
    assert_eq!(n, 54);
}

#[test]
fn name_of_exactly_32_bytes_matches_mkimage() {
    let dir = tempfile::tempdir().unwrap();
    let spec = UImageSpec {
        timestamp: EPOCH,
        ..UImageSpec::kernel(
            "12345678901234567890123456789012",
            Arch::Mips,
            Compression::None,
            0x8006_0000,
            0x8006_0000,
        )
    };
    let data = payload(1001, 1);
    assert_eq!(
        spec.build(&data).unwrap(),
        mkimage(&spec, &data, dir.path())
    );
    let long = UImageSpec {
        name: "x".repeat(33),
        ..spec
    };
    assert!(matches!(
        long.build(&data),
        Err(uimage::Error::NameTooLong { len: 33, .. })
    ));
}

#[test]
fn script_image_matches_mkimage_and_dumpimage_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"setenv ipaddr 192.168.77.2\nsetenv serverip 192.168.77.1\nbooti 0x40400000 - 0x440d0000\n";
    let mut spec = UImageSpec::script("boot script", Arch::Arm64);
    spec.timestamp = EPOCH;
    let ours = uimage::script_image(&spec, text).unwrap();
    let script = dir.path().join("boot.txt");
    std::fs::write(&script, text).unwrap();
    let out = dir.path().join("boot.scr");
    run(tool("mkimage")
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .args(["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none"])
        .args(["-a", "0", "-e", "0", "-n", "boot script", "-d"])
        .arg(&script)
        .arg(&out));
    assert_eq!(ours, std::fs::read(&out).unwrap());
    let listing = stdout(tool("dumpimage").arg("-l").arg(&out));
    assert!(
        listing.contains("AArch64 Linux Script (uncompressed)"),
        "{listing}"
    );
    let parsed = UImage::parse(&ours).unwrap();
    assert_eq!(
        uimage::split_multi(parsed.payload).unwrap(),
        vec![&text[..]]
    );
}

#[test]
fn dumpimage_reads_our_fields() {
    let dir = tempfile::tempdir().unwrap();
    let data = compress::lzma_compress(&payload(5000, 3), 6).unwrap();
    let spec = UImageSpec {
        timestamp: EPOCH,
        ..UImageSpec::kernel(
            "Linux-6.1",
            Arch::Mips,
            Compression::Lzma,
            0x8006_0000,
            0x8006_0000,
        )
    };
    let img = dir.path().join("uImage");
    std::fs::write(&img, spec.build(&data).unwrap()).unwrap();
    let listing = stdout(tool("dumpimage").arg("-l").arg(&img));
    for want in [
        "Image Name:   Linux-6.1",
        "Created:      Tue Nov 14 22:13:20 2023",
        "Image Type:   MIPS Linux Kernel Image (lzma compressed)",
        &format!("Data Size:    {}", uimage::format_size(data.len() as u64)),
        "Load Address: 80060000",
        "Entry Point:  80060000",
    ] {
        assert!(listing.contains(want), "missing {want:?} in\n{listing}");
    }
}

#[test]
fn xz_and_lzma_decode_our_lzma_streams() {
    let dir = tempfile::tempdir().unwrap();
    for (len, preset) in [(0usize, 6u32), (1, 0), (300_000, 6), (1 << 20, 9)] {
        let raw = payload(len, len as u32);
        let z = compress::lzma_compress(&raw, preset).unwrap();
        assert_eq!(
            compress::lzma_uncompressed_size(&z).unwrap(),
            Some(len as u64)
        );
        let f = dir.path().join("k.lzma");
        std::fs::write(&f, &z).unwrap();
        let out = run(tool("xz").args(["--format=lzma", "-d", "-c"]).arg(&f)).stdout;
        assert!(out == raw, "xz --format=lzma -d differs for {len} bytes");
        let out = run(tool("lzma").args(["-d", "-c"]).arg(&f)).stdout;
        assert!(out == raw, "lzma -d differs for {len} bytes");
        // And the other way: what xz writes (unknown size), we read.
        let raw_f = dir.path().join("raw");
        std::fs::write(&raw_f, &raw).unwrap();
        let theirs = run(tool("xz").args(["--format=lzma", "-c"]).arg(&raw_f)).stdout;
        assert_eq!(compress::lzma_uncompressed_size(&theirs).unwrap(), None);
        assert!(compress::lzma_decompress(&theirs).unwrap() == raw);
    }
}

#[test]
fn gzip_decodes_our_gzip_streams() {
    let dir = tempfile::tempdir().unwrap();
    let raw = payload(200_000, 9);
    let f = dir.path().join("k.gz");
    std::fs::write(&f, compress::gzip_compress(&raw).unwrap()).unwrap();
    let out = run(std::process::Command::new("gzip")
        .args(["-d", "-c"])
        .arg(&f))
    .stdout;
    assert!(out == raw);
}
