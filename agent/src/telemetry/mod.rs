//! What the agent reports about its hardware: per-GPU readings from NVML ([`nvml`]) and host
//! readings from sysinfo ([`host`]), gathered by a [`TelemetryCollector`].
//!
//! NVML is loaded once, at [`TelemetryCollector::new`]. Where it is missing (no NVIDIA driver)
//! the collector says so once, at warn, and from then on reports host capacity only with
//! [`NvmlStatus::Missing`]. Architecture invariant: nothing here panics on a box without a
//! GPU or driver, and no single unreadable value hides the others.

pub mod host;
pub mod nvml;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use proofrack_common::telemetry::{GpuTelemetry, HostTelemetry, NvmlStatus};

use host::HostSampler;
use nvml::{decode_gpu, GpuField, GpuSource, NvmlSource, ReadError, XidEvent};

/// Something logged once per collector, to keep repeated samples from flooding the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum LogOnce {
    Field(GpuField),
    DeviceCount,
    Device(u32),
    XidPoll,
}

/// The XID errors seen on one GPU since the agent started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XidCount {
    /// Critical XID events reported.
    pub events_total: u64,
    /// The most recent XID number (what dcgm-exporter's `DCGM_FI_DEV_XID_ERRORS` shows).
    pub last_xid: u64,
}

enum GpuState {
    Nvml {
        source: Box<dyn GpuSource>,
        driver_version: String,
    },
    Missing {
        reason: String,
    },
}

/// Samples GPU and host telemetry. Create once per agent process; call
/// [`sample`](Self::sample) at the interval the coordinator's `Welcome` sets (never below
/// `MIN_TELEMETRY_INTERVAL_MS`). One sample costs about a dozen NVML calls per GPU plus one
/// `/proc/meminfo` read, well under a millisecond.
pub struct TelemetryCollector {
    gpus: GpuState,
    host: HostSampler,
    logged: HashSet<LogOnce>,
    /// Per GPU index; only GPUs that reported an XID have an entry.
    xid: BTreeMap<u32, XidCount>,
}

impl TelemetryCollector {
    /// Tries to load NVML once; logs (warn) why it is missing where it is.
    pub fn new() -> Self {
        // Warn once per process, not per collector: the devnet runs several agents in one.
        static WARNED: AtomicBool = AtomicBool::new(false);
        let source = NvmlSource::init().map(|s| {
            for (gpu, reason) in s.xid_unavailable() {
                tracing::warn!(gpu, %reason, "XID errors of this GPU cannot be watched; its other telemetry is reported");
            }
            Box::new(s) as Box<dyn GpuSource>
        });
        let warn = source.is_ok() || !WARNED.swap(true, Ordering::Relaxed);
        Self::build(source, warn)
    }

    /// A collector over any GPU source (tests use a fake). `Err(reason)` means NVML could not
    /// be loaded.
    pub fn with_gpu_source(source: Result<Box<dyn GpuSource>, String>) -> Self {
        Self::build(source, true)
    }

    fn build(source: Result<Box<dyn GpuSource>, String>, warn_if_missing: bool) -> Self {
        let gpus = match source {
            Ok(source) => {
                let driver_version = source.driver_version().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "NVML loaded but the driver version could not be read");
                    "unknown".to_owned()
                });
                match source.device_count() {
                    Ok(count) => tracing::info!(%driver_version, gpus = count, "NVML available"),
                    Err(e) => tracing::info!(%driver_version, error = %e, "NVML available"),
                }
                GpuState::Nvml {
                    source,
                    driver_version,
                }
            }
            Err(reason) if !warn_if_missing => {
                tracing::debug!(%reason, "NVML is not available (already reported)");
                GpuState::Missing { reason }
            }
            Err(reason) => {
                tracing::warn!(
                    %reason,
                    "NVML is not available (no NVIDIA driver?): reporting host capacity only, \
                     no GPU telemetry; install the NVIDIA driver to report GPUs"
                );
                GpuState::Missing { reason }
            }
        };
        TelemetryCollector {
            gpus,
            host: HostSampler::new(),
            logged: HashSet::new(),
            xid: BTreeMap::new(),
        }
    }

    pub fn nvml_status(&self) -> NvmlStatus {
        match &self.gpus {
            GpuState::Nvml { driver_version, .. } => NvmlStatus::Available {
                driver_version: driver_version.clone(),
            },
            GpuState::Missing { reason } => NvmlStatus::Missing {
                reason: reason.clone(),
            },
        }
    }

    /// Memory of the host the agent may use, as (total, available) bytes.
    pub fn host_memory_bytes(&mut self) -> (u64, u64) {
        self.host.memory_bytes()
    }

    /// XID errors seen per GPU index since start (empty without NVML or without errors).
    pub fn xid_counts(&self) -> &BTreeMap<u32, XidCount> {
        &self.xid
    }

    /// One sample of everything. `seq` numbers the report the caller is building (logged).
    pub fn sample(&mut self, seq: u64) -> (NvmlStatus, Vec<GpuTelemetry>, HostTelemetry) {
        let gpus = self.sample_gpus();
        let host = self.host.sample();
        tracing::trace!(
            seq,
            gpus = gpus.len(),
            load_1m_milli = host.load_1m_milli,
            "telemetry sampled"
        );
        (self.nvml_status(), gpus, host)
    }

    fn sample_gpus(&mut self) -> Vec<GpuTelemetry> {
        let TelemetryCollector {
            gpus: state,
            logged,
            xid,
            ..
        } = self;
        let GpuState::Nvml { source, .. } = state else {
            return Vec::new();
        };
        match source.poll_xid_events() {
            Ok(events) => count_xids(xid, &events),
            Err(e) => {
                if logged.insert(LogOnce::XidPoll) {
                    tracing::warn!(error = %e, "NVML could not read XID events; XID counts may be behind");
                }
            }
        }
        let count = match source.device_count() {
            Ok(n) => n,
            Err(e) => {
                if logged.insert(LogOnce::DeviceCount) {
                    tracing::warn!(error = %e, "NVML could not count GPUs; reporting none");
                }
                return Vec::new();
            }
        };
        let mut gpus = Vec::with_capacity(count as usize);
        for index in 0..count {
            let raw = match source.read_gpu(index) {
                Ok(raw) => raw,
                Err(e) => {
                    if logged.insert(LogOnce::Device(index)) {
                        tracing::warn!(
                            gpu = index,
                            error = %e,
                            "NVML could not open this GPU; leaving it out of telemetry"
                        );
                    }
                    continue;
                }
            };
            let (gpu, missing) = decode_gpu(index, raw);
            for (field, error) in missing {
                log_missing_once(logged, index, field, &error);
            }
            gpus.push(gpu);
        }
        gpus
    }
}

fn count_xids(counts: &mut BTreeMap<u32, XidCount>, events: &[XidEvent]) {
    for event in events {
        tracing::warn!(
            gpu = event.gpu,
            xid = event.xid,
            "GPU reported an XID error"
        );
        let count = counts.entry(event.gpu).or_default();
        count.events_total += 1;
        count.last_xid = event.xid;
    }
}

fn log_missing_once(logged: &mut HashSet<LogOnce>, index: u32, field: GpuField, error: &ReadError) {
    if logged.insert(LogOnce::Field(field)) {
        tracing::debug!(
            gpu = index,
            field = field.as_str(),
            error = %error,
            "GPU reading unavailable; reported as 0/none (logged once per kind)"
        );
    }
}

impl Default for TelemetryCollector {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::nvml::tests::full_readings;
    use super::nvml::RawGpuReadings;
    use super::*;
    use crate::test_log::capture;
    use tracing::Level;

    /// A fake NVML: a fixed set of GPUs, each openable or not.
    struct FakeGpus {
        count: Result<u32, ReadError>,
        devices: Vec<Result<RawGpuReadings, ReadError>>,
        /// What each poll returns, in order; then no events.
        xid_polls: Vec<Result<Vec<XidEvent>, ReadError>>,
    }

    impl GpuSource for FakeGpus {
        fn driver_version(&self) -> Result<String, ReadError> {
            Ok("580.65.06".to_owned())
        }
        fn device_count(&self) -> Result<u32, ReadError> {
            self.count.clone()
        }
        fn read_gpu(&self, index: u32) -> Result<RawGpuReadings, ReadError> {
            self.devices[index as usize].clone()
        }
        fn poll_xid_events(&mut self) -> Result<Vec<XidEvent>, ReadError> {
            if self.xid_polls.is_empty() {
                Ok(Vec::new())
            } else {
                self.xid_polls.remove(0)
            }
        }
    }

    fn collector(fake: FakeGpus) -> TelemetryCollector {
        TelemetryCollector::with_gpu_source(Ok(Box::new(fake)))
    }

    #[test]
    fn missing_nvml_warns_once_and_reports_host_only() {
        let reason = "libnvidia-ml.so.1: cannot open shared object file".to_owned();
        let (samples, logs) = capture(|| {
            let mut c = TelemetryCollector::with_gpu_source(Err(reason.clone()));
            (0..3).map(|seq| c.sample(seq)).collect::<Vec<_>>()
        });
        for (status, gpus, host) in &samples {
            assert_eq!(
                status,
                &NvmlStatus::Missing {
                    reason: reason.clone()
                }
            );
            assert!(gpus.is_empty());
            assert!(host.memory_total_bytes > 0);
        }
        let warns: Vec<_> = logs.iter().filter(|(l, _)| *l == Level::WARN).collect();
        assert_eq!(warns.len(), 1, "{logs:?}");
        assert!(
            warns[0].1.contains("cannot open shared object file"),
            "{warns:?}"
        );
    }

    #[test]
    fn unsupported_readings_are_logged_once_per_kind_across_gpus_and_samples() {
        let mut no_ecc = full_readings("GPU-1");
        no_ecc.ecc_uncorrectable_volatile = Err(ReadError::NotSupported);
        let mut no_ecc_no_power = full_readings("GPU-2");
        no_ecc_no_power.ecc_uncorrectable_volatile = Err(ReadError::NotSupported);
        no_ecc_no_power.power_draw_mw = Err(ReadError::NotSupported);
        let fake = FakeGpus {
            count: Ok(2),
            devices: vec![Ok(no_ecc), Ok(no_ecc_no_power)],
            xid_polls: vec![],
        };
        let (samples, logs) = capture(|| {
            let mut c = collector(fake);
            (0..4).map(|seq| c.sample(seq)).collect::<Vec<_>>()
        });
        for (status, gpus, _) in &samples {
            assert_eq!(
                status,
                &NvmlStatus::Available {
                    driver_version: "580.65.06".into()
                }
            );
            assert_eq!(gpus.len(), 2);
            assert_eq!(gpus[0].uuid, "GPU-1");
            assert_eq!(gpus[1].uuid, "GPU-2");
            assert_eq!(gpus[0].ecc_uncorrectable_total, None);
            assert_eq!(gpus[0].power_draw_mw, 123_456);
            assert_eq!(gpus[1].power_draw_mw, 0);
            assert_eq!(gpus[1].power_limit_mw, 700_000);
        }
        let debugs: Vec<_> = logs.iter().filter(|(l, _)| *l == Level::DEBUG).collect();
        assert_eq!(
            debugs.len(),
            2,
            "one per kind (ecc, power_draw): {debugs:?}"
        );
        assert!(logs.iter().all(|(l, _)| *l != Level::WARN), "{logs:?}");
    }

    #[test]
    fn a_gpu_that_cannot_be_opened_is_left_out_and_the_others_reported() {
        let fake = FakeGpus {
            count: Ok(3),
            devices: vec![
                Ok(full_readings("GPU-0")),
                Err(ReadError::Failed("GPU is lost".into())),
                Ok(full_readings("GPU-2")),
            ],
            xid_polls: vec![],
        };
        let (samples, logs) = capture(|| {
            let mut c = collector(fake);
            (0..3).map(|seq| c.sample(seq)).collect::<Vec<_>>()
        });
        for (_, gpus, _) in &samples {
            let ids: Vec<_> = gpus.iter().map(|g| (g.index, g.uuid.as_str())).collect();
            assert_eq!(ids, vec![(0, "GPU-0"), (2, "GPU-2")]);
        }
        let warns: Vec<_> = logs.iter().filter(|(l, _)| *l == Level::WARN).collect();
        assert_eq!(warns.len(), 1, "{logs:?}");
        assert!(warns[0].1.contains("GPU is lost"));
    }

    #[test]
    fn a_failing_device_count_reports_no_gpus_without_panicking() {
        let fake = FakeGpus {
            count: Err(ReadError::Failed("Unknown".into())),
            devices: vec![],
            xid_polls: vec![],
        };
        let mut c = collector(fake);
        let (status, gpus, _) = c.sample(0);
        assert!(matches!(status, NvmlStatus::Available { .. }));
        assert!(gpus.is_empty());
    }

    #[test]
    fn xid_events_are_counted_per_gpu_with_the_last_value_and_a_failed_poll_warns_once() {
        let xid = |gpu, xid| XidEvent { gpu, xid };
        let fake = FakeGpus {
            count: Ok(2),
            devices: vec![Ok(full_readings("GPU-0")), Ok(full_readings("GPU-1"))],
            xid_polls: vec![
                Ok(vec![xid(1, 48), xid(1, 63)]),
                Err(ReadError::Failed("Unknown Error".into())),
                Err(ReadError::Failed("Unknown Error".into())),
                Ok(vec![xid(1, 79)]),
            ],
        };
        let (counts, logs) = capture(|| {
            let mut c = collector(fake);
            assert!(c.xid_counts().is_empty());
            (0..5)
                .map(|seq| {
                    c.sample(seq);
                    c.xid_counts().clone()
                })
                .collect::<Vec<_>>()
        });
        let on_gpu1 = |n, last| {
            BTreeMap::from([(
                1,
                XidCount {
                    events_total: n,
                    last_xid: last,
                },
            )])
        };
        assert_eq!(counts[0], on_gpu1(2, 63));
        assert_eq!(counts[2], on_gpu1(2, 63), "failed polls change nothing");
        assert_eq!(counts[3], on_gpu1(3, 79));
        assert_eq!(counts[4], on_gpu1(3, 79));
        let warns: Vec<_> = logs.iter().filter(|(l, _)| *l == Level::WARN).collect();
        assert_eq!(warns.len(), 4, "three XIDs and one poll failure: {warns:?}");
        assert_eq!(
            warns
                .iter()
                .filter(|w| w.1.contains("Unknown Error"))
                .count(),
            1
        );
    }

    /// The real thing on this machine: with no driver, `new()` must not panic and must say
    /// NVML is missing; with a driver, every GPU reports a total memory.
    #[test]
    fn the_real_collector_never_panics() {
        let mut c = TelemetryCollector::new();
        let (status, gpus, host) = c.sample(0);
        match status {
            NvmlStatus::Missing { reason } => {
                assert!(!reason.is_empty());
                assert!(gpus.is_empty());
                assert!(c.xid_counts().is_empty());
            }
            NvmlStatus::Available { .. } => {
                assert!(gpus
                    .iter()
                    .all(|g| g.memory_free_bytes <= g.memory_total_bytes))
            }
        }
        assert!(host.cpu_cores >= 1);
    }
}
