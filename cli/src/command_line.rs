//! The `proofrack` command line as clap parses it: every command, subcommand and flag. The
//! binary (`main.rs`) dispatches on it; the documented-commands test parses every
//! `proofrack …` line of the README, docs/ and deploy/ with it, so documentation cannot
//! drift from the CLI.

use crate::client_cmds::{self, ClientArgs, SubmitArgs};
use clap::{Parser, Subcommand};
use proofrack_agent::BackendChoice;
use proofrack_common::TaskId;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "proofrack",
    version,
    about = "Operator side of a zero-knowledge prover network: coordinator, agents, clients"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Coordinator and agents of two operators on this machine, proving a stream of tasks.
    Devnet(DevnetArgs),
    /// Run the coordinator (stake ledger, admission, QUIC server).
    Coordinator {
        /// The configuration file (deploy/coordinator.toml documents every key).
        #[arg(long, default_value = "coordinator.toml")]
        config: PathBuf,
        /// Print the configuration in effect (file, environment, defaults) and exit; with no
        /// such file, the defaults.
        #[arg(long)]
        print_config: bool,
    },
    /// Run an agent on this box.
    Agent {
        /// The configuration file (deploy/agent.toml documents every key).
        #[arg(long, default_value = "agent.toml")]
        config: PathBuf,
        /// Print the configuration in effect (file, environment, defaults) and exit; with no
        /// such file, the defaults.
        #[arg(long)]
        print_config: bool,
    },
    /// Submit a proof task.
    Submit {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// A task's status and history.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        task: TaskId,
        #[command(flatten)]
        options: client_cmds::StatusArgs,
    },
    /// Why a task went where it went: admission decisions with the agents rejected and why,
    /// stake bound, predicted vs actual proving time, failures and their causes.
    Explain(crate::explain_cmd::ExplainArgs),
    /// Your tasks, newest first (a requester's own; an operator admin's agents'; a deployment
    /// admin's: all), optionally in one state.
    Tasks {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        list: client_cmds::TasksArgs,
    },
    /// Stake per operator: delegated, active, withdrawing, free, slashed.
    Ledger {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Agents: operator, hardware, telemetry age, tasks, calibrated throughput.
    Agents {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Registered circuits and their proving keys; `circuits register` adds a circom circuit.
    Circuits {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: Option<CircuitsCommand>,
    },
    /// Check a Groth16 proof (snarkjs proof.json or proofrack binary) against a
    /// verification_key.json and public.json.
    Verify(crate::snarkjs_cmds::VerifyArgs),
    /// Prove a circom circuit on this machine with proofrack's prover: zkey + wtns in,
    /// snarkjs proof.json/public.json out.
    Prove(crate::snarkjs_cmds::ProveArgs),
    /// Certificates: CA, coordinator, agents, clients; renew and revoke.
    Certs(proofrack_certs::cli::CertsArgs),
    /// Stop giving an agent new tasks (it finishes what it holds); --undo lets it take tasks
    /// again. Survives coordinator restarts.
    Drain {
        #[command(flatten)]
        client: ClientArgs,
        /// The agent, OPERATOR/NAME (e.g. op-a/gpu-01).
        agent: String,
        #[arg(long)]
        undo: bool,
        /// Idempotency id; a retry with the same id changes nothing twice.
        #[arg(long)]
        request_id: Option<u64>,
    },
    /// An operator's stake.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Agents' circuit breakers (an agent that keeps failing gets no new offers for a
    /// cool-down).
    Breaker {
        #[command(subcommand)]
        command: BreakerCommand,
    },
    /// The audit log of administrators' actions, allowed and refused (deployment admins read
    /// every line, operator admins their operator's).
    Audit(crate::audit_cmd::AuditArgs),
}

#[derive(Subcommand)]
pub enum BreakerCommand {
    /// Close an agent's circuit breaker so it is offered tasks again (its operator's admins
    /// only).
    Reset {
        #[command(flatten)]
        client: ClientArgs,
        /// The agent, OPERATOR/NAME (e.g. op-a/gpu-01).
        agent: String,
        /// Idempotency id; a retry with the same id changes nothing twice.
        #[arg(long)]
        request_id: Option<u64>,
    },
}

#[derive(Subcommand)]
pub enum CircuitsCommand {
    /// Register a circom circuit from its zkey and .r1cs; tasks then name it with
    /// `proofrack submit --circuit NAME --wtns W.wtns` (or --input with --wasm).
    Register {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        register: crate::circom_cmds::RegisterArgs,
    },
    /// Remove a circom circuit (deployment admins only; refused while an unfinished task
    /// uses it).
    Unregister {
        #[command(flatten)]
        client: ClientArgs,
        /// The circuit's name.
        name: String,
    },
    /// Write a circuit's Groth16 verification key (built-in or registered) as snarkjs'
    /// verification_key.json, the key the coordinator verifies its proofs with, so that
    /// `snarkjs groth16 verify` can check them.
    Vk {
        #[command(flatten)]
        client: ClientArgs,
        /// The circuit, as `proofrack circuits` lists it (e.g. mimc-12).
        name: String,
        /// Where to write it; `-` prints it.
        #[arg(long, default_value = "verification_key.json")]
        out: PathBuf,
    },
}

#[derive(clap::Subcommand)]
pub enum OperatorCommand {
    /// Withdraw free stake: it stops backing new tasks now and is paid out after the
    /// coordinator's withdrawal delay (longer than any task's deadline).
    Withdraw {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        operator: String,
        /// Base units.
        #[arg(long)]
        amount: String,
        /// Idempotency id; a retry with the same id changes nothing twice.
        #[arg(long)]
        request_id: Option<u64>,
    },
}

#[derive(clap::Args)]
pub struct DevnetArgs {
    /// Where certificates, keys and caches go (reused by later runs).
    #[arg(long, default_value = "devnet-data")]
    pub data_dir: PathBuf,
    /// Stop after this many tasks (0: run until Ctrl-C).
    #[arg(long, default_value_t = 24)]
    pub tasks: usize,
    /// Circuits to draw tasks from.
    #[arg(long, value_delimiter = ',', default_value = "mimc-10,mimc-12,mimc-14")]
    pub circuits: Vec<String>,
    #[arg(long, default_value_t = 2)]
    pub agents_per_operator: usize,
    /// Tasks outstanding at once.
    #[arg(long, default_value_t = 6)]
    pub in_flight: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// auto (CUDA if present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub backend: BackendChoice,
    /// Stake on a local anvil chain (StakeRegistry contract) instead of the config file.
    #[arg(long)]
    pub chain: bool,
}
