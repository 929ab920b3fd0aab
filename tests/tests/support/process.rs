//! A coordinator in its own process, so a test can SIGKILL it.
//!
//! The child is this very test binary, started with only the ignored test
//! [`crate::cases::crash::coordinator_child_process`] selected and the path of a
//! `coordinator.toml` in [`CHILD_CONFIG_ENV`]. It runs `proofrack::serve::start_coordinator`,
//! the code path of `proofrack coordinator`, prints [`READY_MARKER`] and its address, and serves
//! until it is killed. (A test binary cannot rely on the `proofrack` binary: `cargo test` does not
//! build another package's binaries.)

use super::STEP_TIMEOUT;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The environment variable that turns the child test into a coordinator.
pub const CHILD_CONFIG_ENV: &str = "PROOFRACK_TEST_COORDINATOR_CONFIG";
/// What the child prints, followed by its address, once it serves.
pub const READY_MARKER: &str = "PROOFRACK_COORDINATOR_READY";
/// The child test's path in this binary.
const CHILD_TEST: &str = "cases::crash::coordinator_child_process";

/// A coordinator process started from `config`; killed (SIGKILL) when dropped.
pub struct CoordinatorProcess {
    config: PathBuf,
    child: Option<Child>,
    pub addr: SocketAddr,
    /// How many times it was started.
    pub starts: u32,
}

impl CoordinatorProcess {
    /// Starts the coordinator and waits until it serves.
    pub async fn start(config: &Path) -> CoordinatorProcess {
        let (child, addr) = spawn(config).await;
        CoordinatorProcess {
            config: config.to_path_buf(),
            child: Some(child),
            addr,
            starts: 1,
        }
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed that was not already durable.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            tokio::task::spawn_blocking(move || {
                child.kill().expect("SIGKILL the coordinator");
                child.wait().expect("reap the coordinator");
            })
            .await
            .expect("kill thread");
        }
    }

    /// Starts it again from the same configuration (same address and data directory).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running coordinator");
        let (child, addr) = spawn(&self.config).await;
        assert_eq!(
            addr, self.addr,
            "the coordinator came back on another address"
        );
        self.child = Some(child);
        self.starts += 1;
    }
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn spawn(config: &Path) -> (Child, SocketAddr) {
    let exe = std::env::current_exe().expect("path of the test binary");
    let config = config.to_path_buf();
    let what = format!("the coordinator process ({}) to serve", config.display());
    let spawned = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(exe)
            .args([
                CHILD_TEST,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_CONFIG_ENV, &config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the coordinator process");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    // libtest's "test NAME ... " may precede the marker on its line.
                    if let Some(at) = line.find(READY_MARKER) {
                        let rest = &line[at + READY_MARKER.len()..];
                        break rest
                            .trim()
                            .parse::<SocketAddr>()
                            .expect("ready line's address");
                    }
                }
                Some(Err(e)) => panic!("reading the coordinator's output: {e}"),
                None => {
                    let status = child.wait().expect("reap the coordinator");
                    panic!("the coordinator process exited before serving ({status}); its errors are above");
                }
            }
        };
        // Keep draining its output so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        (child, addr)
    });
    super::wait::within(STEP_TIMEOUT, &what, spawned)
        .await
        .expect("spawn thread")
}

/// A UDP port on loopback that was free a moment ago (the coordinator must come back on the
/// same address after every kill, so port 0 will not do).
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    socket.local_addr().expect("probe address").port()
}
