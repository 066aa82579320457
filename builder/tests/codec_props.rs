//! Property tests of the builder's wire formats, emit then parse: a
//! uImage built from any header fields and payload verifies and parses
//! back to them; a device tree of random nodes and properties, edited the
//! way a RAM boot edits it (bootargs, a phram reservation in any cell
//! size, a status flip, removed properties), serializes to a blob that
//! parses back to exactly the edited tree. (The fuzz targets in `fuzz/`
//! go the other way: any bytes, parse then emit.)

use lmx_builder::dtedit::{PhramReservation, Status};
use lmx_builder::fdt::{Fdt, Node};
use lmx_builder::uimage::{self, Header, HeaderRepr, UImage, UImageSpec};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9,._-]{0,12}(@[0-9a-f]{1,8})?"
}

fn node(depth: u32) -> BoxedStrategy<Node> {
    let props = proptest::collection::vec(
        (
            "[a-z#][a-z0-9,._#-]{0,16}",
            proptest::collection::vec(any::<u8>(), 0..24),
        ),
        0..6,
    );
    let leaf = (name(), props).prop_map(|(n, props)| {
        let mut node = Node::new(n);
        for (k, v) in props {
            node.set_prop(&k, v);
        }
        node
    });
    if depth == 0 {
        return leaf.boxed();
    }
    (leaf, proptest::collection::vec(node(depth - 1), 0..4))
        .prop_map(|(mut n, children)| {
            for c in children {
                if n.child(&c.name).is_none() {
                    n.add_child(c);
                }
            }
            n
        })
        .boxed()
}

fn tree() -> impl Strategy<Value = Fdt> {
    (
        node(3),
        proptest::collection::vec((any::<u64>(), 1u64..u64::MAX), 0..3),
        any::<u32>(),
        proptest::option::of(1u32..3),
    )
        .prop_map(|(mut root, reserved, cpu, cells)| {
            root.name = String::new();
            if let Some(c) = cells {
                root.set_u32("#address-cells", c).set_u32("#size-cells", c);
            }
            Fdt {
                reserved: reserved
                    .into_iter()
                    .map(|(address, size)| lmx_builder::fdt::ReserveEntry { address, size })
                    .collect(),
                boot_cpuid_phys: cpu,
                root,
            }
        })
}

/// Every node path of the tree.
fn paths(n: &Node, prefix: &str, out: &mut Vec<String>) {
    for c in &n.children {
        let p = format!("{prefix}/{}", c.name);
        out.push(p.clone());
        paths(c, &p, out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn an_edited_tree_serializes_and_parses_back(
        t in tree(),
        bootargs in "[ -~]{0,200}",
        start in any::<u64>(),
        size in any::<u64>(),
        pick in any::<usize>(),
        disable in any::<bool>(),
    ) {
        let blob = t.to_bytes();
        prop_assert_eq!(&Fdt::parse(&blob).unwrap(), &t);
        let mut e = t.clone();
        e.set_bootargs(&bootargs);
        let r = PhramReservation { start, size, label: Some("rootfs".into()) };
        let result = e.add_phram_reservation(&r);
        let rm = e.node("/reserved-memory").unwrap();
        let cells = |p: &str| rm.prop(p).and_then(|p| p.as_u32()).unwrap() as usize;
        let (ac, sc) = (cells("#address-cells"), cells("#size-cells"));
        match result {
            Ok(path) => {
                let reg = e.node(&path).unwrap().prop("reg").unwrap().as_cells().unwrap();
                prop_assert_eq!(reg.len(), ac + sc);
                // The cells hold exactly the start and the size.
                let join = |c: &[u32]| c.iter().fold(0u64, |a, &x| a << 32 | u64::from(x));
                prop_assert_eq!(join(&reg[..ac]), start);
                prop_assert_eq!(join(&reg[ac..]), size);
            }
            // Refused only when a value does not fit its one cell.
            Err(_) => prop_assert!(
                (ac == 1 && start > u64::from(u32::MAX)) || (sc == 1 && size > u64::from(u32::MAX))
            ),
        }
        let mut all = Vec::new();
        paths(&e.root, "", &mut all);
        if !all.is_empty() {
            let p = &all[pick % all.len()];
            let s = if disable { Status::Disabled } else { Status::Okay };
            e.set_status(p, s).unwrap();
            if let Some(n) = e.node_mut(p) {
                if let Some(first) = n.props.first().map(|p| p.name.clone()) {
                    if first != "status" && first != "bootargs" {
                        n.remove_prop(&first);
                    }
                }
            }
        }
        let blob = e.to_bytes();
        let back = Fdt::parse(&blob).unwrap();
        prop_assert_eq!(back.bootargs(), Some(bootargs.as_str()));
        prop_assert_eq!(&back, &e);
        prop_assert_eq!(back.to_bytes(), blob);
    }

    #[test]
    fn a_built_uimage_verifies_and_parses_back(
        name in "[ -~]{0,32}",
        os in any::<u8>(),
        arch in any::<u8>(),
        image_type in any::<u8>(),
        compression in any::<u8>(),
        load in any::<u32>(),
        entry in any::<u32>(),
        timestamp in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let spec = UImageSpec {
            name: name.clone(),
            arch: arch.into(),
            os: os.into(),
            image_type: image_type.into(),
            compression: compression.into(),
            load_addr: load,
            entry_point: entry,
            timestamp,
        };
        let bytes = spec.build(&payload).unwrap();
        let img = UImage::parse(&bytes).unwrap();
        prop_assert_eq!(img.payload, &payload[..]);
        let h = &img.header;
        prop_assert_eq!(&h.name, &name);
        prop_assert_eq!((h.load_addr, h.entry_point, h.timestamp), (load, entry, timestamp));
        prop_assert_eq!(
            (h.os, h.arch, h.image_type, h.compression),
            (os.into(), arch.into(), image_type.into(), compression.into())
        );
        prop_assert_eq!(h.data_size as usize, payload.len());
        prop_assert_eq!(h.data_crc, crc32fast::hash(&payload));
        // The header alone: emit into a buffer, parse, the same fields.
        let mut buf = [0u8; uimage::HEADER_LEN];
        h.emit(&mut Header::new_unchecked(&mut buf[..])).unwrap();
        prop_assert_eq!(&buf[..], &bytes[..uimage::HEADER_LEN]);
        prop_assert_eq!(&HeaderRepr::parse(&Header::new_unchecked(&buf[..])).unwrap(), h);
        // Any flipped byte is caught by one of the two CRCs.
        if !bytes.is_empty() {
            let mut bad = bytes.clone();
            let i = (load as usize) % bad.len();
            bad[i] ^= 1 << (entry % 8);
            prop_assert!(UImage::parse(&bad).is_err());
        }
    }
}
