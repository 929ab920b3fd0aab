//! `proofrack`: the operator's and client's command line.

use clap::Parser;
use proofrack::client_cmds;
use proofrack::command_line::{BreakerCommand, CircuitsCommand, Cli, Command, OperatorCommand};
use proofrack::devnet::{self, DevnetOptions};
use proofrack_common::protocol::ClientRequest;
use std::io::IsTerminal;

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The services log what they do; a one-shot command prints its result and logs only
        // what went wrong (its info lines would repeat what it printed).
        let default = match cli.command {
            Command::Coordinator { .. } | Command::Agent { .. } => "info",
            _ => "warn",
        };
        tracing_subscriber::EnvFilter::new(default)
    });
    // Logs go to stderr (stdout carries tables and --json), coloured only for a person at a
    // terminal: a file or the journal gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    // One line (with its causes) a person can act on; the backtrace anyhow would add under
    // RUST_BACKTRACE is for bugs, and errors here are the user's to fix.
    if let Err(e) = rt.block_on(run(cli.command)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
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
            print_config: true,
        } => {
            print!("{}", proofrack::serve::print_coordinator_config(&config)?);
            Ok(())
        }
        Command::Coordinator { config, .. } => {
            let c = proofrack::serve::load_coordinator_config(&config)?;
            proofrack::serve::coordinator(c).await
        }
        Command::Agent {
            config,
            print_config: true,
        } => {
            print!("{}", proofrack::serve::print_agent_config(&config)?);
            Ok(())
        }
        Command::Agent { config, .. } => {
            let c = proofrack::serve::load_agent_config(&config)?;
            proofrack::serve::agent(c).await
        }
        Command::Submit { client, submit } => client_cmds::submit(&client, &submit).await,
        Command::Status {
            client,
            task,
            options,
        } => client_cmds::status(&client, task, &options).await,
        Command::Ledger { client } => client_cmds::table(&client, ClientRequest::Ledger).await,
        Command::Circuits {
            command: Some(CircuitsCommand::Vk { client, name, out }),
            ..
        } => client_cmds::verification_key(&client, &name, &out).await,
        Command::Agents { client } => client_cmds::table(&client, ClientRequest::Agents).await,
        Command::Explain(a) => proofrack::explain_cmd::explain(&a).await,
        Command::Tasks { client, list } => client_cmds::tasks(&client, &list).await,
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
