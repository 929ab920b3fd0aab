//! What the agent decides about tasks, as a pure state machine: whether it can prove an
//! offered or resumed task, whether it takes it, and which of the tasks it holds prove now
//! (one per slot) and which wait. No I/O, no clock, no tasks spawned: callers pass `now`,
//! and the client and the workers act on the decisions (quinn-proto's split).
//!
//! Architecture invariant: new offers and resumed tasks are judged by the one [`can_prove`];
//! a task is either running or waiting, never both; at most `slots` run; a slot is never idle
//! while a task waits.

use proofrack_common::protocol::{TaskInputs, TaskOffer};
use proofrack_common::{TaskId, UnixMillis};
use proofrack_kernels::circuits::circuit_by_name;
use std::collections::{HashSet, VecDeque};

/// Most tasks waiting on this agent beyond those being proven; more offers are declined.
/// The coordinator's per-agent limit normally keeps far below it: it guards against a
/// coordinator whose limits disagree with the agent's.
pub const MAX_QUEUED_TASKS: usize = 64;

/// Whether this build can prove `offer`, new or resumed: a circom task (its inputs are a
/// witness reference) needs only its key and witness, both fetched from the coordinator; a
/// built-in circuit must be one this build knows.
pub fn can_prove(offer: &TaskOffer) -> Result<(), String> {
    match TaskInputs::decode(&offer.inputs)? {
        TaskInputs::Witness(_) => Ok(()),
        TaskInputs::Json(_) => circuit_by_name(&offer.circuit)
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

/// Why a task is not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this agent cannot prove it: {0}")]
    CannotProve(String),
    #[error("its due time {due} has passed on this agent's clock")]
    PastDue { due: UnixMillis },
    #[error("{MAX_QUEUED_TASKS} tasks already queued here")]
    Full,
}

/// What to do with an offered or resumed task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intake {
    /// Taken, and a slot is free: start proving it now.
    Run,
    /// Taken; it waits for a slot ([`TaskBook::handle_finished`] says when it runs).
    Wait,
    /// Held already (a re-sent offer, or a resume of a task a worker still has): accept
    /// again, start nothing.
    Held,
    /// Not taken.
    Refuse(Refusal),
}

/// What a task's end changes for the tasks waiting behind it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Waiting tasks that run now, in the order they were taken.
    pub run: Vec<TaskId>,
    /// Waiting tasks whose due time passed before a slot freed: dropped without running.
    pub expired: Vec<TaskId>,
}

/// The tasks this agent holds: those proving (one per slot) and those waiting for a slot.
#[derive(Clone, Debug)]
pub struct TaskBook {
    slots: usize,
    running: HashSet<TaskId>,
    /// In the order they were taken, with their due times.
    waiting: VecDeque<(TaskId, UnixMillis)>,
}

impl TaskBook {
    /// A book for an agent proving `slots` tasks at once (at least one).
    pub fn new(slots: u32) -> TaskBook {
        TaskBook {
            slots: (slots as usize).max(1),
            running: HashSet::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Tasks held: running and waiting.
    pub fn len(&self) -> usize {
        self.running.len() + self.waiting.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn holds(&self, task: TaskId) -> bool {
        self.running.contains(&task) || self.waiting.iter().any(|(t, _)| *t == task)
    }

    /// Tasks proving now.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// A new offer: taken if this build can prove it, its due time has not passed and fewer
    /// than [`MAX_QUEUED_TASKS`] wait beyond the slots.
    pub fn handle_offer(&mut self, now: UnixMillis, offer: &TaskOffer) -> Intake {
        if self.holds(offer.task) {
            return Intake::Held;
        }
        if let Err(refusal) = check(now, offer) {
            return Intake::Refuse(refusal);
        }
        if self.len() >= MAX_QUEUED_TASKS + self.slots {
            return Intake::Refuse(Refusal::Full);
        }
        self.take(offer)
    }

    /// A task the coordinator says is bound to this agent, which lost it (a restart): taken
    /// if this build can prove it and its due time has not passed, however many wait (its
    /// stake is bound already; leaving it only ends in a slash or a handover).
    pub fn handle_resume(&mut self, now: UnixMillis, offer: &TaskOffer) -> Intake {
        if self.holds(offer.task) {
            return Intake::Held;
        }
        if let Err(refusal) = check(now, offer) {
            return Intake::Refuse(refusal);
        }
        self.take(offer)
    }

    /// `task` ended (delivered, refused, cancelled or failed): its slot goes to the next
    /// waiting task whose due time has not passed. A task the book no longer holds changes
    /// nothing.
    pub fn handle_finished(&mut self, now: UnixMillis, task: TaskId) -> Released {
        let mut released = Released::default();
        if self.running.remove(&task) {
            while self.running.len() < self.slots {
                let Some((next, due)) = self.waiting.pop_front() else {
                    break;
                };
                if now >= due {
                    released.expired.push(next);
                } else {
                    self.running.insert(next);
                    released.run.push(next);
                }
            }
        } else {
            self.waiting.retain(|(t, _)| *t != task);
        }
        self.assert_invariants();
        released
    }

    /// The coordinator cancelled `task`: a waiting task is dropped at once (true); a running
    /// one keeps its slot until its worker notices and ends (false).
    pub fn handle_cancelled(&mut self, task: TaskId) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|(t, _)| *t != task);
        self.assert_invariants();
        self.waiting.len() < before
    }

    fn take(&mut self, offer: &TaskOffer) -> Intake {
        let intake = if self.running.len() < self.slots {
            self.running.insert(offer.task);
            Intake::Run
        } else {
            self.waiting.push_back((offer.task, offer.deadline));
            Intake::Wait
        };
        self.assert_invariants();
        intake
    }

    fn assert_invariants(&self) {
        assert!(
            self.running.len() <= self.slots,
            "more tasks run than slots"
        );
        assert!(
            self.waiting.is_empty() || self.running.len() == self.slots,
            "a slot is idle while a task waits"
        );
        debug_assert!(
            self.waiting.iter().all(|(t, _)| !self.running.contains(t)),
            "a task both runs and waits"
        );
    }
}

/// The checks every taken task passes: provable here, not past its due time.
fn check(now: UnixMillis, offer: &TaskOffer) -> Result<(), Refusal> {
    can_prove(offer).map_err(Refusal::CannotProve)?;
    if now >= offer.deadline {
        return Err(Refusal::PastDue {
            due: offer.deadline,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
