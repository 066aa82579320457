//! The board files this crate ships: all valid, all embedded, and
//! faithful to the facts in the design notes.

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
    "qemu-armv7l",
    "qemu-mips",
    "qemu-mipsel",
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
    // Unknown facts stay unknown.
    assert_eq!(b.ram.uboot, None);
    assert_eq!(b.uboot.cbsize, None);
    assert_eq!(b.network.ip, None);
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
        assert!(
            matches!(b.uboot.interrupt, Some(lmx_boards::Interrupt::Menu { ref choice }) if choice == "4")
        );
    }
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
    assert_eq!(ax23.ram.size, None);
    assert_eq!(ax23.kernel.format, KernelFormat::Fit);
    assert_eq!(ax23.kernel.load, Some(0x8000_1000));
    assert_eq!(ax23.ram_boot.rootfs, Some(0x0640_0000));
    assert_eq!(ax23.to_uboot_addr(0x0640_0000), Ok(0x8640_0000));
    assert_eq!(ax23.flash.root_device.as_deref(), Some("/dev/mtdblock3"));
    let nwa = board("zyxel-nwa50ax");
    assert_eq!(nwa.ram_boot.rootfs, None);
    assert_eq!(nwa.flash.kind, FlashKind::Ubi);
    for name in ["belkin-rt3200", "openwrt-one"] {
        let b = board(name);
        assert_eq!(b.cpu.arch, Arch::Aarch64);
        assert_eq!(b.kernel.load, None, "{name}: FIT carries its own");
    }
    assert_eq!(board("belkin-rt3200").ram_boot.rootfs, Some(0x4800_0000));
    assert_eq!(board("openwrt-one").ram_boot.rootfs, Some(0x5000_0000));
    let omnia = board("turris-omnia");
    assert_eq!(omnia.boot_command(), "bootz");
    assert!(omnia.ram_boot.compressed_rootfs);
    assert_eq!(omnia.ram_boot.rootfs, Some(0x0170_0000));
    assert_eq!(omnia.flash.kind, FlashKind::Emmc);
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
