//! Host readings through sysinfo: hostname, cores, load, memory.
//!
//! Hostname and core count do not change while the agent runs and are read once; each sample
//! refreshes only the RAM figures (one read of `/proc/meminfo`) and the load average, so it is
//! cheap enough for every telemetry tick.

use proofrack_common::telemetry::HostTelemetry;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};

/// Reads host data; keeps the sysinfo `System` between samples.
pub struct HostSampler {
    system: System,
    hostname: String,
    cpu_cores: u32,
}

impl HostSampler {
    pub fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_list(CpuRefreshKind::nothing());
        let logical = system.cpus().len();
        // The cores this process may use (affinity, cgroup CPU quota) are what the CPU
        // backend's thread pool gets; sysinfo's logical count is the fallback.
        let usable = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(logical);
        let hostname = System::host_name().unwrap_or_else(|| {
            tracing::warn!("the host name could not be read; reporting \"unknown\"");
            "unknown".to_owned()
        });
        HostSampler {
            system,
            hostname,
            cpu_cores: u32::try_from(usable.max(1)).unwrap_or(u32::MAX),
        }
    }

    /// Memory the agent's process may use, as (total, available) bytes.
    pub fn memory_bytes(&mut self) -> (u64, u64) {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let host_total = self.system.total_memory();
        let host_available = self.system.available_memory();
        // sysinfo asserts (panics) in `cgroup_limits` when it read no total memory.
        let cgroup = if host_total == 0 {
            None
        } else {
            self.system
                .cgroup_limits()
                .map(|c| (c.total_memory, c.free_memory))
        };
        effective_memory(host_total, host_available, cgroup)
    }

    pub fn sample(&mut self) -> HostTelemetry {
        let (memory_total_bytes, memory_available_bytes) = self.memory_bytes();
        HostTelemetry {
            hostname: self.hostname.clone(),
            cpu_cores: self.cpu_cores,
            load_1m_milli: load_milli(System::load_average().one),
            memory_total_bytes,
            memory_available_bytes,
        }
    }
}

impl Default for HostSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// (total, available) memory, narrowed to a cgroup's limit where one is set below the host's
/// memory (an agent in a container must not offer the whole machine). The cgroup's free
/// figure counts page cache as used, so it errs low, which is the safe side for admission.
pub fn effective_memory(
    host_total: u64,
    host_available: u64,
    cgroup_total_free: Option<(u64, u64)>,
) -> (u64, u64) {
    let available = host_available.min(host_total);
    match cgroup_total_free {
        Some((cg_total, cg_free)) if cg_total < host_total => {
            (cg_total, available.min(cg_free).min(cg_total))
        }
        _ => (host_total, available),
    }
}

/// A load average as an integer in thousandths; NaN or negative readings become 0.
pub fn load_milli(load: f64) -> u32 {
    if load.is_finite() && load > 0.0 {
        (load * 1000.0).round().min(u32::MAX as f64) as u32
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_limit_narrows_memory_only_when_below_the_host() {
        assert_eq!(effective_memory(100, 60, None), (100, 60));
        assert_eq!(effective_memory(100, 60, Some((100, 10))), (100, 60));
        assert_eq!(effective_memory(100, 60, Some((40, 30))), (40, 30));
        assert_eq!(effective_memory(100, 20, Some((40, 30))), (40, 20));
        assert_eq!(effective_memory(100, 120, None), (100, 100));
    }

    #[test]
    fn load_is_reported_in_thousandths() {
        assert_eq!(load_milli(1.5), 1500);
        assert_eq!(load_milli(0.0), 0);
        assert_eq!(load_milli(-1.0), 0);
        assert_eq!(load_milli(f64::NAN), 0);
        assert_eq!(load_milli(1e12), u32::MAX);
    }

    #[test]
    fn this_host_reports_plausible_figures() {
        let mut s = HostSampler::new();
        let h = s.sample();
        assert!(h.cpu_cores >= 1);
        assert!(!h.hostname.is_empty());
        assert!(h.memory_total_bytes > 0, "{h:?}");
        assert!(h.memory_available_bytes <= h.memory_total_bytes, "{h:?}");
    }
}
