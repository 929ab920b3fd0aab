//! The end-to-end harness: a temp directory with a CA and certificates, a coordinator started
//! in-process on `127.0.0.1:0`, real agents (`proofrack_agent::run` with a CPU prover
//! and a fixed calibration), a scripted agent that speaks the wire protocol itself, and
//! clients. Everything talks real QUIC with real certificates; nothing is mocked.
//!
//! Every wait has a timeout and a message, so a hung test fails fast saying what it waited
//! for. Waits follow events (the control stream, a watch stream, a connection closing) and
//! poll a coordinator view only where no event exists (the ledger, the agents table).
//!
//! # Layout
//! - [`cluster`]: [`cluster::Cluster`]: PKI, coordinator, clients and client helpers.
//! - [`scripted`]: [`scripted::ScriptedAgent`], an agent driven step by step by the test.
//! - [`real_agent`]: the production agent loop with a CPU prover.
//! - [`wait`]: timeouts, polling and a task watcher.
//! - [`wire`]: hello, telemetry and raw connections as a scripted agent makes them.
//! - [`checks`]: assertions on the coordinator's views.

pub mod checks;
pub mod cluster;
pub mod process;
pub mod proxy;
pub mod real_agent;
pub mod scripted;
pub mod wait;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One network step (connect, a request, an offer to arrive) on loopback. Generous because the
/// test machine is shared and slow (2 cores, other builds running); a healthy step takes
/// milliseconds.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// A task from submission to a verified proof with small circuits on the CPU.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// A directory under the system temp dir, removed on drop (kept when the test panicked, so a
/// failure can be looked at; its path is printed).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("proofrack-e2e-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test's temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test data kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Logs to the test's output when `RUST_LOG` is set (e.g. `RUST_LOG=info`).
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
