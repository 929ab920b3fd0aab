//! `proofrack-bench coordinator`: the coordinator at rack scale. 1,000 protocol agents over
//! real QUIC with a certificate each, spread over 100 operators, one client submitting
//! 100,000 tasks with many submissions in flight, durable state on (redb in a temporary
//! directory). Prints assignments per second (first submission to the last task's stake
//! bound), assignment latency (submission to the offer at the agent), the coordinator's CPU
//! and the process's memory; the reference in the same run is a bare quinn mutual-TLS echo
//! over the same number of connections, with the ratio.

use crate::setup;
use proofrack_bench::load::coordinator::CoordinatorSite;
use proofrack_bench::load::echo::{self, EchoLoad, EchoReport};
use proofrack_bench::load::fleet::{self, FleetLoad, FleetReport};
use std::time::Duration;

#[derive(clap::Args)]
pub struct CoordinatorArgs {
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    #[arg(long, default_value_t = 100)]
    operators: usize,
    #[arg(long, default_value_t = 100_000)]
    tasks: usize,
    /// Submission requests in flight at once.
    #[arg(long, default_value_t = 16)]
    submitters: usize,
    /// Tasks per submission request (1: one `Submit` each; more: `SubmitBatch`).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 1000)]
    telemetry_interval_ms: u64,
    /// Seconds of telemetry-only load measured before submitting.
    #[arg(long, default_value_t = 3)]
    idle_seconds: u64,
    /// Seconds the echo reference counts round trips.
    #[arg(long, default_value_t = 5)]
    echo_seconds: u64,
    /// Skip the echo reference.
    #[arg(long)]
    no_reference: bool,
    /// Also measure latency at these fixed offered rates (tasks/s, comma-separated; each a
    /// run on a fresh coordinator and fleet, `--latency-seconds` long); empty skips them.
    #[arg(long, value_delimiter = ',', default_value = "10000,20000")]
    latency_rates: Vec<f64>,
    /// Seconds of submissions in each fixed-rate run.
    #[arg(long, default_value_t = 5)]
    latency_seconds: u64,
    /// Tasks per submission request in the fixed-rate runs (a client at a steady rate sends
    /// smaller batches than one pushing a backlog).
    #[arg(long, default_value_t = 32)]
    latency_batch: usize,
    /// Run the coordinator inside the bench process instead of as its own `proofrack
    /// coordinator` process (then memory is the whole process's).
    #[arg(long)]
    in_process: bool,
    /// The `proofrack` binary the coordinator runs as; default: next to this executable.
    #[arg(long)]
    binary: Option<std::path::PathBuf>,
}

/// One measured run: its mode, tasks, offered rate (none: throughput) and batch size.
struct Run {
    mode: &'static str,
    tasks: usize,
    rate: Option<f64>,
    batch: usize,
}

pub fn run(a: &CoordinatorArgs) -> anyhow::Result<()> {
    let rt = setup::runtime()?;
    let base = setup::scratch_dir("coord");
    let result = run_all(a, &rt, &base);
    let _ = std::fs::remove_dir_all(&base);
    result
}

fn run_all(
    a: &CoordinatorArgs,
    rt: &tokio::runtime::Runtime,
    base: &std::path::Path,
) -> anyhow::Result<()> {
    let echo = if a.no_reference {
        None
    } else {
        let report = rt.block_on(echo::run(EchoLoad {
            connections: a.agents,
            window: Duration::from_secs(a.echo_seconds),
            dir: base.join("echo"),
        }))?;
        print_echo(&report);
        Some(report)
    };
    let site = if a.in_process {
        CoordinatorSite::InProcess
    } else {
        CoordinatorSite::OwnProcess {
            binary: match &a.binary {
                Some(b) => b.clone(),
                None => setup::sibling_binary("proofrack")?,
            },
        }
    };
    for (i, run) in runs(a).iter().enumerate() {
        // Each agent holds its share of the tasks: nothing completes during the run, so every
        // submission is one assignment (offer, accept, stake bound, committed).
        let slots = run.tasks.div_ceil(a.agents.max(1)).max(1) as u32;
        let report = rt.block_on(fleet::run(FleetLoad {
            telemetry_interval_ms: a.telemetry_interval_ms,
            idle_window: Duration::from_secs(a.idle_seconds),
            operators: a.operators,
            agent_slots: slots,
            submitters: a.submitters,
            batch: run.batch,
            site: site.clone(),
            offered_per_sec: run.rate,
            ..FleetLoad::new(a.agents, run.tasks, base.join(format!("run-{i}")))
        }))?;
        print_run(a, run, slots, &report, echo.as_ref());
    }
    Ok(())
}

/// The throughput run, then one run per fixed offered rate.
fn runs(a: &CoordinatorArgs) -> Vec<Run> {
    let mut runs = vec![Run {
        mode: "throughput",
        tasks: a.tasks,
        rate: None,
        batch: a.batch,
    }];
    for &rate in a.latency_rates.iter().filter(|r| **r > 0.0) {
        runs.push(Run {
            mode: "fixed-rate latency",
            tasks: (rate * a.latency_seconds as f64).round() as usize,
            rate: Some(rate),
            batch: a.latency_batch,
        });
    }
    runs
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn print_echo(report: &EchoReport) {
    println!(
        "{}",
        serde_json::json!({
            "bench": "quinn-echo",
            "connections": report.connections,
            "round_trips_per_s": report.round_trips_per_sec().round(),
            "p50_ms": ms(report.latency_percentile(0.5)),
            "p99_ms": ms(report.latency_percentile(0.99)),
        })
    );
}

fn print_run(
    a: &CoordinatorArgs,
    run: &Run,
    slots: u32,
    report: &FleetReport,
    echo: Option<&EchoReport>,
) {
    let per_sec = report.assignments_per_sec();
    let mib = |b: u64| (b as f64 / (1 << 20) as f64 * 10.0).round() / 10.0;
    println!(
        "{}",
        serde_json::json!({
            "bench": "coordinator",
            "mode": run.mode,
            "offered_per_s": run.rate,
            "agents": report.agents,
            "agents_listed": report.agents_listed,
            "operators": a.operators,
            "tasks": report.tasks,
            "agent_slots": slots,
            "submitters": a.submitters,
            "batch": run.batch,
            "durable_state": true,
            "coordinator_process": if report.coordinator_alone { "own process" } else { "in the bench process" },
            "assignments_per_s": per_sec.round(),
            "all_bound_ms": ms(report.all_bound),
            "submit_phase_ms": ms(report.submit_phase),
            "assignment_p50_ms": ms(report.latency_percentile(0.5)),
            "assignment_p99_ms": ms(report.latency_percentile(0.99)),
            "assignment_max_ms": ms(report.latency_percentile(1.0)),
            "coordinator_cpu_cores_idle": (report.idle_cpu_cores * 1000.0).round() / 1000.0,
            "coordinator_cpu_cores_submitting": (report.submit_cpu_cores * 1000.0).round() / 1000.0,
            "coordinator_cpu_us_per_assignment": (report.submit_cpu_cores * report.all_bound.as_secs_f64() / report.tasks.max(1) as f64 * 1e7).round() / 10.0,
            "rss_mib": mib(report.rss_bytes),
            "rss_peak_mib": mib(report.rss_peak_bytes),
            "rss_is": if report.coordinator_alone { "the coordinator's process" } else { "the whole bench process" },
            "connect_ms": ms(report.connect),
            "reference_echo_round_trips_per_s": echo.map(|e| e.round_trips_per_sec().round()),
            // Only the throughput run is the transport's peer; a fixed-rate run's rate is
            // the one it was offered.
            "ratio_to_echo": echo.filter(|_| run.rate.is_none()).map(|e| (per_sec / e.round_trips_per_sec() * 1000.0).round() / 1000.0),
        })
    );
}
