//! What the subcommands start with: logging for all, a runtime for the async ones, and the
//! files around them (sibling binaries, scratch directories).

use anyhow::Context;
use std::path::PathBuf;

/// Logs to stderr at `RUST_LOG`'s levels when it is set (stdout carries the JSON lines).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
}

/// A multi-threaded runtime for a subcommand's async work (the load generators' agents and
/// clients, an in-process coordinator's callers).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// A fresh scratch directory `proofrack-bench-NAME-PID` under the system temp dir (emptied
/// if a run of the same process id left one).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proofrack-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `name` next to this executable (cargo builds every binary of a profile into one
/// directory); an error saying how to build it when it is not there.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?
        .parent()
        .context("this executable has no directory")?
        .join(name);
    if !path.is_file() {
        anyhow::bail!(
            "no {name} binary at {}; build it (cargo build --release -p proofrack --bins) or \
             pass --binary",
            path.display()
        );
    }
    Ok(path)
}
