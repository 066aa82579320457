#![no_main]
//! A sequence of datagrams and timer ticks thrown at both state machines:
//! no panic, bounded buffers, bounded output.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmx_tftpd::fuzzing::check_transfers(data);
});
