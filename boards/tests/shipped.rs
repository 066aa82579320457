//! The board files this crate ships: all valid, all embedded, and
//! faithful to the public sources their comments cite.

use std::path::PathBuf;

use lmx_boards::{
    builtin, render, AddressError, Arch, Board, Catalog, Endian, FlashKind, KernelFormat, Layer,
    LayerKind, PhramMethod, Source,
};

const SHIPPED: &[&str] = &[
    "belkin-rt3200",
    "gl-ar750",
    "gl-mt300a",
    "gl-mt300n-v2",
    "openwrt-one",
    "qemu-aarch64",
    "qemu-aarch64-mt7622",
    "qemu-armv7l",
    "qemu-mips",
    "qemu-mips-ar750",
    "qemu-mipsel",
    "qemu-mipsel-mt300",
    "qemu-mipsel-stock",
    "tp-archer-ax23",
    "turris-omnia",
    "zyxel-nwa50ax",
];

fn board(name: &str) -> Board {
    Catalog::builtin()
        .resolve(name)
        .unwrap_or_else(|e| panic!("{name}: {e:#?}"))
        .board
}

#[test]
fn every_shipped_board_validates() {
    let all = Catalog::builtin().resolve_all();
    let names: Vec<&str> = all.iter().map(|(e, _)| e.name.as_str()).collect();
    assert_eq!(names, SHIPPED);
    for (entry, result) in all {
        let r = result.unwrap_or_else(|e| panic!("{}: {e:#?}", entry.name));
        assert_eq!(r.board.name, entry.name);
        assert_eq!(
            r.source,
            Source::BuiltIn(
                builtin::FILES
                    .iter()
                    .find(|f| f.name == entry.name && !f.family)
                    .unwrap()
                    .path
            )
        );
    }
}

#[test]
fn builtin_list_matches_the_directory() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let layer = Layer::from_dir(LayerKind::CurrentDir, &dir);
    let mut on_disk: Vec<(String, bool)> = layer
        .docs
        .iter()
        .map(|d| (d.name.clone(), d.kind == lmx_boards::DocKind::Family))
        .collect();
    let mut embedded: Vec<(String, bool)> = builtin::FILES
        .iter()
        .map(|f| (f.name.to_string(), f.family))
        .collect();
    on_disk.sort();
    embedded.sort();
    assert_eq!(on_disk, embedded, "add new board files to src/builtin.rs");
    // The crate directory works as a `./boards/` layer and gives the same boards.
    let from_dir = Catalog {
        layers: vec![layer],
    };
    for name in SHIPPED {
        let a = from_dir.resolve(name).unwrap();
        assert!(matches!(a.source, Source::File(_)));
        assert_eq!(a.board, board(name));
    }
}

#[test]
fn serialize_then_parse_gives_the_same_board() {
    for name in SHIPPED {
        let b = board(name);
        let plain = b.to_toml_string();
        assert_eq!(Board::from_toml_str("plain", &plain).unwrap(), b, "{name}");
        let hex = render::to_toml_hex(&b);
        assert_eq!(
            Board::from_toml_str("hex", &hex).unwrap(),
            b,
            "{name}\n{hex}"
        );
        let json = serde_json::to_string(&b).unwrap();
        let back: Board = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b, "{name}");
    }
}

#[test]
fn gl_ar750_facts() {
    let b = board("gl-ar750");
    assert_eq!(b.cpu.arch, Arch::Mips);
    assert_eq!(b.cpu.endian, Endian::Big);
    assert_eq!(b.ram.size, Some(128 << 20));
    assert_eq!(b.kernel.format, KernelFormat::UimageLzma);
    assert_eq!(b.kernel.load, Some(0x8006_0000));
    assert!(b.kernel.append_dtb);
    assert_eq!(b.ram_boot.rootfs, Some(0x00A0_0000));
    assert_eq!(b.flash.kind, FlashKind::SpiNor);
    assert_eq!(b.flash.erase_block, Some(0x10000));
    let fw: Vec<_> = b.flash.firmware().collect();
    assert_eq!(fw.len(), 1);
    assert_eq!(
        b.flash_uboot_addr(fw[0].offset).unwrap().unwrap(),
        0x9F06_0000
    );
    assert_eq!(fw[0].size, 0xFA_0000);
    let protected: Vec<&str> = b.flash.protected().map(|p| p.name.as_str()).collect();
    assert!(protected.contains(&"art") && protected.contains(&"u-boot"));
    assert_eq!(b.flash.root_device.as_deref(), Some("/dev/mtdblock5"));
    assert_eq!(b.console.kernel_name, "ttyS0");
    assert_eq!(b.console.baud, 115200);
    // GL's U-Boot 1.1.4 (gl-inet/uboot-for-qca95xx): hush, CFG_CBSIZE 512,
    // keyed autoboot "gl", ipaddr/serverip from board953x.h.
    assert_eq!(b.uboot.cbsize, Some(512));
    assert_eq!(
        (b.uboot.quotes_special, b.uboot.braces_required),
        (Some(true), Some(false))
    );
    assert_eq!(
        (b.uboot.echo, b.uboot.exit_status),
        (Some(true), Some(true))
    );
    assert!(
        matches!(b.uboot.interrupt, Some(lmx_boards::Interrupt::String { ref string }) if string == "gl")
    );
    assert_eq!(b.uboot.bootdelay, Some(2));
    assert_eq!((b.uboot.lzma, b.uboot.lzmadec), (Some(true), Some(false)));
    assert_eq!(b.network.ip, Some("192.168.1.1".parse().unwrap()));
    assert_eq!(b.network.server_ip, Some("192.168.1.2".parse().unwrap()));
    // Unknown facts stay unknown.
    assert_eq!(b.ram.uboot, None);
    assert_eq!(b.network.prefix_len, None);
}

#[test]
fn ramips_flash_goes_through_kseg1() {
    for (name, size) in [("gl-mt300a", 0xF8_0000), ("gl-mt300n-v2", 0xFB_0000)] {
        let b = board(name);
        let fw = b.flash.firmware().next().unwrap();
        assert_eq!(
            b.flash_uboot_addr(fw.offset).unwrap().unwrap(),
            0xBC05_0000,
            "{name}"
        );
        assert_eq!(fw.size, size);
        assert_eq!(b.cpu.endian, Endian::Little);
        // GL's builds are keyed with "gl" and never offer the Ralink menu
        // (gl-inet/uboot-source-for_mtk include/configs/rt2880.h l.98-100,
        // lib_mips/board.c l.1976).
        assert!(
            matches!(b.uboot.interrupt, Some(lmx_boards::Interrupt::String { ref string }) if string == "gl"),
            "{name}"
        );
        assert_eq!(
            b.uboot.autoboot.as_deref(),
            Some("type 'gl' to run U-Boot console")
        );
        assert_eq!(b.uboot.cbsize, Some(256), "{name}: CFG_CBSIZE");
        assert_eq!(
            (b.uboot.echo, b.uboot.exit_status),
            (Some(false), Some(false))
        );
        assert_eq!(b.uboot.quotes_special, Some(false));
        assert_eq!(b.network.server_ip, Some("192.168.1.2".parse().unwrap()));
    }
    let prompt = |n: &str| regex::Regex::new(&board(n).uboot.prompt).unwrap();
    assert!(prompt("gl-mt300a").is_match("MT7620 # "));
    assert!(prompt("gl-mt300n-v2").is_match("MT7628 # "));
    assert_eq!(board("gl-mt300n-v2").ram_boot.rootfs, Some(0x0140_0000));
}

#[test]
fn address_mapping_refuses_what_it_does_not_cover() {
    let b = board("gl-ar750");
    assert_eq!(b.to_uboot_addr(0x00A0_0000), Ok(0x80A0_0000));
    assert_eq!(b.to_phys(0x80A0_0000), Ok(0x00A0_0000));
    assert_eq!(b.to_phys(0xA0A0_0000), Ok(0x00A0_0000));
    assert_eq!(
        b.address_map.to_uboot_addr_via("kseg1", 0x1C00_0000),
        Ok(0xBC00_0000)
    );
    assert_eq!(
        b.to_phys(0x00A0_0000),
        Err(AddressError::UBootUnmapped(0x00A0_0000))
    );
    assert_eq!(
        b.to_uboot_addr(0x2000_0000),
        Err(AddressError::PhysUnmapped(0x2000_0000))
    );
    assert!(matches!(
        b.address_map.to_uboot_addr_via("kseg2", 0),
        Err(AddressError::NoSuchWindow(_))
    ));
    let q = board("qemu-aarch64");
    assert_eq!(q.to_uboot_addr(0x4400_0000), Ok(0x4400_0000));
}

#[test]
fn mips_twins_facts() {
    for (name, endian, prompt) in [
        ("qemu-mips", Endian::Big, "^malta # "),
        ("qemu-mipsel", Endian::Little, "^maltael # "),
        ("qemu-mipsel-stock", Endian::Little, "^maltael # "),
    ] {
        let b = board(name);
        assert!(b.is_virtual, "{name}");
        assert_eq!(b.cpu.arch, Arch::Mips);
        assert_eq!(b.cpu.endian, endian, "{name}");
        assert_eq!(b.uboot.prompt, prompt, "{name}");
        assert_eq!(b.uboot.cbsize, Some(256), "{name}: CONFIG_SYS_CBSIZE");
        assert_eq!(b.kernel.load, Some(0x8010_0000));
        assert_eq!(b.kernel.entry, None, "{name}: the entry comes from the ELF");
        assert_eq!(b.ram_boot.phram, Some(PhramMethod::Cmdline));
        assert_eq!(b.ram_boot.rootfs, Some(0x0A00_0000));
        assert_eq!(b.to_uboot_addr(0x0A00_0000), Ok(0x8A00_0000));
        // The malta flash: U-Boot's CONFIG_SYS_FLASH_BASE is KSEG1.
        assert_eq!(b.flash_uboot_addr(0).unwrap().unwrap(), 0xBE00_0000);
        let env = b.flash.env.as_ref().unwrap();
        assert_eq!((env.offset, env.size), (0x3E_0000, Some(0x2_0000)));
        assert_eq!(env.endian, Some(endian));
        let fw = b.flash.firmware().next().unwrap();
        assert_eq!((fw.offset, fw.offset + fw.size), (0x8_0000, 0x3E_0000));
        let q = b.qemu.as_ref().unwrap();
        assert_eq!(
            (q.machine.as_str(), q.cpu.as_str(), q.nic.as_str()),
            ("malta", "24Kc", "pcnet")
        );
        assert_eq!(q.memory_mib as u64, b.ram.size.unwrap() >> 20);
    }
    let stock = board("qemu-mipsel-stock");
    assert_eq!(stock.kernel.format, KernelFormat::UimageGzip);
    assert_eq!(
        (stock.uboot.lzma, stock.uboot.lzmadec),
        (Some(false), Some(false))
    );
    assert!(stock.qemu.as_ref().unwrap().firmware_word_swap);
    assert!(
        board("qemu-mipsel")
            .qemu
            .as_ref()
            .unwrap()
            .firmware_word_swap
    );
    assert_eq!(
        stock.qemu.as_ref().unwrap().firmware,
        "/usr/lib/u-boot/maltael/u-boot.bin"
    );
    let be = board("qemu-mips");
    assert_eq!(be.kernel.format, KernelFormat::UimageLzma);
    assert_eq!(be.uboot.lzma, Some(true));
    assert!(!be.qemu.as_ref().unwrap().firmware_word_swap);
    assert_eq!(be.qemu.as_ref().unwrap().binary, "qemu-system-mips");
}

#[test]
fn ram_addresses_take_only_the_ram_window() {
    let b = board("qemu-mips");
    assert_eq!(b.address_map.ram_to_phys(0x8010_0000), Ok(0x0010_0000));
    assert_eq!(
        b.address_map.ram_to_phys(0xA010_0000),
        Err(AddressError::WrongWindow {
            addr: 0xA010_0000,
            window: "kseg1".into(),
            expected: "kseg0".into(),
            instead: 0x8010_0000,
        })
    );
    assert_eq!(
        b.address_map.ram_to_phys(0x0010_0000),
        Err(AddressError::PhysicalGiven {
            addr: 0x0010_0000,
            window: "kseg0".into(),
            instead: 0x8010_0000,
        })
    );
    assert_eq!(
        b.address_map.ram_to_phys(0xC000_0000),
        Err(AddressError::UBootUnmapped(0xC000_0000))
    );
    let msg = b
        .address_map
        .ram_to_phys(0xA010_0000)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("kseg1") && msg.contains("0x80100000"), "{msg}");
    // ARM: one identity window, nothing to confuse.
    let q = board("qemu-aarch64");
    assert_eq!(q.address_map.ram_to_phys(0x4040_0000), Ok(0x4040_0000));
}

#[test]
fn unknown_facts_are_absent() {
    let ax23 = board("tp-archer-ax23");
    // The Liminix load address 0x86400000 is KSEG0: physical 0x06400000.
    assert_eq!(ax23.to_uboot_addr(0x0640_0000), Ok(0x8640_0000));
    assert_eq!(ax23.flash.root_device.as_deref(), Some("/dev/mtdblock3"));
    // Nothing settles these for the TP-Link boot loader.
    assert_eq!(ax23.flash.env, None);
    assert_eq!(ax23.network.ip, None);
    assert_eq!((ax23.uboot.cbsize, ax23.uboot.bootdelay), (None, None));
    assert_eq!(ax23.ram.uboot, None);
    let nwa = board("zyxel-nwa50ax");
    assert_eq!(nwa.flash.kind, FlashKind::Ubi);
    // Every command but the `at*` ones is refused at its prompt: unknown.
    assert_eq!((nwa.uboot.echo, nwa.uboot.exit_status), (None, None));
    assert_eq!(nwa.network.ip, None);
    for name in ["belkin-rt3200", "openwrt-one"] {
        let b = board(name);
        assert_eq!(b.cpu.arch, Arch::Aarch64);
        assert_eq!(b.flash.env, None, "{name}");
        assert_eq!((b.uboot.bootdelay, b.uboot.cbsize), (None, None), "{name}");
    }
    assert_eq!(board("belkin-rt3200").ram_boot.hardware_watchdog_ms, None);
    let omnia = board("turris-omnia");
    assert_eq!(omnia.boot_command(), "bootz");
    assert!(omnia.ram_boot.compressed_rootfs);
    assert_eq!(omnia.uboot.lzmadec, Some(true));
    assert_eq!(omnia.flash.kind, FlashKind::Emmc);
    assert!(omnia.flash.partitions.is_empty());
}

#[test]
fn virtual_boards_say_how_to_start_them() {
    let a = board("qemu-aarch64");
    assert!(a.is_virtual);
    let q = a.qemu.as_ref().unwrap();
    assert_eq!(q.binary, "qemu-system-aarch64");
    assert_eq!(
        (q.machine.as_str(), q.cpu.as_str(), q.memory_mib),
        ("virt", "cortex-a57", 512)
    );
    assert_eq!(q.firmware, "/usr/lib/u-boot/qemu_arm64/u-boot.bin");
    assert_eq!(q.nic, "virtio-net-pci");
    assert_eq!(
        (q.pflash_banks, q.pflash_bank_size),
        (Some(2), Some(0x400_0000))
    );
    assert_eq!(a.kernel.format, KernelFormat::Image);
    assert_eq!(a.boot_command(), "booti");
    assert_eq!(a.kernel.load, Some(0x4040_0000));
    assert_eq!(a.ram.base, 0x4000_0000);
    assert_eq!(a.ram.size, Some(512 << 20));
    assert_eq!(a.ram_boot.rootfs, Some(0x4400_0000));
    assert_eq!(a.ram_boot.phram, Some(PhramMethod::Dt));
    assert_eq!(a.console.kernel_name, "ttyAMA0");
    assert_eq!(a.uboot.prompt, "^=> ");
    assert_eq!(a.uboot.cbsize, Some(512));
    assert_eq!(a.uboot.tftp_blocksize, Some(1468));
    assert_eq!(a.network.server_ip, Some("192.168.77.1".parse().unwrap()));
    assert_eq!(a.network.ip, Some("192.168.77.2".parse().unwrap()));
    let env = a.flash.env.as_ref().unwrap();
    assert_eq!(
        (env.offset, env.size, env.redundant_offset),
        (0x400_0000, Some(0x40000), None)
    );
    assert_eq!(env.endian, Some(Endian::Little));
    assert_eq!(a.flash.erase_block, Some(0x40000));
    assert_eq!(a.flash.usable.len(), 2);

    let v7 = board("qemu-armv7l");
    assert_eq!(v7.cpu.arch, Arch::Armv7l);
    assert_eq!(v7.boot_command(), "bootz");
    let q = v7.qemu.as_ref().unwrap();
    assert_eq!(q.binary, "qemu-system-arm");
    assert_eq!(q.cpu, "cortex-a15");
    assert_eq!(q.firmware, "/usr/lib/u-boot/qemu_arm/u-boot.bin");
    assert_eq!(v7.ram_boot.root_device.as_deref(), Some("/dev/mtdblock1"));

    for b in [&a, &v7] {
        let prompt = regex::Regex::new(&b.uboot.prompt).unwrap();
        assert!(prompt.is_match("=> "));
        assert!(!prompt.is_match("crc32 for 40400000 ... 40ba11ff ==> 9a9dc62e"));
    }
}

#[test]
fn real_boards_are_not_virtual() {
    for name in SHIPPED.iter().filter(|n| !n.starts_with("qemu-")) {
        let b = board(name);
        assert!(!b.is_virtual && b.qemu.is_none(), "{name}");
    }
}

#[test]
fn from_toml_str_checks_the_schema_version() {
    let text = board("qemu-armv7l")
        .to_toml_string()
        .replace("schema = 1", "schema = 7");
    let errs = Board::from_toml_str("x.toml", &text).unwrap_err();
    assert_eq!(errs.errors[0].rule, lmx_boards::Rule::SchemaVersion);
    assert_eq!(errs.errors[0].to_string(), "x.toml: `schema`: schema version 7 is not supported (this lmx reads version 1) [schema-version]");
}

/// One real board's cited facts, written down from the sources named in
/// its board file (not read back from the file).
struct Cited {
    name: &'static str,
    ram: u64,
    format: KernelFormat,
    /// kernel.load and kernel.entry (U-Boot addresses).
    load: u64,
    /// ram_boot.rootfs (physical).
    rootfs: u64,
    flash_size: Option<u64>,
    erase_block: Option<u64>,
    /// (name, offset, size) of every protected partition.
    protected: &'static [(&'static str, u64, u64)],
    env: Option<Env>,
}

/// flash.env: (offset, size, redundant offset, CRC byte order).
type Env = (u64, Option<u64>, Option<u64>, Option<Endian>);

const MIB: u64 = 1 << 20;

const REAL_BOARDS: &[Cited] = &[
    // telent/liminix devices/gl-ar750/default.nix; openwrt/openwrt
    // target/linux/ath79/dts/qca9531_glinet_gl-ar750.dts and image/Makefile;
    // gl-inet/uboot-for-qca95xx src/include/configs/board953x.h.
    Cited {
        name: "gl-ar750",
        ram: 128 * MIB,
        format: KernelFormat::UimageLzma,
        load: 0x8006_0000,
        rootfs: 0x00A0_0000,
        flash_size: Some(16 * MIB),
        erase_block: Some(0x1_0000),
        protected: &[
            ("u-boot", 0x0, 0x4_0000),
            ("u-boot-env", 0x4_0000, 0x1_0000),
            ("art", 0x5_0000, 0x1_0000),
        ],
        env: Some((0x4_0000, Some(0x1_0000), None, Some(Endian::Big))),
    },
    // telent/liminix devices/gl-mt300a/default.nix; openwrt/openwrt
    // target/linux/ramips/dts/mt7620a_glinet_gl-mt300a.dts;
    // gl-inet/uboot-source-for_mtk README.md, include/configs/rt2880.h.
    Cited {
        name: "gl-mt300a",
        ram: 128 * MIB,
        format: KernelFormat::UimageLzma,
        load: 0x8000_0000,
        rootfs: 0x00A0_0000,
        flash_size: Some(16 * MIB),
        erase_block: Some(0x1_0000),
        protected: &[
            ("u-boot", 0x0, 0x3_0000),
            ("u-boot-env", 0x3_0000, 0x1_0000),
            ("factory", 0x4_0000, 0x1_0000),
            ("unassigned", 0xFD_0000, 0x2_0000),
            ("art", 0xFF_0000, 0x1_0000),
        ],
        env: Some((0x3_0000, Some(0x1000), None, Some(Endian::Little))),
    },
    // telent/liminix devices/gl-mt300n-v2/default.nix; openwrt/openwrt
    // target/linux/ramips/dts/mt7628an_glinet_gl-mt300n-v2.dts;
    // gl-inet/uboot-source-for_mtk README.md, include/configs/rt2880.h.
    Cited {
        name: "gl-mt300n-v2",
        ram: 128 * MIB,
        format: KernelFormat::UimageLzma,
        load: 0x8000_0000,
        rootfs: 0x0140_0000,
        flash_size: Some(16 * MIB),
        erase_block: Some(0x1_0000),
        protected: &[
            ("u-boot", 0x0, 0x3_0000),
            ("u-boot-env", 0x3_0000, 0x1_0000),
            ("factory", 0x4_0000, 0x1_0000),
        ],
        env: Some((0x3_0000, Some(0x1000), None, Some(Endian::Little))),
    },
    // telent/liminix devices/tp-archer-ax23/default.nix; openwrt/openwrt
    // target/linux/ramips/dts/mt7621_tplink_archer-ax23-v1.dts,
    // image/mt7621.mk and image/Makefile (loadaddr 0x80001000).
    Cited {
        name: "tp-archer-ax23",
        ram: 128 * MIB,
        format: KernelFormat::UimageLzma,
        load: 0x8000_1000,
        rootfs: 0x0640_0000,
        flash_size: Some(16 * MIB),
        erase_block: Some(0x1_0000),
        protected: &[
            ("u-boot", 0x0, 0x4_0000),
            ("config", 0xFA_0000, 0x1_0000),
            ("tplink", 0xFB_0000, 0x4_0000),
            ("radio", 0xFF_0000, 0x1_0000),
        ],
        env: None,
    },
    // telent/liminix devices/zyxel-nwa50ax/default.nix; openwrt/openwrt
    // target/linux/ramips/dts/mt7621_zyxel_nwa-ax.dtsi;
    // RaitoBezarius/uboot-nwa50ax configs/mt7621_nand_ax_rfb_defconfig;
    // the NWA50AX boot log on community.zyxel.com (DRAM, NAND size).
    Cited {
        name: "zyxel-nwa50ax",
        ram: 256 * MIB,
        format: KernelFormat::Fit,
        load: 0x8000_1000,
        rootfs: 0x0200_0000,
        flash_size: Some(128 * MIB),
        erase_block: Some(0x2_0000),
        protected: &[
            ("u-boot", 0x0, 0x8_0000),
            ("u-boot-env", 0x8_0000, 0x8_0000),
            ("factory", 0x10_0000, 0x8_0000),
            ("zy_firmware_1", 0x298_0000, 0x280_0000),
            ("zy_rootfs_data", 0x518_0000, 0x140_0000),
            ("zy_logs", 0x658_0000, 0xD0_0000),
            ("myzyxel", 0x728_0000, 0x48_0000),
            ("bootconfig", 0x770_0000, 0x8_0000),
            ("mrd", 0x778_0000, 0x8_0000),
        ],
        env: Some((0x8_0000, Some(0x2_0000), None, Some(Endian::Little))),
    },
    // telent/liminix devices/belkin-rt3200/default.nix; openwrt/openwrt
    // target/linux/mediatek/dts/mt7622-linksys-e8450-ubi.dts.
    Cited {
        name: "belkin-rt3200",
        ram: 512 * MIB,
        format: KernelFormat::Fit,
        load: 0x4200_0000,
        rootfs: 0x4800_0000,
        flash_size: Some(128 * MIB),
        erase_block: Some(0x2_0000),
        protected: &[
            ("bl2", 0x0, 0x8_0000),
            ("fip", 0x8_0000, 0x14_0000),
            ("factory", 0x1C_0000, 0x10_0000),
            ("reserved", 0x2C_0000, 0x4_0000),
        ],
        env: None,
    },
    // telent/liminix devices/openwrt-one/default.nix; openwrt/openwrt
    // target/linux/mediatek/dts/mt7981b-openwrt-one.dts.
    Cited {
        name: "openwrt-one",
        ram: 1024 * MIB,
        format: KernelFormat::Fit,
        load: 0x4400_0000,
        rootfs: 0x5000_0000,
        flash_size: Some(256 * MIB),
        erase_block: Some(0x2_0000),
        protected: &[("bl2", 0x0, 0x10_0000)],
        env: None,
    },
    // telent/liminix devices/turris-omnia/default.nix; torvalds/linux
    // arch/arm/boot/dts/marvell/armada-385-turris-omnia.dts. The eMMC's
    // size and table are not settled; the boot loader is on the NOR.
    Cited {
        name: "turris-omnia",
        ram: 1024 * MIB,
        format: KernelFormat::Zimage,
        load: 0x0080_0000,
        rootfs: 0x0170_0000,
        flash_size: None,
        erase_block: None,
        protected: &[],
        env: None,
    },
];

#[test]
fn real_boards_match_their_cited_sources() {
    let real: Vec<&str> = SHIPPED
        .iter()
        .copied()
        .filter(|n| !n.starts_with("qemu-"))
        .collect();
    let mut cited: Vec<&str> = REAL_BOARDS.iter().map(|c| c.name).collect();
    cited.sort();
    assert_eq!(cited, real, "every real board has a cited row");

    for c in REAL_BOARDS {
        let b = board(c.name);
        let n = c.name;
        assert_eq!(b.ram.size, Some(c.ram), "{n}: ram.size");
        assert_eq!(b.kernel.format, c.format, "{n}: kernel.format");
        assert_eq!(b.kernel.load, Some(c.load), "{n}: kernel.load");
        assert_eq!(b.kernel.entry, Some(c.load), "{n}: kernel.entry");
        assert_eq!(b.ram_boot.rootfs, Some(c.rootfs), "{n}: ram_boot.rootfs");
        // Liminix's tftpboot recipe (telent/liminix modules/outputs/tftpboot.nix).
        assert_eq!(b.ram_boot.phram, Some(PhramMethod::DtCmdline), "{n}");
        assert_eq!(
            b.ram_boot.root_device.as_deref(),
            Some("/dev/mtdblock0"),
            "{n}"
        );
        assert_eq!(b.flash.size, c.flash_size, "{n}: flash.size");
        assert_eq!(b.flash.erase_block, c.erase_block, "{n}: flash.erase_block");
        let mut protected: Vec<(&str, u64, u64)> = b
            .flash
            .protected()
            .map(|p| (p.name.as_str(), p.offset, p.size))
            .collect();
        protected.sort();
        let mut want = c.protected.to_vec();
        want.sort();
        assert_eq!(protected, want, "{n}: protected partitions");
        let env = b
            .flash
            .env
            .as_ref()
            .map(|e| (e.offset, e.size, e.redundant_offset, e.endian));
        assert_eq!(env, c.env, "{n}: flash.env");
        // The kernel addresses are U-Boot addresses inside RAM, the rootfs
        // is physical and inside RAM.
        let load_phys = b.address_map.ram_to_phys(c.load).unwrap();
        assert!(b.ram.contains(load_phys), "{n}");
        assert!(b.ram.contains(c.rootfs), "{n}");
    }

    // The MIPS uImage boards' U-Boots cannot pass a DTB: it is appended.
    for n in ["gl-ar750", "gl-mt300a", "gl-mt300n-v2", "tp-archer-ax23"] {
        assert!(board(n).kernel.append_dtb, "{n}");
    }
    // Liminix commandLineDtbNode for the Zyxel.
    assert_eq!(
        board("zyxel-nwa50ax").kernel.dt_bootargs.as_deref(),
        Some("bootargs-override")
    );
    // OpenWrt's mt7981b-openwrt-one.dts: gpio-watchdog, 25 s, always running.
    assert_eq!(
        board("openwrt-one").ram_boot.hardware_watchdog_ms,
        Some(25000)
    );
    // Prompts, anchored at the start of the line.
    for (n, seen) in [
        ("belkin-rt3200", "MT7622> "),
        ("openwrt-one", "OpenWrt One> "),
        ("gl-ar750", "ath> "),
        ("zyxel-nwa50ax", "=> "),
    ] {
        let re = regex::Regex::new(&board(n).uboot.prompt).unwrap();
        assert!(re.is_match(seen), "{n}");
        assert!(!re.is_match(&format!("x {seen}")), "{n}: not anchored");
    }
}

#[test]
fn command_inventories_and_traps_follow_the_vendor_sources() {
    use lmx_boards::{Availability, CommandProblem, Inventory};
    // GL's MT76xx builds: no crc32/echo; run, cp and erase are GL's own
    // flash helpers (gl-inet/uboot-source-for_mtk drivers/spi_flash.c,
    // drivers/spi_rt6855A_flash.c).
    for name in ["gl-mt300a", "gl-mt300n-v2"] {
        let b = board(name);
        assert_eq!(b.uboot.maxargs, Some(16), "{name}: CFG_MAXARGS");
        let inv = Inventory::of(&b.uboot);
        for cmd in ["crc32", "echo", "sf", "lzmadec", "source"] {
            assert_eq!(inv.availability(cmd), Availability::Absent, "{name}: {cmd}");
        }
        for line in [
            "run lmxboot",
            "run lu",
            "cp.b 0x80a00000 0x80c00000 0x100",
            "erase uboot",
            "erase all",
        ] {
            assert!(
                matches!(inv.check(line, false), Err(CommandProblem::Trap { .. })),
                "{name}: {line}"
            );
        }
        // Flash erases by address are GL's documented form, not a trap.
        assert!(inv.trap("erase 0xbc050000 +0x10000", false).is_none());
        assert_eq!(
            inv.check("crc32 0x80a00000 ${filesize}", false),
            Err(CommandProblem::Absent {
                name: "crc32".into()
            })
        );
    }
    // GL's AR750 build: crc32 and echo, autoscr instead of source, no
    // lzmadec, no sf; run is U-Boot's, but GL's update scripts lu/lf/lc
    // rewrite flash.
    let b = board("gl-ar750");
    let inv = Inventory::of(&b.uboot);
    assert_eq!(b.uboot.maxargs, Some(16));
    assert_eq!(inv.availability("crc32"), Availability::Present);
    assert_eq!(inv.availability("autoscr"), Availability::Present);
    for cmd in ["source", "lzmadec", "sf", "tftpput"] {
        assert_eq!(inv.availability(cmd), Availability::Absent, "{cmd}");
    }
    assert!(inv.check("run lmxboot", true).is_ok());
    for line in ["run lu", "run lf", "run lc"] {
        assert!(inv.check(line, true).is_err(), "{line}");
    }
    assert!(inv.check("cp.b 0x80a00000 0x9f060000 0x10", true).is_ok());
    // Zyxel's console runs only its at* commands, and lmx types every
    // line through `atns`, which runs `setenv serverip %s` from a 256-byte
    // buffer (RaitoBezarius/uboot-nwa50ax board/ralink/common/cmd_at.c
    // l.66-80): so nothing is refused for the restriction itself.
    let b = board("zyxel-nwa50ax");
    let w = b.uboot.commands.wrapper.clone().expect("zyxel's wrapper");
    assert_eq!(
        (w.command.as_str(), w.runs.as_str(), w.buffer),
        ("atns", "setenv serverip %s", 256)
    );
    assert!(b.uboot.commands.restricted.is_some());
    let mut inv = Inventory::of(&b.uboot);
    assert!(inv.check("setenv ipaddr 192.168.1.1", true).is_ok());
    assert!(inv.check("atns 192.168.1.2", true).is_ok());
    // Without the wrapper the same facts refuse it.
    inv.wrapper = None;
    assert!(matches!(
        inv.check("setenv ipaddr 192.168.1.1", true),
        Err(CommandProblem::Restricted { .. })
    ));
    // The line limit counts the wrapper: its 255-byte line holds
    // `setenv serverip ${serverip}; ` and the 11-byte marker.
    let limit = lmx_boards::LineLimit::of(&b.uboot);
    assert_eq!(limit.body_max(), 255 - 29 - 11);
    assert!(matches!(
        inv.check("atnz", true),
        Err(CommandProblem::Trap { .. })
    ));
    assert_eq!(board("turris-omnia").uboot.maxargs, Some(32));
    // What no source settles stays unknown.
    for name in ["tp-archer-ax23", "belkin-rt3200", "openwrt-one"] {
        let b = board(name);
        assert_eq!(b.uboot.maxargs, None, "{name}");
        assert!(b.uboot.commands.is_empty(), "{name}");
        assert!(b.uboot.traps.is_empty(), "{name}");
    }
}

/// The vendor-dialect twins: each board file states the dialect its test
/// bed U-Boot is configured for, and says so in the same words as the
/// fragment `testbed/uboot.sh BUILD` adds (`testbed/uboot/BUILD.config`):
/// prompt, autoboot, delay, parser, CBSIZE, MAXARGS, and the commands the
/// real board lacks.
#[test]
fn vendor_twins_state_the_dialect_of_their_uboot_build() {
    use lmx_boards::{Availability, Interrupt, Inventory};
    struct Twin {
        name: &'static str,
        extends: &'static str,
        real: &'static str,
        build: &'static str,
        prompt: &'static str,
    }
    let twins = [
        Twin {
            name: "qemu-mips-ar750",
            extends: "qemu-mips",
            real: "gl-ar750",
            build: "ar750",
            prompt: "ath> ",
        },
        Twin {
            name: "qemu-mipsel-mt300",
            extends: "qemu-mipsel",
            real: "gl-mt300n-v2",
            build: "mt300",
            prompt: "MT7628 # ",
        },
        Twin {
            name: "qemu-aarch64-mt7622",
            extends: "qemu-aarch64",
            real: "belkin-rt3200",
            build: "mt7622",
            prompt: "MT7622> ",
        },
    ];
    let fragments = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testbed/uboot");
    for t in twins {
        let n = t.name;
        let b = board(n);
        let base = board(t.extends);
        let real = board(t.real);
        let text = std::fs::read_to_string(fragments.join(format!("{}.config", t.build)))
            .unwrap_or_else(|e| panic!("{n}: testbed/uboot/{}.config: {e}", t.build));
        // `CONFIG_X=V` as the fragment writes it, or None when it turns
        // X off or leaves it to the defconfig.
        let set = |key: &str| -> Option<String> {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("CONFIG_{key}=")))
                .map(|v| v.trim_matches('"').to_string())
        };
        let off = |key: &str| {
            text.lines()
                .any(|l| l == format!("# CONFIG_{key} is not set"))
        };

        assert!(b.is_virtual, "{n}");
        let q = b.qemu.as_ref().unwrap();
        assert_eq!(q.uboot_build.as_deref(), Some(t.build), "{n}");
        assert_eq!(q.firmware, "u-boot.bin", "{n}");
        // The machine is the plain twin's, and so are the kernel and the
        // RAM boot.
        assert_eq!(
            b.qemu.as_ref().unwrap().machine,
            base.qemu.as_ref().unwrap().machine
        );
        assert_eq!(
            (b.cpu.arch, b.cpu.endian),
            (base.cpu.arch, base.cpu.endian),
            "{n}"
        );
        assert_eq!(
            (b.cpu.arch, b.cpu.endian),
            (real.cpu.arch, real.cpu.endian),
            "{n}"
        );
        assert_eq!(b.kernel, base.kernel, "{n}");
        assert_eq!(b.ram_boot, base.ram_boot, "{n}");
        assert_eq!(b.flash, base.flash, "{n}");

        // The prompt: the fragment's, and the real board's.
        assert_eq!(set("SYS_PROMPT").as_deref(), Some(t.prompt), "{n}");
        for re in [&b.uboot.prompt, &real.uboot.prompt] {
            let re = regex::Regex::new(re).unwrap();
            assert!(re.is_match(t.prompt), "{n}: {re}");
        }
        assert_eq!(b.uboot.version.as_deref(), Some("2023.01"), "{n}");
        // Autoboot: the delay and the way to stop it.
        let delay = b.uboot.bootdelay.expect("the twin states its bootdelay");
        assert_eq!(set("BOOTDELAY"), Some(delay.to_string()), "{n}");
        match &b.uboot.interrupt {
            Some(Interrupt::String { string }) => {
                assert_eq!(
                    set("AUTOBOOT_STOP_STR").as_deref(),
                    Some(string.as_str()),
                    "{n}"
                );
                assert_eq!(set("AUTOBOOT_KEYED").as_deref(), Some("y"), "{n}");
                let text = b.uboot.autoboot.as_deref().unwrap();
                assert!(set("AUTOBOOT_PROMPT").unwrap().contains(text), "{n}");
                assert_eq!(real.uboot.interrupt, b.uboot.interrupt, "{n}");
                assert_eq!(real.uboot.bootdelay, Some(delay), "{n}");
            }
            Some(Interrupt::AnyKey { .. }) => {
                assert_eq!(set("AUTOBOOT_KEYED"), None, "{n}");
                assert_eq!(delay, 0, "{n}: the zero-delay twin");
            }
            other => panic!("{n}: {other:?}"),
        }
        // The parser and the line limits.
        let hush = set("HUSH_PARSER").as_deref() == Some("y");
        assert_eq!(
            hush,
            !off("HUSH_PARSER"),
            "{n}: the fragment decides the parser"
        );
        assert_eq!(b.uboot.exit_status, Some(hush), "{n}");
        assert_eq!(b.uboot.quotes_special, Some(hush), "{n}");
        assert_eq!(b.uboot.braces_required, Some(!hush), "{n}");
        assert_eq!(
            set("SYS_CBSIZE"),
            b.uboot.cbsize.map(|c| c.to_string()),
            "{n}"
        );
        assert_eq!(
            set("SYS_MAXARGS"),
            b.uboot.maxargs.map(|c| c.to_string()),
            "{n}"
        );
        // The commands the fragment turns off are absent, and echo's flag
        // agrees.
        let inv = Inventory::of(&b.uboot);
        for (key, cmd) in [
            ("CMD_CRC32", "crc32"),
            ("CMD_ECHO", "echo"),
            ("CMD_RUN", "run"),
            ("CMD_LZMADEC", "lzmadec"),
            ("CMD_SF", "sf"),
            ("CMD_TFTPPUT", "tftpput"),
        ] {
            if off(key) {
                assert_eq!(inv.availability(cmd), Availability::Absent, "{n}: {cmd}");
            } else if set(key).as_deref() == Some("y") {
                assert_eq!(inv.availability(cmd), Availability::Present, "{n}: {cmd}");
            }
        }
        assert_eq!(
            b.uboot.echo,
            Some(inv.availability("echo") == Availability::Present),
            "{n}"
        );
        // What the twin has that lmx needs from a real board's list.
        for cmd in [
            "bootm", "tftpboot", "printenv", "setenv", "saveenv", "erase",
        ] {
            assert_eq!(inv.availability(cmd), Availability::Present, "{n}: {cmd}");
        }
        // The real board's missing checking commands are missing on the twin.
        let real_inv = Inventory::of(&real.uboot);
        for cmd in ["crc32", "echo", "lzmadec", "sf", "tftpput"] {
            if real_inv.availability(cmd) == Availability::Absent {
                assert_eq!(inv.availability(cmd), Availability::Absent, "{n}: {cmd}");
            }
        }
    }
    // The twin-specific facts the task is about.
    let mt300 = board("qemu-mipsel-mt300");
    let inv = Inventory::of(&mt300.uboot);
    for cmd in ["crc32", "echo", "run"] {
        assert_eq!(inv.availability(cmd), Availability::Absent, "{cmd}");
    }
    assert_eq!(
        (mt300.uboot.echo, mt300.uboot.exit_status),
        (Some(false), Some(false))
    );
    assert!(mt300.qemu.as_ref().unwrap().firmware_word_swap);
    let mt7622 = board("qemu-aarch64-mt7622");
    assert_eq!(
        (mt7622.uboot.bootdelay, mt7622.uboot.maxargs),
        (Some(0), Some(8))
    );
    let ar750 = board("qemu-mips-ar750");
    assert_eq!(
        (ar750.uboot.cbsize, ar750.uboot.lzma, ar750.uboot.lzmadec),
        (Some(512), Some(true), Some(false))
    );
}
