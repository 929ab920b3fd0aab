//! The production agent (`proofrack_agent::run`) with a CPU prover and the test kit's
//! fixed calibration (calibrating takes seconds and would make admission's predictions depend
//! on how loaded the test machine is).

use super::cluster::{Cluster, COORDINATOR_HOST};
use super::wait::within;
use super::STEP_TIMEOUT;
use proofrack_agent::{
    AgentError, AgentSettings, ConnectionSettings, KeyCache, KeyCacheLimits, Prover,
    ProverBackendImpl,
};
use proofrack_common::identity::Identity;
use proofrack_common::testkit;
use proofrack_common::tls::TlsMaterial;
use proofrack_common::SystemClock;
use proofrack_kernels::cpu::CpuBackend;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One CPU prover, shared by the real agents of a test (they run on the same cores anyway).
pub fn cpu_prover() -> Arc<Prover> {
    Arc::new(Prover::new(ProverBackendImpl::Cpu(CpuBackend::new())))
}

/// Where and how a [`RealAgent`] connects.
pub struct AgentTarget {
    pub coordinator: SocketAddr,
    pub tls: TlsMaterial,
    /// Where `tls` came from, if the agent should re-read it before each attempt.
    pub identity_files: Option<proofrack_agent::IdentityFiles>,
    /// Parent of the agent's key cache directory.
    pub cache_dir: PathBuf,
    pub connection: ConnectionSettings,
}

/// A running production agent.
pub struct RealAgent {
    pub identity: Identity,
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<Result<(), AgentError>>,
}

impl RealAgent {
    /// Starts `operator/name` against the cluster's coordinator.
    pub fn start(cluster: &Cluster, operator: &str, name: &str, prover: Arc<Prover>) -> RealAgent {
        let identity = Identity::agent(operator, name).expect("agent identity");
        let target = AgentTarget {
            coordinator: cluster.addr,
            tls: cluster.material(&identity),
            identity_files: None,
            cache_dir: cluster.dir.path().join("agents"),
            connection: ConnectionSettings::default(),
        };
        RealAgent::start_at(target, operator, name, prover)
    }

    /// Starts `operator/name` dialling `target.coordinator` (a coordinator in another process,
    /// or a proxy in front of one).
    pub fn start_at(
        target: AgentTarget,
        operator: &str,
        name: &str,
        prover: Arc<Prover>,
    ) -> RealAgent {
        let identity = Identity::agent(operator, name).expect("agent identity");
        let cache_dir = target.cache_dir.join(format!("{operator}-{name}"));
        let key_cache = KeyCache::open(cache_dir, KeyCacheLimits::default()).expect("key cache");
        let settings = AgentSettings {
            coordinator: target.coordinator,
            server_name: COORDINATOR_HOST.to_string(),
            tls: target.tls,
            identity_files: target.identity_files,
            prover,
            calibration: testkit::cpu_calibration(),
            key_cache,
            max_concurrent_tasks: 1,
            clock: Arc::new(SystemClock),
            agent_build: "proofrack-agent (e2e test)".into(),
            metrics: proofrack_agent::AgentMetrics::new(
                format!("{operator}/{name}"),
                testkit::cpu_calibration(),
            ),
            connection: target.connection,
        };
        let (stop, mut stop_rx) = watch::channel(false);
        let join = tokio::spawn(proofrack_agent::run(settings, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }));
        RealAgent {
            identity,
            stop,
            join,
        }
    }

    /// Asks the agent to stop (it drains accepted tasks first) and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let what = format!("agent {} to stop", self.identity);
        let result = within(STEP_TIMEOUT + Duration::from_secs(10), &what, self.join).await;
        result.expect("agent task").expect("agent ended cleanly");
    }
}
