//! The task life cycle: the coordinator's pure core, in the quinn-proto style.
//!
//! [`CoordinatorCore`] holds the stake ledger, the fleet, the circuit registry and the tasks.
//! The shell (the QUIC server) calls `handle_*` with each event and the current time, then
//! drains [`CoordinatorCore::poll_effect`] and sleeps until [`CoordinatorCore::poll_timeout`]
//! to call [`CoordinatorCore::handle_timeout`]. Getters answer queries: the read models, in
//! `read/`, and a few small lookups kept beside the state they read (a breaker, a known agent,
//! a learned speed factor, the policy and the ledger).
//!
//! Life cycle: `Queued` → `Offered` (collateral promised: counted against the operator's free
//! stake for admission, so two outstanding offers never promise the same stake) → `Proving`
//! (accepted: the collateral is bound in the ledger) → `Verifying` (proof delivered; the shell
//! verifies it) → `Verified` (stake released) or, on an invalid proof or a missed due time,
//! slashed and back to `Queued` while the deadline has not passed, else `Failed`. A decline or
//! an unanswered offer frees the promise with no penalty and the task goes to the next fit.
//!
//! Every `handle_*` first applies timeouts due at `now`, so no event acts on an expired offer
//! or a missed due time, and ends by offering waiting tasks whatever stake or capacity freed.
//! After every event the core asserts its invariants: each bound task's collateral is in the
//! ledger exactly once, each operator's active stake is the sum of its bound tasks' collateral,
//! and each agent's assignments are exactly its offered and proving tasks.
//!
//! Architecture invariant: no I/O, no clock reads, no randomness.

mod admin;
mod agent_book;
mod audit;
pub mod authz;
mod breaker;
mod commands;
mod dispatch;
mod durable;
mod effect;
mod error;
mod fair;
mod fleet;
mod fleet_map;
mod handover;
mod history;
mod index;
mod invariants;
mod learned;
mod model;
mod offers;
mod outside_stake;
mod proofs;
mod read;
mod stats;
mod submit;
mod timers;

pub use admin::{AdminReply, PendingWithdrawal, MAX_ADMIN_REQUESTS};
pub use agent_book::{AgentChanges, AgentFacts, MAX_KNOWN_AGENTS, MAX_KNOWN_AGENTS_LISTED};
pub use audit::{AuditChanges, AuditEntry, MAX_AUDIT_ENTRIES};
pub use breaker::{BreakerState, OpenBreaker};
pub use commands::{CommandKey, StoredCommand};
pub use durable::{Changes, DurableState, MetaState, RestoreError, TaskRow};
pub use effect::{Effect, Offer, OfferReply, SlashReason};
pub use error::{
    AdminRejected, AgentRejected, CircuitRejected, DeliveryRejected, OfferReplyRejected,
    StakeEventRejected, SubmitRejected, TelemetryRejected,
};
pub use history::{HistoryEntry, TaskEvent, MAX_HISTORY_ENTRIES, MAX_VERDICTS_KEPT};
pub use learned::{
    apply_speed_factor, MAX_SPEED_FACTOR_PERMILLE, MIN_SPEED_FACTOR_PERMILLE,
    NEUTRAL_SPEED_FACTOR_PERMILLE,
};
pub use model::{TaskSpec, TaskStatus};
pub use read::{
    explain, AgentAccuracy, AgentRow, Decision, Failure, FailureCause, FleetAgent, MovingTask,
    OperatorRow, SlashRecord, TaskExplanation, TaskListEntry, TaskView, TASK_STATES,
};
pub use stats::{reason_label, AdmissionStats};

use crate::admission::AgentId;
use crate::ledger::Ledger;
use crate::policy::{ConfigError, Policy};
use model::Task;
use proofrack_common::telemetry::ProofShape;
use proofrack_common::{KeyId, TaskId, UnixMillis};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Most agents the core tracks (connected, or disconnected with tasks still bound); bounds
/// memory and the cost of an admission pass.
pub const MAX_AGENTS: usize = 4_096;
/// Most registered circuits; bounds the registry a misbehaving shell could grow.
pub const MAX_CIRCUITS: usize = 1_024;
/// Longest circuit name, in bytes; names appear in logs and messages.
pub const MAX_CIRCUIT_NAME_LEN: usize = 128;
/// Finished tasks kept for queries before the oldest are forgotten; bounds memory while
/// leaving clients time to fetch results.
pub const MAX_FINISHED_TASKS: usize = 4_096;
/// Effects not yet drained by the shell; more means the shell stopped polling (a bug).
pub const MAX_PENDING_EFFECTS: usize = 1 << 20;
/// A telemetry report re-runs admission for every waiting task against every agent at most
/// this often; in between it only tries the reporting agent. A full pass costs waiting tasks ×
/// agents evaluations (~44 ms for 1024 × 64 in a debug build), too much for every report of a
/// large fleet, while waiting clients' reasons stay at most this stale.
pub const FULL_PASS_MIN_INTERVAL_MS: u64 = 1_000;
/// Up to this many records (tasks, agents in the fleet and agents remembered), release
/// builds check every invariant after every event (debug builds, and so every test, always
/// do). Past it the full cross-check, which walks every task, binding, index entry and agent
/// (about 2 µs per task, under the core's lock), runs once per
/// `records × FULL_CHECK_EVENTS_PER_RECORD` events: each event pays a bounded share (about
/// 0.25 µs) instead of a walk over 100,000 tasks, and a broken invariant is still caught.
/// Agents count as records because an idle rack is mostly telemetry: 1,000 agents reporting
/// every second with no task would otherwise pay a walk over the whole fleet per report,
/// a cost that grows with the square of the fleet. The checks local to each change (a bind
/// within free stake, active ≤ delegated, a task in the state an event expects) run on every
/// event regardless.
pub const FULL_CHECK_MAX_RECORDS: usize = 256;
/// See [`FULL_CHECK_MAX_RECORDS`]. 8: with 100,000 tasks one full check (~200 ms under the
/// lock) per 800,000 events, about 1 % of the core's time; much more often and those pauses
/// show in the assignment latency's p99.
pub const FULL_CHECK_EVENTS_PER_RECORD: usize = 8;

/// A registered circuit: what tasks for it need to be offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circuit {
    pub key_id: KeyId,
    pub shape: ProofShape,
}

/// Admission's view of the whole fleet at `now`, as the fleet was at `fleet_version`.
#[derive(Debug)]
struct RankedCache {
    now: UnixMillis,
    fleet_version: u64,
    fleet: crate::admission::RankedFleet,
}

/// The coordinator's state machine. See the module documentation.
#[derive(Debug)]
pub struct CoordinatorCore {
    policy: Policy,
    ledger: Ledger,
    fleet: fleet_map::FleetMap,
    /// Admission's ranked view of the whole fleet, kept from one pass to the next while
    /// neither the time nor the fleet moved (see `dispatch.rs`).
    ranked: Option<RankedCache>,
    circuits: BTreeMap<String, Circuit>,
    tasks: BTreeMap<TaskId, Task>,
    /// Finished tasks, oldest first, for forgetting them past [`MAX_FINISHED_TASKS`].
    finished: VecDeque<TaskId>,
    /// (client, request id) → task, so a resubmitted request returns the same task.
    requests: BTreeMap<(String, u64), TaskId>,
    next_task: u64,
    effects: VecDeque<Effect>,
    /// Something freed stake or capacity (or requeued a task) since the last full admission
    /// pass; the next pass must try every waiting task against every agent.
    needs_full_pass: bool,
    last_full_pass: Option<UnixMillis>,
    /// Admission counters and assignment latency, for the metrics endpoint.
    stats: AdmissionStats,
    /// Each agent's learned correction of its calibrated speed.
    learned: learned::LearnedSpeeds,
    /// Agents their operators drained: no new tasks (kept across restarts and reconnects).
    drained: BTreeSet<AgentId>,
    /// Withdrawals requested through the coordinator, paid out at their `pays_at`.
    withdrawals: BTreeMap<u64, PendingWithdrawal>,
    next_withdrawal: u64,
    /// (client, request id) → the reply to an operator command, so a retry after a lost reply
    /// gets the same answer and changes nothing twice; bounded by [`MAX_ADMIN_REQUESTS`] and
    /// by `policy.request_retention_ms`.
    commands: commands::CommandLog,
    /// What changed since the shell last took the changes to the durable store.
    dirty: durable::Dirty,
    /// Set while the stake source cannot vouch for the ledger (a chain unreachable past its
    /// grace period): no new offers, with this reason; bound tasks go on.
    stake_frozen: Option<String>,
    /// The queue, timeouts and promised stake, kept up to date per changed task.
    index: index::TaskIndex,
    /// Each client with unfinished tasks: the sequence number of its last offer (fair
    /// admission's tie-break, see `fair.rs`); rebuilt in the same order from the tasks'
    /// histories at restore.
    last_served: BTreeMap<String, u64>,
    /// Offers made, numbering them for `last_served`.
    offers_made: u64,
    /// Events since the last full invariant check (see [`FULL_CHECK_MAX_RECORDS`]).
    events_since_full_check: usize,
    /// Every agent that ever connected, with its circuit breaker (durable).
    agent_book: agent_book::AgentBook,
    /// Administrators' actions, allowed and refused (durable, capped).
    audit: audit::AuditLog,
    /// No agent holding a proving task is lost before this (see `handover.rs`): the fleet is
    /// scanned for lost agents only once it has passed, not on every event.
    agent_loss_bound: UnixMillis,
}

/// Which admission pass an event calls for. Between passes no waiting task fits any agent (a
/// full pass offers every fit), and only events that free stake or capacity can change that,
/// except a telemetry report (only its agent can newly fit) and a submission (only the new
/// task can). Those two run the narrow passes; everything else runs a full one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PassScope {
    All,
    Agent(AgentId),
    Task(TaskId),
    /// Only what earlier changes (`needs_full_pass`) call for.
    OnlyIfNeeded,
}

impl CoordinatorCore {
    /// A core with an empty ledger, fleet and registry. The policy must be valid.
    pub fn new(policy: Policy) -> Result<Self, ConfigError> {
        policy.validate()?;
        Ok(CoordinatorCore {
            policy,
            ledger: Ledger::new(),
            fleet: fleet_map::FleetMap::default(),
            ranked: None,
            circuits: BTreeMap::new(),
            tasks: BTreeMap::new(),
            finished: VecDeque::new(),
            requests: BTreeMap::new(),
            next_task: 1,
            effects: VecDeque::new(),
            needs_full_pass: false,
            last_full_pass: None,
            stats: AdmissionStats::default(),
            learned: learned::LearnedSpeeds::default(),
            drained: BTreeSet::new(),
            withdrawals: BTreeMap::new(),
            next_withdrawal: 1,
            commands: commands::CommandLog::default(),
            dirty: durable::Dirty::default(),
            stake_frozen: None,
            index: index::TaskIndex::default(),
            last_served: BTreeMap::new(),
            offers_made: 0,
            events_since_full_check: 0,
            agent_book: agent_book::AgentBook::default(),
            audit: audit::AuditLog::restore(Vec::new()),
            // Unknown until the first scan.
            agent_loss_bound: UnixMillis(0),
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn circuit(&self, name: &str) -> Option<&Circuit> {
        self.circuits.get(name)
    }

    /// A task to change: marks it for the durable store. Every mutation of a task goes
    /// through here, so no change can miss the store.
    pub(crate) fn task_mut(&mut self, id: TaskId) -> &mut Task {
        self.dirty.tasks.insert(id);
        self.index.touch(id);
        self.tasks.get_mut(&id).expect("task exists")
    }

    /// The ledger to change: marks it for the durable store.
    pub(crate) fn ledger_mut(&mut self) -> &mut Ledger {
        self.dirty.ledger = true;
        &mut self.ledger
    }

    /// The next thing for the shell to do, oldest first. Drain it after every `handle_*`.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    fn emit(&mut self, effect: Effect) {
        assert!(
            self.effects.len() < MAX_PENDING_EFFECTS,
            "{MAX_PENDING_EFFECTS} effects pending: the shell is not draining poll_effect"
        );
        self.effects.push_back(effect);
    }

    /// Emits the task's current status to watching clients.
    fn emit_status(&mut self, task: TaskId) {
        let t = &self.tasks[&task];
        let effect = Effect::TaskUpdate {
            task,
            client: t.spec.client.clone(),
            request_id: t.spec.request_id,
            status: t.status(),
        };
        self.emit(effect);
    }

    /// Common tail of every event: offer waiting tasks, then check the invariants.
    fn settle(&mut self, now: UnixMillis) {
        self.settle_scoped(now, PassScope::All);
    }

    fn settle_scoped(&mut self, now: UnixMillis, scope: PassScope) {
        self.dispatch(now, scope);
        self.index.refresh(&self.tasks);
        self.events_since_full_check += 1;
        let records = self.tasks.len() + self.fleet.len() + self.agent_book.facts.len();
        let full = cfg!(debug_assertions)
            || records <= FULL_CHECK_MAX_RECORDS
            || self.events_since_full_check >= records * FULL_CHECK_EVENTS_PER_RECORD;
        if full {
            self.events_since_full_check = 0;
            self.assert_invariants();
        }
    }
}
