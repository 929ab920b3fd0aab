//! The snarkjs readers (.zkey, .r1cs, .wtns) and their layout checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofrack_snarkjs as snarkjs;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let zkey = snarkjs::read_zkey(data);
    if snarkjs::check_zkey_layout(&mut std::io::Cursor::new(data), len).is_err() {
        assert!(zkey.is_err());
    }
    let r1cs = snarkjs::read_r1cs(data);
    if snarkjs::check_r1cs_layout(&mut std::io::Cursor::new(data), len).is_err() {
        assert!(r1cs.is_err());
    }
    let wtns = snarkjs::read_wtns(data);
    if snarkjs::check_wtns_layout(&mut std::io::Cursor::new(data), len).is_err() {
        assert!(wtns.is_err());
    }
});
