#![no_main]
//! Any file through lmx image info (uImage, FIT, FDT) and the codecs' round trips (lmx_builder::fuzzing::check_image).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmx_builder::fuzzing::check_image(data);
});
