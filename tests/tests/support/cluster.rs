//! A coordinator in-process on loopback with its PKI, and client helpers.

use super::wait::{poll_until, within};
use super::{TempDir, STEP_TIMEOUT};
use proofrack_certs::{CertsDir, LocalPki, LocalPkiOptions};
use proofrack_common::client::CoordinatorClient;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    AgentRow, AgentsView, CircuitRow, CircuitsView, ClientRequest, ClientResponse, LedgerView,
    OperatorLedgerRow, SubmitRequest, TaskStatusView,
};
use proofrack_common::tls::TlsMaterial;
use proofrack_common::{Clock, OperatorId, StakeUnits, SystemClock, TaskId};
use proofrack_coordinator::{
    start_server, CoordinatorConfig, OperatorStake, Policy, RunningServer, ServerSettings, TlsPaths,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The host the coordinator's certificate names and clients dial.
pub const COORDINATOR_HOST: &str = "127.0.0.1";
/// Deadline of test tasks: far above anything a small circuit needs, so only the behaviour
/// under test decides where a task goes.
pub const TASK_DEADLINE_MS: u64 = 120_000;

/// What to start.
pub struct ClusterSpec {
    pub policy: Policy,
    pub operators: Vec<(&'static str, u128)>,
    pub circuits: Vec<&'static str>,
    pub telemetry_interval_ms: u64,
    pub limits: proofrack_coordinator::Limits,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            policy: test_policy(),
            operators: vec![("op-a", 100), ("op-b", 100)],
            circuits: vec!["mimc-4", "mimc-6", "mimc-8"],
            telemetry_interval_ms: 500,
            limits: proofrack_coordinator::Limits::default(),
        }
    }
}

/// The default policy with room for a slow, shared test machine: offers stay open long
/// enough for a test to answer them, and the safety margin is wide enough that no agent
/// misses a due time on a loaded box (so every slash in a test is the one it provokes).
pub fn test_policy() -> Policy {
    Policy {
        offer_timeout_ms: 20_000,
        deadline_margin_ms: 20_000,
        decline_backoff_ms: 1_000,
        ..Policy::default()
    }
}

/// A CA under `dir/certs` and the coordinator's certificate for [`COORDINATOR_HOST`].
pub fn init_pki(dir: &Path) -> LocalPki {
    LocalPki::bootstrap(
        CertsDir::new(dir.join("certs")),
        COORDINATOR_HOST,
        &LocalPkiOptions::default(),
        SystemClock.now(),
    )
    .expect("a PKI in the test's directory")
}

/// TLS material for `identity` from `pki`, issuing its certificate on first use.
pub fn material_from(pki: &LocalPki, identity: &Identity) -> TlsMaterial {
    pki.material(identity, SystemClock.now())
        .unwrap_or_else(|e| panic!("TLS material of {identity}: {e}"))
}

/// A running coordinator with its certificates.
pub struct Cluster {
    pub dir: TempDir,
    pub pki: LocalPki,
    /// The PKI's directory (`pki.dir()`), for tests that make certificates of their own.
    pub certs: CertsDir,
    pub addr: SocketAddr,
    /// The coordinator's data directory: its state and its proving keys.
    pub data_dir: PathBuf,
    server: Option<RunningServer>,
}

impl Cluster {
    pub async fn start(name: &str, spec: ClusterSpec) -> Cluster {
        super::init_logging();
        let dir = TempDir::new(name);
        let pki = init_pki(dir.path());
        let certs = pki.dir().clone();
        let config = CoordinatorConfig {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            tls: TlsPaths {
                ca_cert: certs.ca_cert_path(),
                cert: certs.cert_path(pki.coordinator()),
                key: certs.key_path(pki.coordinator()),
            },
            operators: spec
                .operators
                .iter()
                .map(|(op, stake)| OperatorStake {
                    id: OperatorId::new(*op).expect("operator id"),
                    delegated: StakeUnits(*stake),
                })
                .collect(),
            policy: spec.policy,
            data_dir: dir.path().join("coordinator"),
            circuits: spec.circuits.iter().map(|c| c.to_string()).collect(),
            telemetry_interval_ms: spec.telemetry_interval_ms,
            limits: spec.limits,
            ..CoordinatorConfig::default()
        };
        let settings = ServerSettings::from_config(&config)
            .await
            .expect("the test coordinator's settings and proving keys");
        let server = start_server(settings).await.expect("coordinator starts");
        Cluster {
            dir,
            pki,
            certs,
            addr: server.local_addr,
            data_dir: config.data_dir,
            server: Some(server),
        }
    }

    /// TLS material for `identity`, issuing its certificate on first use.
    pub fn material(&self, identity: &Identity) -> TlsMaterial {
        material_from(&self.pki, identity)
    }

    /// Where the coordinator keeps proving keys and circom registrations.
    #[allow(dead_code)] // not every test binary uses it
    pub fn keys_dir(&self) -> PathBuf {
        self.data_dir.join(proofrack_coordinator::KEYS_DIR)
    }

    /// The running coordinator's shared state (to attach a stake source to it, or check views
    /// against its core).
    #[allow(dead_code)] // not every test binary uses it
    pub fn shared(&self) -> Arc<proofrack_coordinator::Shared> {
        self.server
            .as_ref()
            .expect("coordinator running")
            .shared
            .clone()
    }

    /// A connected client with its own certificate.
    pub async fn client(&self, name: &str) -> Client {
        self.connect_as(&Identity::client(name).expect("client identity"))
            .await
    }

    /// A client connection acting as `id` (a requester, an operator admin or a deployment
    /// admin), its certificate issued on first use.
    pub async fn connect_as(&self, id: &Identity) -> Client {
        let material = self.material(id);
        let inner = within(
            STEP_TIMEOUT,
            "client connects",
            CoordinatorClient::connect(self.addr, COORDINATOR_HOST, &material),
        )
        .await
        .expect("client connects");
        Client {
            inner: Arc::new(inner),
            next_request: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Stops the coordinator (closes every connection).
    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// A client connection with typed helpers; every request has a timeout.
#[derive(Clone)]
pub struct Client {
    pub inner: Arc<CoordinatorClient>,
    next_request: Arc<AtomicU64>,
}

impl Client {
    pub async fn request(&self, req: ClientRequest) -> ClientResponse {
        let what = format!("reply to {req:?}");
        within(STEP_TIMEOUT, &what, self.inner.request(req))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Submits and returns the reply as is (for tests of refusals).
    pub async fn submit_raw(
        &self,
        circuit: &str,
        inputs: &str,
        collateral: u128,
        deadline_ms: u64,
    ) -> ClientResponse {
        self.request(ClientRequest::Submit(SubmitRequest {
            circuit: circuit.to_string(),
            inputs: inputs.as_bytes().to_vec(),
            collateral: StakeUnits(collateral),
            deadline_ms,
            request_id: self.next_request.fetch_add(1, Ordering::Relaxed),
        }))
        .await
    }

    /// Submits `{"x": x}` for `circuit` and expects it to be accepted.
    pub async fn submit(&self, circuit: &str, x: u64, collateral: u128) -> TaskId {
        match self
            .submit_raw(
                circuit,
                &format!(r#"{{"x":"{x}"}}"#),
                collateral,
                TASK_DEADLINE_MS,
            )
            .await
        {
            ClientResponse::Submitted { task } => task,
            other => panic!("submission of {circuit} (collateral {collateral}) refused: {other:?}"),
        }
    }

    pub async fn status(&self, task: TaskId) -> TaskStatusView {
        match self.request(ClientRequest::Status { task }).await {
            ClientResponse::Status(v) => v,
            other => panic!("status of {task}: {other:?}"),
        }
    }

    pub async fn ledger(&self) -> LedgerView {
        match self.request(ClientRequest::Ledger).await {
            ClientResponse::Ledger(v) => v,
            other => panic!("ledger: {other:?}"),
        }
    }

    pub async fn operator(&self, operator: &str) -> OperatorLedgerRow {
        let ledger = self.ledger().await;
        ledger
            .operators
            .into_iter()
            .find(|r| r.operator.as_str() == operator)
            .unwrap_or_else(|| panic!("operator {operator} is not in the ledger"))
    }

    pub async fn agents(&self) -> AgentsView {
        match self.request(ClientRequest::Agents).await {
            ClientResponse::Agents(v) => v,
            other => panic!("agents: {other:?}"),
        }
    }

    pub async fn circuits(&self) -> CircuitsView {
        match self.request(ClientRequest::Circuits).await {
            ClientResponse::Circuits(v) => v,
            other => panic!("circuits: {other:?}"),
        }
    }

    pub async fn circuit(&self, name: &str) -> CircuitRow {
        self.circuits()
            .await
            .circuits
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("circuit {name} is not registered"))
    }

    /// The agents-table row of `operator/name`, if the coordinator knows it.
    pub async fn agent_row(&self, operator: &str, name: &str) -> Option<AgentRow> {
        self.agents()
            .await
            .rows
            .into_iter()
            .find(|r| r.agent.operator.as_str() == operator && r.agent.name.as_str() == name)
    }

    /// Waits until `operator/name` is connected and has reported telemetry, so admission
    /// can consider it. (No event tells a client this: the agents table is polled.)
    pub async fn wait_agent_ready(&self, operator: &str, name: &str) -> AgentRow {
        poll_until(
            STEP_TIMEOUT,
            &format!("agent {operator}/{name} connected with telemetry"),
            || async {
                self.agent_row(operator, name)
                    .await
                    .filter(|r| r.connected && r.telemetry_age_ms.is_some())
            },
        )
        .await
    }

    /// Waits until the coordinator shows `operator/name` disconnected (or forgotten).
    pub async fn wait_agent_gone(&self, operator: &str, name: &str) {
        poll_until(
            STEP_TIMEOUT,
            &format!("agent {operator}/{name} disconnected"),
            || async {
                match self.agent_row(operator, name).await {
                    Some(r) if r.connected => None,
                    _ => Some(()),
                }
            },
        )
        .await
    }
}
