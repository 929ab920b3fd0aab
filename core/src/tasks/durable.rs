//! What the durable store keeps of the core, and how the core is rebuilt from it.
//!
//! The core marks what each event changed ([`Dirty`]); the shell takes those rows with
//! [`CoordinatorCore::take_changes`] and commits them before it tells anyone what happened.
//! Stored: every task (state, placement, history), the ledger's accounts and counters, a
//! small meta row (task counter, pending withdrawals, drained agents), one row per
//! remembered operator-command reply (`commands.rs`), one row per known agent (its circuit
//! breaker) and the audit log's lines. Not stored, because it is rebuilt: stake bindings (the
//! bound tasks' collateral),
//! the fleet (agents reconnect; agents holding bound tasks come back as disconnected, with the
//! grace period starting at the restart), and offers (an offer outstanding at a crash lapses:
//! nothing was bound for it).

use super::admin::{AdminReply, PendingWithdrawal};
use super::agent_book::{AgentChanges, AgentFacts};
use super::audit::{AuditChanges, AuditEntry};
use super::commands::{CommandKey, StoredCommand};
use super::fleet::AgentRecord;
use super::history::TaskEvent;
use super::model::{Task, TaskState};
use super::CoordinatorCore;
use crate::admission::{AgentId, Assignment};
use crate::ledger::{Binding, Ledger, LedgerState};
use crate::policy::{ConfigError, Policy};
use proofrack_common::{TaskId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// Rows changed since the last [`CoordinatorCore::take_changes`].
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    pub(crate) tasks: BTreeSet<TaskId>,
    pub(crate) forgotten: BTreeSet<TaskId>,
    pub(crate) ledger: bool,
    pub(crate) meta: bool,
    /// Command replies remembered or forgotten.
    pub(crate) commands: BTreeSet<CommandKey>,
}

/// One task as stored (postcard of the core's task record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRow(pub Vec<u8>);

/// Everything but tasks and the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaState {
    pub next_task: u64,
    pub next_withdrawal: u64,
    pub withdrawals: Vec<(u64, PendingWithdrawal)>,
    pub drained: Vec<AgentId>,
    /// Where stores written before command replies had their own rows kept them (oldest
    /// first). Read once and moved to the rows (answered "at the restart"); written empty.
    pub admin_requests: Vec<((String, u64), AdminReply)>,
}

/// What one event (or several) changed: the shell writes it in one transaction.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// `None`: the task was forgotten (finished, past retention).
    pub tasks: Vec<(TaskId, Option<TaskRow>)>,
    pub ledger: Option<LedgerState>,
    pub meta: Option<MetaState>,
    /// Known agents' rows; `None`: forgotten.
    pub agents: AgentChanges,
    pub audit: AuditChanges,
    /// `None`: the reply was forgotten.
    pub commands: Vec<(CommandKey, Option<StoredCommand>)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
            && self.ledger.is_none()
            && self.meta.is_none()
            && self.agents.is_empty()
            && self.audit.is_empty()
            && self.commands.is_empty()
    }

    /// Folds a later change set into this one (later rows win), for group commits.
    pub fn absorb(&mut self, later: Changes) {
        let mut rows: BTreeMap<TaskId, Option<TaskRow>> = self.tasks.drain(..).collect();
        rows.extend(later.tasks);
        self.tasks = rows.into_iter().collect();
        if later.ledger.is_some() {
            self.ledger = later.ledger;
        }
        if later.meta.is_some() {
            self.meta = later.meta;
        }
        let mut agents: BTreeMap<AgentId, Option<AgentFacts>> = self.agents.drain(..).collect();
        agents.extend(later.agents);
        self.agents = agents.into_iter().collect();
        self.audit.absorb(later.audit);
        if !later.commands.is_empty() {
            let mut rows: BTreeMap<CommandKey, Option<StoredCommand>> =
                self.commands.drain(..).collect();
            rows.extend(later.commands);
            self.commands = rows.into_iter().collect();
        }
    }
}

/// Everything the store holds, read back at start.
#[derive(Clone, Debug, Default)]
pub struct DurableState {
    pub tasks: Vec<TaskRow>,
    pub ledger: LedgerState,
    pub meta: MetaState,
    pub agents: Vec<(AgentId, AgentFacts)>,
    pub audit: Vec<AuditEntry>,
    /// Remembered operator-command replies.
    pub commands: Vec<(CommandKey, StoredCommand)>,
}

/// Why a store could not be loaded. The coordinator refuses to start on any of these: serving
/// from a state that breaks the ledger's invariants could bind or release stake wrongly.
#[derive(Debug, Error)]
pub enum RestoreError {
    #[error("stored task row {index} does not decode ({detail}); the store is damaged or from an incompatible version")]
    BadTaskRow { index: usize, detail: String },
    #[error("stored {task} is at or above the stored task counter {next_task}; the store is inconsistent")]
    TaskCounter { task: TaskId, next_task: u64 },
    #[error("stored {task} is bound to {operator}, which the stored ledger does not know")]
    UnknownOperator {
        task: TaskId,
        operator: proofrack_common::OperatorId,
    },
    #[error("the store holds {unfinished} unfinished tasks but policy.queue_capacity is {capacity}; raise it to at least {unfinished}")]
    QueueCapacity { unfinished: usize, capacity: usize },
    #[error("two stored tasks carry the same (client, request id); the store is inconsistent")]
    DuplicateRequests,
    #[error("the stored ledger breaks an invariant: {0}")]
    Ledger(String),
    #[error(transparent)]
    Policy(#[from] ConfigError),
}

impl CoordinatorCore {
    /// The rows changed since the last call, to be committed before the effects of the same
    /// events are acted on.
    pub fn take_changes(&mut self) -> Changes {
        let dirty = std::mem::take(&mut self.dirty);
        let mut tasks: Vec<(TaskId, Option<TaskRow>)> = dirty
            .tasks
            .iter()
            .filter_map(|id| self.tasks.get(id).map(|t| (*id, Some(encode_task(t)))))
            .collect();
        tasks.extend(dirty.forgotten.iter().map(|id| (*id, None)));
        let commands = dirty
            .commands
            .into_iter()
            .map(|k| {
                let row = self.commands.stored(&k).cloned();
                (k, row)
            })
            .collect();
        Changes {
            tasks,
            ledger: dirty.ledger.then(|| self.ledger.state()),
            meta: dirty.meta.then(|| self.meta_state()),
            agents: self.agent_book.take_changes(),
            audit: self.audit.take_changes(),
            commands,
        }
    }

    /// Every row, as a change set: the first write to a store (and a rewrite after restore).
    pub fn full_changes(&mut self) -> Changes {
        self.dirty = Dirty::default();
        self.agent_book.take_changes();
        // Pruned lines must still be removed; the kept ones are written again (idempotent).
        let pruned = self.audit.take_changes().pruned;
        Changes {
            tasks: self
                .tasks
                .values()
                .map(|t| (t.id, Some(encode_task(t))))
                .collect(),
            ledger: Some(self.ledger.state()),
            meta: Some(self.meta_state()),
            agents: self
                .agent_book
                .all_rows()
                .into_iter()
                .map(|(a, f)| (a, Some(f)))
                .collect(),
            audit: AuditChanges {
                added: self.audit.all().cloned().collect(),
                pruned,
            },
            commands: self.command_rows(),
        }
    }

    fn command_rows<T: From<StoredCommand>>(&self) -> Vec<(CommandKey, T)> {
        self.commands
            .rows()
            .map(|(k, v)| (k.clone(), T::from(v.clone())))
            .collect()
    }

    /// Everything, as [`CoordinatorCore::restore`] takes it (for the first write to an empty
    /// store, and for tests).
    pub fn durable_state(&self) -> DurableState {
        DurableState {
            tasks: self.tasks.values().map(encode_task).collect(),
            ledger: self.ledger.state(),
            meta: self.meta_state(),
            agents: self.agent_book.all_rows(),
            audit: self.audit.all().cloned().collect(),
            commands: self.command_rows(),
        }
    }

    fn meta_state(&self) -> MetaState {
        MetaState {
            next_task: self.next_task,
            next_withdrawal: self.next_withdrawal,
            withdrawals: self
                .withdrawals
                .iter()
                .map(|(k, w)| (*k, w.clone()))
                .collect(),
            drained: self.drained.iter().cloned().collect(),
            admin_requests: Vec::new(),
        }
    }

    /// Rebuilds a core from the store at `now` (the restart), with the current `policy`.
    /// Offers outstanding at the crash lapse (nothing was bound for them); agents holding
    /// bound tasks are disconnected with the grace period starting now; the ledger's
    /// invariants are checked against the bound tasks before anything is served.
    pub fn restore(
        policy: Policy,
        state: DurableState,
        now: UnixMillis,
    ) -> Result<CoordinatorCore, RestoreError> {
        let mut core = CoordinatorCore::new(policy)?;
        let mut tasks = BTreeMap::new();
        for (index, row) in state.tasks.iter().enumerate() {
            let task: Task =
                postcard::from_bytes(&row.0).map_err(|e| RestoreError::BadTaskRow {
                    index,
                    detail: e.to_string(),
                })?;
            if task.id.0 >= state.meta.next_task {
                return Err(RestoreError::TaskCounter {
                    task: task.id,
                    next_task: state.meta.next_task,
                });
            }
            tasks.insert(task.id, task);
        }
        let mut bindings = BTreeMap::new();
        let mut fleet: BTreeMap<AgentId, AgentRecord> = BTreeMap::new();
        let mut finished: Vec<(UnixMillis, TaskId)> = Vec::new();
        for task in tasks.values_mut() {
            match std::mem::replace(&mut task.state, TaskState::Queued) {
                TaskState::Offered {
                    placement,
                    handover_from: None,
                    ..
                } => {
                    task.history.push(
                        now,
                        TaskEvent::Restarted {
                            note: format!("offer to {} lapsed; waiting again", placement.agent),
                        },
                    );
                    task.waiting_reason = "coordinator restarted; waiting for admission".into();
                    core.dirty.tasks.insert(task.id);
                }
                TaskState::Offered {
                    handover_from: Some(from),
                    placement,
                    ..
                } => {
                    task.history.push(
                        now,
                        TaskEvent::Restarted {
                            note: format!("handover offer to {} lapsed", placement.agent),
                        },
                    );
                    task.state = TaskState::Orphaned {
                        placement: from,
                        since: now,
                        why: "coordinator restarted during a handover".into(),
                    };
                    core.dirty.tasks.insert(task.id);
                }
                TaskState::Proving {
                    placement,
                    bound_at,
                } => {
                    let record = fleet
                        .entry(placement.agent.clone())
                        .or_insert_with(|| AgentRecord::disconnected(placement.agent.clone(), now));
                    record.assign(Assignment {
                        task: task.id,
                        memory_bytes: placement.memory_bytes,
                        predicted_done_at: placement.predicted_done_at,
                    });
                    task.state = TaskState::Proving {
                        placement,
                        bound_at,
                    };
                }
                other => task.state = other,
            }
            if let Some(p) = task.bound_placement() {
                if !state.ledger.accounts.contains_key(&p.agent.operator) {
                    return Err(RestoreError::UnknownOperator {
                        task: task.id,
                        operator: p.agent.operator.clone(),
                    });
                }
                bindings.insert(
                    task.id,
                    Binding {
                        operator: p.agent.operator.clone(),
                        amount: task.spec.collateral,
                    },
                );
            }
            match &task.state {
                TaskState::Verified { at, .. } | TaskState::Failed { at, .. } => {
                    finished.push((*at, task.id))
                }
                _ => {}
            }
        }
        core.ledger = Ledger::restore(state.ledger, bindings).map_err(RestoreError::Ledger)?;
        finished.sort_unstable();
        core.finished = finished.into_iter().map(|(_, id)| id).collect();
        core.requests = tasks
            .values()
            .map(|t| ((t.spec.client.clone(), t.spec.request_id), t.id))
            .collect();
        // Fair admission's order of last offers per client, from the histories (see
        // `fair.rs`): each client's latest offer, numbered in time order.
        let mut latest: BTreeMap<&str, (UnixMillis, TaskId)> = BTreeMap::new();
        for task in tasks.values().filter(|t| !t.state.is_finished()) {
            if let Some(at) = task.history.last_offered_at() {
                let last = latest
                    .entry(task.spec.client.as_str())
                    .or_insert((at, task.id));
                *last = (*last).max((at, task.id));
            }
        }
        let mut by_time: Vec<((UnixMillis, TaskId), &str)> =
            latest.into_iter().map(|(c, at)| (at, c)).collect();
        by_time.sort_unstable();
        for (_, client) in by_time {
            core.offers_made += 1;
            core.last_served
                .insert(client.to_string(), core.offers_made);
        }
        core.tasks = tasks;
        for id in core.tasks.keys() {
            core.index.touch(*id);
        }
        core.index.refresh(&core.tasks);
        core.fleet = fleet.into_iter().collect();
        core.agent_book = super::agent_book::AgentBook::restore(state.agents);
        for (agent, record) in core.fleet.iter_mut() {
            record.breaker_open_until = core
                .agent_book
                .get(agent)
                .and_then(|f| f.breaker.open_until(now));
        }
        core.audit = super::audit::AuditLog::restore(state.audit);
        core.next_task = state.meta.next_task.max(1);
        core.next_withdrawal = state.meta.next_withdrawal.max(1);
        core.withdrawals = state.meta.withdrawals.into_iter().collect();
        core.drained = state.meta.drained.into_iter().collect();
        // Legacy replies first (older), then the rows; past the bounds, the first `expire`
        // forgets the oldest (and deletes their rows).
        for (key, reply) in state.meta.admin_requests {
            core.commands.insert(key, StoredCommand { reply, at: now });
        }
        for (key, stored) in state.commands {
            core.commands.insert(key, stored);
        }
        let unfinished = core.tasks.len() - core.finished.len();
        if unfinished > core.policy.queue_capacity {
            return Err(RestoreError::QueueCapacity {
                unfinished,
                capacity: core.policy.queue_capacity,
            });
        }
        if core.requests.len() != core.tasks.len() {
            return Err(RestoreError::DuplicateRequests);
        }
        core.needs_full_pass = true;
        core.assert_invariants();
        tracing::info!(
            tasks = core.tasks.len(),
            unfinished = core.tasks.len() - core.finished.len(),
            operators = core.ledger.operators().count(),
            "coordinator state restored"
        );
        Ok(core)
    }
}

fn encode_task(task: &Task) -> TaskRow {
    TaskRow(postcard::to_allocvec(task).expect("a task always encodes"))
}
