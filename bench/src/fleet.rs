//! `proofrack-bench fleet --agents 1000`: one coordinator, a fleet of protocol agents over
//! real QUIC with real certificates, tasks submitted; prints one JSON line with certificate
//! issuance, connection time, assignment latency percentiles and the coordinator's CPU.
//! The reference in the same run is the same coordinator with a 10-agent fleet.

use crate::setup;
use proofrack_bench::load::fleet::{self, FleetLoad};
use std::time::Duration;

/// The reference fleet's size.
const REFERENCE_AGENTS: usize = 10;

#[derive(clap::Args)]
pub struct FleetArgs {
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    #[arg(long, default_value_t = 500)]
    tasks: usize,
    #[arg(long, default_value_t = 1000)]
    telemetry_interval_ms: u64,
    /// Seconds of telemetry-only load measured.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// Skip the 10-agent reference run.
    #[arg(long)]
    no_reference: bool,
}

pub fn run(a: &FleetArgs) -> anyhow::Result<()> {
    let rt = setup::runtime()?;
    let mut runs = vec![(a.agents, a.tasks)];
    if !a.no_reference {
        runs.insert(0, (REFERENCE_AGENTS, a.tasks));
    }
    for (agents, tasks) in runs {
        let dir = setup::scratch_dir(&format!("fleet-{agents}"));
        let report = rt.block_on(fleet::run(FleetLoad {
            telemetry_interval_ms: a.telemetry_interval_ms,
            idle_window: Duration::from_secs(a.idle_seconds),
            ..FleetLoad::new(agents, tasks, dir.clone())
        }));
        let _ = std::fs::remove_dir_all(&dir);
        print(a, &report?);
    }
    Ok(())
}

fn print(a: &FleetArgs, report: &fleet::FleetReport) {
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    println!(
        "{}",
        serde_json::json!({
            "bench": "fleet",
            "agents": report.agents,
            "agents_listed": report.agents_listed,
            "tasks": report.tasks,
            "telemetry_interval_ms": a.telemetry_interval_ms,
            "issue_certs_ms": ms(report.issue_certs),
            "issue_ms_per_cert": ms(report.issue_certs) / report.agents.max(1) as f64,
            "connect_ms": ms(report.connect),
            "assignment_p50_ms": ms(report.latency_percentile(0.5)),
            "assignment_p90_ms": ms(report.latency_percentile(0.9)),
            "assignment_p99_ms": ms(report.latency_percentile(0.99)),
            "assignment_max_ms": ms(report.latency_percentile(1.0)),
            "submit_phase_ms": ms(report.submit_phase),
            "coordinator_cpu_cores_idle": (report.idle_cpu_cores * 1000.0).round() / 1000.0,
            "coordinator_cpu_cores_submitting": (report.submit_cpu_cores * 1000.0).round() / 1000.0,
        })
    );
}
