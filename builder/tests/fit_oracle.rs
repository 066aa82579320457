//! FIT images checked against `dumpimage`: it must list every image and
//! the default configuration, and the data it extracts must hash (with
//! tools independent of this crate) to the values we stored.

mod common;

use common::{dtb_fixture, run, stdout, tool};
use lmx_builder::fit::{Fit, FitKernel, FitRamdisk, FitSpec, HashAlgo};
use lmx_builder::uimage::{Arch, Compression};
use std::path::Path;
use std::process::Command;

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of a file computed by coreutils/gzip, not by this crate.
fn external_digest(algo: HashAlgo, f: &Path) -> String {
    match algo {
        HashAlgo::Sha1 | HashAlgo::Sha256 => {
            let prog = if algo == HashAlgo::Sha1 {
                "sha1sum"
            } else {
                "sha256sum"
            };
            let out = stdout(Command::new(prog).arg(f));
            out.split_whitespace().next().unwrap().to_owned()
        }
        HashAlgo::Crc32 => {
            // The gzip trailer holds the CRC32 of the input, little-endian.
            let gz = run(Command::new("gzip").args(["-c", "-n"]).arg(f)).stdout;
            let t = &gz[gz.len() - 8..gz.len() - 4];
            hex(&[t[3], t[2], t[1], t[0]])
        }
    }
}

#[test]
fn dumpimage_lists_our_fit_and_extracted_data_matches_each_hash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dtb = dtb_fixture("virt-arm64.dts", d);
    let kernel: Vec<u8> = (0..123_457u32).map(|i| (i % 199) as u8).collect();
    let ramdisk = b"ramdisk contents".repeat(100);
    for algo in [HashAlgo::Crc32, HashAlgo::Sha1, HashAlgo::Sha256] {
        let spec = FitSpec {
            description: "lmx test FIT".into(),
            arch: Arch::Arm64,
            timestamp: 1_700_000_000,
            hash: algo,
            kernel: FitKernel {
                data: kernel.clone(),
                compression: Compression::None,
                load: 0x4040_0000,
                entry: 0x4040_0000,
            },
            fdt: Some(dtb.clone()),
            ramdisk: Some(FitRamdisk {
                data: ramdisk.clone(),
                load: Some(0x4800_0000),
            }),
        };
        let blob = spec.build().unwrap();
        let f = d.join("image.itb");
        std::fs::write(&f, &blob).unwrap();
        let listing = stdout(tool("dumpimage").arg("-l").arg(&f));
        for want in [
            "FIT description: lmx test FIT",
            "Created:         Tue Nov 14 22:13:20 2023",
            " Image 0 (kernel-1)",
            "  Type:         Kernel Image",
            "  Architecture: AArch64",
            "  Load Address: 0x40400000",
            " Image 1 (fdt-1)",
            "  Type:         Flat Device Tree",
            " Image 2 (ramdisk-1)",
            "  Type:         RAMDisk Image",
            " Default Configuration: 'conf-1'",
            "  Kernel:       kernel-1",
            "  Init Ramdisk: ramdisk-1",
            "  FDT:          fdt-1",
            &format!("  Hash algo:    {}", algo.name()),
        ] {
            assert!(
                listing.contains(want),
                "{algo:?}: missing {want:?} in\n{listing}"
            );
        }
        let fit = Fit::parse(&blob).unwrap();
        assert!(fit.failures().is_empty());
        for (i, (img, data)) in fit
            .images
            .iter()
            .zip([&kernel[..], &dtb[..], &ramdisk[..]])
            .enumerate()
        {
            let out = d.join(format!("extract-{i}"));
            run(tool("dumpimage")
                .args(["-T", "flat_dt", "-p", &i.to_string(), "-o"])
                .arg(&out)
                .arg(&f));
            assert!(
                std::fs::read(&out).unwrap() == data,
                "image {i} data differs"
            );
            let stored = hex(&img.hashes[0].value);
            assert_eq!(stored, external_digest(algo, &out), "{algo:?} image {i}");
            assert!(
                listing.contains(&format!("  Hash value:   {stored}")),
                "dumpimage shows another hash for image {i}"
            );
        }
    }
}

#[test]
fn mkimage_fit_is_read_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dtb = d.join("virt.dtb");
    std::fs::write(&dtb, dtb_fixture("virt-arm64.dts", d)).unwrap();
    let k = d.join("Image");
    std::fs::write(&k, vec![0x5au8; 4096]).unwrap();
    let out = d.join("auto.itb");
    run(tool("mkimage")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "-f", "auto", "-A", "arm64", "-O", "linux", "-T", "kernel", "-C", "none",
        ])
        .args(["-a", "0x40400000", "-e", "0x40400000", "-n", "auto", "-d"])
        .arg(&k)
        .arg("-b")
        .arg(&dtb)
        .arg(&out));
    let blob = std::fs::read(&out).unwrap();
    let fit = Fit::parse(&blob).unwrap();
    assert_eq!(fit.images.len(), 2);
    assert_eq!(fit.images[0].load, Some(0x4040_0000));
    assert!(fit.failures().is_empty(), "{:?}", fit.failures());

    // External data (`mkimage -E`): data-offset after the tree.
    let ext = d.join("ext.itb");
    run(tool("mkimage")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "-E", "-f", "auto", "-A", "arm64", "-O", "linux", "-T", "kernel",
        ])
        .args([
            "-C",
            "none",
            "-a",
            "0x40400000",
            "-e",
            "0x40400000",
            "-n",
            "ext",
            "-d",
        ])
        .arg(&k)
        .arg("-b")
        .arg(&dtb)
        .arg(&ext));
    let blob = std::fs::read(&ext).unwrap();
    let fit = Fit::parse(&blob).unwrap();
    assert_eq!(fit.images[0].data_size, 4096);
    assert!(fit.failures().is_empty(), "{:?}", fit.failures());
    // Flip one byte of the external data (in the FDT image): a hash fails.
    let mut bad = blob.clone();
    let n = bad.len();
    bad[n - 200] ^= 0xff;
    let f = Fit::parse(&bad).unwrap().failures();
    assert!(!f.is_empty());
}
