//! Offering waiting tasks: one admission pass over the queue, fair across clients and earliest
//! deadline first within each (see `fair.rs`), and the transitions that put a task back in
//! the queue or finish it.

use super::effect::Effect;
use super::history::TaskEvent;
use super::model::TaskState;
use super::{CoordinatorCore, PassScope, FULL_PASS_MIN_INTERVAL_MS, MAX_FINISHED_TASKS};
use crate::admission::{
    admit, AgentSnapshot, AgentVerdict, Assignment, Outcome, Placement, RankedFleet,
};
use proofrack_common::{OperatorId, StakeUnits, TaskId, UnixMillis};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Retention ends are handled on whole seconds: tasks that finished in the same second are
/// forgotten by one timer event, not one each (retention is hours; a second is nothing).
pub(crate) const RETENTION_TICK_MS: u64 = 1_000;

impl CoordinatorCore {
    /// Stake each operator may still promise: ledger free stake less the collateral of its
    /// outstanding offers. A withdrawal requested after an offer can make the promises exceed
    /// the free stake; then this is zero and the accept's bind fails cleanly.
    pub(crate) fn offerable_stake(&self) -> BTreeMap<OperatorId, StakeUnits> {
        let mut offerable: BTreeMap<OperatorId, StakeUnits> = self
            .ledger
            .operators()
            .map(|(op, account)| (op.clone(), account.free()))
            .collect();
        if self.stake_frozen.is_some() {
            offerable.values_mut().for_each(|s| *s = StakeUnits::ZERO);
        }
        for (operator, promised) in self.promised_collateral().iter() {
            if let Some(free) = offerable.get_mut(operator) {
                *free = free.saturating_sub(*promised);
            }
        }
        offerable
    }

    /// Collateral promised per operator by plain offers (not handovers, whose stake is
    /// bound): the task index's sums, or, mid-event while the index is stale (tests'
    /// `assert_settled`), the same sums by a scan of the tasks.
    pub(crate) fn promised_collateral(&self) -> Cow<'_, BTreeMap<OperatorId, StakeUnits>> {
        if let Some(kept) = self.index.offered() {
            return Cow::Borrowed(kept);
        }
        let mut promised: BTreeMap<OperatorId, StakeUnits> = BTreeMap::new();
        for task in self.tasks.values() {
            if let TaskState::Offered {
                placement,
                handover_from: None,
                ..
            } = &task.state
            {
                let sum = promised
                    .entry(placement.agent.operator.clone())
                    .or_default();
                *sum = sum
                    .checked_add(task.spec.collateral)
                    .unwrap_or(StakeUnits(u128::MAX));
            }
        }
        Cow::Owned(promised)
    }

    /// Tries waiting tasks against the fleet in fair order (the client holding the fewest
    /// tasks in service first; within a client earliest deadline first, ties by task id): all
    /// of them against every agent, or as narrowed by `scope` (see [`PassScope`]). Later tasks
    /// see the stake and capacity promised to earlier ones in the same pass.
    pub(crate) fn dispatch(&mut self, now: UnixMillis, scope: PassScope) {
        self.dispatch_orphans(now);
        let full_due = self
            .last_full_pass
            .is_none_or(|t| now.0.saturating_sub(t.0) >= FULL_PASS_MIN_INTERVAL_MS);
        let scope = match scope {
            _ if self.needs_full_pass => PassScope::All,
            PassScope::Agent(_) if full_due => PassScope::All,
            PassScope::OnlyIfNeeded => return,
            scope => scope,
        };
        if scope == PassScope::All {
            self.needs_full_pass = false;
            self.last_full_pass = Some(now);
        }
        self.index.refresh(&self.tasks);
        // Earliest deadline first, ties by task id (the index's order).
        let waiting: Vec<TaskId> = match &scope {
            PassScope::Task(id) => self
                .tasks
                .get(id)
                .filter(|t| t.state == TaskState::Queued)
                .map(|t| t.id)
                .into_iter()
                .collect(),
            _ => self.index.queued().collect(),
        };
        if waiting.is_empty() {
            return;
        }
        if let Some(reason) = &self.stake_frozen {
            let reason = format!("no new offers while the stake source is stale: {reason}");
            for id in waiting {
                let task = self.tasks.get_mut(&id).expect("waiting task exists");
                if task.waiting_reason != reason {
                    task.waiting_reason = reason.clone();
                    self.emit_status(id);
                }
            }
            return;
        }
        let mut offerable = self.offerable_stake();
        // The fleet ranked once for the whole pass; each offer moves only its agent.
        let mut ranked = self.ranked_fleet(now, &scope);
        self.offer_waiting(now, &scope, waiting, &mut offerable, &mut ranked);
        self.keep_ranked_fleet(now, &scope, ranked);
    }

    /// The offering part of [`CoordinatorCore::dispatch`]: each waiting task in fair order.
    fn offer_waiting(
        &mut self,
        now: UnixMillis,
        scope: &PassScope,
        waiting: Vec<TaskId>,
        offerable: &mut BTreeMap<OperatorId, StakeUnits>,
        ranked: &mut RankedFleet,
    ) {
        let loads = self.index.client_loads();
        if *scope == PassScope::All {
            // Clients with nothing left are forgotten (bounded by the clients with tasks).
            self.last_served.retain(|c, _| loads.contains_key(c));
        }
        let waiting_clients = loads
            .values()
            .filter(|l| l.unfinished > l.in_service)
            .count();
        if waiting_clients <= 1 {
            // One client waiting: fair order is its own earliest-deadline-first order.
            for id in waiting {
                self.try_offer(now, id, scope, offerable, ranked);
            }
            return;
        }
        let mut queue = super::fair::FairQueue::new(
            waiting.iter().map(|id| {
                let t = &self.tasks[id];
                (t.spec.deadline, *id, t.spec.client.as_str())
            }),
            loads,
            &self.last_served,
        );
        while let Some(id) = queue.next() {
            let offered = self.try_offer(now, id, scope, offerable, ranked);
            queue.served(offered.then_some(self.offers_made));
        }
    }

    /// The agents an admission pass over `scope` may offer to, ranked (see `RankedFleet`):
    /// the view kept from the last pass if neither the time nor the fleet moved since (a
    /// batch of submissions is one pass per task at one instant), else built afresh.
    fn ranked_fleet(&mut self, now: UnixMillis, scope: &PassScope) -> RankedFleet {
        if let PassScope::Agent(agent) = scope {
            let one = self.fleet.get(agent).map(|r| r.snapshot());
            return RankedFleet::build(one, now, &self.policy);
        }
        match self.ranked.take() {
            Some(kept) if kept.now == now && kept.fleet_version == self.fleet.version() => {
                kept.fleet
            }
            _ => RankedFleet::build(self.fleet.values().map(|r| r.snapshot()), now, &self.policy),
        }
    }

    /// Keeps a whole-fleet view for the next pass at the same instant; the offers of this
    /// pass moved its agents in it, so it matches the fleet as it is now.
    fn keep_ranked_fleet(&mut self, now: UnixMillis, scope: &PassScope, fleet: RankedFleet) {
        if !matches!(scope, PassScope::Agent(_)) {
            self.ranked = Some(super::RankedCache {
                now,
                fleet_version: self.fleet.version(),
                fleet,
            });
        }
    }

    /// The fleet as admission's full decision sees it (for a no-fit's explanation).
    fn fleet_snapshot(&self, scope: &PassScope) -> Vec<AgentSnapshot<'_>> {
        match scope {
            PassScope::Agent(agent) => self
                .fleet
                .get(agent)
                .map(|r| r.snapshot())
                .into_iter()
                .collect(),
            _ => self.fleet.values().map(|r| r.snapshot()).collect(),
        }
    }

    /// Tries one waiting task in an admission pass; whether it was offered.
    fn try_offer(
        &mut self,
        now: UnixMillis,
        id: TaskId,
        scope: &PassScope,
        offerable: &mut BTreeMap<OperatorId, StakeUnits>,
        ranked: &mut RankedFleet,
    ) -> bool {
        let task = &self.tasks[&id];
        let demand = task.demand();
        // The ranked walk looks only at the agents ahead of the best fit, and builds only the
        // verdicts the record keeps; a no-fit is explained by the full decision.
        let keep = super::MAX_VERDICTS_KEPT;
        let fleet = &self.fleet;
        let snapshot_of = |agent: &crate::admission::AgentId| {
            fleet
                .get(agent)
                .expect("a ranked agent is in the fleet")
                .snapshot()
        };
        let choice = ranked.choose(&demand, offerable, &self.policy, keep, snapshot_of);
        #[cfg(debug_assertions)]
        self.check_ranked_choice(&demand, scope, offerable, now, choice.as_ref());
        if let Some(choice) = choice {
            let free = offerable
                .get_mut(&choice.placement.agent.operator)
                .expect("admission offers only to operators with offerable stake");
            *free = free
                .checked_sub(self.tasks[&id].spec.collateral)
                .expect("admission offers only within offerable stake");
            let considered = (choice.agents_considered, choice.agents_rejected);
            let agent = choice.placement.agent.clone();
            self.offer_kept(now, id, choice.placement, choice.verdicts, considered, None);
            if let Some(record) = self.fleet.get(&agent) {
                ranked.refresh(&record.snapshot(), &self.policy);
            }
            return true;
        }
        // A narrow pass over one agent knows too little to explain a no-fit; the last
        // full pass's reason stands.
        if matches!(scope, PassScope::Agent(_)) {
            return false;
        }
        let fleet = self.fleet_snapshot(scope);
        let decision = admit(&demand, &fleet, offerable, now, &self.policy);
        match decision.outcome {
            Outcome::Offer(placement) => panic!(
                "admission's full decision offers {id} to {} where its fast path found no fit",
                placement.agent
            ),
            Outcome::NoFit(no_fit) => {
                // The reason's figures move with every pass; it is rewritten on the next
                // pass after a restart, so a new reason alone is not a change to store.
                let task = self.tasks.get_mut(&id).expect("waiting task exists");
                task.waiting_reason = no_fit.to_string();
                let changed = task
                    .history
                    .last_no_fit()
                    .is_none_or(|last| !last.same_kind(&no_fit));
                if changed {
                    self.stats.note_no_fit(&no_fit);
                    tracing::debug!(task = %id, reason = %no_fit, "no agent fits");
                    self.dirty.tasks.insert(id);
                    let task = self.tasks.get_mut(&id).expect("waiting task exists");
                    task.history.push(
                        now,
                        TaskEvent::NoFit {
                            reason: no_fit,
                            verdicts: super::history::keep_verdicts(decision.verdicts),
                        },
                    );
                    self.emit_status(id);
                }
            }
        }
        false
    }

    /// Offers a queued task to the agent admission chose, or an orphaned one (stake bound
    /// from `handover_from`'s operator) to another agent of that operator.
    pub(crate) fn offer(
        &mut self,
        now: UnixMillis,
        id: TaskId,
        placement: Placement,
        verdicts: Vec<AgentVerdict>,
        handover_from: Option<Placement>,
    ) {
        let considered = (
            verdicts.len(),
            verdicts.iter().filter(|v| v.fit.is_err()).count(),
        );
        let kept = super::history::keep_verdicts(verdicts);
        self.offer_kept(now, id, placement, kept, considered, handover_from);
    }

    /// [`CoordinatorCore::offer`] with the verdicts already sampled for the record, and
    /// (agents considered, agents rejected).
    pub(crate) fn offer_kept(
        &mut self,
        now: UnixMillis,
        id: TaskId,
        placement: Placement,
        kept: Vec<AgentVerdict>,
        (agents_considered, agents_rejected): (usize, usize),
        handover_from: Option<Placement>,
    ) {
        let expires_at =
            UnixMillis(now.0.saturating_add(self.policy.offer_timeout_ms)).min(placement.due_at);
        let record = self
            .fleet
            .get_mut(&placement.agent)
            .expect("admission offers only to agents in the fleet");
        record.assign(Assignment {
            task: id,
            memory_bytes: placement.memory_bytes,
            predicted_done_at: placement.predicted_done_at,
        });
        let queued = &self.tasks[&id];
        self.stats
            .note_offer(now, queued.submitted_at, queued.history.entries());
        if handover_from.is_none() {
            self.offers_made += 1;
            let client = &queued.spec.client;
            match self.last_served.get_mut(client) {
                Some(last) => *last = self.offers_made,
                None => {
                    self.last_served.insert(client.clone(), self.offers_made);
                }
            }
        }
        let task = self.task_mut(id);
        assert!(
            match &handover_from {
                None => task.state == TaskState::Queued,
                Some(_) => matches!(task.state, TaskState::Orphaned { .. }),
            },
            "only queued tasks are offered, and only orphaned ones handed over"
        );
        // Debug: at rack scale this is tens of thousands of lines a second (see submit.rs).
        tracing::debug!(task = %id, agent = %placement.agent, predicted_ms = placement.predicted_proving_ms, "offer");
        let offer = task.offer_to(&placement, expires_at);
        task.history.push(
            now,
            TaskEvent::Offered {
                placement: placement.clone(),
                expires_at,
                verdicts: kept,
                agents_considered,
                agents_rejected,
            },
        );
        task.state = TaskState::Offered {
            placement,
            expires_at,
            handover_from,
        };
        self.emit(Effect::SendOffer(offer));
        self.emit_status(id);
    }

    /// Takes back an outstanding offer (declined, expired, or the agent left) with no penalty.
    /// Declines and expiries keep the task from that agent for the decline backoff.
    pub(crate) fn withdraw_offer(&mut self, now: UnixMillis, id: TaskId, event: TaskEvent) {
        let task = self.task_mut(id);
        let TaskState::Offered {
            placement,
            handover_from,
            ..
        } = &task.state
        else {
            panic!("withdraw_offer on a {} task", task.state.name());
        };
        let agent = placement.agent.clone();
        let handover_from = handover_from.clone();
        let until = UnixMillis(now.0.saturating_add(self.policy.decline_backoff_ms));
        self.needs_full_pass = true;
        let task = self.tasks.get_mut(&id).expect("task exists");
        if matches!(
            event,
            TaskEvent::Declined { .. } | TaskEvent::OfferExpired { .. }
        ) {
            task.declined_until.insert(agent.clone(), until);
        }
        task.history.push(now, event);
        match handover_from {
            None => {
                task.state = TaskState::Queued;
                task.waiting_reason =
                    format!("offer to {agent} withdrawn; looking for another agent");
            }
            Some(lost) => {
                task.waiting_reason = format!(
                    "handover to {agent} withdrawn; looking for another agent of {}",
                    lost.agent.operator
                );
                task.state = TaskState::Orphaned {
                    placement: lost,
                    since: now,
                    why: format!("handover offer to {agent} withdrawn"),
                };
            }
        }
        self.unassign(&agent, id);
        self.emit_status(id);
    }

    /// After a slash: back to the queue if some agent could still make the deadline (on the
    /// fastest calibration known, margin included), else failed.
    pub(crate) fn requeue_or_fail(&mut self, now: UnixMillis, id: TaskId, why: String) {
        let task = &self.tasks[&id];
        let left_ms = task.spec.deadline.0.saturating_sub(now.0);
        let (needed_ms, _) = self.fastest_possible_ms(&task.shape);
        if left_ms >= needed_ms {
            self.needs_full_pass = true;
            let task = self.task_mut(id);
            task.state = TaskState::Queued;
            task.waiting_reason = format!("{why}; looking for another agent");
            self.emit_status(id);
        } else {
            self.fail(now, id, format!("{why}; no time left to reassign it: {left_ms} ms to the deadline, the fastest proof needs {needed_ms} ms"));
        }
    }

    pub(crate) fn fail(&mut self, now: UnixMillis, id: TaskId, cause: String) {
        let task = self.task_mut(id);
        tracing::warn!(task = %id, %cause, "task failed");
        task.history.push(
            now,
            TaskEvent::Failed {
                cause: cause.clone(),
            },
        );
        task.state = TaskState::Failed { cause, at: now };
        self.finish(id);
    }

    /// Records a finished task and forgets the oldest ones past [`MAX_FINISHED_TASKS`].
    pub(crate) fn finish(&mut self, id: TaskId) {
        assert!(
            self.tasks[&id].state.is_finished(),
            "finish on an unfinished task"
        );
        self.emit_status(id);
        self.finished.push_back(id);
        while self.finished.len() > MAX_FINISHED_TASKS {
            let old = self.finished.pop_front().expect("finished is not empty");
            self.forget(old);
        }
    }

    /// Forgets a finished task: its record, result and request id go.
    fn forget(&mut self, old: TaskId) {
        if let Some(t) = self.tasks.remove(&old) {
            self.index.touch(old);
            self.requests.remove(&(t.spec.client, t.spec.request_id));
            self.dirty.tasks.remove(&old);
            self.dirty.forgotten.insert(old);
        }
    }

    /// Forgets what is older than `policy.request_retention_ms`: finished tasks (with their
    /// request ids and results) and operator-command replies. With the count bounds
    /// ([`MAX_FINISHED_TASKS`], [`super::MAX_ADMIN_REQUESTS`]) no stream of requests can
    /// grow the coordinator's durable state without bound, and none of it lives forever.
    pub(crate) fn forget_past_retention(&mut self, now: UnixMillis) {
        let retention_ms = self.policy.request_retention_ms;
        self.commands
            .expire(now, retention_ms, &mut self.dirty.commands);
        while let Some(&old) = self.finished.front() {
            let at = self.tasks.get(&old).and_then(|t| t.state.finished_at());
            match at {
                Some(at) if at.0.saturating_add(retention_ms) > now.0 => break,
                _ => {
                    self.finished.pop_front();
                    self.forget(old);
                }
            }
        }
    }

    /// When [`CoordinatorCore::forget_past_retention`] next has something to do, rounded up
    /// to [`RETENTION_TICK_MS`].
    pub(crate) fn next_retention_expiry(&self) -> Option<UnixMillis> {
        let retention_ms = self.policy.request_retention_ms;
        let task = self
            .finished
            .front()
            .and_then(|id| self.tasks.get(id))
            .and_then(|t| t.state.finished_at())
            .map(|at| UnixMillis(at.0.saturating_add(retention_ms)));
        [task, self.commands.next_expiry(retention_ms)]
            .into_iter()
            .flatten()
            .min()
            .map(|at| {
                UnixMillis(
                    at.0.div_ceil(RETENTION_TICK_MS)
                        .saturating_mul(RETENTION_TICK_MS),
                )
            })
    }
}

/// Fleets up to this size have every ranked choice checked against admission's full decision
/// in debug builds (every scenario and simulation test); past it the check would cost the
/// tests what the ranking saves.
#[cfg(debug_assertions)]
const RANKED_CHECK_MAX_AGENTS: usize = 64;

#[cfg(debug_assertions)]
impl CoordinatorCore {
    /// Panics if the ranked walk's choice differs from `admit`'s.
    fn check_ranked_choice(
        &self,
        demand: &crate::admission::TaskDemand<'_>,
        scope: &PassScope,
        offerable: &BTreeMap<OperatorId, StakeUnits>,
        now: UnixMillis,
        choice: Option<&crate::admission::Choice>,
    ) {
        if self.fleet.len() > RANKED_CHECK_MAX_AGENTS {
            return;
        }
        let fleet = self.fleet_snapshot(scope);
        let decision = admit(demand, &fleet, offerable, now, &self.policy);
        match (&decision.outcome, choice) {
            (Outcome::Offer(p), Some(c)) => assert_eq!(
                p, &c.placement,
                "{}: the ranked walk and the full decision chose differently",
                demand.task
            ),
            (Outcome::NoFit(_), None) => {}
            (outcome, choice) => panic!(
                "{}: the full decision says {outcome:?}, the ranked walk {:?}",
                demand.task,
                choice.map(|c| &c.placement.agent)
            ),
        }
    }
}
