//! State shared by every connection: the core behind its mutex, the agents' outboxes, task
//! results, and who is connected with which certificate.

use crate::admission::AgentId;
use crate::registry::CircuitRegistry;
use crate::store::{ExtraWrite, Store, StoredProof};
use crate::tasks::{CoordinatorCore, Effect};
use proofrack_common::identity::{PeerCertInfo, TrustDomain};
use proofrack_common::metrics::DurationHistogram;
use proofrack_common::protocol::{CoordinatorToAgent, ProtocolError, TaskOffer};
use proofrack_common::revocation::RevocationHandle;
use proofrack_common::{Clock, TaskId, UnixMillis};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, mpsc, watch, Notify};

/// Messages queued for one agent's control stream. An agent that does not read them falls
/// behind; past this many its offers are dropped and simply expire in the core (no stake is
/// ever bound without the agent's own accept).
pub const AGENT_OUTBOX_CAPACITY: usize = 256;
/// Task-changed notifications buffered for watching clients; a watcher that lags re-reads
/// the task's status, so nothing is lost but intermediate states.
pub const TASK_EVENTS_CAPACITY: usize = 4096;
/// QUIC application close code for protocol refusals (the reason text says which).
pub const CLOSE_PROTOCOL_ERROR: u32 = proofrack_common::tls::close_code::PROTOCOL_ERROR;
/// Close code for a revoked certificate.
pub const CLOSE_REVOKED: u32 = proofrack_common::tls::close_code::REVOKED;
/// The close reason sent with [`CLOSE_REVOKED`]; the agent recognises the code and says what
/// to do.
pub const REVOKED_REASON: &[u8] =
    b"certificate revoked: this certificate is on the deployment's revocation list and will not be let back in; install a renewed certificate and key";
/// Close code for a connection replaced by a newer one of the same agent.
pub const CLOSE_REPLACED: u32 = proofrack_common::tls::close_code::REPLACED;

/// A verified proof, kept for clients (and in the store).
pub type ProofResult = StoredProof;

struct AgentLink {
    outbox: mpsc::Sender<CoordinatorToAgent>,
    conn_id: u64,
}

struct TrackedConnection {
    conn: quinn::Connection,
    serial_hex: String,
    identity: String,
}

pub struct Shared {
    core: Mutex<CoordinatorCore>,
    store: Store,
    registry: CircuitRegistry,
    clock: Arc<dyn Clock>,
    trust_domain: TrustDomain,
    revocation: RevocationHandle,
    telemetry_interval_ms: u64,
    agents: Mutex<HashMap<AgentId, AgentLink>>,
    results: Mutex<HashMap<TaskId, ProofResult>>,
    connections: Mutex<HashMap<u64, TrackedConnection>>,
    next_conn: AtomicU64,
    task_events: broadcast::Sender<TaskId>,
    /// Woken after every event, since the core's next timeout may have moved.
    timer_wake: Notify,
    /// Sees every effect under the core's lock (the chain stake source records slashes here,
    /// before any later event can reach the ledger).
    stake_hook: std::sync::OnceLock<StakeHook>,
    /// How long proof verification took, for the metrics endpoint.
    verification_time: Mutex<DurationHistogram>,
    /// Stake authority, refusal and duplicate counters (`trust.rs`).
    trust: super::trust::TrustState,
    /// The `[limits]` in force and what they count.
    limits: super::limits::ServerLimits,
}

use crate::handle::StakeHook;

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        core: CoordinatorCore,
        store: Store,
        results: HashMap<TaskId, ProofResult>,
        registry: CircuitRegistry,
        clock: Arc<dyn Clock>,
        trust_domain: TrustDomain,
        revocation: RevocationHandle,
        telemetry_interval_ms: u64,
        limits: super::limits::ServerLimits,
    ) -> Shared {
        Shared {
            core: Mutex::new(core),
            store,
            registry,
            clock,
            trust_domain,
            revocation,
            telemetry_interval_ms,
            agents: Mutex::new(HashMap::new()),
            results: Mutex::new(results),
            connections: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            task_events: broadcast::channel(TASK_EVENTS_CAPACITY).0,
            timer_wake: Notify::new(),
            stake_hook: std::sync::OnceLock::new(),
            verification_time: Mutex::new(DurationHistogram::default()),
            trust: super::trust::TrustState::default(),
            limits,
        }
    }

    /// Stake authority and the trust counters.
    pub fn trust(&self) -> &super::trust::TrustState {
        &self.trust
    }

    pub(super) fn stake_authority(&self) -> crate::tasks::authz::StakeAuthority {
        self.trust.stake_authority()
    }

    pub(super) fn count_refusal(&self, action: &'static str) {
        self.trust.count_refusal(action)
    }

    /// The `[limits]` in force, their counters and gates.
    pub fn limits(&self) -> &super::limits::ServerLimits {
        &self.limits
    }

    /// Whether `agent` has a control stream attached now.
    pub(super) fn has_live_link(&self, agent: &AgentId) -> bool {
        self.agents
            .lock()
            .expect("agents map poisoned")
            .contains_key(agent)
    }

    pub fn now(&self) -> UnixMillis {
        self.clock.now()
    }

    pub fn registry(&self) -> &CircuitRegistry {
        &self.registry
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    pub fn telemetry_interval_ms(&self) -> u64 {
        self.telemetry_interval_ms
    }

    /// Runs one event against the core at the current time, commits what it changed, and
    /// only then dispatches its effects and returns its result: nobody hears of a change that
    /// a crash could still lose.
    pub async fn apply<T>(&self, event: impl FnOnce(&mut CoordinatorCore, UnixMillis) -> T) -> T {
        self.apply_with(Vec::new(), event).await
    }

    /// [`Shared::apply`], with `extra` bytes (proofs) committed in the same transaction.
    pub async fn apply_with<T>(
        &self,
        extra: Vec<ExtraWrite>,
        event: impl FnOnce(&mut CoordinatorCore, UnixMillis) -> T,
    ) -> T {
        let (out, effects, seq) = {
            let mut core = self.lock_core();
            let out = event(&mut core, self.clock.now());
            let mut effects = Vec::new();
            while let Some(e) = core.poll_effect() {
                effects.push(e);
            }
            if let Some(hook) = self.stake_hook.get() {
                effects.iter().for_each(hook);
            }
            let changes = core.take_changes();
            self.forget_results(&changes);
            // Submitted under the core's lock, so commits follow the order of events.
            let seq = self.store.submit(changes, extra);
            (out, effects, seq)
        };
        self.wait_durable(seq).await;
        for e in effects {
            self.dispatch(e);
        }
        self.timer_wake.notify_one();
        out
    }

    /// Installs the stake hook (see [`StakeHook`]); `false` if one is already installed.
    pub fn set_stake_hook(&self, hook: StakeHook) -> bool {
        self.stake_hook.set(hook).is_ok()
    }

    /// Reads the core (no events), for internal decisions.
    pub fn read<T>(&self, f: impl FnOnce(&CoordinatorCore, UnixMillis) -> T) -> T {
        let core = self.lock_core();
        f(&core, self.clock.now())
    }

    /// Reads the core for a client: the answer is returned once everything it may reflect
    /// is durable, so no client sees a state a crash could take back.
    pub async fn read_acknowledged<T>(
        &self,
        f: impl FnOnce(&CoordinatorCore, UnixMillis) -> T,
    ) -> T {
        let (out, seq) = {
            let core = self.lock_core();
            (f(&core, self.clock.now()), self.store.last_submitted())
        };
        self.wait_durable(seq).await;
        out
    }

    async fn wait_durable(&self, seq: u64) {
        if let Err(e) = self.store.durable(seq).await {
            // Nothing more may be acknowledged; the binary exits on `Store::failed`.
            panic!("{e}");
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lock_core(&self) -> MutexGuard<'_, CoordinatorCore> {
        // A panic while holding the lock is a broken invariant in the core; the process must
        // not go on serving from that state.
        self.core
            .lock()
            .expect("coordinator core poisoned by an earlier panic")
    }

    fn dispatch(&self, effect: Effect) {
        match effect {
            Effect::SendOffer(offer) => {
                let (agent, task) = (offer.agent.clone(), offer.task);
                if !self.send_to_agent(&agent, CoordinatorToAgent::Offer(wire_offer(offer))) {
                    tracing::warn!(%task, %agent, "offer not delivered (agent gone or not reading); it will expire");
                }
                let _ = self.task_events.send(task);
            }
            Effect::ResumeTask(offer) => {
                let (agent, task) = (offer.agent.clone(), offer.task);
                if !self.send_to_agent(&agent, CoordinatorToAgent::Resume(wire_offer(offer))) {
                    tracing::info!(%task, %agent, "resume not delivered; the grace period decides");
                }
            }
            Effect::CancelTask {
                agent,
                task,
                reason,
            } => {
                self.send_to_agent(&agent, CoordinatorToAgent::Cancelled { task, reason });
                let _ = self.task_events.send(task);
            }
            Effect::TaskUpdate { task, .. } => {
                let _ = self.task_events.send(task);
            }
            // Noted for the chain under the core's lock (see `apply`); nothing else to do.
            Effect::StakeSlashed { .. } => {}
        }
    }

    /// Tells an agent to stop (or not start) a task.
    pub(super) fn cancel_on_agent(&self, agent: &AgentId, task: TaskId, reason: String) {
        self.send_to_agent(agent, CoordinatorToAgent::Cancelled { task, reason });
    }

    fn send_to_agent(&self, agent: &AgentId, msg: CoordinatorToAgent) -> bool {
        let agents = self.agents.lock().expect("agents map poisoned");
        match agents.get(agent) {
            Some(link) => link.outbox.try_send(msg).is_ok(),
            None => false,
        }
    }

    /// Registers an agent's control stream; its offers go to the returned receiver.
    pub(super) fn attach_agent(
        &self,
        agent: &AgentId,
        conn_id: u64,
    ) -> mpsc::Receiver<CoordinatorToAgent> {
        let (tx, rx) = mpsc::channel(AGENT_OUTBOX_CAPACITY);
        self.agents.lock().expect("agents map poisoned").insert(
            agent.clone(),
            AgentLink {
                outbox: tx,
                conn_id,
            },
        );
        rx
    }

    /// Whether `conn_id` carries the agent's current control stream.
    pub(super) fn is_current_link(&self, agent: &AgentId, conn_id: u64) -> bool {
        let agents = self.agents.lock().expect("agents map poisoned");
        agents.get(agent).is_some_and(|l| l.conn_id == conn_id)
    }

    /// Forgets an agent's control stream, if it is still the one attached on `conn_id`.
    pub(super) fn detach_agent(&self, agent: &AgentId, conn_id: u64) -> bool {
        let mut agents = self.agents.lock().expect("agents map poisoned");
        match agents.get(agent) {
            Some(link) if link.conn_id == conn_id => {
                agents.remove(agent);
                true
            }
            _ => false,
        }
    }

    /// Closes and forgets the control link an agent already has, telling the core it left.
    pub(super) async fn drop_previous_link(&self, agent: &AgentId) {
        let old = self
            .agents
            .lock()
            .expect("agents map poisoned")
            .remove(agent);
        if let Some(old) = old {
            if let Some(c) = self
                .connections
                .lock()
                .expect("connections poisoned")
                .get(&old.conn_id)
            {
                c.conn.close(
                    CLOSE_REPLACED.into(),
                    b"replaced by a newer connection of this agent",
                );
            }
            tracing::info!(%agent, "agent reconnected; closing its previous connection");
            self.apply(|core, now| core.handle_agent_disconnected(now, agent))
                .await;
        }
    }

    pub(super) fn track_connection(&self, conn: &quinn::Connection, peer: &PeerCertInfo) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.connections
            .lock()
            .expect("connections poisoned")
            .insert(
                id,
                TrackedConnection {
                    conn: conn.clone(),
                    serial_hex: peer.serial_hex.clone(),
                    identity: peer.identity.to_string(),
                },
            );
        id
    }

    pub(super) fn untrack_connection(&self, id: u64) {
        self.connections
            .lock()
            .expect("connections poisoned")
            .remove(&id);
    }

    /// After the revocation list changed: closes every connection whose certificate is now
    /// revoked (new handshakes are already refused by the TLS verifier).
    pub(super) fn cut_revoked(&self, handle: &RevocationHandle) {
        let conns = self.connections.lock().expect("connections poisoned");
        for c in conns.values() {
            if handle.is_revoked(&c.serial_hex) {
                tracing::warn!(peer = %c.identity, serial = %c.serial_hex, "certificate revoked; closing its connection");
                c.conn.close(CLOSE_REVOKED.into(), REVOKED_REASON);
            }
        }
    }

    /// Agents with a control stream attached now.
    pub fn connected_agents(&self) -> usize {
        self.agents.lock().expect("agents map poisoned").len()
    }

    pub(super) fn observe_verification_ms(&self, ms: u64) {
        self.verification_time
            .lock()
            .expect("verification histogram poisoned")
            .observe_ms(ms);
    }

    /// Proof verification times so far.
    pub fn verification_time(&self) -> DurationHistogram {
        self.verification_time
            .lock()
            .expect("verification histogram poisoned")
            .clone()
    }

    pub fn is_revoked(&self, serial_hex: &str) -> bool {
        self.revocation.is_revoked(serial_hex)
    }

    /// Handshakes the TLS verifier refused for a revoked certificate since start.
    pub fn revoked_handshakes_refused(&self) -> u64 {
        self.revocation.refused_handshakes()
    }

    pub fn record_result(&self, task: TaskId, result: ProofResult) {
        self.results
            .lock()
            .expect("results poisoned")
            .insert(task, result);
    }

    /// Drops the results of tasks the core forgot (past retention), as the store does.
    fn forget_results(&self, changes: &crate::tasks::Changes) {
        let forgotten = changes.tasks.iter().filter(|(_, row)| row.is_none());
        let mut results = None;
        for (task, _) in forgotten {
            results
                .get_or_insert_with(|| self.results.lock().expect("results poisoned"))
                .remove(task);
        }
    }

    pub fn result(&self, task: TaskId) -> Option<ProofResult> {
        self.results
            .lock()
            .expect("results poisoned")
            .get(&task)
            .cloned()
    }

    pub fn subscribe_tasks(&self) -> broadcast::Receiver<TaskId> {
        self.task_events.subscribe()
    }

    /// Calls `handle_timeout` whenever the core's next timeout comes.
    pub(super) async fn run_timers(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let next = self.read(|core, _| core.poll_timeout());
            let sleep = match next {
                Some(at) => {
                    let now = self.now();
                    at.saturating_since(now)
                }
                None => std::time::Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {
                    if next.is_some_and(|at| self.now() >= at) {
                        self.apply(|core, now| core.handle_timeout(now)).await;
                    }
                }
                _ = self.timer_wake.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Closes `conn` with a protocol error whose text the peer reads as the close reason.
pub(super) fn refuse(conn: &quinn::Connection, err: &ProtocolError) {
    let text = err.to_string();
    let cut = &text.as_bytes()[..text.len().min(1000)];
    conn.close(CLOSE_PROTOCOL_ERROR.into(), cut);
}

fn wire_offer(offer: crate::tasks::Offer) -> TaskOffer {
    TaskOffer {
        task: offer.task,
        key: offer.key_id,
        circuit: offer.circuit,
        shape: offer.shape,
        inputs: offer.inputs.to_vec(),
        collateral: offer.collateral,
        deadline: offer.due_at,
        offer_expires: offer.offer_expires,
    }
}
