//! Whether an agent's hardware is healthy enough to be given work: no GPU at or over its
//! slowdown temperature or the policy limit, no new uncorrectable ECC errors, no thermal or
//! power-brake throttling. Only GPUs matter, and only for CUDA agents.

use super::misfit::Misfit;
use super::snapshot::AgentTelemetry;
use crate::policy::Policy;
use proofrack_common::telemetry::ProverBackend;

/// Every health problem of the agent's GPUs, in GPU order.
pub fn problems(t: &AgentTelemetry, policy: &Policy) -> Vec<Misfit> {
    if t.report.calibration.backend != ProverBackend::Cuda {
        return Vec::new();
    }
    let mut out = Vec::new();
    if t.report.gpus.is_empty() {
        out.push(Misfit::NoGpu);
    }
    for gpu in &t.report.gpus {
        let limit_c = gpu
            .temperature_slowdown_c
            .map_or(policy.max_temperature_c, |slowdown| {
                slowdown.min(policy.max_temperature_c)
            });
        if gpu.temperature_c >= limit_c {
            out.push(Misfit::Overheating {
                gpu: gpu.index,
                temperature_c: gpu.temperature_c,
                limit_c,
            });
        }
        if let (Some(now), Some(first)) =
            (gpu.ecc_uncorrectable_total, t.ecc_baseline.get(&gpu.uuid))
        {
            if now > *first {
                out.push(Misfit::NewEccErrors {
                    gpu: gpu.index,
                    new_errors: now - first,
                });
            }
        }
        if gpu.throttle.is_throttling() {
            out.push(Misfit::Throttling {
                gpu: gpu.index,
                nvml_reasons: gpu.throttle.raw,
            });
        }
    }
    out
}
