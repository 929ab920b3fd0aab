//! Groth16 on the CPU backend against arkworks: ark-groth16 verifies our proofs, generates the
//! same keys from the same toxic waste and, with the circom reduction, proves byte-identical
//! proofs for the same r, s.

use ark_bn254::{Bn254, Fr};
use ark_ec::{CurveGroup, PrimeGroup};
use ark_ff::{AdditiveGroup, Field, UniformRand};
use ark_groth16::Groth16;
use ark_snark::SNARK;
use ark_std::rand::{rngs::StdRng, SeedableRng};
use proofrack_kernels::circuits::{Circuit, MimcInputs};
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::groth16::{
    generate_key, generate_key_with_rng, prepare_verifying_key, proof_from_bytes, proof_to_bytes,
    prove, verify, CircomReduction, PreparedKey, ProveError, ProvingKey, ToxicWaste, VerifyError,
};

type ArkCircom = Groth16<Bn254, CircomReduction>;

fn random_inputs(rng: &mut StdRng) -> MimcInputs {
    MimcInputs {
        x: Fr::rand(rng),
        key: Fr::rand(rng),
    }
}

fn edge_inputs() -> Vec<MimcInputs> {
    vec![
        MimcInputs {
            x: Fr::ZERO,
            key: Fr::ZERO,
        },
        MimcInputs {
            x: -Fr::ONE,
            key: Fr::ZERO,
        },
        MimcInputs {
            x: -Fr::ONE,
            key: -Fr::ONE,
        },
        MimcInputs {
            x: Fr::ZERO,
            key: -Fr::ONE,
        },
    ]
}

/// ark's generator draws τ as the first field element from its RNG; replay that.
fn ark_key_and_ours(circuit: &Circuit, seed: u64) -> (ark_groth16::ProvingKey<Bn254>, ProvingKey) {
    let mut waste_rng = StdRng::seed_from_u64(seed ^ 0xabcdef);
    let tw = ToxicWaste {
        tau: Fr::rand(&mut StdRng::seed_from_u64(seed)),
        alpha: Fr::rand(&mut waste_rng),
        beta: Fr::rand(&mut waste_rng),
        gamma: Fr::rand(&mut waste_rng),
        delta: Fr::rand(&mut waste_rng),
    };
    let ark_pk = ArkCircom::generate_parameters_with_qap(
        circuit.chain().synthesizer(None),
        tw.alpha,
        tw.beta,
        tw.gamma,
        tw.delta,
        ark_bn254::G1Projective::generator(),
        ark_bn254::G2Projective::generator(),
        &mut StdRng::seed_from_u64(seed),
    )
    .unwrap();
    let ours = generate_key(&circuit.r1cs(), &tw).unwrap();
    (ark_pk, ours)
}

#[test]
fn our_setup_equals_ark_groth16_setup_with_the_circom_reduction() {
    for log2 in [4u32, 6, 9] {
        let circuit = Circuit::mimc(log2).unwrap();
        let (ark_pk, ours) = ark_key_and_ours(&circuit, 10 + log2 as u64);
        assert_eq!(ours.to_ark(), ark_pk, "2^{log2}");
    }
}

#[test]
fn proofs_verify_in_ark_groth16_and_match_its_prover_byte_for_byte() {
    let cpu = CpuBackend::new();
    let mut rng = StdRng::seed_from_u64(20);
    for log2 in [4u32, 5, 8, 10] {
        let circuit = Circuit::mimc(log2).unwrap();
        let (ark_pk, key) = ark_key_and_ours(&circuit, 30 + log2 as u64);
        let prepared = PreparedKey::new(&cpu, &key).unwrap();
        let r1cs = circuit.r1cs();
        let matrices = [r1cs.a().to_ark(), r1cs.b().to_ark(), r1cs.c().to_ark()];
        let mut inputs = edge_inputs();
        inputs.push(random_inputs(&mut rng));
        for input in inputs {
            let witness = circuit.witness(&input);
            let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
            let proof = prove(&cpu, &prepared, &witness.full, r, s).unwrap();
            assert!(
                ArkCircom::verify(&ark_pk.vk, &witness.public, &proof).unwrap(),
                "2^{log2} {input:?}"
            );
            let ark_from_matrices = ArkCircom::create_proof_with_reduction_and_matrices(
                &ark_pk,
                r,
                s,
                &matrices,
                circuit.num_public() + 1,
                circuit.num_constraints(),
                &witness.full,
            )
            .unwrap();
            assert_eq!(proof_to_bytes(&proof), proof_to_bytes(&ark_from_matrices));
            let ark_from_circuit = ArkCircom::create_proof_with_reduction(
                circuit.chain().synthesizer(Some(input)),
                &ark_pk,
                r,
                s,
            )
            .unwrap();
            assert_eq!(proof, ark_from_circuit);
        }
    }
}

#[test]
fn r_and_s_zero_and_fixed_blinding_are_deterministic() {
    let cpu = CpuBackend::new();
    let circuit = Circuit::mimc(5).unwrap();
    let key = generate_key_with_rng(&circuit.r1cs(), &mut StdRng::seed_from_u64(1)).unwrap();
    let prepared = PreparedKey::new(&cpu, &key).unwrap();
    let pvk = prepare_verifying_key(&key.verifying_key());
    let w = circuit.witness(&MimcInputs {
        x: Fr::from(3u64),
        key: Fr::from(4u64),
    });
    let p0 = prove(&cpu, &prepared, &w.full, Fr::ZERO, Fr::ZERO).unwrap();
    assert!(verify(&pvk, &w.public, &p0).unwrap());
    let (r, s) = (Fr::from(11u64), Fr::from(12u64));
    let p1 = prove(&cpu, &prepared, &w.full, r, s).unwrap();
    assert_eq!(p1, prove(&cpu, &prepared, &w.full, r, s).unwrap());
    let p2 = prove(&cpu, &prepared, &w.full, s, r).unwrap();
    assert_ne!(p1, p2);
    assert!(verify(&pvk, &w.public, &p1).unwrap() && verify(&pvk, &w.public, &p2).unwrap());
    assert_eq!(proof_from_bytes(&proof_to_bytes(&p1)).unwrap(), p1);
}

#[test]
fn wrong_witnesses_and_wrong_statements_do_not_verify() {
    let cpu = CpuBackend::new();
    let mut rng = StdRng::seed_from_u64(40);
    let circuit = Circuit::mimc(6).unwrap();
    let key = generate_key_with_rng(&circuit.r1cs(), &mut rng).unwrap();
    let prepared = PreparedKey::new(&cpu, &key).unwrap();
    let pvk = prepare_verifying_key(&key.verifying_key());
    let w = circuit.witness(&random_inputs(&mut rng));

    // A private value changed: the proof is produced but does not verify.
    let mut bad = w.full.clone();
    bad[10] += Fr::ONE;
    let proof = prove(
        &cpu,
        &prepared,
        &bad,
        Fr::rand(&mut rng),
        Fr::rand(&mut rng),
    )
    .unwrap();
    assert!(!verify(&pvk, &w.public, &proof).unwrap());

    // The claimed output changed in the witness (so the last constraint fails).
    let mut bad = w.full.clone();
    bad[1] += Fr::ONE;
    let proof = prove(
        &cpu,
        &prepared,
        &bad,
        Fr::rand(&mut rng),
        Fr::rand(&mut rng),
    )
    .unwrap();
    let claimed = [bad[1], bad[2], bad[3]];
    assert!(!verify(&pvk, &claimed, &proof).unwrap());

    // A good proof checked against another statement.
    let proof = prove(
        &cpu,
        &prepared,
        &w.full,
        Fr::rand(&mut rng),
        Fr::rand(&mut rng),
    )
    .unwrap();
    assert!(verify(&pvk, &w.public, &proof).unwrap());
    for i in 0..3 {
        let mut public = w.public.clone();
        public[i] += Fr::ONE;
        assert!(
            !verify(&pvk, &public, &proof).unwrap(),
            "public input {i} tampered"
        );
    }
    assert_eq!(
        verify(&pvk, &w.public[..2], &proof),
        Err(VerifyError::PublicInputCount {
            expected: 3,
            got: 2
        })
    );
    // A proof for another key's circuit of the same shape.
    let other = generate_key_with_rng(&circuit.r1cs(), &mut rng).unwrap();
    let other_pvk = prepare_verifying_key(&other.verifying_key());
    assert!(!verify(&other_pvk, &w.public, &proof).unwrap());
    // A tampered proof element (still a valid point).
    let mut tampered = proof.clone();
    tampered.a = (tampered.a + ark_bn254::G1Projective::generator()).into_affine();
    assert!(!verify(&pvk, &w.public, &tampered).unwrap());
}

#[test]
fn bad_witness_shapes_are_typed_errors() {
    let cpu = CpuBackend::new();
    let circuit = Circuit::mimc(4).unwrap();
    let key = generate_key_with_rng(&circuit.r1cs(), &mut StdRng::seed_from_u64(2)).unwrap();
    let prepared = PreparedKey::new(&cpu, &key).unwrap();
    let w = circuit.witness(&MimcInputs {
        x: Fr::ONE,
        key: Fr::ONE,
    });
    let n = w.full.len();
    match prove(&cpu, &prepared, &w.full[..n - 1], Fr::ONE, Fr::ONE) {
        Err(ProveError::WitnessLength { expected, got }) => assert_eq!((expected, got), (n, n - 1)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        prove(&cpu, &prepared, &[], Fr::ONE, Fr::ONE),
        Err(ProveError::WitnessLength { .. })
    ));
    let mut w0 = w.full.clone();
    w0[0] = Fr::from(2u64);
    assert!(matches!(
        prove(&cpu, &prepared, &w0, Fr::ONE, Fr::ONE),
        Err(ProveError::WitnessConstant { .. })
    ));
}

/// Setup and prove at every test size, with times (run with --nocapture to see them).
#[test]
fn sizes_2_4_to_2_14_prove_and_verify() {
    let cpu = CpuBackend::new();
    let mut rng = StdRng::seed_from_u64(50);
    for log2 in [4u32, 7, 10, 12, 14] {
        check_size(&cpu, log2, &mut rng);
    }
}

/// About 8 s of CPU in the test profile (setup 3.6 s, proof 2.5 s, the rest verification and
/// witness): about 4 s on two idle cores, so it runs in CI.
#[test]
fn size_2_16_proves_and_verifies() {
    check_size(&CpuBackend::new(), 16, &mut StdRng::seed_from_u64(60));
}

fn check_size(cpu: &CpuBackend, log2: u32, rng: &mut StdRng) {
    let circuit = Circuit::mimc(log2).unwrap();
    let t = std::time::Instant::now();
    let key = generate_key_with_rng(&circuit.r1cs(), rng).unwrap();
    let setup = t.elapsed();
    let prepared = PreparedKey::new(cpu, &key).unwrap();
    let w = circuit.witness(&random_inputs(rng));
    let t = std::time::Instant::now();
    let proof = prove(cpu, &prepared, &w.full, Fr::rand(rng), Fr::rand(rng)).unwrap();
    let proving = t.elapsed();
    assert!(
        ArkCircom::verify(&key.verifying_key(), &w.public, &proof).unwrap(),
        "2^{log2}"
    );
    println!("2^{log2}: setup {setup:?}, prove {proving:?}");
}

/// Hand-made systems for the layout edge cases: no public inputs, and no private values
/// (an empty L query). `x·x = y`, `y·x = z` with variables (1, x, y, z).
#[test]
fn zero_public_inputs_and_zero_private_values() {
    use proofrack_kernels::groth16::{R1cs, SparseMatrix};
    let cpu = CpuBackend::new();
    let mut rng = StdRng::seed_from_u64(70);
    let rows = |r: &[&[(u64, u32)]]| {
        let mut m = SparseMatrix::new();
        for row in r {
            m.push_row(row.iter().map(|&(c, v)| (Fr::from(c), v)));
        }
        m
    };
    let a = rows(&[&[(1, 1)], &[(1, 2)]]);
    let b = rows(&[&[(1, 1)], &[(1, 1)]]);
    let c = rows(&[&[(1, 2)], &[(1, 3)]]);
    let x = Fr::from(3u64);
    let witness = [Fr::ONE, x, x * x, x * x * x];
    for num_public in [0usize, 3] {
        let r1cs = R1cs::new(num_public, 4, a.clone(), b.clone(), c.clone()).unwrap();
        let key = generate_key_with_rng(&r1cs, &mut rng).unwrap();
        assert_eq!(key.parts().l_query.len(), 3 - num_public);
        let prepared = PreparedKey::new(&cpu, &key).unwrap();
        let proof = prove(
            &cpu,
            &prepared,
            &witness,
            Fr::rand(&mut rng),
            Fr::rand(&mut rng),
        )
        .unwrap();
        let public = &witness[1..=num_public];
        let pvk = prepare_verifying_key(&key.verifying_key());
        assert!(
            verify(&pvk, public, &proof).unwrap(),
            "num_public = {num_public}"
        );
        assert!(ArkCircom::verify(&key.verifying_key(), public, &proof).unwrap());
        let mut bad = witness;
        bad[3] += Fr::ONE;
        let proof = prove(
            &cpu,
            &prepared,
            &bad,
            Fr::rand(&mut rng),
            Fr::rand(&mut rng),
        )
        .unwrap();
        assert!(!verify(&pvk, &bad[1..=num_public], &proof).unwrap());
    }
}
