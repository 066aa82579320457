//! The board set compiled into lmx, so an installed binary works from
//! any directory.
//!
//! The files are the same ones shipped in this crate's directory
//! (`boards/*.toml` and `boards/families/*.toml`); a test checks that
//! this list and the directory agree, so adding a board file without
//! listing it here fails the build's tests.

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinFile {
    /// Path inside the `boards/` directory, e.g. `families/ath79.toml`.
    pub path: &'static str,
    /// Name (file name without `.toml`).
    pub name: &'static str,
    /// Whether it is a family rather than a board.
    pub family: bool,
    /// The file's text.
    pub text: &'static str,
}

macro_rules! board {
    ($name:literal) => {
        BuiltinFile {
            path: concat!($name, ".toml"),
            name: $name,
            family: false,
            text: include_str!(concat!("../", $name, ".toml")),
        }
    };
}

macro_rules! family {
    ($name:literal) => {
        BuiltinFile {
            path: concat!("families/", $name, ".toml"),
            name: $name,
            family: true,
            text: include_str!(concat!("../families/", $name, ".toml")),
        }
    };
}

/// Every built-in board and family.
pub const FILES: &[BuiltinFile] = &[
    family!("mips-kseg"),
    family!("ath79"),
    family!("ramips-legacy"),
    family!("mt7621"),
    family!("mediatek-arm64"),
    family!("qemu-virt"),
    family!("qemu-malta"),
    board!("gl-ar750"),
    board!("gl-mt300a"),
    board!("gl-mt300n-v2"),
    board!("tp-archer-ax23"),
    board!("zyxel-nwa50ax"),
    board!("belkin-rt3200"),
    board!("openwrt-one"),
    board!("turris-omnia"),
    board!("qemu-aarch64"),
    board!("qemu-aarch64-mt7622"),
    board!("qemu-armv7l"),
    board!("qemu-mips"),
    board!("qemu-mips-ar750"),
    board!("qemu-mipsel"),
    board!("qemu-mipsel-mt300"),
    board!("qemu-mipsel-stock"),
];
