//! Bad inputs get errors that say what is wrong: wrong public inputs, a truncated zkey, a zkey
//! for another curve (a real BLS12-381 one made by snarkjs), a witness of the wrong length and
//! a witness that does not satisfy the circuit.

use super::tools::{self, s};
use proofrack::snarkjs_cmds::{self, VerifyArgs};
use proofrack_kernels::curve::Fr;
use proofrack_snarkjs as snarkjs;

fn message(e: impl std::fmt::Display) -> String {
    format!("{e:#}")
}

#[test]
fn wrong_public_inputs_are_refused_with_the_reason() {
    let b = tools::poseidon();
    let key = snarkjs_cmds::load_zkey(&b.zkey).unwrap();
    let witness = snarkjs_cmds::load_witness(&b.wtns, &key).unwrap();
    let (proof, public) = snarkjs_cmds::prove_witness(&key, &witness).unwrap();
    let dir = b.dir.join("wrong-public");
    // a wrong value: the proof does not verify, and the CLI says so
    let mut wrong = public.clone();
    wrong[1] = Fr::from(6u64);
    snarkjs_cmds::write_outputs(&dir, &proof, &wrong).unwrap();
    let args = VerifyArgs {
        vk: b.vk.clone(),
        proof: dir.join("proof.json"),
        public: dir.join("public.json"),
    };
    let e = message(snarkjs_cmds::verify(&args).unwrap_err());
    assert!(e.contains("INVALID") && e.contains("public"), "{e}");
    // too few values: snarkjs would treat the missing one as zero; we name the count
    std::fs::write(dir.join("public.json"), format!("[\"{}\"]", public[0])).unwrap();
    let e = message(snarkjs_cmds::verify(&args).unwrap_err());
    assert!(
        e.contains("1 public values given but the verification key takes 2"),
        "{e}"
    );
    // a value that is not a field element
    let r = snarkjs::json::scalar_modulus();
    std::fs::write(
        dir.join("public.json"),
        format!("[\"{}\", \"{r}\"]", public[0]),
    )
    .unwrap();
    let e = message(snarkjs_cmds::verify(&args).unwrap_err());
    assert!(e.contains("public input 1") && e.contains("below r"), "{e}");
}

#[test]
fn truncated_zkey_names_the_section() {
    let b = tools::poseidon();
    let bytes = std::fs::read(&b.zkey).unwrap();
    for keep in [bytes.len() / 2, bytes.len() - 100, 200] {
        let e = message(snarkjs::read_zkey(&bytes[..keep]).unwrap_err());
        assert!(
            e.contains("zkey is truncated in section") && e.contains("copy it again"),
            "{e}"
        );
    }
    let cut = b.dir.join("cut.zkey");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let e = message(snarkjs_cmds::load_zkey(&cut).unwrap_err());
    assert!(
        e.contains("cut.zkey") && e.contains("truncated in section"),
        "{e}"
    );
}

#[test]
fn zkey_for_another_curve_is_refused() {
    let dir = tools::work_dir().join("bls");
    std::fs::create_dir_all(&dir).unwrap();
    let ptau = tools::make_ptau("bls12-381", 4, &dir);
    let b = tools::build(
        "bls_product",
        "pragma circom 2.0.0;\ntemplate P() { signal input a; signal input b; signal output c; c <== a * b; }\ncomponent main = P();\n",
        r#"{"a": "3", "b": "4"}"#,
        "bls12381",
        &ptau,
    );
    let e = message(snarkjs_cmds::load_zkey(&b.zkey).unwrap_err());
    assert!(
        e.contains("another curve") && e.contains("381-bit") && e.contains("bn128"),
        "{e}"
    );
    let e = message(snarkjs::read_wtns(&std::fs::read(&b.wtns).unwrap()).unwrap_err());
    assert!(e.contains("another curve"), "{e}");
    let _ = s(&b.dir);
}

#[test]
fn witness_of_wrong_length_or_unsatisfying_is_refused() {
    let (p, m) = (tools::poseidon(), tools::mimc());
    let key = snarkjs_cmds::load_zkey(&p.zkey).unwrap();
    // MiMC's witness against Poseidon's key
    let e = message(snarkjs_cmds::load_witness(&m.wtns, &key).unwrap_err());
    assert!(
        e.contains("witness has") && e.contains("belongs to another circuit"),
        "{e}"
    );
    let mut witness = snarkjs::read_wtns(&std::fs::read(&m.wtns).unwrap()).unwrap();
    let e = message(snarkjs_cmds::prove_witness(&key, &witness).unwrap_err());
    assert!(e.contains("belongs to another circuit"), "{e}");
    // right length, one private value changed: the proof is refused before it leaves
    witness = snarkjs::read_wtns(&std::fs::read(&p.wtns).unwrap()).unwrap();
    let last = witness.len() - 1;
    witness[last] += Fr::from(1u64);
    let e = message(snarkjs_cmds::prove_witness(&key, &witness).unwrap_err());
    assert!(e.contains("does not satisfy the circuit"), "{e}");
}

#[test]
fn inputs_that_violate_the_circuit_are_refused_at_witness_generation() {
    let b = tools::merkle();
    let snarkjs_bin = tools::repo_root().join("node_modules/.bin/snarkjs");
    let wasm = b.dir.join("merkle_circuit_js/merkle_circuit.wasm");
    let input = b.dir.join("bad-input.json");
    // an index bit of 2 breaks `index_bits[i] * (1 - index_bits[i]) === 0`
    std::fs::write(
        &input,
        r#"{"leaf": "42", "siblings": ["17", "99"], "index_bits": ["2", "0"]}"#,
    )
    .unwrap();
    let e = message(
        snarkjs_cmds::calculate_witness(&snarkjs_bin, &wasm, &input, &b.dir.join("bad.wtns"))
            .unwrap_err(),
    );
    assert!(e.contains("do not satisfy the circuit"), "{e}");
    // good inputs through `proofrack prove --input` give a proof snarkjs accepts
    let out = b.dir.join("from-input");
    snarkjs_cmds::prove(&snarkjs_cmds::ProveArgs {
        zkey: b.zkey.clone(),
        wtns: None,
        input: Some(b.dir.join("input.json")),
        wasm: Some(wasm),
        snarkjs: snarkjs_bin,
        backend: proofrack_agent::BackendChoice::Auto,
        out_dir: out.clone(),
    })
    .unwrap();
    assert!(tools::snarkjs_verifies(
        &b.vk,
        &out.join("public.json"),
        &out.join("proof.json")
    ));
}
