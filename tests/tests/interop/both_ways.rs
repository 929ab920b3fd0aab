//! Proofs from our prover pass `snarkjs groth16 verify`; snarkjs' proofs pass ours.

use super::tools::{self, s, snarkjs_verifies, Built};
use proofrack::snarkjs_cmds::{self, VerifyArgs};
use proofrack_snarkjs as snarkjs;
use serde_json::Value;
use std::path::Path;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn verify_args(vk: &Path, dir: &Path) -> VerifyArgs {
    VerifyArgs {
        vk: vk.to_path_buf(),
        proof: dir.join("proof.json"),
        public: dir.join("public.json"),
    }
}

/// The whole interop round for one circuit.
fn both_ways(b: &Built) {
    // the zkey read by us gives snarkjs' own verification key, field for field
    let key = snarkjs_cmds::load_zkey(&b.zkey).unwrap();
    let ours_vk = snarkjs::vk_to_json(&key.verifying_key());
    let theirs_vk = json(&b.vk);
    for field in [
        "nPublic",
        "vk_alpha_1",
        "vk_beta_2",
        "vk_gamma_2",
        "vk_delta_2",
        "vk_alphabeta_12",
        "IC",
    ] {
        assert_eq!(ours_vk[field], theirs_vk[field], "{field} differs");
    }

    // ours → snarkjs
    let witness = snarkjs_cmds::load_witness(&b.wtns, &key).unwrap();
    let (proof, public) = snarkjs_cmds::prove_witness(&key, &witness).unwrap();
    let ours = b.dir.join("ours");
    snarkjs_cmds::write_outputs(&ours, &proof, &public).unwrap();
    assert!(
        snarkjs_verifies(&b.vk, &ours.join("public.json"), &ours.join("proof.json")),
        "snarkjs rejects our proof for {}",
        b.dir.display()
    );
    assert!(snarkjs_cmds::verify_files(&verify_args(&b.vk, &ours)).unwrap());
    // our binary proof verifies too
    let bin_args = VerifyArgs {
        proof: ours.join("proof.bin"),
        ..verify_args(&b.vk, &ours)
    };
    assert!(snarkjs_cmds::verify_files(&bin_args).unwrap());

    // snarkjs → ours
    let theirs = b.dir.join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    tools::run(
        "snarkjs",
        &[
            "groth16",
            "prove",
            s(&b.zkey),
            s(&b.wtns),
            s(&theirs.join("proof.json")),
            s(&theirs.join("public.json")),
        ],
    );
    assert!(snarkjs_cmds::verify_files(&verify_args(&b.vk, &theirs)).unwrap());
    assert_eq!(
        json(&theirs.join("public.json")),
        json(&ours.join("public.json")),
        "our public.json must match snarkjs' (same values, same order)"
    );

    // a changed public value is rejected by both verifiers
    let mut tampered = public.clone();
    tampered[0] += proofrack_kernels::curve::Fr::from(1u64);
    let bad = b.dir.join("tampered");
    snarkjs_cmds::write_outputs(&bad, &proof, &tampered).unwrap();
    assert!(!snarkjs_verifies(
        &b.vk,
        &bad.join("public.json"),
        &bad.join("proof.json")
    ));
    assert!(!snarkjs_cmds::verify_files(&verify_args(&b.vk, &bad)).unwrap());
    std::fs::copy(theirs.join("proof.json"), bad.join("proof.json")).unwrap();
    assert!(!snarkjs_cmds::verify_files(&verify_args(&b.vk, &bad)).unwrap());
}

#[test]
fn poseidon_both_ways() {
    both_ways(tools::poseidon());
}

#[test]
fn mimc7_both_ways() {
    both_ways(tools::mimc());
}

#[test]
fn merkle_proof_both_ways() {
    both_ways(tools::merkle());
}
