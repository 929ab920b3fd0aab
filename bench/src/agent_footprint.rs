//! `proofrack-bench agent-footprint`: what an idle agent costs its box. Prints one JSON line:
//! the release `proofrack` binary's size, the resident memory of a real agent process
//! (`proofrack agent --config X`, CPU prover, no keys cached) connected over real QUIC to a
//! coordinator running in this process, and that process's CPU time over an idle window with
//! telemetry every interval, as % of one core. Each figure is printed with its target; the
//! reference in the same run is a bare process (`sleep`) measured the same way.

use crate::setup;
use anyhow::Context;
use proofrack_bench::load::proc_stats;
use proofrack_bench::load::LOOPBACK_HOST;
use proofrack_certs::{CertsDir, LocalPki, LocalPkiOptions};
use proofrack_common::identity::Identity;
use proofrack_common::{Clock, OperatorId, StakeUnits, SystemClock};
use proofrack_coordinator::{
    start_server, CoordinatorConfig, OperatorStake, ServerSettings, TlsPaths,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Targets of issue 9, item 7.
const TARGET_RSS_BYTES: u64 = 30 << 20;
const TARGET_BINARY_BYTES: u64 = 20 << 20;
const TARGET_TELEMETRY_CPU_PCT: f64 = 1.0;
/// Start-up includes the CPU prover's calibration (a few seconds); beyond this something is
/// wrong and the agent's log says what.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(clap::Args)]
pub struct AgentFootprintArgs {
    /// The `proofrack` binary to measure and run; default: next to this executable.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Seconds of idle (connected, telemetry only) measured.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// Telemetry interval the coordinator gives the agent (the coordinator's default).
    #[arg(long, default_value_t = 2000)]
    telemetry_interval_ms: u64,
}

pub fn run(a: &AgentFootprintArgs) -> anyhow::Result<()> {
    let binary = match &a.binary {
        Some(b) => b.clone(),
        None => setup::sibling_binary("proofrack")?,
    };
    let binary_bytes = std::fs::metadata(&binary)
        .with_context(|| format!("reading {}", binary.display()))?
        .len();
    let dir = setup::scratch_dir("footprint");
    std::fs::create_dir_all(&dir)?;
    let result = measure(a, &binary, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let m = result?;
    let mib = |b: u64| (b as f64 / (1 << 20) as f64 * 10.0).round() / 10.0;
    let cpu_pct = m.agent_cpu.as_secs_f64() / m.window.as_secs_f64() * 100.0;
    println!(
        "{}",
        serde_json::json!({
            "bench": "agent-footprint",
            "binary": binary.display().to_string(),
            "binary_mib": mib(binary_bytes),
            "binary_target_mib": mib(TARGET_BINARY_BYTES),
            "binary_pass": binary_bytes <= TARGET_BINARY_BYTES,
            "agent_idle_rss_mib": mib(m.agent_rss_bytes),
            "agent_idle_rss_target_mib": mib(TARGET_RSS_BYTES),
            "agent_idle_rss_pass": m.agent_rss_bytes <= TARGET_RSS_BYTES,
            "agent_peak_rss_mib": mib(m.agent_peak_rss_bytes),
            "reference_sleep_rss_mib": mib(m.sleep_rss_bytes),
            "idle_window_s": (m.window.as_secs_f64() * 10.0).round() / 10.0,
            "telemetry_interval_ms": a.telemetry_interval_ms,
            "agent_cpu_ms_in_window": m.agent_cpu.as_millis() as u64,
            "telemetry_cpu_pct_of_core": (cpu_pct * 1000.0).round() / 1000.0,
            "telemetry_cpu_target_pct": TARGET_TELEMETRY_CPU_PCT,
            "telemetry_cpu_pass": cpu_pct < TARGET_TELEMETRY_CPU_PCT,
            "reference_sleep_cpu_ms_in_window": m.sleep_cpu.as_millis() as u64,
        })
    );
    Ok(())
}

struct Measured {
    agent_rss_bytes: u64,
    agent_peak_rss_bytes: u64,
    sleep_rss_bytes: u64,
    window: Duration,
    agent_cpu: Duration,
    sleep_cpu: Duration,
}

fn measure(a: &AgentFootprintArgs, binary: &Path, dir: &Path) -> anyhow::Result<Measured> {
    let now = SystemClock.now();
    let pki = LocalPki::bootstrap(
        CertsDir::new(dir.join("certs")),
        LOOPBACK_HOST,
        &LocalPkiOptions::default(),
        now,
    )?;
    let agent_id = Identity::agent("op-a", "box-1")?;
    pki.issue(&agent_id, now)?;
    let certs = pki.dir();
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let coordinator = CoordinatorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], udp_port)),
        data_dir: dir.join("coordinator"),
        circuits: vec!["mimc-4".into()],
        telemetry_interval_ms: a.telemetry_interval_ms,
        tls: TlsPaths {
            ca_cert: certs.ca_cert_path(),
            cert: certs.cert_path(pki.coordinator()),
            key: certs.key_path(pki.coordinator()),
        },
        operators: vec![OperatorStake {
            id: OperatorId::new("op-a").map_err(anyhow::Error::msg)?,
            delegated: StakeUnits(1_000_000),
        }],
        ..CoordinatorConfig::default()
    };
    coordinator.validate()?;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let agent_toml = dir.join("agent.toml");
    std::fs::write(
        &agent_toml,
        format!(
            "coordinator = \"127.0.0.1:{udp_port}\"\ndata_dir = \"{data}\"\nbackend = \"cpu\"\n\n\
             [tls]\nca_cert = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\n[metrics]\n\
             enabled = true\nlisten = \"{metrics_addr}\"\n",
            data = dir.join("agent").display(),
            ca = certs.ca_cert_path().display(),
            cert = certs.cert_path(&agent_id).display(),
            key = certs.key_path(&agent_id).display(),
        ),
    )?;

    let rt = setup::runtime()?;
    let running = rt
        .block_on(async { start_server(ServerSettings::from_config(&coordinator).await?).await })?;

    let log = std::fs::File::create(dir.join("agent.log"))?;
    let agent = Command::new(binary)
        .args(["agent", "--config"])
        .arg(&agent_toml)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {} agent", binary.display()))?;
    let mut agent = KillOnDrop(agent);
    let sleep = Command::new("sleep")
        .arg((a.idle_seconds + 60).to_string())
        .spawn()?;
    let sleep = KillOnDrop(sleep);

    let waited = wait_connected(&mut agent.0, metrics_addr, &dir.join("agent.log"));
    let result = waited.and_then(|()| {
        // One full telemetry interval first, so the window holds only steady state.
        std::thread::sleep(Duration::from_millis(a.telemetry_interval_ms));
        let (agent_pid, sleep_pid) = (agent.0.id(), sleep.0.id());
        let cpu_time = |pid| proc_stats::cpu_time(&proc_stats::stat_path(pid));
        let (agent_cpu0, sleep_cpu0) = (cpu_time(agent_pid)?, cpu_time(sleep_pid)?);
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(a.idle_seconds));
        let window = start.elapsed();
        let agent_cpu = cpu_time(agent_pid)? - agent_cpu0;
        let sleep_cpu = cpu_time(sleep_pid)? - sleep_cpu0;
        if !connected(metrics_addr) {
            anyhow::bail!("the agent lost its connection during the idle window; see its log");
        }
        let agent_memory = proc_stats::memory(&proc_stats::status_path(agent_pid))?;
        let sleep_memory = proc_stats::memory(&proc_stats::status_path(sleep_pid))?;
        Ok(Measured {
            agent_rss_bytes: agent_memory.rss_bytes,
            agent_peak_rss_bytes: agent_memory.peak_rss_bytes,
            sleep_rss_bytes: sleep_memory.rss_bytes,
            window,
            agent_cpu,
            sleep_cpu,
        })
    });
    drop(agent);
    drop(sleep);
    rt.block_on(running.shutdown());
    result
}

/// A child killed (SIGKILL) and reaped when dropped, so an error never leaves it running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls the agent's own `/metrics` until it says it is connected to the coordinator.
fn wait_connected(agent: &mut Child, metrics: SocketAddr, log: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    while !connected(metrics) {
        if let Some(status) = agent.try_wait()? {
            anyhow::bail!(
                "the agent exited ({status}) before connecting: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if start.elapsed() > CONNECT_TIMEOUT {
            anyhow::bail!(
                "the agent did not connect within {CONNECT_TIMEOUT:?}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn connected(metrics: SocketAddr) -> bool {
    let get = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&metrics, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    };
    get().is_ok_and(|t| {
        t.lines()
            .any(|l| l == "proofrack_agent_coordinator_connected 1")
    })
}
