//! See `lakehouse_fuzz::extended`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        lakehouse_fuzz::extended::init();
    },
    |data: &[u8]| {
        lakehouse_fuzz::extended::run(data);
    }
);
