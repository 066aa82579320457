#![no_main]
//! The ShellMachine against a model U-Boot over a noisy line: the typing and failure invariants (lmx_console::fuzzing::check_session).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmx_console::fuzzing::check_session(data);
});
