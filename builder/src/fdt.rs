//! A flattened device tree (FDT, "DTB") codec: parse a blob into a tree
//! of nodes and properties, change it, serialize it again.
//!
//! This exists because booting from RAM means editing the board's DTB:
//! `/chosen/bootargs`, a `/reserved-memory` node for phram, a `status`
//! flip. The Rust crates at hand do half the job each (`vm-fdt` only
//! writes, `fdt` only reads), and a FIT image is itself an FDT that must
//! be both written and read back. The format is small: a 40-byte
//! big-endian header, a memory reservation block, a structure block of
//! tokens, and a strings block of property names.
//!
//! Following the project's wire-format habit there is a zero-copy header
//! view, [`FdtHeader`], and a high-level value, [`Fdt`], with
//! [`Fdt::parse`] and [`Fdt::to_bytes`] as a pair. Phandles and every other
//! property are kept as raw bytes, so an unmodified tree serializes to an
//! equivalent blob (same nodes, properties and order).

use std::collections::HashMap;
use std::fmt;

/// `FDT_MAGIC`, the first four bytes of every blob.
pub const MAGIC: u32 = 0xd00d_feed;
/// Size of the version 17 header.
pub const HEADER_LEN: usize = 40;
/// The version this codec writes.
pub const VERSION: u32 = 17;
/// The oldest version a reader of our output must understand.
pub const LAST_COMP_VERSION: u32 = 16;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Errors from parsing a blob or editing a tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the header, or than the header's `totalsize`.
    #[error("truncated device tree: {what} needs {needed} bytes, the blob has {len}")]
    Truncated {
        /// What did not fit.
        what: &'static str,
        /// Bytes required.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// The magic is not `d0 0d fe ed`.
    #[error("not a device tree blob: magic is {0:#010x}, expected 0xd00dfeed")]
    BadMagic(u32),
    /// A version this codec cannot read.
    #[error("unsupported device tree version {version} (last compatible {last_comp}); 16 and 17 are supported")]
    BadVersion {
        /// `version`.
        version: u32,
        /// `last_comp_version`.
        last_comp: u32,
    },
    /// A block lies outside the blob or overlaps the header.
    #[error("corrupt device tree: {what} at {offset:#x}+{size:#x} lies outside the blob ({total:#x} bytes)")]
    BadBlock {
        /// Which block.
        what: &'static str,
        /// Its offset.
        offset: usize,
        /// Its size.
        size: usize,
        /// `totalsize`.
        total: usize,
    },
    /// A block is not aligned as the format requires.
    #[error("corrupt device tree: {what} offset {offset:#x} is not {align}-byte aligned")]
    Misaligned {
        /// Which block.
        what: &'static str,
        /// Its offset.
        offset: usize,
        /// The required alignment.
        align: usize,
    },
    /// A token that makes no sense where it is.
    #[error("corrupt device tree: {what} at structure offset {offset:#x}")]
    BadStructure {
        /// What is wrong.
        what: String,
        /// Offset inside the structure block.
        offset: usize,
    },
    /// A property name offset points outside the strings block.
    #[error("corrupt device tree: property name offset {0:#x} is outside the strings block")]
    BadStringOffset(u32),
    /// No node at this path.
    #[error("no node {0} in the device tree")]
    NoSuchNode(String),
    /// A property has the wrong size for what is asked of it.
    #[error("property {prop} of {node}: {what}")]
    BadProperty {
        /// Node path.
        node: String,
        /// Property name.
        prop: String,
        /// What is wrong.
        what: String,
    },
}

/// One entry of the memory reservation block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveEntry {
    /// Physical start address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
}

/// One property: a name and raw bytes (strings include their NUL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Property name, e.g. `compatible`.
    pub name: String,
    /// Raw big-endian value.
    pub value: Vec<u8>,
}

impl Property {
    /// The value as one NUL-terminated string.
    pub fn as_str(&self) -> Option<&str> {
        let (last, body) = self.value.split_last()?;
        if *last != 0 || body.contains(&0) {
            return None;
        }
        std::str::from_utf8(body).ok()
    }

    /// The value as a list of NUL-terminated strings (`compatible`).
    pub fn as_str_list(&self) -> Option<Vec<&str>> {
        let (last, body) = self.value.split_last()?;
        if *last != 0 {
            return None;
        }
        body.split(|&b| b == 0)
            .map(|s| std::str::from_utf8(s).ok())
            .collect()
    }

    /// The value as one big-endian 32-bit cell.
    pub fn as_u32(&self) -> Option<u32> {
        Some(u32::from_be_bytes(self.value.as_slice().try_into().ok()?))
    }

    /// The value as big-endian 32-bit cells.
    pub fn as_cells(&self) -> Option<Vec<u32>> {
        if self.value.len() % 4 != 0 {
            return None;
        }
        Some(
            self.value
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
}

/// One node: its name (with unit address), properties and children, in
/// blob order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// Node name, e.g. `memory@40000000`; empty for the root.
    pub name: String,
    /// Properties in order.
    pub props: Vec<Property>,
    /// Child nodes in order.
    pub children: Vec<Node>,
}

/// Whether a path component `want` names the node called `name`: exactly,
/// or by its base name when `want` has no unit address and the base name
/// is unambiguous (the rule `fdtget` and libfdt apply).
fn name_matches(name: &str, want: &str) -> bool {
    name == want || (!want.contains('@') && name.split('@').next() == Some(want))
}

impl Node {
    /// A node with a name and nothing in it.
    pub fn new(name: impl Into<String>) -> Self {
        Node {
            name: name.into(),
            ..Node::default()
        }
    }

    /// The property called `name`.
    pub fn prop(&self, name: &str) -> Option<&Property> {
        self.props.iter().find(|p| p.name == name)
    }

    /// Sets (replacing in place, or appending) a property with raw bytes.
    pub fn set_prop(&mut self, name: &str, value: impl Into<Vec<u8>>) -> &mut Self {
        let value = value.into();
        match self.props.iter_mut().find(|p| p.name == name) {
            Some(p) => p.value = value,
            None => self.props.push(Property {
                name: name.to_owned(),
                value,
            }),
        }
        self
    }

    /// Sets a string property (a NUL is appended).
    pub fn set_str(&mut self, name: &str, value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.set_prop(name, v)
    }

    /// Sets a one-cell property.
    pub fn set_u32(&mut self, name: &str, value: u32) -> &mut Self {
        self.set_prop(name, value.to_be_bytes().to_vec())
    }

    /// Sets a property of big-endian cells.
    pub fn set_cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        self.set_prop(
            name,
            cells
                .iter()
                .flat_map(|c| c.to_be_bytes())
                .collect::<Vec<_>>(),
        )
    }

    /// Sets an empty (boolean) property such as `no-map`.
    pub fn set_empty(&mut self, name: &str) -> &mut Self {
        self.set_prop(name, Vec::new())
    }

    /// Removes a property; returns it when it was there.
    pub fn remove_prop(&mut self, name: &str) -> Option<Property> {
        let i = self.props.iter().position(|p| p.name == name)?;
        Some(self.props.remove(i))
    }

    /// The child matching `name` (exact, or base name without `@unit`).
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.name == name)
            .or_else(|| self.children.iter().find(|c| name_matches(&c.name, name)))
    }

    /// Mutable access to the child matching `name`.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Node> {
        let i = self
            .children
            .iter()
            .position(|c| c.name == name)
            .or_else(|| {
                self.children
                    .iter()
                    .position(|c| name_matches(&c.name, name))
            })?;
        Some(&mut self.children[i])
    }

    /// The child called exactly `name`, appended empty when missing.
    pub fn child_or_insert(&mut self, name: &str) -> &mut Node {
        let i = match self.children.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                self.children.push(Node::new(name));
                self.children.len() - 1
            }
        };
        &mut self.children[i]
    }

    /// Adds a child (after the existing ones) and returns it.
    pub fn add_child(&mut self, node: Node) -> &mut Node {
        self.children.push(node);
        self.children.last_mut().expect("just pushed")
    }
}

/// A whole device tree: reservations, boot CPU and the node tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fdt {
    /// The memory reservation block (without its terminator).
    pub reserved: Vec<ReserveEntry>,
    /// `boot_cpuid_phys` from the header.
    pub boot_cpuid_phys: u32,
    /// The root node (name empty).
    pub root: Node,
}

impl Default for Fdt {
    fn default() -> Self {
        Fdt {
            reserved: Vec::new(),
            boot_cpuid_phys: 0,
            root: Node::new(""),
        }
    }
}

fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

impl Fdt {
    /// An empty tree: just a root node.
    pub fn new() -> Self {
        Fdt::default()
    }

    /// The node at an absolute path such as `/chosen` or `/soc/pl061@9030000`.
    pub fn node(&self, path: &str) -> Option<&Node> {
        components(path).try_fold(&self.root, |n, c| n.child(c))
    }

    /// Mutable access to the node at `path`.
    pub fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        components(path).try_fold(&mut self.root, |n, c| n.child_mut(c))
    }

    /// The node at `path`, or an error naming the path.
    pub fn require_mut(&mut self, path: &str) -> Result<&mut Node, Error> {
        self.node_mut(path)
            .ok_or_else(|| Error::NoSuchNode(path.to_owned()))
    }

    /// The node at `path`, creating it (and missing parents) when needed.
    pub fn node_or_insert(&mut self, path: &str) -> &mut Node {
        components(path).fold(&mut self.root, |n, c| {
            if n.child(c).is_some() {
                n.child_mut(c).expect("checked")
            } else {
                n.child_or_insert(c)
            }
        })
    }

    /// Parses a blob, checking the header, block bounds and alignment,
    /// the token stream and every property name offset.
    pub fn parse(blob: &[u8]) -> Result<Fdt, Error> {
        let h = FdtHeader::new_checked(blob)?;
        let total = h.total_size() as usize;
        let blob = &blob[..total];

        let mut reserved = Vec::new();
        let mut off = h.off_mem_rsvmap() as usize;
        loop {
            let e = blob.get(off..off + 16).ok_or(Error::BadBlock {
                what: "memory reservation block",
                offset: h.off_mem_rsvmap() as usize,
                size: off + 16 - h.off_mem_rsvmap() as usize,
                total,
            })?;
            let address = u64::from_be_bytes(e[..8].try_into().expect("8"));
            let size = u64::from_be_bytes(e[8..].try_into().expect("8"));
            if address == 0 && size == 0 {
                break;
            }
            reserved.push(ReserveEntry { address, size });
            off += 16;
        }

        let s_off = h.off_dt_strings() as usize;
        let strings = &blob[s_off..s_off + h.size_dt_strings() as usize];
        let st_off = h.off_dt_struct() as usize;
        let st_len = h.struct_len();
        let structure = &blob[st_off..st_off + st_len];

        let root = StructParser {
            data: structure,
            strings,
            pos: 0,
        }
        .parse()?;
        Ok(Fdt {
            reserved,
            boot_cpuid_phys: h.boot_cpuid_phys(),
            root,
        })
    }

    /// Serializes to a version 17 blob: header, reservation block,
    /// structure block, strings block (each name stored once).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strings = StringTable::default();
        let mut structure = Vec::new();
        emit_node(&self.root, &mut structure, &mut strings);
        structure.extend_from_slice(&FDT_END.to_be_bytes());

        let off_rsvmap = HEADER_LEN; // already 8-byte aligned
        let rsv_len = (self.reserved.len() + 1) * 16;
        let off_struct = off_rsvmap + rsv_len;
        let off_strings = off_struct + structure.len();
        let total = off_strings + strings.bytes.len();

        let mut out = vec![0u8; total];
        let repr = FdtHeaderRepr {
            total_size: total as u32,
            off_dt_struct: off_struct as u32,
            off_dt_strings: off_strings as u32,
            off_mem_rsvmap: off_rsvmap as u32,
            version: VERSION,
            last_comp_version: LAST_COMP_VERSION,
            boot_cpuid_phys: self.boot_cpuid_phys,
            size_dt_strings: strings.bytes.len() as u32,
            size_dt_struct: structure.len() as u32,
        };
        repr.emit(&mut FdtHeader::new_unchecked(&mut out[..]));
        let mut o = off_rsvmap;
        for e in &self.reserved {
            out[o..o + 8].copy_from_slice(&e.address.to_be_bytes());
            out[o + 8..o + 16].copy_from_slice(&e.size.to_be_bytes());
            o += 16;
        }
        out[off_struct..off_strings].copy_from_slice(&structure);
        out[off_strings..].copy_from_slice(&strings.bytes);
        out
    }
}

#[derive(Default)]
struct StringTable {
    bytes: Vec<u8>,
    index: HashMap<String, u32>,
}

impl StringTable {
    fn offset(&mut self, name: &str) -> u32 {
        if let Some(&o) = self.index.get(name) {
            return o;
        }
        let o = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.index.insert(name.to_owned(), o);
        o
    }
}

fn pad4(v: &mut Vec<u8>) {
    v.resize(v.len().next_multiple_of(4), 0);
}

fn emit_node(node: &Node, out: &mut Vec<u8>, strings: &mut StringTable) {
    out.extend_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
    out.extend_from_slice(node.name.as_bytes());
    out.push(0);
    pad4(out);
    for p in &node.props {
        out.extend_from_slice(&FDT_PROP.to_be_bytes());
        out.extend_from_slice(&(p.value.len() as u32).to_be_bytes());
        out.extend_from_slice(&strings.offset(&p.name).to_be_bytes());
        out.extend_from_slice(&p.value);
        pad4(out);
    }
    for c in &node.children {
        emit_node(c, out, strings);
    }
    out.extend_from_slice(&FDT_END_NODE.to_be_bytes());
}

struct StructParser<'a> {
    data: &'a [u8],
    strings: &'a [u8],
    pos: usize,
}

impl StructParser<'_> {
    fn err(&self, what: impl Into<String>) -> Error {
        Error::BadStructure {
            what: what.into(),
            offset: self.pos,
        }
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self
            .data
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("structure block ends without FDT_END"))?;
        self.pos += 4;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn token(&mut self) -> Result<u32, Error> {
        loop {
            let t = self.u32()?;
            if t != FDT_NOP {
                return Ok(t);
            }
        }
    }

    fn cstr(&mut self) -> Result<String, Error> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.err("node name has no terminating NUL"))?;
        let name = std::str::from_utf8(&rest[..n])
            .map_err(|_| self.err("node name is not UTF-8"))?
            .to_owned();
        self.pos = (self.pos + n + 1).next_multiple_of(4);
        Ok(name)
    }

    fn prop_name(&self, off: u32) -> Result<String, Error> {
        let rest = self
            .strings
            .get(off as usize..)
            .ok_or(Error::BadStringOffset(off))?;
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::BadStringOffset(off))?;
        std::str::from_utf8(&rest[..n])
            .map(str::to_owned)
            .map_err(|_| Error::BadStringOffset(off))
    }

    fn parse(mut self) -> Result<Node, Error> {
        let at = self.pos;
        if self.token()? != FDT_BEGIN_NODE {
            self.pos = at;
            return Err(self.err("structure block does not start with the root node"));
        }
        let name = self.cstr()?;
        let root = self.node(name, 1)?;
        let at = self.pos;
        match self.token()? {
            FDT_END => Ok(root),
            t => {
                self.pos = at;
                Err(self.err(format!(
                    "token {t:#x} after the root node, expected FDT_END"
                )))
            }
        }
    }

    fn node(&mut self, name: String, depth: usize) -> Result<Node, Error> {
        if depth > 64 {
            return Err(self.err("nodes nested deeper than 64 levels"));
        }
        let mut node = Node::new(name);
        loop {
            let at = self.pos;
            match self.token()? {
                FDT_PROP => {
                    let len = self.u32()? as usize;
                    let nameoff = self.u32()?;
                    let value = self
                        .data
                        .get(self.pos..self.pos.saturating_add(len))
                        .ok_or_else(|| {
                            self.err(format!("property value of {len} bytes runs past the block"))
                        })?
                        .to_vec();
                    self.pos = (self.pos + len).next_multiple_of(4);
                    let name = self.prop_name(nameoff)?;
                    node.props.push(Property { name, value });
                }
                FDT_BEGIN_NODE => {
                    let name = self.cstr()?;
                    let child = self.node(name, depth + 1)?;
                    node.children.push(child);
                }
                FDT_END_NODE => return Ok(node),
                FDT_END => {
                    self.pos = at;
                    return Err(self.err(format!("FDT_END inside node {:?}", node.name)));
                }
                t => {
                    self.pos = at;
                    return Err(self.err(format!("unknown token {t:#x}")));
                }
            }
        }
    }
}

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const TOTALSIZE: Range<usize> = 4..8;
    pub const OFF_DT_STRUCT: Range<usize> = 8..12;
    pub const OFF_DT_STRINGS: Range<usize> = 12..16;
    pub const OFF_MEM_RSVMAP: Range<usize> = 16..20;
    pub const VERSION: Range<usize> = 20..24;
    pub const LAST_COMP_VERSION: Range<usize> = 24..28;
    pub const BOOT_CPUID_PHYS: Range<usize> = 28..32;
    pub const SIZE_DT_STRINGS: Range<usize> = 32..36;
    pub const SIZE_DT_STRUCT: Range<usize> = 36..40;
}

/// A zero-copy view of an FDT header.
#[derive(Debug, Clone, Copy)]
pub struct FdtHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FdtHeader<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        FdtHeader { buffer }
    }

    /// Wraps a buffer after checking magic, version, `totalsize` against
    /// the buffer, and every block's bounds and alignment.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let h = Self::new_unchecked(buffer);
        h.check()?;
        Ok(h)
    }

    fn be32(&self, r: std::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// `magic`.
    pub fn magic(&self) -> u32 {
        self.be32(field::MAGIC)
    }
    /// `totalsize`: bytes in the whole blob.
    pub fn total_size(&self) -> u32 {
        self.be32(field::TOTALSIZE)
    }
    /// `off_dt_struct`.
    pub fn off_dt_struct(&self) -> u32 {
        self.be32(field::OFF_DT_STRUCT)
    }
    /// `off_dt_strings`.
    pub fn off_dt_strings(&self) -> u32 {
        self.be32(field::OFF_DT_STRINGS)
    }
    /// `off_mem_rsvmap`.
    pub fn off_mem_rsvmap(&self) -> u32 {
        self.be32(field::OFF_MEM_RSVMAP)
    }
    /// `version`.
    pub fn version(&self) -> u32 {
        self.be32(field::VERSION)
    }
    /// `last_comp_version`.
    pub fn last_comp_version(&self) -> u32 {
        self.be32(field::LAST_COMP_VERSION)
    }
    /// `boot_cpuid_phys`.
    pub fn boot_cpuid_phys(&self) -> u32 {
        self.be32(field::BOOT_CPUID_PHYS)
    }
    /// `size_dt_strings`.
    pub fn size_dt_strings(&self) -> u32 {
        self.be32(field::SIZE_DT_STRINGS)
    }
    /// `size_dt_struct` (version 17; 0 in version 16 headers).
    pub fn size_dt_struct(&self) -> u32 {
        self.be32(field::SIZE_DT_STRUCT)
    }

    /// The structure block's length: `size_dt_struct` for version 17,
    /// up to the strings block (or the end) for version 16.
    fn struct_len(&self) -> usize {
        if self.version() >= 17 {
            self.size_dt_struct() as usize
        } else {
            let start = self.off_dt_struct() as usize;
            let end = if self.off_dt_strings() as usize > start {
                self.off_dt_strings() as usize
            } else {
                self.total_size() as usize
            };
            end - start
        }
    }

    /// Validates the header against the buffer.
    pub fn check(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated {
                what: "the header",
                needed: HEADER_LEN,
                len,
            });
        }
        if self.magic() != MAGIC {
            return Err(Error::BadMagic(self.magic()));
        }
        if self.version() < 16 || self.last_comp_version() > VERSION {
            return Err(Error::BadVersion {
                version: self.version(),
                last_comp: self.last_comp_version(),
            });
        }
        let total = self.total_size() as usize;
        if total > len {
            return Err(Error::Truncated {
                what: "totalsize",
                needed: total,
                len,
            });
        }
        let header_len = if self.version() >= 17 { 40 } else { 36 };
        let rsv = self.off_mem_rsvmap() as usize;
        if rsv % 8 != 0 {
            return Err(Error::Misaligned {
                what: "memory reservation block",
                offset: rsv,
                align: 8,
            });
        }
        let st = self.off_dt_struct() as usize;
        if st % 4 != 0 {
            return Err(Error::Misaligned {
                what: "structure block",
                offset: st,
                align: 4,
            });
        }
        let blocks: [(&'static str, usize, usize); 3] = [
            ("memory reservation block", rsv, 16),
            ("structure block", st, self.struct_len_checked(total)?),
            (
                "strings block",
                self.off_dt_strings() as usize,
                self.size_dt_strings() as usize,
            ),
        ];
        for (what, offset, size) in blocks {
            if offset < header_len || offset.checked_add(size).is_none_or(|end| end > total) {
                return Err(Error::BadBlock {
                    what,
                    offset,
                    size,
                    total,
                });
            }
        }
        Ok(())
    }

    fn struct_len_checked(&self, total: usize) -> Result<usize, Error> {
        let start = self.off_dt_struct() as usize;
        if self.version() < 17 && start > total {
            return Err(Error::BadBlock {
                what: "structure block",
                offset: start,
                size: 0,
                total,
            });
        }
        Ok(self.struct_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FdtHeader<T> {
    fn set_be32(&mut self, r: std::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
}

/// The parsed fields of an FDT header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdtHeaderRepr {
    /// `totalsize`.
    pub total_size: u32,
    /// `off_dt_struct`.
    pub off_dt_struct: u32,
    /// `off_dt_strings`.
    pub off_dt_strings: u32,
    /// `off_mem_rsvmap`.
    pub off_mem_rsvmap: u32,
    /// `version`.
    pub version: u32,
    /// `last_comp_version`.
    pub last_comp_version: u32,
    /// `boot_cpuid_phys`.
    pub boot_cpuid_phys: u32,
    /// `size_dt_strings`.
    pub size_dt_strings: u32,
    /// `size_dt_struct`.
    pub size_dt_struct: u32,
}

impl FdtHeaderRepr {
    /// Parses a header after [`FdtHeader::check`].
    pub fn parse<T: AsRef<[u8]>>(h: &FdtHeader<T>) -> Result<Self, Error> {
        h.check()?;
        Ok(FdtHeaderRepr {
            total_size: h.total_size(),
            off_dt_struct: h.off_dt_struct(),
            off_dt_strings: h.off_dt_strings(),
            off_mem_rsvmap: h.off_mem_rsvmap(),
            version: h.version(),
            last_comp_version: h.last_comp_version(),
            boot_cpuid_phys: h.boot_cpuid_phys(),
            size_dt_strings: h.size_dt_strings(),
            size_dt_struct: h.size_dt_struct(),
        })
    }

    /// Writes the 40-byte header into `h` (which must hold 40 bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut FdtHeader<T>) {
        h.set_be32(field::MAGIC, MAGIC);
        h.set_be32(field::TOTALSIZE, self.total_size);
        h.set_be32(field::OFF_DT_STRUCT, self.off_dt_struct);
        h.set_be32(field::OFF_DT_STRINGS, self.off_dt_strings);
        h.set_be32(field::OFF_MEM_RSVMAP, self.off_mem_rsvmap);
        h.set_be32(field::VERSION, self.version);
        h.set_be32(field::LAST_COMP_VERSION, self.last_comp_version);
        h.set_be32(field::BOOT_CPUID_PHYS, self.boot_cpuid_phys);
        h.set_be32(field::SIZE_DT_STRINGS, self.size_dt_strings);
        h.set_be32(field::SIZE_DT_STRUCT, self.size_dt_struct);
    }
}

/// Whether `bytes` starts like a device tree blob (magic only).
pub fn looks_like_fdt(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..4] == MAGIC.to_be_bytes()
}

impl fmt::Display for Fdt {
    /// A short DTS-like rendering, for humans and debugging.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn go(n: &Node, depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let ind = "\t".repeat(depth);
            writeln!(
                f,
                "{ind}{} {{",
                if n.name.is_empty() { "/" } else { &n.name }
            )?;
            for p in &n.props {
                if p.value.is_empty() {
                    writeln!(f, "{ind}\t{};", p.name)?;
                } else if let Some(s) = p.as_str_list().filter(|l| {
                    l.iter()
                        .all(|s| !s.is_empty() && s.chars().all(|c| !c.is_control()))
                }) {
                    writeln!(f, "{ind}\t{} = \"{}\";", p.name, s.join("\", \""))?;
                } else if let Some(c) = p.as_cells().filter(|c| c.len() <= 16) {
                    let cells: Vec<String> = c.iter().map(|c| format!("{c:#x}")).collect();
                    writeln!(f, "{ind}\t{} = <{}>;", p.name, cells.join(" "))?;
                } else {
                    writeln!(f, "{ind}\t{} = [{} bytes];", p.name, p.value.len())?;
                }
            }
            for c in &n.children {
                go(c, depth + 1, f)?;
            }
            writeln!(f, "{ind}}};")
        }
        go(&self.root, 0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dtc -I dts -O dtb` of
    /// `/dts-v1/; / { #address-cells = <1>; model = "m"; c { x; }; };`
    /// (dtc 1.6.1).
    const TINY: [u8; 0x97] = [
        0xd0, 0x0d, 0xfe, 0xed, 0x00, 0x00, 0x00, 0x97, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,
        0x80, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x48, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x0f, 0x6d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x63, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x15, 0x00, 0x00, 0x00, 0x02,
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x09, 0x23, 0x61, 0x64, 0x64, 0x72, 0x65, 0x73,
        0x73, 0x2d, 0x63, 0x65, 0x6c, 0x6c, 0x73, 0x00, 0x6d, 0x6f, 0x64, 0x65, 0x6c, 0x00, 0x78,
        0x00,
    ];

    fn tiny_tree() -> Fdt {
        let mut root = Node::new("");
        root.set_u32("#address-cells", 1).set_str("model", "m");
        root.add_child(Node::new("c")).set_empty("x");
        Fdt {
            reserved: vec![],
            boot_cpuid_phys: 0,
            root,
        }
    }

    #[test]
    fn parse_literal_blob() {
        let h = FdtHeaderRepr::parse(&FdtHeader::new_checked(&TINY[..]).unwrap()).unwrap();
        assert_eq!(h.version, 17);
        assert_eq!(h.size_dt_struct, 0x48);
        assert_eq!(Fdt::parse(&TINY).unwrap(), tiny_tree());
    }

    #[test]
    fn emit_literal_blob() {
        assert_eq!(tiny_tree().to_bytes(), TINY);
    }

    #[test]
    fn round_trip_with_reservations_and_nops() {
        let mut t = tiny_tree();
        t.reserved.push(ReserveEntry {
            address: 0x4400_0000,
            size: 0xd_0000,
        });
        t.boot_cpuid_phys = 1;
        let b = t.to_bytes();
        assert_eq!(Fdt::parse(&b).unwrap(), t);
        // A NOP before the first property is skipped.
        let mut with_nop = TINY.to_vec();
        with_nop.splice(0x40..0x40, FDT_NOP.to_be_bytes());
        with_nop[0x24..0x28].copy_from_slice(&0x4cu32.to_be_bytes());
        with_nop[0x0c..0x10].copy_from_slice(&0x84u32.to_be_bytes());
        with_nop[0x04..0x08].copy_from_slice(&0x9bu32.to_be_bytes());
        assert_eq!(Fdt::parse(&with_nop).unwrap(), tiny_tree());
    }

    #[test]
    fn corrupt_blobs_are_named() {
        assert!(matches!(
            Fdt::parse(&TINY[..20]),
            Err(Error::Truncated {
                what: "the header",
                ..
            })
        ));
        assert!(matches!(
            Fdt::parse(&TINY[..0x80]),
            Err(Error::Truncated {
                what: "totalsize",
                ..
            })
        ));
        let mut b = TINY;
        b[0] = 0;
        assert!(matches!(Fdt::parse(&b), Err(Error::BadMagic(_))));
        let mut b = TINY;
        b[0x0b] = 0x39; // off_dt_struct misaligned
        assert!(matches!(Fdt::parse(&b), Err(Error::Misaligned { .. })));
        let mut b = TINY;
        b[0x0f] = 0x8a; // strings block past the end
        assert!(matches!(Fdt::parse(&b), Err(Error::BadBlock { .. })));
        let mut b = TINY;
        b[0x43] = 7; // unknown token instead of FDT_PROP
        assert!(matches!(Fdt::parse(&b), Err(Error::BadStructure { .. })));
        let mut b = TINY;
        b[0x4b] = 0x60; // name offset outside the strings block
        assert!(matches!(Fdt::parse(&b), Err(Error::BadStringOffset(0x60))));
        let mut b = TINY;
        b[0x7f] = 2; // FDT_END replaced: the block ends without it
        assert!(matches!(Fdt::parse(&b), Err(Error::BadStructure { .. })));
        let mut b = TINY;
        b[0x47] = 0xff; // property length runs past the block
        assert!(matches!(Fdt::parse(&b), Err(Error::BadStructure { .. })));
    }

    #[test]
    fn no_mutation_or_truncation_panics() {
        let mut t = tiny_tree();
        t.reserved.push(ReserveEntry {
            address: 1,
            size: 2,
        });
        let good = t.to_bytes();
        for cut in 0..good.len() {
            assert!(Fdt::parse(&good[..cut]).is_err(), "cut at {cut} accepted");
        }
        for i in 0..good.len() {
            for v in [0x00, 0x01, 0x02, 0x03, 0x04, 0x09, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                // Any result is fine; a panic is not.
                let _ = Fdt::parse(&b);
            }
        }
    }

    #[test]
    fn paths_and_unit_addresses() {
        let mut t = Fdt::new();
        t.node_or_insert("/soc/pl061@9030000")
            .set_str("status", "okay");
        assert!(t.node("/soc/pl061").is_some());
        assert!(t.node("/soc/pl061@9030000").is_some());
        assert!(t.node("/soc/pl061@1").is_none());
        t.node_or_insert("/soc/pl061").set_u32("x", 1);
        assert_eq!(t.node("/soc").unwrap().children.len(), 1);
        assert_eq!(
            t.node("/soc/pl061").unwrap().prop("x").unwrap().as_u32(),
            Some(1)
        );
    }

    #[test]
    fn strings_are_stored_once() {
        let mut t = Fdt::new();
        for n in ["a", "b", "c"] {
            t.node_or_insert(n).set_str("status", "okay");
        }
        let b = t.to_bytes();
        let h = FdtHeader::new_checked(&b[..]).unwrap();
        assert_eq!(h.size_dt_strings(), 7);
    }

    #[test]
    fn property_accessors() {
        let p = Property {
            name: "compatible".into(),
            value: b"a,b\0c\0".to_vec(),
        };
        assert_eq!(p.as_str(), None);
        assert_eq!(p.as_str_list(), Some(vec!["a,b", "c"]));
        let p = Property {
            name: "reg".into(),
            value: vec![0, 0, 0, 1, 0, 0, 0, 2],
        };
        assert_eq!(p.as_cells(), Some(vec![1, 2]));
        assert_eq!(p.as_u32(), None);
    }
}
