//! proofrack-bench: the benchmarks of proofrack, each printing its figures as JSON lines with
//! a reference measured in the same run.
//!
//! # Layout
//! The library holds what the end-to-end tests share with the benchmarks:
//! - [`load`]: load generators that drive a real coordinator over real QUIC (a fleet of
//!   protocol agents and a submitting client, the coordinator under load in or out of
//!   process, the bare quinn echo reference, `/proc` readers).
//!
//! The `proofrack-bench` binary (`main.rs`) has one module per subcommand:
//! - `msm` (and `check-msm`), `ntt`, `groth16`, `check`: the kernels and the prover against
//!   the CPU backend; `kernel_bench` holds what they share (`KernelArgs`: `--sizes`,
//!   `--backend`, `--seed`, `--reps`; the backend choice; timing), and `msm`'s `MsmCurve`
//!   writes the MSM once for G1 and G2.
//! - `snarkjs`: our prover against `snarkjs groth16 prove`.
//! - `store`: durable bind+release and restart against plain redb.
//! - `fleet`, `coordinator`: the [`load`] generators, against a small fleet and the echo.
//! - `agent_footprint`: an idle agent's binary size, memory and CPU against `sleep`.
//! - `setup`: logging for every subcommand, the runtime of the async ones, scratch
//!   directories and sibling binaries.

pub mod load;
