//! snarkjs' JSON files: `verification_key.json`, `proof.json`, `public.json`. Values are
//! decimal strings of canonical integers; G2 coordinates are `[c0, c1]`; points are affine
//! with z = "1", and the point at infinity is `["0", "1", "0"]`.

use ark_ec::{pairing::Pairing, AffineRepr};
use ark_ff::PrimeField;
use proofrack_kernels::curve::{Bn254, Fq, Fq2, Fr, G1Affine, G2Affine};
use serde_json::{json, Value};

use crate::{Proof, Result, SnarkjsError, VerifyingKey};

fn err(what: &'static str, reason: impl Into<String>) -> SnarkjsError {
    SnarkjsError::Json {
        what,
        reason: reason.into(),
    }
}

fn g1_json(p: &G1Affine) -> Value {
    match p.xy() {
        None => json!(["0", "1", "0"]),
        Some((x, y)) => json!([x.to_string(), y.to_string(), "1"]),
    }
}

fn fq2_json(f: &Fq2) -> Value {
    json!([f.c0.to_string(), f.c1.to_string()])
}

fn g2_json(p: &G2Affine) -> Value {
    match p.xy() {
        None => json!([["0", "0"], ["1", "0"], ["0", "0"]]),
        Some((x, y)) => json!([fq2_json(&x), fq2_json(&y), ["1", "0"]]),
    }
}

fn fq(v: &Value, what: &'static str) -> Result<Fq> {
    let s = v
        .as_str()
        .ok_or_else(|| err(what, "a coordinate is not a string"))?;
    crate::encoding::field_from_decimal::<Fq>(s)
        .ok_or_else(|| err(what, format!("{s:?} is not a decimal integer below q")))
}

fn fq2(v: &Value, what: &'static str) -> Result<Fq2> {
    match v.as_array().map(Vec::as_slice) {
        Some([c0, c1]) => Ok(Fq2::new(fq(c0, what)?, fq(c1, what)?)),
        _ => Err(err(what, "an Fq2 element is not a [c0, c1] pair")),
    }
}

fn g1(v: &Value, what: &'static str) -> Result<G1Affine> {
    let parts = v
        .as_array()
        .ok_or_else(|| err(what, "a G1 point is not an array"))?;
    let [x, y, z] = parts.as_slice() else {
        return Err(err(what, "a G1 point is not [x, y, z]"));
    };
    let z = fq(z, what)?;
    if z == Fq::from(0u64) {
        return Ok(G1Affine::zero());
    }
    if z != Fq::from(1u64) {
        return Err(err(what, "a G1 point is not affine (z must be \"1\")"));
    }
    let p = G1Affine::new_unchecked(fq(x, what)?, fq(y, what)?);
    if !p.is_on_curve() {
        return Err(err(what, "a G1 point is not on the BN254 curve"));
    }
    Ok(p)
}

fn g2(v: &Value, what: &'static str) -> Result<G2Affine> {
    let parts = v
        .as_array()
        .ok_or_else(|| err(what, "a G2 point is not an array"))?;
    let [x, y, z] = parts.as_slice() else {
        return Err(err(what, "a G2 point is not [x, y, z]"));
    };
    let z = fq2(z, what)?;
    if z == Fq2::from(0u64) {
        return Ok(G2Affine::zero());
    }
    if z != Fq2::from(1u64) {
        return Err(err(
            what,
            "a G2 point is not affine (z must be [\"1\", \"0\"])",
        ));
    }
    let p = G2Affine::new_unchecked(fq2(x, what)?, fq2(y, what)?);
    if !p.is_on_curve() || !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err(err(what, "a G2 point is not in BN254's G2 subgroup"));
    }
    Ok(p)
}

fn field<'a>(obj: &'a Value, key: &str, what: &'static str) -> Result<&'a Value> {
    obj.get(key)
        .ok_or_else(|| err(what, format!("the field {key:?} is missing")))
}

fn parse(text: &str, what: &'static str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| err(what, e.to_string()))
}

/// Requires `curve` (when present) to be bn128 and `protocol` (when present) groth16.
fn check_kind(v: &Value, what: &'static str) -> Result<()> {
    if let Some(p) = v.get("protocol").and_then(Value::as_str) {
        if p != "groth16" {
            return Err(err(
                what,
                format!("protocol is {p:?}; proofrack verifies groth16 only"),
            ));
        }
    }
    if let Some(c) = v.get("curve").and_then(Value::as_str) {
        if c != "bn128" && c != "bn254" {
            return Err(err(
                what,
                format!("curve is {c:?}; proofrack works over bn128 (BN254) only"),
            ));
        }
    }
    Ok(())
}

/// `verification_key.json` as `snarkjs zkey export verificationkey` writes it.
pub fn vk_to_json(vk: &VerifyingKey) -> Value {
    let ab = Bn254::pairing(vk.alpha_g1, vk.beta_g2).0;
    let f6 = |f: &ark_bn254::Fq6| json!([fq2_json(&f.c0), fq2_json(&f.c1), fq2_json(&f.c2)]);
    json!({
        "protocol": "groth16",
        "curve": "bn128",
        "nPublic": vk.gamma_abc_g1.len() - 1,
        "vk_alpha_1": g1_json(&vk.alpha_g1),
        "vk_beta_2": g2_json(&vk.beta_g2),
        "vk_gamma_2": g2_json(&vk.gamma_g2),
        "vk_delta_2": g2_json(&vk.delta_g2),
        "vk_alphabeta_12": [f6(&ab.c0), f6(&ab.c1)],
        "IC": vk.gamma_abc_g1.iter().map(g1_json).collect::<Vec<_>>(),
    })
}

/// Reads `verification_key.json`; `vk_alphabeta_12` is ignored (it is recomputed when needed).
pub fn vk_from_json(text: &str) -> Result<VerifyingKey> {
    const W: &str = "verification_key.json";
    let v = parse(text, W)?;
    check_kind(&v, W)?;
    let ic = field(&v, "IC", W)?
        .as_array()
        .ok_or_else(|| err(W, "IC is not an array"))?
        .iter()
        .map(|p| g1(p, W))
        .collect::<Result<Vec<_>>>()?;
    if ic.is_empty() {
        return Err(err(W, "IC is empty; it needs nPublic + 1 points"));
    }
    if let Some(n) = v.get("nPublic").and_then(Value::as_u64) {
        if n as usize + 1 != ic.len() {
            return Err(err(
                W,
                format!("nPublic is {n} but IC has {} points", ic.len()),
            ));
        }
    }
    Ok(VerifyingKey {
        alpha_g1: g1(field(&v, "vk_alpha_1", W)?, W)?,
        beta_g2: g2(field(&v, "vk_beta_2", W)?, W)?,
        gamma_g2: g2(field(&v, "vk_gamma_2", W)?, W)?,
        delta_g2: g2(field(&v, "vk_delta_2", W)?, W)?,
        gamma_abc_g1: ic,
    })
}

/// `proof.json` as `snarkjs groth16 prove` writes it.
pub fn proof_to_json(proof: &Proof) -> Value {
    json!({
        "pi_a": g1_json(&proof.a),
        "pi_b": g2_json(&proof.b),
        "pi_c": g1_json(&proof.c),
        "protocol": "groth16",
        "curve": "bn128",
    })
}

/// Reads `proof.json` (snarkjs or rapidsnark, with or without `curve`).
pub fn proof_from_json(text: &str) -> Result<Proof> {
    const W: &str = "proof.json";
    let v = parse(text, W)?;
    check_kind(&v, W)?;
    Ok(Proof {
        a: g1(field(&v, "pi_a", W)?, W)?,
        b: g2(field(&v, "pi_b", W)?, W)?,
        c: g1(field(&v, "pi_c", W)?, W)?,
    })
}

/// `public.json`: the public signals (outputs first) as decimal strings.
pub fn public_to_json(public: &[Fr]) -> Value {
    Value::Array(
        public
            .iter()
            .map(|f| Value::String(f.to_string()))
            .collect(),
    )
}

/// Reads `public.json`. Each value must be a canonical decimal below r (snarkjs would fail
/// verification on such values; we say which one is wrong instead).
pub fn public_from_json(text: &str) -> Result<Vec<Fr>> {
    const W: &str = "public.json";
    let v = parse(text, W)?;
    let items = v
        .as_array()
        .ok_or_else(|| err(W, "not an array of decimal strings"))?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let s = match item {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            };
            crate::encoding::field_from_decimal::<Fr>(&s)
                .ok_or(SnarkjsError::PublicValue { index, value: s })
        })
        .collect()
}

/// Fails unless `public` has as many values as `vk` takes (snarkjs itself does not check:
/// a short public.json acts as zeros).
pub fn check_public_count(vk: &VerifyingKey, public: &[Fr]) -> Result<()> {
    let expected = vk.gamma_abc_g1.len() - 1;
    if public.len() != expected {
        return Err(SnarkjsError::PublicCount {
            count: public.len(),
            expected,
        });
    }
    Ok(())
}

/// The modulus r as a decimal string (for messages).
pub fn scalar_modulus() -> String {
    Fr::MODULUS.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zkey::tests::small_key;
    use ark_std::rand::{rngs::StdRng, SeedableRng};
    use proofrack_kernels::circuits::mimc::MimcChain;
    use proofrack_kernels::cpu::CpuBackend;
    use proofrack_kernels::groth16::{prove_with_rng, verify_with_vk, PreparedKey};

    #[test]
    fn proof_vk_public_round_trip_and_verify() {
        let (key, w) = small_key();
        let backend = CpuBackend::new();
        let prepared = PreparedKey::new(&backend, &key).unwrap();
        let proof = prove_with_rng(&backend, &prepared, &w, &mut StdRng::seed_from_u64(2)).unwrap();
        let vk = vk_from_json(&vk_to_json(&key.verifying_key()).to_string()).unwrap();
        assert_eq!(vk, key.verifying_key());
        let proof2 = proof_from_json(&proof_to_json(&proof).to_string()).unwrap();
        assert_eq!(proof2, proof);
        let public = MimcChain::public_inputs(&w);
        let public2 = public_from_json(&public_to_json(&public).to_string()).unwrap();
        assert_eq!(public2, public);
        check_public_count(&vk, &public2).unwrap();
        assert!(verify_with_vk(&vk, &public2, &proof2).unwrap());
        let mut wrong = public2.clone();
        wrong[0] += Fr::from(1u64);
        assert!(!verify_with_vk(&vk, &wrong, &proof2).unwrap());
    }

    #[test]
    fn bad_json_gives_clear_errors() {
        assert!(matches!(
            public_from_json(&format!("[\"{}\"]", scalar_modulus())),
            Err(SnarkjsError::PublicValue { index: 0, .. })
        ));
        assert!(public_from_json("{}").is_err());
        let e = proof_from_json(r#"{"pi_a":["1","3","1"],"pi_b":[],"pi_c":[]}"#).unwrap_err();
        assert!(e.to_string().contains("not on the BN254 curve"), "{e}");
        let e = proof_from_json(r#"{"curve":"bls12381"}"#).unwrap_err();
        assert!(e.to_string().contains("bn128"), "{e}");
        let (key, _) = small_key();
        let vk = key.verifying_key();
        assert!(matches!(
            check_public_count(&vk, &[]),
            Err(SnarkjsError::PublicCount {
                count: 0,
                expected: 3
            })
        ));
    }
}
