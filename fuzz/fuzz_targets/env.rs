#![no_main]
//! Any flash dump under any environment layout, and any mkenvimage text (lmx_env::fuzzing::check_env).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lmx_env::fuzzing::check_env(data);
});
