//! The FDT codec and the device-tree edits checked against `dtc` and
//! `fdtget`: what we write must decompile to the same source as what dtc
//! wrote, and the edits must read back as the boot plan intends.

mod common;

use common::{dtb_fixture, run, stdout, tool};
use lmx_builder::compress;
use lmx_builder::dtedit::{self, PhramReservation, Status};
use lmx_builder::fdt::{self, Fdt};
use lmx_builder::uimage::{Arch, Compression, UImage, UImageSpec};
use std::path::Path;

fn decompile(blob: &[u8], dir: &Path) -> String {
    let f = dir.join("decompile.dtb");
    std::fs::write(&f, blob).unwrap();
    stdout(tool("dtc").args(["-q", "-I", "dtb", "-O", "dts"]).arg(&f))
}

fn fdtget(blob: &[u8], dir: &Path, args: &[&str]) -> String {
    let f = dir.join("get.dtb");
    std::fs::write(&f, blob).unwrap();
    stdout(tool("fdtget").args(&args[..1]).arg(&f).args(&args[1..]))
        .trim_end()
        .to_owned()
}

#[test]
fn unmodified_trees_round_trip_through_dtc() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["virt-arm64.dts", "mips-ar750.dts"] {
        let theirs = dtb_fixture(name, dir.path());
        let tree = Fdt::parse(&theirs).unwrap();
        let ours = tree.to_bytes();
        assert_eq!(decompile(&ours, dir.path()), decompile(&theirs, dir.path()));
        assert_eq!(Fdt::parse(&ours).unwrap(), tree);
        // dtc lays blocks out as we do and shares no strings across names
        // of different length, so the blobs are byte-identical too.
        assert!(ours == theirs, "{name}: blob differs from dtc's");
    }
}

#[test]
fn virt_board_edits_read_back_with_fdtget() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Fdt::parse(&dtb_fixture("virt-arm64.dts", dir.path())).unwrap();
    let args = "console=ttyAMA0,115200 phram.phram=phram0,0x44000000,0xd0000,65536 \
                mtdparts=phram0:0xd0000(rootfs) root=/dev/mtdblock2 rootfstype=squashfs";
    t.set_bootargs(args);
    t.set_status("/pl061@9030000", Status::Disabled).unwrap();
    let node = t
        .add_phram_reservation(&PhramReservation {
            start: 0x4400_0000,
            size: 0xd_0000,
            label: Some("rootfs".into()),
        })
        .unwrap();
    let blob = t.to_bytes();
    let d = dir.path();
    assert_eq!(fdtget(&blob, d, &["-ts", "/chosen", "bootargs"]), args);
    assert_eq!(
        fdtget(&blob, d, &["-ts", "/chosen", "stdout-path"]),
        "/pl011@9000000"
    );
    assert_eq!(
        fdtget(&blob, d, &["-ts", "/pl061@9030000", "status"]),
        "disabled"
    );
    assert_eq!(
        fdtget(&blob, d, &["-tx", "/reserved-memory", "#address-cells"]),
        "2"
    );
    assert_eq!(
        fdtget(&blob, d, &["-tx", "/reserved-memory", "#size-cells"]),
        "2"
    );
    assert_eq!(fdtget(&blob, d, &["-tx", "/reserved-memory", "ranges"]), "");
    assert_eq!(fdtget(&blob, d, &["-ts", &node, "compatible"]), "phram");
    assert_eq!(
        fdtget(&blob, d, &["-tx", &node, "reg"]),
        "0 44000000 0 d0000"
    );
    assert_eq!(fdtget(&blob, d, &["-ts", &node, "label"]), "rootfs");
    assert_eq!(fdtget(&blob, d, &["-tx", &node, "no-map"]), "");
    // The phandle of the interrupt controller is kept as it was.
    assert_eq!(
        fdtget(&blob, d, &["-tx", "/", "interrupt-parent"]),
        fdtget(&blob, d, &["-tx", "/intc@8000000", "phandle"])
    );
    let dts = decompile(&blob, d);
    assert!(dts.contains("phram-rootfs@44000000 {"), "{dts}");
    assert!(dts.contains("no-map;"), "{dts}");
}

#[test]
fn mips_board_gets_chosen_and_one_cell_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut t = Fdt::parse(&dtb_fixture("mips-ar750.dts", d)).unwrap();
    assert_eq!(t.reserved.len(), 1);
    t.set_bootargs("console=ttyS0,115200");
    t.add_phram_reservation(&PhramReservation {
        start: 0x00a0_0000,
        size: 0x40_0000,
        label: None,
    })
    .unwrap();
    t.set_status("/ahb/uart", Status::Okay).unwrap();
    let blob = t.to_bytes();
    assert_eq!(
        fdtget(&blob, d, &["-ts", "/chosen", "bootargs"]),
        "console=ttyS0,115200"
    );
    assert_eq!(
        fdtget(
            &blob,
            d,
            &["-tx", "/reserved-memory/phram-rootfs@a00000", "reg"]
        ),
        "a00000 400000"
    );
    assert_eq!(
        fdtget(&blob, d, &["-tx", "/reserved-memory", "#address-cells"]),
        "1"
    );
    assert_eq!(
        fdtget(&blob, d, &["-ts", "/ahb/uart@18020000", "status"]),
        "okay"
    );
    assert!(decompile(&blob, d).contains("/memreserve/\t0x0000000000000000 0x0000000000001000;"));
}

#[test]
fn truncated_and_corrupt_blobs_are_refused_like_dtc_does() {
    let dir = tempfile::tempdir().unwrap();
    let good = dtb_fixture("virt-arm64.dts", dir.path());
    for cut in [0, 3, 39, 40, 100, good.len() - 1] {
        let err = Fdt::parse(&good[..cut]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{cut}: {err}");
    }
    let mut bad = good.clone();
    bad[0x3b] = 0x7f; // first structure token
    let err = Fdt::parse(&bad).unwrap_err();
    assert!(matches!(err, fdt::Error::BadStructure { .. }), "{err}");
    let f = dir.path().join("bad.dtb");
    std::fs::write(&f, &bad).unwrap();
    let dtc = tool("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!dtc.status.success(), "dtc accepted what we refused");
}

#[test]
fn appended_dtb_lzma_uimage_unpacks_to_kernel_then_dtb() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dtb = dtb_fixture("mips-ar750.dts", d);
    let kernel: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let spec = UImageSpec {
        timestamp: 1_700_000_000,
        ..UImageSpec::kernel(
            "GL-AR750 lmx",
            Arch::Mips,
            Compression::None,
            0x8006_0000,
            0x8006_0000,
        )
    };
    let img = dtedit::appended_dtb_uimage(&kernel, &dtb, &spec, 6).unwrap();
    let f = d.join("uImage");
    std::fs::write(&f, &img).unwrap();
    let listing = stdout(tool("dumpimage").arg("-l").arg(&f));
    assert!(
        listing.contains("MIPS Linux Kernel Image (lzma compressed)"),
        "{listing}"
    );
    let payload = UImage::parse(&img).unwrap().payload.to_vec();
    let z = d.join("payload.lzma");
    std::fs::write(&z, &payload).unwrap();
    let raw = run(tool("xz").args(["--format=lzma", "-d", "-c"]).arg(&z)).stdout;
    assert_eq!(raw.len(), kernel.len() + dtb.len());
    assert!(raw[..kernel.len()] == kernel[..]);
    assert_eq!(
        fdtget(&raw[kernel.len()..], d, &["-ts", "/", "model"]),
        "GL.iNet GL-AR750"
    );
    assert_eq!(compress::lzma_decompress(&payload).unwrap(), raw);
    assert!(dtedit::append_dtb(&kernel, &dtb[..dtb.len() - 8]).is_err());
}
