//! Cross-checks between the tasks, the fleet and the ledger, asserted after every event. A
//! failure is a bug in the core, so it panics.

use super::model::TaskState;
use super::{CoordinatorCore, MAX_FINISHED_TASKS};
use crate::admission::{admit, AgentSnapshot, Outcome};
use crate::ledger::Binding;
use proofrack_common::UnixMillis;
use proofrack_common::{OperatorId, StakeUnits, TaskId};
use std::collections::{BTreeMap, BTreeSet};

impl CoordinatorCore {
    /// Panics if any invariant is broken:
    /// - the ledger's own invariants (see [`Ledger::assert_invariants`](crate::ledger::Ledger::assert_invariants));
    /// - a task has stake bound in the ledger iff it is proving, verifying, orphaned or
    ///   offered in a handover, bound once, from its agent's operator, for exactly its
    ///   collateral (a handover stays within that operator);
    /// - each operator's active stake is the sum of the collateral of its bound tasks;
    /// - each agent's assignments are exactly its offered and proving tasks;
    /// - unfinished tasks fit the queue capacity and finished ones the retention bound.
    pub fn assert_invariants(&self) {
        self.ledger.assert_invariants();
        self.index.assert_matches(&self.tasks);

        let mut bound_per_operator: BTreeMap<&OperatorId, StakeUnits> = BTreeMap::new();
        let mut expected_assignments: BTreeSet<(&crate::admission::AgentId, TaskId)> =
            BTreeSet::new();
        let mut bound_tasks = 0usize;
        let mut finished = 0usize;
        for task in self.tasks.values() {
            let binding = self.ledger.binding(task.id);
            match task.bound_placement() {
                Some(placement) => {
                    let expected = Binding {
                        operator: placement.agent.operator.clone(),
                        amount: task.spec.collateral,
                    };
                    assert_eq!(
                        binding,
                        Some(&expected),
                        "{} is {} but its stake binding is {binding:?}",
                        task.id,
                        task.state.name()
                    );
                    if let TaskState::Offered { placement: to, .. } = &task.state {
                        assert_eq!(
                            to.agent.operator, placement.agent.operator,
                            "{} handed over across operators",
                            task.id
                        );
                    }
                    bound_tasks += 1;
                    let sum = bound_per_operator
                        .entry(&placement.agent.operator)
                        .or_default();
                    *sum = sum
                        .checked_add(task.spec.collateral)
                        .expect("bound collateral fits in u128");
                }
                None => assert!(
                    binding.is_none(),
                    "{} is {} but has stake bound: {binding:?}",
                    task.id,
                    task.state.name()
                ),
            }
            match &task.state {
                TaskState::Offered { placement, .. } | TaskState::Proving { placement, .. } => {
                    expected_assignments.insert((&placement.agent, task.id));
                }
                TaskState::Verified { .. } | TaskState::Failed { .. } => finished += 1,
                TaskState::Queued | TaskState::Verifying { .. } | TaskState::Orphaned { .. } => {}
            }
        }
        assert_eq!(
            self.ledger.bindings().count(),
            bound_tasks,
            "the ledger has bindings for tasks that are not proving or verifying"
        );
        for (operator, account) in self.ledger.operators() {
            let bound = bound_per_operator
                .get(operator)
                .copied()
                .unwrap_or_default();
            assert_eq!(
                account.active(),
                bound,
                "{operator}: active stake != collateral of its bound tasks"
            );
        }

        let mut actual_assignments = BTreeSet::new();
        for (id, record) in self.fleet.iter() {
            assert_eq!(id, &record.id, "fleet key matches the record");
            assert!(
                record.connected || !record.assignments.is_empty(),
                "idle disconnected agent {id} kept"
            );
            assert_eq!(
                record.assignments_memory_bytes,
                AgentSnapshot::sum_memory(&record.assignments),
                "{id}: kept memory sum differs from its assignments"
            );
            for a in &record.assignments {
                assert!(
                    actual_assignments.insert((id, a.task)),
                    "{} assigned twice to {id}",
                    a.task
                );
            }
        }
        assert_eq!(
            actual_assignments, expected_assignments,
            "agents' assignments != offered and proving tasks"
        );

        assert_eq!(
            finished,
            self.finished.len(),
            "finished list out of step with task states"
        );
        assert!(
            self.finished.len() <= MAX_FINISHED_TASKS,
            "finished tasks over retention bound"
        );
        assert!(
            self.tasks.len() - finished <= self.policy.queue_capacity,
            "more unfinished tasks than the queue capacity"
        );
        assert_eq!(
            self.requests.len(),
            self.tasks.len(),
            "request index out of step with tasks"
        );
        self.commands.assert_consistent();
        for (agent, facts) in &self.agent_book.facts {
            if let Some(open) = &facts.breaker.open {
                assert!(
                    open.until >= self.agent_book.breakers_close_from,
                    "{agent}'s breaker closes at {} before the bound {}",
                    open.until,
                    self.agent_book.breakers_close_from
                );
            }
        }
    }

    /// Panics if a waiting task fits some agent at `now`: after every event each fit must
    /// have been offered. Costs a full admission pass, so tests call it, not the core (the
    /// core's narrow passes rely on this holding; see `PassScope`).
    pub fn assert_settled(&self, now: UnixMillis) {
        let offerable = self.offerable_stake();
        let fleet: Vec<AgentSnapshot<'_>> = self.fleet.values().map(|r| r.snapshot()).collect();
        for task in self.tasks.values().filter(|t| t.state == TaskState::Queued) {
            if let Outcome::Offer(p) =
                admit(&task.demand(), &fleet, &offerable, now, &self.policy).outcome
            {
                panic!("{} is waiting although {} fits it", task.id, p.agent);
            }
        }
    }
}
