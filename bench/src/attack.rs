//! `proofrack-bench attack`: the attacker's suite as a benchmark. A real `proofrack
//! coordinator` process (found next to this executable) with default limits, an honest CPU
//! agent and client in this process, and the five resource attacks of issue 15 in turn
//! (`load::attack`): one JSON line per attack with the coordinator's RSS before, at
//! peak and after, and the honest client's submit → verified latency during the attack
//! beside the same figure with no attack, measured in the same run.

use crate::setup;
use proofrack_bench::load::attack::{self as attack_load, Scale, Target};
use proofrack_bench::load::coordinator::{CoordinatorSite, CoordinatorUnderLoad};
use proofrack_certs::{CertsDir, LocalPki, LocalPkiOptions};
use proofrack_common::identity::Identity;
use proofrack_common::{Clock, OperatorId, StakeUnits, SystemClock};
use proofrack_coordinator::{CoordinatorConfig, OperatorStake, Policy};

#[derive(clap::Args)]
pub struct AttackArgs {
    /// Drains of unknown agents (the issue's 20,000; only time depends on it).
    #[arg(long, default_value_t = 20_000)]
    drains: u64,
    /// The `proofrack` binary the coordinator runs as; default: next to this executable.
    #[arg(long)]
    binary: Option<std::path::PathBuf>,
}

pub fn run(a: &AttackArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("proofrack-bench-attack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let binary = match &a.binary {
        Some(b) => b.clone(),
        None => setup::sibling_binary("proofrack")?,
    };
    let result = rt.block_on(async {
        let now = SystemClock.now();
        let pki = LocalPki::bootstrap(
            CertsDir::new(dir.join("certs")),
            attack_load::COORDINATOR_HOST,
            &LocalPkiOptions::default(),
            now,
        )?;
        let honest_id = Identity::client("honest")?;
        let honest_material = pki.issue(&honest_id, now)?;
        let config = CoordinatorConfig {
            circuits: vec![attack_load::HONEST_CIRCUIT.to_string()],
            policy: Policy {
                deadline_margin_ms: 20_000,
                offer_timeout_ms: 20_000,
                ..Policy::default()
            },
            operators: vec![OperatorStake {
                id: OperatorId::new("op-a").map_err(anyhow::Error::msg)?,
                delegated: StakeUnits(1_000_000),
            }],
            ..CoordinatorConfig::default()
        };
        let coordinator = CoordinatorUnderLoad::start(
            &CoordinatorSite::OwnProcess { binary },
            config,
            &pki,
            &honest_material,
            &dir,
        )
        .await?;
        let target = Target {
            addr: coordinator.addr(),
            pid: coordinator
                .pid()
                .expect("the coordinator runs as its own process"),
            certs: CertsDir::new(dir.join("certs")),
        };
        let agent =
            attack_load::start_cpu_agent(&target, "op-a", "honest-gpu", &dir.join("agents"))?;
        let honest = target.client(&honest_id).await?;
        let scale = Scale {
            drains: a.drains,
            ..Scale::issue()
        };
        let reports = attack_load::run_suite(&target, &honest, &scale, |r| {
            println!("{}", r.json());
        })
        .await;
        let _ = agent.send(true);
        honest.close().await;
        coordinator.shutdown().await?;
        reports.map(|_| ())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
