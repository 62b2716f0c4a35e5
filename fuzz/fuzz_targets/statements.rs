//! See `lakehouse_fuzz::statements`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        lakehouse_fuzz::statements::init();
    },
    |data: &[u8]| {
        lakehouse_fuzz::statements::run(data);
    }
);
