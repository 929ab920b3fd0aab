//! A coordinator holding a large fleet: 200 protocol agents over real QUIC, each with its own
//! certificate, all listed, and every submitted task offered. (The 1000-agent figures come
//! from `proofrack-bench fleet`; this checks correctness at a size CI affords.)

use crate::support::TempDir;
use proofrack_bench::load::fleet::{self, FleetLoad};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_agents_are_all_listed_and_every_task_is_assigned() {
    crate::support::init_logging();
    let dir = TempDir::new("fleet-scale");
    let report = fleet::run(FleetLoad {
        idle_window: Duration::from_millis(500),
        ..FleetLoad::new(200, 400, dir.path().to_path_buf())
    })
    .await
    .expect("the fleet load runs");
    assert_eq!(
        report.agents_listed, 200,
        "every agent connected and reporting"
    );
    assert_eq!(report.assignment_latencies.len(), 400, "every task offered");
    eprintln!(
        "fleet of 200: certificates {:?}, connect {:?}, assignment p50 {:?} p99 {:?}, coordinator CPU {:.2} cores while submitting",
        report.issue_certs,
        report.connect,
        report.latency_percentile(0.5),
        report.latency_percentile(0.99),
        report.submit_cpu_cores
    );
}
