//! The whole devnet (`proofrack devnet`), in-process.

use crate::support::wait::within;
use crate::support::TempDir;
use proofrack_common::StakeUnits;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_run_verifies_every_proof_and_frees_all_stake() {
    use proofrack::devnet::{run, DevnetOptions};
    use proofrack_agent::BackendChoice;
    crate::support::init_logging();
    let dir = TempDir::new("devnet");
    let tasks = 20;
    let opts = DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        tasks: Some(tasks),
        circuits: vec!["mimc-4".into(), "mimc-6".into(), "mimc-8".into()],
        agents_per_operator: 2,
        in_flight: 6,
        seed: 7,
        backend: BackendChoice::Cpu,
        verbose: false,
        chain: false,
    };
    let report = within(
        Duration::from_secs(100),
        "the devnet run",
        run(opts, std::future::pending()),
    )
    .await
    .expect("the devnet runs");
    assert_eq!(report.submitted, tasks);
    assert!(
        report.failed.is_empty(),
        "failed tasks: {:?}",
        report.failed
    );
    assert_eq!(report.verified, tasks);
    assert!(!report.ledger.operators.is_empty());
    for row in &report.ledger.operators {
        assert_eq!(
            row.active,
            StakeUnits::ZERO,
            "{} still has stake bound: {row:?}",
            row.operator
        );
        assert_eq!(row.bound_tasks, 0, "{row:?}");
    }
    eprintln!(
        "devnet: {tasks} tasks verified in {:.1} s",
        report.elapsed.as_secs_f64()
    );
}
