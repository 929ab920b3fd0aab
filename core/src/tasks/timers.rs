//! Time: offer expiry, missed due times, deadlines of waiting tasks, the end of decline
//! backoffs, and the end of request ids' retention. Each is due at an instant T and applies when `now >= T`; `poll_timeout` reports
//! the earliest such T, so calling `handle_timeout` at it always makes progress.

use super::effect::Effect;
use super::history::TaskEvent;
use super::model::TaskState;
use super::CoordinatorCore;
use proofrack_common::{timefmt, TaskId, UnixMillis};

impl CoordinatorCore {
    /// Applies everything due at `now`, then offers waiting tasks.
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        self.expire(now);
        self.settle(now);
    }

    /// When `handle_timeout` must next be called, if anything is pending.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let tasks = match self.index.next_poll() {
            Some(next) => next,
            // Only between a change and the end of its event; then the same by a scan.
            None => self.scan_poll_timeout(),
        };
        let withdrawals = self.withdrawals.values().map(|w| w.pays_at).min();
        [
            tasks,
            withdrawals,
            self.next_agent_loss(),
            self.next_breaker_close(),
            self.next_retention_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn scan_poll_timeout(&self) -> Option<UnixMillis> {
        self.tasks
            .values()
            .filter_map(|t| match &t.state {
                TaskState::Queued => t
                    .declined_until
                    .values()
                    .copied()
                    .chain([t.spec.deadline])
                    .min(),
                TaskState::Offered { expires_at, .. } => Some(*expires_at),
                TaskState::Proving { placement, .. } | TaskState::Orphaned { placement, .. } => {
                    Some(placement.due_at)
                }
                TaskState::Verifying { .. }
                | TaskState::Verified { .. }
                | TaskState::Failed { .. } => None,
            })
            .min()
    }

    /// Applies every timeout due at `now`, in task order.
    pub(crate) fn expire(&mut self, now: UnixMillis) {
        self.pay_out_withdrawals(now);
        self.close_due_breakers(now);
        self.forget_past_retention(now);
        self.expire_lost_agents(now);
        // Only tasks with something due (the index); a task that becomes due while others
        // are handled is taken in a further round, and none is handled twice.
        let mut handled = std::collections::BTreeSet::new();
        loop {
            self.index.refresh(&self.tasks);
            let due: Vec<TaskId> = self
                .index
                .due_for_expiry(now)
                .into_iter()
                .filter(|id| !handled.contains(id))
                .collect();
            if due.is_empty() {
                return;
            }
            for id in due {
                handled.insert(id);
                self.expire_task(now, id);
            }
        }
    }

    /// Applies what is due at `now` for one task: decline backoffs ending, an offer expiring,
    /// a due time missed, a waiting task's deadline passing.
    fn expire_task(&mut self, now: UnixMillis, id: TaskId) {
        {
            let Some(task) = self.tasks.get_mut(&id) else {
                return;
            };
            if task.state.is_finished() {
                return;
            }
            let declines = task.declined_until.len();
            task.declined_until.retain(|_, until| *until > now);
            if task.declined_until.len() != declines {
                self.needs_full_pass = true;
                self.dirty.tasks.insert(id);
                self.index.touch(id);
            }
            let task = &self.tasks[&id];
            match &task.state {
                TaskState::Offered {
                    placement,
                    expires_at,
                    ..
                } if now >= *expires_at => {
                    let (agent, expires_at) = (placement.agent.clone(), *expires_at);
                    tracing::info!(task = %id, %agent, "offer expired");
                    self.needs_full_pass = true;
                    self.withdraw_offer(
                        now,
                        id,
                        TaskEvent::OfferExpired {
                            agent: agent.clone(),
                        },
                    );
                    self.emit(Effect::CancelTask {
                        agent,
                        task: id,
                        reason: format!(
                            "offer for {id} expired at {} without an answer",
                            timefmt::utc(expires_at)
                        ),
                    });
                }
                TaskState::Proving { placement, .. } | TaskState::Orphaned { placement, .. }
                    if now >= placement.due_at =>
                {
                    let placement = placement.clone();
                    self.needs_full_pass = true;
                    self.miss_due_time(now, id, placement);
                }
                _ => {}
            }
            let task = &self.tasks[&id];
            if task.state == TaskState::Queued && now >= task.spec.deadline {
                let cause = format!(
                    "deadline ({}) passed while waiting: {}",
                    timefmt::after(task.spec.deadline, task.submitted_at, "submission"),
                    task.waiting_reason
                );
                self.fail(now, id, cause);
            }
        }
    }

    /// The agent did not deliver by its due time: slash, tell it to stop, reassign or fail.
    fn miss_due_time(
        &mut self,
        now: UnixMillis,
        id: TaskId,
        placement: crate::admission::Placement,
    ) {
        let agent = placement.agent;
        let due = timefmt::after(placement.due_at, self.tasks[&id].submitted_at, "submission");
        let was_proving = matches!(self.tasks[&id].state, TaskState::Proving { .. });
        let bps = self.policy.deadline_miss_slash_bps;
        let outcome = self
            .ledger_mut()
            .slash(id, bps)
            .expect("a proving task has stake bound");
        tracing::warn!(task = %id, %agent, due_at = %placement.due_at, slashed = %outcome.slashed, "due time missed; operator slashed");
        self.emit_slash(id, &outcome, super::SlashReason::MissedDueTime);
        if was_proving {
            self.unassign(&agent, id);
        }
        self.note_agent_failure(
            now,
            &agent,
            &format!("missed its due time {} for {id}", placement.due_at),
        );
        let task = self.task_mut(id);
        task.failed_on.insert(agent.clone());
        task.history.push(
            now,
            TaskEvent::DueTimeMissed {
                agent: agent.clone(),
                due_at: placement.due_at,
                slashed: outcome.slashed,
                released: outcome.released,
            },
        );
        self.emit(Effect::CancelTask {
            agent: agent.clone(),
            task: id,
            reason: format!(
                "due time ({due}) passed; {} of the collateral slashed",
                outcome.slashed
            ),
        });
        self.requeue_or_fail(now, id, format!("{agent} missed its due time ({due})"));
    }
}
