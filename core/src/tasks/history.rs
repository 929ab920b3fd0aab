//! A task's readable history: every transition with its time and reason, including the
//! admission decisions (with every agent's verdict), predicted against actual proving time,
//! stake bound and failure causes.

use crate::admission::{AgentId, AgentVerdict, NoFit, Placement};
use proofrack_common::{timefmt, OperatorId, StakeUnits, UnixMillis};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most history entries kept per task. A task that keeps being declined or reassigned would
/// otherwise grow without bound; the first entry (submission) is always kept and the oldest
/// of the rest are dropped.
pub const MAX_HISTORY_ENTRIES: usize = 64;

/// One transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: UnixMillis,
    pub event: TaskEvent,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskEvent {
    Submitted {
        client: String,
        circuit: String,
        collateral: StakeUnits,
        deadline: UnixMillis,
    },
    /// Admission found no agent (recorded when the reason changes).
    NoFit {
        reason: NoFit,
        verdicts: Vec<AgentVerdict>,
    },
    /// Admission chose `placement.agent` out of `agents_considered` (the fleet of the
    /// pass); `agents_rejected` of them could not take it: out of service, or ranked ahead
    /// of it and not fit for this task (agents ranked after it are not examined; see
    /// `admission::RankedFleet`). `verdicts` keeps the chosen agent's fit, the other fit
    /// agents seen and the misfits ranked ahead (see [`MAX_VERDICTS_KEPT`]).
    Offered {
        placement: Placement,
        expires_at: UnixMillis,
        verdicts: Vec<AgentVerdict>,
        agents_considered: usize,
        agents_rejected: usize,
    },
    Declined {
        agent: AgentId,
        reason: String,
    },
    OfferExpired {
        agent: AgentId,
    },
    /// The offer was withdrawn without the agent answering (it disconnected).
    OfferWithdrawn {
        agent: AgentId,
        reason: String,
    },
    /// The agent accepted and its operator's stake was bound.
    StakeBound {
        agent: AgentId,
        operator: OperatorId,
        collateral: StakeUnits,
    },
    /// The agent accepted but the stake could no longer be bound.
    BindFailed {
        agent: AgentId,
        reason: String,
    },
    Delivered {
        agent: AgentId,
    },
    Verified {
        agent: AgentId,
        predicted_proving_ms: u64,
        actual_proving_ms: u64,
    },
    InvalidProof {
        agent: AgentId,
        slashed: StakeUnits,
        released: StakeUnits,
    },
    DueTimeMissed {
        agent: AgentId,
        due_at: UnixMillis,
        slashed: StakeUnits,
        released: StakeUnits,
    },
    Failed {
        cause: String,
    },
    /// Its agent was lost (`why`); the stake stays bound while another agent of the same
    /// operator is sought.
    AgentLost {
        agent: AgentId,
        why: String,
    },
    /// Another agent of the same operator accepted the task; the stake stayed bound.
    HandedOver {
        from: AgentId,
        to: AgentId,
    },
    /// The lost agent came back before anyone else took the task, and has it again.
    GivenBack {
        agent: AgentId,
    },
    /// The coordinator restarted; what that did to this task.
    Restarted {
        note: String,
    },
}

impl TaskEvent {
    /// The event as a history line. Times in it are shown from `at`, the moment it happened
    /// ("deadline in 30 s, at 2026-12-03 10:14:05 UTC"), so the line reads the same whenever
    /// it is read; without `at` they are absolute only.
    pub fn describe(&self, at: Option<UnixMillis>) -> String {
        let t = |time: UnixMillis| match at {
            Some(at) => timefmt::when(time, at),
            None => timefmt::utc(time),
        };
        match self {
            TaskEvent::Submitted {
                client,
                circuit,
                collateral,
                deadline,
            } => {
                format!("submitted by {client}: circuit {circuit}, collateral {collateral}, deadline {}", t(*deadline))
            }
            TaskEvent::NoFit { reason, .. } => format!("no agent fits: {reason}"),
            TaskEvent::Offered {
                placement,
                expires_at,
                agents_considered,
                agents_rejected,
                ..
            } => {
                let (rejected, considered) = (agents_rejected, agents_considered);
                let expires = match at {
                    Some(at) => timefmt::relative(*expires_at, at),
                    None => timefmt::utc(*expires_at),
                };
                let start = match at {
                    Some(at) if placement.start_at > at => {
                        format!(", starting {}", timefmt::relative(placement.start_at, at))
                    }
                    _ => String::new(),
                };
                format!(
                    "offered to {} (predicted proving time {}{start}; due {}; offer expires {expires}; \
                     {rejected} of {considered} agents out of service or ahead of it did not fit)",
                    placement.agent,
                    timefmt::span_ms(placement.predicted_proving_ms),
                    t(placement.due_at),
                )
            }
            TaskEvent::Declined { agent, reason } => format!("declined by {agent}: {reason}"),
            TaskEvent::OfferExpired { agent } => format!("offer to {agent} expired unanswered"),
            TaskEvent::OfferWithdrawn { agent, reason } => {
                format!("offer to {agent} withdrawn: {reason}")
            }
            TaskEvent::StakeBound {
                agent,
                operator,
                collateral,
            } => {
                format!("accepted by {agent}; {collateral} of {operator}'s stake bound")
            }
            TaskEvent::BindFailed { agent, reason } => {
                format!("accepted by {agent} but stake not bound: {reason}")
            }
            TaskEvent::Delivered { agent } => format!("proof delivered by {agent}; verifying"),
            TaskEvent::Verified {
                agent,
                predicted_proving_ms,
                actual_proving_ms,
            } => format!(
                "proof from {agent} verified (proving took {}, predicted {}); stake released",
                timefmt::span_ms(*actual_proving_ms),
                timefmt::span_ms(*predicted_proving_ms)
            ),
            TaskEvent::InvalidProof {
                agent,
                slashed,
                released,
            } => {
                format!("proof from {agent} is invalid: {slashed} slashed, {released} released")
            }
            TaskEvent::DueTimeMissed {
                agent,
                due_at,
                slashed,
                released,
            } => {
                // The line's own time says when; the due time itself is what was missed.
                format!(
                    "{agent} missed its due time ({}): {slashed} slashed, {released} released",
                    timefmt::utc(*due_at)
                )
            }
            TaskEvent::Failed { cause } => format!("failed: {cause}"),
            TaskEvent::AgentLost { agent, why } => {
                format!("{agent} lost ({why}); stake stays bound, handing the task to another agent of its operator")
            }
            TaskEvent::HandedOver { from, to } => {
                format!("handed over from {from} to {to}; stake stayed bound")
            }
            TaskEvent::GivenBack { agent } => format!("{agent} came back and has the task again"),
            TaskEvent::Restarted { note } => format!("coordinator restarted: {note}"),
        }
    }
}

impl fmt::Display for TaskEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(None))
    }
}

/// The history line: the event with its times shown from the moment it happened.
impl fmt::Display for HistoryEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.event.describe(Some(self.at)))
    }
}

/// Agents' verdicts kept per admission decision in a task's history. A decision over a rack
/// of a thousand agents would otherwise store a thousand verdicts in every task's record (and
/// write them to disk on every change); the chosen agent and a sample of the connected ones
/// it beat explain the choice, with the counts of agents considered and rejected beside them.
/// Each kept verdict is ~100 bytes in memory for as long as the task is kept: 8 keeps a
/// coordinator holding 100,000 tasks within its 500 MiB (16 did not).
pub const MAX_VERDICTS_KEPT: usize = 8;

/// The verdicts worth keeping: the fit ones first (the chosen agent among them), then the
/// rejected connected agents, then the rest, up to [`MAX_VERDICTS_KEPT`].
pub(crate) fn keep_verdicts(mut verdicts: Vec<AgentVerdict>) -> Vec<AgentVerdict> {
    let keep = MAX_VERDICTS_KEPT;
    if verdicts.len() <= keep {
        return verdicts;
    }
    let rank = |v: &AgentVerdict| match &v.fit {
        Ok(_) => 0,
        Err(m) if !m.contains(&crate::admission::Misfit::Disconnected) => 1,
        Err(_) => 2,
    };
    verdicts.sort_by_key(rank);
    verdicts.truncate(keep);
    verdicts
}

/// Bounded list of entries; see [`MAX_HISTORY_ENTRIES`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct History {
    entries: Vec<HistoryEntry>,
}

impl History {
    pub(crate) fn push(&mut self, at: UnixMillis, event: TaskEvent) {
        // Only the newest admission decision keeps its agents' verdicts: the older ones are
        // history, and a task re-offered many times over a big fleet would otherwise carry
        // (and store) a sample per offer.
        if matches!(event, TaskEvent::Offered { .. } | TaskEvent::NoFit { .. }) {
            for e in &mut self.entries {
                if let TaskEvent::Offered { verdicts, .. } | TaskEvent::NoFit { verdicts, .. } =
                    &mut e.event
                {
                    verdicts.clear();
                }
            }
        }
        if self.entries.len() >= MAX_HISTORY_ENTRIES {
            self.entries.remove(1);
        }
        self.entries.push(HistoryEntry { at, event });
    }

    pub(crate) fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// When the task was last offered, if ever (kept entries only).
    pub(crate) fn last_offered_at(&self) -> Option<UnixMillis> {
        self.entries
            .iter()
            .rev()
            .find(|e| matches!(e.event, TaskEvent::Offered { .. }))
            .map(|e| e.at)
    }

    /// The admission summary recorded since the task's last offer, if any, so that the same
    /// summary is not recorded again on every retry.
    pub(crate) fn last_no_fit(&self) -> Option<&NoFit> {
        for entry in self.entries.iter().rev() {
            match &entry.event {
                TaskEvent::NoFit { reason, .. } => return Some(reason),
                TaskEvent::Offered { .. } => return None,
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_submission_and_the_latest_entries() {
        let mut h = History::default();
        h.push(
            UnixMillis(0),
            TaskEvent::Submitted {
                client: "c".into(),
                circuit: "x".into(),
                collateral: StakeUnits(1),
                deadline: UnixMillis(9),
            },
        );
        for i in 1..=200 {
            h.push(
                UnixMillis(i),
                TaskEvent::Failed {
                    cause: i.to_string(),
                },
            );
        }
        assert_eq!(h.entries().len(), MAX_HISTORY_ENTRIES);
        assert!(matches!(h.entries()[0].event, TaskEvent::Submitted { .. }));
        assert_eq!(h.entries().last().unwrap().at, UnixMillis(200));
        assert_eq!(
            h.entries()[1].at,
            UnixMillis(200 - MAX_HISTORY_ENTRIES as u64 + 2)
        );
    }
}
