#![no_main]
//! Any board output, timing and operation order into the console's ShellMachine (lmx_console::fuzzing::check_machine).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmx_console::fuzzing::check_machine(data);
});
