//! A tiny `mkimage` look-alike over `lmx_builder::uimage`, for the
//! benchmark in `bench/builder.sh` and for manual comparisons:
//!
//! ```text
//! mkuimage ARCH TYPE COMP LOAD ENTRY NAME INPUT OUTPUT
//! ```
//!
//! COMP names the compression the input already has, as `mkimage -C`
//! does; the timestamp comes from `SOURCE_DATE_EPOCH`.

use lmx_builder::uimage::{Arch, Compression, ImageType, Os, UImageSpec};
use std::process::ExitCode;

fn parse_addr(s: &str) -> Option<u32> {
    let s = s.trim_start_matches("0x");
    u32::from_str_radix(s, 16).ok()
}

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 8 {
        eprintln!("usage: mkuimage ARCH TYPE COMP LOAD ENTRY NAME INPUT OUTPUT");
        return ExitCode::from(2);
    }
    let (Some(arch), Some(ty), Some(comp), Some(load), Some(entry)) = (
        Arch::from_mkimage_name(&a[0]),
        ImageType::from_mkimage_name(&a[1]),
        Compression::from_mkimage_name(&a[2]),
        parse_addr(&a[3]),
        parse_addr(&a[4]),
    ) else {
        eprintln!("mkuimage: bad architecture, type, compression or address");
        return ExitCode::from(2);
    };
    let spec = UImageSpec {
        name: a[5].clone(),
        arch,
        os: Os::Linux,
        image_type: ty,
        compression: comp,
        load_addr: load,
        entry_point: entry,
        timestamp: lmx_builder::uimage::source_date_epoch(),
    };
    let data = match std::fs::read(&a[6]) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mkuimage: cannot read {}: {e}", a[6]);
            return ExitCode::FAILURE;
        }
    };
    let img = match spec.build(&data) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("mkuimage: {}: {e}", a[6]);
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = lmx_builder::write_atomically(std::path::Path::new(&a[7]), &img) {
        eprintln!("mkuimage: cannot write {}: {e}", a[7]);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
