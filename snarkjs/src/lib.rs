//! snarkjs and circom interop for Groth16 over BN254 ("bn128" in snarkjs).
//!
//! # Layout
//! - `binfile`: the section container shared by `.zkey` and `.wtns` (iden3 binfileutils).
//! - `encoding`: the three number encodings (Montgomery points, ×R² coefficients, plain
//!   witness values) and decimal strings.
//! - `zkey`: [`read_zkey`] (Groth16 sections → our [`ProvingKey`]) and [`write_zkey`].
//! - `wtns`: [`read_wtns`] / [`write_wtns`].
//! - `r1cs`: [`read_r1cs`] (circom's constraint file, for checking witnesses) and
//!   [`check_matches_key`] (the `.r1cs` is the zkey's circuit).
//! - `json`: `verification_key.json`, `proof.json`, `public.json`.
//!
//! Variable order is circom's everywhere: 0 is the constant 1, then the public outputs, the
//! public inputs, then private signals. The zkey's coefficient section carries `nPublic + 1`
//! extra A rows (`a[m + s] = w_s`) that our matrices leave out (the reduction adds them back),
//! so the reader checks them and strips them, and the writer adds them.
//!
//! Nothing here proves or calls snarkjs: proving is `proofrack_kernels::groth16::prove` on
//! the converted key.

pub mod binfile;
pub mod encoding;
pub mod json;
pub mod r1cs;
pub mod wtns;
pub mod zkey;

pub use json::check_public_count;
pub use json::{
    proof_from_json, proof_to_json, public_from_json, public_to_json, vk_from_json, vk_to_json,
};
pub use r1cs::{check_matches_key, check_r1cs_layout, read_r1cs, write_r1cs};
pub use wtns::check_witness_length;
pub use wtns::{check_wtns_layout, read_wtns, write_wtns};
pub use zkey::{check_zkey_layout, read_zkey, write_zkey};

pub use proofrack_kernels::groth16::{Proof, ProvingKey, VerifyingKey};

/// Everything that can be wrong with a snarkjs file. Each message says what is wrong and
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SnarkjsError {
    #[error("not a .{expected} file (magic bytes {found:?}); check the file path")]
    BadMagic {
        expected: &'static str,
        found: [u8; 4],
    },
    #[error(".{file} version {found} is not supported (this build reads up to {supported}); regenerate it with snarkjs 0.7")]
    UnsupportedVersion {
        file: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("{file} is truncated in {section}: it needs {needed} bytes, {available} are left; the file was cut off, copy it again")]
    Truncated {
        file: &'static str,
        section: String,
        needed: u64,
        available: u64,
    },
    #[error("{file} has no {section}; it is not a complete Groth16 {file}")]
    MissingSection { file: &'static str, section: String },
    #[error("{file} {section} is {found} bytes, expected {expected}; the file is corrupt")]
    SectionLength {
        file: &'static str,
        section: String,
        found: u64,
        expected: u64,
    },
    #[error("the zkey is for protocol {0} (1 = Groth16, 2 = PLONK, 10 = FFLONK); proofrack proves Groth16 only: run `snarkjs groth16 setup`")]
    NotGroth16(u32),
    #[error("{file} is for another curve ({what} is a {bits}-bit prime {value}); proofrack proves over BN254 (snarkjs \"bn128\") only: compile with `circom --prime bn128` and use a bn128 powers of tau")]
    WrongCurve {
        file: &'static str,
        what: &'static str,
        bits: u32,
        value: String,
    },
    #[error("{file} {section}[{index}] is not a valid point ({reason}); the file is corrupt")]
    BadPoint {
        file: &'static str,
        section: &'static str,
        index: usize,
        reason: &'static str,
    },
    #[error("{file} {section}[{index}] is not below the field modulus; the file is corrupt")]
    BadScalar {
        file: &'static str,
        section: &'static str,
        index: usize,
    },
    #[error("zkey coefficient record {index}: {reason}; the zkey is corrupt")]
    BadCoefficient { index: usize, reason: String },
    #[error("the zkey does not form a valid proving key: {0}")]
    Key(#[from] proofrack_kernels::groth16::KeyError),
    #[error("witness has {got} values but the circuit has {expected} signals (constant 1 included); the witness belongs to another circuit, recompute it with this circuit's .wasm")]
    WitnessLength { expected: usize, got: usize },
    #[error("{what} is not valid JSON for snarkjs: {reason}")]
    Json { what: &'static str, reason: String },
    #[error("public input {index} ({value}) is not a canonical field element below r; public.json is wrong")]
    PublicValue { index: usize, value: String },
    #[error("{count} public values given but the verification key takes {expected}; public.json belongs to another circuit or is incomplete")]
    PublicCount { count: usize, expected: usize },
}

pub type Result<T, E = SnarkjsError> = std::result::Result<T, E>;
