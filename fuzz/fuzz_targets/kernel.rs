#![no_main]
//! Any kernel file through lmx build's kernel inspection: ELF, byte order, sizes, build_kernel (lmx_builder::fuzzing::check_kernel).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmx_builder::fuzzing::check_kernel(data);
});
