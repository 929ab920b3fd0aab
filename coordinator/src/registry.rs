//! The circuits this coordinator serves: their proving keys on disk (content-addressed, sent
//! to agents on first use), their shapes for admission, and their verifying keys.
//!
//! Keys for built-in circuits are generated on first start (a local trusted setup, fine for
//! a devnet and for operators proving their own circuits) and kept in `<data>/keys/`; later
//! starts load them and check their hash, so the key id agents cache stays stable.

use proofrack_common::telemetry::ProofShape;
use proofrack_common::KeyId;
use proofrack_kernels::circuits::{circuit_by_name, Circuit, CircuitError};
use proofrack_kernels::groth16::{
    generate_key_with_rng, prepare_verifying_key, PointCheck, PreparedVerifyingKey, ProvingKey,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A circuit agents can be asked to prove.
pub struct RegisteredCircuit {
    pub name: String,
    pub circuit: Circuit,
    pub key_id: KeyId,
    pub shape: ProofShape,
    /// The proving key's canonical bytes, served to agents by [`KeyId`].
    pub key_path: PathBuf,
    pub key_len: u64,
    pub num_public: usize,
    pub pvk: PreparedVerifyingKey,
}

impl std::fmt::Debug for RegisteredCircuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredCircuit")
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .field("shape", &self.shape)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid proving key ({detail}); delete it to have it generated again")]
    BadKey { path: PathBuf, detail: String },
    #[error("key generation for {circuit} failed: {detail}")]
    Setup { circuit: String, detail: String },
}

/// The registry, built once at start and shared read-only.
#[derive(Debug, Default)]
pub struct CircuitRegistry {
    by_name: BTreeMap<String, Arc<RegisteredCircuit>>,
    by_key: HashMap<KeyId, Arc<RegisteredCircuit>>,
}

impl CircuitRegistry {
    /// Loads the key of each named built-in circuit from `keys_dir`, generating (and saving)
    /// the ones that are missing.
    pub fn load_or_generate(keys_dir: &Path, names: &[String]) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(keys_dir).map_err(|source| RegistryError::Io {
            path: keys_dir.to_path_buf(),
            source,
        })?;
        let mut registry = CircuitRegistry::default();
        for name in names {
            let circuit = circuit_by_name(name)?;
            let name = circuit.name();
            if registry.by_name.contains_key(&name) {
                continue;
            }
            let path = keys_dir.join(format!("{name}.key"));
            let key = if path.exists() {
                load_key(&path)?
            } else {
                generate_and_save(&circuit, &path)?
            };
            registry.insert(circuit, key, path);
        }
        Ok(registry)
    }

    fn insert(&mut self, circuit: Circuit, key: ProvingKey, key_path: PathBuf) {
        let bytes_len = key.byte_len() as u64;
        let entry = Arc::new(RegisteredCircuit {
            name: circuit.name(),
            circuit,
            key_id: KeyId(key.id()),
            shape: ProofShape {
                domain_size: key.domain_size() as u64,
                num_variables: key.num_variables() as u64,
            },
            key_path,
            key_len: bytes_len,
            num_public: key.num_public(),
            pvk: prepare_verifying_key(&key.verifying_key()),
        });
        self.by_key.insert(entry.key_id, entry.clone());
        self.by_name.insert(entry.name.clone(), entry);
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<RegisteredCircuit>> {
        match circuit_by_name(name) {
            Ok(c) => self.by_name.get(&c.name()),
            Err(_) => None,
        }
    }

    pub fn by_key(&self, key: &KeyId) -> Option<&Arc<RegisteredCircuit>> {
        self.by_key.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<RegisteredCircuit>> {
        self.by_name.values()
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}

fn load_key(path: &Path) -> Result<ProvingKey, RegistryError> {
    let bytes = std::fs::read(path).map_err(|source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // Our own file: its points were checked when it was generated; the hash check below
    // (agents verify the key id) catches corruption in transit.
    ProvingKey::from_bytes(&bytes, PointCheck::OnCurve).map_err(|e| RegistryError::BadKey {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn generate_and_save(circuit: &Circuit, path: &Path) -> Result<ProvingKey, RegistryError> {
    let started = Instant::now();
    let mut rng = rand::rngs::OsRng;
    let key =
        generate_key_with_rng(&circuit.r1cs(), &mut rng).map_err(|e| RegistryError::Setup {
            circuit: circuit.name(),
            detail: e.to_string(),
        })?;
    let bytes = key.to_bytes();
    let tmp = path.with_extension("key.tmp");
    std::fs::write(&tmp, &bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| RegistryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    tracing::info!(
        circuit = %circuit.name(),
        key = %KeyId(key.id()).short(),
        bytes = bytes.len(),
        ms = started.elapsed().as_millis() as u64,
        "generated proving key"
    );
    Ok(key)
}
