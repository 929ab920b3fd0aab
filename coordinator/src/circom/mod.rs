//! circom circuits registered by clients: the zkey converted to our proving key (stored
//! content-addressed like every key, so agents fetch and cache it by id), the `.r1cs` kept to
//! check witnesses before any stake is bound, and a manifest per name so registrations
//! survive a restart.
//!
//! Files, all under `<data>/keys/circom/` and written atomically (temporary file, fsync,
//! rename):
//! - `<key id>.key`: the proving key's canonical bytes (its SHA-256 is the key id);
//! - `<sha256>.r1cs`: the constraint file as uploaded;
//! - `<name>.circuit`: the manifest (JSON: name, key id, r1cs hash), written last, so a
//!   crash mid-registration leaves no half-registered circuit;
//! - `witnesses/<sha256>.wtns`: submitted witnesses (see [`witness`]).
//!
//! The redb store is left alone: these files are written once, read at start, and can be
//! large; the core's task rows carry only a [`proofrack_common::protocol::WitnessRef`].

pub(crate) mod removal;
pub(crate) mod witness;

use proofrack_common::protocol::MAX_PUBLIC_INPUTS;
use proofrack_common::KeyId;
use proofrack_kernels::groth16::{PointCheck, ProvingKey, R1cs};
use proofrack_snarkjs as snarkjs;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory under `<data>/keys/` holding circom files.
pub const CIRCOM_DIR: &str = "circom";
const MANIFEST_EXT: &str = "circuit";

/// What the coordinator knows of a circom circuit beyond its key.
pub struct CircomCircuit {
    /// The full constraint system, for checking submitted witnesses.
    pub r1cs: Arc<R1cs>,
}

#[derive(Debug, thiserror::Error)]
pub enum CircomError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the zkey: {0}")]
    Zkey(snarkjs::SnarkjsError),
    #[error("the .r1cs: {0}")]
    R1cs(snarkjs::SnarkjsError),
    #[error("{0}")]
    Mismatch(String),
    #[error("{name} names a built-in circuit; register the circom circuit under another name")]
    BuiltInName { name: String },
    #[error("{name} is registered already with another key ({existing}); register this zkey under another name")]
    NameTaken { name: String, existing: String },
    #[error("{path} is not a valid circom manifest ({detail}); delete it and register the circuit again")]
    BadManifest { path: PathBuf, detail: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CircomError + '_ {
    move |source| CircomError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    name: String,
    key: String,
    r1cs: String,
}

/// A checked registration, ready to be written.
pub struct Converted {
    pub key: ProvingKey,
    pub key_bytes: Vec<u8>,
    pub r1cs: R1cs,
}

/// Parses and cross-checks a zkey and its `.r1cs` (CPU work: call off the async threads).
pub fn convert(zkey: &[u8], r1cs: &[u8]) -> Result<Converted, CircomError> {
    let key = snarkjs::read_zkey(zkey).map_err(CircomError::Zkey)?;
    let r1cs = snarkjs::read_r1cs(r1cs).map_err(CircomError::R1cs)?;
    snarkjs::check_matches_key(&r1cs, &key).map_err(CircomError::Mismatch)?;
    if key.num_public() > MAX_PUBLIC_INPUTS {
        return Err(CircomError::Mismatch(format!(
            "the circuit has {} public signals; proofrack carries at most {MAX_PUBLIC_INPUTS} per proof: make the rest private and commit to them with a hash",
            key.num_public()
        )));
    }
    let key_bytes = key.to_bytes();
    Ok(Converted {
        key,
        key_bytes,
        r1cs,
    })
}

/// Writes a converted registration under `dir` and returns the key's path. Idempotent: the
/// files are content-addressed and the manifest is replaced atomically.
pub fn save(
    dir: &Path,
    name: &str,
    converted: &Converted,
    r1cs_bytes: &[u8],
) -> Result<PathBuf, CircomError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let key_id = KeyId(converted.key.id());
    let key_path = dir.join(format!("{}.key", key_id.to_hex()));
    if !key_path.exists() {
        write_atomic(&key_path, &converted.key_bytes)?;
    }
    let r1cs_hash = hex::encode(Sha256::digest(r1cs_bytes));
    let r1cs_path = dir.join(format!("{r1cs_hash}.r1cs"));
    if !r1cs_path.exists() {
        write_atomic(&r1cs_path, r1cs_bytes)?;
    }
    let manifest = Manifest {
        name: name.to_string(),
        key: key_id.to_hex(),
        r1cs: r1cs_hash,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("plain strings");
    write_atomic(&manifest_path(dir, name), &text)?;
    Ok(key_path)
}

fn manifest_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.{MANIFEST_EXT}"))
}

/// Every registered circom circuit under `dir`: (name, circuit, key, key path).
pub fn load_all(
    dir: &Path,
) -> Result<Vec<(String, CircomCircuit, ProvingKey, PathBuf)>, CircomError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut manifests: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == MANIFEST_EXT))
        .collect();
    manifests.sort();
    for path in manifests {
        let bad = |detail: String| CircomError::BadManifest {
            path: path.clone(),
            detail,
        };
        let text = std::fs::read(&path).map_err(io(&path))?;
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        let key_path = dir.join(format!("{}.key", m.key));
        let key_bytes = std::fs::read(&key_path).map_err(io(&key_path))?;
        // Our own file, written after the zkey's points were checked: on-curve is enough,
        // and the hash check catches a file changed since.
        let key = ProvingKey::from_bytes(&key_bytes, PointCheck::OnCurve)
            .map_err(|e| bad(format!("its key {}: {e}", key_path.display())))?;
        if KeyId(key.id()).to_hex() != m.key {
            return Err(bad(format!(
                "{} does not hash to its name",
                key_path.display()
            )));
        }
        let r1cs_path = dir.join(format!("{}.r1cs", m.r1cs));
        let r1cs_bytes = std::fs::read(&r1cs_path).map_err(io(&r1cs_path))?;
        let r1cs = snarkjs::read_r1cs(&r1cs_bytes).map_err(CircomError::R1cs)?;
        snarkjs::check_matches_key(&r1cs, &key).map_err(|e| bad(e.to_string()))?;
        tracing::info!(circuit = %m.name, key = %KeyId(key.id()).short(), "circom circuit loaded");
        out.push((
            m.name,
            CircomCircuit {
                r1cs: Arc::new(r1cs),
            },
            key,
            key_path,
        ));
    }
    Ok(out)
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole new one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CircomError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(parent) = path.parent() {
        // The rename is durable once the directory is.
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
