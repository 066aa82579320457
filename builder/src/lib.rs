//! `lmx-builder`: the boot artifacts a router boots from RAM or flash.
pub mod compress;
pub mod dtedit;
pub mod fdt;
pub mod fit;
pub mod squashfs;
pub mod uimage;
