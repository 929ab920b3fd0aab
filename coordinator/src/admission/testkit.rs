//! Builders of agent telemetry and identities for tests and simulations (the core's own tests,
//! the scenario tests, and the lead's simulated fleets). Nothing here is used by the
//! coordinator itself.

use super::AgentId;
use proofrack_common::telemetry::{
    Calibration, GpuTelemetry, HostTelemetry, NvmlStatus, ProofShape, ProverBackend, Telemetry,
    ThrottleReasons,
};
use proofrack_common::{AgentName, OperatorId};

/// `operator/name`; panics on an invalid name (test input).
pub fn agent_id(operator: &str, name: &str) -> AgentId {
    AgentId::new(
        OperatorId::new(operator).expect("test operator name"),
        AgentName::new(name).expect("test agent name"),
    )
}

/// A healthy one-GPU CUDA agent report: 60 °C, no throttling, no ECC errors, the given free
/// memory and calibrated throughputs.
pub fn cuda_telemetry(
    seq: u64,
    memory_free_bytes: u64,
    msm_points_per_sec: u64,
    ntt_elements_per_sec: u64,
) -> Telemetry {
    Telemetry {
        seq,
        nvml: NvmlStatus::Available {
            driver_version: "580.00".into(),
        },
        gpus: vec![GpuTelemetry {
            index: 0,
            uuid: "GPU-test-0".into(),
            name: "Test GPU".into(),
            memory_total_bytes: memory_free_bytes.saturating_mul(2),
            memory_free_bytes,
            utilization_gpu_pct: 0,
            utilization_memory_pct: 0,
            sm_clock_mhz: 1_980,
            memory_clock_mhz: 2_619,
            temperature_c: 60,
            temperature_slowdown_c: Some(90),
            power_draw_mw: 100_000,
            power_limit_mw: 700_000,
            throttle: ThrottleReasons::default(),
            ecc_uncorrectable_total: Some(0),
        }],
        host: host(64 << 30),
        calibration: calibration(
            ProverBackend::Cuda,
            msm_points_per_sec,
            ntt_elements_per_sec,
            memory_free_bytes,
        ),
    }
}

/// A CPU agent report with the given available host memory and throughputs, no GPUs.
pub fn cpu_telemetry(
    seq: u64,
    memory_available_bytes: u64,
    msm_points_per_sec: u64,
    ntt_elements_per_sec: u64,
) -> Telemetry {
    Telemetry {
        seq,
        nvml: NvmlStatus::Missing {
            reason: "libnvidia-ml.so.1: cannot open shared object file".into(),
        },
        gpus: Vec::new(),
        host: host(memory_available_bytes),
        calibration: calibration(
            ProverBackend::Cpu,
            msm_points_per_sec,
            ntt_elements_per_sec,
            memory_available_bytes,
        ),
    }
}

fn host(memory_available_bytes: u64) -> HostTelemetry {
    HostTelemetry {
        hostname: "test-host".into(),
        cpu_cores: 16,
        load_1m_milli: 100,
        memory_total_bytes: memory_available_bytes.saturating_mul(2),
        memory_available_bytes,
    }
}

fn calibration(backend: ProverBackend, msm: u64, ntt: u64, memory: u64) -> Calibration {
    Calibration {
        backend,
        backend_name: format!("{backend}: test"),
        msm_g1_points_per_sec: msm,
        msm_size: 1 << 16,
        ntt_elements_per_sec: ntt,
        ntt_size: 1 << 16,
        compute_memory_total_bytes: memory.saturating_mul(2),
    }
}

/// A square shape: `2^log_size` domain and variables.
pub fn shape(log_size: u32) -> ProofShape {
    ProofShape {
        domain_size: 1 << log_size,
        num_variables: 1 << log_size,
    }
}
