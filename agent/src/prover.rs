//! The backend this agent proves with, chosen once at start-up, and its prepared keys.
//!
//! One build runs on every box: CUDA is used where a driver and a GPU are found, the CPU
//! otherwise. The Groth16 prover is generic over the backend; this enum is where the choice
//! is dispatched, so the prover is monomorphised once per backend.

use crate::config::BackendChoice;
use proofrack_common::telemetry::ProverBackend;
use proofrack_common::KeyId;
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::cuda::CudaBackend;
use proofrack_kernels::curve::Fr;
use proofrack_kernels::groth16::{prove_with_rng, PreparedKey, Proof, ProveError, ProvingKey};
use proofrack_kernels::{Backend, BackendError, BackendInfo, BackendKind};
use std::sync::{Arc, Mutex};

/// Prepared keys kept resident (device memory on a GPU). A key's bases are several times
/// the circuit size; a handful covers the circuits a fleet proves in turn.
pub const MAX_PREPARED_KEYS: usize = 4;

/// The backend in use.
pub enum ProverBackendImpl {
    Cpu(CpuBackend),
    Cuda(CudaBackend),
}

#[derive(Debug, thiserror::Error)]
pub enum BackendSelectError {
    #[error("backend = \"cuda\" was asked for but CUDA is not usable here: {0}")]
    CudaRequired(BackendError),
}

impl ProverBackendImpl {
    /// Picks the backend: CUDA when asked or when `auto` finds a usable GPU, else the CPU.
    pub fn select(choice: BackendChoice, cuda_device: usize) -> Result<Self, BackendSelectError> {
        match choice {
            BackendChoice::Cpu => Ok(ProverBackendImpl::Cpu(CpuBackend::new())),
            BackendChoice::Cuda => CudaBackend::new(cuda_device)
                .map(ProverBackendImpl::Cuda)
                .map_err(BackendSelectError::CudaRequired),
            BackendChoice::Auto => match CudaBackend::new(cuda_device) {
                Ok(b) => Ok(ProverBackendImpl::Cuda(b)),
                Err(e) => {
                    tracing::info!(reason = %e, "no usable CUDA device, using the CPU backend");
                    Ok(ProverBackendImpl::Cpu(CpuBackend::new()))
                }
            },
        }
    }

    pub fn info(&self) -> BackendInfo {
        match self {
            ProverBackendImpl::Cpu(b) => b.info(),
            ProverBackendImpl::Cuda(b) => b.info(),
        }
    }

    /// Runs the start-up calibration on this backend (seconds; call off the async threads).
    pub fn calibrate(
        &self,
        host_memory_total_bytes: u64,
    ) -> Result<proofrack_common::telemetry::Calibration, crate::calibrate::CalibrationError> {
        let plan = crate::calibrate::CalibrationPlan::for_backend(self.info().kind);
        match self {
            ProverBackendImpl::Cpu(b) => {
                crate::calibrate::calibrate(b, &plan, host_memory_total_bytes)
            }
            ProverBackendImpl::Cuda(b) => {
                crate::calibrate::calibrate(b, &plan, host_memory_total_bytes)
            }
        }
    }

    pub fn kind(&self) -> ProverBackend {
        match self.info().kind {
            BackendKind::Cpu => ProverBackend::Cpu,
            BackendKind::Cuda => ProverBackend::Cuda,
        }
    }
}

enum Prepared {
    Cpu(Arc<PreparedKey<CpuBackend>>),
    Cuda(Arc<PreparedKey<CudaBackend>>),
}

impl Clone for Prepared {
    fn clone(&self) -> Self {
        match self {
            Prepared::Cpu(k) => Prepared::Cpu(k.clone()),
            Prepared::Cuda(k) => Prepared::Cuda(k.clone()),
        }
    }
}

/// Proves with one backend, keeping recently used keys prepared.
pub struct Prover {
    backend: ProverBackendImpl,
    prepared: Mutex<Vec<(KeyId, Prepared)>>,
}

impl Prover {
    pub fn new(backend: ProverBackendImpl) -> Self {
        Prover {
            backend,
            prepared: Mutex::new(Vec::new()),
        }
    }

    pub fn backend(&self) -> &ProverBackendImpl {
        &self.backend
    }

    pub fn has_prepared(&self, id: &KeyId) -> bool {
        self.prepared
            .lock()
            .expect("prepared keys poisoned")
            .iter()
            .any(|(k, _)| k == id)
    }

    /// Loads `key` into the backend (once per id; least recently used dropped past
    /// [`MAX_PREPARED_KEYS`]).
    pub fn prepare(&self, id: KeyId, key: &ProvingKey) -> Result<(), BackendError> {
        if self.has_prepared(&id) {
            return Ok(());
        }
        let p = match &self.backend {
            ProverBackendImpl::Cpu(b) => Prepared::Cpu(Arc::new(PreparedKey::new(b, key)?)),
            ProverBackendImpl::Cuda(b) => Prepared::Cuda(Arc::new(PreparedKey::new(b, key)?)),
        };
        let mut prepared = self.prepared.lock().expect("prepared keys poisoned");
        prepared.retain(|(k, _)| *k != id);
        prepared.push((id, p));
        while prepared.len() > MAX_PREPARED_KEYS {
            prepared.remove(0);
        }
        Ok(())
    }

    /// Proves `witness` with the prepared key `id`; `None` if it is not prepared.
    pub fn prove(&self, id: &KeyId, witness: &[Fr]) -> Option<Result<Proof, ProveError>> {
        let p = {
            let mut prepared = self.prepared.lock().expect("prepared keys poisoned");
            let at = prepared.iter().position(|(k, _)| k == id)?;
            // Most recently used last.
            let entry = prepared.remove(at);
            let p = entry.1.clone();
            prepared.push(entry);
            p
        };
        let mut rng = rand::rngs::OsRng;
        Some(match (&self.backend, p) {
            (ProverBackendImpl::Cpu(b), Prepared::Cpu(k)) => {
                prove_with_rng(b, &k, witness, &mut rng)
            }
            (ProverBackendImpl::Cuda(b), Prepared::Cuda(k)) => {
                prove_with_rng(b, &k, witness, &mut rng)
            }
            _ => unreachable!("keys are prepared with the prover's own backend"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofrack_kernels::circuits::circuit_by_name;
    use proofrack_kernels::groth16::{generate_key_with_rng, prepare_verifying_key, verify};

    #[test]
    fn proves_on_the_cpu_and_keeps_a_bounded_set_of_prepared_keys() {
        let prover = Prover::new(ProverBackendImpl::Cpu(CpuBackend::new()));
        let circuit = circuit_by_name("mimc-4").unwrap();
        let mut rng = ark_std::test_rng();
        let key = generate_key_with_rng(&circuit.r1cs(), &mut rng).unwrap();
        let id = KeyId(key.id());
        assert!(
            prover.prove(&id, &[]).is_none(),
            "unprepared keys are not proven with"
        );
        prover.prepare(id, &key).unwrap();
        let w = circuit.witness_from_json(r#"{"x":"7"}"#).unwrap();
        let proof = prover.prove(&id, &w.full).unwrap().unwrap();
        let pvk = prepare_verifying_key(&key.verifying_key());
        assert!(verify(&pvk, &w.public, &proof).unwrap());
        for i in 0..MAX_PREPARED_KEYS as u8 + 1 {
            prover.prepare(KeyId([i + 1; 32]), &key).unwrap();
        }
        assert!(
            !prover.has_prepared(&id),
            "the least recently used key is dropped"
        );
    }
}
