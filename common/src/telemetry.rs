//! What an agent reports: per-GPU readings from NVML, host readings from sysinfo, and the
//! throughput its backends measured at start-up. All quantities are integers with the unit
//! last in the name.

use serde::{Deserialize, Serialize};

/// Which prover backend an agent runs (mirrors `proofrack_kernels::BackendKind`; common does
/// not depend on the kernels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProverBackend {
    Cpu,
    Cuda,
}

impl std::fmt::Display for ProverBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProverBackend::Cpu => "cpu",
            ProverBackend::Cuda => "cuda",
        })
    }
}

/// NVML throttle reasons that matter for admission, decoded from the NVML bitmask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleReasons {
    /// The raw NVML `clocksEventReasons` bitmask, kept for the record.
    pub raw: u64,
    pub hw_slowdown: bool,
    pub hw_thermal_slowdown: bool,
    pub hw_power_brake_slowdown: bool,
    pub sw_thermal_slowdown: bool,
    pub sw_power_cap: bool,
}

impl ThrottleReasons {
    /// Thermal or power throttling that slows proving below its calibrated rate.
    pub fn is_throttling(&self) -> bool {
        self.hw_slowdown
            || self.hw_thermal_slowdown
            || self.hw_power_brake_slowdown
            || self.sw_thermal_slowdown
    }
}

/// One GPU as NVML sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuTelemetry {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    pub memory_total_bytes: u64,
    pub memory_free_bytes: u64,
    pub utilization_gpu_pct: u32,
    pub utilization_memory_pct: u32,
    pub sm_clock_mhz: u32,
    pub memory_clock_mhz: u32,
    pub temperature_c: u32,
    /// The temperature at which the GPU slows down, where NVML reports one.
    pub temperature_slowdown_c: Option<u32>,
    pub power_draw_mw: u32,
    pub power_limit_mw: u32,
    pub throttle: ThrottleReasons,
    /// Volatile uncorrectable ECC errors since driver load; `None` where ECC is off or
    /// unsupported.
    pub ecc_uncorrectable_total: Option<u64>,
}

/// The host, as sysinfo sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTelemetry {
    pub hostname: String,
    pub cpu_cores: u32,
    /// One-minute load average times 1000.
    pub load_1m_milli: u32,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
}

/// Whether NVML could be read. Where it is missing the agent says so once and reports host
/// capacity only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NvmlStatus {
    Available { driver_version: String },
    Missing { reason: String },
}

/// Throughput measured by running the backend's real kernels at start-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calibration {
    pub backend: ProverBackend,
    /// e.g. `cuda: NVIDIA H200 (sm_90)`.
    pub backend_name: String,
    /// G1 MSM throughput (points per second) at `msm_size`.
    pub msm_g1_points_per_sec: u64,
    pub msm_size: u64,
    /// NTT throughput (field elements per second) at `ntt_size`.
    pub ntt_elements_per_sec: u64,
    pub ntt_size: u64,
    /// Memory the backend proves in: device memory for CUDA, host memory for the CPU.
    pub compute_memory_total_bytes: u64,
}

/// One telemetry report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telemetry {
    /// Increases by one per report from this agent process.
    pub seq: u64,
    pub nvml: NvmlStatus,
    pub gpus: Vec<GpuTelemetry>,
    pub host: HostTelemetry,
    pub calibration: Calibration,
}

/// Shape of a Groth16 task, enough to estimate its cost without the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofShape {
    /// The evaluation domain size (a power of two ≥ constraints + public inputs).
    pub domain_size: u64,
    /// Number of variables (witness length including the constant 1).
    pub num_variables: u64,
}

/// Relative cost of one G2 point in an MSM against one G1 point (Fq2 arithmetic is about
/// three Fq multiplications per Fq2 multiplication, plus bigger buckets).
pub const G2_MSM_COST_IN_G1_POINTS: u64 = 3;
/// NTTs in one proof (circom-style reduction): three inverse plus three coset forward.
pub const NTTS_PER_PROOF: u64 = 6;

impl ProofShape {
    /// G1-equivalent MSM points of one proof: A, B1, L over the variables, H over the
    /// domain, and B2 in G2.
    pub fn msm_g1_equivalent_points(&self) -> u64 {
        3 * self.num_variables + self.domain_size + G2_MSM_COST_IN_G1_POINTS * self.num_variables
    }

    /// Predicted proving time on a backend with `cal`, in milliseconds (at least 1).
    pub fn estimate_proving_ms(&self, cal: &Calibration) -> u64 {
        let msm_ms = (self.msm_g1_equivalent_points() as u128 * 1000)
            / (cal.msm_g1_points_per_sec.max(1) as u128);
        let ntt_ms = (NTTS_PER_PROOF as u128 * self.domain_size as u128 * 1000)
            / (cal.ntt_elements_per_sec.max(1) as u128);
        (msm_ms + ntt_ms).clamp(1, u64::MAX as u128) as u64
    }

    /// Memory a proof needs where it is computed: the proving key's bases (64 B per G1
    /// point, 128 B per G2 point) plus six vectors of 32-byte scalars over the domain and
    /// the witness, with MSM working space of the same order.
    pub fn estimate_memory_bytes(&self) -> u64 {
        let key = 64 * (3 * self.num_variables + self.domain_size) + 128 * self.num_variables;
        let scalars = 32 * (6 * self.domain_size + 2 * self.num_variables);
        let msm_work = 16 * self.domain_size.max(self.num_variables);
        key + scalars + msm_work
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(msm: u64, ntt: u64) -> Calibration {
        Calibration {
            backend: ProverBackend::Cpu,
            backend_name: "cpu".into(),
            msm_g1_points_per_sec: msm,
            msm_size: 1 << 12,
            ntt_elements_per_sec: ntt,
            ntt_size: 1 << 12,
            compute_memory_total_bytes: 1 << 30,
        }
    }

    #[test]
    fn estimate_scales_with_size_and_throughput() {
        let small = ProofShape {
            domain_size: 1 << 10,
            num_variables: 1 << 10,
        };
        let big = ProofShape {
            domain_size: 1 << 14,
            num_variables: 1 << 14,
        };
        let slow = cal(100_000, 10_000_000);
        let fast = cal(10_000_000, 1_000_000_000);
        assert!(big.estimate_proving_ms(&slow) > small.estimate_proving_ms(&slow));
        assert!(big.estimate_proving_ms(&fast) < big.estimate_proving_ms(&slow));
        assert!(small.estimate_proving_ms(&fast) >= 1);
        assert!(big.estimate_memory_bytes() > small.estimate_memory_bytes());
    }
}
