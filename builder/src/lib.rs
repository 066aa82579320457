//! `lmx-builder`: the boot artifacts a router boots from RAM or flash.
pub mod compress;
pub mod fdt;
pub mod uimage;
