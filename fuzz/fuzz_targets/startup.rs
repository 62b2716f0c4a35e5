//! See `lakehouse_fuzz::startup`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        lakehouse_fuzz::startup::init();
    },
    |data: &[u8]| {
        lakehouse_fuzz::startup::run(data);
    }
);
