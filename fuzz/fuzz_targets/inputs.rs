//! Input JSON of the built-in circuits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let c = proofrack_kernels::circuits::circuit_by_name("mimc-4").expect("mimc-4");
        let _ = c.parse_inputs(text);
    }
});
