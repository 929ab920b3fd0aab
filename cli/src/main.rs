//! `proofrack`: the operator's and client's command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use proofrack::client_cmds::{self, ClientArgs, SubmitArgs};
use proofrack::devnet::{self, DevnetOptions};
use proofrack_agent::BackendChoice;
use proofrack_common::protocol::ClientRequest;
use proofrack_common::TaskId;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "proofrack",
    version,
    about = "Operator side of a zero-knowledge prover network: coordinator, agents, clients"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Coordinator and agents of two operators on this machine, proving a stream of tasks.
    Devnet(DevnetArgs),
    /// Run the coordinator (stake ledger, admission, QUIC server).
    Coordinator {
        #[arg(long, default_value = "coordinator.toml")]
        config: PathBuf,
        /// Print the configuration in effect (defaults filled in) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Run an agent on this box.
    Agent {
        #[arg(long, default_value = "agent.toml")]
        config: PathBuf,
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
    Explain(proofrack::explain_cmd::ExplainArgs),
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
    Verify(proofrack::snarkjs_cmds::VerifyArgs),
    /// Prove a circom circuit on this machine with proofrack's prover: zkey + wtns in,
    /// snarkjs proof.json/public.json out.
    Prove(proofrack::snarkjs_cmds::ProveArgs),
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
    Audit(proofrack::audit_cmd::AuditArgs),
}

#[derive(Subcommand)]
enum BreakerCommand {
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
enum CircuitsCommand {
    /// Register a circom circuit from its zkey and .r1cs; tasks then name it with
    /// `proofrack submit --circuit NAME --wtns W.wtns` (or --input with --wasm).
    Register {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        register: proofrack::circom_cmds::RegisterArgs,
    },
    /// Remove a circom circuit (deployment admins only; refused while an unfinished task
    /// uses it).
    Unregister {
        #[command(flatten)]
        client: ClientArgs,
        /// The circuit's name.
        name: String,
    },
}

#[derive(clap::Subcommand)]
enum OperatorCommand {
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
struct DevnetArgs {
    /// Where certificates, keys and caches go (reused by later runs).
    #[arg(long, default_value = "devnet-data")]
    data_dir: PathBuf,
    /// Stop after this many tasks (0: run until Ctrl-C).
    #[arg(long, default_value_t = 24)]
    tasks: usize,
    /// Circuits to draw tasks from.
    #[arg(long, value_delimiter = ',', default_value = "mimc-10,mimc-12,mimc-14")]
    circuits: Vec<String>,
    #[arg(long, default_value_t = 2)]
    agents_per_operator: usize,
    /// Tasks outstanding at once.
    #[arg(long, default_value_t = 6)]
    in_flight: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// auto (CUDA if present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// Stake on a local anvil chain (StakeRegistry contract) instead of the config file.
    #[arg(long)]
    chain: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let default = match cli.command {
            Command::Devnet(_) => "warn",
            _ => "info",
        };
        tracing_subscriber::EnvFilter::new(default)
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Devnet(a) => {
            let opts = DevnetOptions {
                data_dir: a.data_dir,
                tasks: (a.tasks > 0).then_some(a.tasks),
                circuits: a.circuits,
                agents_per_operator: a.agents_per_operator,
                in_flight: a.in_flight,
                seed: a.seed,
                backend: a.backend,
                verbose: true,
                chain: a.chain,
            };
            let report = devnet::run(opts, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            let active: u128 = report.ledger.operators.iter().map(|o| o.active.get()).sum();
            if !report.failed.is_empty() || active != 0 {
                anyhow::bail!(
                    "devnet: {} tasks failed ({:?}); active stake left {active}",
                    report.failed.len(),
                    report.failed
                );
            }
            Ok(())
        }
        Command::Coordinator {
            config,
            print_config,
        } => {
            let c = proofrack::serve::load_coordinator_config(&config)?;
            if print_config {
                print!(
                    "{}",
                    toml::to_string(&c).context("printing the configuration")?
                );
                return Ok(());
            }
            proofrack::serve::coordinator(c).await
        }
        Command::Agent {
            config,
            print_config,
        } => {
            let c = proofrack::serve::load_agent_config(&config)?;
            if print_config {
                print!(
                    "{}",
                    toml::to_string(&c).context("printing the configuration")?
                );
                return Ok(());
            }
            proofrack::serve::agent(c).await
        }
        Command::Submit { client, submit } => client_cmds::submit(&client, &submit).await,
        Command::Status {
            client,
            task,
            options,
        } => client_cmds::status(&client, task, &options).await,
        Command::Ledger { client } => client_cmds::table(&client, ClientRequest::Ledger).await,
        Command::Agents { client } => client_cmds::table(&client, ClientRequest::Agents).await,
        Command::Explain(a) => {
            tokio::task::spawn_blocking(move || proofrack::explain_cmd::explain(&a)).await?
        }
        Command::Circuits {
            command: Some(CircuitsCommand::Register { client, register }),
            ..
        } => proofrack::circom_cmds::register_cmd(&client, &register).await,
        Command::Circuits {
            command: Some(CircuitsCommand::Unregister { client, name }),
            ..
        } => proofrack::admin_cmds::run(&client, ClientRequest::UnregisterCircuit { name }).await,
        Command::Circuits { client, .. } => {
            client_cmds::table(&client, ClientRequest::Circuits).await
        }
        Command::Breaker {
            command:
                BreakerCommand::Reset {
                    client,
                    agent,
                    request_id,
                },
        } => {
            let agent: proofrack_common::AgentId = agent
                .parse()
                .map_err(|e| anyhow::anyhow!("agent {agent:?}: {e}; write OPERATOR/NAME"))?;
            let req = ClientRequest::ResetBreaker {
                request_id: request_id.unwrap_or_else(rand::random),
                agent,
            };
            proofrack::admin_cmds::run(&client, req).await
        }
        Command::Audit(a) => proofrack::audit_cmd::audit(&a).await,
        Command::Certs(args) => proofrack_certs::cli::run(args),
        Command::Drain {
            client,
            agent,
            undo,
            request_id,
        } => {
            let agent: proofrack_common::AgentId = agent
                .parse()
                .map_err(|e| anyhow::anyhow!("agent {agent:?}: {e}; write OPERATOR/NAME"))?;
            let req = ClientRequest::Drain {
                request_id: request_id.unwrap_or_else(rand::random),
                agent,
                drain: !undo,
            };
            proofrack::admin_cmds::run(&client, req).await
        }
        Command::Operator {
            command:
                OperatorCommand::Withdraw {
                    client,
                    operator,
                    amount,
                    request_id,
                },
        } => {
            let operator = proofrack_common::OperatorId::new(&operator)
                .map_err(|e| anyhow::anyhow!("--operator {operator:?}: {e}"))?;
            let amount: proofrack_common::StakeUnits = amount.parse().map_err(|e| {
                anyhow::anyhow!("--amount {amount:?}: {e}; give base units, e.g. 100")
            })?;
            let req = ClientRequest::Withdraw {
                request_id: request_id.unwrap_or_else(rand::random),
                operator,
                amount,
            };
            proofrack::admin_cmds::run(&client, req).await
        }
        Command::Verify(args) => proofrack::snarkjs_cmds::verify(&args),
        Command::Prove(args) => proofrack::snarkjs_cmds::prove(&args),
    }
}
