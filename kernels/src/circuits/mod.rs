//! Built-in circuits for the devnet, tests and benchmarks, by name.
//!
//! Names are `mimc-<d>` (alias `mimc-2^<d>`) for d in [`MIN_LOG2`]..=[`MAX_LOG2`]: a MiMC-7
//! chain ([`mimc`]) that fills a 2^d evaluation domain exactly. Inputs are JSON
//! `{"x": "<decimal>"}` with an optional `"key": "<decimal>"` (default 0); values are
//! canonical decimal integers below the BN254 scalar field modulus r.

pub mod decimal;
pub mod mimc;

use serde::Deserialize;

use crate::curve::Fr;
use crate::groth16::R1cs;
pub use decimal::{fr_from_decimal, fr_to_decimal};
pub use mimc::{MimcChain, MimcInputs, MimcSynthesizer};

/// Smallest built-in domain: 2^4 (3 MiMC rounds), for fast tests.
pub const MIN_LOG2: u32 = 4;
/// Largest built-in domain: 2^20, the GPU benchmark's size. Larger keys need several GiB
/// to generate and hold; add names when a benchmark needs them.
pub const MAX_LOG2: u32 = 20;

/// A circuit name or its input was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CircuitError {
    #[error("unknown circuit {name:?}; built-in circuits are mimc-{MIN_LOG2} .. mimc-{MAX_LOG2}")]
    UnknownCircuit { name: String },
    #[error("circuit input is not valid JSON of the form {{\"x\": \"<decimal>\", \"key\": \"<decimal>\"}} (key optional; exact integers may be JSON numbers): {0}")]
    InputJson(String),
    #[error("input {field:?}: {reason}")]
    BadValue { field: &'static str, reason: String },
}

/// A full witness and the public inputs it carries (`full[1..=num_public]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    /// `[1, public inputs…, private values…]`: what `groth16::prove` takes.
    pub full: Vec<Fr>,
    /// What `groth16::verify` takes.
    pub public: Vec<Fr>,
}

/// A built-in circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Circuit {
    log2_domain: u32,
    chain: MimcChain,
}

/// Looks a circuit up by name (`mimc-12` or `mimc-2^12`).
pub fn circuit_by_name(name: &str) -> Result<Circuit, CircuitError> {
    let unknown = || CircuitError::UnknownCircuit {
        name: name.to_string(),
    };
    let digits = name.strip_prefix("mimc-").ok_or_else(unknown)?;
    let digits = digits.strip_prefix("2^").unwrap_or(digits);
    let canonical = !digits.is_empty() && digits.len() <= 2 && !digits.starts_with('0');
    if !canonical || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unknown());
    }
    let log2: u32 = digits.parse().map_err(|_| unknown())?;
    Circuit::mimc(log2).ok_or_else(unknown)
}

/// Every built-in circuit's canonical name, smallest first.
pub fn circuit_names() -> Vec<String> {
    (MIN_LOG2..=MAX_LOG2).map(|d| format!("mimc-{d}")).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputJson {
    x: InputValue,
    #[serde(default)]
    key: Option<InputValue>,
}

/// A field element in the input JSON: a decimal string (snarkjs' convention), or a JSON
/// number where that is exact (a non-negative integer: `{"x": 7}`, as circom users write
/// small inputs).
#[derive(Deserialize)]
#[serde(untagged)]
enum InputValue {
    Text(String),
    Number(serde_json::Number),
}

impl InputValue {
    fn to_fr(&self) -> Result<Fr, String> {
        match self {
            InputValue::Text(s) => fr_from_decimal(s),
            InputValue::Number(n) => match n.as_u64() {
                Some(v) => Ok(Fr::from(v)),
                None if n.as_i64().is_some() => Err(format!(
                    "{n} is negative; a field element is written as a non-negative decimal"
                )),
                None => Err(format!(
                    "the JSON number {n} is not an exact integer (a JSON number with a fraction \
                     or above 2^64 loses digits); write it as a decimal string, e.g. \"123\""
                )),
            },
        }
    }
}

impl Circuit {
    /// The MiMC chain filling 2^`log2_domain`, if in the built-in range.
    pub fn mimc(log2_domain: u32) -> Option<Circuit> {
        (MIN_LOG2..=MAX_LOG2)
            .contains(&log2_domain)
            .then(|| Circuit {
                log2_domain,
                chain: MimcChain::filling_domain(log2_domain),
            })
    }

    pub fn name(&self) -> String {
        format!("mimc-{}", self.log2_domain)
    }

    pub fn log2_domain(&self) -> u32 {
        self.log2_domain
    }

    pub fn domain_size(&self) -> usize {
        1 << self.log2_domain
    }

    pub fn num_constraints(&self) -> usize {
        self.chain.num_constraints()
    }

    pub fn num_public(&self) -> usize {
        mimc::MIMC_NUM_PUBLIC
    }

    pub fn num_variables(&self) -> usize {
        self.chain.num_variables()
    }

    pub fn chain(&self) -> MimcChain {
        self.chain
    }

    /// The constraint system, to generate keys from.
    pub fn r1cs(&self) -> R1cs {
        self.chain.r1cs()
    }

    /// Parses `{"x": "<decimal>", "key": "<decimal>"}` (key optional, default 0; each a
    /// decimal string or an exact JSON integer).
    pub fn parse_inputs(&self, json: &str) -> Result<MimcInputs, CircuitError> {
        let raw: InputJson =
            serde_json::from_str(json).map_err(|e| CircuitError::InputJson(e.to_string()))?;
        let x = raw
            .x
            .to_fr()
            .map_err(|reason| CircuitError::BadValue { field: "x", reason })?;
        let key = match raw.key {
            None => Fr::from(0u64),
            Some(k) => k.to_fr().map_err(|reason| CircuitError::BadValue {
                field: "key",
                reason,
            })?,
        };
        Ok(MimcInputs { x, key })
    }

    /// The JSON input for `x` and `key` (the inverse of `parse_inputs`).
    pub fn inputs_json(inputs: &MimcInputs) -> String {
        format!(
            r#"{{"x":"{}","key":"{}"}}"#,
            fr_to_decimal(&inputs.x),
            fr_to_decimal(&inputs.key)
        )
    }

    /// The witness by direct evaluation (no constraint system; milliseconds at 2^20).
    pub fn witness(&self, inputs: &MimcInputs) -> Witness {
        let full = self.chain.witness(inputs);
        let public = MimcChain::public_inputs(&full);
        Witness { full, public }
    }

    /// `parse_inputs` then `witness`.
    pub fn witness_from_json(&self, json: &str) -> Result<Witness, CircuitError> {
        Ok(self.witness(&self.parse_inputs(json)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::Field;

    #[test]
    fn names_resolve_and_bad_names_are_refused() {
        let c = circuit_by_name("mimc-12").unwrap();
        assert_eq!(c, circuit_by_name("mimc-2^12").unwrap());
        assert_eq!(c.name(), "mimc-12");
        assert_eq!(c.domain_size(), 4096);
        assert_eq!(c.num_constraints() + c.num_public() + 1, 4096);
        for bad in [
            "mimc-3", "mimc-21", "mimc-", "mimc-x", "mimc-+4", "mimc-004", "mimc-04", "sha-10", "",
        ] {
            assert!(
                matches!(
                    circuit_by_name(bad),
                    Err(CircuitError::UnknownCircuit { .. })
                ),
                "{bad}"
            );
        }
        let names = circuit_names();
        assert_eq!(names.first().unwrap(), "mimc-4");
        assert_eq!(names.last().unwrap(), "mimc-20");
        assert!(names.iter().all(|n| circuit_by_name(n).is_ok()));
    }

    #[test]
    fn inputs_parse_with_clear_errors() {
        let c = Circuit::mimc(4).unwrap();
        let i = c.parse_inputs(r#"{"x": "5"}"#).unwrap();
        assert_eq!(
            i,
            MimcInputs {
                x: Fr::from(5u64),
                key: Fr::from(0u64)
            }
        );
        let i = c.parse_inputs(r#"{"x": "5", "key": "9"}"#).unwrap();
        assert_eq!(i.key, Fr::from(9u64));
        assert_eq!(c.parse_inputs(&Circuit::inputs_json(&i)).unwrap(), i);
        let p_minus_1 =
            "21888242871839275222246405745257275088548364400416034343698204186575808495616";
        let i = c
            .parse_inputs(&format!(r#"{{"x": "{p_minus_1}"}}"#))
            .unwrap();
        assert_eq!(i.x, -Fr::ONE);
        assert!(matches!(
            c.parse_inputs("{}"),
            Err(CircuitError::InputJson(_))
        ));
        // JSON numbers where they are exact, refused with the reason where they are not.
        assert_eq!(
            c.parse_inputs(r#"{"x": 5, "key": 9}"#).unwrap().x,
            Fr::from(5u64)
        );
        assert_eq!(
            c.parse_inputs(r#"{"x": 18446744073709551615}"#).unwrap().x,
            Fr::from(u64::MAX)
        );
        for (bad, says) in [
            (r#"{"x": 1.5}"#, "not an exact integer"),
            (
                r#"{"x": 123456789012345678901234567890}"#,
                "write it as a decimal string",
            ),
            (r#"{"x": -3}"#, "negative"),
        ] {
            match c.parse_inputs(bad) {
                Err(e @ CircuitError::BadValue { field: "x", .. }) => {
                    assert!(e.to_string().contains(says), "{bad}: {e}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(
            c.parse_inputs(r#"{"x": [5]}"#),
            Err(CircuitError::InputJson(_))
        ));
        assert!(matches!(
            c.parse_inputs(r#"{"x": "1", "y": "2"}"#),
            Err(CircuitError::InputJson(_))
        ));
        let p = "21888242871839275222246405745257275088548364400416034343698204186575808495617";
        assert!(matches!(
            c.parse_inputs(&format!(r#"{{"x": "{p}"}}"#)),
            Err(CircuitError::BadValue { field: "x", .. })
        ));
        assert!(matches!(
            c.parse_inputs(r#"{"x": "1", "key": "-1"}"#),
            Err(CircuitError::BadValue { field: "key", .. })
        ));
    }

    #[test]
    fn witness_carries_public_inputs_in_order() {
        let c = Circuit::mimc(5).unwrap();
        let w = c.witness_from_json(r#"{"x": "3", "key": "4"}"#).unwrap();
        assert_eq!(w.full.len(), c.num_variables());
        assert_eq!(w.public.len(), 3);
        assert_eq!(w.public[1], Fr::from(3u64));
        assert_eq!(w.public[2], Fr::from(4u64));
        assert_eq!(
            w.public[0],
            c.chain().evaluate(&MimcInputs {
                x: Fr::from(3u64),
                key: Fr::from(4u64)
            })
        );
        assert_eq!(c.r1cs().first_unsatisfied(&w.full), None);
    }
}
