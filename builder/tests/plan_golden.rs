//! Golden layouts and U-Boot command lists of the boot plan for the
//! virtual boards (the layouts that booted on the test bed,
//! docs/design/testbed.md) and for gl-ar750 with the dt-cmdline phram
//! recipe (KSEG0 loads, physical phram, no `mem=`), plus CBSIZE
//! splitting and the refusals.

use lmx_boards::{Board, Catalog, PhramMethod};
use lmx_builder::bootargs::{self, BootargsError, BootargsInput, PhramRegion};
use lmx_builder::layout::{KernelFacts, KernelRun, LayoutRequest, RamLayout, RegionKind};
use lmx_builder::plan::{
    BootPlan, BootVia, LoadCheck, PlanError, PlanInputs, PlannedFile, Step, Verification,
};

fn board(name: &str) -> Board {
    Catalog::builtin().resolve(name).unwrap().board
}

fn file(name: &str, size: u64, crc32: u32) -> PlannedFile {
    PlannedFile {
        file: name.into(),
        size,
        crc32,
    }
}

struct Case {
    board: Board,
    method: PhramMethod,
    kernel: KernelFacts,
    kernel_file: &'static str,
    rootfs: u64,
    dtb: Option<u64>,
    root: Option<&'static str>,
    append: Option<&'static str>,
}

fn plan(c: &Case) -> Result<BootPlan, String> {
    plan_with(c, false)
}

/// The plan as `lmx build` makes it: the verification the board allows
/// (`no_verify` as `--no-verify`); with bootm's check the kernel file is
/// the kernel+rootfs uImage.
fn plan_with(c: &Case, no_verify: bool) -> Result<BootPlan, String> {
    let offset = lmx_builder::uimage::trailer_offset(c.kernel.file_size as usize) as u64;
    let verification = Verification::choose(&c.board, no_verify, c.dtb.is_some(), false, offset)
        .map_err(|e| e.to_string())?;
    let mut req = LayoutRequest::new(c.rootfs, c.dtb, c.kernel);
    let covered = matches!(verification, Verification::BootmCovers { .. });
    req.kernel_below_rootfs = covered.then_some(offset);
    let layout = RamLayout::plan(&c.board, &req).map_err(|e| e.to_string())?;
    let r = layout.region(RegionKind::Rootfs).unwrap();
    let args = bootargs::compose(&BootargsInput {
        board: &c.board,
        method: c.method,
        rootfs: PhramRegion {
            start: r.phys,
            size: r.size,
            erase: layout.phram_erase,
        },
        root_device: c.root,
        append: c.append,
    })
    .map_err(|e| e.to_string())?;
    let kernel = if covered {
        file("kernel-rootfs.uimg", offset + c.rootfs, 0x4444_4444)
    } else {
        file(c.kernel_file, c.kernel.file_size, 0x1111_1111)
    };
    let inputs = PlanInputs {
        kernel,
        dtb: c.dtb.map(|d| file("board.dtb", d, 0x2222_2222)),
        rootfs: file("rootfs.squashfs", c.rootfs, 0x3333_3333),
        rootfs_unpacked: None,
        bootargs: args,
        ipaddr: c.board.network.ip,
        serverip: c.board.network.server_ip,
        verification,
    };
    BootPlan::new(&c.board, layout, c.method, &inputs).map_err(|e| e.to_string())
}

fn aarch64(rootfs: u64, append: Option<&'static str>) -> Case {
    Case {
        board: board("qemu-aarch64"),
        method: PhramMethod::Dt,
        kernel: KernelFacts {
            file_size: 5_000_000,
            run: KernelRun::InPlace { size: 5_600_000 },
            size_known: true,
        },
        kernel_file: "Image",
        rootfs,
        dtb: Some(0x2000),
        root: None,
        append,
    }
}

fn ar750(method: PhramMethod) -> Case {
    Case {
        board: board("gl-ar750"),
        method,
        kernel: KernelFacts {
            file_size: 2 << 20,
            run: KernelRun::Unpacked {
                load: 0x8006_0000,
                size: 5 << 20,
            },
            size_known: true,
        },
        kernel_file: "uImage",
        rootfs: 3 << 20,
        dtb: None,
        root: Some("/dev/mtdblock0"),
        append: None,
    }
}

#[test]
fn qemu_aarch64_golden_plan_is_the_verified_boot() {
    let p = plan(&aarch64(0xd_0000, None)).unwrap();
    assert_eq!(
        p.commands(),
        [
            "setenv ipaddr 192.168.77.2",
            "setenv serverip 192.168.77.1",
            "tftpboot 0x44000000 rootfs.squashfs",
            "tftpboot 0x440d0000 board.dtb",
            "tftpboot 0x40400000 Image",
            "setenv bootargs 'console=ttyAMA0,115200 root=/dev/mtdblock1 rootfstype=squashfs'",
            "booti 0x40400000 - 0x440d0000",
        ]
    );
    let rootfs = p.layout.region(RegionKind::Rootfs).unwrap();
    assert_eq!((rootfs.phys, rootfs.size), (0x4400_0000, 0xd_0000));
    let loads: Vec<_> = p
        .loads()
        .map(|l| (l.artifact.as_str(), l.addr, l.size, l.crc32))
        .collect();
    assert_eq!(
        loads,
        [
            ("rootfs", 0x4400_0000, 0xd_0000, 0x3333_3333),
            ("dtb", 0x440d_0000, 0x2000, 0x2222_2222),
            ("kernel", 0x4040_0000, 5_000_000, 0x1111_1111),
        ]
    );
    let first = p.loads().next().unwrap();
    assert_eq!(first.crc_command(), "crc32 0x44000000 ${filesize}");
    assert_eq!(first.filesize_hex(), "d0000");
    // The map names every region.
    let map = p.layout.to_string();
    for w in [
        "rootfs",
        "dtb",
        "kernel",
        "u-boot",
        "boot script",
        "0x44000000",
        "0x440d0000",
    ] {
        assert!(map.contains(w), "{w} missing from\n{map}");
    }
}

#[test]
fn qemu_armv7l_golden_plan() {
    let c = Case {
        board: board("qemu-armv7l"),
        method: PhramMethod::Dt,
        kernel: KernelFacts {
            file_size: 1_700_000,
            run: KernelRun::Zimage {
                decompressed: 6_800_000,
            },
            size_known: false,
        },
        kernel_file: "zImage",
        rootfs: 0xc_f000,
        dtb: Some(0x1_8000),
        root: None,
        append: Some("init=/init"),
    };
    let p = plan(&c).unwrap();
    assert_eq!(
        p.commands(),
        [
            "setenv ipaddr 192.168.77.2",
            "setenv serverip 192.168.77.1",
            "tftpboot 0x44000000 rootfs.squashfs",
            "tftpboot 0x440d0000 board.dtb",
            "tftpboot 0x40400000 zImage",
            "setenv bootargs 'console=ttyAMA0,115200 root=/dev/mtdblock1 rootfstype=squashfs init=/init'",
            "bootz 0x40400000 - 0x440d0000",
        ]
    );
    // The decompressed kernel (0x40008000..) and the relocated zImage are
    // one span that the DTB stays out of.
    let k = p.layout.region(RegionKind::Kernel).unwrap();
    assert_eq!(k.phys, 0x4000_8000);
    assert!(k.end() > 0x405b_0000 && k.end() < 0x4400_0000);
}

#[test]
fn gl_ar750_golden_plan_keeps_all_ram_with_dt_cmdline() {
    // The recipe of Liminix's tftpboot output: phram.phram= and mtdparts=
    // on the command line (the no-map node is in the appended DTB, which
    // this plan-level test does not build), and no mem=.
    let p = plan(&ar750(PhramMethod::DtCmdline)).unwrap();
    assert_eq!(
        p.commands(),
        [
            "setenv ipaddr 192.168.1.1",
            "setenv serverip 192.168.1.2",
            "tftpboot 0x80a00000 rootfs.squashfs",
            "tftpboot 0x80600000 uImage",
            "setenv bootargs 'console=ttyS0,115200 phram.phram=phram0,0xa00000,0x300000,65536 mtdparts=phram0:0x300000(rootfs) root=/dev/mtdblock0'",
            "bootm 0x80600000",
        ]
    );
    // GL's build is hush (CFG_HUSH_PARSER) with a 512-byte buffer.
    assert!(p.dialect.hush);
    assert!(p.dialect.cbsize_known);
    assert_eq!(p.dialect.cbsize, 512);
    let k = p.layout.region(RegionKind::Kernel).unwrap();
    assert_eq!((k.phys, k.uboot), (0x6_0000, Some(0x8006_0000)));
}

#[test]
fn gl_ar750_cmdline_would_starve_the_kernel_and_is_refused() {
    // mem= would end at the rootfs (10 MiB); the 5 MiB kernel from
    // 0x60000 would leave Linux under 5 MiB.
    let e = plan(&ar750(PhramMethod::Cmdline)).unwrap_err();
    assert!(e.contains("gives Linux 0xa00000 bytes"), "{e}");
    assert!(e.contains("less than the 0x1000000"), "{e}");
}

#[test]
fn gl_ar750_memmap_golden_plan() {
    let p = plan(&ar750(PhramMethod::Memmap)).unwrap();
    let line = p
        .commands()
        .into_iter()
        .find(|c| c.starts_with("setenv bootargs"))
        .unwrap();
    assert_eq!(
        line,
        "setenv bootargs 'console=ttyS0,115200 mem=128M memmap=3M$0xa00000 phram.phram=phram0,0xa00000,0x300000,65536 mtdparts=phram0:0x300000(rootfs) root=/dev/mtdblock0'"
    );
}

/// The big-endian MIPS twin with a kernel the size of the test bed's
/// 6.1 malta build (an LZMA uImage of about 2 MiB that unpacks to 6 MiB).
fn malta(name: &str, method: PhramMethod) -> Case {
    Case {
        board: board(name),
        method,
        kernel: KernelFacts {
            file_size: 2 << 20,
            run: KernelRun::Unpacked {
                load: 0x8010_0000,
                size: 6 << 20,
            },
            size_known: true,
        },
        kernel_file: "uImage",
        rootfs: 1 << 20,
        dtb: None,
        root: None,
        append: None,
    }
}

#[test]
fn qemu_mips_golden_plan_is_the_verified_malta_boot() {
    // docs/design/testbed.md, the MIPS twins: rootfs at KSEG0 0x8A000000,
    // mem=160M, phram at physical 0xA000000, 1 MiB, erase 65536. The
    // uImage is staged right above the unpacked kernel's span
    // (0x100000 + 6 MiB), 1 MiB aligned.
    for name in ["qemu-mips", "qemu-mipsel", "qemu-mipsel-stock"] {
        let p = plan(&malta(name, PhramMethod::Cmdline)).unwrap();
        assert_eq!(
            p.commands(),
            [
                "setenv ipaddr 192.168.77.2",
                "setenv serverip 192.168.77.1",
                "tftpboot 0x8a000000 rootfs.squashfs",
                "tftpboot 0x80700000 uImage",
                "setenv bootargs 'console=ttyS0,115200 mem=160M phram.phram=phram0,0xa000000,0x100000,65536 mtdparts=phram0:0x100000(rootfs) root=/dev/mtdblock0 rootfstype=squashfs'",
                "bootm 0x80700000",
            ],
            "{name}"
        );
        assert!(p.dialect.hush);
        let k = p.layout.region(RegionKind::Kernel).unwrap();
        assert_eq!((k.phys, k.uboot), (0x10_0000, Some(0x8010_0000)));
        let r = p.layout.region(RegionKind::Rootfs).unwrap();
        assert_eq!((r.phys, r.uboot), (0x0A00_0000, Some(0x8A00_0000)));
    }
}

#[test]
fn qemu_mips_memmap_is_single_quoted_so_hush_keeps_the_dollar() {
    let p = plan(&malta("qemu-mips", PhramMethod::Memmap)).unwrap();
    let line = p
        .commands()
        .into_iter()
        .find(|c| c.starts_with("setenv bootargs"))
        .unwrap();
    assert_eq!(
        line,
        "setenv bootargs 'console=ttyS0,115200 mem=256M memmap=1M$0xa000000 phram.phram=phram0,0xa000000,0x100000,65536 mtdparts=phram0:0x100000(rootfs) root=/dev/mtdblock0 rootfstype=squashfs'"
    );
}

#[test]
fn qemu_mips_refuses_a_kernel_reaching_the_rootfs() {
    // 170 MiB unpacked from 0x100000 runs past mem=160M into the rootfs.
    let mut c = malta("qemu-mips", PhramMethod::Cmdline);
    c.kernel.run = KernelRun::Unpacked {
        load: 0x8010_0000,
        size: 170 << 20,
    };
    let e = plan(&c).unwrap_err();
    assert!(e.contains("rootfs"), "{e}");
    let mut c = malta("qemu-mips", PhramMethod::Cmdline);
    c.append = Some("mem=256M");
    let e = plan(&c).unwrap_err();
    assert!(
        e.contains("mem=256M") && e.contains("covers the rootfs"),
        "{e}"
    );
}

#[test]
fn cmdline_refuses_a_kernel_above_the_mem_limit() {
    let mut c = ar750(PhramMethod::Cmdline);
    c.kernel.run = KernelRun::Unpacked {
        load: 0x8100_0000,
        size: 5 << 20,
    };
    let e = plan(&c).unwrap_err();
    assert!(
        e.contains("mem= the kernel's memory ends at the rootfs"),
        "{e}"
    );
}

#[test]
fn cmdline_refuses_a_user_mem_that_covers_the_rootfs() {
    let mut c = ar750(PhramMethod::Cmdline);
    c.append = Some("mem=64M");
    let e = plan(&c).unwrap_err();
    assert!(e.contains("covers the rootfs"), "{e}");
}

#[test]
fn memmap_is_refused_on_arm() {
    let mut c = aarch64(0xd_0000, None);
    c.method = PhramMethod::Memmap;
    assert!(plan(&c)
        .unwrap_err()
        .contains("not a kernel parameter on aarch64"));
}

#[test]
fn kernel_overlapping_rootfs_prints_the_map() {
    let mut c = ar750(PhramMethod::Cmdline);
    c.kernel.run = KernelRun::Unpacked {
        load: 0x8006_0000,
        size: 12 << 20,
    };
    let e = plan(&c).unwrap_err();
    assert!(e.contains("overlaps the rootfs region"), "{e}");
    assert!(e.contains("u-boot addr") && e.contains("0x80a00000"), "{e}");
}

#[test]
fn long_bootargs_are_split_within_cbsize() {
    let append: &'static str = Box::leak(
        (0..60)
            .map(|i| format!("lmx.test{i}=value{i}"))
            .collect::<Vec<_>>()
            .join(" ")
            .into_boxed_str(),
    );
    let p = plan(&aarch64(0xd_0000, Some(append))).unwrap();
    let lines: Vec<String> = p
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Setenv { name, commands, .. } if name == "bootargs" => Some(commands.clone()),
            _ => None,
        })
        .unwrap();
    assert!(lines.len() >= 3, "{lines:#?}");
    assert!(lines.iter().all(|l| l.len() < 512));
    assert!(lines[0].starts_with("setenv bootargs 'console=ttyAMA0,115200 "));
    assert!(lines[1].starts_with("setenv bootargs \"${bootargs}\"' "));
    assert!(p.bootargs.len() > 1000);
}

#[test]
fn long_bootargs_on_a_simple_parser_are_refused() {
    let append: &'static str = Box::leak(
        (0..20)
            .map(|i| format!("lmx.test{i}=value{i}"))
            .collect::<Vec<_>>()
            .join(" ")
            .into_boxed_str(),
    );
    // A simple-parser U-Boot of unknown CBSIZE (256 assumed): quotes are
    // not special there, so a value with spaces cannot be split safely.
    let mut c = ar750(PhramMethod::DtCmdline);
    c.board.uboot.cbsize = None;
    c.board.uboot.quotes_special = Some(false);
    c.board.uboot.braces_required = Some(true);
    c.board.uboot.exit_status = None;
    c.append = Some(append);
    let e = plan(&c).unwrap_err();
    assert!(e.contains("CBSIZE 256"), "{e}");
}

#[test]
fn missing_root_device_and_phram_method_are_named() {
    // A board file that leaves both unknown.
    let mut b = board("gl-ar750");
    b.ram_boot.phram = None;
    b.ram_boot.root_device = None;
    assert!(matches!(
        bootargs::phram_method(&b, None),
        Err(BootargsError::NoPhramMethod { .. })
    ));
    let e = bootargs::compose(&BootargsInput {
        board: &b,
        method: PhramMethod::Cmdline,
        rootfs: PhramRegion {
            start: 0xa0_0000,
            size: 0x10_0000,
            erase: 0x1_0000,
        },
        root_device: None,
        append: None,
    })
    .unwrap_err();
    assert!(matches!(e, BootargsError::NoRootDevice { .. }));
}

#[test]
fn plan_error_types_are_exported() {
    // PlanError is part of the public API that tftpboot matches on.
    let e: PlanError = PlanError::MissingRegion("dtb");
    assert_eq!(e.to_string(), "the layout has no dtb region");
}

fn mt76xx(name: &str) -> Case {
    Case {
        board: board(name),
        method: PhramMethod::DtCmdline,
        kernel: KernelFacts {
            file_size: 2 << 20,
            run: KernelRun::Unpacked {
                load: 0x8000_0000,
                size: 5 << 20,
            },
            size_known: true,
        },
        kernel_file: "uImage",
        rootfs: 3 << 20,
        dtb: None,
        root: Some("/dev/mtdblock0"),
        append: None,
    }
}

#[test]
fn gl_mt76xx_plans_verify_through_bootm_and_boot_without_run() {
    // GL's MT76xx U-Boots have no crc32 (gl-inet/uboot-source-for_mtk
    // common/cmd_mem.c l.900-916; not in the MT300N-V2 binary) and their
    // `run` is a flash helper: one kernel+rootfs uImage, checked by bootm,
    // and the boot command typed directly.
    for name in ["gl-mt300a", "gl-mt300n-v2"] {
        let p = plan(&mt76xx(name)).unwrap();
        let loads: Vec<_> = p.loads().collect();
        assert_eq!(loads.len(), 1, "{loads:?}");
        let l = loads[0];
        assert_eq!(l.artifact, "kernel+rootfs");
        assert_eq!(l.check, LoadCheck::BootmDataCrc);
        // The rootfs bytes of the file land exactly on the rootfs region.
        let offset = lmx_builder::uimage::trailer_offset(2 << 20) as u64;
        let r = p.layout.region(RegionKind::Rootfs).unwrap();
        assert_eq!(l.phys + offset, r.phys);
        assert_eq!(p.boot_via, BootVia::Direct);
        let sent = p.sent_commands();
        assert!(
            !sent
                .iter()
                .any(|c| c.starts_with("crc32") || c.starts_with("run")),
            "{sent:?}"
        );
        assert!(sent.contains(&"setenv verify y".to_string()), "{sent:?}");
        assert_eq!(sent.last().unwrap(), &format!("bootm {:#x}", l.addr));
        let text = p.render();
        assert!(
            text.contains("every byte by bootm's uImage data CRC"),
            "{text}"
        );
        assert!(text.contains("typed as the last line"), "{text}");
    }
}

#[test]
fn without_crc32_a_separate_dtb_needs_no_verify() {
    // bootm's check covers one file; a separately loaded DTB would go
    // unchecked, so the plan is refused unless the user accepts sizes only.
    let mut c = mt76xx("gl-mt300n-v2");
    c.dtb = Some(20_000);
    let e = plan(&c).unwrap_err();
    assert!(e.contains("cannot verify loads"), "{e}");
    assert!(e.contains("--append-dtb"), "{e}");
    assert!(e.contains("--no-verify"), "{e}");
    let p = plan_with(&c, true).unwrap();
    assert!(p.loads().all(|l| l.check == LoadCheck::SizeOnly));
    assert!(p.render().contains("CONTENT NOT VERIFIED (--no-verify)"));
    // A non-LZMA kernel cannot carry the rootfs past bootm either.
    let mut c = mt76xx("gl-mt300n-v2");
    c.board.kernel.format = lmx_boards::KernelFormat::Uimage;
    let e = plan(&c).unwrap_err();
    assert!(e.contains("only for an LZMA legacy uImage kernel"), "{e}");
}

#[test]
fn gls_run_is_never_typed_even_with_crc32() {
    // A build with crc32 still has GL's flash-writing `run`: the boot is
    // typed directly, and a hand-made plan through `run lmxboot` is refused.
    let mut c = mt76xx("gl-mt300n-v2");
    c.board.uboot.commands.absent.retain(|n| n != "crc32");
    let mut p = plan(&c).unwrap();
    assert_eq!(p.boot_via, BootVia::Direct);
    assert!(p.loads().all(|l| l.check == LoadCheck::Crc32));
    p.boot_via = BootVia::Run;
    let e = p.check_commands(&c.board).unwrap_err().to_string();
    assert!(e.contains("`run lmxboot` is a trap on this U-Boot"), "{e}");
    assert!(e.contains("spi_rt6855A_flash.c"), "{e}");
}

#[test]
fn gl_ar750_boots_through_its_own_run_and_crc32() {
    let p = plan(&ar750(PhramMethod::DtCmdline)).unwrap();
    let sent = p.sent_commands();
    assert!(sent.contains(&"crc32 0x80a00000 ${filesize}".to_string()));
    assert_eq!(sent.last().unwrap(), "run lmxboot");
    assert_eq!(sent[sent.len() - 2], "setenv lmxboot bootm 0x80600000");
}

#[test]
fn a_locked_prompt_refuses_the_plan() {
    // Zyxel's console runs only its at* commands (zyxel-nwa50ax.toml,
    // uboot.commands.restricted); the same facts on the AR750's plan,
    // without the wrapper that gets past them:
    let mut c = ar750(PhramMethod::DtCmdline);
    let zyxel = board("zyxel-nwa50ax");
    c.board.uboot.commands = zyxel.uboot.commands.clone();
    c.board.uboot.commands.wrapper = None;
    let e = plan(&c).unwrap_err();
    assert!(
        e.contains("needs `setenv ipaddr 192.168.1.1`, but this U-Boot's prompt refuses `setenv`"),
        "{e}"
    );
    assert!(e.contains("eng_debug"), "{e}");
    assert!(e.contains("uboot.commands.wrapper"), "{e}");
}

fn zyxel(append: Option<&'static str>) -> Case {
    let mut b = board("zyxel-nwa50ax");
    b.network.ip = Some("192.168.1.2".parse().unwrap());
    b.network.server_ip = Some("192.168.1.103".parse().unwrap());
    Case {
        board: b,
        method: PhramMethod::DtCmdline,
        kernel: KernelFacts {
            file_size: 3 << 20,
            run: KernelRun::Unpacked {
                load: 0x8000_1000,
                size: 8 << 20,
            },
            size_known: true,
        },
        kernel_file: "kernel.itb",
        rootfs: 6 << 20,
        dtb: None,
        root: None,
        append,
    }
}

#[test]
fn zyxel_plans_through_its_wrapper_within_the_wrapped_limit() {
    // With uboot.commands.wrapper the restricted prompt no longer refuses
    // the plan: the console types each line through `atns`.
    let p = plan(&zyxel(None)).unwrap();
    let sent = p.sent_commands();
    assert_eq!(sent[0], "setenv ipaddr 192.168.1.2");
    assert!(sent.iter().any(|l| l.starts_with("crc32 0x82000000")));
    assert_eq!(sent.last().unwrap(), "run lmxboot");
    // The limit is the wrapper's: 255 bytes of `setenv serverip
    // ${serverip}; LINE; lmxNNNNNN` (the readline's 254 leave more).
    assert_eq!(p.dialect.max_line(), 255 - 29 - 11);
    assert!(p.dialect.wrap.is_some());
    // A long command line is split so that every line fits once quoted
    // for the wrapper (its quotes cost 4 bytes each), which the console
    // checks the same way.
    let long = "liminix fw_devlink=off loglevel=8 ubi.mtd=ubi rootfstype=ubifs panic=10 oops=panic init=/bin/init console=ttyS0,115200 earlycon=uart8250,mmio32,0xbe000c00 mtdparts=nmbm0:512k(u-boot),512k(u-boot-env),512k(factory),40m(firmware)";
    let p = plan(&zyxel(Some(long))).unwrap();
    let commands = p.commands();
    let lines: Vec<&String> = commands
        .iter()
        .filter(|l| l.starts_with("setenv bootargs"))
        .collect();
    assert!(lines.len() > 1, "{lines:?}");
    let d = lmx_console::Dialect::from_board(&zyxel(None).board).unwrap();
    let m = lmx_console::ShellMachine::new(d, lmx_console::Pacing::default());
    for l in &lines {
        assert!(p.dialect.cost(l) <= p.dialect.max_line(), "{l}");
        m.check(l).unwrap_or_else(|e| panic!("{l}: {e}"));
    }
    // Without the wrapper the same board is refused for its prompt.
    let mut c = zyxel(None);
    c.board.uboot.commands.wrapper = None;
    let e = plan(&c).unwrap_err();
    assert!(e.contains("uboot.commands.restricted"), "{e}");
}

#[test]
fn an_lzmadec_rootfs_is_refused_where_lzmadec_is_absent() {
    use lmx_boards::CommandProblem;
    use lmx_builder::plan::PlanError;
    let c = ar750(PhramMethod::DtCmdline);
    let mut req = LayoutRequest::new(c.rootfs, None, c.kernel);
    req.rootfs_staged = Some(1 << 20);
    let layout = RamLayout::plan(&c.board, &req).unwrap();
    let r = layout.region(RegionKind::Rootfs).unwrap();
    let args = format!(
        "console=ttyS0,115200 phram.phram=phram0,{:#x},{:#x},65536 root=/dev/mtdblock0",
        r.phys, r.size
    );
    let inputs = PlanInputs {
        kernel: file("uImage", c.kernel.file_size, 1),
        dtb: None,
        rootfs: file("rootfs.squashfs.lzma", 1 << 20, 2),
        rootfs_unpacked: Some((c.rootfs, 3)),
        bootargs: args,
        ipaddr: None,
        serverip: None,
        verification: Verification::Crc32,
    };
    // GL's AR750 binary has no lzmadec (gl-ar750.toml, uboot.commands.absent).
    let e = BootPlan::new(&c.board, layout, c.method, &inputs).unwrap_err();
    match &e {
        PlanError::Command {
            problem, command, ..
        } => {
            assert_eq!(
                problem.as_ref(),
                &CommandProblem::Absent {
                    name: "lzmadec".into()
                }
            );
            assert!(command.starts_with("lzmadec 0x8"), "{command}");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("send it uncompressed"), "{e}");
}
