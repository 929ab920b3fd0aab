//! proofrack-bench: every benchmark of proofrack, each against a reference measured in the
//! same run, printed as JSON lines (the crate doc in lib.rs maps the modules).

mod agent_footprint;
mod attack;
mod check;
mod coordinator;
mod core_cost;
mod fleet;
mod groth16;
mod kernel_bench;
mod msm;
mod ntt;
mod setup;
mod snarkjs;
mod store;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "proofrack-bench",
    about = "Benchmarks of proofrack, each against a reference in the same run (JSON lines)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Whole Groth16 proofs of the built-in MiMC circuits.
    Groth16(groth16::Groth16Args),
    /// The GPU correctness run: NTTs to 2^24 (2^26 on big devices), mul_sub, the conformance
    /// suite and Groth16 proofs against the CPU backend; one JSON line per check, nonzero
    /// exit status when any failed.
    Check(check::CheckArgs),
    /// Our CPU prover against `snarkjs groth16 prove` on the same zkey (made by our setup,
    /// written in snarkjs' format) and witness, one JSON line per size with the ratio.
    Snarkjs(snarkjs::SnarkjsArgs),
    /// Durable bind+release per second (real core, real store, this disk) against plain redb
    /// one-row commits, and restart time with the store filled to the coordinator's limits.
    Store(store::StoreArgs),
    /// NTTs of resident data (forward, inverse, odd coset, the prover's batched transform).
    Ntt(ntt::NttArgs),
    /// MSM timing with bases and scalars resident on the device, CPU arkworks in the same run.
    Msm(msm::MsmArgs),
    /// The MSM correctness matrix (sizes x scalar distributions x edge bases) against
    /// arkworks; exits nonzero on any mismatch.
    CheckMsm(msm::CheckMsmArgs),
    /// One coordinator under a fleet of protocol agents (real QUIC, a certificate each):
    /// assignment latency and coordinator CPU, a 10-agent fleet as the reference.
    Fleet(fleet::FleetArgs),
    /// The coordinator at rack scale: 1,000 agents, 100 operators, 100,000 tasks, durable
    /// state on; assignments/s, latency, CPU, memory, against a bare quinn echo in the same run.
    Coordinator(coordinator::CoordinatorArgs),
    /// The coordinator's pure core alone (no network, no disk): µs per assignment split into
    /// submit, accept and durable rows, telemetry per report idle and loaded, RSS per bound
    /// task; at 1,000 agents against a 10-agent fleet in the same run.
    Core(core_cost::CoreArgs),
    /// What an idle agent costs its box: release binary size, RSS of a real agent process
    /// connected over QUIC, its CPU for telemetry; each against its target, `sleep` as reference.
    AgentFootprint(agent_footprint::AgentFootprintArgs),
    /// The attacker's suite against a real coordinator process with default limits: its RSS
    /// during 3,000 idle connections, half-open frames, 256 MiB uploads, 20,000 unknown
    /// drains and a trickled request, and an honest client's submit → verified latency
    /// during each beside the same figure with no attack.
    Attack(attack::AttackArgs),
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    setup::init_tracing();
    match command {
        Command::Groth16(args) => groth16::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Snarkjs(args) => snarkjs::run(&args),
        Command::Ntt(args) => ntt::run(&args),
        Command::Msm(args) => msm::run_bench(&args),
        Command::CheckMsm(args) => msm::run_check(&args),
        Command::Fleet(args) => fleet::run(&args),
        Command::Store(args) => store::run(&args),
        Command::Coordinator(args) => coordinator::run(&args),
        Command::Core(args) => core_cost::run(&args),
        Command::AgentFootprint(args) => agent_footprint::run(&args),
        Command::Attack(args) => attack::run(&args),
    }
}
