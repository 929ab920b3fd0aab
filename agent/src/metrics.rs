//! The agent's `/metrics`: GPU telemetry under the names NVIDIA's DCGM exporter uses (so
//! existing Grafana dashboards for `dcgm-exporter` work unchanged), plus the agent's own
//! figures: calibrated throughput, tasks in flight, proving time.
//!
//! DCGM names and units follow dcgm-exporter's default counters: framebuffer in MiB,
//! temperature in °C, power in W, clocks in MHz, utilisation in %; labels `gpu`, `UUID`,
//! `device`, `modelName`, `Hostname`. XID errors follow dcgm-exporter too:
//! `DCGM_FI_DEV_XID_ERRORS` is the value of the last XID a GPU reported (0: none yet), and
//! `proofrack_agent_xid_events_total` counts them; both only for GPUs NVML reports (none on
//! a box without a driver).

use crate::telemetry::XidCount;
use proofrack_common::http::{self, Request, Response};
use proofrack_common::metrics::{DurationHistogram, Exposition, Kind};
use proofrack_common::telemetry::{Calibration, GpuTelemetry, Telemetry};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The `[metrics]` section of `agent.toml`. On by default, on loopback only; a rack's
/// Prometheus reaches it through an explicit `listen` on the management network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// TCP address of `/metrics`. dcgm-exporter itself uses 9400; this is a different port
    /// so both can run on one box.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9465)),
        }
    }
}

#[derive(Default)]
struct Inner {
    identity: String,
    last: Option<Telemetry>,
    xid: BTreeMap<u32, XidCount>,
    calibration: Option<Calibration>,
    proving: DurationHistogram,
    tasks_in_flight: usize,
    proofs_made: u64,
    connected: bool,
}

/// Shared by the control loop, the workers and the HTTP server.
#[derive(Default)]
pub struct AgentMetrics {
    inner: Mutex<Inner>,
}

impl AgentMetrics {
    pub fn new(identity: String, calibration: Calibration) -> Arc<AgentMetrics> {
        Arc::new(AgentMetrics {
            inner: Mutex::new(Inner {
                identity,
                calibration: Some(calibration),
                ..Inner::default()
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("agent metrics poisoned")
    }

    pub(crate) fn record_telemetry(&self, report: &Telemetry) {
        self.lock().last = Some(report.clone());
    }

    /// XID errors per GPU index, as the telemetry collector counts them.
    pub(crate) fn record_xid(&self, counts: &BTreeMap<u32, XidCount>) {
        self.lock().xid.clone_from(counts);
    }

    pub(crate) fn record_proof(&self, proving_ms: u64) {
        let mut m = self.lock();
        m.proving.observe_ms(proving_ms);
        m.proofs_made += 1;
    }

    pub(crate) fn set_tasks_in_flight(&self, n: usize) {
        self.lock().tasks_in_flight = n;
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.lock().connected = connected;
    }

    /// The exposition.
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut e = Exposition::new();
        if let Some(t) = &m.last {
            render_gpus(&mut e, &t.gpus, &t.host.hostname);
            render_xid(&mut e, &t.gpus, &t.host.hostname, &m.xid);
            e.single(
                "proofrack_agent_host_memory_available_bytes",
                "Host memory available (sysinfo).",
                Kind::Gauge,
                t.host.memory_available_bytes,
            );
        }
        if let Some(c) = &m.calibration {
            let backend = c.backend.to_string();
            let labels = [("backend", backend.as_str())];
            e.family(
                "proofrack_agent_calibrated_msm_g1_points_per_second",
                "G1 MSM throughput measured at start-up.",
                Kind::Gauge,
            );
            e.sample(
                "proofrack_agent_calibrated_msm_g1_points_per_second",
                &labels,
                c.msm_g1_points_per_sec,
            );
            e.family(
                "proofrack_agent_calibrated_ntt_elements_per_second",
                "NTT throughput measured at start-up.",
                Kind::Gauge,
            );
            e.sample(
                "proofrack_agent_calibrated_ntt_elements_per_second",
                &labels,
                c.ntt_elements_per_sec,
            );
        }
        e.single(
            "proofrack_agent_tasks_in_flight",
            "Tasks accepted and not yet delivered or dropped.",
            Kind::Gauge,
            m.tasks_in_flight,
        );
        e.single(
            "proofrack_agent_proofs_total",
            "Proofs made (self-checked) by this agent process.",
            Kind::Counter,
            m.proofs_made,
        );
        e.family(
            "proofrack_agent_proving_seconds",
            "Time to compute one proof (witness to self-checked proof).",
            Kind::Histogram,
        );
        e.histogram(
            "proofrack_agent_proving_seconds",
            &[("agent", m.identity.as_str())],
            &m.proving,
        );
        e.single(
            "proofrack_agent_coordinator_connected",
            "1 while connected to the coordinator.",
            Kind::Gauge,
            u8::from(m.connected),
        );
        e.finish()
    }
}

const MIB: u64 = 1 << 20;

fn render_gpus(e: &mut Exposition, gpus: &[GpuTelemetry], hostname: &str) {
    type Field = fn(&GpuTelemetry) -> Option<String>;
    let fields: [(&str, &str, Kind, Field); 11] = [
        (
            "DCGM_FI_DEV_FB_FREE",
            "Framebuffer memory free (in MiB).",
            Kind::Gauge,
            |g| Some((g.memory_free_bytes / MIB).to_string()),
        ),
        (
            "DCGM_FI_DEV_FB_USED",
            "Framebuffer memory used (in MiB).",
            Kind::Gauge,
            |g| Some((g.memory_total_bytes.saturating_sub(g.memory_free_bytes) / MIB).to_string()),
        ),
        (
            "DCGM_FI_DEV_GPU_TEMP",
            "GPU temperature (in C).",
            Kind::Gauge,
            |g| Some(g.temperature_c.to_string()),
        ),
        (
            "DCGM_FI_DEV_POWER_USAGE",
            "Power draw (in W).",
            Kind::Gauge,
            |g| {
                Some(format!(
                    "{}.{:03}",
                    g.power_draw_mw / 1000,
                    g.power_draw_mw % 1000
                ))
            },
        ),
        (
            "DCGM_FI_DEV_POWER_MGMT_LIMIT",
            "Power management limit (in W).",
            Kind::Gauge,
            |g| {
                Some(format!(
                    "{}.{:03}",
                    g.power_limit_mw / 1000,
                    g.power_limit_mw % 1000
                ))
            },
        ),
        (
            "DCGM_FI_DEV_GPU_UTIL",
            "GPU utilization (in %).",
            Kind::Gauge,
            |g| Some(g.utilization_gpu_pct.to_string()),
        ),
        (
            "DCGM_FI_DEV_MEM_COPY_UTIL",
            "Memory utilization (in %).",
            Kind::Gauge,
            |g| Some(g.utilization_memory_pct.to_string()),
        ),
        (
            "DCGM_FI_DEV_SM_CLOCK",
            "SM clock frequency (in MHz).",
            Kind::Gauge,
            |g| Some(g.sm_clock_mhz.to_string()),
        ),
        (
            "DCGM_FI_DEV_MEM_CLOCK",
            "Memory clock frequency (in MHz).",
            Kind::Gauge,
            |g| Some(g.memory_clock_mhz.to_string()),
        ),
        (
            "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
            "Current clock throttle reasons (NVML bitmask).",
            Kind::Gauge,
            |g| Some(g.throttle.raw.to_string()),
        ),
        (
            "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
            "Total number of double-bit volatile ECC errors.",
            Kind::Counter,
            |g| g.ecc_uncorrectable_total.map(|n| n.to_string()),
        ),
    ];
    if gpus.is_empty() {
        return;
    }
    for (name, help, kind, get) in fields {
        e.family(name, help, kind);
        for g in gpus {
            let Some(value) = get(g) else { continue };
            sample_gpu(e, name, g, hostname, value);
        }
    }
}

/// One sample with dcgm-exporter's labels of GPU `g`.
fn sample_gpu(
    e: &mut Exposition,
    name: &str,
    g: &GpuTelemetry,
    hostname: &str,
    value: impl std::fmt::Display,
) {
    let index = g.index.to_string();
    let device = format!("nvidia{}", g.index);
    e.sample(
        name,
        &[
            ("gpu", &index),
            ("UUID", &g.uuid),
            ("device", &device),
            ("modelName", &g.name),
            ("Hostname", hostname),
        ],
        value,
    );
}

/// XID errors of every GPU in the report (0 where none was seen, as dcgm-exporter does).
fn render_xid(
    e: &mut Exposition,
    gpus: &[GpuTelemetry],
    hostname: &str,
    xid: &BTreeMap<u32, XidCount>,
) {
    if gpus.is_empty() {
        return;
    }
    let count = |g: &GpuTelemetry| xid.get(&g.index).copied().unwrap_or_default();
    e.family(
        "DCGM_FI_DEV_XID_ERRORS",
        "Value of the last XID error encountered (0: none since the agent started).",
        Kind::Gauge,
    );
    for g in gpus {
        sample_gpu(e, "DCGM_FI_DEV_XID_ERRORS", g, hostname, count(g).last_xid);
    }
    e.family(
        "proofrack_agent_xid_events_total",
        "Critical XID errors NVML reported since the agent started.",
        Kind::Counter,
    );
    for g in gpus {
        sample_gpu(
            e,
            "proofrack_agent_xid_events_total",
            g,
            hostname,
            count(g).events_total,
        );
    }
}

/// A running `/metrics` server.
pub struct MetricsServer {
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Serves `/metrics` on `listen`.
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<AgentMetrics>,
) -> std::io::Result<MetricsServer> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local_addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let handler: Arc<dyn Fn(&Request) -> Response + Send + Sync> =
        Arc::new(move |req: &Request| match req.path.as_str() {
            "/metrics" => Response::new(
                200,
                proofrack_common::metrics::CONTENT_TYPE,
                metrics.render(),
            ),
            "/healthz" => Response::text(200, "ok\n"),
            _ => Response::text(404, "not found; try /metrics\n"),
        });
    let task = tokio::spawn(http::serve(listener, handler, stop_rx));
    tracing::info!(%local_addr, "agent metrics at /metrics");
    Ok(MetricsServer {
        local_addr,
        stop,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofrack_common::telemetry::{HostTelemetry, NvmlStatus, ProverBackend, ThrottleReasons};

    fn calibration() -> Calibration {
        proofrack_common::testkit::calibration(ProverBackend::Cuda, 5_000_000, 9, 40 << 30)
    }

    #[test]
    fn gpu_readings_use_dcgm_names_and_units() {
        let m = AgentMetrics::new("op-a/g1".into(), calibration());
        // Read before the call: a guard in the argument would live through it (deadlock).
        let calibration = m.lock().calibration.clone().unwrap();
        m.record_telemetry(&Telemetry {
            seq: 1,
            nvml: NvmlStatus::Available {
                driver_version: "580".into(),
            },
            gpus: vec![GpuTelemetry {
                index: 0,
                uuid: "GPU-1".into(),
                name: "NVIDIA H100".into(),
                memory_total_bytes: 80 << 30,
                memory_free_bytes: 60 << 30,
                utilization_gpu_pct: 97,
                utilization_memory_pct: 40,
                sm_clock_mhz: 1980,
                memory_clock_mhz: 2619,
                temperature_c: 61,
                temperature_slowdown_c: Some(90),
                power_draw_mw: 412_250,
                power_limit_mw: 700_000,
                throttle: ThrottleReasons::default(),
                ecc_uncorrectable_total: None,
            }],
            host: HostTelemetry {
                hostname: "box-1".into(),
                ..HostTelemetry::default()
            },
            calibration,
        });
        m.record_proof(1_500);
        m.set_tasks_in_flight(2);
        let before_xid = m.render();
        let text = m.render();
        let labels =
            r#"{gpu="0",UUID="GPU-1",device="nvidia0",modelName="NVIDIA H100",Hostname="box-1"}"#;
        for line in [
            format!("DCGM_FI_DEV_FB_FREE{labels} 61440"),
            format!("DCGM_FI_DEV_FB_USED{labels} 20480"),
            format!("DCGM_FI_DEV_GPU_TEMP{labels} 61"),
            format!("DCGM_FI_DEV_POWER_USAGE{labels} 412.250"),
            "proofrack_agent_calibrated_msm_g1_points_per_second{backend=\"cuda\"} 5000000".into(),
            "proofrack_agent_tasks_in_flight 2".into(),
            "proofrack_agent_proving_seconds_count{agent=\"op-a/g1\"} 1".into(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{"),
            "no sample where ECC is not reported"
        );
        assert!(before_xid
            .lines()
            .any(|l| l == format!("DCGM_FI_DEV_XID_ERRORS{labels} 0")));
    }

    /// XID events injected through a fake NVML reach `/metrics` as dcgm-exporter shows them.
    #[test]
    fn xid_errors_from_the_collector_are_exported_per_gpu() {
        use crate::telemetry::nvml::tests::full_readings;
        use crate::telemetry::nvml::{GpuSource, RawGpuReadings, ReadError, XidEvent};
        use crate::telemetry::TelemetryCollector;

        struct TwoGpusXidOnSecond(Vec<Vec<XidEvent>>);
        impl GpuSource for TwoGpusXidOnSecond {
            fn driver_version(&self) -> Result<String, ReadError> {
                Ok("580".into())
            }
            fn device_count(&self) -> Result<u32, ReadError> {
                Ok(2)
            }
            fn read_gpu(&self, index: u32) -> Result<RawGpuReadings, ReadError> {
                Ok(full_readings(&format!("GPU-{index}")))
            }
            fn poll_xid_events(&mut self) -> Result<Vec<XidEvent>, ReadError> {
                Ok(self.0.pop().unwrap_or_default())
            }
        }

        let polls = vec![
            vec![XidEvent { gpu: 1, xid: 79 }],
            vec![XidEvent { gpu: 1, xid: 13 }, XidEvent { gpu: 1, xid: 31 }],
        ];
        let mut collector =
            TelemetryCollector::with_gpu_source(Ok(Box::new(TwoGpusXidOnSecond(polls))));
        let m = AgentMetrics::default();
        let mut text = String::new();
        for seq in 1..=2 {
            let (nvml, gpus, host) = collector.sample(seq);
            m.record_telemetry(&Telemetry {
                seq,
                nvml,
                gpus,
                host: HostTelemetry {
                    hostname: "box-1".into(),
                    ..host
                },
                calibration: calibration(),
            });
            m.record_xid(collector.xid_counts());
            text = m.render();
        }
        let labels = |i: u32| {
            format!(
                r#"{{gpu="{i}",UUID="GPU-{i}",device="nvidia{i}",modelName="NVIDIA H100 80GB HBM3",Hostname="box-1"}}"#
            )
        };
        for line in [
            format!("DCGM_FI_DEV_XID_ERRORS{} 0", labels(0)),
            format!("DCGM_FI_DEV_XID_ERRORS{} 79", labels(1)),
            format!("proofrack_agent_xid_events_total{} 0", labels(0)),
            format!("proofrack_agent_xid_events_total{} 3", labels(1)),
            "# TYPE proofrack_agent_xid_events_total counter".into(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn without_nvml_no_gpu_or_xid_family_is_exported() {
        let m = AgentMetrics::default();
        m.record_telemetry(&Telemetry {
            seq: 1,
            nvml: NvmlStatus::Missing {
                reason: "no driver".into(),
            },
            gpus: vec![],
            host: HostTelemetry::default(),
            calibration: calibration(),
        });
        let text = m.render();
        assert!(!text.contains("DCGM_"), "{text}");
        assert!(!text.contains("xid"), "{text}");
        assert!(text.contains("proofrack_agent_host_memory_available_bytes"));
    }
}
