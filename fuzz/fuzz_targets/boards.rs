#![no_main]
//! Any board (and family) TOML resolved as from --boards-dir (lmx_boards::fuzzing::check_board_files).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmx_boards::fuzzing::check_board_files(data);
});
