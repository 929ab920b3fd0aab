//! The circuits this coordinator serves: their proving keys on disk (content-addressed, sent
//! to agents on first use), their shapes for admission, and their verifying keys.
//!
//! Keys for built-in circuits are generated on first start (a local trusted setup, fine for
//! a devnet and for operators proving their own circuits) and kept in `<data>/keys/`; later
//! starts load them and check their hash, so the key id agents cache stays stable.
//!
//! circom circuits are registered by clients while the coordinator runs (`crate::circom`):
//! their keys, converted from the zkey, live content-addressed in `<data>/keys/circom/` with
//! a manifest per name, and are loaded again at every start. The registry is therefore
//! shared behind a lock; lookups hand out `Arc`s, so nobody holds the lock while working.

use proofrack_common::telemetry::ProofShape;
use proofrack_common::KeyId;
use proofrack_kernels::circuits::{circuit_by_name, Circuit, CircuitError};
use proofrack_kernels::groth16::{
    generate_key_with_rng, prepare_verifying_key, PointCheck, PreparedVerifyingKey, ProvingKey,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Where a circuit's constraints and witnesses come from.
pub enum CircuitSource {
    /// One of our own circuits (`proofrack_kernels::circuits`): the agent computes the
    /// witness from JSON inputs.
    BuiltIn(Circuit),
    /// A circom circuit registered from its zkey and `.r1cs`: clients submit witnesses.
    Circom(crate::circom::CircomCircuit),
}

/// A circuit agents can be asked to prove.
pub struct RegisteredCircuit {
    pub name: String,
    pub source: CircuitSource,
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
    #[error(transparent)]
    Circom(#[from] crate::circom::CircomError),
}

/// The registry: built-in circuits loaded at start, circom circuits added while serving.
#[derive(Debug, Default)]
pub struct CircuitRegistry {
    inner: RwLock<Circuits>,
    /// `<data>/keys`: built-in keys by name, circom files under `circom/`.
    keys_dir: PathBuf,
}

#[derive(Debug, Default)]
struct Circuits {
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
        let registry = CircuitRegistry {
            keys_dir: keys_dir.to_path_buf(),
            ..Default::default()
        };
        for name in names {
            let circuit = circuit_by_name(name)?;
            let name = circuit.name();
            if registry.read().by_name.contains_key(&name) {
                continue;
            }
            let path = keys_dir.join(format!("{name}.key"));
            let key = if path.exists() {
                load_key(&path)?
            } else {
                generate_and_save(&circuit, &path)?
            };
            registry.insert(name, CircuitSource::BuiltIn(circuit), &key, path);
        }
        for (name, circom, key, path) in crate::circom::load_all(&registry.circom_dir())? {
            registry.insert(name, CircuitSource::Circom(circom), &key, path);
        }
        Ok(registry)
    }

    /// Where circom circuits' files live.
    pub fn circom_dir(&self) -> PathBuf {
        self.keys_dir.join(crate::circom::CIRCOM_DIR)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Circuits> {
        self.inner.read().expect("circuit registry poisoned")
    }

    /// Adds (or replaces) a circuit; returns its entry.
    pub(crate) fn insert(
        &self,
        name: String,
        source: CircuitSource,
        key: &ProvingKey,
        key_path: PathBuf,
    ) -> Arc<RegisteredCircuit> {
        let bytes_len = key.byte_len() as u64;
        let entry = Arc::new(RegisteredCircuit {
            name,
            source,
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
        let mut inner = self.inner.write().expect("circuit registry poisoned");
        inner.by_key.insert(entry.key_id, entry.clone());
        inner.by_name.insert(entry.name.clone(), entry.clone());
        entry
    }

    /// Removes a circuit by its exact name; its key stays findable by id while another name
    /// uses the same key.
    pub(crate) fn remove(&self, name: &str) -> Option<Arc<RegisteredCircuit>> {
        let mut inner = self.inner.write().expect("circuit registry poisoned");
        let entry = inner.by_name.remove(name)?;
        let other = inner
            .by_name
            .values()
            .find(|c| c.key_id == entry.key_id)
            .cloned();
        match other {
            Some(other) => {
                inner.by_key.insert(entry.key_id, other);
            }
            None => {
                inner.by_key.remove(&entry.key_id);
            }
        }
        Some(entry)
    }

    /// A circuit by name; built-in names are matched in any spelling `circuit_by_name`
    /// accepts (`mimc-12`, `mimc-2^12`).
    pub fn by_name(&self, name: &str) -> Option<Arc<RegisteredCircuit>> {
        let canonical = circuit_by_name(name).map_or_else(|_| name.to_string(), |c| c.name());
        self.read().by_name.get(&canonical).cloned()
    }

    pub fn by_key(&self, key: &KeyId) -> Option<Arc<RegisteredCircuit>> {
        self.read().by_key.get(key).cloned()
    }

    /// Every circuit, by name.
    pub fn iter(&self) -> Vec<Arc<RegisteredCircuit>> {
        self.read().by_name.values().cloned().collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.read().by_name.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
