//! The RAM boot of the virtual board as verified in
//! `docs/design/testbed.md` ("The sequence that booted"): where the rootfs, DTB and kernel go, the
//! kernel command line, and the device-tree edits, as values.
//!
//! This is the test bed's fixed layout, for proving the board boots; the
//! general RAM layout planner and boot plan belong to `lmx-builder` and
//! `lmx tftpboot`.
//!
//! Layout (RAM at 0x40000000, 512 MiB):
//! - kernel at 0x40400000 (`kernel_addr_r`);
//! - rootfs at 0x44000000, its phram region rounded up to 64 KiB;
//! - DTB right above the rootfs region.

use lmx_builder::dtedit::{PhramReservation, Status};
use lmx_builder::fdt::Fdt;

use crate::{Arch, Result};

/// Granularity of the phram region (the erase size given to phram).
pub const PHRAM_ERASE: u64 = 0x10000;

/// How the kernel is told about the rootfs in RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhramMethod {
    /// The recipe verified first: the `/reserved-memory` node *and*
    /// `phram.phram=` plus `mtdparts=` on the command line. Two MTD
    /// devices map the same RAM; the command-line one's `rootfs`
    /// partition is `mtd2`.
    DtAndCmdline,
    /// Only the `/reserved-memory` node, with `label = "rootfs"`: Linux
    /// 6.1 creates exactly one phram device from it, `mtd1`.
    DtLabel,
}

/// Addresses and sizes of one RAM boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamBootLayout {
    /// Architecture (boot command).
    pub arch: Arch,
    /// How the phram device is created (and so which root device).
    pub phram: PhramMethod,
    /// Where the kernel image is loaded and started.
    pub kernel_addr: u64,
    /// Where the rootfs is loaded (the phram start).
    pub rootfs_addr: u64,
    /// Size of the phram region: the rootfs rounded up to [`PHRAM_ERASE`].
    pub rootfs_region: u64,
    /// Where the DTB is loaded.
    pub dtb_addr: u64,
}

impl RamBootLayout {
    /// The verified layout for a rootfs of `rootfs_len` bytes, with
    /// [`PhramMethod::DtAndCmdline`].
    pub fn new(arch: Arch, rootfs_len: u64) -> RamBootLayout {
        let rootfs_addr = 0x4400_0000;
        let rootfs_region = rootfs_len.div_ceil(PHRAM_ERASE).max(1) * PHRAM_ERASE;
        RamBootLayout {
            arch,
            phram: PhramMethod::DtAndCmdline,
            kernel_addr: 0x4040_0000,
            rootfs_addr,
            rootfs_region,
            dtb_addr: rootfs_addr + rootfs_region,
        }
    }

    /// The same layout with another [`PhramMethod`].
    pub fn with_phram(self, phram: PhramMethod) -> RamBootLayout {
        RamBootLayout { phram, ..self }
    }

    /// The root block device (the CFI flash is `mtd0`, see [`PhramMethod`]).
    pub fn root_device(&self) -> &'static str {
        match self.phram {
            PhramMethod::DtAndCmdline => "/dev/mtdblock2",
            PhramMethod::DtLabel => "/dev/mtdblock1",
        }
    }

    /// The kernel command line (`/chosen/bootargs`).
    pub fn bootargs(&self) -> String {
        let (start, size) = (self.rootfs_addr, self.rootfs_region);
        let phram = match self.phram {
            PhramMethod::DtAndCmdline => format!(
                "phram.phram=phram0,{start:#x},{size:#x},{PHRAM_ERASE} mtdparts=phram0:{size:#x}(rootfs) "
            ),
            PhramMethod::DtLabel => String::new(),
        };
        format!(
            "console=ttyAMA0,115200 {phram}root={} rootfstype=squashfs init=/init",
            self.root_device()
        )
    }

    /// The U-Boot command that boots the loaded kernel with the DTB
    /// (`booti` for arm64 `Image`, `bootz` for arm `zImage`).
    pub fn boot_command(&self) -> String {
        format!(
            "{} {:#x} - {:#x}",
            self.arch.boot_command(),
            self.kernel_addr,
            self.dtb_addr
        )
    }

    /// Edits QEMU's `virt` device tree (as dumped by [`crate::dump_dtb`])
    /// for this boot: the pl061 GPIO disabled when present (this kernel
    /// oopses in `amba_read_periphid` on it), the phram reservation, and
    /// [`RamBootLayout::bootargs`].
    pub fn patch_dtb(&self, dtb: &[u8]) -> Result<Vec<u8>> {
        let mut fdt = Fdt::parse(dtb)?;
        let gpio: Vec<String> = fdt
            .root
            .children
            .iter()
            .filter(|n| n.name.starts_with("pl061@"))
            .map(|n| format!("/{}", n.name))
            .collect();
        for path in gpio {
            fdt.set_status(&path, Status::Disabled)?;
        }
        fdt.add_phram_reservation(&PhramReservation {
            start: self.rootfs_addr,
            size: self.rootfs_region,
            label: (self.phram == PhramMethod::DtLabel).then(|| "rootfs".to_owned()),
        })?;
        fdt.set_bootargs(&self.bootargs());
        Ok(fdt.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_verified_run() {
        let l = RamBootLayout::new(Arch::Aarch64, 0xc_f000);
        assert_eq!(l.rootfs_region, 0xd_0000);
        assert_eq!(l.dtb_addr, 0x440d_0000);
        assert_eq!(l.boot_command(), "booti 0x40400000 - 0x440d0000");
        assert_eq!(
            l.bootargs(),
            "console=ttyAMA0,115200 phram.phram=phram0,0x44000000,0xd0000,65536 \
             mtdparts=phram0:0xd0000(rootfs) root=/dev/mtdblock2 rootfstype=squashfs init=/init"
        );
        let one = l.with_phram(PhramMethod::DtLabel);
        assert_eq!(
            one.bootargs(),
            "console=ttyAMA0,115200 root=/dev/mtdblock1 rootfstype=squashfs init=/init"
        );
    }

    #[test]
    fn patches_a_tree() {
        let mut fdt = Fdt::new();
        fdt.root
            .set_u32("#address-cells", 2)
            .set_u32("#size-cells", 2);
        fdt.node_or_insert("/pl061@9030000")
            .set_str("compatible", "arm,pl061");
        let l = RamBootLayout::new(Arch::Aarch64, 0xd_0000);
        let out = Fdt::parse(&l.patch_dtb(&fdt.to_bytes()).unwrap()).unwrap();
        assert_eq!(
            out.node("/pl061@9030000")
                .unwrap()
                .prop("status")
                .unwrap()
                .as_str(),
            Some("disabled")
        );
        let node = out.node("/reserved-memory/phram-rootfs@44000000").unwrap();
        assert_eq!(
            node.prop("reg").unwrap().as_cells().unwrap(),
            vec![0, 0x4400_0000, 0, 0xd_0000]
        );
        assert!(node.prop("no-map").is_some());
        assert!(node.prop("label").is_none());
        assert_eq!(out.bootargs(), Some(l.bootargs().as_str()));
        let one = l.with_phram(PhramMethod::DtLabel);
        let out = Fdt::parse(&one.patch_dtb(&fdt.to_bytes()).unwrap()).unwrap();
        let node = out.node("/reserved-memory/phram-rootfs@44000000").unwrap();
        assert_eq!(node.prop("label").unwrap().as_str(), Some("rootfs"));
    }
}
