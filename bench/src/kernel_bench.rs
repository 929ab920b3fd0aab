//! What the kernel benchmarks (`msm`, `ntt`, `groth16`, `check`, `check-msm`) share: their
//! arguments, the backend they measure, and how they time and round.
//!
//! Each subcommand flattens [`KernelArgs`] and sets its own defaults with clap's `mut_arg`
//! and [`default`], so `--sizes`, `--backend`, `--seed` and `--reps` mean one thing
//! everywhere.

use anyhow::Context;
use std::time::Instant;

/// Which backend runs the measured operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    Cpu,
    Cuda,
}

/// The arguments every kernel benchmark takes. No defaults here: each subcommand gives its
/// own (`#[command(mut_arg("sizes", default("10,12")), ...)]`).
#[derive(Clone, Debug, clap::Args)]
pub struct KernelArgs {
    /// log2 of each problem size.
    #[arg(long, alias = "log-sizes", value_delimiter = ',', required = false)]
    pub sizes: Vec<u32>,
    /// The backend measured; the CPU backend is the reference in the same run.
    #[arg(long, value_enum, required = false)]
    pub backend: BackendChoice,
    /// Seed of keys, inputs and blinding (a run replays with the same seed).
    #[arg(long, required = false)]
    pub seed: u64,
    /// Measured runs per size after one warm-up; the median is reported.
    #[arg(long, alias = "repeats", required = false)]
    pub reps: usize,
}

/// `mut_arg(NAME, default("VALUE"))`: a subcommand's default for one of [`KernelArgs`].
pub(crate) fn default(value: &'static str) -> impl FnOnce(clap::Arg) -> clap::Arg {
    move |arg| arg.default_value(value)
}

/// Runs `$body` with `$b` bound to the chosen backend (a generic function call per arm, so
/// every op is written once over `B: Backend`).
macro_rules! with_backend {
    ($choice:expr, $b:ident => $body:expr) => {
        match $choice {
            $crate::kernel_bench::BackendChoice::Cpu => {
                let $b = &proofrack_kernels::cpu::CpuBackend::new();
                $body
            }
            $crate::kernel_bench::BackendChoice::Cuda => {
                let $b = &$crate::kernel_bench::open_cuda()?;
                $body
            }
        }
    };
}
pub(crate) use with_backend;

/// GPU 0, with the reason in the error when there is none (no driver, no kernels built in).
pub(crate) fn open_cuda() -> anyhow::Result<proofrack_kernels::cuda::CudaBackend> {
    proofrack_kernels::cuda::CudaBackend::new(0).context("opening the CUDA backend (GPU 0)")
}

/// Milliseconds since `t`.
pub(crate) fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Three decimals, for JSON figures.
pub(crate) fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// The median of `v` (the upper one of an even count); `v` must not be empty.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
