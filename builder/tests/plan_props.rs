//! Property tests of the RAM layout planner: for random boards and
//! artifact sizes, a layout that is produced has no two overlapping
//! regions and every region inside RAM, with the rootfs at the board's
//! address; when no layout is possible the planner says so (it never
//! panics or returns a bad map).

use lmx_boards::{Board, Catalog, Region};
use lmx_builder::layout::{
    KernelFacts, KernelRun, LayoutError, LayoutRequest, RamLayout, RegionKind, DTB_ALIGN,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

const MIB: u64 = 1 << 20;

fn base_board() -> Board {
    Catalog::builtin().resolve("qemu-aarch64").unwrap().board
}

#[derive(Debug, Clone)]
struct Input {
    ram_base: u64,
    ram_size: u64,
    uboot: Option<(u64, u64)>,
    rootfs_off: u64,
    rootfs: u64,
    free: u64,
    dtb: Option<u64>,
    load_off: u64,
    kernel: u8,
    kernel_size: u64,
    staged: Option<u64>,
}

fn input() -> impl Strategy<Value = Input> {
    (
        (0u64..16).prop_map(|m| m * 256 * MIB),
        (32u64..1024).prop_map(|m| m * MIB),
        proptest::option::of((0u64..64, 1u64..8)),
        0u64..1024,
        1u64..(64 * MIB),
        prop_oneof![Just(0u64), 0u64..(4 * MIB)],
        proptest::option::of(256u64..(256 * 1024)),
        0u64..1024,
        0u8..3,
        (64u64 * 1024)..(40 * MIB),
        proptest::option::of(1u64..(16 * MIB)),
    )
        .prop_map(
            |(ram_base, ram_size, uboot, ro, rootfs, free, dtb, lo, kernel, ks, staged)| Input {
                ram_base,
                ram_size,
                uboot,
                rootfs_off: ro,
                rootfs,
                free,
                dtb,
                load_off: lo,
                kernel,
                kernel_size: ks,
                staged,
            },
        )
}

fn setup(i: &Input) -> (Board, LayoutRequest) {
    let mut b = base_board();
    b.ram.base = i.ram_base;
    b.ram.size = Some(i.ram_size);
    // Offsets are in 1/1024ths of RAM, 64 KiB aligned.
    let at = |o: u64| i.ram_base + (i.ram_size / 1024 * o) / 0x1_0000 * 0x1_0000;
    b.ram.uboot = i.uboot.map(|(o, s)| Region {
        base: at(o * 16),
        size: s * MIB,
    });
    b.ram_boot.rootfs = Some(at(i.rootfs_off));
    b.ram_boot.free = None;
    b.kernel.load = Some(at(i.load_off));
    let run = match i.kernel {
        0 => KernelRun::InPlace {
            size: i.kernel_size + i.kernel_size / 8,
        },
        1 => KernelRun::Zimage {
            decompressed: i.kernel_size * 4,
        },
        _ => KernelRun::Unpacked {
            load: at(i.load_off),
            size: i.kernel_size * 3,
        },
    };
    let mut req = LayoutRequest::new(
        i.rootfs,
        i.dtb,
        KernelFacts {
            file_size: i.kernel_size,
            run,
            size_known: true,
        },
    );
    req.rootfs_free = i.free;
    req.rootfs_staged = i.staged;
    (b, req)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn produced_layouts_never_overlap_and_stay_in_ram(i in input()) {
        let (b, req) = setup(&i);
        match RamLayout::plan(&b, &req) {
            Ok(l) => {
                let (lo, hi) = (b.ram.base, b.ram.base + b.ram.size.unwrap());
                for (n, r) in l.regions.iter().enumerate() {
                    prop_assert!(r.phys >= lo && r.end() <= hi, "{:?} outside RAM\n{}", r.kind, l);
                    for s in &l.regions[n + 1..] {
                        prop_assert!(!r.overlaps(s), "{:?} overlaps {:?}\n{}", r.kind, s.kind, l);
                    }
                    if r.kind != RegionKind::UBoot {
                        prop_assert_eq!(r.uboot, Some(r.phys));
                    }
                }
                let rootfs = l.region(RegionKind::Rootfs).unwrap();
                prop_assert_eq!(rootfs.phys, b.ram_boot.rootfs.unwrap());
                prop_assert!(rootfs.size >= i.rootfs + i.free);
                prop_assert_eq!(rootfs.size % l.phram_erase, 0);
                if let Some(d) = l.region(RegionKind::Dtb) {
                    prop_assert_eq!(d.phys % DTB_ALIGN, 0);
                    prop_assert!(d.size >= i.dtb.unwrap());
                }
                prop_assert_eq!(l.region(RegionKind::Dtb).is_some(), i.dtb.is_some());
                prop_assert_eq!(l.region(RegionKind::RootfsStaging).is_some(), i.staged.is_some());
                prop_assert!(l.region(RegionKind::Script).is_some());
            }
            Err(LayoutError::Conflict { problem, map }) => {
                prop_assert!(!problem.is_empty());
                prop_assert!(map.contains("u-boot addr"), "{}", map);
            }
            // A fixed region (rootfs, kernel) that U-Boot cannot address.
            Err(LayoutError::Address { .. }) => {
                prop_assert!(b.ram.base + b.ram.size.unwrap() > 1 << 32);
            }
            Err(e) => prop_assert!(false, "unexpected error kind: {}", e),
        }
    }
}

#[test]
fn the_property_is_not_vacuous() {
    // Most random inputs must produce a layout, or the property above
    // would only exercise the refusals.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = input();
    let (mut ok, mut total) = (0, 0);
    for _ in 0..500 {
        let i = strategy.new_tree(&mut runner).unwrap().current();
        let (b, req) = setup(&i);
        total += 1;
        if RamLayout::plan(&b, &req).is_ok() {
            ok += 1;
        }
    }
    assert!(
        ok * 4 > total,
        "only {ok} of {total} random inputs produced a layout"
    );
}
