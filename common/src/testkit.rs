//! Protocol fixtures for tests, benchmarks and simulations: what an agent says about itself
//! (hello, telemetry, calibration) as scripted, simulated and load-generating agents send it,
//! and ids from literals. Behind the `testkit` feature: nothing here is part of the product,
//! and the figures are plausible, not measured.

use crate::protocol::{AgentCapabilities, AgentHello, PROTOCOL_VERSION};
use crate::telemetry::{
    Calibration, GpuTelemetry, HostTelemetry, NvmlStatus, ProofShape, ProverBackend, Telemetry,
    ThrottleReasons,
};
use crate::{AgentId, AgentName, OperatorId};

/// `operator/name`; panics on an invalid name (test input).
pub fn agent_id(operator: &str, name: &str) -> AgentId {
    AgentId::new(
        OperatorId::new(operator).expect("test operator name"),
        AgentName::new(name).expect("test agent name"),
    )
}

/// A calibration with the given throughputs, measured at 2^16, on a device of twice `memory`.
pub fn calibration(backend: ProverBackend, msm: u64, ntt: u64, memory: u64) -> Calibration {
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

/// What a 2-core CPU measures, fixed: admission's predictions for small circuits come out at
/// a few milliseconds, and do not depend on how loaded the machine running a test is.
pub fn cpu_calibration() -> Calibration {
    Calibration {
        backend: ProverBackend::Cpu,
        backend_name: "cpu (fixed calibration for tests)".into(),
        msm_g1_points_per_sec: 1_000_000,
        msm_size: 1 << 12,
        ntt_elements_per_sec: 20_000_000,
        ntt_size: 1 << 14,
        compute_memory_total_bytes: 8 << 30,
    }
}

/// The hello of an agent with `calibration`'s backend, no GPUs, no cached keys, taking
/// `max_concurrent_tasks` at once.
pub fn hello(calibration: &Calibration, max_concurrent_tasks: u32) -> AgentHello {
    AgentHello {
        protocol_version: PROTOCOL_VERSION,
        agent_build: "proofrack test agent".into(),
        capabilities: AgentCapabilities {
            backend: calibration.backend,
            gpus: 0,
            max_concurrent_tasks,
            cached_keys: vec![],
        },
        calibration: calibration.clone(),
    }
}

/// A host of 16 cores with `memory_available_bytes` free of twice that.
pub fn host(memory_available_bytes: u64) -> HostTelemetry {
    HostTelemetry {
        hostname: "test-host".into(),
        cpu_cores: 16,
        load_1m_milli: 100,
        memory_total_bytes: memory_available_bytes.saturating_mul(2),
        memory_available_bytes,
    }
}

/// A CPU agent's report: no driver, no GPUs, `memory_available_bytes` on the host, and
/// `calibration` as measured at its start.
pub fn cpu_report(seq: u64, memory_available_bytes: u64, calibration: &Calibration) -> Telemetry {
    Telemetry {
        seq,
        nvml: NvmlStatus::Missing {
            reason: "libnvidia-ml.so.1: cannot open shared object file".into(),
        },
        gpus: Vec::new(),
        host: host(memory_available_bytes),
        calibration: calibration.clone(),
    }
}

/// A CPU agent report with the given available host memory and throughputs, no GPUs.
pub fn cpu_telemetry(
    seq: u64,
    memory_available_bytes: u64,
    msm_points_per_sec: u64,
    ntt_elements_per_sec: u64,
) -> Telemetry {
    let measured = calibration(
        ProverBackend::Cpu,
        msm_points_per_sec,
        ntt_elements_per_sec,
        memory_available_bytes,
    );
    cpu_report(seq, memory_available_bytes, &measured)
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

/// A square shape: `2^log_size` domain and variables.
pub fn shape(log_size: u32) -> ProofShape {
    ProofShape {
        domain_size: 1 << log_size,
        num_variables: 1 << log_size,
    }
}
