//! `proofrack`: the operator's and client's command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use proofrack::client_cmds::{self, ClientArgs, SubmitArgs};
use proofrack::devnet::{self, DevnetOptions};
use proofrack_agent::config::BackendChoice;
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
    /// Registered circuits and their proving keys.
    Circuits {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Certificates: CA, coordinator, agents, clients; renew and revoke.
    Certs(proofrack_certs::cli::CertsArgs),
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
        Command::Status { client, task } => client_cmds::status(&client, task).await,
        Command::Ledger { client } => client_cmds::table(&client, ClientRequest::Ledger).await,
        Command::Agents { client } => client_cmds::table(&client, ClientRequest::Agents).await,
        Command::Explain(a) => {
            tokio::task::spawn_blocking(move || proofrack::explain_cmd::explain(&a)).await?
        }
        Command::Circuits { client } => client_cmds::table(&client, ClientRequest::Circuits).await,
        Command::Certs(args) => proofrack_certs::cli::run(args),
    }
}
