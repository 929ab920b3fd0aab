//! A coordinator in its own process, so a test can SIGKILL it.
//!
//! The child is this very test binary, started with only the ignored test
//! [`crate::cases::crash::coordinator_child_process`] selected and the path of a
//! `coordinator.toml` in [`CHILD_CONFIG_ENV`]. It runs `proofrack::serve::start_coordinator`,
//! the code path of `proofrack coordinator`, prints [`READY_MARKER`] and its address, and serves
//! until it is killed. (A test binary cannot rely on the `proofrack` binary: `cargo test` does not
//! build another package's binaries.)

use super::cluster::COORDINATOR_HOST;
use super::STEP_TIMEOUT;
use proofrack_certs::CertsDir;
use proofrack_common::identity::Identity;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The environment variable that turns the child test into a coordinator.
pub const CHILD_CONFIG_ENV: &str = "PROOFRACK_TEST_COORDINATOR_CONFIG";
/// What the child prints, followed by its address, once it serves.
pub const READY_MARKER: &str = "PROOFRACK_COORDINATOR_READY";
/// The child test's path in the e2e binary.
const CHILD_TEST: &str = "cases::crash::coordinator_child_process";

/// What a child coordinator's `coordinator.toml` varies by test. The rest is the same for
/// every child: loopback on the given port, its data under `dir/coordinator`, the test PKI's
/// coordinator certificate, a 500 ms telemetry interval, the offer and deadline margins
/// widened as in every end-to-end test on this shared machine, and `[http]` off (the child
/// runs `start_coordinator`, which serves no HTTP).
pub struct ChildConfig<'a> {
    pub circuits: &'a [&'a str],
    /// Operators and their delegated stake (the config-file stake source).
    pub operators: &'a [(&'a str, u128)],
    /// `[policy]` settings beyond the widened margins.
    pub policy: &'a [(&'a str, u64)],
}

impl ChildConfig<'_> {
    /// Writes `dir/coordinator.toml` and returns its path.
    pub fn write(&self, dir: &Path, certs: &CertsDir, port: u16) -> PathBuf {
        let coordinator = Identity::coordinator(COORDINATOR_HOST).expect("coordinator identity");
        let circuits: Vec<String> = self.circuits.iter().map(|c| format!("{c:?}")).collect();
        let mut toml = format!(
            r#"listen = "127.0.0.1:{port}"
data_dir = "{data}"
circuits = [{circuits}]
telemetry_interval_ms = 500

[tls]
ca_cert = "{ca}"
cert = "{cert}"
key = "{key}"

[http]
enabled = false

[policy]
offer_timeout_ms = 20000
deadline_margin_ms = 20000
"#,
            circuits = circuits.join(", "),
            data = dir.join("coordinator").display(),
            ca = certs.ca_cert_path().display(),
            cert = certs.cert_path(&coordinator).display(),
            key = certs.key_path(&coordinator).display(),
        );
        for (name, value) in self.policy {
            toml.push_str(&format!("{name} = {value}\n"));
        }
        for (op, stake) in self.operators {
            toml.push_str(&format!(
                "\n[[operators]]\nid = \"{op}\"\ndelegated = {stake}\n"
            ));
        }
        let path = dir.join("coordinator.toml");
        std::fs::write(&path, toml).expect("write coordinator.toml");
        path
    }
}

/// A coordinator process started from `config`; killed (SIGKILL) when dropped.
pub struct CoordinatorProcess {
    config: PathBuf,
    /// The ignored test in this binary that runs [`run_child`].
    child_test: &'static str,
    child: Option<Child>,
    pub addr: SocketAddr,
    /// How many times it was started.
    pub starts: u32,
}

impl CoordinatorProcess {
    /// Starts the coordinator and waits until it serves.
    pub async fn start(config: &Path) -> CoordinatorProcess {
        CoordinatorProcess::start_as(config, CHILD_TEST).await
    }

    /// [`CoordinatorProcess::start`] through `child_test`, the ignored test of this binary
    /// that calls [`run_child`] (another test binary than e2e has its own).
    pub async fn start_as(config: &Path, child_test: &'static str) -> CoordinatorProcess {
        let (child, addr) = spawn(config, child_test).await;
        CoordinatorProcess {
            config: config.to_path_buf(),
            child_test,
            child: Some(child),
            addr,
            starts: 1,
        }
    }

    /// The process id, while it runs (the attack suite reads its memory).
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
        let (child, addr) = spawn(&self.config, self.child_test).await;
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

async fn spawn(config: &Path, child_test: &'static str) -> (Child, SocketAddr) {
    let exe = std::env::current_exe().expect("path of the test binary");
    let config = config.to_path_buf();
    let what = format!("the coordinator process ({}) to serve", config.display());
    let spawned = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(exe)
            .args([
                child_test,
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

/// The body of a child test: serves the `coordinator.toml` named by [`CHILD_CONFIG_ENV`]
/// with `proofrack coordinator`'s code path, prints [`READY_MARKER`] and its address, and
/// serves until killed.
pub fn run_child() {
    use std::io::Write;
    let Some(path) = std::env::var_os(CHILD_CONFIG_ENV) else {
        panic!(
            "only a test that starts a coordinator process runs this (it sets {CHILD_CONFIG_ENV})"
        );
    };
    super::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let config = proofrack::serve::load_coordinator_config(Path::new(&path))
            .unwrap_or_else(|e| panic!("coordinator configuration: {e:#}"));
        let running = proofrack::serve::start_coordinator(&config)
            .await
            .unwrap_or_else(|e| panic!("coordinator start: {e:#}"));
        println!("{READY_MARKER} {}", running.local_addr);
        std::io::stdout().flush().expect("flush the ready line");
        let why = running.store_failed().await;
        panic!("the state store failed: {why}");
    });
}

/// A UDP port on loopback that was free a moment ago (the coordinator must come back on the
/// same address after every kill, so port 0 will not do).
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    socket.local_addr().expect("probe address").port()
}
