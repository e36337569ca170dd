//! Fuzz target: `codeward_policies::fuzzing::check_path_body` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    codeward_policies::fuzzing::check_path_body(data);
});
