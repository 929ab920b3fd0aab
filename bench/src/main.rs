//! proofrack-bench: benchmarks of the proving backends, each against the CPU reference in
//! the same run. Prints JSON lines.

mod groth16;
mod ntt;

use clap::Parser;

#[derive(Parser)]
#[command(name = "proofrack-bench", about = "Benchmarks of the proving backends (JSON lines)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Whole Groth16 proofs of the built-in MiMC circuits.
    Groth16(groth16::Groth16Args),
    /// Forward NTTs (plain and on the prover's odd coset).
    Ntt(ntt::NttArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Groth16(args) => groth16::run(&args),
        Command::Ntt(args) => ntt::run(&args),
    }
}
