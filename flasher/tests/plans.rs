//! Golden command lists for every flash type, checked against each
//! board's CBSIZE, and one test per refusal.
//!
//! The boards are the shipped ones where one fits (qemu-aarch64: CFI NOR;
//! gl-ar750: SPI-NOR) and the fixtures in `tests/fixtures/` for NAND and
//! UBI, which no shipped board maps completely.

use std::path::Path;

use lmx_boards::{Board, Catalog, Partition};
use lmx_console::{Dialect, Pacing, ShellMachine};
use lmx_flasher::{
    Backup, BackupVia, Check, FlashImage, FlashPlan, FlashRequest, FlashState, Method, Phase,
    PlanError, Target,
};

fn board(name: &str) -> Board {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    Catalog::standard(Some(&dir))
        .resolve(name)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"))
        .board
}

fn image(size: u64) -> FlashImage {
    FlashImage {
        file: "firmware.bin".into(),
        size,
        crc32: 0x1234_abcd,
    }
}

fn req(target: Target, size: u64) -> FlashRequest {
    FlashRequest {
        target,
        ..FlashRequest::firmware(image(size))
    }
}

/// A firmware write of `size` bytes that first backs the region up to `file`.
fn backed_up(file: &str, via: BackupVia, size: u64) -> FlashRequest {
    FlashRequest {
        backup: Some(Backup {
            file: file.into(),
            via,
        }),
        ..req(Target::Firmware, size)
    }
}

/// The board's `firmware` partition, to edit.
fn firmware(b: &mut Board) -> &mut Partition {
    b.flash
        .partitions
        .iter_mut()
        .find(|p| p.name == "firmware")
        .unwrap()
}

/// Every command the plan holds fits the board's line buffer, checked by
/// the console driver itself (the same check that refuses to send).
fn assert_fits_cbsize(b: &Board, plan: &FlashPlan) {
    let m = ShellMachine::new(Dialect::from_board(b).unwrap(), Pacing::default());
    for c in plan.commands() {
        m.check(&c)
            .unwrap_or_else(|e| panic!("{}: {c:?} does not fit: {e}", b.name));
    }
}

fn plan(b: &Board, r: &FlashRequest) -> FlashPlan {
    let p = FlashPlan::build(b, r).unwrap_or_else(|e| panic!("{}: {e}", b.name));
    assert_fits_cbsize(b, &p);
    p
}

fn refuse(b: &Board, r: &FlashRequest) -> PlanError {
    match FlashPlan::build(b, r) {
        Ok(p) => panic!("{}: expected a refusal, got\n{}", b.name, p.render()),
        Err(e) => e,
    }
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_verification_only_probes_reads_back_and_compares() {
    let b = board("qemu-aarch64");
    let p = plan(&b, &backed_up("old.bin", BackupVia::Tftpput, 0x12_3456));
    let steps = p.verification_steps();
    let commands: Vec<&str> = steps.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(commands, ["crc32 0x400000 0x123456"]);
    assert!(steps.iter().all(|s| s.phase.verifies_only()));
    let phases: Vec<Phase> = p.steps.iter().map(|s| s.phase).collect();
    assert!(phases.contains(&Phase::Backup) && phases.contains(&Phase::Write));
    assert!(!Phase::Load.verifies_only() && !Phase::Erase.verifies_only());
    assert!(Phase::Probe.verifies_only() && Phase::ReadBack.verifies_only());
}

#[test]
fn nor_golden_qemu_aarch64() {
    let b = board("qemu-aarch64");
    let p = plan(&b, &req(Target::Firmware, 0x12_3456));
    assert_eq!(
        p.commands(),
        lines(&[
            "tftpboot 0x44000000 firmware.bin",
            "crc32 0x44000000 0x123456",
            // 256 KiB units: QEMU erases 256 KiB blocks though U-Boot reports 128 KiB.
            "erase 0x400000 +0x140000",
            "cp.b 0x44000000 0x400000 0x123456",
            "crc32 0x400000 0x123456",
        ])
    );
    assert_eq!(
        p.required_commands(),
        lines(&["tftpboot", "crc32", "erase", "cp"])
    );
    assert_eq!(p.steps[1].check, Check::Crc32 { crc: 0x1234_abcd });
    assert_eq!(p.steps[4].check, Check::Crc32 { crc: 0x1234_abcd });
    assert!(p.steps[..2].iter().all(|s| !s.phase.touches_flash()));
}

/// gl-ar750's flash map with a U-Boot that has `sf`. GL's own AR750
/// build has none (the command table of its shipped binary;
/// gl-ar750.toml, uboot.commands.absent), so its native plan is refused
/// and it is written through the mapping; the `sf` plan is checked on the
/// same map.
fn ar750_with_sf() -> Board {
    let mut b = board("gl-ar750");
    b.uboot.commands.absent.retain(|c| c != "sf");
    b
}

#[test]
fn spi_nor_golden_gl_ar750() {
    let b = ar750_with_sf();
    let p = plan(&b, &req(Target::Firmware, 0x12_3456));
    assert_eq!(
        p.commands(),
        lines(&[
            "sf probe 0",
            "tftpboot 0x80a00000 firmware.bin",
            "crc32 0x80a00000 0x123456",
            "sf erase 0x60000 0x130000",
            "sf write 0x80a00000 0x60000 0x123456",
            "sf read 0x80c00000 0x60000 0x123456",
            "crc32 0x80c00000 0x123456",
        ])
    );
    // The same chip through its KSEG0 mapping (old ath79 U-Boots have no sf).
    let mapped = FlashRequest {
        method: Method::Mapped,
        ..req(Target::Firmware, 0x12_3456)
    };
    let p = plan(&b, &mapped);
    assert_eq!(
        p.commands(),
        lines(&[
            "tftpboot 0x80a00000 firmware.bin",
            "crc32 0x80a00000 0x123456",
            "erase 0x9f060000 +0x130000",
            "cp.b 0x80a00000 0x9f060000 0x123456",
            "crc32 0x9f060000 0x123456",
        ])
    );
}

#[test]
fn nand_golden_fixture() {
    let b = board("fixture-nand");
    let p = plan(&b, &req(Target::Firmware, 0x12_3456));
    assert_eq!(
        p.commands(),
        lines(&[
            "tftpboot 0x48000000 firmware.bin",
            "crc32 0x48000000 0x123456",
            // page-aligned write: the tail of the last page is 0xff.
            "mw.b 0x48123456 0xff 0x3aa",
            // the whole partition: bad-block replacements must be blank too.
            "nand erase 0x380000 0x600000",
            "nand write 0x48000000 0x380000 0x123800",
            "nand read 0x48200000 0x380000 0x123800",
            "crc32 0x48200000 0x123456",
        ])
    );
    assert_eq!(p.write_len, 0x12_3800);
    assert!(p
        .steps
        .iter()
        .filter(|s| s.command.starts_with("nand"))
        .all(|s| s.check == Check::BadBlocks));
}

#[test]
fn ubi_golden_fixture() {
    let b = board("fixture-ubi");
    let r = FlashRequest {
        ubi_volume: Some("rootfs".into()),
        ..req(Target::Firmware, 0x12_3456)
    };
    let p = plan(&b, &r);
    assert_eq!(
        p.commands(),
        lines(&[
            "ubi part ubi",
            "tftpboot 0x48000000 firmware.bin",
            "crc32 0x48000000 0x123456",
            "ubi check rootfs",
            "ubi create rootfs 0x123456 dynamic",
            "ubi write 0x48000000 rootfs 0x123456",
            "ubi read 0x48200000 rootfs 0x123456",
            "crc32 0x48200000 0x123456",
        ])
    );
    assert_eq!(p.erase, None);
    assert!(matches!(p.steps[3].check, Check::CreateIfMissing { .. }));
}

#[test]
fn mtd_golden_fixture() {
    let b = board("fixture-nand");
    let r = FlashRequest {
        method: Method::Mtd {
            device: "spi-nand0".into(),
        },
        ..req(Target::Partition("kernel".into()), 0x4_0000)
    };
    let p = plan(&b, &r);
    assert_eq!(
        p.commands(),
        lines(&[
            "tftpboot 0x48000000 firmware.bin",
            "crc32 0x48000000 0x40000",
            "mtd erase spi-nand0 0x380000 0x40000",
            "mtd write spi-nand0 0x48000000 0x380000 0x40000",
            "mtd read spi-nand0 0x48100000 0x380000 0x40000",
            "crc32 0x48100000 0x40000",
        ])
    );
}

#[test]
fn backup_comes_before_the_load_and_covers_the_erase_region() {
    let b = board("qemu-aarch64");
    let r = backed_up("old.bin", BackupVia::Tftpput, 0x12_3456);
    let p = plan(&b, &r);
    assert_eq!(
        p.commands()[..2],
        lines(&[
            "crc32 0x400000 0x140000",
            "tftpput 0x400000 0x140000 old.bin"
        ])
    );
    let b = ar750_with_sf();
    let r = backed_up("old.bin", BackupVia::Console, 0x12_3456);
    let p = plan(&b, &r);
    assert_eq!(
        p.commands()[..4],
        lines(&[
            "sf probe 0",
            "sf read 0x80c00000 0x60000 0x130000",
            "crc32 0x80c00000 0x130000",
            "md.b 0x80c00000 0x130000",
        ])
    );
    let phases: Vec<Phase> = p.steps.iter().map(|s| s.phase).collect();
    let mut sorted = phases.clone();
    sorted.sort();
    assert_eq!(phases, sorted, "phases run in order");
}

#[test]
fn every_shipped_board_with_a_flash_map_plans_or_refuses_cleanly() {
    // No shipped board may yield a plan whose commands do not fit its CBSIZE.
    for (_, r) in Catalog::builtin().resolve_all() {
        let b = r.unwrap().board;
        let req = FlashRequest {
            ubi_volume: Some("rootfs".into()),
            ..req(Target::Firmware, 0x10_0000)
        };
        if let Ok(p) = FlashPlan::build(&b, &req) {
            assert_fits_cbsize(&b, &p);
        }
    }
}

// ---- refusals: each one before any command exists ----

#[test]
fn refuses_a_board_without_a_flash_map() {
    let mut b = board("qemu-aarch64");
    b.flash.partitions.clear();
    let e = refuse(&b, &req(Target::Firmware, 0x1000));
    assert!(matches!(e, PlanError::NoFlashMap { .. }), "{e}");
    assert!(e.to_string().contains("no flash map"));
}

#[test]
fn refuses_an_image_bigger_than_the_partition() {
    let b = board("qemu-aarch64");
    let e = refuse(&b, &req(Target::Firmware, 0x1C0_0001));
    assert!(matches!(e, PlanError::TooLarge { .. }), "{e}");
    assert!(
        e.to_string().contains("partition firmware holds 0x1c00000"),
        "{e}"
    );
}

#[test]
fn refuses_a_protected_target() {
    let b = board("qemu-aarch64");
    let e = refuse(&b, &req(Target::Partition("u-boot".into()), 0x1000));
    assert!(matches!(e, PlanError::Protected { .. }), "{e}");
    assert!(e.to_string().contains("boot loader"), "{e}");
}

#[test]
fn refuses_a_write_overlapping_u_boot() {
    // A partition map that puts "firmware" over U-Boot's area.
    let mut b = board("qemu-aarch64");
    firmware(&mut b).offset = 0x300000;
    let e = refuse(&b, &req(Target::Firmware, 0x20_0000));
    match &e {
        PlanError::OverlapsProtected { other, .. } => assert!(other.contains("u-boot"), "{e}"),
        _ => panic!("{e}"),
    }
}

#[test]
fn refuses_a_write_overlapping_the_environment() {
    let mut b = board("gl-ar750");
    // Env region not listed as a partition, only as flash.env.
    b.flash.partitions.retain(|p| p.name != "u-boot-env");
    let fw = firmware(&mut b);
    fw.offset = 0x40000;
    fw.size = 0xFC0000;
    let e = refuse(&b, &req(Target::Firmware, 0x1_0000));
    match &e {
        PlanError::OverlapsProtected { other, .. } => assert!(other.contains("environment"), "{e}"),
        _ => panic!("{e}"),
    }
}

#[test]
fn refuses_a_write_past_the_usable_area() {
    // qemu: U-Boot addresses only the first 32 MiB of each 64 MiB bank.
    let mut b = board("qemu-aarch64");
    let fw = firmware(&mut b);
    fw.size = 0x2000000;
    let e = refuse(&b, &req(Target::Firmware, 0x1E0_0000));
    assert!(matches!(e, PlanError::OutsideUsable { .. }), "{e}");
}

#[test]
fn refuses_a_write_past_the_device() {
    let mut b = board("gl-ar750");
    b.flash.size = Some(0x80_0000);
    let e = refuse(&b, &req(Target::Firmware, 0x80_0000));
    assert!(matches!(e, PlanError::PastDevice { .. }), "{e}");
}

#[test]
fn refuses_a_misaligned_partition() {
    let mut b = board("qemu-aarch64");
    firmware(&mut b).offset = 0x420000;
    let e = refuse(&b, &req(Target::Firmware, 0x1000));
    assert!(
        matches!(e, PlanError::Misaligned { unit: 0x40000, .. }),
        "{e}"
    );
}

#[test]
fn refuses_unknown_geometry() {
    let mut b = board("fixture-nand");
    b.flash.page_size = None;
    let e = refuse(&b, &req(Target::Firmware, 0x1000));
    assert!(e.to_string().contains("flash.page_size"), "{e}");
    let mut b = board("gl-ar750");
    b.flash.erase_block = None;
    let e = refuse(&b, &req(Target::Firmware, 0x1000));
    assert!(e.to_string().contains("flash.erase_block"), "{e}");
}

#[test]
fn refuses_raw_nand_into_ubi() {
    let b = board("fixture-nand");
    let e = refuse(&b, &req(Target::Partition("ubi".into()), 0x1000));
    assert!(matches!(e, PlanError::UbiManaged { .. }), "{e}");
    let mtd = FlashRequest {
        method: Method::Mtd {
            device: "spi-nand0".into(),
        },
        ..req(Target::Partition("ubi".into()), 0x1000)
    };
    let e = refuse(&board("fixture-ubi"), &mtd);
    assert!(
        matches!(e, PlanError::UbiManaged { ref how, .. } if how == "mtd"),
        "{e}"
    );
    // A partition that merely overlaps the UBI area.
    let mut b = board("fixture-nand");
    b.flash
        .partitions
        .iter_mut()
        .find(|p| p.name == "kernel")
        .unwrap()
        .size = 0x620000;
    let e = refuse(&b, &req(Target::Firmware, 0x1000));
    assert!(e.to_string().contains("overlaps UBI partition ubi"), "{e}");
}

#[test]
fn refuses_ubi_without_a_volume_or_on_a_non_ubi_partition() {
    let b = board("fixture-ubi");
    let e = refuse(&b, &req(Target::Firmware, 0x1000));
    assert!(matches!(e, PlanError::NoVolume { .. }), "{e}");
    let r = FlashRequest {
        ubi_volume: Some("rootfs".into()),
        ..req(Target::Partition("kernel".into()), 0x1000)
    };
    assert!(matches!(refuse(&b, &r), PlanError::NotUbi { .. }));
}

#[test]
fn refuses_unknown_partitions_and_emmc() {
    let b = board("qemu-aarch64");
    let e = refuse(&b, &req(Target::Partition("rootfs".into()), 0x1000));
    assert!(
        e.to_string().contains("firmware (firmware)"),
        "lists the choices: {e}"
    );
    let e = refuse(&board("turris-omnia"), &req(Target::Firmware, 0x1000));
    assert!(matches!(e, PlanError::Unsupported { .. }), "{e}");
}

#[test]
fn refuses_commands_longer_than_cbsize() {
    let mut b = board("qemu-aarch64");
    b.uboot.cbsize = Some(40);
    let e = refuse(&b, &req(Target::Firmware, 0x1000));
    assert!(matches!(e, PlanError::Command { .. }), "{e}");
    assert!(e.to_string().contains("CONFIG_SYS_CBSIZE 40"), "{e}");
}

#[test]
fn refuses_buffers_outside_ram() {
    let mut b = board("gl-ar750");
    b.ram.size = Some(0xC0_0000); // 12 MiB: the 10 MiB buffer start leaves too little
    let e = refuse(&b, &req(Target::Firmware, 0x40_0000));
    assert!(matches!(e, PlanError::Ram { .. }), "{e}");
}

#[test]
fn refuses_an_empty_image_and_a_ubi_backup() {
    let b = board("qemu-aarch64");
    assert!(matches!(
        refuse(&b, &req(Target::Firmware, 0)),
        PlanError::Empty { .. }
    ));
    let r = FlashRequest {
        ubi_volume: Some("rootfs".into()),
        backup: Some(Backup {
            file: "b".into(),
            via: BackupVia::Tftpput,
        }),
        ..req(Target::Firmware, 0x1000)
    };
    assert!(matches!(
        refuse(&board("fixture-ubi"), &r),
        PlanError::Backup { .. }
    ));
}

#[test]
fn failure_states_name_the_flash_contents_and_recovery() {
    let b = board("qemu-aarch64");
    let p = plan(&b, &req(Target::Firmware, 0x12_3456));
    let load = FlashState::after(Phase::Load).explain(&p, None);
    assert!(load.contains("untouched"), "{load}");
    let w = FlashState::after(Phase::Write).explain(&p, Some("old.bin"));
    assert!(w.contains("only partly written"), "{w}");
    assert!(w.contains("u-boot"), "names what stayed safe: {w}");
    assert!(w.contains("--image old.bin --partition firmware"), "{w}");
    let v = FlashState::after(Phase::Verify).explain(&p, None);
    assert!(v.contains("does not read back"), "{v}");
}

#[test]
fn gl_ar750_without_sf_is_told_to_use_the_mapping() {
    // GL's AR750 build has no `sf` (gl-ar750.toml, uboot.commands.absent).
    let b = board("gl-ar750");
    let e = refuse(&b, &req(Target::Firmware, 0x12_3456));
    let PlanError::MissingCommand {
        command,
        problem,
        help,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(command, "sf probe 0");
    assert!(problem.contains("no `sf` command"), "{problem}");
    assert!(help.contains("--method mapped"), "{help}");
    assert!(e.to_string().starts_with("board gl-ar750: "), "{e}");
    // ... and the mapped write, with crc32 and U-Boot's own cp.b, plans.
    let mapped = FlashRequest {
        method: Method::Mapped,
        ..req(Target::Firmware, 0x12_3456)
    };
    assert!(plan(&b, &mapped)
        .commands()
        .contains(&"cp.b 0x80a00000 0x9f060000 0x123456".to_string()));
    // The tftpput backup needs tftpput, which the build lacks.
    let r = FlashRequest {
        method: Method::Mapped,
        ..backed_up("old.bin", BackupVia::Tftpput, 0x12_3456)
    };
    let e = refuse(&b, &r);
    assert!(
        matches!(&e, PlanError::MissingCommand { help, .. } if help.contains("console")),
        "{e}"
    );
}

#[test]
fn gl_mt76xx_flash_plans_are_refused() {
    // GL's MT76xx builds: no crc32, and `cp` always programs flash
    // (gl-inet/uboot-source-for_mtk drivers/spi_flash.c,
    // drivers/spi_rt6855A_flash.c).
    for name in ["gl-mt300a", "gl-mt300n-v2"] {
        let b = board(name);
        let mapped = FlashRequest {
            method: Method::Mapped,
            ..req(Target::Firmware, 0x12_3456)
        };
        let e = refuse(&b, &mapped);
        assert!(
            matches!(&e, PlanError::MissingCommand { command, help, .. }
                if command.starts_with("crc32 ") && help.contains("does not flash what it cannot verify")),
            "{name}: {e}"
        );
        // A build with crc32 still never gets GL's cp.b.
        let mut with_crc = b.clone();
        with_crc.uboot.commands.absent.retain(|c| c != "crc32");
        let e = refuse(&with_crc, &mapped);
        match &e {
            PlanError::Trap {
                command, reason, ..
            } => {
                assert!(command.starts_with("cp.b 0x8"), "{command}");
                assert!(reason.contains("always programs the SPI flash"), "{reason}");
            }
            other => panic!("{name}: {other}"),
        }
        assert!(e.to_string().contains(&format!("board {name}: ")), "{e}");
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert!(help.contains("lmx never types it"), "{help}");
    }
}

#[test]
fn a_locked_prompt_refuses_the_flash_plan() {
    // Zyxel's console runs only its at* commands; without the wrapper
    // that gets a line through (uboot.commands.wrapper), a flash plan is
    // refused.
    let mut b = board("zyxel-nwa50ax");
    b.uboot.commands.wrapper = None;
    let r = FlashRequest {
        ubi_volume: Some("rootfs".into()),
        ..req(Target::Firmware, 0x10_0000)
    };
    let e = refuse(&b, &r);
    assert!(
        matches!(&e, PlanError::MissingCommand { problem, .. } if problem.contains("prompt refuses `ubi`")),
        "{e}"
    );
}
