//! The device-tree edits a RAM boot needs, on top of the [`Fdt`] model:
//! the kernel command line in `/chosen/bootargs`, a phram reservation in
//! `/reserved-memory`, a node's `status`, and the appended-DTB kernel that
//! old MIPS U-Boots boot.
//!
//! This exists so that the boot plan can say *what* the tree must carry
//! (a rootfs at this address, these bootargs) and leave the details of
//! cell sizes, node names and creation of missing nodes to one tested
//! place. Each edit is idempotent: applying it twice gives the same tree.

use crate::compress;
use crate::fdt::{Error, Fdt, Node};
use crate::uimage::{self, Compression, UImageSpec};

/// A RAM region that the kernel must leave alone and expose as an MTD
/// device through the `phram` driver (the rootfs loaded by U-Boot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhramReservation {
    /// Physical start address (not a KSEG0 alias).
    pub start: u64,
    /// Size in bytes, already rounded to the erase block.
    pub size: u64,
    /// `label` property; `Some("rootfs")` lets Linux 6.1+ create the MTD
    /// device from the node alone, without `phram.phram=` on the command line.
    pub label: Option<String>,
}

/// Values of the standard `status` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `"okay"`: the device is used.
    Okay,
    /// `"disabled"`: the kernel skips the device.
    Disabled,
}

impl Status {
    /// The string stored in the tree.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Okay => "okay",
            Status::Disabled => "disabled",
        }
    }
}

/// Encodes `value` in `cells` 32-bit big-endian cells, or `None` when it
/// does not fit.
pub fn encode_cells(value: u64, cells: u32) -> Option<Vec<u32>> {
    match cells {
        1 => u32::try_from(value).ok().map(|v| vec![v]),
        2 => Some(vec![(value >> 32) as u32, value as u32]),
        _ => None,
    }
}

fn cells_of(node: &Node, name: &str, default: u32) -> u32 {
    node.prop(name).and_then(|p| p.as_u32()).unwrap_or(default)
}

impl Fdt {
    /// The kernel command line in `/chosen/bootargs`, when present.
    pub fn bootargs(&self) -> Option<&str> {
        self.node("/chosen")?.prop("bootargs")?.as_str()
    }

    /// Sets `/chosen/bootargs`, creating `/chosen` when missing.
    pub fn set_bootargs(&mut self, args: &str) {
        self.set_chosen_cmdline("bootargs", args);
    }

    /// Sets the kernel command line in `/chosen/<property>`: `bootargs`,
    /// or the property a board's kernel reads instead (such as
    /// `bootargs-override` where U-Boot rewrites `bootargs`).
    pub fn set_chosen_cmdline(&mut self, property: &str, args: &str) {
        self.node_or_insert("/chosen").set_str(property, args);
    }

    /// Sets `status` of the node at `path` (e.g. to disable a device the
    /// kernel trips over).
    pub fn set_status(&mut self, path: &str, status: Status) -> Result<(), Error> {
        self.require_mut(path)?.set_str("status", status.as_str());
        Ok(())
    }

    /// Adds (or replaces) `/reserved-memory/phram-rootfs@START` with
    /// `compatible = "phram"`, `reg`, `no-map` and the optional label.
    ///
    /// When `/reserved-memory` is missing it is created with the root's
    /// `#address-cells`/`#size-cells` (2 and 1 when the root has none, as
    /// the specification defaults) and an empty `ranges`, so its children's
    /// addresses are the root's. When it exists, its own cell counts
    /// encode `reg`. Returns the path of the new node.
    pub fn add_phram_reservation(&mut self, r: &PhramReservation) -> Result<String, Error> {
        let root_ac = cells_of(&self.root, "#address-cells", 2);
        let root_sc = cells_of(&self.root, "#size-cells", 1);
        let rm = if self.root.child("reserved-memory").is_some() {
            self.root
                .child_mut("reserved-memory")
                .expect("checked just above")
        } else {
            let rm = self.root.child_or_insert("reserved-memory");
            rm.set_u32("#address-cells", root_ac)
                .set_u32("#size-cells", root_sc)
                .set_empty("ranges");
            rm
        };
        let ac = cells_of(rm, "#address-cells", root_ac);
        let sc = cells_of(rm, "#size-cells", root_sc);
        let name = format!("phram-rootfs@{:x}", r.start);
        let bad = |what: String| Error::BadProperty {
            node: format!("/reserved-memory/{name}"),
            prop: "reg".into(),
            what,
        };
        let mut reg = encode_cells(r.start, ac).ok_or_else(|| {
            bad(format!(
                "start {:#x} does not fit #address-cells = <{ac}>",
                r.start
            ))
        })?;
        reg.extend(encode_cells(r.size, sc).ok_or_else(|| {
            bad(format!(
                "size {:#x} does not fit #size-cells = <{sc}>",
                r.size
            ))
        })?);
        let node = rm.child_or_insert(&name);
        node.props.clear();
        node.set_str("compatible", "phram")
            .set_cells("reg", &reg)
            .set_empty("no-map");
        if let Some(label) = &r.label {
            node.set_str("label", label);
        }
        Ok(format!("/reserved-memory/{name}"))
    }
}

/// Errors from building an appended-DTB kernel image.
#[derive(Debug, thiserror::Error)]
pub enum AppendedDtbError {
    /// The DTB does not parse.
    #[error("the device tree to append is not valid: {0}")]
    Dtb(#[from] Error),
    /// Compression failed.
    #[error(transparent)]
    Compress(#[from] compress::Error),
    /// The uImage could not be built (e.g. a name too long).
    #[error(transparent)]
    UImage(#[from] uimage::Error),
}

/// The raw kernel with the DTB concatenated after it: what a kernel built
/// with `CONFIG_MIPS_RAW_APPENDED_DTB` (or ARM's `APPENDED_DTB`) finds at
/// the end of its own image. The DTB is checked first, so a corrupt blob
/// is refused here rather than at boot.
pub fn append_dtb(kernel: &[u8], dtb: &[u8]) -> Result<Vec<u8>, Error> {
    Fdt::parse(dtb)?;
    let mut out = Vec::with_capacity(kernel.len() + dtb.len());
    out.extend_from_slice(kernel);
    out.extend_from_slice(dtb);
    Ok(out)
}

/// Kernel plus appended DTB, LZMA-compressed and wrapped as a uImage:
/// the form old MIPS U-Boots (which cannot pass a DTB) boot with `bootm`.
/// `spec.compression` is forced to LZMA.
pub fn appended_dtb_uimage(
    kernel: &[u8],
    dtb: &[u8],
    spec: &UImageSpec,
    lzma_preset: u32,
) -> Result<Vec<u8>, AppendedDtbError> {
    let raw = append_dtb(kernel, dtb)?;
    let z = compress::lzma_compress(&raw, lzma_preset)?;
    let spec = UImageSpec {
        compression: Compression::Lzma,
        ..spec.clone()
    };
    Ok(spec.build(&z)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(ac: u32, sc: u32) -> Fdt {
        let mut t = Fdt::new();
        t.root
            .set_u32("#address-cells", ac)
            .set_u32("#size-cells", sc);
        t
    }

    #[test]
    fn phram_node_with_two_cells() {
        let mut t = tree(2, 2);
        let path = t
            .add_phram_reservation(&PhramReservation {
                start: 0x4400_0000,
                size: 0xd_0000,
                label: None,
            })
            .unwrap();
        assert_eq!(path, "/reserved-memory/phram-rootfs@44000000");
        let rm = t.node("/reserved-memory").unwrap();
        assert_eq!(rm.prop("#address-cells").unwrap().as_u32(), Some(2));
        assert_eq!(rm.prop("ranges").unwrap().value, b"");
        let n = t.node(&path).unwrap();
        assert_eq!(n.prop("compatible").unwrap().as_str(), Some("phram"));
        assert_eq!(
            n.prop("reg").unwrap().as_cells(),
            Some(vec![0, 0x4400_0000, 0, 0xd_0000])
        );
        assert!(n.prop("no-map").is_some());
        assert!(n.prop("label").is_none());
    }

    #[test]
    fn phram_node_with_one_cell_and_label_is_idempotent() {
        let mut t = tree(1, 1);
        let r = PhramReservation {
            start: 0x00a0_0000,
            size: 0x10_0000,
            label: Some("rootfs".into()),
        };
        t.add_phram_reservation(&r).unwrap();
        let once = t.clone();
        t.add_phram_reservation(&r).unwrap();
        assert_eq!(t, once);
        let n = t.node("/reserved-memory/phram-rootfs@a00000").unwrap();
        assert_eq!(
            n.prop("reg").unwrap().as_cells(),
            Some(vec![0xa0_0000, 0x10_0000])
        );
        assert_eq!(n.prop("label").unwrap().as_str(), Some("rootfs"));
    }

    #[test]
    fn existing_reserved_memory_cells_win_and_overflow_is_refused() {
        let mut t = tree(2, 2);
        t.node_or_insert("/reserved-memory")
            .set_u32("#address-cells", 1)
            .set_u32("#size-cells", 1);
        let err = t
            .add_phram_reservation(&PhramReservation {
                start: 0x1_0000_0000,
                size: 1,
                label: None,
            })
            .unwrap_err();
        assert!(err.to_string().contains("#address-cells = <1>"), "{err}");
    }

    #[test]
    fn bootargs_and_status() {
        let mut t = Fdt::new();
        assert_eq!(t.bootargs(), None);
        t.set_bootargs("console=ttyS0,115200");
        assert_eq!(t.bootargs(), Some("console=ttyS0,115200"));
        t.node_or_insert("/pl061@9030000");
        t.set_status("/pl061@9030000", Status::Disabled).unwrap();
        assert_eq!(
            t.node("/pl061").unwrap().prop("status").unwrap().as_str(),
            Some("disabled")
        );
        assert_eq!(
            t.set_status("/nope", Status::Okay),
            Err(Error::NoSuchNode("/nope".into()))
        );
    }

    #[test]
    fn appended_dtb_refuses_garbage() {
        assert!(append_dtb(b"kernel", b"not a dtb at all, really not").is_err());
        let dtb = Fdt::new().to_bytes();
        let k = append_dtb(b"kernel", &dtb).unwrap();
        assert_eq!(&k[..6], b"kernel");
        assert_eq!(&k[6..], &dtb[..]);
    }
}
