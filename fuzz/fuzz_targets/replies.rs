#![no_main]
//! Any command output through U-Boot's reply parsers: printenv, crc32, Bytes transferred, filesize, help, bad blocks, md.b, the boot console (lmx_session::fuzzing::check_replies).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmx_session::fuzzing::check_replies(data);
});
