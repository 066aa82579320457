//! Our images in front of the real U-Boot: Debian's `qemu_arm64` build
//! (2023.01) under QEMU, with the artifacts placed in RAM by QEMU's
//! `loader` device. U-Boot itself then checks the uImage CRCs (`iminfo`),
//! unpacks our `.lzma` stream (`lzmadec`), runs our script image
//! (`source`) and verifies our FIT hashes (`iminfo` on a FIT).
//!
//! Needs `qemu-system-aarch64` (Debian `qemu-system-arm`) and
//! `u-boot-qemu`; a missing one fails the test with the package name.

use lmx_builder::compress;
use lmx_builder::fdt::Fdt;
use lmx_builder::fit::{FitKernel, FitSpec, HashAlgo};
use lmx_builder::uimage::{self, Arch, Compression, UImageSpec};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/// U-Boot on QEMU's `virt` machine, driven over its serial console.
struct Board {
    child: Child,
    stdin: ChildStdin,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Board {
    /// Boots with each `(file, address)` loaded raw into RAM, and stops
    /// autoboot at the prompt.
    fn start(loads: &[(PathBuf, u64)]) -> Board {
        assert!(
            Path::new(UBOOT).is_file(),
            "{UBOOT} is missing: install the Debian package u-boot-qemu"
        );
        let mut cmd = Command::new("qemu-system-aarch64");
        cmd.args(["-machine", "virt", "-cpu", "cortex-a57", "-m", "512"])
            .args(["-nodefaults", "-display", "none", "-monitor", "none"])
            .args(["-serial", "stdio", "-bios", UBOOT]);
        for (file, addr) in loads {
            cmd.arg("-device").arg(format!(
                "loader,file={},addr={addr:#x},force-raw=on",
                file.display()
            ));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run qemu-system-aarch64 ({e}): install the Debian package \
                     qemu-system-arm (10.x from bookworm-backports)"
                )
            });
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut b = Board { child, stdin, out };
        b.wait_for(0, "Hit any key to stop autoboot", Duration::from_secs(60));
        let from = b.len();
        b.stdin.write_all(b" ").unwrap();
        b.wait_for(from, "=> ", Duration::from_secs(20));
        b
    }

    fn len(&self) -> usize {
        self.out.lock().unwrap().len()
    }

    fn wait_for(&self, from: usize, needle: &str, timeout: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let text = String::from_utf8_lossy(&self.out.lock().unwrap()[from..]).into_owned();
            if text.contains(needle) {
                return text;
            }
            assert!(
                t0.elapsed() < timeout,
                "U-Boot did not print {needle:?} within {timeout:?}; console:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs one command and returns what it printed before the next prompt.
    fn run(&mut self, command: &str) -> String {
        let from = self.len();
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .unwrap();
        // The prompt at a line start, after the echoed command.
        let text = self.wait_for(from, "\n=> ", Duration::from_secs(60));
        let start = text.find(command).map_or(0, |i| i + command.len());
        let end = text.rfind("\n=> ").unwrap();
        text[start..end.max(start)].to_owned()
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kernel-like bytes: xorshift noise with runs, so LZMA has work to do.
fn payload(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491u32;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 4 == 0 {
                0
            } else {
                x as u8
            }
        })
        .collect()
}

#[test]
fn uboot_verifies_and_unpacks_our_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kernel = payload(300_000);
    let lz = compress::lzma_compress(&kernel, 6).unwrap();
    let spec = UImageSpec {
        timestamp: 1_700_000_000,
        ..UImageSpec::kernel(
            "lmx lzma",
            Arch::Arm64,
            Compression::Lzma,
            0x4040_0000,
            0x4040_0000,
        )
    };
    let uimg = spec.build(&lz).unwrap();
    let mut corrupt = uimg.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x10;
    let script = uimage::script_image(
        &UImageSpec::script("lmx script", Arch::Arm64),
        b"echo LMX-'SCRIPT'-OK\nsetenv lmxvar 42\n",
    )
    .unwrap();
    let fit = |hash| {
        FitSpec {
            description: "lmx FIT".into(),
            arch: Arch::Arm64,
            timestamp: 1_700_000_000,
            hash,
            kernel: FitKernel {
                data: kernel[..50_000].to_vec(),
                compression: Compression::None,
                load: 0x4040_0000,
                entry: 0x4040_0000,
            },
            fdt: Some(Fdt::new().to_bytes()),
            ramdisk: None,
        }
        .build()
        .unwrap()
    };
    let mut bad_fit = fit(HashAlgo::Sha256);
    let at = bad_fit.len() / 2;
    bad_fit[at] ^= 1;
    let files = [
        ("k.uimg", uimg, 0x4800_0000u64),
        ("bad.uimg", corrupt, 0x4880_0000),
        ("boot.scr", script, 0x4900_0000),
        ("crc32.itb", fit(HashAlgo::Crc32), 0x4a00_0000),
        ("sha1.itb", fit(HashAlgo::Sha1), 0x4a10_0000),
        ("sha256.itb", fit(HashAlgo::Sha256), 0x4a20_0000),
        ("bad.itb", bad_fit, 0x4a30_0000),
    ];
    let loads: Vec<(PathBuf, u64)> = files
        .iter()
        .map(|(name, bytes, addr)| {
            let p = d.join(name);
            std::fs::write(&p, bytes).unwrap();
            (p, *addr)
        })
        .collect();
    let mut b = Board::start(&loads);

    let out = b.run("iminfo 0x48000000");
    assert!(
        out.contains("AArch64 Linux Kernel Image (lzma compressed)"),
        "{out}"
    );
    assert!(out.contains("Verifying Checksum ... OK"), "{out}");
    let out = b.run("iminfo 0x48800000");
    assert!(out.contains("Bad Data CRC"), "{out}");

    let out = b.run("lzmadec 0x48000040 0x50000000");
    assert!(
        out.contains(&format!(
            "Uncompressed size: {} = 0X{:X}",
            kernel.len(),
            kernel.len()
        )),
        "{out}"
    );
    let out = b.run(&format!("crc32 0x50000000 {:#x}", kernel.len()));
    assert!(
        out.contains(&format!("==> {:08x}", crc32fast::hash(&kernel))),
        "{out}"
    );

    let out = b.run("source 0x49000000");
    assert!(out.contains("LMX-SCRIPT-OK"), "{out}");
    assert!(b.run("printenv lmxvar").contains("lmxvar=42"));

    for (addr, algo) in [
        ("0x4a000000", "crc32"),
        ("0x4a100000", "sha1"),
        ("0x4a200000", "sha256"),
    ] {
        let out = b.run(&format!("iminfo {addr}"));
        assert!(out.contains("FIT image found"), "{out}");
        assert!(
            out.contains(&format!("Hash(es) for Image 0 (kernel-1): {algo}+")),
            "{out}"
        );
        assert!(
            out.contains(&format!("Hash(es) for Image 1 (fdt-1): {algo}+")),
            "{out}"
        );
        assert!(!out.contains("error"), "{out}");
    }
    let out = b.run("iminfo 0x4a300000");
    assert!(
        out.contains("sha256 error") || out.contains("Bad hash"),
        "{out}"
    );
}
