#![no_main]
//! Any datagram: parsing never panics, and what parses re-emits to bytes
//! that parse to the same packet.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmx_tftpd::fuzzing::check_packet(data);
});
