//! The coordinator in its own process, killed with SIGKILL at random moments while a client
//! submits a steady stream of tasks and real agents prove them.
//!
//! Before every kill the test reads the coordinator's views (reads reflect only durable
//! state). After every restart: every acknowledged submission is there under its request id, a
//! retried request gets the task it got first, every task seen bound is still bound or has
//! moved on (never back to the queue), every verified proof is the same proof, and each
//! operator's row is consistent (active ≤ delegated, active = collateral × bound tasks, nothing
//! slashed, nothing created). At the end every task is verified, task ids have no gaps or
//! extras, and all stake is free again.
//!
//! The kill moments come from a seed, printed; `PROOFRACK_CRASH_SEED=N` replays a run's moments
//! (the machine's timing still varies).

use crate::support::cluster::{init_pki, material_from, COORDINATOR_HOST, TASK_DEADLINE_MS};
use crate::support::process::{free_udp_port, ChildConfig, CoordinatorProcess};
use crate::support::real_agent::{cpu_prover, AgentTarget, RealAgent};
use crate::support::wait::within;
use crate::support::{TempDir, STEP_TIMEOUT, TASK_TIMEOUT};
use proofrack_agent::{BackoffLimits, ConnectionSettings};
use proofrack_common::client::CoordinatorClient;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    ClientRequest, ClientResponse, LedgerView, ProtocolError, SubmitRequest, TaskState,
    TaskStatusView,
};
use proofrack_common::{StakeUnits, TaskId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// At least 20 kills in one run, as the durability promise is tested against.
const KILLS: u32 = 24;
/// Longest time the coordinator serves between two kills; each gap is uniform in
/// `[0, MAX_SERVING_MS]`, so some kills land during start-up catch-up and some mid-proof.
const MAX_SERVING_MS: u64 = 1_500;
/// The load: one submission per interval from one client, a few times what the agents
/// prove, so tasks are queued, offered, bound and delivered at every kill.
const SUBMIT_EVERY: Duration = Duration::from_millis(40);
const OPERATORS: [(&str, u128); 2] = [("op-a", 1_000), ("op-b", 1_000)];
const AGENTS: [(&str, &str); 4] = [
    ("op-a", "a1"),
    ("op-a", "a2"),
    ("op-b", "b1"),
    ("op-b", "b2"),
];
const COLLATERAL: u128 = 10;
const CIRCUIT: &str = "mimc-4";
/// Concurrent status requests while reading every task (a few thousand per snapshot).
const STATUS_STREAMS: usize = 16;
/// Acknowledged retries checked after each restart.
const RETRIES_CHECKED: usize = 3;
const SEED_ENV: &str = "PROOFRACK_CRASH_SEED";

/// Not a test of its own: the coordinator process the crash test starts and kills.
#[test]
#[ignore = "the crash test's coordinator process; the crash test starts it"]
fn coordinator_child_process() {
    crate::support::process::run_child();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_24_times_under_load_loses_nothing_it_acknowledged() {
    crate::support::init_logging();
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de_u64);
    eprintln!("crash test seed {seed} (replay the kill moments with {SEED_ENV}={seed})");
    let mut rng = SplitMix64(seed);

    let dir = TempDir::new("crash");
    let pki = init_pki(dir.path());
    let config = ChildConfig {
        circuits: &[CIRCUIT],
        operators: &OPERATORS,
        policy: &[("decline_backoff_ms", 1_000)],
    }
    .write(dir.path(), pki.dir(), free_udp_port());
    let mut coordinator = CoordinatorProcess::start(&config).await;
    let (starts_tx, starts) = watch::channel(coordinator.starts);

    let prover = cpu_prover();
    let agents: Vec<RealAgent> = AGENTS
        .iter()
        .map(|(op, name)| {
            let identity = Identity::agent(op, name).expect("agent identity");
            let target = AgentTarget {
                coordinator: coordinator.addr,
                tls: material_from(&pki, &identity),
                identity_files: None,
                cache_dir: dir.path().join("agents"),
                connection: quick_reconnect(),
            };
            RealAgent::start_at(target, op, name, prover.clone())
        })
        .collect();

    let load_id = Identity::client("crash-load").expect("client identity");
    // Reads every task, whoever submitted it: a deployment admin.
    let check_id = Identity::admin("crash-check").expect("admin identity");
    let connect = |id: &Identity| FollowingClient {
        addr: coordinator.addr,
        material: material_from(&pki, id),
        starts: starts.clone(),
        conn: None,
    };
    let acked: Acked = Arc::default();
    let (stop_tx, stop) = watch::channel(false);
    let load = tokio::spawn(submit_steadily(connect(&load_id), acked.clone(), stop));
    let mut retry = connect(&load_id);
    let mut check = connect(&check_id);

    for kill in 1..=KILLS {
        let serving = Duration::from_millis(rng.below(MAX_SERVING_MS + 1));
        tokio::time::sleep(serving).await;
        let seen = snapshot(&mut check, &acked).await;
        let killed_at = std::time::Instant::now();
        coordinator.kill().await;
        coordinator.restart().await;
        let restart_ms = killed_at.elapsed().as_millis();
        starts_tx.send_replace(coordinator.starts);
        let after = snapshot(&mut check, &acked).await;
        compare(kill, &seen, &after);
        check_retries(&mut retry, &acked, &mut rng).await;
        eprintln!(
            "kill {kill}: after {} ms serving; back in {restart_ms} ms; {} tasks checked",
            serving.as_millis(),
            after.tasks.len()
        );
    }

    let _ = stop_tx.send(true);
    let submitted = within(STEP_TIMEOUT, "the load to stop", load)
        .await
        .expect("load task");
    let acked = acked.lock().expect("acked").clone();
    assert_eq!(
        acked.len() as u64,
        submitted,
        "every submission was acknowledged"
    );
    let last = wait_all_verified(&mut check, &acked).await;
    final_checks(&mut check, &acked, &last).await;
    eprintln!(
        "crash test: {KILLS} kills, {} tasks submitted, all verified once",
        acked.len()
    );
    for agent in agents {
        agent.stop().await;
    }
}

/// Request id → the task it created, as acknowledged to the load client.
type Acked = Arc<Mutex<BTreeMap<u64, TaskId>>>;

/// What the coordinator showed at one moment: the ledger and every acknowledged task.
struct Snapshot {
    ledger: LedgerView,
    tasks: BTreeMap<TaskId, TaskStatusView>,
}

/// Agents notice the restart by the coordinator's stateless reset; the backoff is short so
/// two dozen restarts in a minute do not push the rack to the production cap of 30 s.
fn quick_reconnect() -> ConnectionSettings {
    ConnectionSettings {
        backoff: BackoffLimits {
            base_ms: 50,
            cap_ms: 500,
            healthy_after_ms: 1_000,
        },
        ..ConnectionSettings::default()
    }
}

/// A client that follows the coordinator across restarts: a request that fails for want of a
/// connection waits for the next start and goes again, with the same request id.
struct FollowingClient {
    addr: SocketAddr,
    material: proofrack_common::tls::TlsMaterial,
    /// How many times the coordinator has started; bumped by the test after each restart.
    starts: watch::Receiver<u32>,
    /// The connection and the start it was made to.
    conn: Option<(u32, Arc<CoordinatorClient>)>,
}

impl FollowingClient {
    /// The current connection, made if there is none (waiting for the next start while the
    /// coordinator is down).
    async fn connected(&mut self) -> (u32, Arc<CoordinatorClient>) {
        loop {
            if let Some((start, conn)) = &self.conn {
                return (*start, conn.clone());
            }
            let start = *self.starts.borrow();
            match CoordinatorClient::connect(self.addr, COORDINATOR_HOST, &self.material).await {
                Ok(conn) => self.conn = Some((start, Arc::new(conn))),
                Err(e) => self.lost(start, e.to_string()).await,
            }
        }
    }

    /// The connection made to start `start` failed: wait for the coordinator's next start.
    async fn lost(&mut self, start: u32, error: String) {
        self.conn = None;
        let what = format!("the coordinator to start again after \"{error}\"");
        within(
            STEP_TIMEOUT,
            &what,
            self.starts.wait_for(|started| *started > start),
        )
        .await
        .expect("the test holds the sender");
    }

    async fn request(&mut self, req: ClientRequest) -> ClientResponse {
        loop {
            let (start, conn) = self.connected().await;
            match conn.request(req.clone()).await {
                Ok(reply) => return reply,
                Err(e) => self.lost(start, e.to_string()).await,
            }
        }
    }

    /// Status of every task, [`STATUS_STREAMS`] requests at a time; all again after a
    /// restart.
    async fn statuses(&mut self, tasks: &[TaskId]) -> Vec<(TaskId, ClientResponse)> {
        loop {
            let (start, conn) = self.connected().await;
            let mut streams = tokio::task::JoinSet::new();
            for chunk in tasks.chunks(tasks.len().div_ceil(STATUS_STREAMS).max(1)) {
                let (conn, chunk) = (conn.clone(), chunk.to_vec());
                streams.spawn(async move {
                    let mut out = Vec::with_capacity(chunk.len());
                    for task in chunk {
                        out.push((task, conn.request(ClientRequest::Status { task }).await?));
                    }
                    Ok::<_, proofrack_common::client::ClientError>(out)
                });
            }
            let mut all = Vec::with_capacity(tasks.len());
            let mut failed = None;
            while let Some(done) = streams.join_next().await {
                match done.expect("status stream task") {
                    Ok(part) => all.extend(part),
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            match failed {
                None => return all,
                Some(e) => self.lost(start, e).await,
            }
        }
    }

    async fn status(&mut self, task: TaskId) -> Option<TaskStatusView> {
        match self.request(ClientRequest::Status { task }).await {
            ClientResponse::Status(v) => Some(v),
            ClientResponse::Error(ProtocolError::UnknownTask { .. }) => None,
            other => panic!("status of {task}: {other:?}"),
        }
    }

    async fn ledger(&mut self) -> LedgerView {
        match self.request(ClientRequest::Ledger).await {
            ClientResponse::Ledger(v) => v,
            other => panic!("ledger: {other:?}"),
        }
    }
}

fn submission(request_id: u64) -> ClientRequest {
    ClientRequest::Submit(SubmitRequest {
        circuit: CIRCUIT.to_string(),
        inputs: format!(r#"{{"x":"{request_id}"}}"#).into_bytes(),
        collateral: StakeUnits(COLLATERAL),
        deadline_ms: TASK_DEADLINE_MS,
        request_id,
    })
}

/// Submits one task per [`SUBMIT_EVERY`] until told to stop; returns how many.
async fn submit_steadily(
    mut client: FollowingClient,
    acked: Acked,
    stop: watch::Receiver<bool>,
) -> u64 {
    let mut tick = tokio::time::interval(SUBMIT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut request_id = 0;
    while !*stop.borrow() {
        tick.tick().await;
        request_id += 1;
        match client.request(submission(request_id)).await {
            ClientResponse::Submitted { task } => {
                acked.lock().expect("acked").insert(request_id, task);
            }
            other => panic!("submission {request_id} refused: {other:?}"),
        }
    }
    request_id
}

async fn snapshot(client: &mut FollowingClient, acked: &Acked) -> Snapshot {
    let ids: Vec<(u64, TaskId)> = acked
        .lock()
        .expect("acked")
        .iter()
        .map(|(r, t)| (*r, *t))
        .collect();
    let ledger = client.ledger().await;
    check_ledger(&ledger);
    let request_of: BTreeMap<TaskId, u64> = ids.iter().map(|(r, t)| (*t, *r)).collect();
    let task_ids: Vec<TaskId> = request_of.keys().copied().collect();
    let mut tasks = BTreeMap::new();
    for (task, reply) in client.statuses(&task_ids).await {
        let request_id = request_of[&task];
        let view = match reply {
            ClientResponse::Status(v) => v,
            ClientResponse::Error(ProtocolError::UnknownTask { .. }) => {
                panic!("acknowledged {task} (request {request_id}) is unknown to the coordinator")
            }
            other => panic!("status of {task}: {other:?}"),
        };
        assert_eq!(
            view.request_id, request_id,
            "{task} belongs to another request"
        );
        if let TaskState::Failed { reason, .. } = &view.state {
            panic!("{task} failed: {reason}");
        }
        tasks.insert(task, view);
    }
    Snapshot { ledger, tasks }
}

/// Every operator's row on its own: nothing created, nothing slashed, active stake is the
/// collateral of exactly its bound tasks and never above what is delegated.
fn check_ledger(ledger: &LedgerView) {
    for (op, delegated) in OPERATORS {
        let row = ledger
            .operators
            .iter()
            .find(|r| r.operator.as_str() == op)
            .unwrap_or_else(|| panic!("operator {op} missing from the ledger"));
        assert_eq!(row.delegated, StakeUnits(delegated), "{row:?}");
        assert_eq!(row.slashed, StakeUnits::ZERO, "{row:?}");
        assert!(row.active <= row.delegated, "{row:?}");
        assert_eq!(
            row.active,
            StakeUnits(COLLATERAL * row.bound_tasks as u128),
            "active stake is not the collateral of the bound tasks: {row:?}"
        );
        assert_eq!(
            row.free,
            StakeUnits(delegated - row.active.0 - row.withdrawing.0),
            "{row:?}"
        );
    }
}

/// Binding: the collateral is held (proving, delivered, or looking for another agent of the
/// same operator).
fn is_bound(state: &TaskState) -> bool {
    matches!(
        state,
        TaskState::Proving { .. } | TaskState::Verifying { .. } | TaskState::Reassigning { .. }
    )
}

/// What was durable before the kill is there after it: bindings stay bound or finish, a
/// verified proof stays the same proof, and ledger totals only move forward.
fn compare(kill: u32, seen: &Snapshot, after: &Snapshot) {
    for (task, before) in &seen.tasks {
        let now = after
            .tasks
            .get(task)
            .unwrap_or_else(|| panic!("kill {kill}: {task} vanished"));
        match &before.state {
            TaskState::Verified { proof, agent, .. } => match &now.state {
                TaskState::Verified {
                    proof: p, agent: a, ..
                } => {
                    assert_eq!(
                        (p, a),
                        (proof, agent),
                        "kill {kill}: {task}'s verified proof changed"
                    );
                }
                other => panic!("kill {kill}: {task} was verified, now {}", other.name()),
            },
            s if is_bound(s) => assert!(
                is_bound(&now.state) || matches!(now.state, TaskState::Verified { .. }),
                "kill {kill}: {task} was {} (stake bound), now {} (binding lost)",
                s.name(),
                now.state.name()
            ),
            _ => {}
        }
        assert_eq!(now.collateral, before.collateral);
        assert_eq!(
            now.deadline, before.deadline,
            "kill {kill}: {task}'s deadline moved"
        );
    }
    for (row, was) in after.ledger.operators.iter().zip(&seen.ledger.operators) {
        assert_eq!(row.operator, was.operator);
        assert!(
            row.withdrawn >= was.withdrawn,
            "kill {kill}: {row:?} / {was:?}"
        );
    }
}

/// A request the load client already had acknowledged, sent again after a restart, gets the
/// same task and creates nothing.
async fn check_retries(client: &mut FollowingClient, acked: &Acked, rng: &mut SplitMix64) {
    let picked: Vec<(u64, TaskId)> = {
        let acked = acked.lock().expect("acked");
        if acked.is_empty() {
            return;
        }
        let all: Vec<_> = acked.iter().map(|(r, t)| (*r, *t)).collect();
        (0..RETRIES_CHECKED)
            .map(|_| all[rng.below(all.len() as u64) as usize])
            .collect()
    };
    for (request_id, task) in picked {
        match client.request(submission(request_id)).await {
            ClientResponse::Submitted { task: again } => assert_eq!(
                again, task,
                "request {request_id} retried after a restart made another task"
            ),
            other => panic!("retry of request {request_id}: {other:?}"),
        }
    }
}

async fn wait_all_verified(
    client: &mut FollowingClient,
    acked: &BTreeMap<u64, TaskId>,
) -> BTreeMap<TaskId, TaskStatusView> {
    let mut views = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + TASK_TIMEOUT;
    for task in acked.values() {
        loop {
            let view = client.status(*task).await.expect("acknowledged task known");
            match &view.state {
                TaskState::Verified { .. } => {
                    views.insert(*task, view);
                    break;
                }
                TaskState::Failed { reason, .. } => panic!("{task} failed: {reason}"),
                other if tokio::time::Instant::now() > deadline => {
                    panic!("{task} still {} after the load stopped", other.name())
                }
                // No event says "verified" to a status poll; a watch stream would be lost at
                // each kill anyway, and the kills are over.
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    views
}

async fn final_checks(
    client: &mut FollowingClient,
    acked: &BTreeMap<u64, TaskId>,
    verified: &BTreeMap<TaskId, TaskStatusView>,
) {
    // Task ids are handed out in order: the acknowledged ones are exactly the first N, so no
    // retry and no restart created a task nobody was told about.
    let ids: Vec<u64> = verified.keys().map(|t| t.0).collect();
    let first = ids[0];
    assert_eq!(
        ids,
        (first..first + ids.len() as u64).collect::<Vec<_>>(),
        "task ids have gaps"
    );
    assert!(
        client
            .status(TaskId(first + ids.len() as u64))
            .await
            .is_none(),
        "the coordinator holds a task that no acknowledged request created"
    );
    let mut distinct = std::collections::BTreeSet::new();
    for task in acked.values() {
        assert!(distinct.insert(*task), "two requests share {task}");
    }
    let ledger = client.ledger().await;
    check_ledger(&ledger);
    for row in &ledger.operators {
        assert_eq!(row.active, StakeUnits::ZERO, "{row:?}");
        assert_eq!(row.bound_tasks, 0, "{row:?}");
    }
}

/// A tiny seeded generator (SplitMix64): the kill moments replay from the printed seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
