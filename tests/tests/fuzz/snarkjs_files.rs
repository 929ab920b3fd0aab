//! The snarkjs readers on bytes a client uploads: `.zkey`, `.r1cs`, `.wtns`, arbitrary and
//! mutated from valid files of a small circuit; and the layout check the coordinator runs
//! from disk before reading a file into memory, which may only refuse what the full reader
//! refuses too.

use super::mutate::{apply, config, mutations};
use proofrack_kernels::circuits::circuit_by_name;
use proofrack_kernels::groth16::setup::generate_key_with_rng;
use proofrack_snarkjs as snarkjs;
use proptest::prelude::*;
use std::sync::OnceLock;

/// Valid files of mimc-4: (zkey, r1cs, wtns).
fn files() -> &'static (Vec<u8>, Vec<u8>, Vec<u8>) {
    static FILES: OnceLock<(Vec<u8>, Vec<u8>, Vec<u8>)> = OnceLock::new();
    FILES.get_or_init(|| {
        let circuit = circuit_by_name("mimc-4").expect("mimc-4");
        let r1cs = circuit.r1cs();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let key = generate_key_with_rng(&r1cs, &mut rng).expect("a key for mimc-4");
        let witness = circuit
            .witness_from_json(r#"{"x":"3","key":"5"}"#)
            .expect("a witness");
        (
            snarkjs::write_zkey(&key),
            snarkjs::write_r1cs(&r1cs, 1),
            snarkjs::write_wtns(&witness.full),
        )
    })
}

use rand::SeedableRng;

/// Reads `bytes` as each kind; if the layout check refuses a file, the reader must too.
fn read_every_way(bytes: &[u8]) {
    let zkey = snarkjs::read_zkey(bytes);
    let r1cs = snarkjs::read_r1cs(bytes);
    let wtns = snarkjs::read_wtns(bytes);
    let len = bytes.len() as u64;
    let cursor = || std::io::Cursor::new(bytes);
    if snarkjs::check_zkey_layout(&mut cursor(), len).is_err() {
        assert!(
            zkey.is_err(),
            "the zkey layout check refused a zkey the reader took"
        );
    }
    if snarkjs::check_r1cs_layout(&mut cursor(), len).is_err() {
        assert!(
            r1cs.is_err(),
            "the r1cs layout check refused an r1cs the reader took"
        );
    }
    if snarkjs::check_wtns_layout(&mut cursor(), len).is_err() {
        assert!(
            wtns.is_err(),
            "the wtns layout check refused a witness the reader took"
        );
    }
}

#[test]
fn the_seed_files_are_valid_and_pass_their_layout_checks() {
    let (zkey, r1cs, wtns) = files();
    snarkjs::read_zkey(zkey).expect("zkey");
    snarkjs::read_r1cs(r1cs).expect("r1cs");
    snarkjs::read_wtns(wtns).expect("wtns");
    let mut c = std::io::Cursor::new(zkey.as_slice());
    snarkjs::check_zkey_layout(&mut c, zkey.len() as u64).expect("zkey layout");
}

proptest! {
    #![proptest_config(config(1_500, 0xf4a3_0010))]

    #[test]
    fn arbitrary_bytes_never_panic_a_reader(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        read_every_way(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_magic_never_panic_a_reader(
        magic in prop_oneof![Just(*b"zkey"), Just(*b"r1cs"), Just(*b"wtns")],
        version in 0u32..4,
        rest in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&rest);
        read_every_way(&bytes);
    }
}

proptest! {
    #![proptest_config(config(300, 0xf4a3_0011))]

    #[test]
    fn mutated_valid_files_never_panic_a_reader(which in 0usize..3, ms in mutations()) {
        let (zkey, r1cs, wtns) = files();
        let seed = [zkey, r1cs, wtns][which];
        read_every_way(&apply(seed, &ms));
    }
}
