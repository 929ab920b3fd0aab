//! Indexes over the tasks, so no event scans them all: the queue in admission order, when
//! each task next needs `expire` or the timer, the collateral promised per operator by
//! outstanding offers, and each client's load (unfinished tasks, and those in service) for
//! its share of the queue and fair admission.
//!
//! Derived state only, never stored. Every change to a task goes through `task_mut` (or
//! submission, forgetting, or the expiry of a decline backoff), which marks the task touched;
//! [`TaskIndex::refresh`] re-derives the entries of touched tasks. Readers that cannot refresh
//! (`&self`) fall back to a scan while anything is touched. `assert_invariants` checks the
//! index against a full re-derivation.

use super::model::{Task, TaskState};
use proofrack_common::{OperatorId, StakeUnits, TaskId, UnixMillis};
use std::collections::{BTreeMap, BTreeSet};

/// What the index holds for one task; all `None` for a finished or forgotten task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Queued: its deadline (admission takes waiting tasks by deadline, then id).
    queued: Option<UnixMillis>,
    /// The earliest instant at which `expire` has something to do for it.
    expire_at: Option<UnixMillis>,
    /// What `poll_timeout` reports for it.
    poll_at: Option<UnixMillis>,
    /// A plain (not handover) offer: the operator whose stake it promises, and how much.
    offered: Option<(OperatorId, StakeUnits)>,
    /// Orphaned: its due time (handovers are sought by due time, then id).
    orphaned: Option<UnixMillis>,
    /// Proving on an agent (whose loss would orphan it).
    proving: bool,
    /// Unfinished: its client, and whether it is in service (offered, proving, orphaned or
    /// being verified) rather than waiting.
    client: Option<(String, bool)>,
}

impl IndexEntry {
    pub(crate) fn of(task: &Task) -> IndexEntry {
        if task.state.is_finished() {
            return IndexEntry::default();
        }
        let declined = task.declined_until.values().copied().min();
        let (own, offered) = match &task.state {
            TaskState::Queued => (Some(task.spec.deadline), None),
            TaskState::Offered {
                placement,
                expires_at,
                handover_from,
            } => (
                Some(*expires_at),
                handover_from
                    .is_none()
                    .then(|| (placement.agent.operator.clone(), task.spec.collateral)),
            ),
            TaskState::Proving { placement, .. } | TaskState::Orphaned { placement, .. } => {
                (Some(placement.due_at), None)
            }
            TaskState::Verifying { .. } | TaskState::Verified { .. } | TaskState::Failed { .. } => {
                (None, None)
            }
        };
        let poll_at = match &task.state {
            TaskState::Queued => [declined, own].into_iter().flatten().min(),
            _ => own,
        };
        let orphaned = match &task.state {
            TaskState::Orphaned { placement, .. } => Some(placement.due_at),
            _ => None,
        };
        IndexEntry {
            client: Some((
                task.spec.client.clone(),
                !matches!(task.state, TaskState::Queued),
            )),
            proving: matches!(task.state, TaskState::Proving { .. }),
            orphaned,
            queued: matches!(task.state, TaskState::Queued).then_some(task.spec.deadline),
            expire_at: [declined, own].into_iter().flatten().min(),
            poll_at,
            offered,
        }
    }
}

/// One client's tasks in the core, for its share of the queue and fair admission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientLoad {
    /// Waiting, offered, proving, orphaned or being verified.
    pub(crate) unfinished: usize,
    /// Of those, the ones not waiting: what the client holds of the fleet now.
    pub(crate) in_service: usize,
}

/// The indexes. See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct TaskIndex {
    /// Tasks changed since the last refresh.
    touched: BTreeSet<TaskId>,
    entries: BTreeMap<TaskId, IndexEntry>,
    queued: BTreeSet<(UnixMillis, TaskId)>,
    orphaned: BTreeSet<(UnixMillis, TaskId)>,
    expire_at: BTreeSet<(UnixMillis, TaskId)>,
    poll_at: BTreeSet<(UnixMillis, TaskId)>,
    /// Collateral promised by plain offers, per operator (operators with none are absent).
    offered: BTreeMap<OperatorId, StakeUnits>,
    /// Tasks proving on an agent.
    proving: usize,
    /// Each client with unfinished tasks (clients with none are absent).
    clients: BTreeMap<String, ClientLoad>,
}

impl TaskIndex {
    pub(crate) fn touch(&mut self, id: TaskId) {
        self.touched.insert(id);
    }

    /// Whether every entry is up to date.
    pub(crate) fn is_fresh(&self) -> bool {
        self.touched.is_empty()
    }

    /// Re-derives the entries of every touched task from `tasks`.
    pub(crate) fn refresh(&mut self, tasks: &BTreeMap<TaskId, Task>) {
        for id in std::mem::take(&mut self.touched) {
            let new = tasks.get(&id).map(IndexEntry::of).unwrap_or_default();
            let old = self.entries.remove(&id).unwrap_or_default();
            if old == new {
                if new != IndexEntry::default() {
                    self.entries.insert(id, new);
                }
                continue;
            }
            self.unlink(id, &old);
            self.link(id, &new);
            if new != IndexEntry::default() {
                self.entries.insert(id, new);
            }
        }
    }

    fn unlink(&mut self, id: TaskId, e: &IndexEntry) {
        if let Some(d) = e.queued {
            self.queued.remove(&(d, id));
        }
        if let Some(d) = e.orphaned {
            self.orphaned.remove(&(d, id));
        }
        if let Some(at) = e.expire_at {
            self.expire_at.remove(&(at, id));
        }
        if let Some(at) = e.poll_at {
            self.poll_at.remove(&(at, id));
        }
        if e.proving {
            self.proving -= 1;
        }
        if let Some((client, in_service)) = &e.client {
            let load = self
                .clients
                .get_mut(client)
                .expect("an indexed task's client has a load");
            load.unfinished -= 1;
            load.in_service -= usize::from(*in_service);
            if load.unfinished == 0 {
                self.clients.remove(client);
            }
        }
        if let Some((operator, collateral)) = &e.offered {
            let sum = self
                .offered
                .get_mut(operator)
                .expect("an indexed offer's operator has a sum");
            *sum = sum
                .checked_sub(*collateral)
                .expect("an operator's promised sum covers each of its offers");
            if *sum == StakeUnits::ZERO {
                self.offered.remove(operator);
            }
        }
    }

    fn link(&mut self, id: TaskId, e: &IndexEntry) {
        if let Some(d) = e.queued {
            self.queued.insert((d, id));
        }
        if let Some(d) = e.orphaned {
            self.orphaned.insert((d, id));
        }
        if let Some(at) = e.expire_at {
            self.expire_at.insert((at, id));
        }
        if let Some(at) = e.poll_at {
            self.poll_at.insert((at, id));
        }
        if e.proving {
            self.proving += 1;
        }
        if let Some((client, in_service)) = &e.client {
            if !self.clients.contains_key(client) {
                self.clients.insert(client.clone(), ClientLoad::default());
            }
            let load = self.clients.get_mut(client).expect("inserted above");
            load.unfinished += 1;
            load.in_service += usize::from(*in_service);
        }
        if let Some((operator, collateral)) = &e.offered {
            let sum = self.offered.entry(operator.clone()).or_default();
            *sum = sum
                .checked_add(*collateral)
                .expect("promised collateral fits in u128");
        }
    }

    /// Queued tasks, by deadline then id. Only while fresh.
    pub(crate) fn queued(&self) -> impl Iterator<Item = TaskId> + '_ {
        debug_assert!(self.is_fresh(), "queue read from a stale index");
        self.queued.iter().map(|(_, id)| *id)
    }

    /// Orphaned tasks, by due time then id. Only while fresh.
    pub(crate) fn orphaned(&self) -> impl Iterator<Item = TaskId> + '_ {
        debug_assert!(self.is_fresh(), "orphans read from a stale index");
        self.orphaned.iter().map(|(_, id)| *id)
    }

    /// Tasks `expire` must look at by `now`, in id order. Only while fresh.
    pub(crate) fn due_for_expiry(&self, now: UnixMillis) -> Vec<TaskId> {
        debug_assert!(self.is_fresh(), "expiry read from a stale index");
        let mut due: Vec<TaskId> = self
            .expire_at
            .range(..=(now, TaskId(u64::MAX)))
            .map(|(_, id)| *id)
            .collect();
        due.sort_unstable();
        due
    }

    /// The earliest task timeout; `None` if the index is stale (the caller scans instead).
    pub(crate) fn next_poll(&self) -> Option<Option<UnixMillis>> {
        self.is_fresh()
            .then(|| self.poll_at.first().map(|(at, _)| *at))
    }

    /// Collateral promised per operator by plain offers; `None` if the index is stale.
    pub(crate) fn offered(&self) -> Option<&BTreeMap<OperatorId, StakeUnits>> {
        self.is_fresh().then_some(&self.offered)
    }

    /// A client's unfinished and in-service tasks. Only while fresh.
    pub(crate) fn client_load(&self, client: &str) -> ClientLoad {
        debug_assert!(self.is_fresh(), "client load read from a stale index");
        self.clients.get(client).copied().unwrap_or_default()
    }

    /// Clients with unfinished tasks. Only while fresh.
    pub(crate) fn client_loads(&self) -> &BTreeMap<String, ClientLoad> {
        debug_assert!(self.is_fresh(), "client loads read from a stale index");
        &self.clients
    }

    /// Whether any task is proving on an agent; `None` if the index is stale.
    pub(crate) fn any_proving(&self) -> Option<bool> {
        self.is_fresh().then_some(self.proving > 0)
    }

    /// Panics unless the index equals one derived afresh from `tasks`.
    pub(crate) fn assert_matches(&self, tasks: &BTreeMap<TaskId, Task>) {
        if !self.is_fresh() {
            return;
        }
        let mut fresh = TaskIndex {
            touched: tasks.keys().copied().collect(),
            ..TaskIndex::default()
        };
        fresh.refresh(tasks);
        assert_eq!(
            self.entries, fresh.entries,
            "task index entries out of step"
        );
        assert_eq!(self.queued, fresh.queued, "queued index out of step");
        assert_eq!(self.orphaned, fresh.orphaned, "orphan index out of step");
        assert_eq!(self.expire_at, fresh.expire_at, "expiry index out of step");
        assert_eq!(self.poll_at, fresh.poll_at, "timer index out of step");
        assert_eq!(
            self.offered, fresh.offered,
            "promised stake index out of step"
        );
        assert_eq!(self.proving, fresh.proving, "proving count out of step");
        assert_eq!(self.clients, fresh.clients, "client loads out of step");
    }
}
