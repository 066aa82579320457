//! Shared test helpers.
#![allow(dead_code)]
pub mod fake;
pub mod qemu;
